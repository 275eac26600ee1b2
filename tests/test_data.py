"""yolotut.training.data and yolotut.training.augment: dataset yaml, labels, error policy, augmentations."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from yolotut.training import augment
from yolotut.training.augment import (
    augment_hyp,
    flip_lr,
    flip_ud,
    hsv_jitter,
    mosaic4,
    random_affine,
    xywhn_to_xyxy,
    xyxy_to_xywhn,
)
from yolotut.training.data import (
    DatasetConfig,
    ImageError,
    LabelError,
    YoloDataset,
    collate_fn,
    create_dataloader,
    image_to_label_path,
    load_dataset_config,
    parse_label_file,
)

# --- synthetic datasets -----------------------------------------------------------------


def _write_image(path: Path, w: int = 64, h: int = 48, color: tuple[int, int, int] = (40, 90, 200)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), color, np.uint8)
    assert cv2.imwrite(str(path), img)


def _make_split(root: Path, items: dict[str, str | None], w: int = 64, h: int = 48) -> Path:
    """``items``: image file name -> label text (None: no label file)."""
    images = root / "images"
    for name, label in items.items():
        _write_image(images / name, w, h)
        if label is not None:
            lab = image_to_label_path(images / name)
            lab.parent.mkdir(parents=True, exist_ok=True)
            lab.write_text(label)
    return images


# --- dataset definitions ----------------------------------------------------------------


def test_builtin_pistols_config(mirror: Path) -> None:
    cfg = load_dataset_config("pistols")
    assert cfg.names == ["pistol"] and cfg.nc == 1
    assert cfg.root == (mirror / "companion" / "datasets" / "pistols").resolve()
    assert cfg.split_dir("valid") == cfg.split_dir("val") == cfg.root / "valid" / "images"
    assert cfg.split_dir("train").is_dir()


def test_builtin_asl_config(mirror: Path) -> None:
    cfg = load_dataset_config("asl")
    assert cfg.nc == 26 and cfg.names[0] == "A" and cfg.names[-1] == "Z"
    # 'Y' and 'N' must stay strings, not YAML booleans.
    assert cfg.names[13] == "N" and cfg.names[24] == "Y"
    assert set(cfg.splits) == {"train", "val", "test"}


def test_blog_yaml_relative_path_resolves(mirror: Path) -> None:
    """The blog's yaml says path: ../datasets/pistols, relative to its YOLOv5 checkout."""
    yaml_file = mirror / "companion" / "yolov5-train" / "data" / "pistols.yaml"
    cfg = load_dataset_config(str(yaml_file))
    assert cfg.root == (mirror / "companion" / "datasets" / "pistols").resolve()
    assert cfg.split_dir("val").name == "images" and cfg.split_dir("val").parent.name == "valid"
    assert cfg.names == ["pistol"]
    asl = load_dataset_config(mirror / "companion" / "yolov5-train" / "data" / "asl.yaml")
    assert asl.nc == 26 and asl.split_dir("test").is_dir()


def test_yaml_names_dict_and_valid_synonym(tmp_path: Path) -> None:
    _make_split(tmp_path / "ds" / "tr", {"a.jpg": "0 0.5 0.5 0.2 0.2\n"})
    _make_split(tmp_path / "ds" / "va", {"b.jpg": "1 0.5 0.5 0.2 0.2\n"})
    y = tmp_path / "ds.yaml"
    y.write_text("path: ds\ntrain: tr/images\nvalid: va/images\nnames:\n  0: cat\n  1: dog\n")
    cfg = load_dataset_config(y)
    assert isinstance(cfg, DatasetConfig)
    assert cfg.names == ["cat", "dog"] and cfg.nc == 2
    assert cfg.split_dir("val") == cfg.split_dir("valid") == (tmp_path / "ds" / "va" / "images").resolve()
    with pytest.raises(ValueError, match="no 'test' split"):
        cfg.split_dir("test")


def test_yaml_missing_split_names_folder_and_yaml(tmp_path: Path) -> None:
    _make_split(tmp_path / "tr", {"a.jpg": None})
    y = tmp_path / "broken.yaml"
    y.write_text("path: .\ntrain: tr/images\nval: nowhere/images\nnames: [x]\n")
    with pytest.raises(FileNotFoundError) as err:
        load_dataset_config(y)
    msg = str(err.value)
    assert "broken.yaml" in msg and str(tmp_path / "nowhere" / "images") in msg


