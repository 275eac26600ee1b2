"""Distillation: features from the unthinned model, predictions from any teacher with the same head (yolotut.training.distill)."""

from __future__ import annotations

import copy

import pytest
import torch

from yolotut.models import build_model
from yolotut.models.thinning import ThinningConfig, thin
from yolotut.training.distill import FeatureDistiller, PredictionDistiller, detect_inputs


@pytest.fixture(scope="module")
def teacher() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("n", num_classes=1).eval()
    # Non-trivial BatchNorm statistics, so that removing channels changes the features.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.weight.data.uniform_(0.5, 1.5)
    return model


def test_detect_inputs_are_the_three_levels_before_the_head(teacher) -> None:
    images = torch.rand(2, 3, 128, 128)
    with torch.no_grad(), detect_inputs(teacher) as features:
        teacher(images)
    # P3/P4/P5 of YOLOv5n: 64, 128, 256 channels at strides 8, 16, 32; the head's
    # in-place reshaping of its input list leaves the captured maps alone.
    assert [tuple(f.shape) for f in features] == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4)]
    handles = teacher.model[-1]._forward_pre_hooks
    assert not handles  # the hook is gone after the block


def test_loss_is_zero_for_the_teacher_itself_and_trains_only_the_student(teacher) -> None:
    images = torch.rand(2, 3, 128, 128)
    distiller = FeatureDistiller(copy.deepcopy(teacher), weight=2.0)
    same = copy.deepcopy(teacher)
    with detect_inputs(same) as features:
        same(images)
    assert distiller.loss(features, images).item() == pytest.approx(0.0, abs=1e-10)

    student = copy.deepcopy(teacher)
    thin(student, ThinningConfig(c3=0.5, bottleneck=0.5))
    student.train()
    with detect_inputs(student) as features:
        student(images)
    loss = distiller.loss(features, images)
    assert loss.item() > 0.01
    loss.backward()
    assert all(p.grad is None for p in distiller.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    # Linear in the weight and the batch size: the scale ComputeLoss uses.
    half = FeatureDistiller(copy.deepcopy(teacher), weight=1.0).loss([f.detach() for f in features], images)
    assert half.item() == pytest.approx(loss.item() / 2, rel=1e-5)


def test_mismatched_features_and_bad_weights_are_clear_errors(teacher) -> None:
    images = torch.rand(1, 3, 128, 128)
    distiller = FeatureDistiller(copy.deepcopy(teacher))
    wrong = [torch.zeros(1, 32, 16, 16), torch.zeros(1, 128, 8, 8), torch.zeros(1, 256, 4, 4)]
    with pytest.raises(ValueError, match="same Detect inputs"):
        distiller.loss(wrong, images)
    with pytest.raises(ValueError, match="2 Detect inputs"):
        distiller.loss(wrong[:2], images)
    with pytest.raises(ValueError, match="must be > 0"):
        FeatureDistiller(teacher, weight=0)


def _raw_predictions(model: torch.nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    model.train()
    try:
        return model(images)
    finally:
        model.eval()


def test_prediction_distillation_is_at_its_minimum_on_the_teacher_and_works_across_sizes(teacher) -> None:
    images = torch.rand(2, 3, 128, 128)
    distiller = PredictionDistiller(copy.deepcopy(teacher), weight=2.0)
    # The teacher's own predictions: the soft-target cross-entropy is at its minimum
    # (the teacher's entropy, not 0), so its gradient vanishes.
    with torch.no_grad():
        _, own = copy.deepcopy(teacher).eval()(images)
    own = [p.clone().requires_grad_(True) for p in own]
    at_minimum = distiller.loss(own, images)
    at_minimum.backward()
    assert at_minimum.item() > 0
    assert max(p.grad.abs().max().item() for p in own) < 1e-6

    # A student of another size (same head layout) gets a larger loss and gradients;
    # the frozen teacher none.
    torch.manual_seed(1)
    student = build_model("s", num_classes=1).train()
    preds = student(images)
    loss = distiller.loss(preds, images)
    assert loss.item() > at_minimum.item() + 0.01
    loss.backward()
    assert all(p.grad is None for p in distiller.teacher.parameters())
    assert student.model[-1].m[0].weight.grad.abs().sum() > 0
    half = PredictionDistiller(copy.deepcopy(teacher), weight=1.0).loss([p.detach() for p in preds], images)
    assert half.item() == pytest.approx(loss.item() / 2, rel=1e-5)


def test_prediction_distillation_refuses_another_head(teacher) -> None:
    images = torch.rand(1, 3, 128, 128)
    distiller = PredictionDistiller(copy.deepcopy(teacher))
    two_classes = _raw_predictions(build_model("n", num_classes=2), images)
    with pytest.raises(ValueError, match="same head"):
        distiller.loss(two_classes, images)
    with pytest.raises(ValueError, match="2 prediction levels"):
        distiller.loss(two_classes[:2], images)
    with pytest.raises(ValueError, match="must be > 0"):
        PredictionDistiller(teacher, weight=-1)
