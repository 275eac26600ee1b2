"""Post-training INT8 with NNCF and ONNX Runtime: what the written files contain.

Structure, not accuracy: QDQ pairs around the convolutions, one scale per output
channel, the Detect head left in float, the metadata carried over, and (OpenVINO) that
the compiled model runs integer convolution kernels. mAP is measured by
``benchmarks/living_engines.py``; a few calibration images suffice here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from yolotut.inference.quantize import calibration_images, head_nodes, model_input

MIRROR_NEEDED = "offline asset mirror not found (set YOLOTUT_MIRROR to a copy of shared/mirror)"


def test_head_nodes_are_the_last_convolutions_and_what_follows() -> None:
    # stem -> a -> b -> head conv 1 -> sigmoid -> out; b -> head conv 2 -> out; b also -> concat -> c (a conv)
    nodes = {
        "stem": ("Conv", ["a"]),
        "a": ("Relu", ["b"]),
        "b": ("Conv", ["h1", "h2", "cat"]),
        "cat": ("Concat", ["c"]),
        "c": ("Conv", ["h3"]),
        "h1": ("Conv", ["sig"]),
        "h2": ("Convolution", ["out"]),
        "h3": ("Conv", ["out"]),
        "sig": ("Sigmoid", ["out"]),
        "out": ("Concat", []),
    }
    assert sorted(head_nodes(nodes)) == ["h1", "h2", "h3", "out", "sig"]
    assert head_nodes({"x": ("Relu", [])}) == []


def test_model_input_scales_float_and_keeps_uint8() -> None:
    image = np.full((3, 8, 8), 255, np.uint8)
    assert model_input(image, "float32").dtype == np.float32 and model_input(image, "float32").max() == 1.0
    assert model_input((image[None], "labels"), "uint8").shape == (1, 3, 8, 8)
    with pytest.raises(ValueError, match="uint8 pixels"):
        model_input(image.astype(np.float32), "float32")
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        model_input(np.zeros((8, 8, 3), np.uint8), "uint8")


def test_calibration_images_are_a_seeded_sample_of_the_training_split(mirror: Path) -> None:
    first, again, other = calibration_images(count=4), calibration_images(count=4), calibration_images(count=4, seed=1)
    assert len(first) == 4 and first.im_files == again.im_files != other.im_files
    image = first[0][0]
    assert tuple(image.shape) == (3, 416, 416) and str(image.dtype) == "torch.uint8"
    with pytest.raises(ValueError, match=">= 1"):
        calibration_images(count=0)


@pytest.fixture(scope="module")
def calibration(coco_yolov5n_onnx: Path):
    return calibration_images(count=4, imgsz=192)


def test_onnxruntime_static_writes_per_channel_qdq_with_a_float_head(coco_yolov5n_onnx: Path, calibration, tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    from yolotut.inference.engines import create_engine
    from yolotut.inference.quantize import quantize_onnxruntime_static

    out = quantize_onnxruntime_static(coco_yolov5n_onnx, calibration, tmp_path / "qdq.onnx", subset_size=4)
    model = onnx.load(str(out))
    graph = model.graph
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) == 60
    quantized, float_weights = [], []
    for conv in convs:
        weight = producers.get(conv.input[1])
        if weight is None:  # a plain float initializer
            float_weights.append(conv)
            continue
        assert weight.op_type == "DequantizeLinear"
        scale = initializers[weight.input[1]]
        out_channels = initializers[weight.input[0]].shape[0]
        assert initializers[weight.input[0]].dtype == np.int8
        assert scale.shape == (out_channels,), "one weight scale per output channel"
        assert producers[conv.input[0]].op_type == "DequantizeLinear"  # the activation is quantized too
        quantized.append(conv)
    assert len(quantized) == 57 and len(float_weights) == 3  # the Detect convs stay float
    assert all(initializers[c.input[1]].shape[0] == 85 * 3 for c in float_weights)
    meta = {p.key: p.value for p in model.metadata_props}
    assert len(json.loads(meta["names"])) == 80 and meta["imgsz"] == "192" and meta["quantized"] == "true"
    assert json.loads(meta["quantization"])["per_channel"] is True

    per_tensor = quantize_onnxruntime_static(coco_yolov5n_onnx, calibration, tmp_path / "qdq-t.onnx", per_channel=False, subset_size=4)
    dq = [n for n in onnx.load(str(per_tensor)).graph.node if n.op_type == "DequantizeLinear"]
    per_tensor_inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(per_tensor)).graph.initializer}
    weight_scales = [per_tensor_inits[n.input[1]] for n in dq if per_tensor_inits.get(n.input[0], np.zeros(0, np.uint8)).dtype == np.int8]
    assert len(weight_scales) == 57 and all(scale.ndim == 0 for scale in weight_scales)

    engine = create_engine(out, "onnxruntime")
    assert engine.infer(engine.dummy_input()).shape == (1, 3 * (24 * 24 + 12 * 12 + 6 * 6), 85)


def test_quantizers_refuse_int8_sources_and_wrong_suffixes(coco_yolov5n_onnx: Path, tmp_path: Path, mirror: Path) -> None:
    from yolotut.inference.quantize import quantize_onnxruntime_static, quantize_with_nncf

    author = mirror / "companion/yolov5-train/yolov5-deepsparse/yolov5n-sgd-pruned-quantized-hardswish/weights/best.onnx"
    with pytest.raises(ValueError, match="dense fp32 export"):
        quantize_onnxruntime_static(author, [], tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="writes OpenVINO IR"):
        quantize_with_nncf(coco_yolov5n_onnx, [], tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="writes ONNX"):
        quantize_onnxruntime_static(coco_yolov5n_onnx, [], tmp_path / "x.xml")


def test_nncf_writes_ir_that_runs_integer_convolutions(coco_yolov5n_onnx: Path, calibration, tmp_path: Path) -> None:
    from yolotut.inference.openvino_engine import openvino_unavailable_reason

    reason = openvino_unavailable_reason()
    if reason:
        pytest.skip(reason)
    from yolotut.inference.engines import create_engine
    from yolotut.inference.quantize import quantize_with_nncf

    out = quantize_with_nncf(coco_yolov5n_onnx, calibration, tmp_path / "int8.xml", subset_size=4)
    assert out.with_suffix(".bin").is_file()
    engine = create_engine(out, "openvino")
    assert (engine.imgsz, len(engine.names), engine.input_dtype) == (192, 80, "float32")
    kernels = engine.info()["kernels"]
    precisions = {}
    for key, count in kernels.items():
        precision = key.rsplit(" / ", 1)[-1]
        precisions[precision] = precisions.get(precision, 0) + count
    # 57 convolutions run integer kernels (u8 activations x i8 weights); the 3 Detect convs f32.
    assert precisions.get("f32") == 3 and precisions.get("u8", 0) + precisions.get("i8", 0) == 57, kernels
    assert engine.infer(engine.dummy_input()).shape[-1] == 85


BLOG_ONNX = "companion/yolov5-train/yolov5-deepsparse/yolov5n-sgd-pruned-quantized-hardswish/weights/best.onnx"


def _qlinear_conv_model(path: Path, weight_dtype: str) -> Path:
    """float input -> QuantizeLinear -> QLinearConv (uint8 or int8 weights, int32 bias) -> DequantizeLinear."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if weight_dtype == "uint8":
        weights, w_zero = rng.integers(100, 156, (4, 3, 3, 3)).astype(np.uint8), np.array(128, np.uint8)
    else:
        weights, w_zero = rng.integers(-28, 28, (4, 3, 3, 3)).astype(np.int8), np.array(0, np.int8)
    tensors = {
        "x_scale": np.array(0.02, np.float32), "x_zero": np.array(10, np.uint8), "w": weights,
        "w_scale": np.array(0.01, np.float32), "w_zero": w_zero, "y_scale": np.array(0.05, np.float32),
        "y_zero": np.array(3, np.uint8), "bias": rng.integers(-500, 500, 4).astype(np.int32),
    }
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "x_scale", "x_zero"], ["xq"]),
        helper.make_node("QLinearConv", ["xq", "x_scale", "x_zero", "w", "w_scale", "w_zero", "y_scale", "y_zero", "bias"],
                         ["yq"], name="conv", pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("DequantizeLinear", ["yq", "y_scale", "y_zero"], ["out_0"]),
    ]
    graph = helper.make_graph(
        nodes, "qlinear", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out_0", TensorProto.FLOAT, [1, 4, 8, 8])],
        initializer=[numpy_helper.from_array(v, k) for k, v in tensors.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), str(path))
    return path


