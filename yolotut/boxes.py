"""Letterboxing, box conversions, NMS and coordinate mapping (numpy/OpenCV, no torchvision).

Conventions (docs/ARCHITECTURE.md): decoded predictions are ``[B, N, 5 + nc]``
(``x, y, w, h`` centre in input pixels, objectness, class scores, sigmoid applied);
detections after NMS are ``[n, 6]`` float32 arrays ``x1, y1, x2, y2, conf, cls``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, TypeVar

import cv2
import numpy as np
import torch

__all__ = [
    "box_iou",
    "letterbox",
    "nms",
    "non_max_suppression",
    "scale_boxes",
    "xywh2xyxy",
    "xyxy2xywh",
]

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)

# Per-class NMS in one pass: boxes of class c are shifted by c * _MAX_WH so boxes of
# different classes can never overlap (YOLOv5's trick). Must exceed any image side.
_MAX_WH = 7680.0

PAD_VALUE = 114  # YOLOv5's letterbox and mosaic grey, in every channel


class LetterboxGeometry(NamedTuple):
    """Where a letterboxed image lies in its canvas: ``size`` = resized (w, h), then the
    borders in pixels."""

    ratio: float
    size: tuple[int, int]
    top: int
    bottom: int
    left: int
    right: int


def letterbox_geometry(
    shape: tuple[int, int],
    new_shape: int | tuple[int, int] = 640,
    auto: bool = False,
    scaleup: bool = True,
    stride: int = 32,
) -> LetterboxGeometry:
    """The resize and padding :func:`letterbox` applies to an image of ``shape`` (h, w)."""
    h0, w0 = shape
    if h0 <= 0 or w0 <= 0:
        raise ValueError(f"letterbox expects an image of positive size, got {h0} x {w0}")
    new_h, new_w = (new_shape, new_shape) if isinstance(new_shape, int) else new_shape
    r = min(new_h / h0, new_w / w0)
    if not scaleup:
        r = min(r, 1.0)
    # At least one pixel: a very thin image must not round to an empty one.
    w1, h1 = max(round(w0 * r), 1), max(round(h0 * r), 1)
    dw, dh = new_w - w1, new_h - h1
    if auto:
        dw, dh = dw % stride, dh % stride
    # Odd padding: the extra pixel goes right/bottom, as in YOLOv5.
    top, bottom = int(round(dh / 2 - 0.1)), int(round(dh / 2 + 0.1))
    left, right = int(round(dw / 2 - 0.1)), int(round(dw / 2 + 0.1))
    return LetterboxGeometry(r, (w1, h1), top, bottom, left, right)


def letterbox(
    image: np.ndarray,
    new_shape: int | tuple[int, int] = 640,
    color: tuple[int, int, int] = (PAD_VALUE,) * 3,
    auto: bool = False,
    scaleup: bool = True,
    stride: int = 32,
    interpolation: int = cv2.INTER_LINEAR,
) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping the aspect ratio, then pad to ``new_shape`` (YOLOv5's letterbox).

    Args:
        image: HxWxC (or HxW) array, typically BGR uint8.
        new_shape: target side, or ``(height, width)``.
        auto: pad only up to the next multiple of ``stride`` (minimum rectangle) instead
            of the full ``new_shape``.
        scaleup: allow enlarging; ``False`` only ever shrinks (better val mAP, YOLOv5).

    Returns:
        ``(padded, ratio, (pad_w, pad_h))``: ``ratio`` is new/old size, ``pad_w``/``pad_h``
        are the left/top borders in pixels (what :func:`scale_boxes` subtracts). If
        nothing needs resizing or padding, ``padded`` *is* ``image`` (no copy).
    """
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"letterbox expects an HxW[xC] image, got shape {image.shape}")
    g = letterbox_geometry(image.shape[:2], new_shape, auto=auto, scaleup=scaleup, stride=stride)
    if g.size != (image.shape[1], image.shape[0]):
        image = cv2.resize(image, g.size, interpolation=interpolation)
    if g.top or g.bottom or g.left or g.right:
        fill = color if image.ndim == 3 else color[0]
        image = cv2.copyMakeBorder(image, g.top, g.bottom, g.left, g.right, cv2.BORDER_CONSTANT, value=fill)
    return image, g.ratio, (float(g.left), float(g.top))


def xywh2xyxy(x: ArrayOrTensor) -> ArrayOrTensor:
    """``[..., 4+]`` centre ``x, y, w, h`` -> corners ``x1, y1, x2, y2`` (new array/tensor)."""
    y = x.clone() if isinstance(x, torch.Tensor) else np.array(x, dtype=np.result_type(x, np.float32))
    half_w, half_h = x[..., 2] / 2, x[..., 3] / 2
    y[..., 0] = x[..., 0] - half_w
    y[..., 1] = x[..., 1] - half_h
    y[..., 2] = x[..., 0] + half_w
    y[..., 3] = x[..., 1] + half_h
    return y


def xyxy2xywh(x: ArrayOrTensor) -> ArrayOrTensor:
    """``[..., 4+]`` corners ``x1, y1, x2, y2`` -> centre ``x, y, w, h`` (new array/tensor)."""
    y = x.clone() if isinstance(x, torch.Tensor) else np.array(x, dtype=np.result_type(x, np.float32))
    y[..., 0] = (x[..., 0] + x[..., 2]) / 2
    y[..., 1] = (x[..., 1] + x[..., 3]) / 2
    y[..., 2] = x[..., 2] - x[..., 0]
    y[..., 3] = x[..., 3] - x[..., 1]
    return y


