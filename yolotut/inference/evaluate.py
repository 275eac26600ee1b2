"""mAP@0.5 and mAP@0.5:0.95 of any :class:`~yolotut.inference.engines.Engine`, scored by faster-coco-eval.

Settings follow YOLOv5's ``val.py``: images letterboxed to the engine's square input
size (no upscaling of smaller images), ``conf_thres=0.001``, ``iou_thres=0.6``,
multi-label NMS, at most 300 detections per image, boxes mapped back to the original
image. Ground truth comes straight from the YOLO label files (normalized ``cx cy w h``
times the original image size), so no letterbox round trip touches it.

The score is the COCO one (101-point interpolated AP, ``maxDets`` raised to
``max_det``); YOLOv5 prints its own AP implementation, which usually lands within a
point of it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from yolotut.inference.engines import Engine
from yolotut.progress import tqdm

if TYPE_CHECKING:  # pragma: no cover - typing only
    from yolotut.training.data import DatasetConfig


def yolo_labels_to_xyxy(labels: np.ndarray, orig_shape: tuple[int, int]) -> np.ndarray:
    """YOLO rows ``cls, cx, cy, w, h`` (normalized) -> ``[n, 5]`` ``cls, x1, y1, x2, y2`` in pixels."""
    h, w = orig_shape
    labels = np.asarray(labels, dtype=np.float64).reshape(-1, 5)
    out = np.empty_like(labels)
    out[:, 0] = labels[:, 0]
    out[:, 1] = (labels[:, 1] - labels[:, 3] / 2) * w
    out[:, 2] = (labels[:, 2] - labels[:, 4] / 2) * h
    out[:, 3] = (labels[:, 1] + labels[:, 3] / 2) * w
    out[:, 4] = (labels[:, 2] + labels[:, 4] / 2) * h
    return out


def letterboxed_to_original(
    boxes: np.ndarray, ratio: tuple[float, float], pad: tuple[float, float], orig_shape: tuple[int, int]
) -> np.ndarray:
    """xyxy boxes from letterboxed-input pixels to original pixels, clipped to the image.

    ``ratio`` is per axis ``(w, h)`` as :class:`yolotut.training.data.ImageMeta` records it: the
    dataset resizes in two steps, so the two gains can differ by a rounding pixel.
    """
    out = np.array(boxes, dtype=np.float32)
    h, w = orig_shape
    out[:, [0, 2]] = ((out[:, [0, 2]] - pad[0]) / ratio[0]).clip(0, w)
    out[:, [1, 3]] = ((out[:, [1, 3]] - pad[1]) / ratio[1]).clip(0, h)
    return out


def coco_ground_truth(
    images: Sequence[dict[str, Any]], boxes: Sequence[np.ndarray], names: Sequence[str]
) -> dict[str, Any]:
    """A COCO ground-truth dict from per-image ``[n, 5]`` ``cls, x1, y1, x2, y2`` pixel boxes.

    ``images`` are ``{"id", "file_name", "height", "width"}`` dicts, one per entry of
    ``boxes``. Category ids are class index + 1 (COCO tools treat 0 as "no category").
    """
    if len(images) != len(boxes):
        raise ValueError(f"{len(images)} images but {len(boxes)} box arrays")
    annotations = []
    for image, rows in zip(images, boxes):
        for cls, x1, y1, x2, y2 in np.asarray(rows, dtype=np.float64).reshape(-1, 5):
            w, h = x2 - x1, y2 - y1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": int(image["id"]),
                    "category_id": int(cls) + 1,
                    "bbox": [float(x1), float(y1), float(w), float(h)],
                    "area": float(w * h),
                    "iscrowd": 0,
                }
            )
    return {
        "images": [dict(image) for image in images],
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": str(n)} for i, n in enumerate(names)],
    }


def coco_detections(image_id: int, detections: np.ndarray) -> list[dict[str, Any]]:
    """``[n, 6]`` ``x1, y1, x2, y2, conf, cls`` -> COCO result dicts (``bbox`` as pixel xywh)."""
    out = []
    for x1, y1, x2, y2, conf, cls in np.asarray(detections, dtype=np.float64).reshape(-1, 6):
        out.append(
            {
                "image_id": int(image_id),
                "category_id": int(cls) + 1,
                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                "score": float(conf),
            }
        )
    return out


def coco_map(ground_truth: dict[str, Any], detections: list[dict[str, Any]], max_det: int = 300) -> dict[str, Any]:
    """COCO bbox mAP@0.5, mAP@0.5:0.95 and per-class AP with faster-coco-eval."""
    from faster_coco_eval import COCO, COCOeval_faster

    gt = COCO(ground_truth)
    dt = gt.loadRes(detections)  # an empty list is fine: every AP is then 0
    evaluator = COCOeval_faster(gt, dt, iouType="bbox")
    # COCO stops at 100 detections per image; YOLOv5 keeps up to max_det (300).
    evaluator.params.maxDets = sorted({1, 10, int(max_det)})
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    stats = evaluator.stats
    per_class: dict[str, dict[str, float | int]] = {}
    # precision: [iou thresholds, recall points, categories, area ranges, maxDets];
    # -1 marks "no ground truth for this category".
    precision = np.asarray(evaluator.eval["precision"])
    cat_ids = list(evaluator.params.catIds)
    gt_counts: dict[int, int] = {}
    for ann in ground_truth["annotations"]:
        gt_counts[ann["category_id"]] = gt_counts.get(ann["category_id"], 0) + 1
    for k, cat in enumerate(gt.loadCats(cat_ids)):
        p = precision[:, :, k, 0, -1]
        if gt_counts.get(cat["id"], 0) == 0:
            continue
        valid = p > -1
        ap = float(p[valid].mean()) if valid.any() else 0.0
        p50 = p[0]
        ap50 = float(p50[p50 > -1].mean()) if (p50 > -1).any() else 0.0
        per_class[cat["name"]] = {"ap50": ap50, "ap50_95": ap, "instances": gt_counts[cat["id"]]}
    return {"map50_95": max(float(stats[0]), 0.0), "map50": max(float(stats[1]), 0.0), "per_class": per_class}


def evaluate(
    engine: Engine,
    data: str | Path | DatasetConfig,
    split: str = "valid",
    conf_thres: float = 0.001,
    iou_thres: float = 0.6,
    max_det: int = 300,
    max_images: int | None = None,
    progress: bool = True,
    workers: int = 0,
) -> dict[str, Any]:
    """Evaluate ``engine`` on a dataset split; returns map50, map50_95, counts and engine info.

    Images load in this process by default (``workers=0``): a worker forked beside an
    engine's thread pools (DeepSparse, OpenVINO) can crash the process at shutdown, and
    reading 500 images costs a few seconds next to the inference.

    ``data`` is a dataset name (``pistols``), a dataset yaml path or a
    :class:`yolotut.training.data.DatasetConfig`. The model's number of classes must match the
    dataset's.
    """
    from yolotut.boxes import non_max_suppression
    from yolotut.training.data import DatasetConfig, create_dataloader, load_dataset_config

    cfg = data if isinstance(data, DatasetConfig) else load_dataset_config(data)
    if engine.num_classes != cfg.nc:
        raise ValueError(
            f"the model predicts {engine.num_classes} classes but dataset {cfg.name!r} ({cfg.yaml_path}) has "
            f"{cfg.nc} ({cfg.names}); evaluate it on the dataset it was trained for"
        )
    loader, dataset = create_dataloader(
        cfg, split, imgsz=engine.imgsz, batch_size=engine.batch_size, augment=False, shuffle=False,
        workers=workers, max_images=max_images,
    )
    index_of = {str(path): i for i, path in enumerate(dataset.im_files)}
    images: list[dict[str, Any]] = []
    gt_boxes: list[np.ndarray] = []
    results: list[dict[str, Any]] = []
    seen: set[int] = set()
    infer_s = 0.0
    start = time.perf_counter()
    for imgs, _labels, paths, metas in tqdm(loader, desc=f"evaluate {engine.name}", disable=not progress, unit="batch"):
        batch = engine.prepare_letterboxed(imgs.numpy())
        t0 = time.perf_counter()
        pred = engine.infer(batch)
        infer_s += time.perf_counter() - t0
        dets = non_max_suppression(
            pred[: len(paths)], conf_thres=conf_thres, iou_thres=iou_thres, multi_label=True, max_det=max_det
        )
        for path, meta, det in zip(paths, metas, dets):
            i = index_of[path]
            if i in seen:  # a skipped image replaced by its neighbour: count it once
                continue
            seen.add(i)
            image_id = len(images) + 1
            h0, w0 = meta.orig_shape
            images.append({"id": image_id, "file_name": Path(path).name, "height": int(h0), "width": int(w0)})
            gt_boxes.append(yolo_labels_to_xyxy(dataset.labels[i], meta.orig_shape))
            if len(det):
                det = np.asarray(det, dtype=np.float32).copy()
                det[:, :4] = letterboxed_to_original(det[:, :4], meta.ratio, meta.pad, meta.orig_shape)
                results.extend(coco_detections(image_id, det))
    elapsed = time.perf_counter() - start
    scores = coco_map(coco_ground_truth(images, gt_boxes, cfg.names), results, max_det=max_det)
    return {
        **scores,
        "images": len(images),
        "instances": int(sum(len(b) for b in gt_boxes)),
        "detections": len(results),
        "dataset": cfg.name,
        "split": split,
        "conf_thres": conf_thres,
        "iou_thres": iou_thres,
        "max_det": max_det,
        "seconds": elapsed,
        "infer_ms_per_batch": 1000 * infer_s / max(len(loader), 1),
        "engine_info": engine.info(),
    }

