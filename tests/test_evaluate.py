"""mAP: the YOLO -> COCO conversion (ground truth fed back scores exactly 1.0), and a real
small evaluation of the blog author's model on the pistols validation split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from yolotut.assets import mirror_root
from yolotut.inference.evaluate import coco_detections, coco_ground_truth, coco_map, yolo_labels_to_xyxy

MIRROR = mirror_root() or Path("no-asset-mirror")  # tests/conftest.py sets YOLOTUT_MIRROR
BLOG_HS = MIRROR / "companion/yolov5-train/yolov5-deepsparse/yolov5n-sgd-pruned-quantized-hardswish/weights/best.onnx"
PISTOL_LABELS = MIRROR / "companion/datasets/pistols/valid/labels"
needs_mirror = pytest.mark.skipif(not BLOG_HS.exists(), reason=f"asset mirror not found at {MIRROR}")


@pytest.fixture(autouse=True)
def _mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLOTUT_MIRROR", str(MIRROR))


def test_yolo_labels_to_pixel_xyxy() -> None:
    labels = np.array([[1, 0.5, 0.25, 0.2, 0.1]])
    out = yolo_labels_to_xyxy(labels, (200, 400))  # h=200, w=400
    np.testing.assert_allclose(out, [[1, 160, 40, 240, 60]])


def _real_ground_truth(n: int = 12) -> tuple[list[dict], list[np.ndarray]]:
    """Ground truth of the first n pistol valid label files (416 x 416 images)."""
    images, boxes = [], []
    for i, path in enumerate(sorted(PISTOL_LABELS.glob("*.txt"))[:n]):
        labels = np.loadtxt(path, ndmin=2).reshape(-1, 5)
        images.append({"id": i + 1, "file_name": path.stem + ".jpg", "height": 416, "width": 416})
        boxes.append(yolo_labels_to_xyxy(labels, (416, 416)))
    return images, boxes


def _as_detections(boxes: list[np.ndarray], score: float = 0.9) -> list[np.ndarray]:
    return [np.c_[b[:, 1:5], np.full(len(b), score), b[:, 0]] for b in boxes]


@needs_mirror
def test_ground_truth_fed_back_scores_map_one() -> None:
    images, boxes = _real_ground_truth()
    gt = coco_ground_truth(images, boxes, ["pistol"])
    assert len(gt["annotations"]) == sum(len(b) for b in boxes) > len(images)
    ann = gt["annotations"][0]
    x1, y1, x2, y2 = boxes[0][0, 1:]
    assert ann["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1])
    assert ann["area"] == pytest.approx((x2 - x1) * (y2 - y1)) and ann["iscrowd"] == 0

    dets = [d for image, det in zip(images, _as_detections(boxes)) for d in coco_detections(image["id"], det)]
    scores = coco_map(gt, dets)
    assert scores["map50"] == pytest.approx(1.0) and scores["map50_95"] == pytest.approx(1.0)
    assert scores["per_class"]["pistol"]["instances"] == len(gt["annotations"])


@needs_mirror
def test_shifted_or_missing_boxes_lower_the_map() -> None:
    images, boxes = _real_ground_truth()
    gt = coco_ground_truth(images, boxes, ["pistol"])
    dets = _as_detections(boxes)
    shifted = [d.copy() for d in dets]
    width = shifted[0][0, 2] - shifted[0][0, 0]
    shifted[0][0, [0, 2]] += 0.3 * width  # IoU ~0.54: still a hit at 0.5, a miss above 0.55
    result = coco_map(gt, [d for im, det in zip(images, shifted) for d in coco_detections(im["id"], det)])
    assert result["map50"] == pytest.approx(1.0)
    assert result["map50_95"] < 0.999
    # Detections for every other image only: precision stays 1, so AP = the recall reached.
    half = [d for im, det in zip(images[::2], dets[::2]) for d in coco_detections(im["id"], det)]
    recall = len(half) / len(gt["annotations"])
    assert coco_map(gt, half)["map50"] == pytest.approx(recall, abs=0.02)
    assert coco_map(gt, [])["map50"] == 0.0


def test_class_ids_are_kept_apart() -> None:
    images = [{"id": 1, "file_name": "a.jpg", "height": 100, "width": 100}]
    boxes = [np.array([[0, 10, 10, 50, 50], [1, 60, 60, 90, 90]], float)]
    gt = coco_ground_truth(images, boxes, ["a", "b"])
    swapped = np.array([[10, 10, 50, 50, 0.9, 1], [60, 60, 90, 90, 0.9, 0]])
    scores = coco_map(gt, coco_detections(1, swapped))
    assert scores["map50"] == 0.0 and set(scores["per_class"]) == {"a", "b"}


@needs_mirror
def test_blog_model_on_20_pistol_images_gives_plausible_map() -> None:
    from yolotut.inference.engines import EngineUnavailableError, create_engine
    from yolotut.inference.evaluate import evaluate

    try:
        engine = create_engine(BLOG_HS, "deepsparse", cores=1)
    except EngineUnavailableError:
        engine = create_engine(BLOG_HS, "onnxruntime", cores=1)
    result = evaluate(engine, "pistols", split="valid", max_images=20, progress=False, workers=0)
    print(f"{engine.name}: mAP50 {result['map50']:.3f}, mAP50-95 {result['map50_95']:.3f} on {result['images']} images")
    assert result["images"] == 20 and result["instances"] >= 20
    assert 0.3 < result["map50"] <= 1.0
    assert result["map50_95"] < result["map50"]
    assert result["engine_info"]["engine"] == engine.name


@needs_mirror
def test_class_count_mismatch_is_refused() -> None:
    from yolotut.inference.engines import create_engine
    from yolotut.inference.evaluate import evaluate

    engine = create_engine(BLOG_HS, "onnxruntime", cores=1)
    with pytest.raises(ValueError, match="predicts 1 classes"):
        evaluate(engine, "asl", split="valid", max_images=2, progress=False)


@needs_mirror
def test_evaluate_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    from yolotut.cli import main

    rc = main(["evaluate", str(BLOG_HS), "--engine", "onnxruntime", "--cores", "1", "--data", "pistols",
               "--max-images", "4", "--json"])
    assert rc == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert payload["images"] == 4 and 0.0 <= payload["map50_95"] <= payload["map50"] <= 1.0
    assert payload["dataset"] == "pistols" and payload["split"] == "valid"
