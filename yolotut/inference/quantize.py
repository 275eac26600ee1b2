"""Post-training INT8 with the tools that are still maintained: NNCF (for OpenVINO) and ONNX Runtime.

SparseML, whose recipes make the tutorial's QAT models, reached end of life in June
2025. These two quantize a dense fp32 ONNX export without training, from a few
hundred calibration images:

* :func:`quantize_with_nncf`: NNCF's post-training quantization on OpenVINO's reading
  of the ONNX file; writes OpenVINO IR (``.xml`` + ``.bin``), which only the openvino
  engine runs. (NNCF's ONNX backend, which would write ONNX, needs a newer ``onnx``
  than the 1.14.1 this project pins for SparseML.)
* :func:`quantize_onnxruntime_static`: ONNX Runtime's ``quantize_static`` in QDQ form
  (``QuantizeLinear -> DequantizeLinear`` pairs around float ops), per-channel
  weights by default; writes ONNX, which ONNX Runtime and OpenVINO run as INT8.

Both keep YOLOv5's Detect head in float by default (``keep_head_float``): its three
output convolutions and the decoding after them (sigmoid, grid offsets, anchor
scaling), where 8-bit steps land directly on box coordinates in pixels. The head is
found from the graph itself: the convolutions whose output reaches no other
convolution, and everything downstream of them.

Calibration images come from :func:`calibration_images`: letterboxed, not augmented,
a seeded random sample of the training split.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from yolotut.inference.engines import read_onnx_info
from yolotut.inference.onnx_file import drop_unused_initializers
from yolotut.inference.openvino_engine import RT_INFO_KEY
from yolotut.progress import plain_rich_bars

CALIBRATION_IMAGES = 300  # NNCF's default subset size


def calibration_images(
    data: str | Path = "pistols", split: str = "train", count: int = CALIBRATION_IMAGES, imgsz: int = 416, seed: int = 0
):
    """``count`` letterboxed, unaugmented images of a dataset split (a seeded random sample).

    Returns a :class:`yolotut.training.data.YoloDataset`: item ``i`` is ``(uint8 [3, imgsz,
    imgsz] RGB tensor, labels, path, meta)``; it is indexed lazily, so 300 images cost
    no memory until they are read.
    """
    from yolotut.training.data import YoloDataset, load_dataset_config

    if count < 1:
        raise ValueError(f"count must be >= 1 calibration image, got {count}")
    config = load_dataset_config(data)
    return YoloDataset.from_config(config, split, imgsz=imgsz, augment=False, max_images=count, subset_seed=seed)


def model_input(item: Any, dtype: str) -> np.ndarray:
    """One calibration item (a dataset item, or a ``uint8`` ``[3, H, W]`` / ``[1, 3, H, W]`` RGB
    array) as a ``[1, 3, H, W]`` model input: ``uint8`` as it is, ``float32`` divided by 255."""
    image = item[0] if isinstance(item, tuple) else item
    image = np.asarray(image.numpy() if hasattr(image, "numpy") else image)
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"a calibration image must be [3, H, W] or [1, 3, H, W] RGB, got {list(image.shape)}")
    if image.dtype != np.uint8:
        raise ValueError(f"calibration images must be uint8 pixels (0-255), got {image.dtype}")
    if dtype == "uint8":
        return np.ascontiguousarray(image)
    return image.astype(np.float32) * np.float32(1 / 255)


@contextmanager
def _log_level(name: str | None, level: int) -> Iterator[None]:
    """Raise one logger's level while a quantizer runs (its per-node INFO lines run to pages)."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(max(level, previous))
    try:
        yield
    finally:
        logger.setLevel(previous)


# --- finding the Detect head --------------------------------------------------------------


