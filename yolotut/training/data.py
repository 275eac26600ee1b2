"""Datasets in the YOLO layout: dataset yaml, label files, the training/validation dataset.

Layout (the one Roboflow exports and YOLOv5 reads)::

    <root>/train/images/<stem>.jpg   <root>/train/labels/<stem>.txt
    <root>/valid/images/...          <root>/valid/labels/...

A label file has one object per line, ``cls cx cy w h``, the box centre and size
normalized to ``[0, 1]`` by the image width/height. A missing label file means an
image without objects (normal in YOLO datasets).

Error policy (``on_error``): ``"raise"`` stops at bad input with an error that names the
file (and line); ``"skip"`` leaves bad images out, records them in
``YoloDataset.skipped`` as ``(path, reason)`` and warns with a summary. When a dataset
is built, every label file is parsed and every image's header is checked
(``cv2.haveImageReader``: exists, non-empty, a format OpenCV decodes); this costs well
under a second per thousand images. Pixel data are decoded only when an item is read:
an image whose header is fine but whose data are not raises :class:`ImageError` then,
or, with ``"skip"``, is recorded and replaced by the next good image (in a worker
process that record stays in the worker's copy of the dataset, so only the warning
reaches the main process).
"""

from __future__ import annotations

import importlib.resources
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import cv2
import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, Dataset

from yolotut.boxes import letterbox
from yolotut.errors import InputError
from yolotut.training.augment import (
    augment_hyp,
    hsv_jitter,
    mosaic4,
    random_affine,
    random_flips,
    xywhn_to_xyxy,
    xyxy_to_xywhn,
)

__all__ = [
    "BUILTIN_DATASETS",
    "IMG_SUFFIXES",
    "DatasetConfig",
    "DatasetConfigError",
    "ImageError",
    "ImageMeta",
    "LabelError",
    "YoloDataset",
    "collate_fn",
    "create_dataloader",
    "image_to_label_path",
    "list_images",
    "load_dataset_config",
    "parse_label_file",
    "read_image",
]

IMG_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# Dataset yaml files shipped in yolotut/datasets/, by short name.
BUILTIN_DATASETS = ("pistols", "asl")
# Split names as YOLOv5 writes them in yaml -> our canonical key.
_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
# Label coordinates may overshoot [0, 1] by rounding in the exporting tool; beyond
# this the file is wrong (pixel coordinates, swapped columns, ...).
COORD_TOLERANCE = 1e-3
OnError = Literal["raise", "skip"]


class LabelError(InputError):
    """A label file (or one of its lines) is malformed; the message names file and line."""


class ImageError(InputError):
    """An image file is missing, empty, or cannot be decoded; the message names the file."""


class DatasetConfigError(InputError):
    """A dataset yaml that is not valid YAML or not a usable dataset definition; the message names it."""


# --- dataset definitions --------------------------------------------------------------


@dataclass(frozen=True)
class DatasetConfig:
    """A dataset definition: where the split image folders are and what the classes are.

    ``splits`` maps the canonical split names ``"train"``, ``"val"``, ``"test"`` to
    image folders (``"valid"`` is accepted as a synonym of ``"val"`` by
    :meth:`split_dir`). ``yaml_path`` is the file the definition came from.
    """

    name: str
    root: Path
    splits: dict[str, Path]
    names: list[str]
    nc: int
    yaml_path: Path | None = field(default=None, compare=False)

    def split_dir(self, split: str) -> Path:
        """Image folder of ``split`` (``train``, ``val``/``valid``, ``test``)."""
        key = _SPLIT_ALIASES.get(split)
        if key is None:
            raise ValueError(f"unknown split {split!r}; use one of train, val (or valid), test")
        if key not in self.splits:
            source = f" ({self.yaml_path})" if self.yaml_path else ""
            raise ValueError(
                f"dataset {self.name!r}{source} defines no {key!r} split; it has {sorted(self.splits)}"
            )
        return self.splits[key]


def _builtin_yaml(name: str) -> Path:
    return Path(str(importlib.resources.files("yolotut") / "datasets" / f"{name}.yaml"))


