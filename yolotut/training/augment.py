"""Training-time image augmentations of YOLOv5 (HSV jitter, random affine, flips, mosaic).

Every random function takes an ``np.random.Generator`` and draws from nothing else, so
an augmentation is reproducible from the generator's seed. None of them modifies its
inputs; each returns new arrays.

Label layouts (``labels`` always has the class id in column 0):

* pixel labels ``[n, 5]``: ``cls, x1, y1, x2, y2`` in pixels of the image they belong to
  (what :func:`random_affine` and :func:`mosaic4` take and return);
* normalized labels ``[n, 5]``: ``cls, cx, cy, w, h`` in ``[0, 1]`` (YOLO txt format; what
  :func:`flip_lr` / :func:`flip_ud` take and return).

The hyperparameter names are YOLOv5's (``hsv_h``, ``degrees``, ``mosaic``, ...) so that
a YOLOv5 ``hyp.*.yaml`` can be passed unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from yolotut.boxes import PAD_VALUE, xywh2xyxy, xyxy2xywh

__all__ = [
    "DEFAULT_AUGMENT_HYP",
    "PAD_VALUE",
    "augment_hyp",
    "box_candidates",
    "flip_lr",
    "flip_ud",
    "hsv_jitter",
    "mosaic4",
    "random_affine",
    "random_flips",
    "xywhn_to_xyxy",
    "xyxy_to_xywhn",
]

# YOLOv5's augmentation defaults (data/hyps/hyp.scratch-low.yaml; same values in the
# hyp.scratch.yaml the blog trained with).
DEFAULT_AUGMENT_HYP: dict[str, float] = {
    "hsv_h": 0.015,  # hue gain (fraction of the 180-step OpenCV hue circle)
    "hsv_s": 0.7,  # saturation gain
    "hsv_v": 0.4,  # value gain
    "degrees": 0.0,  # rotation (+/- degrees)
    "translate": 0.1,  # translation (+/- fraction of the image size)
    "scale": 0.5,  # scale gain (+/-)
    "shear": 0.0,  # shear (+/- degrees)
    "perspective": 0.0,  # perspective (+/- fraction); 0 keeps the transform affine
    "flipud": 0.0,  # probability of an up-down flip
    "fliplr": 0.5,  # probability of a left-right flip
    "mosaic": 1.0,  # probability of a 4-image mosaic
}


def augment_hyp(hyp: Mapping[str, Any] | None = None) -> dict[str, float]:
    """:data:`DEFAULT_AUGMENT_HYP` updated with the augmentation keys of ``hyp``.

    Other keys (learning rate, loss gains) are ignored, so a whole YOLOv5 hyp dict can
    be passed. Raises ``ValueError`` for values outside their valid range.
    """
    out = dict(DEFAULT_AUGMENT_HYP)
    if hyp:
        out.update({k: float(v) for k, v in hyp.items() if k in DEFAULT_AUGMENT_HYP})
    for key in ("flipud", "fliplr", "mosaic"):
        if not 0.0 <= out[key] <= 1.0:
            raise ValueError(f"hyp {key}={out[key]} is a probability and must lie in [0, 1]")
    for key in ("hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "shear", "perspective"):
        if out[key] < 0:
            raise ValueError(f"hyp {key}={out[key]} must be >= 0")
    if not 0.0 <= out["scale"] < 1.0:
        # scale draws a factor from [1 - scale, 1 + scale]; >= 1 allows zero/negative sizes.
        raise ValueError(f"hyp scale={out['scale']} must lie in [0, 1)")
    return out


# --- label format helpers -------------------------------------------------------------


def xywhn_to_xyxy(
    labels: np.ndarray, w: float, h: float, padw: float = 0.0, padh: float = 0.0
) -> np.ndarray:
    """Normalized ``cls, cx, cy, w, h`` -> pixel ``cls, x1, y1, x2, y2`` (+ padding offset)."""
    out = np.array(labels, dtype=np.float32, copy=True).reshape(-1, 5)
    xyxy = xywh2xyxy(out[:, 1:5] * np.array([w, h, w, h], dtype=np.float32))
    out[:, 1:5] = xyxy + np.array([padw, padh, padw, padh], dtype=np.float32)
    return out


def xyxy_to_xywhn(labels: np.ndarray, w: float, h: float, *, clip: bool = True) -> np.ndarray:
    """Pixel ``cls, x1, y1, x2, y2`` -> normalized ``cls, cx, cy, w, h``, clipped to the image."""
    out = np.array(labels, dtype=np.float32, copy=True).reshape(-1, 5)
    xyxy = out[:, 1:5]
    if clip:
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
    out[:, 1:5] = xyxy2xywh(xyxy) / np.array([w, h, w, h], dtype=np.float32)
    return out


# --- colour -----------------------------------------------------------------------------


def hsv_jitter(
    img: np.ndarray, rng: np.random.Generator, hgain: float = 0.015, sgain: float = 0.7, vgain: float = 0.4
) -> np.ndarray:
    """Random hue/saturation/value gains on a BGR uint8 image, via 256-entry lookup tables."""
    if not (hgain or sgain or vgain):
        return img.copy()
    gains = rng.uniform(-1.0, 1.0, 3) * np.array([hgain, sgain, vgain]) + 1.0
    hue, sat, val = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))
    x = np.arange(256, dtype=np.float64)
    # OpenCV's 8-bit hue runs 0..179, so hue wraps around at 180.
    lut_hue = ((x * gains[0]) % 180).astype(np.uint8)
    lut_sat = np.clip(x * gains[1], 0, 255).astype(np.uint8)
    lut_val = np.clip(x * gains[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


# --- geometry -------------------------------------------------------------------------


def box_candidates(
    before: np.ndarray,
    after: np.ndarray,
    wh_thr: float = 2.0,
    ar_thr: float = 100.0,
    area_thr: float = 0.1,
    eps: float = 1e-16,
) -> np.ndarray:
    """Mask of boxes worth keeping after a geometric transform.

    ``before`` / ``after`` are ``[n, 4]`` xyxy boxes, ``before`` already scaled by the
    transform's zoom so that areas compare. A box survives if it is wider and taller
    than ``wh_thr`` pixels, kept more than ``area_thr`` of its area (the rest was cut
    off at the border) and its aspect ratio stays below ``ar_thr``.
    """
    w1, h1 = before[:, 2] - before[:, 0], before[:, 3] - before[:, 1]
    w2, h2 = after[:, 2] - after[:, 0], after[:, 3] - after[:, 1]
    aspect = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    return (w2 > wh_thr) & (h2 > wh_thr) & (w2 * h2 / (w1 * h1 + eps) > area_thr) & (aspect < ar_thr)


def random_affine(
    img: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    *,
    degrees: float = 0.0,
    translate: float = 0.1,
    scale: float = 0.5,
    shear: float = 0.0,
    perspective: float = 0.0,
    border: tuple[int, int] = (0, 0),
) -> tuple[np.ndarray, np.ndarray]:
    """Random rotation/scale/shear/translation (optionally perspective) of image and boxes.

    ``labels`` are pixel labels of ``img``. ``border`` (rows, cols) grows (>0) or
    shrinks (<0) the output on each side; mosaic passes ``(-s//2, -s//2)`` to crop its
    ``2s`` canvas back to ``s``. Boxes are transformed by their four corners, replaced
    by the corners' enclosing box, clipped to the output and dropped when too small or
    mostly cut off (:func:`box_candidates`).
    """
    height = img.shape[0] + border[0] * 2
    width = img.shape[1] + border[1] * 2

    # Composed right to left: centre at the origin, perspective, rotate+scale, shear,
    # then move to a random point around the output centre.
    centre = np.eye(3)
    centre[0, 2] = -img.shape[1] / 2
    centre[1, 2] = -img.shape[0] / 2

    persp = np.eye(3)
    persp[2, 0] = rng.uniform(-perspective, perspective)
    persp[2, 1] = rng.uniform(-perspective, perspective)

    rot = np.eye(3)
    angle = rng.uniform(-degrees, degrees)
    zoom = rng.uniform(1 - scale, 1 + scale)
    rot[:2] = cv2.getRotationMatrix2D(center=(0, 0), angle=angle, scale=zoom)

    shr = np.eye(3)
    shr[0, 1] = math.tan(math.radians(rng.uniform(-shear, shear)))
    shr[1, 0] = math.tan(math.radians(rng.uniform(-shear, shear)))

    move = np.eye(3)
    move[0, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * width
    move[1, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * height

    m = move @ shr @ rot @ persp @ centre
    pad = (PAD_VALUE, PAD_VALUE, PAD_VALUE)
    if border != (0, 0) or not np.allclose(m, np.eye(3)):
        if perspective:
            img = cv2.warpPerspective(img, m, dsize=(width, height), borderValue=pad)
        else:
            img = cv2.warpAffine(img, m[:2], dsize=(width, height), borderValue=pad)
    else:
        img = img.copy()

    labels = np.asarray(labels, dtype=np.float32).reshape(-1, 5)
    n = len(labels)
    if n == 0:
        return img, labels.copy()

    # The four corners of every box: (x1,y1), (x2,y2), (x1,y2), (x2,y1).
    corners = np.ones((n * 4, 3))
    corners[:, :2] = labels[:, [1, 2, 3, 4, 1, 4, 3, 2]].reshape(n * 4, 2)
    corners = corners @ m.T
    xy = (corners[:, :2] / corners[:, 2:3] if perspective else corners[:, :2]).reshape(n, 8)
    xs, ys = xy[:, [0, 2, 4, 6]], xy[:, [1, 3, 5, 7]]
    boxes = np.stack([xs.min(1), ys.min(1), xs.max(1), ys.max(1)], axis=1)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)

    keep = box_candidates(labels[:, 1:5] * zoom, boxes, area_thr=0.10)
    out = np.concatenate([labels[keep, :1], boxes[keep]], axis=1).astype(np.float32)
    return img, out


def flip_lr(img: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right; ``labels`` normalized ``cls, cx, cy, w, h``."""
    out = np.array(labels, dtype=np.float32, copy=True).reshape(-1, 5)
    out[:, 1] = 1.0 - out[:, 1]
    return np.ascontiguousarray(img[:, ::-1]), out


def flip_ud(img: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror up-down; ``labels`` normalized ``cls, cx, cy, w, h``."""
    out = np.array(labels, dtype=np.float32, copy=True).reshape(-1, 5)
    out[:, 2] = 1.0 - out[:, 2]
    return np.ascontiguousarray(img[::-1]), out


def random_flips(
    img: np.ndarray, labels: np.ndarray, rng: np.random.Generator, *, fliplr: float = 0.5, flipud: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Up-down flip with probability ``flipud``, then left-right with ``fliplr`` (normalized labels)."""
    # Always draw both numbers so that the generator advances the same way whatever
    # the probabilities are.
    do_ud, do_lr = rng.random() < flipud, rng.random() < fliplr
    labels = np.asarray(labels, dtype=np.float32).reshape(-1, 5)
    if do_ud:
        img, labels = flip_ud(img, labels)
    if do_lr:
        img, labels = flip_lr(img, labels)
    return img, labels


def mosaic4(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Tile four images around a random centre of a ``2*size`` square canvas.

    ``images`` are BGR images whose long side is at most ``size`` (as the dataset loads
    them) and ``labels`` their normalized labels. The centre is drawn from the middle
    half of the canvas; image 0 goes top-left of it, 1 top-right, 2 bottom-left,
    3 bottom-right, each cut where it would leave the canvas. Returns the
    ``[2*size, 2*size, 3]`` canvas and pixel labels clipped to it. Follow with
    :func:`random_affine` and ``border=(-size // 2, -size // 2)`` to get a
    ``size x size`` training image, as YOLOv5 does.
    """
    if len(images) != 4 or len(labels) != 4:
        raise ValueError(f"mosaic4 needs exactly 4 images and 4 label arrays, got {len(images)}/{len(labels)}")
    s = int(size)
    yc, xc = (int(rng.uniform(s // 2, 2 * s - s // 2)) for _ in range(2))
    canvas = np.full((2 * s, 2 * s, images[0].shape[2]), PAD_VALUE, dtype=np.uint8)
    out_labels = []
    for i, (img, lab) in enumerate(zip(images, labels)):
        h, w = img.shape[:2]
        if max(h, w) > s:
            raise ValueError(f"mosaic4: image {i} is {w}x{h}, larger than size={s}; resize it first")
        if i == 0:  # top-left: bottom-right corner at the centre
            x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
            x1b, y1b, x2b, y2b = w - (x2a - x1a), h - (y2a - y1a), w, h
        elif i == 1:  # top-right
            x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, 2 * s), yc
            x1b, y1b, x2b, y2b = 0, h - (y2a - y1a), min(w, x2a - x1a), h
        elif i == 2:  # bottom-left
            x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(2 * s, yc + h)
            x1b, y1b, x2b, y2b = w - (x2a - x1a), 0, w, min(y2a - y1a, h)
        else:  # bottom-right
            x1a, y1a, x2a, y2a = xc, yc, min(xc + w, 2 * s), min(2 * s, yc + h)
            x1b, y1b, x2b, y2b = 0, 0, min(w, x2a - x1a), min(y2a - y1a, h)
        canvas[y1a:y2a, x1a:x2a] = img[y1b:y2b, x1b:x2b]
        # Image pixel (x, y) lands on canvas pixel (x + padw, y + padh).
        padw, padh = x1a - x1b, y1a - y1b
        out_labels.append(xywhn_to_xyxy(lab, w, h, padw, padh))
    merged = np.concatenate(out_labels, 0) if out_labels else np.zeros((0, 5), np.float32)
    merged[:, 1:5] = merged[:, 1:5].clip(0, 2 * s)
    return canvas, merged
