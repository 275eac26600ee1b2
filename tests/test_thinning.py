"""Channel thinning (structured pruning): groups, exactness, checkpoints, export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from yolotut.models import build_model, load_checkpoint, save_checkpoint
from yolotut.models.common import C3
from yolotut.models.thinning import (
    ChannelFade,
    ThinningConfig,
    apply_plan,
    channel_groups,
    conv_weight_count,
    feature_errors,
    plan,
    removal_damage,
    thin,
    thin_to_widths,
)
from yolotut.models.thinning_presets import BACKBONE_SPLIT, HEAD_HEAVY, STRIDED_C3, STRIDED_C3_BOTTLENECKS, STRIDED_HEAD_HEAVY
from yolotut.models.yolo import model_from_config
from yolotut.training.distill import detect_features


def _model(size: str = "n", act: str = "silu", seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(size, num_classes=2, activation=act).eval()
    # Non-trivial BatchNorm statistics, as in a trained model.
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = torch.rand(m.num_features, generator=gen) + 0.5
            m.bias.data = torch.randn(m.num_features, generator=gen) * 0.1
            m.running_mean = torch.randn(m.num_features, generator=gen) * 0.1
            m.running_var = torch.rand(m.num_features, generator=gen) + 0.5
    return model


def _out(model, x):
    with torch.no_grad():
        return model(x)[0]


def test_yolov5n_groups_are_the_hidden_channels_of_every_block():
    model = _model("n")
    groups = channel_groups(model)
    kinds = [g.kind for g in groups]
    # C3 blocks 2,4,6,8 (1+2+3+1 bottlenecks, residual) and 13,17,20,23 (1 each, no residual).
    assert kinds.count("bottleneck") == 11
    # Residual C3: one main-branch group each; plain C3: cv1 and m.0.cv2 segments; plus 8 skip branches.
    assert kinds.count("c3") == 4 + 8 + 8
    assert kinds.count("sppf") == 1
    names = {g.name for g in groups}
    assert {"model.6.cv1", "model.6.cv2", "model.6.m.2.cv1", "model.13.m.0.cv2", "model.9.cv1"} <= names
    main6 = next(g for g in groups if g.name == "model.6.cv1")
    assert len(main6.producers) == 4 and len(main6.consumers) == 4  # cv1 + 3 bottleneck outputs; 3 bottleneck inputs + cv3
    sppf = next(g for g in groups if g.kind == "sppf")
    assert [offset for _, offset in sppf.consumers] == [0, 128, 256, 384]
    # Block outputs only the next block reads: the stem and the strided backbone convs, not
    # the head's convs (a Concat or an upsample reads those) or the C3 outputs.
    conv = {g.name: g for g in groups if g.kind == "conv"}
    assert list(conv) == ["model.0", "model.1", "model.3", "model.5", "model.7"]
    assert conv["model.1"].consumers == [(model.model[2].cv1.conv, 0), (model.model[2].cv2.conv, 0)]
    assert conv["model.0"].consumers == [(model.model[1].conv, 0)]


def _silence(model, group_name: str, drop: torch.Tensor) -> None:
    """Make channels ``drop`` of a group unimportant (tiny BN scale) and unused (zero reads)."""
    group = next(g for g in channel_groups(model) if g.name == group_name)
    with torch.no_grad():
        for producer in group.producers:
            producer.bn.weight[drop] = 1e-6
        for conv, offset in group.consumers:
            conv.weight[:, offset + drop] = 0.0


@pytest.mark.parametrize("act", ["silu", "hardswish"])
def test_thin_removes_exactly_the_unused_least_important_channels(act):
    model = _model("n", act)
    x = torch.rand(1, 3, 128, 128)
    # Half of each chosen group is made unused; thin(keep=0.5) must find and remove exactly those.
    targets = {"model.0": 8, "model.1": 16, "model.4.cv1": 16, "model.4.m.1.cv1": 16, "model.7": 128, "model.9.cv1": 64,
               "model.13.cv2": 32, "model.23.m.0.cv2": 64}
    gen = torch.Generator().manual_seed(1)
    for name, width in targets.items():
        _silence(model, name, torch.randperm(width * 2, generator=gen)[:width])
    before = _out(model, x)
    changed = thin(model, ThinningConfig(bottleneck=0.5, c3=0.5, sppf=0.5, conv=0.5, criterion="smallest-norm"), names=set(targets))
    assert changed == {name: (2 * w, w) for name, w in targets.items()}
    torch.testing.assert_close(_out(model, x), before, rtol=1e-4, atol=1e-4)
    assert model.thinned == targets


def test_thin_all_groups_shrinks_the_model_and_keeps_it_trainable():
    model = _model("n")
    weights = conv_weight_count(model)
    changed = thin(model, ThinningConfig(bottleneck=0.5, c3=0.5, sppf=0.5))
    assert len(changed) == 32
    assert all(after % 8 == 0 and after < before for before, after in changed.values())
    assert conv_weight_count(model) < 0.6 * weights
    model.train()
    outputs = model(torch.rand(2, 3, 64, 64))
    sum(o.sum() for o in outputs).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    for block in (m for m in model.modules() if isinstance(m, C3)):
        assert block.cv3.conv.in_channels == block.cv1.conv.out_channels + block.cv2.conv.out_channels


def test_modules_filter_and_rounding():
    model = _model("n")
    changed = thin(model, ThinningConfig(c3=0.3, modules=(8,)))
    assert set(changed) == {"model.8.cv1", "model.8.cv2"}
    assert changed["model.8.cv1"] == (128, 40)  # 38.4 -> multiple of 8
    assert thin(model, ThinningConfig(bottleneck=0.01, modules=(2,))) == {"model.2.m.0.cv1": (16, 8)}  # never below one multiple


def test_thinned_model_round_trips_through_a_checkpoint(tmp_path):
    model = _model("n", "hardswish")
    thin(model, ThinningConfig(bottleneck=0.5, c3=0.75, conv=0.5, modules=(0, 6, 8, 20)))
    assert model.thinned["model.0"] == 8
    assert model.config["thinned"] == model.thinned and model.thinned
    path = save_checkpoint(model, tmp_path / "thin.pt")
    loaded = load_checkpoint(path).eval()
    x = torch.rand(1, 3, 96, 96)
    torch.testing.assert_close(_out(loaded, x), _out(model, x))
    assert loaded.thinned == model.thinned
    # An unthinned model keeps the old config (no key), so old checkpoints stay valid.
    assert "thinned" not in build_model("n").config


def test_fused_model_thins_too():
    model = _model("n")
    reference = _model("n")
    x = torch.rand(1, 3, 64, 64)
    _silence(model, "model.6.m.0.cv1", torch.arange(16))
    _silence(reference, "model.6.m.0.cv1", torch.arange(16))
    model.fuse()
    assert thin(model, ThinningConfig(bottleneck=0.5), names={"model.6.m.0.cv1"}) == {"model.6.m.0.cv1": (64, 32)}
    torch.testing.assert_close(_out(model, x), _out(reference, x), rtol=1e-4, atol=1e-4)


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="fraction of channels to keep"):
        ThinningConfig(c3=0.0)
    with pytest.raises(ValueError, match="fraction of channels to keep"):
        ThinningConfig(bottleneck=1.5)
    model = _model("n")
    with pytest.raises(ValueError, match="do not exist"):
        thin_to_widths(model, {"model.99.cv1": 8})
    with pytest.raises(ValueError, match="outside"):
        thin_to_widths(model, {"model.2.cv1": 999})
    with pytest.raises(TypeError, match="DetectionModel"):
        channel_groups(nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match="no channel groups named"):
        thin(model, ThinningConfig(c3=0.5), names={"model.2.cv9"})
    model.model[2].cv1.conv = _Wrapped(model.model[2].cv1.conv)
    with pytest.raises(TypeError, match="before quantization-aware training"):
        channel_groups(model)
    with pytest.raises(ValueError, match="thinned groups"):
        model_from_config({**build_model("n").config, "thinned": {"nope": 8}})


class _Wrapped(nn.Module):
    """Stands in for a QAT / calibration wrapper around a Conv2d."""

    def __init__(self, conv):
        super().__init__()
        self.module = conv
        self.out_channels = conv.out_channels

    def forward(self, x):
        return self.module(x)


def test_thinned_model_exports_and_onnxruntime_agrees(tmp_path):
    import onnxruntime as ort

    from yolotut.inference.export import export_onnx

    model = _model("n", "hardswish")
    thin(model, ThinningConfig(bottleneck=0.5, c3=0.5, sppf=0.5))
    path = export_onnx(model, tmp_path / "thin.onnx", imgsz=128).path
    x = torch.rand(1, 3, 128, 128)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, _out(model, x).numpy(), rtol=1e-3, atol=1e-3)


def test_config_round_trips_through_a_dict():
    config = ThinningConfig(c3=0.5, bottleneck=0.75, conv=0.5, modules=(6, 8))
    assert ThinningConfig.from_dict(config.to_dict()) == config
    # Settings saved before the "conv" kind existed leave those channels whole.
    assert ThinningConfig.from_dict({k: v for k, v in config.to_dict().items() if k != "conv"}).conv == 1.0
    assert ThinningConfig.from_dict({"c3": 0.5, "modules": [8]}) == ThinningConfig(c3=0.5, modules=(8,))
    with pytest.raises(ValueError, match=r"unknown keys \['c4'\]"):
        ThinningConfig.from_dict({"c4": 0.5})


@pytest.mark.parametrize("act", ["silu", "hardswish"])
def test_fully_faded_channels_are_removed_without_changing_the_outputs(act):
    model = _model("n", act)
    x = torch.rand(2, 3, 128, 128)
    dense = _out(model, x)
    kept = plan(model, ThinningConfig(bottleneck=0.5, c3=0.5, sppf=0.5, conv=0.5))
    assert _out(model, x).equal(dense)  # planning changes nothing
    fade = ChannelFade(model, kept)
    assert _out(model, x).equal(dense)  # scale 1: the hooks pass outputs through
    fade.scale = 0.5
    half = _out(model, x)
    fade.scale = 0.0
    faded = _out(model, x)
    # The removed channels matter (else this test could not fail), and partly faded is in between.
    assert (faded - dense).abs().max() > 0.1 and (half - dense).abs().max() > 0.01
    assert (half - faded).abs().max() > 0.01
    fade.remove()
    assert _out(model, x).equal(dense)  # hooks off: the model is as before
    weights = conv_weight_count(model)
    changed = apply_plan(model, kept)
    assert changed["model.6.cv1"] == (64, 32) and changed["model.9.cv1"] == (128, 64) and changed["model.0"] == (16, 8)
    assert conv_weight_count(model) < 0.7 * weights
    torch.testing.assert_close(_out(model, x), faded, rtol=1e-4, atol=1e-4)


def test_thin_is_plan_then_apply():
    first, second = _model("n"), _model("n")
    config = ThinningConfig(c3=0.5, bottleneck=0.75)
    thin(first, config)
    apply_plan(second, plan(second, config))
    assert first.thinned == second.thinned
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert a.equal(b)


def test_bad_plans_are_refused():
    model = _model("n")
    with pytest.raises(ValueError, match="model.99.cv1"):
        apply_plan(model, {"model.99.cv1": torch.arange(4)})
    with pytest.raises(ValueError, match="model.99.cv1"):
        ChannelFade(model, {"model.99.cv1": torch.arange(4)})
    with pytest.raises(ValueError, match="indices below 32"):
        apply_plan(model, {"model.4.cv1": torch.tensor([0, 40])})
    with pytest.raises(ValueError, match="indices below 32"):
        ChannelFade(model, {"model.4.cv1": torch.tensor([0, 40])})
    with pytest.raises(ValueError, match="kept channels"):
        apply_plan(model, {"model.4.cv1": torch.tensor([], dtype=torch.long)})
    assert not model.thinned


def test_criteria_choose_the_largest_the_smallest_or_random_channels():
    model = _model("n")
    group = next(g for g in channel_groups(model) if g.name == "model.6.cv1")
    order = torch.argsort(group.importance(), descending=True)  # no ties in random weights
    halves = {criterion: plan(model, ThinningConfig(c3=0.5, criterion=criterion), ["model.6.cv1"])["model.6.cv1"]
              for criterion in ("smallest-norm", "largest-norm", "random")}
    assert halves["smallest-norm"].tolist() == sorted(order[:32].tolist())
    assert halves["largest-norm"].tolist() == sorted(order[32:].tolist())
    random = halves["random"]
    assert len(random) == 32 and not random.equal(halves["smallest-norm"]) and not random.equal(halves["largest-norm"])
    assert plan(model, ThinningConfig(c3=0.5, criterion="random"), ["model.6.cv1"])["model.6.cv1"].equal(random)
    assert not plan(model, ThinningConfig(c3=0.5, criterion="random", seed=1), ["model.6.cv1"])["model.6.cv1"].equal(random)
    assert ThinningConfig().criterion == "largest-norm"  # what measured best (benchmarks/README.md)
    config = ThinningConfig(c3=0.5, criterion="smallest-norm", seed=3)
    assert ThinningConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="criterion.*'l1'"):
        ThinningConfig(c3=0.5, criterion="l1")


def test_fade_keeps_the_outputs_dtype_and_scales_only_the_removed_channels():
    model = _model("n").to(torch.bfloat16)
    kept = plan(model, ThinningConfig(c3=0.5), ["model.4.cv2"])
    producer = model.model[4].cv2
    x = torch.rand(1, producer.conv.in_channels, 16, 16, dtype=torch.bfloat16)
    with torch.no_grad():
        before = producer(x)
        fade = ChannelFade(model, kept)
        fade.scale = 0.25
        faded = producer(x)
    assert faded.dtype == torch.bfloat16  # a float32 factor would promote it
    removed = torch.ones(before.shape[1], dtype=torch.bool)
    removed[kept["model.4.cv2"]] = False
    assert faded[:, ~removed].equal(before[:, ~removed])
    torch.testing.assert_close(faded[:, removed], before[:, removed] * 0.25)
    assert before[:, removed].abs().max() > 0.1  # else the check above could not fail


def test_damage_is_what_removing_the_channel_does_to_the_heads_features():
    model = _model("n").train()
    x = torch.rand(2, 3, 64, 64)
    damage = removal_damage(model, x, ["model.0", "model.4.cv1", "model.17.cv2"], progress=False)
    assert set(damage) == {"model.0", "model.4.cv1", "model.17.cv2"} and damage["model.4.cv1"].shape == (32,)
    assert model.training and not model.model[4].cv1._forward_hooks  # left as it was
    reference = detect_features(model.eval(), x)
    for name, channel in [("model.0", 3), ("model.4.cv1", 5), ("model.17.cv2", 30)]:  # model.0: the first block
        thinned = model_from_config(model.config)
        thinned.load_state_dict(model.state_dict())
        width = damage[name].numel()
        apply_plan(thinned, {name: torch.tensor([c for c in range(width) if c != channel])})
        features = detect_features(thinned.eval(), x)
        measured = sum(float((f - r).norm() / r.norm()) for f, r in zip(features, reference)) / 3
        assert damage[name][channel].item() == pytest.approx(measured, rel=1e-4, abs=1e-6)
    assert damage["model.4.cv1"].min() > 0  # every channel of a random model matters somewhat
    assert feature_errors(reference, reference) == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="2 feature maps against 3"):
        feature_errors(reference[:2], reference)


def test_damage_criterion_keeps_the_channels_whose_loss_would_hurt_most():
    model = _model("n")
    x = torch.rand(2, 3, 64, 64)
    # Unused channels with tiny filters: nothing to lose, and the smallest norms.
    unused = torch.tensor([1, 6, 9, 20])
    _silence(model, "model.13.cv2", unused)
    damage = removal_damage(model, x, ["model.13.cv2"], progress=False)["model.13.cv2"]
    used = torch.ones(64, dtype=torch.bool)
    used[unused] = False
    assert damage[unused].abs().max() < 1e-6 and damage[used].min() > 0
    config = ThinningConfig(c3=0.5, criterion="damage")
    kept = plan(model, config, ["model.13.cv2"], images=x)["model.13.cv2"]
    assert kept.tolist() == sorted(torch.argsort(damage, descending=True)[:32].tolist())
    assert not set(unused.tolist()) & set(kept.tolist())
    # Removing the largest filters would keep exactly these useless channels.
    assert set(unused.tolist()) <= set(plan(model, ThinningConfig(c3=0.5), ["model.13.cv2"])["model.13.cv2"].tolist())
    with pytest.raises(ValueError, match="pass images"):
        plan(model, config, ["model.13.cv2"])
    # A measurement made before gives the same plan, and must fit the groups planned.
    assert plan(model, config, ["model.13.cv2"], damage={"model.13.cv2": damage})["model.13.cv2"].equal(kept)
    with pytest.raises(ValueError, match="no measurement for group model.13.cv2"):
        plan(model, config, ["model.13.cv2"], damage={"model.17.cv2": damage})
    with pytest.raises(ValueError, match="another model"):
        plan(model, config, ["model.13.cv2"], damage={"model.13.cv2": damage[:32]})
    with pytest.raises(ValueError, match="float batch"):
        removal_damage(model, (x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="damage_images"):
        ThinningConfig(criterion="damage", damage_images=0)
    assert ThinningConfig.from_dict(ThinningConfig(criterion="damage", damage_images=4).to_dict()).damage_images == 4


def test_module_keep_thins_some_blocks_more_than_the_rest():
    model = _model("n")
    config = ThinningConfig(c3=0.75, bottleneck=0.5, module_keep={17: {"c3": 0.25}, 23: {"bottleneck": 1.0}})
    kept = {name: len(indices) for name, indices in plan(model, config).items()}
    assert kept["model.4.cv1"] == 24 and kept["model.4.m.0.cv1"] == 16  # the kinds' fractions of 32
    assert kept["model.17.cv1"] == 8 and kept["model.17.m.0.cv1"] == 16  # c3 overridden, bottleneck not
    assert "model.23.m.0.cv1" not in kept and kept["model.23.cv1"] == 96  # kept whole there
    assert ThinningConfig.from_dict(config.to_dict()) == config  # JSON turns the block keys into strings
    assert hash(config) == hash(ThinningConfig.from_dict(config.to_dict()))
    with pytest.raises(ValueError, match=r"module_keep\[17\]: unknown kinds \['c4'\]"):
        ThinningConfig(module_keep={17: {"c4": 0.5}})
    with pytest.raises(ValueError, match="expected 0 < keep <= 1, got 0"):
        ThinningConfig(module_keep={17: {"c3": 0}})
    with pytest.raises(ValueError, match="block indices"):
        ThinningConfig(module_keep={"17": {"c3": 0.5}})


def _conv_macs(model, x) -> int:
    total = 0

    def count(conv, _args, output):
        nonlocal total
        total += output.numel() * conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    _out(model, x)
    for handle in handles:
        handle.remove()
    return total


def test_head_heavy_removes_the_multiply_adds_of_halving_everything_mostly_in_the_head():
    x = torch.rand(1, 3, 64, 64)
    dense = _conv_macs(_model("n"), x)
    removed = {}
    for label, config in (("half", ThinningConfig(c3=0.5, bottleneck=0.5)), ("head-heavy", HEAD_HEAVY)):
        model = _model("n")
        changed = thin(model, config)
        removed[label] = 1 - _conv_macs(model, x) / dense
        if label == "head-heavy":
            assert changed["model.17.cv1"] == (32, 8) and changed["model.23.m.0.cv1"] == (128, 32)  # head: a quarter
            assert changed["model.6.cv1"] == (64, 48) and changed["model.6.m.0.cv1"] == (64, 32)  # backbone
    assert 0.35 < removed["half"] < 0.40
    assert abs(removed["head-heavy"] - removed["half"]) < 0.02


def test_backbone_split_keeps_block_2_whole_and_quarters_blocks_6_and_8():
    changed = thin(_model("n"), BACKBONE_SPLIT)
    assert not any(name.startswith("model.2.") for name in changed)
    assert changed["model.6.cv1"] == (64, 16) and changed["model.8.m.0.cv1"] == (128, 32)  # a quarter
    assert changed["model.4.cv1"] == (32, 16) and changed["model.17.cv1"] == (32, 16)  # the rest halved
    assert ThinningConfig.from_dict(BACKBONE_SPLIT.to_dict()) == BACKBONE_SPLIT


def test_strided_configs_halve_the_strided_convs_after_the_stem():
    changed = thin(_model("n"), STRIDED_C3)
    assert {name: changed[name] for name in ("model.3", "model.5", "model.7")} == {"model.3": (64, 32), "model.5": (128, 64), "model.7": (256, 128)}
    assert "model.0" not in changed and "model.1" not in changed  # the stem measured no faster thinned
    assert changed["model.6.cv1"] == (64, 32) and not any(".m." in name and name.endswith(".cv1") for name in changed)
    head_heavy = thin(_model("n"), HEAD_HEAVY)
    strided_head_heavy = thin(_model("n"), STRIDED_HEAD_HEAVY)
    assert strided_head_heavy == {**head_heavy, "model.3": (64, 32), "model.5": (128, 64), "model.7": (256, 128)}
    assert ThinningConfig.from_dict(STRIDED_HEAD_HEAVY.to_dict()) == STRIDED_HEAD_HEAVY
    halved = thin(_model("n"), ThinningConfig(c3=0.5, bottleneck=0.5))
    assert thin(_model("n"), STRIDED_C3_BOTTLENECKS) == {**halved, "model.3": (64, 32), "model.5": (128, 64), "model.7": (256, 128)}
    assert ThinningConfig.from_dict(STRIDED_C3_BOTTLENECKS.to_dict()) == STRIDED_C3_BOTTLENECKS