def _builtin_root(asset_name: str, yaml_file: Path) -> Path:
    from yolotut import assets

    try:
        return assets.fetch(asset_name)
    except assets.UnknownAssetError as exc:
        raise DatasetConfigError(f"{yaml_file}: names asset {asset_name!r}, which yolotut.assets does not know") from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        # safe_load refuses !!python/object tags (ConstructorError, a YAMLError).
        reason = " ".join(str(exc).split())
        raise DatasetConfigError(f"dataset yaml {path} is not valid YAML ({reason}); fix the file", path=path) from exc
    if not isinstance(data, dict):
        raise DatasetConfigError(f"dataset yaml {path} must be a mapping with train/val/names keys, got {type(data).__name__}")
    return data


def _parse_names(data: Mapping[str, Any], path: Path) -> list[str]:
    names = data.get("names")
    if isinstance(names, Mapping):
        # Newer YOLOv5 yaml: {0: person, 1: bicycle, ...}; ids must be 0..n-1.
        by_id = {_class_id(k): v for k, v in names.items()}
        if None in by_id or len(by_id) != len(names) or sorted(by_id) != list(range(len(by_id))):
            raise DatasetConfigError(
                f"{path}: 'names' keys must be the class ids 0..{len(names) - 1} without gaps, got {list(names)}"
            )
        names = [by_id[k] for k in range(len(by_id))]
    if not isinstance(names, list) or not names:
        raise DatasetConfigError(f"{path}: needs 'names', a non-empty list (or {{id: name}} mapping) of class names")
    names = [str(n) for n in names]
    nc = data.get("nc", len(names))
    if not isinstance(nc, int) or nc != len(names):
        raise DatasetConfigError(f"{path}: nc={nc!r} but 'names' lists {len(names)} classes; make them agree")
    return names


