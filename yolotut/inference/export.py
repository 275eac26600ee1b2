"""ONNX export of dense and quantization-aware YOLOv5 models, and sparsity measurement.

Every export puts the decoded predictions ``[B, N, 5 + nc]`` first (output ``out_0``),
as the blog author's models do; ``raw_outputs=True`` adds the three raw head tensors
(``out_1..out_3``). A QAT model is converted by SparseML into QLinearConv INT8
(``convert_qat=True``); with ``uint8_input=True`` its input quantization is folded
into the graph, so the engine is fed 0-255 ``uint8`` pixels directly (no float
conversion, a quarter of the input bytes).

The sparsity reported is measured on the exported file itself: the fraction of
convolution weights equal to zero (float convs) or to their zero point (INT8 convs).
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from yolotut.compat import apply_sparseml_compat
from yolotut.errors import OnnxModelError
from yolotut.inference.onnx_file import drop_unused_initializers

OPSET = 13
INPUT_SCALE = 1.0 / 255.0  # float input is pixels / 255, so uint8 pixels are its exact quantization


@dataclass
class LayerSparsity:
    name: str
    op_type: str
    shape: tuple[int, ...]
    sparsity: float
    block4_sparsity: float  # fraction of 1x4 blocks (along input channels) that are all zero


@dataclass
class SparsityReport:
    path: str
    conv_sparsity: float  # zeros / all conv weights
    prunable_sparsity: float  # the same over convs with >= 1024 weights (stem-sized layers excluded)
    block4_sparsity: float
    quantized: bool
    op_counts: dict[str, int]
    file_size_mb: float
    layers: list[LayerSparsity] = field(default_factory=list)

    def to_dict(self, layers: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not layers:
            data.pop("layers")
        return data


@dataclass
class ExportReport:
    path: Path
    quantized: bool
    uint8_input: bool
    input_dtype: str  # read back from the written graph
    imgsz: int
    batch_size: int
    sparsity: SparsityReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "quantized": self.quantized,
            "uint8_input": self.uint8_input,
            "input_dtype": self.input_dtype,
            "imgsz": self.imgsz,
            "batch_size": self.batch_size,
            **self.sparsity.to_dict(),
        }


def is_quantized(model: nn.Module) -> bool:
    """True when SparseML has turned the model into a quantization-aware one."""
    return any(isinstance(m, torch.ao.quantization.FakeQuantizeBase) for m in model.modules())


class OnnxFriendlyHardswish(nn.Module):
    """Hardswish written as ``x * clip(x + 3, 0, 6) / 6``.

    torch exports ``nn.Hardswish`` as ``HardSigmoid`` + ``Mul``, which DeepSparse 1.8
    does not support: it then runs part of the graph in its ONNX Runtime fallback.
    Measured here (random-weight YOLOv5n-Hardswish INT8, 416 px, batch 1, 2 cores,
    median of 5 interleaved rounds): 84 % of ops supported and 115 items/s with
    ``HardSigmoid``, 100 % and 457 items/s in this form. The blog author's model has
    this form too (``Add/Clip/Div/Mul``).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


def swap_hardswish(model: nn.Module) -> int:
    """Replace every ``nn.Hardswish`` in place (QAT wrappers included); return the count."""
    swapped = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Hardswish):
                setattr(parent, name, OnnxFriendlyHardswish())
                swapped += 1
    return swapped


class _ExportWrapper(nn.Module):
    """Fixes the output layout: decoded first, raw heads after when asked for."""

    def __init__(self, model: nn.Module, raw_outputs: bool):
        super().__init__()
        self.model = model
        self.raw_outputs = raw_outputs

    def forward(self, x: torch.Tensor):
        decoded, raw = self.model(x)
        return (decoded, *raw) if self.raw_outputs else decoded


def _fix_input_quantization(model: nn.Module) -> bool:
    """Pin the first activation quantizer (it sees the normalised image) to scale 1/255, zero point 0.

    The observer has learned roughly that range from [0, 1] images; pinning it makes
    the uint8 input exactly the pixel values, so feeding 0-255 ``uint8`` is lossless.
    """
    for module in model.modules():
        if isinstance(module, torch.ao.quantization.FakeQuantizeBase) and getattr(module, "dtype", None) == torch.quint8:
            module.disable_observer()
            module.scale.fill_(INPUT_SCALE)
            module.zero_point.fill_(0)
            return True
    return False


