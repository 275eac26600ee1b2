"""Feature distillation: a thinned model learns back the features of the model it came from.

Removing channels from a small model (YOLOv5n) wrecks the pretrained features its neck
hands to the ``Detect`` head, and the detection loss alone -- a few boxes of one class
per image -- wins them back slowly. The model *before* thinning is a teacher that is
free to have: it says, at every pixel of every level, what the features used to be.
:class:`FeatureDistiller` adds the teacher-student distance at the ``Detect`` inputs
(P3, P4, P5) to the training loss.

Each level's mean squared error is divided by the teacher's mean square, so that the
three levels weigh alike whatever their scale, and multiplied by the batch size, as
:class:`~yolotut.loss.ComputeLoss` scales its own terms.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["FeatureDistiller", "detect_features", "detect_inputs"]


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


class FeatureDistiller:
    """``weight * batch * sum_levels MSE(student, teacher) / mean(teacher**2)``.

    ``teacher``: a model whose ``Detect`` inputs have the same shapes as the student's
    (thinning keeps those widths). It is frozen and kept in eval mode.
    """

    def __init__(self, teacher: nn.Module, weight: float = 1.0) -> None:
        if weight <= 0:
            raise ValueError(f"distillation weight must be > 0, got {weight}")
        self.teacher = teacher.eval()
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)
        self.weight = float(weight)

    def loss(self, student_features: list[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        """The distillation term for one batch; ``student_features`` from :func:`detect_inputs`."""
        teacher_features = detect_features(self.teacher, images)
        if len(student_features) != len(teacher_features):
            raise ValueError(f"student has {len(student_features)} Detect inputs, teacher {len(teacher_features)}")
        total = images.new_zeros(())
        for student, teacher in zip(student_features, teacher_features):
            if student.shape != teacher.shape:
                raise ValueError(
                    f"student feature {tuple(student.shape)} vs teacher {tuple(teacher.shape)}: distillation needs "
                    "the same Detect inputs (thin only hidden channels)"
                )
            total = total + (student.float() - teacher.float()).pow(2).mean() / teacher.float().pow(2).mean().clamp_min(1e-8)
        return total * self.weight * images.shape[0]
