"""YOLOv5 v6.x builder: parameter counts, output shapes, decoding, activation override."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from yolotut.models import SIZES, Conv, Detect, DetectionModel, build_model, default_config, yolo
from yolotut.models.yolo import model_from_config

# (size, parameters as built (= YOLOv5 train.py "Model summary"), after fuse()
#  (= the counts Ultralytics publishes, printed by detect.py/val.py after "Fusing layers"))
PARAM_COUNTS = [
    pytest.param("n", 1_872_157, 1_867_405),
    pytest.param("s", 7_235_389, 7_225_885),
    pytest.param("m", 21_190_557, 21_172_173),
    pytest.param("l", 46_563_709, 46_533_693, marks=pytest.mark.slow),
    pytest.param("x", 86_749_405, 86_705_005, marks=pytest.mark.slow),
]


def _nparams(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def yolov5n() -> DetectionModel:
    torch.manual_seed(0)
    return build_model("n")


@pytest.mark.parametrize(("size", "built", "published"), PARAM_COUNTS)
def test_parameter_counts_match_ultralytics(size: str, built: int, published: int):
    model = build_model(size, num_classes=80)
    assert _nparams(model) == built
    assert _nparams(model.fuse()) == published


def test_structure_attributes(yolov5n: DetectionModel):
    m = yolov5n
    assert m.nc == 80 and len(m.names) == 80 and m.size == "n" and m.activation == "silu"
    assert m.stride.tolist() == [8.0, 16.0, 32.0]
    assert len(m.model) == 25 and isinstance(m.model[-1], Detect)
    assert [layer.i for layer in m.model] == list(range(25))
    assert m.model[12].f == [-1, 6] and m.model[-1].f == [17, 20, 23]
    assert m.save == [4, 6, 10, 14, 17, 20, 23]
    # anchors are stored in stride units, like the official checkpoints
    pixels = torch.tensor(default_config("n")["anchors"], dtype=torch.float32).view(3, 3, 2)
    torch.testing.assert_close(m.detect.anchors * m.stride.view(-1, 1, 1), pixels)
    # stride is a buffer that follows .to(), but it is not part of the state_dict
    assert "model.24.anchors" in m.state_dict() and "model.24.stride" not in m.state_dict()
    assert m.model[0].conv.kernel_size == (6, 6) and m.model[0].conv.stride == (2, 2)
    bn = m.model[0].bn
    assert bn.eps == 1e-3 and bn.momentum == 0.03


def test_training_outputs_at_416(yolov5n: DetectionModel):
    yolov5n.train()
    out = yolov5n(torch.rand(1, 3, 416, 416))
    assert isinstance(out, list)
    assert [tuple(o.shape) for o in out] == [(1, 3, 52, 52, 85), (1, 3, 26, 26, 85), (1, 3, 13, 13, 85)]


def test_eval_and_export_outputs(yolov5n: DetectionModel):
    yolov5n.eval()
    x = torch.rand(1, 3, 320, 256)  # non-square
    with torch.no_grad():
        decoded, raw = yolov5n(x)
        n = 3 * (40 * 32 + 20 * 16 + 10 * 8)
        assert decoded.shape == (1, n, 85)
        assert [tuple(r.shape) for r in raw] == [(1, 3, 40, 32, 85), (1, 3, 20, 16, 85), (1, 3, 10, 8, 85)]
        assert 0 <= decoded[..., 4:].min() and decoded[..., 4:].max() <= 1  # sigmoid applied
        yolov5n.detect.export = True
        try:
            only = yolov5n(x)
        finally:
            yolov5n.detect.export = False
    assert isinstance(only, torch.Tensor)
    torch.testing.assert_close(only, decoded)


def test_detect_decoding_formula():
    """Zero logits: sigmoid = 0.5 -> xy = (grid + 0.5) * stride, wh = anchor in pixels."""
    model = build_model("n", num_classes=2).eval()
    for conv in model.detect.m:
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    with torch.no_grad():
        decoded, _ = model(torch.rand(1, 3, 64, 96))
    # level 0 (stride 8): 3 anchors x 8 rows x 12 cols, anchor-major then row-major
    level0 = decoded[0, : 3 * 8 * 12].view(3, 8, 12, 7)
    assert level0[0, 0, 0, :4].tolist() == [4.0, 4.0, 10.0, 13.0]
    assert level0[2, 3, 5, :4].tolist() == [(5 + 0.5) * 8, (3 + 0.5) * 8, 33.0, 23.0]
    assert torch.all(level0[..., 4:] == 0.5)
    last = decoded[0, -1, :4].tolist()  # stride 32 level, anchor 2, cell (1, 2)
    assert last == [(2 + 0.5) * 32, (1 + 0.5) * 32, 373.0, 326.0]


def test_nc1_hardswish_and_bias_prior():
    model = build_model("n", num_classes=1, activation="hardswish", names=["pistol"])
    acts = {type(m) for m in model.modules() if isinstance(m, (nn.SiLU, nn.Hardswish, nn.ReLU))}
    assert acts == {nn.Hardswish}
    assert model.names == ["pistol"] and model.nc == 1 and model.activation == "hardswish"
    assert model.detect.m[0].out_channels == 3 * 6
    with torch.no_grad():
        assert [tuple(o.shape) for o in model.train()(torch.rand(1, 3, 416, 416))][0] == (1, 3, 52, 52, 6)
    # Bias prior on top of PyTorch's default uniform(+-1/sqrt(fan_in)) init.
    for conv, s in zip(model.detect.m, (8, 16, 32)):
        b = conv.bias.detach().view(3, 6)
        bound = 1 / math.sqrt(conv.in_channels)
        assert torch.all((b[:, 4] - math.log(8 / (640 / s) ** 2)).abs() <= bound)
        assert torch.all((b[:, 5] - math.log(0.6 / (1 - 0.99))).abs() <= bound)
    # No leaking global default: the next build is SiLU again.
    assert any(isinstance(m, nn.SiLU) for m in build_model("n").modules())


def test_size_table_matches_yaml():
    table = yaml.safe_load((Path(yolo.__file__).parent / "yolov5.yaml").read_text())["sizes"]
    assert tuple(table) == SIZES
    assert {k: default_config(k)["width_multiple"] for k in SIZES} == {
        "n": 0.25, "s": 0.5, "m": 0.75, "l": 1.0, "x": 1.25
    }
    assert {k: default_config(k)["depth_multiple"] for k in SIZES} == {
        "n": 0.33, "s": 0.33, "m": 0.67, "l": 1.0, "x": 1.33
    }


def test_relu_conv_and_bad_arguments():
    assert isinstance(Conv(3, 8, act="relu").act, nn.ReLU)
    with pytest.raises(ValueError, match="unsupported activation 'gelu'"):
        build_model("n", activation="gelu")
    with pytest.raises(ValueError, match="unknown YOLOv5 size 'q'"):
        build_model("q")
    with pytest.raises(ValueError, match="2 class names given for a model with 1 classes"):
        build_model("n", num_classes=1, names=["a", "b"])
    cfg = default_config("n")
    cfg["head"][0][2] = "Focus"
    with pytest.raises(ValueError, match="layer 10: unsupported module 'Focus'"):
        DetectionModel(cfg)


def test_custom_anchors_and_config_round_trip():
    anchors = [[12, 16, 19, 36, 40, 28], [36, 75, 76, 55, 72, 146], [142, 110, 192, 243, 459, 401]]
    model = build_model("n", num_classes=3, anchors=anchors, names=["a", "b", "c"])
    cfg = model.config
    assert cfg["anchors"] == [[float(v) for v in a] for a in anchors]
    clone = model_from_config(cfg)
    assert clone.config == cfg
    assert clone.state_dict().keys() == model.state_dict().keys()
    compact = {k: cfg[k] for k in ("size", "nc", "activation", "anchors", "names")}
    assert model_from_config(compact).config == cfg


def test_fuse_keeps_outputs():
    model = build_model("n", num_classes=4).eval()
    for m in model.modules():  # non-trivial BN statistics so folding matters
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.running_mean, -0.2, 0.2)
            nn.init.uniform_(m.running_var, 0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        before = model(x)[0]
        after = model.fuse()(x)[0]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(after, before, atol=1e-3, rtol=1e-4)