def export_onnx(
    model: nn.Module,
    path: str | Path,
    imgsz: int = 416,
    batch_size: int = 1,
    uint8_input: bool | None = None,
    raw_outputs: bool = False,
    opset: int = OPSET,
) -> ExportReport:
    """Export a (possibly pruned and/or QAT) YOLOv5 model to ONNX; measure what was written.

    ``uint8_input`` defaults to True for quantized models (their first op quantizes
    the input anyway) and must be False for float models.
    """
    apply_sparseml_compat()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    quantized = is_quantized(model)
    if uint8_input is None:
        uint8_input = quantized
    if uint8_input and not quantized:
        raise ValueError(
            "uint8_input needs a quantized model (QAT or one-shot calibrated): a float model's "
            "first convolution takes float pixels"
        )
    # Export a copy: swapping activations must not change the caller's model.
    model = copy.deepcopy(model).cpu().eval()
    swap_hardswish(model)
    detect = model.model[-1]
    sample = torch.zeros(batch_size, 3, imgsz, imgsz)
    wrapper = _ExportWrapper(model, raw_outputs).eval()
    output_names = ["out_0"] + ([f"out_{i + 1}" for i in range(detect.nl)] if raw_outputs else [])

    detect.export = False  # the wrapper needs (decoded, raw)
    # Write next to the target and move into place: no half-written model survives a crash.
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        tmp_file = Path(tmp) / path.name
        if quantized:
            _export_quantized(wrapper, model, sample, tmp_file, output_names, uint8_input, opset)
        else:
            torch.onnx.export(
                wrapper,
                (sample,),
                str(tmp_file),
                dynamo=False,
                opset_version=opset,
                input_names=["input"],
                output_names=output_names,
                dynamic_axes={name: {0: "batch"} for name in ["input", *output_names]},
                do_constant_folding=True,
            )
        _add_metadata(tmp_file, model, imgsz, quantized)
        tmp_file.replace(path)
    input_dtype = onnx_input_dtype(path)
    if uint8_input and input_dtype != "uint8":
        raise RuntimeError(
            f"{path}: asked for uint8 input but SparseML left a {input_dtype} input "
            "(its input QuantizeLinear was not folded); export with uint8_input=False"
        )
    return ExportReport(
        path=path,
        quantized=quantized,
        uint8_input=uint8_input,
        input_dtype=input_dtype,
        imgsz=imgsz,
        batch_size=batch_size,
        sparsity=measure_onnx_sparsity(path),
    )


def _export_quantized(
    wrapper: nn.Module,
    model: nn.Module,
    sample: torch.Tensor,
    target: Path,
    output_names: list[str],
    uint8_input: bool,
    opset: int,
) -> None:
    from sparseml.pytorch.utils.exporter import export_onnx as sparseml_export_onnx

    if uint8_input:
        _fix_input_quantization(model)
    # SparseML reads this flag: QLinearConv (what DeepSparse's INT8 kernels run best)
    # rather than ConvInteger + float rescaling.
    wrapper.export_with_qlinearconv = True
    sparseml_export_onnx(
        wrapper,
        sample,
        str(target),
        opset=opset,
        convert_qat=True,
        skip_input_quantize=uint8_input,
        input_names=["input"],
        output_names=output_names,
    )
    fold_float_conv_weight_quantization(target)


def onnx_input_dtype(path: str | Path) -> str:
    """The element type of the model's first input, e.g. ``"uint8"`` or ``"float32"``."""
    from onnx import mapping

    from yolotut.inference.onnx_file import load_onnx

    graph = load_onnx(path, check=False).graph
    elem_type = graph.input[0].type.tensor_type.elem_type
    return str(mapping.TENSOR_TYPE_TO_NP_TYPE[elem_type])


