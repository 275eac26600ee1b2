"""What a training run is told (:class:`TrainConfig`, saved into every checkpoint) and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolotut.training.distill import DISTILLERS


@dataclass
class TrainConfig:
    """Everything a training run needs; saved into every checkpoint."""

    data: str = "pistols"
    # Asset name, .pt path (a model checkpoint, or the final.pt of a run trained without
    # QAT), or None to start from scratch.
    weights: str | None = "yolov5n"
    size: str = "n"  # used when weights is None
    activation: str | None = None  # override the checkpoint's activation (e.g. "hardswish")
    # Channels to keep before training starts (yolotut.models.thinning.ThinningConfig
    # fields, e.g. {"c3": 0.5}); None = no thinning.
    thinning: dict[str, Any] | None = None
    # Epochs over which the channels thinning removes fade out (1 -> 0) before they are
    # removed, at the end of the last fading epoch; 0 = remove them before training.
    thinning_fade_epochs: int = 0
    # Weight of distillation (yolotut.training.distill), by default of the features of the model
    # as it was before thinning; 0 = off.
    distill: float = 0.0
    # The distillation teacher's weights (as ``weights``: an asset, a .pt path or a
    # finished run's final.pt, e.g. a dense model trained on this dataset); None = the
    # run's own start before thinning.
    distill_teacher: str | None = None
    # What the student learns from the teacher: "features" (the Detect head's inputs,
    # same model size) or "predictions" (its outputs: objectness, classes, boxes).
    distill_target: str = "features"
    recipe: str = "dense-finetune"  # recipe name shipped with yolotut, or a path
    recipe_args: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None  # overrides the recipe's num_epochs
    imgsz: int = 416
    batch_size: int = 16
    max_images: int | None = None  # training subset (quick runs)
    max_steps_per_epoch: int | None = None
    val_max_images: int | None = None
    lr0: float = 0.01
    lrf: float = 0.01
    momentum: float = 0.937
    weight_decay: float = 5e-4
    warmup_epochs: float = 3.0
    warmup_bias_lr: float = 0.1
    ema: bool = True
    augment: bool = True
    device: str = "auto"
    workers: int = 2
    seed: int = 0
    out_dir: str = "runs/train"
    evaluate_every_epoch: bool = False


@dataclass
class TrainResult:
    out_dir: Path
    final_checkpoint: Path
    epochs_run: int
    history: list[dict[str, float]]
    seconds: float
    device: str


def validate(config: TrainConfig) -> None:
    """Refuse settings that contradict each other, before any work starts."""
    if not config.distill >= 0:
        raise ValueError(f"distill is the weight of distillation: expected >= 0 (0 = off), got {config.distill}")
    if config.distill_target not in DISTILLERS:
        raise ValueError(f"distill_target={config.distill_target!r}: expected one of {', '.join(DISTILLERS)}")
    if config.distill_teacher is not None and not config.distill > 0:
        raise ValueError(f"distill_teacher={config.distill_teacher!r} is only used with distillation: give distill > 0 too")
    if config.thinning_fade_epochs < 0 or (config.thinning_fade_epochs and not config.thinning):
        raise ValueError(
            f"thinning_fade_epochs={config.thinning_fade_epochs}: the channels that thinning removes fade out over "
            "that many epochs; give thinning settings too, and 0 (remove at once) or more epochs"
        )


def recipe_variables(config: TrainConfig) -> dict[str, Any]:
    """The recipe variables a run overrides (``recipe_args``, and ``num_epochs`` from ``epochs``)."""
    variables = dict(config.recipe_args)
    if config.epochs is not None:
        variables["num_epochs"] = config.epochs
    return variables