def _class_id(key: Any) -> int | None:
    """A ``names`` mapping key as a class id (``0`` or ``"0"``), None if it is none."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.strip().isdecimal():
        return int(key)
    return None


def _yaml_path(value: Any, yaml_file: Path, key: str) -> Path:
    """A path written in the yaml, ``~`` expanded; :class:`DatasetConfigError` if it cannot be one."""
    text = str(value)
    if "\x00" in text:
        raise DatasetConfigError(f"{yaml_file}: {key}: {text!r} contains a NUL character; fix '{key}:'", path=yaml_file)
    try:
        return Path(text).expanduser()
    except RuntimeError as exc:  # "~user" of an unknown user
        raise DatasetConfigError(f"{yaml_file}: {key}: {text!r}: {exc}; fix '{key}:'", path=yaml_file) from exc


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # e.g. a name longer than the file system allows
        return False


def _resolve_root(data: Mapping[str, Any], yaml_file: Path, base: Path | None) -> Path:
    """Dataset root from the yaml's ``path`` key.

    A relative ``path`` is tried against the yaml's folder, then against its parent
    (YOLOv5 resolves it against the YOLOv5 checkout, whose ``data/`` folder holds the
    yaml files), then against the working directory; the first existing folder wins.
    """
    raw = data.get("path") or "."
    p = _yaml_path(raw, yaml_file, "path")
    if base is not None:
        candidates = [base / p]
    elif p.is_absolute():
        candidates = [p]
    else:
        here = yaml_file.parent
        candidates = [here / p, here.parent / p, Path.cwd() / p]
    for c in candidates:
        if _is_dir(c):
            return c.resolve()
    tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise FileNotFoundError(
        f"{yaml_file}: dataset folder path={raw!r} not found (tried {tried}); fix 'path' in the yaml "
        f"or make it absolute"
    )


def load_dataset_config(name_or_path: str | os.PathLike[str]) -> DatasetConfig:
    """Read a dataset definition: a built-in name (``pistols``, ``asl``) or a yaml file.

    The yaml is in the YOLOv5 format: ``path`` (dataset root), ``train``/``val``/``test``
    (image folders, relative to the root), ``names`` (list or ``{id: name}``) and
    optionally ``nc``. Built-in definitions are resolved against the dataset asset
    (:func:`yolotut.assets.fetch`, i.e. ``$YOLOTUT_MIRROR`` or the download cache).
    Every split the yaml declares must exist; the error names the folder and the yaml.
    """
    text = os.fspath(name_or_path)
    base: Path | None = None
    if text in BUILTIN_DATASETS:
        yaml_file = _builtin_yaml(text)
        data = _read_yaml(yaml_file)
        base = _builtin_root(str(data.get("asset", text)), yaml_file)
    else:
        yaml_file = Path(text).expanduser()
        if not yaml_file.is_file():
            raise FileNotFoundError(
                f"dataset {text!r} is neither a built-in dataset ({', '.join(BUILTIN_DATASETS)}) nor an "
                f"existing yaml file"
            )
        yaml_file = yaml_file.resolve()
        data = _read_yaml(yaml_file)

    names = _parse_names(data, yaml_file)
    root = _resolve_root(data, yaml_file, base)
    splits: dict[str, Path] = {}
    for key, value in data.items():
        split = _SPLIT_ALIASES.get(str(key))
        if split is None or value in (None, ""):
            continue
        if not isinstance(value, str):
            raise DatasetConfigError(
                f"{yaml_file}: {key}: {value!r}: only a single image folder per split is supported "
                f"(not lists or .txt file lists)"
            )
        folder = _yaml_path(value, yaml_file, str(key))
        folder = folder if folder.is_absolute() else root / folder
        if not _is_dir(folder):
            raise FileNotFoundError(
                f"{yaml_file}: {key} split folder {folder} does not exist; fix '{key}:' (relative to "
                f"{root}) or fetch the dataset"
            )
        if split in splits and splits[split] != folder:
            raise DatasetConfigError(f"{yaml_file}: both 'val' and 'valid' given, pointing at different folders")
        splits[split] = folder
    if "train" not in splits and "val" not in splits:
        raise DatasetConfigError(f"{yaml_file}: needs at least a 'train' or 'val' image folder")
    return DatasetConfig(
        name=yaml_file.stem, root=root, splits=splits, names=names, nc=len(names), yaml_path=yaml_file
    )


# --- files ----------------------------------------------------------------------------


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


# --- dataset --------------------------------------------------------------------------


class ImageMeta(NamedTuple):
    """How a returned image relates to the file.

    ``orig_shape`` is the file's ``(h, w)``. For letterboxed items, a pixel ``(x, y)``
    of the file lands on ``(x * ratio[0] + pad[0], y * ratio[1] + pad[1])`` of the
    returned image. Mosaic items mix four files, so there ``ratio`` and ``pad`` are None.
    """

    orig_shape: tuple[int, int]
    ratio: tuple[float, float] | None
    pad: tuple[float, float] | None


class YoloDataset(Dataset):
    """Images of one split with their YOLO labels, letterboxed (and augmented) to ``imgsz``.

    ``dataset[i]`` is ``(img, labels, path, meta)``: ``img`` a ``uint8 [3, imgsz, imgsz]``
    RGB tensor; ``labels`` ``float32 [n, 6]`` rows ``(0, cls, cx, cy, w, h)`` normalized to
    the returned image (column 0 is filled with the batch index by :func:`collate_fn`);
    ``path`` the image file; ``meta`` an :class:`ImageMeta`.

    With ``augment=True`` an item is a mosaic with probability ``hyp['mosaic']``, else a
    letterboxed image; both then go through random affine, HSV jitter and flips
    (YOLOv5's pipeline, :mod:`yolotut.training.augment`). Augmentation draws from ``self.rng``:
    seeded by ``seed`` in the main process and re-seeded per worker and epoch by
    :func:`create_dataloader`, so a run is reproducible for a given seed and number of
    workers.

    ``max_images`` keeps a subset for quick runs: the first N images by file name, or,
    with ``subset_seed``, a seeded random sample of N. ``cache_images`` keeps the
    decoded, resized images in RAM (about ``3 * imgsz**2`` bytes each).
    """

    def __init__(
        self,
        images_dir: str | os.PathLike[str],
        nc: int,
        imgsz: int = 416,
        *,
        augment: bool = False,
        hyp: Mapping[str, Any] | None = None,
        max_images: int | None = None,
        subset_seed: int | None = None,
        on_error: OnError = "raise",
        seed: int = 0,
        cache_images: bool = False,
        names: Sequence[str] | None = None,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        if imgsz <= 0 or imgsz % 32:
            raise ValueError(f"imgsz={imgsz} must be a positive multiple of 32 (the largest YOLOv5 stride)")
        if nc < 1:
            raise ValueError(f"nc={nc} must be >= 1")
        if names is not None and len(names) != nc:
            raise ValueError(f"{len(names)} names given for nc={nc}")
        self.images_dir = Path(images_dir)
        self.nc = nc
        self.names = list(names) if names is not None else [str(i) for i in range(nc)]
        self.imgsz = int(imgsz)
        self.augment = augment
        self.hyp = augment_hyp(hyp)
        self.on_error: OnError = on_error
        self.rng = np.random.default_rng(seed)
        self.skipped: list[tuple[str, str]] = []

        files = list_images(self.images_dir)
        if not files:
            raise FileNotFoundError(
                f"no images ({', '.join(sorted(IMG_SUFFIXES))}) in {self.images_dir}; check the dataset yaml"
            )
        if max_images is not None:
            if max_images < 1:
                raise ValueError(f"max_images={max_images} must be >= 1")
            if subset_seed is None:
                files = files[:max_images]
            elif max_images < len(files):
                pick = np.random.default_rng(subset_seed).choice(len(files), size=max_images, replace=False)
                files = [files[i] for i in sorted(pick)]
        self.im_files, self.labels, self.n_missing_labels = self._validate(files)
        self._cache: list[tuple[np.ndarray, tuple[int, int]] | None] = [None] * len(self.im_files)
        if cache_images:
            for i in range(len(self.im_files)):
                self._cache[i] = self._load_resized(i)

    # -- construction ------------------------------------------------------------

    def _validate(self, files: list[Path]) -> tuple[list[Path], list[np.ndarray], int]:
        problems: list[tuple[Path, Exception]] = []
        kept: list[Path] = []
        labels: list[np.ndarray] = []
        missing = 0
        for f in files:
            reason = _check_image_header(f)
            if reason is not None:
                problems.append((f, ImageError(f"{f}: {reason}; remove or replace it")))
                continue
            label_file = image_to_label_path(f)
            if label_file.is_file():
                try:
                    lab = parse_label_file(label_file, self.nc)
                except LabelError as exc:
                    problems.append((label_file, exc))
                    continue
            else:
                missing += 1
                lab = np.zeros((0, 5), np.float32)
            kept.append(f)
            labels.append(lab)

        if problems and self.on_error == "raise":
            path, first = problems[0]
            more = f" ({len(problems) - 1} more problem(s) in {self.images_dir})" if len(problems) > 1 else ""
            raise type(first)(f"{first}{more}. Fix the file(s), or pass on_error='skip' to leave them out") from first
        for path, exc in problems:
            self.skipped.append((str(path), str(exc)))
        if problems:
            warnings.warn(
                f"{self.images_dir}: skipped {len(problems)} of {len(files)} images with bad image or label "
                f"files (first: {problems[0][1]}); the full list is in dataset.skipped",
                stacklevel=3,
            )
        if not kept:
            raise ValueError(f"{self.images_dir}: no usable images left after skipping bad files")
        if missing == len(kept):
            # Every label missing is almost always a layout error, not a dataset of
            # background images.
            warnings.warn(
                f"{self.images_dir}: none of the {len(kept)} images has a label file (looked for "
                f"{image_to_label_path(kept[0])}); labels must sit in a 'labels' folder beside 'images'",
                stacklevel=3,
            )
        return kept, labels, missing

    # -- loading -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.im_files)

    def _load_resized(self, i: int) -> tuple[np.ndarray, tuple[int, int]]:
        """Image ``i`` with its long side resized to ``imgsz``, and the file's ``(h, w)``."""
        img = read_image(self.im_files[i])
        h0, w0 = img.shape[:2]
        r = self.imgsz / max(h0, w0)
        if r != 1:
            # INTER_AREA when shrinking for evaluation (least aliasing); linear otherwise.
            interp = cv2.INTER_LINEAR if (self.augment or r > 1) else cv2.INTER_AREA
            img = cv2.resize(img, (max(1, round(w0 * r)), max(1, round(h0 * r))), interpolation=interp)
        return img, (h0, w0)

    def load_image(self, i: int) -> tuple[np.ndarray, tuple[int, int], int]:
        """``(resized BGR image, original (h, w), index actually used)`` for item ``i``.

        With ``on_error="skip"`` an undecodable image is recorded and replaced by the
        next decodable one, so the returned index can differ from ``i``.
        """
        n = len(self.im_files)
        for step in range(n):
            j = (i + step) % n
            cached = self._cache[j]
            if cached is not None:
                return cached[0], cached[1], j
            try:
                img, shape = self._load_resized(j)
                return img, shape, j
            except ImageError as exc:
                if self.on_error == "raise":
                    raise
                self.skipped.append((str(self.im_files[j]), str(exc)))
                warnings.warn(f"skipping undecodable image: {exc}", stacklevel=2)
        raise ImageError(f"{self.images_dir}: none of the {n} images can be decoded")

    def _letterboxed(self, index: int) -> tuple[np.ndarray, np.ndarray, int, ImageMeta]:
        img, (h0, w0), j = self.load_image(index)
        h, w = img.shape[:2]
        boxed, ratio, pad = letterbox(img, self.imgsz, auto=False, scaleup=self.augment)
        rw, rh = ratio if isinstance(ratio, (tuple, list)) else (ratio, ratio)
        padw, padh = float(pad[0]), float(pad[1])
        labels = xywhn_to_xyxy(self.labels[j], w * rw, h * rh, padw, padh)
        meta = ImageMeta((h0, w0), (w * rw / w0, h * rh / h0), (padw, padh))
        return boxed, labels, j, meta

    def _mosaic(self, index: int) -> tuple[np.ndarray, np.ndarray, int, ImageMeta]:
        others = self.rng.integers(0, len(self), size=3)
        order = [index, *others.tolist()]
        self.rng.shuffle(order)
        images, labels = [], []
        shape0, j0 = (0, 0), index
        for k in order:
            img, shape, j = self.load_image(k)
            images.append(img)
            labels.append(self.labels[j])
            if k == index:
                shape0, j0 = shape, j
        canvas, pix = mosaic4(images, labels, self.imgsz, self.rng)
        h = self.hyp
        border = (-self.imgsz // 2, -self.imgsz // 2)
        img, pix = random_affine(
            canvas, pix, self.rng, degrees=h["degrees"], translate=h["translate"], scale=h["scale"],
            shear=h["shear"], perspective=h["perspective"], border=border,
        )
        return img, pix, j0, ImageMeta(shape0, None, None)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str, ImageMeta]:
        h = self.hyp
        if self.augment and self.rng.random() < h["mosaic"]:
            img, pix, j, meta = self._mosaic(index)
        else:
            img, pix, j, meta = self._letterboxed(index)
            if self.augment:
                img, pix = random_affine(
                    img, pix, self.rng, degrees=h["degrees"], translate=h["translate"], scale=h["scale"],
                    shear=h["shear"], perspective=h["perspective"],
                )
        ih, iw = img.shape[:2]
        labels = xyxy_to_xywhn(pix, iw, ih, clip=True)
        # Boxes squeezed to nothing by clipping carry no signal (and break CIoU).
        labels = labels[(labels[:, 3] > 1e-3) & (labels[:, 4] > 1e-3)]
        if self.augment:
            img = hsv_jitter(img, self.rng, h["hsv_h"], h["hsv_s"], h["hsv_v"])
            img, labels = random_flips(img, labels, self.rng, fliplr=h["fliplr"], flipud=h["flipud"])

        out = torch.zeros((len(labels), 6), dtype=torch.float32)
        out[:, 1:] = torch.from_numpy(labels)
        chw = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))  # BGR HWC -> RGB CHW
        return torch.from_numpy(chw), out, str(self.im_files[j]), meta

    # -- helpers -----------------------------------------------------------------

    @classmethod
    def from_config(cls, config: DatasetConfig, split: str, **kwargs: Any) -> YoloDataset:
        """The dataset of ``split`` (``train``/``val``/``valid``/``test``) of ``config``."""
        return cls(config.split_dir(split), config.nc, names=config.names, **kwargs)

    def instance_count(self) -> np.ndarray:
        """Number of labelled objects per class, ``int64 [nc]``."""
        cls = np.concatenate([lab[:, 0] for lab in self.labels]).astype(np.int64)
        return np.bincount(cls, minlength=self.nc)


