"""Feature distillation from the unthinned model (yolotut.distill)."""

from __future__ import annotations

import copy

import pytest
import torch

from yolotut.distill import FeatureDistiller, detect_inputs
from yolotut.models import build_model
from yolotut.models.thinning import ThinningConfig, thin


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