@pytest.mark.parametrize("weight_dtype", ["uint8", "int8"])
def test_qlinear_to_qdq_computes_what_qlinearconv_computes(tmp_path: Path, weight_dtype: str) -> None:
    import onnx
    import onnxruntime as ort

    from yolotut.inference.quantize import qlinear_to_qdq

    source = _qlinear_conv_model(tmp_path / "qlinear.onnx", weight_dtype)
    rewritten = qlinear_to_qdq(source, tmp_path / "qdq.onnx")
    model = onnx.load(str(rewritten))
    ops = [n.op_type for n in model.graph.node]
    assert "QLinearConv" not in ops and ops.count("Conv") == 1 and ops.count("DequantizeLinear") == 3
    weights = {t.name: t for t in model.graph.initializer}[model.graph.node[2].input[0]]  # dequantize_w's input
    assert weights.data_type == onnx.TensorProto.INT8  # the signed form OpenVINO's integer kernels take
    x = np.random.default_rng(1).uniform(-0.2, 4.8, (1, 3, 8, 8)).astype(np.float32)
    run = lambda path: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]  # noqa: E731
    # Small weights and inputs: no int16 saturation in ONNX Runtime's u8 x s8 kernel, so the two agree
    # to the rounding of one output step.
    assert np.abs(run(source) - run(rewritten)).max() <= 0.05 + 1e-6


def test_qlinear_to_qdq_lets_openvino_run_the_authors_model_on_integer_kernels(tmp_path: Path, mirror: Path) -> None:
    pytest.importorskip("openvino")
    from yolotut.inference.engines import create_engine
    from yolotut.inference.quantize import qlinear_to_qdq

    source = mirror / BLOG_ONNX
    before = create_engine(source, "openvino", names=["pistol"]).kernels()
    assert all(key.endswith("/ f32") for key in before)  # QLinearConv read as float convolutions
    after = create_engine(qlinear_to_qdq(source, tmp_path / "author-qdq.onnx"), "openvino", names=["pistol"]).kernels()
    integer = sum(n for key, n in after.items() if not key.endswith("/ f32"))
    assert integer == 57 and sum(after.values()) == 60  # every QLinearConv; the three Detect convs stay float
    with pytest.raises(ValueError, match="no QLinearConv"):
        qlinear_to_qdq(tmp_path / "author-qdq.onnx", tmp_path / "again.onnx")
