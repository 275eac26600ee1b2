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

import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from yolotut.compat import apply_sparseml_compat
from yolotut.inference.export import is_quantized
from yolotut.inference.sparsify import conv_weight_sparsity
from yolotut.models import model_from_config
from yolotut.models.checkpoint import (
    TRAINING_FORMAT,
    load_training_checkpoint,
    remove_torn_writes,
    save_training_checkpoint,
)
from yolotut.models.thinning import ChannelFade, ThinningConfig, apply_plan, plan
from yolotut.progress import tqdm
from yolotut.recipes import load_manager, quiet_loggers, recipe_path
from yolotut.training.config import TrainConfig, TrainResult, recipe_variables, validate
from yolotut.training.distill import DISTILLERS, FeatureDistiller, detect_inputs
from yolotut.training.oneshot import limited
from yolotut.training.optim import ModelEMA, apply_learning_rate, build_optimizer, regroup_parameters
from yolotut.training.start import distillation_teacher, initial_model, select_device

__all__ = ["TrainConfig", "TrainResult", "train"]


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run (or resume) a training run with a SparseML recipe; return where the results are."""
    apply_sparseml_compat()
    started = time.perf_counter()
    run = _prepare(config, resume)
    for epoch in range(run.start_epoch, run.epochs):
        if run.manager.qat_active(epoch):
            _start_qat(run)
        record = _train_epoch(run, epoch, progress)
        if run.fade is not None:
            record["fade_scale"] = run.fade.scale
            if epoch == run.config.thinning_fade_epochs - 1:
                _remove_faded_channels(run)
        record["sparsity"] = conv_weight_sparsity(run.model)
        # Per epoch, so that a run resumed over several sessions (or machines) still adds up its time.
        record["seconds"] = round(time.perf_counter() - record.pop("started"), 1)
        record["device"] = str(run.device)
        run.history.append(record)
        finished = epoch == run.epochs - 1
        if finished:
            run.manager.finalize(run.model)
        save_training_checkpoint(run.last_path, _checkpoint(run, epoch, finished))

    out_dir = run.last_path.parent
    final = out_dir / "final.pt"
    if run.last_path.exists():
        # `final.pt` is the finished run; `last.pt` stays for inspection.
        final.write_bytes(run.last_path.read_bytes())
    (out_dir / "history.json").write_text(json.dumps(run.history, indent=2))
    return TrainResult(
        out_dir=out_dir, final_checkpoint=final, epochs_run=run.epochs - run.start_epoch, history=run.history,
        seconds=time.perf_counter() - started, device=str(run.device),
    )


@dataclass
class _Run:
    """Everything one run carries from epoch to epoch."""

    config: TrainConfig
    device: torch.device
    loader: Any
    steps_per_epoch: int
    model: nn.Module
    model_config: dict[str, Any]
    optimizer: torch.optim.Optimizer
    manager: Any
    epochs: int
    start_epoch: int
    last_path: Path
    recipe_text: str
    variables: dict[str, Any]
    compute_loss: Any
    ema: ModelEMA | None = None
    fade: ChannelFade | None = None
    fade_plan: dict[str, torch.Tensor] | None = None
    distiller: Any = None
    use_amp: bool = False
    scaler: Any = None
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def warmup_iters(self) -> int:
        return max(round(self.config.warmup_epochs * self.steps_per_epoch), 0)


def _prepare(config: TrainConfig, resume: bool) -> _Run:
    from yolotut.training.data import create_dataloader, load_dataset_config
    from yolotut.training.loss import ComputeLoss, scale_hyp

    last_path = Path(config.out_dir) / "last.pt"
    payload = load_training_checkpoint(last_path) if resume and last_path.exists() else None
    if resume and payload is None:
        raise FileNotFoundError(f"nothing to resume: {last_path} does not exist")
    if resume:
        remove_torn_writes(last_path)  # a save the killed run never finished; last.pt itself is whole
    if payload is not None:
        config = TrainConfig(**payload["config"])
    validate(config)
    _seed_everything(config.seed)
    device = select_device(config.device)
    dataset_config = load_dataset_config(config.data)
    loader, _ = create_dataloader(
        dataset_config, "train", imgsz=config.imgsz, batch_size=config.batch_size, augment=config.augment,
        shuffle=True, workers=config.workers, max_images=config.max_images, seed=config.seed,
    )
    steps = len(loader) if config.max_steps_per_epoch is None else min(len(loader), config.max_steps_per_epoch)
    if payload is None:
        model, teacher, fade_plan = _fresh_model(config, dataset_config)
        start_epoch = 0
    else:
        model, teacher, fade_plan = _resumed_model(config, dataset_config, payload, loader)
        start_epoch = payload["epoch"] + 1
    model_config = model.config
    model.to(device).train()
    variables = recipe_variables(config)
    manager = load_manager(config.recipe, variables)
    epochs = int(math.ceil(manager.max_epochs))
    _check_fade_schedule(config.thinning_fade_epochs, epochs, manager)
    optimizer = _optimizer(model, config, manager, payload, start_epoch, steps)
    run = _Run(
        config=config, device=device, loader=loader, steps_per_epoch=steps, model=model, model_config=model_config,
        optimizer=optimizer, manager=manager, epochs=epochs, start_epoch=start_epoch, last_path=last_path,
        recipe_text=recipe_path(config.recipe).read_text(), variables=variables,
        compute_loss=ComputeLoss(model, scale_hyp({}, nc=model.nc, nl=model.model[-1].nl, imgsz=config.imgsz)),
        fade_plan=fade_plan, history=list(payload["history"]) if payload else [],
    )
    if config.ema and not manager.qat_active(start_epoch):
        run.ema = _ema(model, payload)
    # After the EMA copy is made: a deep copy would carry the fade hooks along.
    run.fade = ChannelFade(model, fade_plan) if fade_plan else None
    run.use_amp = device.type == "cuda"
    run.scaler = torch.amp.GradScaler("cuda", enabled=run.use_amp)
    if teacher is not None:
        run.distiller = DISTILLERS[config.distill_target](teacher.to(device), config.distill)
        # Before training, not at its first step.
        run.distiller.check_student(model, teacher_name=config.distill_teacher or config.weights)
    return run


def _fresh_model(config: TrainConfig, dataset_config) -> tuple[nn.Module, nn.Module | None, dict | None]:
    """The starting model, its distillation teacher, and the channels still to fade out (if any)."""
    model = initial_model(config, dataset_config.names)
    teacher = distillation_teacher(config, dataset_config.names, start=model) if config.distill > 0 else None
    if not config.thinning:
        return model, teacher, None
    # Before the recipe wraps the convolutions; a resumed run rebuilds the
    # thinned widths from its checkpoint's model config instead.
    thinning = ThinningConfig.from_dict(config.thinning)
    images = _damage_images(dataset_config, config, thinning.damage_images) if thinning.criterion == "damage" else None
    kept = plan(model, thinning, images=images)
    if config.thinning_fade_epochs:
        return model, teacher, kept
    apply_plan(model, kept)
    return model, teacher, None


def _resumed_model(config: TrainConfig, dataset_config, payload: dict[str, Any], loader) -> tuple[nn.Module, nn.Module | None, dict | None]:
    model = model_from_config(payload["model_config"])
    teacher = distillation_teacher(config, dataset_config.names) if config.distill > 0 else None
    fade_plan = None
    if payload.get("thinning_plan"):
        fade_plan = {name: torch.tensor(kept) for name, kept in payload["thinning_plan"].items()}
    if payload.get("data_state") is not None:
        _restore_data_state(loader, payload["data_state"])
    return model, teacher, fade_plan


def _check_fade_schedule(fade_epochs: int, epochs: int, manager) -> None:
    if fade_epochs and (fade_epochs > epochs or manager.qat_active(fade_epochs - 1)):
        raise ValueError(
            f"thinning_fade_epochs={fade_epochs}: the channels must be gone before quantization-aware training "
            f"starts and before the run's {epochs} epochs end; fade over fewer epochs"
        )


def _optimizer(model: nn.Module, config: TrainConfig, manager, payload: dict[str, Any] | None, start_epoch: int,
               steps_per_epoch: int) -> torch.optim.Optimizer:
    optimizer = build_optimizer(model, config)
    if payload is not None:
        # Rebuild the structure the weights were saved in (QAT modules if QAT had
        # started), then restore weights and optimizer into it. The same manager then
        # carries on with the schedule from start_epoch (SparseML's resume pattern).
        if payload["quantized"]:
            manager.apply_structure(model, epoch=float(start_epoch), loggers=quiet_loggers())
        model.load_state_dict(payload["model"])
        optimizer = build_optimizer(model, config)
        optimizer.load_state_dict(payload["optimizer"])
    return manager.modify(model, optimizer, steps_per_epoch=steps_per_epoch, epoch=float(start_epoch), loggers=quiet_loggers())


def _ema(model: nn.Module, payload: dict[str, Any] | None) -> ModelEMA:
    ema = ModelEMA(model, updates=payload["ema_updates"] if payload else 0)
    if payload is not None and payload.get("ema") is not None:
        ema.ema.load_state_dict(payload["ema"])
    if payload is not None and payload.get("training_model") is not None:
        # The EMA copy was made from the saved (averaged) weights; training goes on
        # from the raw ones, as it would have without the interruption.
        model.load_state_dict(payload["training_model"])
    return ema


def _start_qat(run: _Run) -> None:
    """QAT starts: quantize the averaged weights, then train without EMA and AMP."""
    if run.ema is not None:
        run.model.load_state_dict(run.ema.ema.state_dict())
        run.ema = None
    run.use_amp = False
    run.scaler = torch.amp.GradScaler("cuda", enabled=False)


def _train_epoch(run: _Run, epoch: int, progress: bool) -> dict[str, Any]:
    """One pass over the data; the epoch's mean losses and learning rate."""
    config, model, device, steps = run.config, run.model, run.device, run.steps_per_epoch
    model.train()
    started = time.perf_counter()
    sums, distill_sum = torch.zeros(3), 0.0
    distil_features = isinstance(run.distiller, FeatureDistiller)
    fade_steps = config.thinning_fade_epochs * steps
    bar = tqdm(limited(run.loader, config.max_steps_per_epoch), total=steps, desc=f"epoch {epoch + 1}/{run.epochs}",
               disable=not progress, leave=False)
    for step, (images, targets, *_rest) in enumerate(bar):
        global_step = epoch * steps + step
        apply_learning_rate(run.optimizer, global_step, run.warmup_iters, epoch + step / steps, run.epochs, config)
        if run.fade is not None:
            run.fade.scale = max(0.0, 1.0 - (global_step + 1) / fade_steps)
        images = images.to(device, non_blocking=True).float() / 255
        with torch.autocast(device.type, enabled=run.use_amp):
            with detect_inputs(model) if distil_features else nullcontext() as features:
                preds = model(images)
            loss, items = run.compute_loss(preds, targets.to(device))
            if run.distiller is not None:
                distill_loss = run.distiller.loss(features if distil_features else preds, images)
                loss = loss + distill_loss
                distill_sum += distill_loss.item() / images.shape[0]
        _step(run, run.manager.loss_update(loss, model, run.optimizer, epoch, steps))
        sums += items.detach().cpu()
        bar.set_postfix(box=f"{items[0]:.3f}", obj=f"{items[1]:.3f}", cls=f"{items[2]:.3f}")
    record: dict[str, Any] = {"epoch": epoch, **dict(zip(("box", "obj", "cls"), (sums / max(steps, 1)).tolist(), strict=True))}
    if run.distiller is not None:
        record["distill"] = distill_sum / max(steps, 1)
    record["lr"] = run.optimizer.param_groups[0]["lr"]
    record["started"] = started
    return record