def test_yaml_nc_mismatch_and_unknown_name(tmp_path: Path) -> None:
    _make_split(tmp_path / "tr", {"a.jpg": None})
    y = tmp_path / "bad.yaml"
    y.write_text("train: tr/images\nnc: 3\nnames: [a, b]\n")
    with pytest.raises(ValueError, match="nc=3"):
        load_dataset_config(y)
    with pytest.raises(FileNotFoundError, match="neither a built-in dataset"):
        load_dataset_config("no-such-dataset")


# --- label files ----------------------------------------------------------------------


def test_parse_label_file_ok(tmp_path: Path) -> None:
    f = tmp_path / "x (1).txt"
    f.write_text("0 0.5 0.5 0.25 0.5\n\n2 0.1 0.2 0.1 0.1\n1 1.0004 0.5 0.1 0.2\n")
    lab = parse_label_file(f, nc=3)
    assert lab.dtype == np.float32 and lab.shape == (3, 5)
    np.testing.assert_allclose(lab[0], [0, 0.5, 0.5, 0.25, 0.5])
    assert lab[:, 1:].max() <= 1.0  # rounding overshoot clipped


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("0 0.5 0.5 0.2", "4 fields"),
        ("0 0.5 0.5 0.2 0.2 0.3 0.4", "polygon"),
        ("0 0.5 abc 0.2 0.2", "non-numeric"),
        ("3 0.5 0.5 0.2 0.2", "class id 3"),
        ("-1 0.5 0.5 0.2 0.2", "class id -1"),
        ("0.5 0.5 0.5 0.2 0.2", "class id 0.5"),
        ("0 1.2 0.5 0.2 0.2", "outside [0, 1]"),
        ("0 120 80 30 40", "outside [0, 1]"),
        ("0 0.5 0.5 0 0.2", "non-positive"),
        ("0 0.5 nan 0.2 0.2", "non-finite"),
    ],
)
def test_parse_label_file_errors_name_file_and_line(tmp_path: Path, line: str, needle: str) -> None:
    f = tmp_path / "img (3).txt"
    f.write_text(f"0 0.5 0.5 0.2 0.2\n{line}\n")
    with pytest.raises(LabelError) as err:
        parse_label_file(f, nc=3)
    msg = str(err.value)
    assert f"{f}:2:" in msg and needle in msg


def test_image_to_label_path_uses_last_images_folder() -> None:
    p = Path("/data/images/set/train/images/armas (12)_jpg.rf.x.jpg")
    assert image_to_label_path(p) == Path("/data/images/set/train/labels/armas (12)_jpg.rf.x.txt")


# --- dataset: error policy --------------------------------------------------------------


def _bad_split(tmp_path: Path) -> Path:
    images = _make_split(
        tmp_path,
        {
            "good (1).jpg": "0 0.5 0.5 0.5 0.5\n",
            "no label.jpg": None,
            "bad label.jpg": "0 0.5 0.5 0.5\n",
        },
    )
    (images / "corrupt (2).jpg").write_bytes(b"this is not a jpeg")
    (images / "empty.png").write_bytes(b"")
    return images


def test_dataset_raise_names_the_bad_file(tmp_path: Path) -> None:
    images = _bad_split(tmp_path)
    with pytest.raises((ImageError, LabelError)) as err:
        YoloDataset(images, nc=1, imgsz=64)
    msg = str(err.value)
    # Files are checked in name order: "bad label.jpg" comes first.
    assert "bad label.txt:1:" in msg and "more problem" in msg and "on_error='skip'" in msg


def test_dataset_skip_records_and_warns(tmp_path: Path) -> None:
    images = _bad_split(tmp_path)
    with pytest.warns(UserWarning, match="skipped 3 of 5"):
        ds = YoloDataset(images, nc=1, imgsz=64, on_error="skip")
    assert len(ds) == 2
    assert ds.n_missing_labels == 1
    reasons = dict(ds.skipped)
    assert set(Path(p).name for p in reasons) == {"bad label.txt", "corrupt (2).jpg", "empty.png"}
    assert "empty file" in reasons[str(images / "empty.png")]
    img, labels, path, meta = ds[0]  # "good (1).jpg"
    assert Path(path).name == "good (1).jpg" and labels.shape == (1, 6)


