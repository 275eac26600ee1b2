"""Feature distillation: a thinned model learns back the features of the model it came from.

Removing channels from a small model (YOLOv5n) wrecks the pretrained features its neck
hands to the ``Detect`` head, and the detection loss alone -- a few boxes of one class
per image -- wins them back slowly. The model *before* thinning is a teacher that is
free to have: it says, at every pixel of every level, what the features used to be.
:class:`FeatureDistiller` adds the teacher-student distance at the ``Detect`` inputs
(P3, P4, P5) to the training loss.

Each level's mean squared error is divided by the teacher's mean square, so that the
three levels weigh alike whatever their scale, and multiplied by the batch size, as
:class:`~yolotut.training.loss.ComputeLoss` scales its own terms.

:class:`PredictionDistiller` instead matches what the ``Detect`` head *predicts*: the
teacher's objectness (and class scores) as soft targets everywhere, and its boxes where
it sees objects. It needs only the same head layout (classes, anchors), not the same
features, so the teacher may be another model: one trained on the dataset, or larger.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["DISTILLERS", "FeatureDistiller", "PredictionDistiller", "detect_features", "detect_inputs"]


def _detect_layer(model: nn.Module) -> nn.Module:
    layers = getattr(model, "model", None)
    if not isinstance(layers, nn.Sequential):
        raise TypeError(f"expected a yolotut DetectionModel, got {type(model).__name__}")
    return layers[-1]


@contextmanager
def detect_inputs(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, the list filled with the feature maps ``Detect`` receives."""
    captured: list[torch.Tensor] = []

    def keep(_module: nn.Module, args: tuple) -> None:
        # Detect reassigns its input list's items, so copy the list, not the tensors.
        captured[:] = list(args[0])

    handle = _detect_layer(model).register_forward_pre_hook(keep)
    try:
        yield captured
    finally:
        handle.remove()


@torch.no_grad()
def detect_features(model: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The feature maps ``Detect`` receives for ``images``, without gradients."""
    with detect_inputs(model) as features:
        model(images)
    return list(features)


def _pixel_anchors(head: nn.Module) -> list:
    return (head.anchors * head.stride.view(-1, 1, 1)).round().int().tolist()


def _level_pairs(
    student: list[torch.Tensor], teacher: list[torch.Tensor], levels: str, what: str, needs: str
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Student and teacher tensors level by level, refused unless their counts and shapes match."""
    if len(student) != len(teacher):
        raise ValueError(f"student has {len(student)} {levels}, teacher {len(teacher)}")
    for mine, theirs in zip(student, teacher):
        if mine.shape != theirs.shape:
            raise ValueError(f"{what} {tuple(mine.shape)} vs teacher {tuple(theirs.shape)}: distillation needs {needs}")
    return list(zip(student, teacher))


class _Distiller:
    """A frozen teacher in eval mode and the weight of its term in the training loss."""

    def __init__(self, teacher: nn.Module, weight: float = 1.0) -> None:
        if weight <= 0:
            raise ValueError(f"distillation weight must be > 0, got {weight}")
        self.teacher = teacher.eval()
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)
        self.weight = float(weight)

    def check_student(self, student: nn.Module, teacher_name: str | None = None) -> None:
        """Raise ``ValueError`` if this teacher's output cannot be matched by ``student``."""
        raise NotImplementedError


class FeatureDistiller(_Distiller):
    """``weight * batch * sum_levels MSE(student, teacher) / mean(teacher**2)``.

    ``teacher``: a model whose ``Detect`` inputs have the same shapes as the student's
    (thinning keeps those widths). It is frozen and kept in eval mode.
    """

    def check_student(self, student: nn.Module, teacher_name: str | None = None) -> None:
        widths = [[conv.in_channels for conv in _detect_layer(model).m] for model in (self.teacher, student)]
        if widths[0] != widths[1]:
            raise ValueError(
                f"distillation teacher {teacher_name!r} hands its Detect head {widths[0]} channels, the student "
                f"{widths[1]}: the teacher must be the same model size as the student (size {student.size!r}) "
                "before thinning, or distil its predictions instead (distill_target='predictions')"
            )

    def loss(self, student_features: list[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        """The distillation term for one batch; ``student_features`` from :func:`detect_inputs`."""
        pairs = _level_pairs(
            student_features, detect_features(self.teacher, images), "Detect inputs", "student feature",
            "the same Detect inputs (thin only hidden channels)",
        )
        total = images.new_zeros(())
        for student, teacher in pairs:
            total = total + (student.float() - teacher.float()).pow(2).mean() / teacher.float().pow(2).mean().clamp_min(1e-8)
        return total * self.weight * images.shape[0]


class PredictionDistiller(_Distiller):
    """``weight * batch * sum_levels [BCE(obj) + BCE(cls) + box]`` against the teacher's predictions.

    Per level, from the raw ``[B, na, ny, nx, no]`` outputs of both heads: objectness is
    a binary cross-entropy with the teacher's probability as the target, at every anchor
    of every cell (it does not reach 0 where the teacher is unsure); class scores and
    the box terms (squared difference of the sigmoid box outputs, which decode alike
    with the same grid and anchors) count where the teacher sees an object, weighted by
    its objectness. ``teacher``: frozen, kept in eval mode.
    """

    def check_student(self, student: nn.Module, teacher_name: str | None = None) -> None:
        heads = [_detect_layer(model) for model in (self.teacher, student)]
        # Anchors saved after a division by the stride differ in the last bits.
        same_anchors = heads[0].anchors.shape == heads[1].anchors.shape and torch.allclose(
            heads[0].anchors.cpu(), heads[1].anchors.cpu(), rtol=1e-4
        )
        if heads[0].nc != heads[1].nc or not same_anchors:
            raise ValueError(
                f"distillation teacher {teacher_name!r} predicts {heads[0].nc} classes with anchors "
                f"{_pixel_anchors(heads[0])}, the student {heads[1].nc} with {_pixel_anchors(heads[1])}: "
                "distilling predictions needs the same head"
            )

    def loss(self, student_preds: list[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        """The distillation term for one batch; ``student_preds``: the student's training-mode output."""
        with torch.no_grad():
            _, teacher_preds = self.teacher(images)
        pairs = _level_pairs(
            student_preds, teacher_preds, "prediction levels", "student prediction",
            "the same head (classes, anchors per level) and input size",
        )
        total = images.new_zeros(())
        for student, teacher in pairs:
            student, target = student.float(), teacher.float().sigmoid()
            objectness = target[..., 4]
            total = total + nn.functional.binary_cross_entropy_with_logits(student[..., 4], objectness)
            weight = objectness.unsqueeze(-1)
            norm = objectness.sum().clamp_min(1e-6)
            box = (student[..., :4].sigmoid() - target[..., :4]).pow(2)
            total = total + (box * weight).sum() / norm
            if student.shape[-1] > 6:  # one class: its score says nothing objectness does not
                classes = nn.functional.binary_cross_entropy_with_logits(student[..., 5:], target[..., 5:], reduction="none")
                total = total + (classes * weight).sum() / (norm * (student.shape[-1] - 5))
        return total * self.weight * images.shape[0]


# TrainConfig.distill_target -> the distiller that teaches it.
DISTILLERS: dict[str, type[_Distiller]] = {"features": FeatureDistiller, "predictions": PredictionDistiller}
