"""The training and validation dataset: YOLO images and labels, letterboxed and augmented.

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

The dataset yaml lives in :mod:`yolotut.training.dataset_config`, label and image files
in :mod:`yolotut.training.labels`; their names are importable from here too.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from yolotut.boxes import letterbox
from yolotut.training.augment import (
    augment_hyp,
    hsv_jitter,
    mosaic4,
    random_affine,
    random_flips,
    xywhn_to_xyxy,
    xyxy_to_xywhn,
)
from yolotut.training.dataset_config import BUILTIN_DATASETS, DatasetConfig, DatasetConfigError, load_dataset_config
from yolotut.training.labels import (
    IMG_SUFFIXES,
    ImageError,
    LabelError,
    _check_image_header,
    image_to_label_path,
    list_images,
    parse_label_file,
    read_image,
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

OnError = Literal["raise", "skip"]


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
