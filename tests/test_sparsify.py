"""yolotut.inference.sparsify: magnitude sparsity patterns on YOLOv5 conv weights, and their export."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from yolotut.inference.sparsify import (
    ALL,
    BLOCK,
    RECIPE_DENSE,
    UNSTRUCTURED,
    SparsityConfig,
    apply_sparsity,
    apply_sparsity_onnx,
    conv_weight_sparsity,
    conv_weights,
    exported_layer_sparsity,
    layer_targets,
    magnitude_mask,
    onnx_param_name,
    recipe_groups,
    zeros_kept,
)
from yolotut.models import build_model


@pytest.fixture()
def nano() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("n", num_classes=1, activation="hardswish")


def _block_zero_counts(weight: torch.Tensor) -> torch.Tensor:
    """Zeros per 1x4 block along input channels: shape (out * kh * kw * in/4,)."""
    return (weight == 0).permute(0, 2, 3, 1).reshape(-1, 4).sum(dim=1)


def test_groups_come_from_the_pruning_recipe() -> None:
    groups = recipe_groups()
    text = (Path(__file__).parents[1] / "yolotut" / "recipes" / "pruning.yaml").read_text()
    assert set(groups) == {"sparsity_early", "sparsity_p3", "sparsity_p4", "sparsity_deep"}
    for group in groups.values():
        # The default is the recipe's top-level variable, the regexes are its params.
        assert re.search(rf"^{group.name}:\s*{group.default:.2f}", text, re.M)
        assert all(pattern in text.replace("\\\\", "\\") for pattern in group.patterns)
    assert groups["sparsity_deep"].matches("model.23.m.0.cv2.conv.weight")
    assert groups["sparsity_early"].matches("model.1.conv.weight")
    assert not any(g.matches("model.0.conv.weight") or g.matches("model.24.m.0.weight") for g in groups.values())


@pytest.mark.parametrize(
    "config",
    [SparsityConfig.recipe(1.25), SparsityConfig.uniform(0.85, UNSTRUCTURED), SparsityConfig.uniform(0.5, BLOCK)],
    ids=["recipe-x1.25-block", "uniform-85-unstructured", "uniform-50-block"],
)
def test_each_layer_hits_its_target(nano: torch.nn.Module, config: SparsityConfig) -> None:
    targets = layer_targets(nano, config)
    achieved = apply_sparsity(nano, config)
    assert set(achieved) == set(conv_weights(nano))
    for name, target in targets.items():
        assert achieved[name] == pytest.approx(target, abs=0.01), name
    # The model really changed (the returned figures are measured, not echoed).
    assert conv_weight_sparsity(nano) == pytest.approx(
        sum(achieved[n] * w.numel() for n, w in conv_weights(nano).items()) / sum(w.numel() for w in conv_weights(nano).values())
    )
    assert conv_weight_sparsity(nano) > 0.4


def test_recipe_targets_follow_the_groups(nano: torch.nn.Module) -> None:
    targets = layer_targets(nano, SparsityConfig.recipe(1.0))
    assert targets["model.1.conv.weight"] == 0.40
    assert targets["model.17.m.0.cv2.conv.weight"] == 0.50
    assert targets["model.20.cv3.conv.weight"] == 0.65
    assert targets["model.9.cv2.conv.weight"] == 0.75
    assert targets["model.0.conv.weight"] == targets["model.24.m.2.weight"] == 0.0
    capped = SparsityConfig.recipe(2.0, cap=0.9)
    assert max(capped.targets.values()) == 0.9


def test_block_masks_are_whole_blocks(nano: torch.nn.Module) -> None:
    apply_sparsity(nano, SparsityConfig.uniform(0.75, BLOCK))
    for name, weight in conv_weights(nano).items():
        if name.startswith(RECIPE_DENSE):
            continue
        counts = _block_zero_counts(weight)
        # Random weights are never exactly zero: a block is either pruned or untouched.
        assert set(counts.unique().tolist()) <= {0, 4}, name
        assert (counts == 4).float().mean().item() == pytest.approx(0.75, abs=0.01), name


def test_unstructured_masks_are_not_blocks(nano: torch.nn.Module) -> None:
    apply_sparsity(nano, SparsityConfig.uniform(0.75, UNSTRUCTURED))
    counts = _block_zero_counts(dict(nano.named_parameters())["model.7.conv.weight"])
    assert {1, 2, 3} & set(counts.unique().tolist())


@pytest.mark.parametrize("mask_type", [BLOCK, UNSTRUCTURED])
def test_the_smallest_magnitudes_are_pruned(mask_type: str) -> None:
    weight = torch.randn(8, 16, 3, 3, generator=torch.Generator().manual_seed(0))
    keep = magnitude_mask(weight, 0.6, mask_type)
    if mask_type == UNSTRUCTURED:
        scores, kept = weight.abs().flatten(), keep.flatten()
    else:
        scores = weight.abs().permute(0, 2, 3, 1).reshape(-1, 4).mean(dim=1)
        kept = keep.permute(0, 2, 3, 1).reshape(-1, 4)[:, 0]
    assert (~kept).float().mean().item() == pytest.approx(0.6, abs=0.005)
    assert scores[~kept].max() <= scores[kept].min()


def test_dense_layers_stay_dense(nano: torch.nn.Module) -> None:
    config = SparsityConfig.uniform(0.9, BLOCK, dense=("model.0", "model.1", r"re:^model\.(23|24)\."))
    achieved = apply_sparsity(nano, config)
    for name, sparsity in achieved.items():
        if re.match(r"model\.(0|1|23|24)\.", name):
            assert sparsity == 0.0, name
        else:
            assert sparsity == pytest.approx(0.9, abs=0.01), name


def test_group_targets_beat_all_and_dense_beats_both(nano: torch.nn.Module) -> None:
    config = SparsityConfig({ALL: 0.5, "sparsity_deep": 0.8}, dense=("model.0", "model.24", "model.7"), mask_type=UNSTRUCTURED)
    targets = layer_targets(nano, config)
    assert targets["model.8.cv1.conv.weight"] == 0.8
    assert targets["model.3.conv.weight"] == 0.5
    assert targets["model.7.conv.weight"] == 0.0


def test_bad_configs_say_what_to_do(nano: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="unknown sparsity group 'sparsity_head'.*sparsity_deep"):
        SparsityConfig({"sparsity_head": 0.5})
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        SparsityConfig({"sparsity_deep": 1.0})
    with pytest.raises(ValueError, match="unknown mask_type"):
        SparsityConfig({"sparsity_deep": 0.5}, mask_type="[2,2]")
    # The stem has 3 input channels: no [1,4] blocks; the error names the layer.
    with pytest.raises(ValueError, match=r"model\.0\.conv\.weight: a \[1,4\] mask needs input channels divisible by 4"):
        apply_sparsity(nano, SparsityConfig.uniform(0.5, BLOCK, dense=()))
    # A group whose layers are all kept dense cannot reach its target: say so.
    with pytest.raises(ValueError, match="sparsity_early"):
        layer_targets(nano, SparsityConfig({"sparsity_early": 0.5}, dense=("model.1", "model.2", *RECIPE_DENSE)))


def test_config_key_recipe_args_and_round_trip() -> None:
    config = SparsityConfig.recipe(1.15, name="a")
    assert config.key() == SparsityConfig.recipe(1.15, name="b").key()  # the name is a label only
    assert config.key() != SparsityConfig.recipe(1.25).key()
    assert config.key() != SparsityConfig.recipe(1.15, UNSTRUCTURED).key()
    assert SparsityConfig.from_dict(config.to_dict()) == config
    args = config.recipe_args()
    assert args["sparsity_deep"] == pytest.approx(0.8625) and args["mask_type"] == [1, 4]
    assert SparsityConfig.uniform(0.8, "unstructured").recipe_args() == {
        **{name: 0.8 for name in recipe_groups()},
        "mask_type": "unstructured",
    }
    assert SparsityConfig({}, mask_type="1x4").mask_type == BLOCK


def test_onnx_node_names_map_to_parameters() -> None:
    assert onnx_param_name("/model/model.2/m/m.0/cv1/conv/module/Conv_quant") == "model.2.m.0.cv1.conv.weight"
    assert onnx_param_name("/model/model.24/m.2/module/Conv") == "model.24.m.2.weight"
    assert onnx_param_name("/model/model.7/conv/Conv") == "model.7.conv.weight"
    assert onnx_param_name("Conv_12") is None


def _tiny_exported_graph(path: Path) -> None:
    """An ONNX file laid out like yolotut.inference.export's: a QLinearConv named after its torch
    module (per-channel scale and a non-zero zero point) feeding a float Detect conv."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.array(0.02, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(0, np.uint8), "x_zp"),
        numpy_helper.from_array(rng.integers(-100, 100, (16, 8, 3, 3)).astype(np.int8), "w"),
        numpy_helper.from_array(rng.uniform(0.01, 0.05, 16).astype(np.float32), "w_scale"),
        numpy_helper.from_array(np.full(16, 3, np.int8), "w_zp"),
        numpy_helper.from_array(np.array(0.1, np.float32), "y_scale"),
        numpy_helper.from_array(np.array(0, np.uint8), "y_zp"),
        numpy_helper.from_array(rng.normal(size=(4, 16, 1, 1)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node(
            "QLinearConv",
            ["input", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp"],
            ["y"],
            name="/model/model.7/conv/module/Conv_quant",
            pads=[1, 1, 1, 1],
        ),
        helper.make_node("DequantizeLinear", ["y", "y_scale", "y_zp"], ["y_float"], name="dq"),
        helper.make_node("Conv", ["y_float", "w2"], ["out_0"], name="/model/model.24/m.0/Conv"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.UINT8, [1, 8, 16, 16])],
        [helper.make_tensor_value_info("out_0", TensorProto.FLOAT, [1, 4, 16, 16])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.helper.set_model_props(model, {"imgsz": "16"})
    onnx.save(model, str(path))


def test_sparsity_written_into_an_exported_int8_graph(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from yolotut.inference.export import measure_onnx_sparsity

    src, dst = tmp_path / "dense.onnx", tmp_path / "sparse.onnx"
    _tiny_exported_graph(src)
    before = src.read_bytes()
    achieved = apply_sparsity_onnx(src, dst, SparsityConfig.uniform(0.75, BLOCK, dense=()))
    assert src.read_bytes() == before  # the source model is left alone
    assert achieved == pytest.approx({"model.7.conv.weight": 0.75, "model.24.m.0.weight": 0.75}, abs=0.01)

    report = measure_onnx_sparsity(dst)  # weight == zero point (3), not == 0
    assert {layer.name: layer.sparsity for layer in report.layers} == pytest.approx(
        {"/model/model.7/conv/module/Conv_quant": 0.75, "/model/model.24/m.0/Conv": 0.75}, abs=0.01
    )
    assert report.block4_sparsity == pytest.approx(report.conv_sparsity)
    written = onnx.load(str(dst))
    assert {p.key: p.value for p in written.metadata_props} == {"imgsz": "16"}
    weight = {t.name: numpy_helper.to_array(t) for t in written.graph.initializer}["w"]
    original = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(src)).graph.initializer}
    kept = weight != 3
    # Surviving weights are untouched; the pruned ones had the smallest |(q - zp) * scale| blocks.
    assert np.array_equal(weight[kept], original["w"][kept])
    scores = np.abs((original["w"].astype(np.float32) - 3) * original["w_scale"].reshape(-1, 1, 1, 1))
    blocks = scores.transpose(0, 2, 3, 1).reshape(-1, 4).mean(axis=1)
    pruned = ~kept.transpose(0, 2, 3, 1).reshape(-1, 4)[:, 0]
    assert blocks[pruned].max() <= blocks[~pruned].min()
    # Still a valid model that runs.
    session = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": np.zeros((1, 8, 16, 16), np.uint8)})[0].shape == (1, 4, 16, 16)


def test_sparsity_onnx_refuses_graphs_it_cannot_map(tmp_path: Path) -> None:
    import onnx

    src = tmp_path / "dense.onnx"
    _tiny_exported_graph(src)
    model = onnx.load(str(src))
    model.graph.node[0].name = "Conv_3"
    onnx.save(model, str(src))
    with pytest.raises(ValueError, match="Conv_3.*yolotut.inference.export"):
        apply_sparsity_onnx(src, tmp_path / "out.onnx", SparsityConfig.uniform(0.5))


@pytest.mark.slow
def test_exported_int8_onnx_carries_the_sparsity(tmp_path: Path, nano: torch.nn.Module) -> None:
    from yolotut.inference.export import export_onnx
    from yolotut.training.oneshot import calibrate_oneshot

    config = SparsityConfig.recipe(1.25, BLOCK)
    configured = apply_sparsity(nano, config)
    loader = [(torch.randint(0, 256, (1, 3, 128, 128), generator=torch.Generator().manual_seed(0), dtype=torch.uint8),)]
    calibrate_oneshot(nano, loader, num_batches=1, progress=False)
    report = export_onnx(nano, tmp_path / "sparse.onnx", imgsz=128, uint8_input=True).sparsity

    # Structure: every backbone/neck conv became an INT8 QLinearConv; nothing was lost.
    assert report.quantized
    assert report.op_counts.get("QLinearConv", 0) >= len(configured) - 3  # Detect convs may stay float
    assert report.op_counts.get("QLinearConv", 0) + report.op_counts.get("Conv", 0) == len(configured)
    exported = exported_layer_sparsity(report.layers)
    assert set(exported) == set(configured)
    for name, sparsity in configured.items():
        # weight == zero point; INT8 rounding may add a few zeros, never remove them.
        assert exported[name] == pytest.approx(sparsity, abs=0.01), name
        assert exported[name] >= sparsity - 1e-9, name
    # The zeros are still whole [1,4] blocks in the INT8 weights.
    assert report.block4_sparsity == pytest.approx(report.conv_sparsity, abs=0.01)
    assert report.conv_sparsity > 0.8


# --- the search script's export work-arounds (benchmarks/sparsity_search.py) ----------------


def test_export_hardswish_matches_torch_hardswish(nano: torch.nn.Module) -> None:
    from yolotut.inference.export import OnnxFriendlyHardswish, swap_hardswish

    x = torch.linspace(-6, 6, 1001)
    assert torch.allclose(OnnxFriendlyHardswish()(x), torch.nn.functional.hardswish(x), atol=1e-6)
    assert swap_hardswish(nano) == 57
    assert not any(isinstance(m, torch.nn.Hardswish) for m in nano.modules())


def test_folding_weight_qdq_is_bit_exact(qdq_weight_conv_onnx) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from yolotut.inference.export import fold_float_conv_weight_quantization

    path = qdq_weight_conv_onnx(c_in=8, c_out=4, kernel=1, size=4, scale=0.013, conv_name="/model/model.24/m.0/Conv")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 8, 4, 4)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    before = session.run(None, {"input": x})[0]
    # What the Q -> DQ pair hands the conv, computed by ONNX Runtime itself.
    dq_model = onnx.load(str(path))
    dq_model.graph.output.append(helper.make_tensor_value_info("wd", TensorProto.FLOAT, [4, 8, 1, 1]))
    dequantized = ort.InferenceSession(dq_model.SerializeToString(), providers=["CPUExecutionProvider"]).run(["wd"], {"input": x})[0]

    assert fold_float_conv_weight_quantization(path) == 1
    folded = onnx.load(str(path))
    assert [n.op_type for n in folded.graph.node] == ["Conv"]
    assert [t.name for t in folded.graph.initializer] == ["/model/model.24/m.0/Conv.weight_dequantized"]
    np.testing.assert_array_equal(numpy_helper.to_array(folded.graph.initializer[0]), dequantized)
    after = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)  # conv kernels may sum in another order


def test_zeros_kept_counts_the_upstream_zeros_a_transfer_lost(nano: torch.nn.Module) -> None:
    import copy

    apply_sparsity(nano, SparsityConfig.uniform(0.5, UNSTRUCTURED))
    with torch.no_grad():
        nano.model[24].m[0].weight[0, 0] = 0.0  # Detect: re-initialised in a transfer, so not checked
    transferred = copy.deepcopy(nano)
    held = zeros_kept(nano, transferred)
    convs = [name for name in conv_weights(nano) if not name.startswith("model.24.")]
    assert held["layers"] == held["layers_matched"] == len(convs)
    assert held["upstream_zeros"] > 0 and held["zeros_lost"] == 0
    with torch.no_grad():
        weight = transferred.model[2].cv1.conv.weight
        weight[tuple((weight == 0).nonzero()[:3].T)] = 1.0
        transferred.model[24].m[0].weight.fill_(1.0)
    assert zeros_kept(nano, transferred)["zeros_lost"] == 3