def box_iou(box1: torch.Tensor, box2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Pairwise IoU ``[N, M]`` of xyxy boxes ``[N, 4]`` and ``[M, 4]``."""
    a1, a2 = box1[:, None, :2], box1[:, None, 2:4]
    b1, b2 = box2[None, :, :2], box2[None, :, 2:4]
    inter = (torch.min(a2, b2) - torch.max(a1, b1)).clamp(min=0).prod(2)
    area1 = (box1[:, 2:4] - box1[:, :2]).clamp(min=0).prod(1)
    area2 = (box2[:, 2:4] - box2[:, :2]).clamp(min=0).prod(1)
    return inter / (area1[:, None] + area2[None, :] - inter + eps)


def nms(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_det: int | None = None
) -> np.ndarray:
    """Greedy NMS: indices of kept boxes, highest score first.

    A box is suppressed when its IoU with a higher-scoring kept box is *greater* than
    ``iou_threshold`` (torchvision semantics). Each iteration handles one kept box
    against all remaining ones at once; ``max_det`` stops as soon as that many are kept
    (same result as truncating afterwards, much less work at low confidence).
    """
    boxes = np.asarray(boxes, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != (boxes.shape[0],):
        raise ValueError(f"nms expects boxes [N, 4] and scores [N], got {boxes.shape} and {scores.shape}")
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes.T
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    order = np.argsort(-scores, kind="stable")
    limit = len(boxes) if max_det is None else max_det
    keep: list[int] = []
    while order.size and len(keep) < limit:
        i, rest = order[0], order[1:]
        keep.append(i)
        if not rest.size:
            break
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        iou = inter / (areas[i] + areas[rest] - inter + 1e-7)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def non_max_suppression(
    pred: np.ndarray | torch.Tensor,
    conf_thres: float = 0.25,
    iou_thres: float = 0.45,
    classes: Sequence[int] | None = None,
    agnostic: bool = False,
    max_det: int = 300,
    multi_label: bool = False,
    max_nms: int = 30000,
) -> list[np.ndarray]:
    """YOLOv5 post-processing of decoded predictions ``[B, N, 5 + nc]``.

    Candidates need objectness > ``conf_thres``; their confidence is ``obj * cls`` and
    must also exceed ``conf_thres``. ``multi_label`` keeps every class above the
    threshold per box (use it with ``conf_thres=0.001`` for mAP evaluation), otherwise
    only the best class. NMS is per class unless ``agnostic``.

    Returns one float32 ``[n, 6]`` array (``x1, y1, x2, y2, conf, cls``) per image,
    sorted by confidence, ``n <= max_det``.
    """
    if isinstance(pred, torch.Tensor):
        pred = pred.detach().float().cpu().numpy()
    pred = np.asarray(pred)
    if pred.ndim == 2:
        pred = pred[None]
    if pred.ndim != 3 or pred.shape[2] < 6:
        raise ValueError(f"non_max_suppression expects [B, N, 5 + nc] predictions, got shape {pred.shape}")
    if not (0 <= conf_thres <= 1 and 0 <= iou_thres <= 1):
        raise ValueError(f"conf_thres and iou_thres must be in [0, 1], got {conf_thres}, {iou_thres}")
    nc = pred.shape[2] - 5
    multi_label = multi_label and nc > 1
    wanted = None if classes is None else np.asarray(classes, dtype=np.float32)
    output = []
    for x in pred:
        x = x[x[:, 4] > conf_thres]  # boolean index: a (small) copy, the input stays intact
        if not len(x):
            output.append(np.zeros((0, 6), dtype=np.float32))
            continue
        x = x.astype(np.float32, copy=False)
        cls_conf = x[:, 5:] * x[:, 4:5]
        box = xywh2xyxy(x[:, :4])
        if multi_label:
            i, j = np.nonzero(cls_conf > conf_thres)
            det = np.concatenate((box[i], cls_conf[i, j, None], j[:, None].astype(np.float32)), 1)
        else:
            j = cls_conf.argmax(1)
            conf = cls_conf[np.arange(len(j)), j]
            keep = conf > conf_thres
            det = np.concatenate((box[keep], conf[keep, None], j[keep, None].astype(np.float32)), 1)
        if wanted is not None:
            det = det[np.isin(det[:, 5], wanted)]
        if not len(det):
            output.append(np.zeros((0, 6), dtype=np.float32))
            continue
        det = det[np.argsort(-det[:, 4], kind="stable")[:max_nms]]
        offset = 0.0 if agnostic else det[:, 5:6] * _MAX_WH
        kept = nms(det[:, :4] + offset, det[:, 4], iou_thres, max_det=max_det)
        output.append(det[kept])
    return output


def scale_boxes(
    boxes: np.ndarray, ratio: float, pad: tuple[float, float], orig_shape: tuple[int, int]
) -> np.ndarray:
    """Map xyxy boxes from letterboxed-input pixels back to the original image, clipped.

    ``ratio``/``pad`` are what :func:`letterbox` returned, ``orig_shape`` is ``(h, w)``.
    Extra columns (conf, cls of an ``[n, 6]`` detection array) are carried over unchanged.
    Returns a new float32 array.
    """
    out = np.array(boxes, dtype=np.float32)
    if out.ndim != 2 or out.shape[1] < 4:
        raise ValueError(f"scale_boxes expects [n, 4+] boxes, got shape {out.shape}")
    if ratio <= 0:
        raise ValueError(f"ratio must be positive, got {ratio}")
    out[:, [0, 2]] = (out[:, [0, 2]] - pad[0]) / ratio
    out[:, [1, 3]] = (out[:, [1, 3]] - pad[1]) / ratio
    h, w = orig_shape[:2]
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out