def test_corrupt_pixels_behind_a_valid_header(tmp_path: Path) -> None:
    """A JPEG header followed by garbage passes the cheap check and fails on decode."""
    images = _make_split(tmp_path, {"a.jpg": "0 0.5 0.5 0.2 0.2\n", "b.jpg": None})
    data = (images / "a.jpg").read_bytes()
    (images / "a.jpg").write_bytes(data[:20])
    ds = YoloDataset(images, nc=1, imgsz=64)
    with pytest.raises(ImageError, match="a.jpg"):
        ds[0]
    ds = YoloDataset(images, nc=1, imgsz=64, on_error="skip")
    with pytest.warns(UserWarning, match="a.jpg"):
        _, labels, path, _ = ds[0]
    assert Path(path).name == "b.jpg" and len(labels) == 0  # replaced by the next image
    assert [Path(p).name for p, _ in ds.skipped] == ["a.jpg"]


def test_all_labels_missing_warns(tmp_path: Path) -> None:
    images = _make_split(tmp_path, {"a.jpg": None, "b.jpg": None})
    with pytest.warns(UserWarning, match="none of the 2 images has a label file"):
        YoloDataset(images, nc=1, imgsz=64)


def test_empty_folder_and_bad_options(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        YoloDataset(tmp_path / "images", nc=1)
    images = _make_split(tmp_path / "x", {"a.jpg": None})
    with pytest.raises(ValueError, match="multiple of 32"):
        YoloDataset(images, nc=1, imgsz=100)
    with pytest.raises(ValueError, match="on_error"):
        YoloDataset(images, nc=1, on_error="ignore")  # type: ignore[arg-type]


# --- dataset: items ---------------------------------------------------------------------


def test_letterbox_item_maps_labels(tmp_path: Path) -> None:
    """A 128x64 image letterboxed to 64: labels follow the scale and the vertical padding."""
    images = _make_split(tmp_path, {"wide.jpg": "0 0.25 0.5 0.25 0.5\n"}, w=128, h=64)
    ds = YoloDataset(images, nc=1, imgsz=64)
    img, labels, _, meta = ds[0]
    assert img.shape == (3, 64, 64) and img.dtype == torch.uint8
    assert meta.orig_shape == (64, 128)
    assert meta.ratio == pytest.approx((0.5, 0.5))
    assert meta.pad == pytest.approx((0.0, 16.0))
    # Box centre (32, 32) px, size 32x32 in the file -> (16, 16+16) and 16x16 in 64x64.
    np.testing.assert_allclose(labels[0].numpy(), [0, 0, 16 / 64, 32 / 64, 16 / 64, 16 / 64], atol=1e-5)
    # Padding is YOLOv5 grey, the image is RGB now (written as BGR (40, 90, 200)).
    assert img[:, 0, 0].tolist() == [114, 114, 114]
    assert img[:, 32, 32].tolist() == pytest.approx([200, 90, 40], abs=2)


def test_pistols_val_items_match_label_files(mirror: Path) -> None:
    cfg = load_dataset_config("pistols")
    ds = YoloDataset.from_config(cfg, "val", imgsz=416, max_images=4)
    assert [p.name for p in ds.im_files] == sorted(p.name for p in ds.im_files)
    for i in range(len(ds)):
        img, labels, path, meta = ds[i]
        assert " " in Path(path).name and "(" in Path(path).name  # real Roboflow names
        assert img.shape == (3, 416, 416)
        expected = parse_label_file(image_to_label_path(path), 1)
        np.testing.assert_allclose(labels[:, 1:].numpy(), expected, atol=1e-5)  # 416 -> 416 is identity


def test_max_images_subsets_are_deterministic(mirror: Path) -> None:
    cfg = load_dataset_config("pistols")
    first = YoloDataset.from_config(cfg, "val", max_images=5)
    full = sorted(p.name for p in cfg.split_dir("val").iterdir())
    assert [p.name for p in first.im_files] == full[:5]
    a = YoloDataset.from_config(cfg, "val", max_images=5, subset_seed=1)
    b = YoloDataset.from_config(cfg, "val", max_images=5, subset_seed=1)
    c = YoloDataset.from_config(cfg, "val", max_images=5, subset_seed=2)
    assert a.im_files == b.im_files and a.im_files != c.im_files and len(a) == 5


def test_collate_sets_batch_index(mirror: Path) -> None:
    loader, ds = create_dataloader("pistols", "val", imgsz=416, batch_size=4, workers=0, max_images=4)
    imgs, targets, paths, metas = next(iter(loader))
    assert imgs.shape == (4, 3, 416, 416) and imgs.dtype == torch.uint8
    counts = [len(ds.labels[i]) for i in range(4)]
    assert targets.shape == (sum(counts), 6)
    assert targets[:, 0].tolist() == [float(i) for i, n in enumerate(counts) for _ in range(n)]
    assert len(paths) == len(metas) == 4
    # collate must not alter the items themselves
    items = [ds[0], ds[1]]
    _, direct, _, _ = collate_fn(items)
    assert (items[1][1][:, 0] == 0).all() and (direct[-len(items[1][1]) :, 0] == 1).all()


def test_augmented_loader_labels_valid_and_seeded(mirror: Path) -> None:
    def batches(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        loader, _ = create_dataloader(
            "asl", "train", imgsz=256, batch_size=4, augment=True, workers=0, max_images=8, seed=seed,
            hyp={"degrees": 10.0, "shear": 3.0},
        )
        return [(x, y) for x, y, _, _ in loader]

    a, b, c = batches(0), batches(0), batches(1)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not all(torch.equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))
    for x, y in a + c:
        assert x.shape == (4, 3, 256, 256)
        boxes = y[:, 2:]
        assert (boxes >= 0).all() and (boxes <= 1).all()
        assert (boxes[:, 2:] > 0).all()
        assert ((y[:, 1] >= 0) & (y[:, 1] < 26)).all()


def test_loader_with_workers(mirror: Path) -> None:
    loader, ds = create_dataloader("pistols", "train", imgsz=256, batch_size=4, augment=True, workers=2, max_images=8)
    epoch1 = [x for x, _, _, _ in loader]
    epoch2 = [x for x, _, _, _ in loader]
    assert sum(len(x) for x in epoch1) == 8
    # Workers are re-seeded every epoch: augmentations must differ between epochs.
    assert not all(torch.equal(a, b) for a, b in zip(epoch1, epoch2))


# --- augmentations ------------------------------------------------------------------------


def _rect_image(size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """Black image (h, w) with a filled white rectangle x1, y1, x2, y2 (exclusive)."""
    img = np.zeros((*size, 3), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 255
    return img


def _white_bbox(img: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(img[:, :, 0] > 200)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def _assert_covers(label_xyxy: np.ndarray, img: np.ndarray, tol: float) -> None:
    pix = _white_bbox(img)
    assert label_xyxy[0] <= pix[0] + tol and label_xyxy[1] <= pix[1] + tol
    assert label_xyxy[2] >= pix[2] - tol and label_xyxy[3] >= pix[3] - tol


def test_flips_move_boxes_with_pixels() -> None:
    img = _rect_image((60, 80), (10, 5, 30, 25))
    lab = xyxy_to_xywhn(np.array([[0, 10, 5, 30, 25]], np.float32), 80, 60)
    for flip in (flip_lr, flip_ud):
        out, out_lab = flip(img, lab)
        assert out.shape == img.shape
        box = xywhn_to_xyxy(out_lab, 80, 60)[0, 1:]
        np.testing.assert_allclose(box, _white_bbox(out), atol=1e-4)
    assert lab[0, 1] == pytest.approx(20 / 80)  # inputs untouched


@pytest.mark.parametrize("seed", range(6))
def test_random_affine_boxes_follow_pixels(seed: int) -> None:
    img = _rect_image((128, 128), (40, 50, 90, 80))
    lab = np.array([[0, 40, 50, 90, 80]], np.float32)
    rng = np.random.default_rng(seed)
    out, out_lab = random_affine(img, lab, rng, degrees=0, translate=0.1, scale=0.4, shear=0)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert len(out_lab) == 1
    # Without rotation or shear the box is exact up to interpolation at the edges.
    np.testing.assert_allclose(out_lab[0, 1:], _white_bbox(out), atol=1.5)

    out, out_lab = random_affine(img, lab, np.random.default_rng(seed), degrees=20, translate=0.1, scale=0.3, shear=5)
    assert len(out_lab) == 1
    # Rotated: the box encloses the rotated rectangle.
    _assert_covers(out_lab[0, 1:], out, tol=1.5)
    assert (out_lab[:, [1, 3]] >= 0).all() and (out_lab[:, [1, 3]] <= 128).all()


def test_random_affine_identity_and_crop() -> None:
    img = _rect_image((100, 100), (0, 0, 6, 6))
    lab = np.array([[0, 0, 0, 6, 6], [0, 40, 40, 60, 60]], np.float32)
    same, same_lab = random_affine(img, lab, np.random.default_rng(0), translate=0.0, scale=0.0)
    assert np.array_equal(same, img) and np.allclose(same_lab, lab)
    # Crop the central 20x20: the corner box falls outside and is dropped, the centre
    # box is cut to the crop.
    crop, crop_lab = random_affine(img, lab, np.random.default_rng(0), translate=0.0, scale=0.0, border=(-40, -40))
    assert crop.shape == (20, 20, 3)
    np.testing.assert_allclose(crop_lab, [[0, 0, 0, 20, 20]])


def test_box_candidates() -> None:
    before = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 100, 1.5]], np.float32)
    after = np.array([[0, 0, 9, 9], [0, 0, 1.5, 10], [0, 0, 10, 0.5], [0, 0, 100, 3]], np.float32)
    # kept; too narrow; too flat; kept (3 px tall, area grew)
    assert augment.box_candidates(before, after).tolist() == [True, False, False, True]
    # less than 10 % of the area left
    assert not augment.box_candidates(before[:1], np.array([[0, 0, 3, 3]], np.float32))[0]


def test_affine_is_deterministic_under_seed() -> None:
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    lab = np.array([[0, 10, 10, 40, 40]], np.float32)
    kw = {"degrees": 10, "translate": 0.1, "scale": 0.5, "shear": 2}
    a = random_affine(img, lab, np.random.default_rng(5), **kw)
    b = random_affine(img, lab, np.random.default_rng(5), **kw)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_hsv_jitter() -> None:
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    before = img.copy()
    a = hsv_jitter(img, np.random.default_rng(3))
    b = hsv_jitter(img, np.random.default_rng(3))
    assert np.array_equal(a, b) and a.shape == img.shape and a.dtype == np.uint8
    assert not np.array_equal(a, img)
    assert np.array_equal(img, before)
    assert np.array_equal(hsv_jitter(img, np.random.default_rng(3), 0, 0, 0), img)


def test_mosaic_tiles_and_labels() -> None:
    s = 64
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images, labels = [], []
    for i, c in enumerate(colors):
        h, w = (64, 48) if i % 2 else (40, 64)
        im = np.zeros((h, w, 3), np.uint8)
        im[10:30, 12:36] = c
        images.append(im)
        labels.append(xyxy_to_xywhn(np.array([[i, 12, 10, 36, 30]], np.float32), w, h))
    canvas, pix = mosaic4(images, labels, s, np.random.default_rng(0))
    assert canvas.shape == (2 * s, 2 * s, 3) and canvas.dtype == np.uint8
    assert pix.shape == (4, 5) and (pix[:, 1:] >= 0).all() and (pix[:, 1:] <= 2 * s).all()
    for (cls, x1, y1, x2, y2), c in zip(pix, colors):
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue  # tile cut off at the canvas border
        patch = canvas[int(y1) : int(y2), int(x1) : int(x2)]
        assert (patch == c).all(axis=-1).mean() > 0.99, f"box of class {cls} is not on its rectangle"
    img, out = random_affine(canvas, pix, np.random.default_rng(0), border=(-s // 2, -s // 2))
    assert img.shape == (s, s, 3)
    assert (out[:, 1:] >= 0).all() and (out[:, 1:] <= s).all()


def test_mosaic_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="exactly 4"):
        mosaic4([np.zeros((8, 8, 3), np.uint8)] * 3, [np.zeros((0, 5))] * 3, 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match="larger than size"):
        mosaic4([np.zeros((16, 16, 3), np.uint8)] * 4, [np.zeros((0, 5))] * 4, 8, np.random.default_rng(0))


def test_augment_hyp_validation() -> None:
    hyp = augment_hyp({"fliplr": 0.0, "lr0": 0.01})
    assert hyp["fliplr"] == 0.0 and "lr0" not in hyp and hyp["mosaic"] == augment.DEFAULT_AUGMENT_HYP["mosaic"]
    with pytest.raises(ValueError, match="mosaic"):
        augment_hyp({"mosaic": 1.5})
    with pytest.raises(ValueError, match="scale"):
        augment_hyp({"scale": 1.0})
