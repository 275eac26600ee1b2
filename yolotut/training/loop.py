"""Training YOLOv5 with SparseML recipes: fine-tuning, pruning, QAT, sparse transfer.

The loop follows YOLOv5's public recipe (SGD with three parameter groups, nesterov,
linear LR decay, warm-up, EMA, AMP on CUDA) and hands the model and optimizer to a
SparseML ``ScheduledModifierManager``, which prunes and quantizes on its schedule.

Known SparseML practice that the loop applies:

* When quantization-aware training starts, EMA and AMP are switched off: fake-quant
  observers and a shadow copy of the weights don't mix, and fp16 autocast breaks the
  observed ranges. The EMA weights are copied into the model first, so the better
  (averaged) weights are the ones that get quantized.
* Every epoch writes ``last.pt`` atomically (model, optimizer, EMA, epoch, recipe,
  recipe variables, and where the data order and augmentation draws stand).
  ``resume=True`` rebuilds the model, re-applies the recipe's structure (QAT modules)
  at the saved epoch and continues at the next epoch with the images and augmentations
  the uninterrupted run would have drawn: no progress is lost beyond the epoch in
  flight.
"""

from __future__ import annotations

import copy
import json
import math
import os
import pickle
import random
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from yolotut.compat import apply_sparseml_compat
from yolotut.inference.export import is_quantized
from yolotut.models.thinning import ChannelFade, ThinningConfig, apply_plan, plan
from yolotut.training.distill import DISTILLERS, FeatureDistiller, detect_inputs

RECIPE_PACKAGE = "yolotut.recipes"
CHECKPOINT_FORMAT = "yolotut-train/1"


# --- configuration -----------------------------------------------------------------


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


# --- recipes -------------------------------------------------------------------------


def available_recipes() -> list[str]:
    """Names of the recipes shipped in ``yolotut/recipes``."""
    folder = resources.files(RECIPE_PACKAGE)
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def recipe_path(name_or_path: str) -> Path:
    """Resolve a recipe name (``pruning``) or a path to a recipe file."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml", ".md"} and candidate.exists():
        return candidate
    shipped = resources.files(RECIPE_PACKAGE) / f"{name_or_path}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    raise FileNotFoundError(
        f"unknown recipe {name_or_path!r}: give a path to a SparseML recipe file or one of "
        f"{', '.join(available_recipes())}"
    )


def load_manager(recipe: str, variables: dict[str, Any] | None = None):
    """A SparseML ``ScheduledModifierManager`` for a recipe with variable overrides."""
    apply_sparseml_compat()
    from sparseml.pytorch.optim import ScheduledModifierManager

    path = recipe_path(recipe)
    return ScheduledModifierManager.from_yaml(str(path), recipe_variables=variables or None)


def quiet_loggers():
    """A SparseML logger manager that logs nowhere.

    SparseML's default one writes ``./sparse_logs/<date>.log`` into whatever the
    working directory is (a notebook folder, a user's checkout); training progress is
    shown by the tqdm bars and saved in ``history.json`` instead. The manager holds one
    no-op logger because SparseML replaces an *empty* (falsy) manager by its default.
    """
    from sparseml.pytorch.utils import LambdaLogger, LoggerManager

    discard = LambdaLogger(lambda_func=lambda *args, **kwargs: True, name="discard")
    return LoggerManager([discard], log_python=False)


def _recipe_variables(config: TrainConfig) -> dict[str, Any]:
    variables = dict(config.recipe_args)
    if config.epochs is not None:
        variables["num_epochs"] = config.epochs
    return variables


# --- model ---------------------------------------------------------------------------


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
    from yolotut.models import build_model

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
    from yolotut.models import load_checkpoint

    try:
        payload = load_training_checkpoint(path)
    except ValueError:
        return load_checkpoint(path)
    if payload["quantized"]:
        raise ValueError(
            f"{path}: that run ended with quantization-aware training; start from a run trained without it "
            "(e.g. recipe dense-finetune) and let this run's recipe quantize"
        )
    if payload.get("thinning_plan"):
        raise ValueError(f"{path}: that run stopped while channels were still fading out; finish it first (--resume)")
    return _model_from_payload(payload)


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


# --- optimizer, schedule, EMA --------------------------------------------------------


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with YOLOv5's three groups: BN weights (no decay), weights (decay), biases."""
    bn_weights, weights, biases = _parameter_groups(model)
    optimizer = torch.optim.SGD(bn_weights, lr=config.lr0, momentum=config.momentum, nesterov=True)
    optimizer.add_param_group({"params": weights, "weight_decay": config.weight_decay})
    optimizer.add_param_group({"params": biases})
    for group in optimizer.param_groups:
        group["initial_lr"] = config.lr0
    return optimizer


def _parameter_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter], list[nn.Parameter]]:
    bn_weights, weights, biases = [], [], []
    for module in model.modules():
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter):
            biases.append(bias)
        weight = getattr(module, "weight", None)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if isinstance(weight, nn.Parameter):
                bn_weights.append(weight)
        elif isinstance(weight, nn.Parameter):
            weights.append(weight)
    return bn_weights, weights, biases


