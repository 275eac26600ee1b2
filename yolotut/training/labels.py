"""YOLO label files and images: finding them, parsing them, and refusing bad ones.

Layout (the one Roboflow exports and YOLOv5 reads)::

    <root>/train/images/<stem>.jpg   <root>/train/labels/<stem>.txt
    <root>/valid/images/...          <root>/valid/labels/...

A label file has one object per line, ``cls cx cy w h``, the box centre and size
normalized to ``[0, 1]`` by the image width/height. A missing label file means an
image without objects (normal in YOLO datasets). Errors name the file and the line.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

from yolotut.errors import InputError

IMG_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# Label coordinates may overshoot [0, 1] by rounding in the exporting tool; beyond
# this the file is wrong (pixel coordinates, swapped columns, ...).
COORD_TOLERANCE = 1e-3


class LabelError(InputError):
    """A label file (or one of its lines) is malformed; the message names file and line."""


class ImageError(InputError):
    """An image file is missing, empty, or cannot be decoded; the message names the file."""


def list_images(images_dir: str | os.PathLike[str]) -> list[Path]:
    """Image files directly inside ``images_dir``, sorted by name."""
    folder = Path(images_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMG_SUFFIXES and p.is_file())


def image_to_label_path(image: str | os.PathLike[str]) -> Path:
    """``.../images/x.jpg`` -> ``.../labels/x.txt`` (last ``images`` folder; else beside the image)."""
    p = Path(image)
    parts = list(p.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return p.with_suffix(".txt")


def parse_label_file(path: str | os.PathLike[str], nc: int) -> np.ndarray:
    """Parse a YOLO txt label file into ``float32 [n, 5]`` rows ``cls, cx, cy, w, h``.

    Blank lines are ignored. Raises :class:`LabelError` naming the file and line for
    anything else that is not five numbers with an integer class id in ``[0, nc)``,
    coordinates in ``[0, 1]`` (within :data:`COORD_TOLERANCE`, then clipped) and
    positive width and height. Polygon (segmentation) labels are rejected.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"{path}: cannot read label file: {exc}") from exc
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        reason = _label_line_problem(fields, nc)
        if reason is not None:
            raise LabelError(f"{path}:{lineno}: {reason} in line {line.strip()!r}; expected 'class cx cy w h'")
        rows.append([float(f) for f in fields])
    out = np.array(rows, dtype=np.float32).reshape(-1, 5)
    out[:, 1:] = out[:, 1:].clip(0.0, 1.0)
    return out


def _label_line_problem(fields: list[str], nc: int) -> str | None:
    """Why one split label line is invalid, or None."""
    if len(fields) != 5:
        hint = " (polygon/segment labels are not supported; convert them to boxes)" if len(fields) > 5 else ""
        return f"{len(fields)} fields instead of 5{hint}"
    try:
        values = [float(f) for f in fields]
    except ValueError:
        return "non-numeric value"
    if not all(math.isfinite(v) for v in values):
        return "non-finite value"
    cls = values[0]
    if cls != int(cls) or not 0 <= cls < nc:
        return f"class id {fields[0]} is not an integer in [0, {nc - 1}] (nc={nc})"
    if any(v < -COORD_TOLERANCE or v > 1 + COORD_TOLERANCE for v in values[1:]):
        return "coordinates outside [0, 1] (labels must be normalized by the image size)"
    if np.float32(values[3]) <= 0 or np.float32(values[4]) <= 0:
        # float32, as the labels are stored: 1e-50 is positive but would become 0
        return "non-positive box width/height"
    return None


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file to a BGR uint8 ``HxWx3`` array; :class:`ImageError` if it cannot."""
    path = Path(path)
    try:
        # imdecode of the raw bytes works for any file name (spaces, non-ASCII on Windows).
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageError(f"{path}: cannot read image file: {exc}") from exc
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None:
        raise ImageError(f"{path}: not a decodable image (corrupt, empty or unsupported format); remove or replace it")
    return img


def _check_image_header(path: Path) -> str | None:
    """Why ``path`` is not a usable image, or None. Reads only the header."""
    try:
        if path.stat().st_size == 0:
            return "empty file"
    except OSError as exc:
        return f"cannot stat: {exc}"
    if not cv2.haveImageReader(str(path)):
        return "not an image format OpenCV can decode (corrupt header or wrong extension)"
    return None
