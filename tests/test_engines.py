"""Engines: shared pre/post-processing, the blog author's ONNX models on ONNX Runtime and
DeepSparse, torch on the official yolov5n checkpoint, and the error paths."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from yolotut.assets import mirror_root
from yolotut.inference import engines
from yolotut.inference.engines import (
    DeepSparseEngine,
    Engine,
    EngineUnavailableError,
    OnnxRuntimeEngine,
    create_engine,
    read_onnx_info,
)

MIRROR = mirror_root() or Path("no-asset-mirror")  # tests/conftest.py sets YOLOTUT_MIRROR
TRAIN = MIRROR / "companion" / "yolov5-train"
BLOG_HS = TRAIN / "yolov5-deepsparse/yolov5n-sgd-pruned-quantized-hardswish/weights/best.onnx"
BLOG_SILU = TRAIN / "yolov5-deepsparse/yolov5n-sgd-pruned-quantized/weights/best.onnx"
PISTOL_IMAGES = MIRROR / "companion/datasets/pistols/valid/images"
# One valid image with two clearly visible pistols (labels: two boxes, class 0).
PISTOL = "armas (1)_jpg.rf.c4150f819f9dc2ae75336e5b64e67d67"

pytestmark = pytest.mark.skipif(not BLOG_HS.exists(), reason=f"asset mirror not found at {MIRROR}")


@pytest.fixture(autouse=True)
def _mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLOTUT_MIRROR", str(MIRROR))


def _pistol() -> tuple[np.ndarray, np.ndarray]:
    """The test image (BGR) and its ground-truth boxes [n, 4] xyxy in pixels."""
    image = cv2.imread(str(PISTOL_IMAGES / f"{PISTOL}.jpg"))
    labels = np.loadtxt(PISTOL_IMAGES.parent / "labels" / f"{PISTOL}.txt", ndmin=2)
    h, w = image.shape[:2]
    cx, cy, bw, bh = labels[:, 1] * w, labels[:, 2] * h, labels[:, 3] * w, labels[:, 4] * h
    return image, np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between [n, 4] and [m, 4] xyxy boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


class _FixedEngine(Engine):
    """Returns a prediction given in letterboxed input pixels: tests the shared code alone."""

    name = "fixed"

    def __init__(self, pred: np.ndarray, dtype: str = "float32", batch_size: int = 1, fixed: bool = False) -> None:
        super().__init__("fixed.onnx", batch_size, 64, dtype, ["a", "b"], fixed_batch=fixed)
        self.pred = pred

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self._check_batch(batch)
        return np.repeat(self.pred[None], batch.shape[0], axis=0)

    def _engine_info(self) -> dict:
        return {"cores": 1}


# --- shared pre/post-processing -----------------------------------------------------------


def test_preprocess_letterboxes_bgr_to_rgb_chw_in_engine_dtype() -> None:
    # 32x64 (h x w) image: left half blue, right half red (BGR).
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :32] = (255, 0, 0)
    image[:, 32:] = (0, 0, 255)
    eng = _FixedEngine(np.zeros((1, 7), np.float32), dtype="float32")
    batch, metas = eng.preprocess([image])
    assert batch.shape == (1, 3, 64, 64) and batch.dtype == np.float32
    assert metas[0].orig_shape == (32, 64) and metas[0].pad == (0.0, 16.0)
    # RGB order, scaled to [0, 1]; grey (114) letterbox bars above and below.
    np.testing.assert_allclose(batch[0, :, 32, 5], [0, 0, 1])
    np.testing.assert_allclose(batch[0, :, 32, 60], [1, 0, 0])
    np.testing.assert_allclose(batch[0, :, 2, 5], [114 / 255] * 3, rtol=1e-6)

    eng8 = _FixedEngine(np.zeros((1, 7), np.float32), dtype="uint8")
    batch8, _ = eng8.preprocess([image], out=eng8.new_input_buffer())
    assert batch8.dtype == np.uint8
    np.testing.assert_array_equal(batch8[0, :, 32, 60], [255, 0, 0])


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_preprocess_is_letterbox_then_rgb_chw_exactly(dtype: str) -> None:
    from yolotut.boxes import letterbox

    rng = np.random.default_rng(0)
    eng = _FixedEngine(np.zeros((1, 7), np.float32), dtype=dtype)
    buffer = eng.new_input_buffer()
    # Wide, tall, square, odd sizes (uneven borders), smaller and larger than the input.
    for h, w in [(32, 64), (64, 32), (64, 64), (33, 71), (338, 640), (5, 300), (63, 64), (17, 17), (1080, 1920)]:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        batch, metas = eng.preprocess([image], out=buffer)  # reused: stale borders must be overwritten
        boxed, ratio, pad = letterbox(image, (eng.imgsz, eng.imgsz), auto=False)
        expected = boxed[..., ::-1].transpose(2, 0, 1)
        if dtype == "float32":
            expected = expected.astype(np.float32) * np.float32(1 / 255)
        np.testing.assert_array_equal(batch[0], expected, err_msg=f"{h} x {w}")
        assert (metas[0].ratio, metas[0].pad) == (ratio, pad)


def test_fixed_batch_engines_pad_by_repeating_and_drop_padding_after_nms() -> None:
    # One box at input pixels centre (32, 32), 16 x 8, class 1.
    pred = np.array([[32, 32, 16, 8, 0.9, 0.1, 0.95]], np.float32)
    eng = _FixedEngine(pred, batch_size=3, fixed=True)
    image = np.full((32, 64, 3), 50, np.uint8)  # letterboxed with ratio 1, pad (0, 16)
    batch, metas = eng.preprocess([image])
    assert batch.shape[0] == 3
    np.testing.assert_array_equal(batch[1], batch[0])
    dets = eng.postprocess(eng.infer(batch), metas, conf_thres=0.25)
    assert len(dets) == 1
    x1, y1, x2, y2, conf, cls = dets[0][0]
    # Back in the original 64 x 32 image: y shifts up by the 16-pixel top pad.
    np.testing.assert_allclose([x1, y1, x2, y2], [24, 12, 40, 20], atol=1e-4)
    assert cls == 1 and conf == pytest.approx(0.9 * 0.95, rel=1e-5)


def test_preprocess_rejects_more_images_than_the_batch() -> None:
    eng = _FixedEngine(np.zeros((1, 7), np.float32), batch_size=1)
    with pytest.raises(ValueError, match="do not fit"):
        eng.preprocess([np.zeros((8, 8, 3), np.uint8)] * 2)


# --- the blog author's models -----------------------------------------------------------


def test_read_onnx_info_of_blog_model() -> None:
    info = read_onnx_info(BLOG_HS)
    assert info.input_name == "input"
    assert info.input_dtype == "uint8"
    assert info.input_shape[1:] == [3, 416, 416]
    assert info.static_batch is None and info.static_imgsz == 416
    assert info.names is None  # the author's export carries no metadata


def test_onnxruntime_runs_blog_model_and_finds_the_pistols() -> None:
    eng = create_engine(BLOG_HS, "onnxruntime", cores=1)
    assert isinstance(eng, OnnxRuntimeEngine)
    assert eng.imgsz == 416 and eng.input_dtype == "uint8" and not eng.fixed_batch
    image, gt = _pistol()
    batch, metas = eng.preprocess([image])
    pred = eng.infer(batch)
    assert pred.shape == (1, 10647, 6) and pred.dtype == np.float32
    assert eng.num_classes == 1
    det = eng.postprocess(pred, metas, conf_thres=0.25)[0]
    assert len(det) >= len(gt)
    # Every labelled pistol is found (IoU > 0.5) in original-image coordinates.
    assert (_iou(gt, det[:, :4]).max(axis=1) > 0.5).all()
    info = eng.info()
    assert info["engine"] == "onnxruntime" and info["input_dtype"] == "uint8" and info["cores"] == 1
    assert "onnxruntime" in info["versions"]


def test_asset_name_resolves_and_names_the_pistol_class() -> None:
    eng = create_engine("blog-yolov5n-pq-silu", "onnxruntime", cores=1)
    assert eng.names == ["pistol"]
    assert Path(eng.model_path).name == "best.onnx"


def test_deepsparse_matches_onnxruntime_at_batch_2() -> None:
    ort_eng = create_engine(BLOG_SILU, "onnxruntime", batch_size=2, cores=1)
    try:
        ds_eng = create_engine(BLOG_SILU, "deepsparse", batch_size=2, cores=1)
    except EngineUnavailableError as exc:
        pytest.skip(str(exc))
    assert isinstance(ds_eng, DeepSparseEngine) and ds_eng.fixed_batch
    image, gt = _pistol()
    batch, metas = ds_eng.preprocess([image])  # one image, padded to the fixed batch of 2
    assert batch.shape == (2, 3, 416, 416)
    pred_ds = ds_eng.infer(batch)
    pred_ort = ort_eng.infer(batch)
    assert pred_ds.shape == pred_ort.shape == (2, 10647, 6)
    # Same INT8 graph: boxes agree to well under a pixel, scores to a few 1e-3.
    np.testing.assert_allclose(pred_ds[..., :4], pred_ort[..., :4], atol=0.5)
    np.testing.assert_allclose(pred_ds[..., 4:], pred_ort[..., 4:], atol=5e-3)
    det = ds_eng.postprocess(pred_ds, metas)
    assert len(det) == 1 and (_iou(gt, det[0][:, :4]).max(axis=1) > 0.5).all()
    with pytest.raises(ValueError, match="batch 2"):
        ds_eng.infer(batch[:1])
    assert ds_eng.info()["cores"] == 1


def test_deepsparse_rewrites_a_static_batch_of_one(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(BLOG_HS))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    static = tmp_path / "static1.onnx"
    onnx.save(model, str(static))
    # ONNX Runtime cannot change a static batch: clear error naming the fix.
    with pytest.raises(ValueError, match="fixed batch size of 1"):
        create_engine(static, "onnxruntime", batch_size=4)
    try:
        eng = create_engine(static, "deepsparse", batch_size=4, cores=1)
    except EngineUnavailableError as exc:
        pytest.skip(str(exc))
    assert eng.infer(eng.dummy_input()).shape == (4, 10647, 6)


def test_deepsparse_unavailable_raises_engine_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "deepsparse_unavailable_reason", lambda: "no AVX2 on this CPU")
    with pytest.raises(EngineUnavailableError, match="no AVX2"):
        create_engine(BLOG_HS, "deepsparse")


# --- torch --------------------------------------------------------------------------------


def test_torch_engine_detects_people_on_bus_with_yolov5n() -> None:
    pytest.importorskip("yolotut.models")
    eng = create_engine("yolov5n", "pytorch", imgsz=320, cores=1)
    assert eng.input_dtype == "float32" and eng.imgsz == 320
    assert len(eng.names) == 80 and eng.names[0] == "person"
    image = cv2.imread(str(TRAIN / "data/images/bus.jpg"))
    det = eng.detect([image], conf_thres=0.4)[0]
    classes = det[:, 5].astype(int)
    assert (classes == 0).sum() >= 3  # bus.jpg shows four people
    h, w = image.shape[:2]
    assert det[:, [0, 2]].min() >= 0 and det[:, [0, 2]].max() <= w
    assert det[:, [1, 3]].max() <= h
    assert eng.info()["engine"] == "pytorch" and eng.info()["precision"] == "fp32"


def test_torch_engine_from_an_in_memory_model() -> None:
    models = pytest.importorskip("yolotut.models")
    model = models.build_model("n", num_classes=2)
    eng = create_engine(model, "pytorch", imgsz=64)
    pred = eng.infer(eng.dummy_input())
    assert pred.shape == (1, 3 * (8 * 8 + 4 * 4 + 2 * 2), 7)
    assert eng.num_classes == 2


def test_cuda_request_without_gpu_is_unavailable() -> None:
    torch = pytest.importorskip("pytorch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(EngineUnavailableError, match="cuda"):
        create_engine("yolov5n", "pytorch", device="cuda")


# --- factory errors -----------------------------------------------------------------------


def test_create_engine_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="torch engine runs .pt"):
        create_engine(BLOG_HS, "pytorch")
    with pytest.raises(ValueError, match="unknown engine"):
        create_engine(BLOG_HS, "tensorrt")
    with pytest.raises(FileNotFoundError, match="not found"):
        create_engine(tmp_path / "missing.onnx", "onnxruntime")
    fake_pt = tmp_path / "model.pt"
    fake_pt.write_bytes(b"")
    with pytest.raises(ValueError, match="runs .onnx"):
        create_engine(fake_pt, "deepsparse")


def test_deepsparse_warns_when_it_falls_back_to_onnxruntime(qdq_weight_conv_onnx) -> None:
    """A float conv with a QuantizeLinear -> DequantizeLinear weight: DeepSparse 1.8
    cannot compile it and would quietly run the graph in its ONNX Runtime fallback."""
    from yolotut.inference.engines import DeepSparseEngine

    path = qdq_weight_conv_onnx(c_in=3, c_out=6, kernel=3, size=32, detector_output=True)
    with pytest.warns(RuntimeWarning, match="ONNX Runtime fallback"):
        DeepSparseEngine(str(path), batch_size=1, imgsz=32)