def head_nodes(nodes: Mapping[str, tuple[str, list[str]]]) -> list[str]:
    """Names of the Detect head: the convolutions whose output reaches no other convolution,
    and every node downstream of them.

    ``nodes`` maps a node name to ``(op type, names of the nodes it feeds)``, for an ONNX
    graph (op type ``Conv``) or an OpenVINO model (``Convolution``) alike.
    """
    is_conv = {name: op in ("Conv", "Convolution", "QLinearConv") for name, (op, _) in nodes.items()}
    reaches_conv: dict[str, bool] = {}

    def feeds_conv(name: str) -> bool:
        # Iterative DFS: YOLOv5 graphs are a few hundred nodes deep.
        stack = [(name, False)]
        while stack:
            current, expanded = stack.pop()
            if current in reaches_conv:
                continue
            children = nodes[current][1]
            if expanded:
                reaches_conv[current] = any(is_conv[c] or reaches_conv[c] for c in children)
                continue
            stack.append((current, True))
            stack.extend((c, False) for c in children if c not in reaches_conv)
        return reaches_conv[name]

    head_convs = [name for name, conv in is_conv.items() if conv and not feeds_conv(name)]
    head: dict[str, None] = {}
    frontier = list(head_convs)
    while frontier:
        current = frontier.pop()
        if current in head:
            continue
        head[current] = None
        frontier.extend(nodes[current][1])
    return list(head)


def _onnx_graph_nodes(model) -> dict[str, tuple[str, list[str]]]:
    consumers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for tensor in node.input:
            consumers.setdefault(tensor, []).append(node.name)
    return {node.name: (node.op_type, [c for out in node.output for c in consumers.get(out, [])]) for node in model.graph.node}


def _openvino_graph_nodes(model) -> dict[str, tuple[str, list[str]]]:
    nodes = {}
    for op in model.get_ordered_ops():
        children = [
            target.get_node().get_friendly_name()
            for output in op.outputs()
            for target in output.get_target_inputs()
        ]
        nodes[op.get_friendly_name()] = (op.get_type_name(), children)
    return nodes


# --- NNCF ----------------------------------------------------------------------------------


def quantize_with_nncf(
    onnx_path: str | Path,
    calibration: Iterable[Any],
    out: str | Path,
    *,
    keep_head_float: bool = True,
    subset_size: int = CALIBRATION_IMAGES,
    preset: str = "mixed",
    fast_bias_correction: bool = True,
) -> Path:
    """NNCF post-training INT8 of a float ONNX model (OpenVINO backend); writes OpenVINO IR at ``out`` (``.xml``).

    ``calibration`` yields images for :func:`model_input` (e.g. :func:`calibration_images`).
    ``preset="mixed"``: symmetric weights, asymmetric activations (SiLU and Hardswish
    outputs go below zero); ``"performance"``: symmetric both. The ONNX file's
    ``names``/``imgsz``/``stride`` metadata travel in the IR's ``rt_info``.
    """
    import nncf
    import openvino as ov

    out = Path(out)
    if out.suffix.lower() != ".xml":
        raise ValueError(
            f"quantize_with_nncf writes OpenVINO IR (.xml + .bin), not {out.suffix or 'a file without suffix'}: "
            "NNCF's ONNX backend needs a newer onnx than this project's 1.14.1 (use quantize_onnxruntime_static for INT8 ONNX)"
        )
    presets = {"mixed": nncf.QuantizationPreset.MIXED, "performance": nncf.QuantizationPreset.PERFORMANCE}
    if preset not in presets:
        raise ValueError(f"preset must be one of {sorted(presets)}, got {preset!r}")
    info = read_onnx_info(onnx_path)
    if info.input_dtype != "float32":
        raise ValueError(f"{onnx_path} takes {info.input_dtype} input: quantize the dense fp32 export, not an INT8 one")
    model = ov.Core().read_model(str(onnx_path))
    ignored = nncf.IgnoredScope()
    head: list[str] = []
    if keep_head_float:
        head = head_nodes(_openvino_graph_nodes(model))
        ignored = nncf.IgnoredScope(names=head, validate=False)
    dataset = nncf.Dataset(calibration, lambda item: model_input(item, info.input_dtype))
    with _log_level("nncf", logging.WARNING), plain_rich_bars():
        quantized = nncf.quantize(
            model, dataset, preset=presets[preset], subset_size=subset_size,
            fast_bias_correction=fast_bias_correction, ignored_scope=ignored,
        )
    settings = {
        "tool": f"nncf {nncf.__version__}", "preset": preset, "subset_size": subset_size,
        "fast_bias_correction": fast_bias_correction, "head_kept_float": keep_head_float, "head_nodes": len(head),
    }
    metadata = {**{k: v for k, v in info.metadata.items() if k in ("names", "imgsz", "stride")},
                "source": str(onnx_path), "quantization": json.dumps(settings)}
    for key, value in metadata.items():
        quantized.set_rt_info(value, [RT_INFO_KEY, key])
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    return out