def regroup_parameters(optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
    """Point ``optimizer``'s groups at ``model``'s parameters after layers were replaced.

    Thinning swaps convolutions for narrower ones. The optimizer object stays (a
    SparseML recipe wraps it); the state of parameters that are gone is dropped, so
    the new ones start without momentum.
    """
    groups = _parameter_groups(model)
    if len(optimizer.param_groups) != len(groups):
        raise ValueError(f"expected an optimizer from build_optimizer ({len(groups)} groups), got {len(optimizer.param_groups)}")
    for group, parameters in zip(optimizer.param_groups, groups):
        group["params"] = parameters
    current = {id(p) for parameters in groups for p in parameters}
    for parameter in [p for p in optimizer.state if id(p) not in current]:
        del optimizer.state[parameter]


def learning_rate_factor(epoch_fraction: float, epochs: int, lrf: float) -> float:
    """YOLOv5's linear decay from 1 to ``lrf`` over the run."""
    return (1 - epoch_fraction / max(epochs, 1)) * (1.0 - lrf) + lrf


class ModelEMA:
    """Exponential moving average of the weights, with YOLOv5's ramped decay."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000, updates: int = 0):
        self.ema = copy.deepcopy(model).eval()
        self.updates = updates
        self.decay_fn = lambda n: decay * (1 - math.exp(-n / tau))
        for p in self.ema.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay_fn(self.updates)
        # keep_vars: the tensors themselves (a plain state_dict() detaches each one: an
        # op per tensor). Then one multi-tensor op for all ~340 tensors instead of two per
        # tensor: the per-tensor loop dispatched ~1,700 ops per step, more than forward
        # and loss together, and on a GPU every op is a kernel the host has to launch.
        model_state = model.state_dict(keep_vars=True)
        averaged, current = [], []
        for name, value in self.ema.state_dict(keep_vars=True).items():
            if value.dtype.is_floating_point:
                averaged.append(value)
                current.append(model_state[name])
        torch._foreach_mul_(averaged, d)
        torch._foreach_add_(averaged, current, alpha=1 - d)
        for value, weight in zip(averaged, current):
            if value.dim() == 4:
                # Pruning masks live on the model's conv weights: an average of zeroed
                # weights only decays towards zero, so carry the mask over.
                value.masked_fill_(weight == 0, 0.0)


# --- checkpoints ---------------------------------------------------------------------


def save_training_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a crash mid-write never leaves a truncated ``last.pt``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        # torch raises these for corrupt files and for pickles that are not plain
        # tensors and containers (an Ultralytics checkpoint, say)
        raise ValueError(f"{path}: not a readable yolotut training checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a yolotut training checkpoint (expected format {CHECKPOINT_FORMAT})")
    return payload


def load_trained_model(path: str | Path) -> nn.Module:
    """Rebuild a trained model, SparseML structure (QAT modules) included, in eval mode.

    A checkpoint saved after quantization-aware training started holds fake-quant
    scales and observers; the recipe's structure is re-applied before loading them.
    """
    return _model_from_payload(load_training_checkpoint(path))


def load_model(path: str | Path) -> nn.Module:
    """Any checkpoint this project reads, in eval mode: a training checkpoint
    (``final.pt`` / ``last.pt``, QAT structure included) or a model checkpoint (ours or
    Ultralytics')."""
    from yolotut.models import load_checkpoint

    try:
        return load_trained_model(path)
    except ValueError:
        # Not a training checkpoint: the model loader reads it, or says why it cannot.
        return load_checkpoint(path)


def _model_from_payload(payload: dict[str, Any]) -> nn.Module:
    from yolotut.models import model_from_config

    model = model_from_config(payload["model_config"])
    if payload["quantized"]:
        _manager_from_checkpoint(payload).apply_structure(model, epoch=math.inf, loggers=quiet_loggers())
    model.load_state_dict(payload["model"])
    return model.eval()


def _manager_from_checkpoint(payload: dict[str, Any]):
    apply_sparseml_compat()
    from sparseml.pytorch.optim import ScheduledModifierManager

    return ScheduledModifierManager.from_yaml(payload["recipe_text"], recipe_variables=payload["recipe_variables"] or None)


# --- the loop ------------------------------------------------------------------------


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _limited(loader, max_steps: int | None) -> Iterator:
    for step, batch in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            return
        yield batch


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run (or resume) a training run with a SparseML recipe; return where the results are."""
    apply_sparseml_compat()
    from yolotut.models import model_from_config
    from yolotut.training.data import create_dataloader, load_dataset_config
    from yolotut.training.loss import ComputeLoss, scale_hyp

    started = time.perf_counter()
    out_dir = Path(config.out_dir)
    last_path = out_dir / "last.pt"
    payload = load_training_checkpoint(last_path) if resume and last_path.exists() else None
    if resume and payload is None:
        raise FileNotFoundError(f"nothing to resume: {last_path} does not exist")
    if payload is not None:
        config = TrainConfig(**payload["config"])
    thinning = ThinningConfig.from_dict(config.thinning) if config.thinning and payload is None else None
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
    _seed_everything(config.seed)
    device = select_device(config.device)

    dataset_config = load_dataset_config(config.data)
    loader, _ = create_dataloader(
        dataset_config,
        "train",
        imgsz=config.imgsz,
        batch_size=config.batch_size,
        augment=config.augment,
        shuffle=True,
        workers=config.workers,
        max_images=config.max_images,
        seed=config.seed,
    )
    steps_per_epoch = len(loader) if config.max_steps_per_epoch is None else min(len(loader), config.max_steps_per_epoch)

    variables = _recipe_variables(config)
    recipe_text = recipe_path(config.recipe).read_text()
    fade_plan: dict[str, torch.Tensor] | None = None
    if payload is None:
        model = initial_model(config, dataset_config.names)
        teacher = distillation_teacher(config, dataset_config.names, start=model) if config.distill > 0 else None
        if thinning is not None:
            # Before the recipe wraps the convolutions; a resumed run rebuilds the
            # thinned widths from its checkpoint's model config instead.
            images = _damage_images(dataset_config, config, thinning.damage_images) if thinning.criterion == "damage" else None
            kept = plan(model, thinning, images=images)
            if config.thinning_fade_epochs:
                fade_plan = kept
            else:
                apply_plan(model, kept)
        start_epoch = 0
    else:
        model = model_from_config(payload["model_config"])
        start_epoch = payload["epoch"] + 1
        teacher = distillation_teacher(config, dataset_config.names) if config.distill > 0 else None
        if payload.get("thinning_plan"):
            fade_plan = {name: torch.tensor(kept) for name, kept in payload["thinning_plan"].items()}
        if payload.get("data_state") is not None:
            _restore_data_state(loader, payload["data_state"])
    model_config = model.config
    model.to(device).train()

    optimizer = build_optimizer(model, config)
    manager = load_manager(config.recipe, variables)
    epochs = int(math.ceil(manager.max_epochs))
    fade_epochs = config.thinning_fade_epochs
    if fade_epochs and (fade_epochs > epochs or manager.qat_active(fade_epochs - 1)):
        raise ValueError(
            f"thinning_fade_epochs={fade_epochs}: the channels must be gone before quantization-aware training "
            f"starts and before the run's {epochs} epochs end; fade over fewer epochs"
        )
    if payload is not None:
        # Rebuild the structure the weights were saved in (QAT modules if QAT had
        # started), then restore weights and optimizer into it. The same manager then
        # carries on with the schedule from start_epoch (SparseML's resume pattern).
        if payload["quantized"]:
            manager.apply_structure(model, epoch=float(start_epoch), loggers=quiet_loggers())
        model.load_state_dict(payload["model"])
        optimizer = build_optimizer(model, config)
        optimizer.load_state_dict(payload["optimizer"])
    optimizer = manager.modify(model, optimizer, steps_per_epoch=steps_per_epoch, epoch=float(start_epoch), loggers=quiet_loggers())

    ema = None
    if config.ema and not manager.qat_active(start_epoch):
        ema = ModelEMA(model, updates=payload["ema_updates"] if payload else 0)
        if payload is not None and payload.get("ema") is not None:
            ema.ema.load_state_dict(payload["ema"])
        if payload is not None and payload.get("training_model") is not None:
            # The EMA copy was made from the saved (averaged) weights; training goes on
            # from the raw ones, as it would have without the interruption.
            model.load_state_dict(payload["training_model"])
    # After the EMA copy is made: a deep copy would carry the fade hooks along.
    fade = ChannelFade(model, fade_plan) if fade_plan else None
    fade_steps = fade_epochs * steps_per_epoch
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    distiller = None
    if teacher is not None:
        distiller = DISTILLERS[config.distill_target](teacher.to(device), config.distill)
        # Before training, not at its first step.
        distiller.check_student(model, teacher_name=config.distill_teacher or config.weights)
    distil_features = isinstance(distiller, FeatureDistiller)
    hyp = scale_hyp({}, nc=model.nc, nl=model.model[-1].nl, imgsz=config.imgsz)
    compute_loss = ComputeLoss(model, hyp)
    warmup_iters = max(round(config.warmup_epochs * steps_per_epoch), 0)
    history: list[dict[str, float]] = list(payload["history"]) if payload else []

    for epoch in range(start_epoch, epochs):
        if manager.qat_active(epoch):
            if ema is not None:
                # QAT starts: quantize the averaged weights, then train without EMA/AMP.
                model.load_state_dict(ema.ema.state_dict())
                ema = None
            use_amp = False
            scaler = torch.amp.GradScaler("cuda", enabled=False)
        model.train()
        epoch_started = time.perf_counter()
        sums = torch.zeros(3)
        distill_sum = 0.0
        bar = tqdm(
            _limited(loader, config.max_steps_per_epoch),
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=not progress,
            leave=False,
        )
        for step, (images, targets, *_rest) in enumerate(bar):
            global_step = epoch * steps_per_epoch + step
            _warmup(optimizer, global_step, warmup_iters, epoch + step / steps_per_epoch, epochs, config)
            if fade is not None:
                fade.scale = max(0.0, 1.0 - (global_step + 1) / fade_steps)
            images = images.to(device, non_blocking=True).float() / 255
            targets = targets.to(device)
            with torch.autocast(device.type, enabled=use_amp):
                with detect_inputs(model) if distil_features else nullcontext() as features:
                    preds = model(images)
                loss, items = compute_loss(preds, targets)
                if distiller is not None:
                    distill_loss = distiller.loss(features if distil_features else preds, images)
                    loss = loss + distill_loss
                    distill_sum += distill_loss.item() / images.shape[0]
            loss = manager.loss_update(loss, model, optimizer, epoch, steps_per_epoch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update(model)
            sums += items.detach().cpu()
            bar.set_postfix(box=f"{items[0]:.3f}", obj=f"{items[1]:.3f}", cls=f"{items[2]:.3f}")
        record = {"epoch": epoch, **dict(zip(("box", "obj", "cls"), (sums / max(steps_per_epoch, 1)).tolist()))}
        if distiller is not None:
            record["distill"] = distill_sum / max(steps_per_epoch, 1)
        record["lr"] = optimizer.param_groups[0]["lr"]
        if fade is not None:
            record["fade_scale"] = fade.scale
            if epoch == fade_epochs - 1:
                # The faded channels output zeros now: removing them changes nothing.
                fade.remove()
                apply_plan(model, fade_plan)
                if ema is not None:
                    apply_plan(ema.ema, fade_plan)
                    ema.ema.requires_grad_(False)  # the narrower layers are new parameters
                regroup_parameters(optimizer, model)
                model_config = model.config
                fade, fade_plan = None, None
        record["sparsity"] = conv_weight_sparsity(model)
        # Per epoch, so that a run resumed over several sessions (or machines) still adds up its time.
        record["seconds"] = round(time.perf_counter() - epoch_started, 1)
        record["device"] = str(device)
        history.append(record)
        finished = epoch == epochs - 1
        if finished:
            manager.finalize(model)
        weights_model = ema.ema if ema is not None else model
        save_training_checkpoint(
            last_path,
            {
                "format": CHECKPOINT_FORMAT,
                "config": asdict(config),
                "model_config": model_config,
                "model": {k: v.detach().cpu() for k, v in weights_model.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "ema": None,  # the saved model already holds the EMA weights
                # ...and these are the weights being trained, which a resumed run must go on
                # from (a finished run is not resumed: its final.pt stays one model in size)
                "training_model": (
                    {k: v.detach().cpu() for k, v in model.state_dict().items()} if ema is not None and not finished else None
                ),
                "ema_updates": ema.updates if ema is not None else 0,
                "epoch": epoch,
                "finished": finished,
                "quantized": is_quantized(weights_model),
                "recipe_text": recipe_text,
                "recipe_variables": variables,
                "history": history,
                # Channels still fading out (their removal is still to come), as plain lists.
                "thinning_plan": {name: kept.tolist() for name, kept in fade_plan.items()} if fade_plan else None,
                "data_state": _data_state(loader),
            },
        )

    final = out_dir / "final.pt"
    if last_path.exists():
        # `final.pt` is the finished run; `last.pt` stays for inspection.
        final.write_bytes(last_path.read_bytes())
    (out_dir / "history.json").write_text(json.dumps(history, indent=2))
    return TrainResult(
        out_dir=out_dir,
        final_checkpoint=final,
        epochs_run=epochs - start_epoch,
        history=history,
        seconds=time.perf_counter() - started,
        device=str(device),
    )


def _data_state(loader) -> dict[str, Any]:
    """Where the data stream stands: the shuffle/worker-seed generator and the
    augmentation RNG of the main process (the one that draws when ``workers=0``)."""
    return {"generator": loader.generator.get_state(), "augment_rng": loader.dataset.rng.bit_generator.state}


def _restore_data_state(loader, state: dict[str, Any]) -> None:
    loader.generator.set_state(state["generator"])
    loader.dataset.rng.bit_generator.state = state["augment_rng"]


def _damage_images(dataset_config, config: TrainConfig, count: int) -> torch.Tensor:
    """The first ``count`` training images, unaugmented, for thinning's ``damage`` criterion."""
    from yolotut.training.data import create_dataloader

    loader, _ = create_dataloader(dataset_config, "train", imgsz=config.imgsz, batch_size=count, augment=False,
                                  shuffle=False, workers=0, max_images=count)
    return next(iter(loader))[0].float() / 255


def _warmup(optimizer, global_step: int, warmup_iters: int, epoch_fraction: float, epochs: int, config: TrainConfig) -> None:
    factor = learning_rate_factor(epoch_fraction, epochs, config.lrf)
    for index, group in enumerate(optimizer.param_groups):
        target = config.lr0 * factor
        if global_step < warmup_iters:
            # Biases (group 2) start high and come down; the rest ramp up from 0.
            start = config.warmup_bias_lr if index == 2 else 0.0
            group["lr"] = float(np.interp(global_step, [0, warmup_iters], [start, target]))
            if "momentum" in group:
                group["momentum"] = float(np.interp(global_step, [0, warmup_iters], [0.8, config.momentum]))
        else:
            group["lr"] = target


# --- one-shot quantization -----------------------------------------------------------


@torch.no_grad()
def calibrate_oneshot(
    model: nn.Module,
    loader,
    recipe: str = "oneshot-quantization",
    variables: dict[str, Any] | None = None,
    num_batches: int = 16,
    progress: bool = True,
) -> nn.Module:
    """Post-training INT8: insert fake-quant observers, run calibration images, freeze.

    No weight is updated. BN layers keep their trained statistics (eval mode); only
    the observers learn activation ranges from the calibration images.
    """
    manager = load_manager(recipe, variables)
    # Train mode while the structure is applied: SparseML then fuses Conv+BN into
    # QAT ConvBn modules (in eval mode torch would fold BN away and SparseML's
    # fusion check fails). Calibration itself runs in eval mode.
    model.train()
    manager.apply(model, finalize=False, loggers=quiet_loggers())
    model.eval()
    model.apply(torch.ao.quantization.enable_observer)
    device = next(model.parameters()).device
    total = min(num_batches, len(loader))
    for images, *_ in tqdm(_limited(loader, num_batches), total=total, desc="calibrating", disable=not progress):
        model(images.to(device).float() / 255)
    model.apply(torch.ao.quantization.disable_observer)
    return model


# --- measurements --------------------------------------------------------------------


def conv_weight_sparsity(model: nn.Module) -> float:
    """Fraction of zeros over all convolution weights (the figure the recipes target)."""
    zeros = total = 0
    for name, parameter in model.named_parameters():
        if parameter.dim() == 4 and name.endswith("weight"):
            zeros += int((parameter == 0).sum())
            total += parameter.numel()
    return zeros / total if total else 0.0