def collate_fn(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor, str, ImageMeta]],
) -> tuple[torch.Tensor, torch.Tensor, list[str], list[ImageMeta]]:
    """Stack images to ``[B, 3, H, W]`` and concatenate labels to ``[M, 6]`` with column 0 = index in batch."""
    imgs, labels, paths, metas = zip(*batch)
    tagged = []
    for i, lab in enumerate(labels):
        lab = lab.clone()
        lab[:, 0] = i
        tagged.append(lab)
    return torch.stack(imgs, 0), torch.cat(tagged, 0), list(paths), list(metas)


def _worker_init(worker_id: int) -> None:
    # OpenCV's own thread pool in every worker would oversubscribe the cores that the
    # workers already split between them.
    cv2.setNumThreads(0)
    torch.set_num_threads(1)
    info = torch.utils.data.get_worker_info()
    if info is not None and isinstance(info.dataset, YoloDataset):
        # info.seed = the loader's per-epoch base seed + worker id: fresh augmentations
        # every epoch, reproducible when the loader's generator is seeded.
        info.dataset.rng = np.random.default_rng(info.seed)


def create_dataloader(
    source: DatasetConfig | YoloDataset | str | os.PathLike[str],
    split: str = "train",
    imgsz: int = 416,
    batch_size: int = 16,
    augment: bool = False,
    workers: int = 2,
    shuffle: bool | None = None,
    max_images: int | None = None,
    hyp: Mapping[str, Any] | None = None,
    on_error: OnError = "raise",
    *,
    seed: int = 0,
    subset_seed: int | None = None,
    cache_images: bool = False,
    drop_last: bool = False,
) -> tuple[DataLoader, YoloDataset]:
    """A ``DataLoader`` of :func:`collate_fn` batches, and its :class:`YoloDataset`.

    ``source`` is a dataset name/yaml path, a :class:`DatasetConfig`, or a ready
    :class:`YoloDataset` (then ``split`` and the dataset options are not used).
    ``shuffle`` defaults to ``augment``. ``workers`` is capped at the CPU count; with
    ``workers > 0`` every worker sets ``cv2.setNumThreads(0)`` and one torch thread.
    """
    if isinstance(source, YoloDataset):
        dataset = source
    else:
        config = source if isinstance(source, DatasetConfig) else load_dataset_config(source)
        dataset = YoloDataset.from_config(
            config, split, imgsz=imgsz, augment=augment, hyp=hyp, max_images=max_images,
            subset_seed=subset_seed, on_error=on_error, seed=seed, cache_images=cache_images,
        )
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    workers = max(0, min(int(workers), os.cpu_count() or 1, len(dataset)))
    generator = torch.Generator()
    generator.manual_seed(seed)
    loader = DataLoader(
        dataset,
        batch_size=min(batch_size, len(dataset)),
        shuffle=augment if shuffle is None else shuffle,
        num_workers=workers,
        collate_fn=collate_fn,
        worker_init_fn=_worker_init if workers > 0 else None,
        generator=generator,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
    )
    return loader, dataset