# --- ONNX Runtime -----------------------------------------------------------------------------


class _CalibrationReader:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over calibration images."""

    def __init__(self, calibration: Iterable[Any], input_name: str, dtype: str, limit: int) -> None:
        self._calibration, self._input_name, self._dtype, self._limit = calibration, input_name, dtype, limit
        self._items: Iterator[Any] | None = None
        self._seen = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._items is None:
            self._items = iter(self._calibration)
        if self._seen >= self._limit:
            return None
        item = next(self._items, None)
        if item is None:
            return None
        self._seen += 1
        return {self._input_name: model_input(item, self._dtype)}

    def rewind(self) -> None:
        self._items, self._seen = None, 0


def quantize_onnxruntime_static(
    onnx_path: str | Path,
    calibration: Iterable[Any],
    out: str | Path,
    per_channel: bool = True,
    *,
    keep_head_float: bool = True,
    subset_size: int = CALIBRATION_IMAGES,
    calibrate_method: str = "minmax",
) -> Path:
    """ONNX Runtime static INT8 (QDQ: ``uint8`` activations, ``int8`` weights, per output channel
    when ``per_channel``) of a float ONNX model; writes ONNX at ``out``.

    ``calibrate_method``: ``"minmax"``, ``"percentile"`` (99.999 %) or ``"entropy"``.
    The source's metadata (``names``, ``imgsz``, ``stride``) is copied over.
    """
    import onnx
    import onnxruntime

    from yolotut.compat import apply_onnxruntime_quantization_compat

    apply_onnxruntime_quantization_compat()
    from onnxruntime import quantization as ortq

    methods = {"minmax": ortq.CalibrationMethod.MinMax, "percentile": ortq.CalibrationMethod.Percentile,
               "entropy": ortq.CalibrationMethod.Entropy}
    if calibrate_method not in methods:
        raise ValueError(f"calibrate_method must be one of {sorted(methods)}, got {calibrate_method!r}")
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ValueError(f"quantize_onnxruntime_static writes ONNX; give an .onnx path, not {out}")
    info = read_onnx_info(onnx_path)
    if info.input_dtype != "float32":
        raise ValueError(f"{onnx_path} takes {info.input_dtype} input: quantize the dense fp32 export, not an INT8 one")
    source = onnx.load(str(onnx_path))
    exclude = head_nodes(_onnx_graph_nodes(source)) if keep_head_float else []
    reader = _CalibrationReader(calibration, info.input_name, info.input_dtype, subset_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    # The root-logger warning "consider pre-processing" is left out: ORT's pre-processing
    # (quant_pre_process, symbolic shapes skipped) gives the same 524 nodes on this
    # project's exports, which are constant-folded with BatchNorm fused already.
    with _log_level(None, logging.ERROR):
        ortq.quantize_static(
            str(onnx_path), str(out), reader,
            quant_format=ortq.QuantFormat.QDQ,
            activation_type=ortq.QuantType.QUInt8,
            weight_type=ortq.QuantType.QInt8,
            per_channel=per_channel,
            calibrate_method=methods[calibrate_method],
            nodes_to_exclude=exclude,
        )
    quantized = onnx.load(str(out))
    del quantized.metadata_props[:]
    settings = {"tool": f"onnxruntime {onnxruntime.__version__} quantize_static", "format": "QDQ", "per_channel": per_channel,
                "calibrate_method": calibrate_method, "subset_size": subset_size, "head_kept_float": keep_head_float,
                "head_nodes": len(exclude)}
    for key, value in {**dict(info.metadata), "quantized": "true", "quantization": json.dumps(settings)}.items():
        entry = quantized.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(quantized, str(out))
    return out


# --- SparseML's QLinearConv files in QDQ form -------------------------------------------------


def qlinear_to_qdq(onnx_path: str | Path, out: str | Path) -> Path:
    """The same INT8 model with every ``QLinearConv`` written as
    ``DequantizeLinear -> Conv -> QuantizeLinear`` (QDQ form); writes ONNX at ``out``.

    SparseML exports its QAT models as ``QLinearConv`` nodes. OpenVINO reads those by
    dequantizing the weights and runs float convolutions (its runtime model says
    ``f32`` for every one), which is why such a file is slow there. Its low-precision
    transformations look for the QDQ pattern instead and then run integer kernels. The
    rewrite changes no number: each node computes what ``QLinearConv`` defines, the bias
    (int32 at scale ``x_scale * w_scale``) becomes float at that scale.
    """
    import onnx
    from onnx import helper, numpy_helper

    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ValueError(f"qlinear_to_qdq writes ONNX; give an .onnx path, not {out}")
    model = onnx.load(str(onnx_path))
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    rewritten: list = []
    count, any_per_channel = 0, False
    for node in graph.node:
        if node.op_type != "QLinearConv":
            rewritten.append(node)
            continue
        x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero, *bias = node.input
        name = node.name or f"qlinearconv_{count}"
        weight_scale = numpy_helper.to_array(initializers[w_scale]).astype(np.float32)
        per_channel = weight_scale.ndim > 0
        any_per_channel |= per_channel
        conv_inputs = [f"{name}/x", f"{name}/w"]
        if bias and bias[0]:
            scale = numpy_helper.to_array(initializers[x_scale]).astype(np.float32) * weight_scale
            float_bias = numpy_helper.to_array(initializers[bias[0]]).astype(np.float32) * scale.reshape(-1)
            graph.initializer.append(numpy_helper.from_array(float_bias.astype(np.float32), f"{name}/bias"))
            conv_inputs.append(f"{name}/bias")
        w, w_zero = _signed_weights(initializers, w, w_zero, graph, name)
        rewritten += [
            helper.make_node("DequantizeLinear", [x, x_scale, x_zero], [f"{name}/x"], name=f"{name}/dequantize_x"),
            helper.make_node("DequantizeLinear", [w, w_scale, w_zero], [f"{name}/w"], name=f"{name}/dequantize_w",
                             **({"axis": 0} if per_channel else {})),
            helper.make_node("Conv", conv_inputs, [f"{name}/y"], name=f"{name}/conv",
                             **{a.name: helper.get_attribute_value(a) for a in node.attribute}),
            helper.make_node("QuantizeLinear", [f"{name}/y", y_scale, y_zero], list(node.output), name=f"{name}/quantize_y"),
        ]
        count += 1
    if not count:
        raise ValueError(f"{onnx_path} has no QLinearConv node: nothing to rewrite")
    if any_per_channel and next(o for o in model.opset_import if o.domain in ("", "ai.onnx")).version < 13:
        raise ValueError(f"{onnx_path}: per-channel weight scales need opset 13 for DequantizeLinear's axis")
    del graph.node[:]
    graph.node.extend(rewritten)
    drop_unused_initializers(graph)
    entry = model.metadata_props.add()
    entry.key, entry.value = "quantization", json.dumps({"tool": "yolotut qlinear_to_qdq", "source": str(onnx_path),
                                                         "qlinearconv_rewritten": count})
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


def _signed_weights(initializers: dict, weight: str, zero_point: str, graph, name: str) -> tuple[str, str]:
    """uint8 weights ``w`` with zero point ``z`` as int8 ``w - 128`` with ``z - 128``: the
    same real values, in the signed form OpenVINO's integer convolutions take."""
    from onnx import TensorProto, numpy_helper

    if initializers[weight].data_type != TensorProto.UINT8:
        return weight, zero_point
    shifted = {}
    for role, tensor_name in (("w", weight), ("w_zero", zero_point)):
        values = numpy_helper.to_array(initializers[tensor_name]).astype(np.int16) - 128
        shifted[role] = f"{name}/{role}_int8"
        graph.initializer.append(numpy_helper.from_array(values.astype(np.int8), shifted[role]))
    return shifted["w"], shifted["w_zero"]
