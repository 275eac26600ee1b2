"""The model a training run starts from, its distillation teacher, and the device it trains on."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn as nn

from yolotut.models import build_model, load_checkpoint
from yolotut.models.checkpoint import NotATrainingCheckpointError, load_training_checkpoint, model_from_training_payload
from yolotut.training.config import TrainConfig


def select_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; an explicit ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA GPU; use --device cpu")
    return torch.device(device)


def initial_model(config: TrainConfig, names: list[str]) -> nn.Module:
    """The model a run starts from, with its Detect head sized for the dataset.

    Weights are transferred by name where shapes match: a COCO checkpoint keeps its
    backbone and neck, and gets a fresh Detect head when the class count differs.
    An activation override rebuilds the graph with the other activation and keeps
    every weight (activations have none), as the blog did for Hardswish.
    """
    if config.weights is None:
        return build_model(config.size, num_classes=len(names), activation=config.activation or "silu", names=names)

    source = _load_start(_resolve_weights(config.weights))
    activation = config.activation or getattr(source, "activation", "silu")
    if source.nc == len(names) and activation == getattr(source, "activation", "silu"):
        source.names = list(names)
        return source
    if getattr(source, "thinned", None):
        raise ValueError(
            f"weights {config.weights!r} are a thinned model; rebuilding it for {len(names)} classes or another "
            "activation would drop its thinned layers: start from the unthinned model and thin in this run"
        )
    model = build_model(
        source.size, num_classes=len(names), activation=activation, anchors=source.config["anchors"], names=names
    )
    transfer_weights(source, model)
    return model


def distillation_teacher(config: TrainConfig, names: list[str], start: nn.Module | None = None) -> nn.Module:
    """The unthinned model a thinned run learns its ``Detect`` inputs back from: the start.

    ``start``: the run's starting model before thinning, if built already (it is copied).
    With an activation override (a SiLU checkpoint trained on, as the blog did, with
    Hardswish), the teacher keeps the activation its weights were trained with: the
    rebuilt copy's features are not the ones those weights learned to make.
    ``config.distill_teacher`` names other weights instead, loaded as trained: its head
    is kept even where its classes differ from ``names`` (distilling predictions
    then refuses it).
    """
    if config.distill_teacher is not None:
        return _load_start(_resolve_weights(config.distill_teacher))
    if config.weights is not None and config.activation is not None:
        as_trained = initial_model(replace(config, activation=None), names)
        if getattr(as_trained, "activation", "silu") != config.activation:
            return as_trained
    return copy.deepcopy(start) if start is not None else initial_model(config, names)


def _load_start(path: Path) -> nn.Module:
    """A model checkpoint (Ultralytics or yolotut), or the final.pt of a run trained without QAT."""
    try:
        payload = load_training_checkpoint(path)
    except NotATrainingCheckpointError:
        return load_checkpoint(path)
    if payload["quantized"]:
        raise ValueError(
            f"{path}: that run ended with quantization-aware training; start from a run trained without it "
            "(e.g. recipe dense-finetune) and let this run's recipe quantize"
        )
    if payload.get("thinning_plan"):
        raise ValueError(f"{path}: that run stopped while channels were still fading out; finish it first (--resume)")
    return model_from_training_payload(payload)


def _resolve_weights(weights: str) -> Path:
    path = Path(weights)
    if path.exists():
        return path
    from yolotut import assets

    if weights in assets.REGISTRY:
        return assets.fetch(weights)
    raise FileNotFoundError(
        f"weights {weights!r} is neither a file nor a registered asset (see `yolotut fetch --list`)"
    )


def transfer_weights(source: nn.Module, target: nn.Module) -> int:
    """Copy every tensor whose name and shape match; return how many were copied."""
    source_state = source.state_dict()
    target_state = target.state_dict()
    matched = {
        k: v for k, v in source_state.items() if k in target_state and v.shape == target_state[k].shape
    }
    target.load_state_dict(matched, strict=False)
    return len(matched)
