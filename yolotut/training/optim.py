"""The optimizer, the learning-rate schedule and the weight average (EMA), as YOLOv5 sets them up."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn as nn

from yolotut.training.config import TrainConfig


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


def apply_learning_rate(
    optimizer: torch.optim.Optimizer, global_step: int, warmup_iters: int, epoch_fraction: float, epochs: int,
    config: TrainConfig,
) -> None:
    """Set every group's learning rate (and momentum during warm-up) for this step."""
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