def fold_float_conv_weight_quantization(path: Path) -> int:
    """Give float ``Conv`` nodes plain float weights; return how many were folded.

    SparseML leaves a convolution whose *output* is not quantized (YOLOv5's three
    Detect convs) as ``Conv(DequantizeLinear(QuantizeLinear(w)))``: fake-quantized
    weights in QDQ form. DeepSparse 1.8 cannot compile a graph that contains this
    pattern and silently runs the *whole* model in its ONNX Runtime fallback
    (``fraction_of_supported_ops`` 0.0, several times slower). Replacing the pair by
    the dequantized weights, ``(round(w / s) + z - z) * s``, is exactly what the QDQ
    pair computes, so outputs are unchanged; the graph then compiles fully (as the
    blog author's models, whose Detect convs are float, do).
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    consumers: Counter[str] = Counter(name for node in graph.node for name in node.input)
    folded = 0
    for node in list(graph.node):
        if node.op_type != "Conv" or node.input[1] in initializers:
            continue
        dequantize = producers.get(node.input[1])
        quantize = producers.get(dequantize.input[0]) if dequantize is not None else None
        if dequantize is None or dequantize.op_type != "DequantizeLinear" or consumers[node.input[1]] != 1:
            continue
        scale = numpy_helper.to_array(initializers[dequantize.input[1]]).astype(np.float32)
        zero_point_tensor = initializers[dequantize.input[2]]
        zero_point = numpy_helper.to_array(zero_point_tensor).astype(np.float32)
        if scale.ndim:  # per output channel
            scale, zero_point = scale.reshape(-1, 1, 1, 1), zero_point.reshape(-1, 1, 1, 1)
        if quantize is not None and quantize.op_type == "QuantizeLinear" and quantize.input[0] in initializers:
            low, high = (0, 255) if zero_point_tensor.data_type == onnx.TensorProto.UINT8 else (-128, 127)
            weight = numpy_helper.to_array(initializers[quantize.input[0]]).astype(np.float32)
            quantized = np.clip(np.round(weight / scale) + zero_point, low, high)
            graph.node.remove(quantize)
        elif dequantize.input[0] in initializers:
            quantized = numpy_helper.to_array(initializers[dequantize.input[0]]).astype(np.float32)
        else:
            continue
        name = f"{node.name}.weight_dequantized"
        graph.initializer.append(numpy_helper.from_array(((quantized - zero_point) * scale).astype(np.float32), name))
        graph.node.remove(dequantize)
        node.input[1] = name
        folded += 1
    if folded:
        drop_unused_initializers(graph)
        onnx.save(model, str(path))
    return folded


def _add_metadata(path: Path, model: nn.Module, imgsz: int, quantized: bool) -> None:
    import onnx

    onnx_model = onnx.load(str(path))
    props = {
        "names": json.dumps(list(model.names)),
        "stride": json.dumps([int(s) for s in model.stride.tolist()]),
        "imgsz": str(imgsz),
        "producer": "yolotut",
        "quantized": str(quantized).lower(),
        "activation": str(getattr(model, "activation", "")),
        "size": str(getattr(model, "size", "")),
    }
    del onnx_model.metadata_props[:]
    for key, value in props.items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(onnx_model, str(path))


def measure_onnx_sparsity(path: str | Path) -> SparsityReport:
    """Conv-weight sparsity of an ONNX model, per layer and overall, INT8 or float."""
    from yolotut.inference.onnx_file import load_onnx

    path = Path(path)
    graph = load_onnx(path, external_data=True).graph
    initializers = {t.name: t for t in graph.initializer}
    ops = Counter(node.op_type for node in graph.node)
    layers: list[LayerSparsity] = []
    for node in graph.node:
        try:
            layer = _conv_layer_sparsity(graph, initializers, node)
        except (ValueError, IndexError, KeyError) as exc:
            # a damaged file: a tensor whose bytes do not fill its shape, a node short of inputs,
            # a tensor type this onnx release cannot read (KeyError in numpy_helper)
            raise OnnxModelError(
                f"{path}: convolution {node.name!r} has a damaged weight or zero point ({exc}); "
                "export the model again", path=path,
            ) from exc
        if layer is not None:
            layers.append(layer)
    sizes = [int(np.prod(layer.shape)) for layer in layers]
    total = sum(sizes)
    prunable = [(layer, size) for layer, size in zip(layers, sizes) if size >= 1024]
    prunable_total = sum(size for _, size in prunable)
    return SparsityReport(
        path=str(path),
        conv_sparsity=sum(layer.sparsity * size for layer, size in zip(layers, sizes)) / total if total else 0.0,
        prunable_sparsity=sum(layer.sparsity * size for layer, size in prunable) / prunable_total if prunable_total else 0.0,
        block4_sparsity=sum(layer.block4_sparsity * size for layer, size in zip(layers, sizes)) / total if total else 0.0,
        quantized=ops.get("QLinearConv", 0) + ops.get("ConvInteger", 0) > 0,
        op_counts=dict(ops),
        file_size_mb=path.stat().st_size / 1e6,
        layers=layers,
    )


def _conv_layer_sparsity(graph, initializers: dict, node) -> LayerSparsity | None:
    """One convolution's weight sparsity; ``None`` for other nodes and for weights that are
    computed at run time."""
    from onnx import numpy_helper

    if node.op_type == "Conv":
        weight_name, zero_point_name = node.input[1], None
    elif node.op_type == "QLinearConv":
        weight_name, zero_point_name = node.input[3], node.input[5]
    elif node.op_type == "ConvInteger":
        weight_name = node.input[1]
        zero_point_name = node.input[3] if len(node.input) > 3 else None
    else:
        return None
    if weight_name not in initializers:
        # A QDQ conv takes its weight from a DequantizeLinear; follow it.
        weight_name, zero_point_name = _dequantized_weight(graph, weight_name)
        if weight_name is None:
            return None
    weight = numpy_helper.to_array(initializers[weight_name])
    zero = numpy_helper.to_array(initializers[zero_point_name]) if zero_point_name in initializers else 0
    is_zero = weight == np.asarray(zero).reshape(-1, *([1] * (weight.ndim - 1))) if np.ndim(zero) else weight == zero
    return LayerSparsity(
        name=node.name,
        op_type=node.op_type,
        shape=tuple(int(d) for d in weight.shape),
        sparsity=float(is_zero.mean()),
        block4_sparsity=_block4_sparsity(is_zero),
    )


def _dequantized_weight(graph, tensor_name: str) -> tuple[str | None, str | None]:
    """Follow a QDQ weight back to its initializer: DequantizeLinear(int8 init), or
    DequantizeLinear(QuantizeLinear(float init)) when SparseML left the pair unfolded."""
    producers = {output: node for node in graph.node for output in node.output}
    initializers = {t.name for t in graph.initializer}
    node = producers.get(tensor_name)
    if node is None or node.op_type != "DequantizeLinear":
        return None, None
    source = node.input[0]
    if source in initializers:
        return source, node.input[2] if len(node.input) > 2 else None
    quantize = producers.get(source)
    if quantize is not None and quantize.op_type == "QuantizeLinear" and quantize.input[0] in initializers:
        return quantize.input[0], None  # float weights: a pruned weight is exactly 0
    return None, None


def _block4_sparsity(is_zero: np.ndarray) -> float:
    """Fraction of 1x4 blocks along input channels that are entirely zero."""
    in_channels = is_zero.shape[1]
    if in_channels % 4:
        return 0.0
    blocks = is_zero.transpose(0, 2, 3, 1).reshape(-1, in_channels // 4, 4)
    return float(blocks.all(axis=-1).mean())


def decoded_output_only(model: str | Path, dest: str | Path) -> Path:
    """A copy of ``model`` whose only graph output is ``out_0`` (the raw head tensors stay
    in the graph as the intermediates they are; nothing else changes).

    The blog author's models return the decoded boxes and the three raw head tensors;
    ours only the decoded ones. Timing the trimmed copy shows what the extra outputs cost.
    """
    import onnx

    dest = Path(dest)
    graph = onnx.load(str(model))
    kept = [output for output in graph.graph.output if output.name == "out_0"]
    if not kept:
        raise ValueError(f"{model} has no output 'out_0' (outputs: {[o.name for o in graph.graph.output]})")
    del graph.graph.output[:]
    graph.graph.output.extend(kept)
    onnx.checker.check_model(graph)
    dest.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(graph, str(dest))
    return dest