def _step(run: _Run, loss: torch.Tensor) -> None:
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.unscale_(run.optimizer)
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), max_norm=10.0)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    if run.ema is not None:
        run.ema.update(run.model)


def _remove_faded_channels(run: _Run) -> None:
    """The faded channels output zeros now: removing them changes nothing."""
    run.fade.remove()
    apply_plan(run.model, run.fade_plan)
    if run.ema is not None:
        apply_plan(run.ema.ema, run.fade_plan)
        run.ema.ema.requires_grad_(False)  # the narrower layers are new parameters
    regroup_parameters(run.optimizer, run.model)
    run.model_config = run.model.config
    run.fade, run.fade_plan = None, None


def _checkpoint(run: _Run, epoch: int, finished: bool) -> dict[str, Any]:
    """What ``last.pt`` holds after ``epoch``: enough to resume exactly where the run stands."""
    weights_model = run.ema.ema if run.ema is not None else run.model
    return {
        "format": TRAINING_FORMAT,
        "config": asdict(run.config),
        "model_config": run.model_config,
        "model": {k: v.detach().cpu() for k, v in weights_model.state_dict().items()},
        "optimizer": run.optimizer.state_dict(),
        "ema": None,  # the saved model already holds the EMA weights
        # ...and these are the weights being trained, which a resumed run must go on
        # from (a finished run is not resumed: its final.pt stays one model in size)
        "training_model": (
            {k: v.detach().cpu() for k, v in run.model.state_dict().items()} if run.ema is not None and not finished else None
        ),
        "ema_updates": run.ema.updates if run.ema is not None else 0,
        "epoch": epoch,
        "finished": finished,
        "quantized": is_quantized(weights_model),
        "recipe_text": run.recipe_text,
        "recipe_variables": run.variables,
        "history": run.history,
        # Channels still fading out (their removal is still to come), as plain lists.
        "thinning_plan": {name: kept.tolist() for name, kept in run.fade_plan.items()} if run.fade_plan else None,
        "data_state": _data_state(run.loader),
    }


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
