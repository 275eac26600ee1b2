"""The SparseML <-> torch 2.13 compatibility layer, proven with real SparseML work."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from yolotut.compat import apply_sparseml_compat

PRUNE_AND_QAT_RECIPE = """
modifiers:
  - !EpochRangeModifier
    start_epoch: 0.0
    end_epoch: 3.0
  - !GMPruningModifier
    params: ["body.1.0.weight", "body.2.0.weight"]
    init_sparsity: 0.05
    final_sparsity: {sparsity}
    start_epoch: 0.0
    end_epoch: 1.0
    update_frequency: 0.25
  - !QuantizationModifier
    start_epoch: 2.0
"""


def _conv(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()
    )


class TinyConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(3, 16, 2), _conv(16, 32, 1), _conv(32, 32, 2))
        self.head = nn.Conv2d(32, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _train(model: nn.Module, recipe: str, epochs: int, steps: int = 8) -> nn.Module:
    from sparseml.pytorch.optim import ScheduledModifierManager

    from yolotut.recipes import quiet_loggers

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    manager = ScheduledModifierManager.from_yaml(recipe)
    # SparseML's default logger writes ./sparse_logs/ into the checkout the tests run in
    optimizer = manager.modify(model, optimizer, steps_per_epoch=steps, loggers=quiet_loggers())
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for _ in range(steps):
            x = torch.rand(4, 3, 32, 32, generator=generator)
            loss = (model(x) - 0.5).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    manager.finalize(model)
    return model


def test_import_disables_analytics() -> None:
    assert os.environ.get("NM_DISABLE_ANALYTICS") == "1"


def test_qconfig_still_has_slots_so_the_patch_is_needed() -> None:
    # If torch ever drops __slots__ again this test tells us the shim can go.
    from torch.ao.quantization import QConfig, default_qat_qconfig

    plain = QConfig(*default_qat_qconfig)
    with pytest.raises(AttributeError):
        plain.quantization_scheme = "x"  # type: ignore[attr-defined]


def test_patches_are_idempotent_and_explicit_dynamo_wins() -> None:
    first = apply_sparseml_compat()
    assert apply_sparseml_compat() == first == ["qconfig-slots", "onnx-export-torchscript-default"]
    from sparseml.pytorch.sparsification.quantization.quantization_scheme import QuantizationScheme

    qconfig = QuantizationScheme().get_qconfig()
    from torch.ao.quantization import QConfig

    assert isinstance(qconfig, QConfig)
    assert isinstance(qconfig.quantization_scheme, QuantizationScheme)
    assert torch.onnx.export.__wrapped__ is not None  # type: ignore[attr-defined]


@pytest.mark.slow
def test_gmp_pruning_reaches_target_sparsity() -> None:
    apply_sparseml_compat()
    torch.manual_seed(0)
    recipe = PRUNE_AND_QAT_RECIPE.format(sparsity=0.75).split("  - !QuantizationModifier")[0]
    model = _train(TinyConvNet(), recipe.replace("end_epoch: 3.0", "end_epoch: 2.0"), epochs=2)
    for name in ("body.1.0.weight", "body.2.0.weight"):
        weight = dict(model.named_parameters())[name]
        assert (weight == 0).float().mean().item() == pytest.approx(0.75, abs=0.01)
    # A layer the recipe does not name stays dense.
    assert (model.body[0][0].weight == 0).float().mean().item() < 0.01


@pytest.mark.slow
def test_qat_exports_int8_onnx_that_deepsparse_and_onnxruntime_run(tmp_path: Path) -> None:
    apply_sparseml_compat()
    import onnx
    import onnxruntime as ort
    from sparseml.pytorch.utils import ModuleExporter

    torch.manual_seed(0)
    model = _train(TinyConvNet(), PRUNE_AND_QAT_RECIPE.format(sparsity=0.6), epochs=3)
    model.export_with_qlinearconv = True  # SparseML reads this flag: QLinearConv, not ConvInteger
    model.eval()

    sample = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(sample).numpy()
    ModuleExporter(model, str(tmp_path)).export_onnx(sample[:1], name="tiny.onnx", convert_qat=True)
    path = tmp_path / "tiny.onnx"
    # The head conv's output is float, so SparseML leaves its weight in QDQ form,
    # which DeepSparse cannot compile; yolotut's exporter folds it (see export.py).
    from yolotut.inference.export import fold_float_conv_weight_quantization

    assert fold_float_conv_weight_quantization(path) == 1

    graph = onnx.load(str(path)).graph
    ops = Counter(node.op_type for node in graph.node)
    # Every conv whose output is quantized becomes QLinearConv; the head's output
    # stays float, so it remains a float Conv fed by a DequantizeLinear activation.
    assert ops["QLinearConv"] == 3, ops
    assert ops["Conv"] == 1 and ops["DequantizeLinear"] == 1, ops
    assert not any(node.op_type.startswith("FakeQuant") for node in graph.node)

    # Pruned layers stay sparse inside the INT8 weights: a pruned weight is
    # stored as the weight zero point.
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    sparsities = []
    for node in graph.node:
        if node.op_type == "QLinearConv":
            weight, zero_point = initializers[node.input[3]], initializers[node.input[5]]
            assert weight.dtype in (np.int8, np.uint8)
            sparsities.append(float((weight == zero_point).mean()))
    assert sparsities[0] < 0.05
    assert sparsities[1:] == [pytest.approx(0.6, abs=0.02)] * 2

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    ort_out = session.run(None, {input_name: sample[:1].numpy()})[0]

    from deepsparse import compile_model

    engine = compile_model(str(path), batch_size=1, num_cores=1)
    assert engine.fraction_of_supported_ops == 1.0  # DeepSparse's own INT8 kernels, no fallback
    ds_out = engine.run([sample[:1].numpy()])[0]

    # Tolerance: INT8 kernels round differently from torch's fake-quant simulation;
    # allow two output quantization steps (range / 255) per value.
    # Tolerance: torch's fake-quant simulation and the INT8 kernels round
    # differently, and three chained INT8 convs add up those rounding steps
    # (measured: max 2.1 %, mean 0.6 % of the output range). Stated bound: max
    # error <= 4 % and mean error <= 1 % of the output range; the two INT8
    # engines agree with each other to one output quantization step.
    output_range = float(expected.max() - expected.min())
    for engine_out in (ort_out, ds_out):
        error = np.abs(engine_out - expected[:1])
        assert error.max() <= 0.04 * output_range
        assert error.mean() <= 0.01 * output_range
    assert np.abs(ds_out - ort_out).max() <= output_range / 255
