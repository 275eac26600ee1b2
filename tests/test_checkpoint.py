"""Checkpoint loading: the official yolov5n.pt, hostile pickles, broken files, round trips."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from yolotut.boxes import letterbox, non_max_suppression, scale_boxes
from yolotut.models import (
    CheckpointError,
    DetectionModel,
    UnsafeCheckpointError,
    build_model,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)


def _asset(name: str) -> Path:
    from yolotut import assets

    try:
        return assets.fetch(name, progress=False, allow_download=False)
    except assets.AssetUnavailableError as exc:
        pytest.skip(f"{name} not available offline (set YOLOTUT_MIRROR): {exc}")


@pytest.fixture(scope="module")
def official_path() -> Path:
    return _asset("yolov5n")


@pytest.fixture(scope="module")
def official(official_path: Path) -> DetectionModel:
    return load_checkpoint(official_path)


# -- the official checkpoint -------------------------------------------------------------
def test_official_yolov5n_loads(official: DetectionModel, official_path: Path):
    m = official
    assert isinstance(m, DetectionModel) and not m.training
    assert m.size == "n" and m.nc == 80 and m.activation == "silu"
    assert len(m.names) == 80 and m.names[0] == "person" and m.names[5] == "bus"
    assert m.stride.tolist() == [8.0, 16.0, 32.0]
    assert all(p.dtype == torch.float32 for p in m.parameters())
    # Same keys/shapes as a fresh build: the layouts map 1:1.
    fresh = build_model("n").state_dict()
    assert {k: v.shape for k, v in m.state_dict().items()} == {k: v.shape for k, v in fresh.items()}
    # Values are the fp16 checkpoint values, widened.
    src = read_checkpoint(official_path)["model"].state_dict()
    assert src["model.24.m.0.weight"].dtype == torch.float16
    torch.testing.assert_close(m.state_dict()["model.24.m.0.weight"], src["model.24.m.0.weight"].float())
    torch.testing.assert_close(m.detect.anchors, src["model.24.anchors"].float())


def _detect(model: DetectionModel, image: np.ndarray, auto: bool) -> np.ndarray:
    img, ratio, pad = letterbox(image, 640, auto=auto)
    x = torch.from_numpy(np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1)))[None].float() / 255
    with torch.no_grad():
        pred = model(x)[0]
    (det,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.45)
    return scale_boxes(det, ratio, pad, image.shape[:2])


def _iou(a: np.ndarray, b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_official_yolov5n_on_bus(official: DetectionModel):
    image = cv2.imread(str(_asset("bus")))
    assert image.shape == (1080, 810, 3)
    det = _detect(official, image, auto=False)  # square 640x640 input
    names = [official.names[int(c)] for c in det[:, 5]]
    counts = Counter(names)
    assert counts["bus"] == 1 and counts["person"] >= 3
    bus = det[names.index("bus")]
    assert _iou(bus, [20, 230, 805, 775]) > 0.8  # spans the picture, wheels above the bottom
    people = det[[n == "person" for n in names]]
    for ref in ([50, 400, 210, 900], [220, 405, 345, 860], [675, 375, 810, 875]):  # three standing men
        assert max(_iou(p, ref) for p in people) > 0.7
    # Ultralytics detect.py (minimum-rectangle letterbox, 640x480) reports "4 persons, 1 bus".
    rect = _detect(official, image, auto=True)
    assert Counter(official.names[int(c)] for c in rect[:, 5]) == {"person": 4, "bus": 1}


# -- hostile and broken files ---------------------------------------------------------------
class _Payload:
    """Pickles as a call of ``func(*args)``: what a malicious checkpoint does."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker: Path) -> dict[str, _Payload]:
    return {
        "posix.system": _Payload(os.system, (f"touch '{marker}'",)),
        "builtins.eval": _Payload(builtins.eval, (f"open({str(marker)!r}, 'w').close()",)),
        "subprocess.Popen": _Payload(subprocess.Popen, (["touch", str(marker)],)),
    }


TRUST_MESSAGE = "not a YOLOv5 checkpoint this loader trusts"


@pytest.mark.parametrize("refused", ["posix.system", "builtins.eval", "subprocess.Popen"])
def test_malicious_checkpoint_is_refused_and_not_run(tmp_path: Path, refused: str):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": _payloads(marker)[refused], "epoch": 0}, path)
    for loader in (load_checkpoint, read_checkpoint):
        with pytest.raises(UnsafeCheckpointError, match=TRUST_MESSAGE) as err:
            loader(path)
        assert refused in str(err.value) and str(path) in str(err.value)
        assert isinstance(err.value, ValueError)
    assert not marker.exists()
    # Control: an unrestricted load really would have run the payload.
    obj = torch.load(path, weights_only=False)
    if isinstance(obj["model"], subprocess.Popen):
        obj["model"].wait()
    assert marker.exists()


def test_malicious_raw_pickle_is_refused(tmp_path: Path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_raw.pt"
    path.write_bytes(pickle.dumps(_payloads(marker)["posix.system"], protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="posix.system"):
        load_checkpoint(path)
    assert not marker.exists()


def test_truncated_and_garbage_files(tmp_path: Path, official_path: Path):
    data = official_path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt: cannot read it as a PyTorch checkpoint"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 100)
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(garbage)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="plain.pt: unknown checkpoint layout"):
        load_checkpoint(plain)


# -- the project's own format ---------------------------------------------------------------
def test_save_load_round_trip(tmp_path: Path):
    torch.manual_seed(0)
    model = build_model("n", num_classes=3, activation="hardswish", names=["a", "b", "c"])
    for m in model.modules():  # make BN statistics non-default so they must survive
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.running_mean, -0.1, 0.1)
    path = save_checkpoint(model, tmp_path / "sub" / "best.pt", epoch=7, metrics={"map50": 0.5})
    assert path.is_file() and not list(path.parent.glob("*.tmp"))

    raw = torch.load(path, weights_only=True)  # plain weights-only file, no allowlist needed
    assert raw["epoch"] == 7 and raw["metrics"] == {"map50": 0.5}
    assert set(raw["config"]) >= {"size", "nc", "activation", "anchors", "names"}

    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    assert loaded.activation == "hardswish" and loaded.names == ["a", "b", "c"]
    x = torch.rand(1, 3, 160, 160)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], model.eval()(x)[0])


def test_official_resaved_as_project_checkpoint(tmp_path: Path, official: DetectionModel):
    path = save_checkpoint(official, tmp_path / "yolov5n_yolotut.pt")
    again = load_checkpoint(path)
    assert again.names == official.names
    for (k, a), b in zip(official.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k


def test_save_checkpoint_refuses_unsafe_extras_and_fused(tmp_path: Path):
    model = build_model("n", num_classes=1)
    with pytest.raises(TypeError, match=r"extra\['opt'\]\['save_dir'\] is a pathlib"):
        save_checkpoint(model, tmp_path / "x.pt", opt={"save_dir": tmp_path})
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(model, tmp_path / "x.pt", config={})
    with pytest.raises(ValueError, match="fuse"):
        save_checkpoint(model.fuse(), tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_weights_that_do_not_fit_the_config(tmp_path: Path):
    three = build_model("n", num_classes=3)
    path = tmp_path / "mismatch.pt"
    config = {**three.config, "nc": 2, "names": ["a", "b"]}
    torch.save({"format": "yolotut-checkpoint-v1", "config": config, "state_dict": three.state_dict()}, path)
    with pytest.raises(CheckpointError, match=r"mismatch.pt: weights do not fit .*shape mismatch: model.24.m.0"):
        load_checkpoint(path)
