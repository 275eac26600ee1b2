"""The openvino engine: agreement with ONNX Runtime on the same files, what it records, its errors.

OpenVINO lists AMD CPUs as unsupported and has crashed compiling on some (upstream
reports since 2025.3): whether it compiles here is probed once in a subprocess, so a
crash skips these tests with the reason instead of taking pytest down.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolotut.assets import mirror_root
from yolotut.inference.engines import create_engine

MIRROR = mirror_root() or Path("no-asset-mirror")
TRAIN = MIRROR / "companion" / "yolov5-train"
BLOG_HS = TRAIN / "yolov5-deepsparse/yolov5n-sgd-pruned-quantized-hardswish/weights/best.onnx"
BUS = TRAIN / "data/images/bus.jpg"
PISTOL = MIRROR / "companion/datasets/pistols/valid/images/armas (1)_jpg.rf.c4150f819f9dc2ae75336e5b64e67d67.jpg"

# Same fp32 graph, same f32 precision: only the kernels' summation order differs.
FP32_BOX_TOLERANCE_PX = 0.01  # decoded box coordinates, input pixels (measured: 2e-4)
FP32_SCORE_TOLERANCE = 1e-4  # objectness and class scores (measured: 4e-6)
# The author's QLinearConv INT8 model: ONNX Runtime runs integer convolutions,
# OpenVINO float convolutions on the dequantized weights (see OpenVinoEngine.kernels),
# so rounding differs at every layer.
INT8_MIN_IOU = 0.9  # matched detections (measured: >= 0.98)
INT8_SCORE_TOLERANCE = 0.02  # (measured: 0.003)

_PROBE = """
import numpy as np, onnx
from onnx import TensorProto, helper, numpy_helper
w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "probe",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 32, 32])], [w])
import openvino as ov
core = ov.Core()
model = core.read_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString(), b"")
core.compile_model(model, "CPU")
"""


@pytest.fixture(scope="module")
def openvino_compiles() -> None:
    from yolotut.inference.openvino_engine import openvino_unavailable_reason

    reason = openvino_unavailable_reason()
    if reason:
        pytest.skip(reason)
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"OpenVINO cannot compile a one-conv model on this CPU (exit {done.returncode}): {done.stderr[-500:]}")


@pytest.fixture(scope="module")
def fp32_onnx(coco_yolov5n_onnx: Path, openvino_compiles: None) -> Path:
    """The official COCO yolov5n, exported fp32 at 192 px (tests/conftest.py)."""
    return coco_yolov5n_onnx


def _match(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each detection of ``a`` the best IoU with a same-class detection of ``b``."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    iou = inter / (area(a)[:, None] + area(b)[None, :] - inter)
    iou[a[:, None, 5] != b[None, :, 5]] = 0.0
    return iou


def test_fp32_predictions_agree_with_onnxruntime(fp32_onnx: Path) -> None:
    image = cv2.imread(str(BUS))
    ov_engine = create_engine(fp32_onnx, "openvino")
    ort_engine = create_engine(fp32_onnx, "onnxruntime")
    batch, _ = ort_engine.preprocess([image])
    ours, theirs = ov_engine.infer(batch), ort_engine.infer(batch)
    assert ours.shape == theirs.shape == (1, 3 * (24 * 24 + 12 * 12 + 6 * 6), 85)
    np.testing.assert_allclose(ours[..., :4], theirs[..., :4], rtol=0, atol=FP32_BOX_TOLERANCE_PX)
    np.testing.assert_allclose(ours[..., 4:], theirs[..., 4:], rtol=0, atol=FP32_SCORE_TOLERANCE)
    dets_ov, dets_ort = ov_engine.detect([image])[0], ort_engine.detect([image])[0]
    assert len(dets_ov) == len(dets_ort) >= 3  # bus.jpg: people and a bus
    np.testing.assert_allclose(dets_ov, dets_ort, rtol=0, atol=FP32_BOX_TOLERANCE_PX * 5)  # boxes scaled back x ~4


def test_info_records_precision_streams_and_kernels(fp32_onnx: Path) -> None:
    engine = create_engine(fp32_onnx, "openvino", cores=1)
    info = engine.info()
    assert info["engine"] == "openvino" and info["threads"] == 1 and info["cores"] == 1
    assert info["precision_hint"] == "f32" and info["precision_hint_requested"] == "f32"
    assert info["performance_hint"] == "LATENCY" and info["num_streams"] == 1
    assert sum(info["kernels"].values()) == 60  # every convolution of YOLOv5n, fp32 here
    assert all(key.startswith("Convolution / ") and key.endswith(" / f32") for key in info["kernels"])
    assert info["int8_compute_fraction"] == 0.0
    assert info["versions"]["openvino"][:4].isdigit()


def test_fixed_batch_pads_short_batches(fp32_onnx: Path) -> None:
    image = cv2.imread(str(BUS))
    single = create_engine(fp32_onnx, "openvino").detect([image])[0]
    pair = create_engine(fp32_onnx, "openvino", batch_size=2)
    assert pair.fixed_batch and pair.input_shape == (2, 3, 192, 192)
    np.testing.assert_allclose(pair.detect([image])[0], single, rtol=0, atol=1e-3)
    with pytest.raises(ValueError, match="built for batch 2"):
        pair.infer(pair.dummy_input()[:1])


def test_the_authors_int8_model_agrees_with_onnxruntime(openvino_compiles: None) -> None:
    if not BLOG_HS.exists():
        pytest.skip(f"asset mirror not found at {MIRROR}")
    image = cv2.imread(str(PISTOL))
    ov_engine = create_engine(BLOG_HS, "openvino", names=["pistol"])
    assert ov_engine.input_dtype == "uint8" and ov_engine.imgsz == 416
    ours = ov_engine.detect([image])[0]
    theirs = create_engine(BLOG_HS, "onnxruntime", names=["pistol"]).detect([image])[0]
    assert len(ours) == len(theirs) == 2  # the image's two pistols
    iou = _match(ours, theirs)
    best = iou.argmax(axis=1)
    assert iou.max(axis=1).min() >= INT8_MIN_IOU
    np.testing.assert_allclose(ours[:, 4], theirs[best, 4], rtol=0, atol=INT8_SCORE_TOLERANCE)


def test_precision_hint_and_options_are_checked(fp32_onnx: Path) -> None:
    with pytest.raises(ValueError, match="precision_hint must be one of"):
        create_engine(fp32_onnx, "openvino", options={"precision_hint": "int8"})
    with pytest.raises(ValueError, match="unknown openvino option"):
        create_engine(fp32_onnx, "openvino", options={"streams": 2})
    two = create_engine(fp32_onnx, "openvino", options={"num_streams": 2, "performance_hint": "THROUGHPUT"})
    assert two.info()["num_streams"] == 2 and two.info()["performance_hint"] == "THROUGHPUT"


def test_options_for_other_engines_are_refused() -> None:
    # Checked before any file is read: needs neither OpenVINO nor the model.
    with pytest.raises(ValueError, match="for the openvino engine, not 'onnxruntime'"):
        create_engine("whatever.onnx", "onnxruntime", options={"precision_hint": "f32"})


def test_ir_files_carry_names_and_size(fp32_onnx: Path, tmp_path: Path) -> None:
    import openvino as ov

    from yolotut.inference.openvino_engine import RT_INFO_KEY, read_model_info

    model = ov.Core().read_model(str(fp32_onnx))
    model.set_rt_info('["a", "b"]', [RT_INFO_KEY, "names"])
    model.set_rt_info("192", [RT_INFO_KEY, "imgsz"])
    ov.save_model(model, str(tmp_path / "m.xml"), compress_to_fp16=False)
    info = read_model_info(tmp_path / "m.xml")
    assert (info.input_dtype, info.names, info.imgsz, info.input_shape[1:]) == ("float32", ["a", "b"], 192, [3, 192, 192])
    with pytest.raises(ValueError, match=r"\.onnx or OpenVINO IR \.xml"):
        read_model_info(tmp_path / "m.bin")


def test_cli_picks_openvino_for_ir_files(tmp_path: Path) -> None:
    from yolotut.cli import _default_engine

    (tmp_path / "m.xml").write_text("<net/>")
    assert _default_engine(str(tmp_path / "m.xml"), None) == "openvino"
    assert _default_engine(str(tmp_path / "m.xml"), "onnxruntime") == "onnxruntime"
