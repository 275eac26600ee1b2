"""One-shot INT8: fake-quant observers calibrated on a few images, no weight updated."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn as nn

from yolotut.progress import tqdm
from yolotut.recipes import load_manager, quiet_loggers


def limited(loader: Iterable, max_steps: int | None) -> Iterator:
    """The first ``max_steps`` batches of ``loader`` (all of them for ``None``)."""
    for step, batch in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            return
        yield batch


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
    for images, *_ in tqdm(limited(loader, num_batches), total=total, desc="calibrating", disable=not progress):
        model(images.to(device).float() / 255)
    model.apply(torch.ao.quantization.disable_observer)
    return model
