"""Channel thinning: structured pruning that removes whole channels from YOLOv5.

Unstructured and ``[1,4]``-block zeros only pay where the engine has sparse kernels
that beat its dense ones; on some CPUs they do not (see the lab notes, ``docs/lab-notes/``).
Removing channels makes a smaller *dense* model, which is faster on every engine, by
about the share of multiply-adds removed. The price is accuracy, which fine-tuning
after thinning must win back; :class:`ChannelFade` lets training fade the channels out
gradually instead (``TrainConfig.thinning_fade_epochs``), which keeps more of what a
pretrained model knew (YOLOv5n, 3 epochs on pistols, the smallest filter norms
removed: mAP@0.5 0.201 faded vs 0.031 removed at once; the lab notes, ``docs/lab-notes/``).

Only channels that no residual add, ``Concat`` across modules or ``Detect`` depends on
are removed: the hidden channels *inside* the blocks, and the outputs of convolution
blocks that only the next block reads. Each such set of channels is a
:class:`ChannelGroup`: the convolutions that produce it (their output channels, with
their BatchNorm) and those that read it (their input channels, at an offset when they
read a concatenation). The groups of one YOLOv5 (v6.x) model:

* ``model.K.m.J.cv1`` (kind ``bottleneck``): a bottleneck's 1x1 -> 3x3 hidden channels;
* ``model.K.cv1`` + the bottlenecks' outputs (kind ``c3``): a C3 block's main branch
  (one group when the bottlenecks add their input back, else one group per segment);
* ``model.K.cv2`` (kind ``c3``): a C3 block's skip branch into ``cv3``;
* ``model.K.cv1`` of SPPF (kind ``sppf``): read four times (x and three max-pools);
* ``model.K`` (kind ``conv``): the output of a plain convolution block that only the
  next block reads, the stem and the strided convolutions of the backbone (blocks 0,
  1, 3, 5 and 7 of YOLOv5 v6). Their outputs are block outputs, but no residual add
  or ``Concat`` reads them. Halving blocks 3, 5 and 7 measured 1.09x in DeepSparse
  INT8; halving the stem (blocks 0 and 1), where the model spends most of its time at
  the highest resolutions, measured no faster (the lab notes, ``docs/lab-notes/``).

Which channels go is ``ThinningConfig.criterion``: by the L1 norm of each channel's
BatchNorm-folded filters, summed over the group's producers, at random, or by the
measured ``damage`` (:func:`removal_damage`: how far removing that channel alone moves
the features the head reads, on sample images; one forward pass per channel, so
minutes instead of milliseconds; on pistols it measured no better than the default:
mAP@0.5 0.332 vs 0.341 after 3 epochs). The default removes the
channels with the *largest* norms, against the usual rule of thumb, because that is what
measured best on the COCO YOLOv5n (the lab notes, ``docs/lab-notes/``): before any training it
moved the features the head reads least (removing the smallest norms did worse than a
random choice), and faded out during training on pistols they left the better model
(mAP@0.5 after 3 epochs 0.341 against 0.201 for the smallest norms; after 8 epochs
with QAT 0.536 against 0.413). The other criteria remain available. Kept widths
are rounded to a multiple of 8 (``multiple``): a 12-channel layer measured slower in
DeepSparse than a 16-channel one.

The thinned widths live in :attr:`DetectionModel.thinned` and in its ``config``, so a
checkpoint of a thinned model rebuilds with :func:`~yolotut.models.model_from_config`.
The thinnings the tutorial and its studies use are named in
:mod:`yolotut.models.thinning_presets`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

from yolotut.models.common import C3, SPPF, Conv
from yolotut.progress import tqdm

__all__ = [
    "CRITERIA", "KINDS", "ChannelFade", "ChannelGroup", "ThinningConfig", "apply_plan", "channel_groups",
    "conv_weight_count", "feature_errors", "plan", "removal_damage", "thin", "thin_to_widths",
]

KINDS = ("bottleneck", "c3", "sppf", "conv")
# Which channels a group loses: largest / smallest BatchNorm-folded filter norms, random,
# or those whose removal measured least damage (removal_damage, needs sample images).
CRITERIA = ("largest-norm", "smallest-norm", "random", "damage")


@dataclass(frozen=True)
class ThinningConfig:
    """Fraction of channels to *keep* per group kind (1.0 = untouched).

    ``modules``: only groups inside these ``model.K`` indices (``None`` = all).
    ``module_keep``: fractions for particular blocks, by kind, that override the
    kind's fraction there, e.g. ``{17: {"c3": 0.25}}`` (thin the head more than the
    backbone, whose channels measured more damaging to lose).
    ``criterion``: which channels go (:data:`CRITERIA`): those with the largest
    BatchNorm-folded filter norms (measured best, see the module's docstring), the
    smallest, a random choice drawn with ``seed``, or ``damage``: those whose removal
    alone moves the head's features least (:func:`removal_damage`), measured on
    ``damage_images`` sample images that :func:`plan` is given.
    """

    bottleneck: float = 1.0
    c3: float = 1.0
    sppf: float = 1.0
    conv: float = 1.0
    modules: tuple[int, ...] | None = None
    module_keep: Mapping[int, Mapping[str, float]] | None = field(default=None, hash=False)
    multiple: int = 8
    criterion: str = "largest-norm"
    seed: int = 0
    damage_images: int = 8

    def __post_init__(self) -> None:
        for kind in KINDS:
            _check_keep(f"ThinningConfig.{kind}", getattr(self, kind))
        for module, kinds in (self.module_keep or {}).items():
            if not isinstance(module, int):
                raise ValueError(f"ThinningConfig.module_keep: keys are block indices (int), got {module!r}")
            unknown = sorted(set(kinds) - set(KINDS))
            if unknown:
                raise ValueError(f"ThinningConfig.module_keep[{module}]: unknown kinds {unknown}; use {list(KINDS)}")
            for kind, keep in kinds.items():
                _check_keep(f"ThinningConfig.module_keep[{module}][{kind!r}]", keep)
        if self.multiple < 1:
            raise ValueError(f"ThinningConfig.multiple must be >= 1, got {self.multiple}")
        if self.criterion not in CRITERIA:
            raise ValueError(f"ThinningConfig.criterion: expected one of {list(CRITERIA)}, got {self.criterion!r}")
        if self.damage_images < 1:
            raise ValueError(f"ThinningConfig.damage_images must be >= 1, got {self.damage_images}")

    def keep(self, group: ChannelGroup) -> float:
        if self.modules is not None and group.module not in self.modules:
            return 1.0
        override = (self.module_keep or {}).get(group.module, {})
        return float(override.get(group.kind, getattr(self, group.kind)))

    def to_dict(self) -> dict[str, Any]:
        module_keep = {str(m): dict(kinds) for m, kinds in self.module_keep.items()} if self.module_keep else None
        return {"bottleneck": self.bottleneck, "c3": self.c3, "sppf": self.sppf, "conv": self.conv, "modules": list(self.modules) if self.modules is not None else None,
                "module_keep": module_keep, "multiple": self.multiple, "criterion": self.criterion, "seed": self.seed, "damage_images": self.damage_images}

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> ThinningConfig:
        """The inverse of :meth:`to_dict` (any subset of the fields), with a clear error on unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"thinning settings: unknown keys {unknown}; use {sorted(known)}")
        values = dict(settings)
        if values.get("modules") is not None:
            values["modules"] = tuple(int(m) for m in values["modules"])
        if values.get("module_keep") is not None:
            # JSON keys are strings.
            values["module_keep"] = {int(m): dict(kinds) for m, kinds in values["module_keep"].items()}
        return cls(**values)


def _check_keep(name: str, keep: float) -> None:
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"{name} is the fraction of channels to keep: expected 0 < keep <= 1, got {keep}")


@dataclass
class ChannelGroup:
    """Channels produced by ``producers`` (output channels) and read by ``consumers``
    (input channels ``offset .. offset + width`` of each)."""

    name: str
    kind: str
    module: int
    producers: list[Conv]
    consumers: list[tuple[nn.Conv2d, int]] = field(default_factory=list)

    @property
    def width(self) -> int:
        return self.producers[0].conv.out_channels

    def importance(self) -> torch.Tensor:
        """Per channel: L1 norm of the BatchNorm-folded filters, summed over producers."""
        total = torch.zeros(self.width)
        for conv in self.producers:
            weight = conv.conv.weight.detach().float().abs().flatten(1).sum(1).cpu()
            if isinstance(conv.bn, nn.BatchNorm2d):
                bn = conv.bn
                scale = (bn.weight.detach().float() / torch.sqrt(bn.running_var.float() + bn.eps)).abs().cpu()
                weight = weight * scale
            total += weight
        return total


def _index(model: nn.Module) -> list[nn.Module]:
    layers = getattr(model, "model", None)
    if not isinstance(layers, nn.Sequential):
        raise TypeError(f"expected a yolotut DetectionModel, got {type(model).__name__}")
    return list(layers)


def _check_plain(conv: Conv, name: str) -> None:
    if not isinstance(conv, Conv) or type(conv.conv) is not nn.Conv2d or not isinstance(conv.bn, (nn.BatchNorm2d, nn.Identity)):
        raise TypeError(
            f"{name}: channel thinning needs plain Conv2d + BatchNorm layers; thin the float model "
            "before quantization-aware training or one-shot calibration wraps it"
        )
    if conv.conv.groups != 1:
        raise TypeError(f"{name}: grouped convolutions cannot be thinned")


def channel_groups(model: nn.Module) -> list[ChannelGroup]:
    """Every thinnable channel group of a YOLOv5 ``DetectionModel``, in layer order."""
    groups: list[ChannelGroup] = []
    layers = _index(model)
    for k, block in enumerate(layers):
        prefix = f"model.{k}"
        if isinstance(block, C3):
            bottlenecks = list(block.m)
            for j, b in enumerate(bottlenecks):
                groups.append(ChannelGroup(f"{prefix}.m.{j}.cv1", "bottleneck", k, [b.cv1], [(b.cv2.conv, 0)]))
            if any(b.add for b in bottlenecks) != all(b.add for b in bottlenecks):
                raise TypeError(f"{prefix}: C3 with both residual and plain bottlenecks cannot be thinned")
            if bottlenecks and all(b.add for b in bottlenecks):
                producers = [block.cv1] + [b.cv2 for b in bottlenecks]
                consumers = [(b.cv1.conv, 0) for b in bottlenecks] + [(block.cv3.conv, 0)]
                groups.append(ChannelGroup(f"{prefix}.cv1", "c3", k, producers, consumers))
            else:
                chain = [block.cv1] + [b.cv2 for b in bottlenecks]
                readers = [b.cv1.conv for b in bottlenecks] + [block.cv3.conv]
                names = [f"{prefix}.cv1"] + [f"{prefix}.m.{j}.cv2" for j in range(len(bottlenecks))]
                for name, producer, reader in zip(names, chain, readers):
                    groups.append(ChannelGroup(name, "c3", k, [producer], [(reader, 0)]))
            main_width = block.cv1.conv.out_channels
            groups.append(ChannelGroup(f"{prefix}.cv2", "c3", k, [block.cv2], [(block.cv3.conv, main_width)]))
        elif isinstance(block, SPPF):
            width = block.cv1.conv.out_channels
            groups.append(ChannelGroup(f"{prefix}.cv1", "sppf", k, [block.cv1], [(block.cv2.conv, i * width) for i in range(4)]))
        elif isinstance(block, Conv):
            readers = _next_block_input_convs(layers, k, model.save)
            if readers is not None:
                groups.append(ChannelGroup(prefix, "conv", k, [block], [(conv, 0) for conv in readers]))
    for group in groups:
        for conv in group.producers:
            _check_plain(conv, group.name)
    return groups


def _next_block_input_convs(layers: list[nn.Module], k: int, read_later: Collection[int]) -> list[nn.Conv2d] | None:
    """The convolutions that read block ``k``'s output channels directly, when only the
    next block reads it (``k`` is not among the outputs kept for later blocks,
    ``DetectionModel.save``) and that block is a Conv, C3 or SPPF; else ``None``."""
    if k in read_later or k + 1 >= len(layers) or layers[k + 1].f != -1:
        return None
    reader = layers[k + 1]
    if isinstance(reader, C3):
        return [reader.cv1.conv, reader.cv2.conv]
    if isinstance(reader, SPPF):
        return [reader.cv1.conv]
    if isinstance(reader, Conv):
        return [reader.conv]
    return None


def _kept_width(width: int, keep: float, multiple: int) -> int:
    if keep >= 1.0:
        return width
    target = max(multiple, round(width * keep / multiple) * multiple)
    return min(width, target)


def plan(
    model: nn.Module, config: ThinningConfig, names: Collection[str] | None = None, images: torch.Tensor | None = None,
    *, damage: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """The channels thinning would keep, per group ``config`` selects (sorted indices); the model is not changed.

    ``names``: only these groups (see :func:`channel_groups`). ``images``: the float
    batch (0..1, ``N x 3 x H x W``) the ``damage`` criterion measures on; the other
    criteria do not use it. ``damage``: instead of ``images``, the result of
    :func:`removal_damage` measured before, so that several plans share one measurement.
    Groups left whole are not in the result. Hand the plan to :func:`apply_plan`, or
    first to :class:`ChannelFade` to remove the channels gradually during training.
    """
    groups = channel_groups(model)
    if names is not None:
        unknown = sorted(set(names) - {g.name for g in groups})
        if unknown:
            raise ValueError(f"no channel groups named {unknown} in this model")
        groups = [g for g in groups if g.name in names]
    widths = {g.name: _kept_width(g.width, config.keep(g), config.multiple) for g in groups}
    groups = [g for g in groups if widths[g.name] < g.width]
    if config.criterion == "damage":
        if damage is None:
            if images is None:
                raise ValueError(
                    "criterion 'damage' measures each channel's removal on sample images: pass images "
                    "(a float batch in 0..1, N x 3 x H x W) or a removal_damage() result, or choose another criterion"
                )
            damage = removal_damage(model, images, [g.name for g in groups])
        _check_damage(damage, groups)
    generator = torch.Generator().manual_seed(config.seed)
    chosen: dict[str, torch.Tensor] = {}
    for group in groups:
        if config.criterion == "random":
            order = torch.randperm(group.width, generator=generator)
        elif config.criterion == "damage":
            order = torch.argsort(damage[group.name], descending=True, stable=True)  # the most harmful to lose first
        else:
            # Kept first: the largest norms when the smallest go, and the other way round.
            order = torch.argsort(group.importance(), descending=config.criterion == "smallest-norm", stable=True)
        chosen[group.name] = torch.sort(order[:widths[group.name]]).values
    return chosen


def _check_damage(damage: Mapping[str, torch.Tensor], groups: list[ChannelGroup]) -> None:
    for group in groups:
        if group.name not in damage:
            raise ValueError(f"damage: no measurement for group {group.name}; measure it with removal_damage(model, images)")
        if damage[group.name].shape != (group.width,):
            raise ValueError(
                f"damage for {group.name} has shape {tuple(damage[group.name].shape)}, the group has {group.width} "
                "channels: it was measured on another model"
            )


@torch.no_grad()
def removal_damage(
    model: nn.Module, images: torch.Tensor, names: Collection[str] | None = None, *, progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Per channel of each group: how far removing that channel alone moves the features ``Detect`` reads.

    The relative error ``||f - f_dense|| / ||f_dense||`` of the P3/P4/P5 feature maps on
    ``images`` (float, 0..1, ``N x 3 x H x W``), averaged over the three levels: the
    measure of ``benchmarks/thinning_damage.py``. The channel is silenced as a finished
    :class:`ChannelFade` silences it, which is what removing it does. One forward pass
    per channel, from the group's block on (the layers before it are computed once), in
    eval mode; the model is left as it was. ``names``: only these groups.
    """
    if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(f"images: expected a float batch N x 3 x H x W in 0..1, got {images.dtype} {tuple(images.shape)}")
    layers = _index(model)
    groups = [g for g in channel_groups(model) if names is None or g.name in names]
    was_training = model.training
    model.eval()
    try:
        images = images.to(next(model.parameters()).device)
        dense = _forward_layers(layers, [], images, 0)
        reference = _detect_inputs(layers, dense)
        result: dict[str, torch.Tensor] = {}
        for group in tqdm(groups, desc="channel damage", unit="group", disable=not progress):
            damage = torch.empty(group.width)
            for channel in range(group.width):
                fade = ChannelFade(model, {group.name: torch.tensor([c for c in range(group.width) if c != channel])})
                fade.scale = 0.0
                try:
                    start = group.module
                    features = _detect_inputs(layers, _forward_layers(layers, dense[:start], dense[start - 1] if start else images, start))
                finally:
                    fade.remove()
                damage[channel] = sum(feature_errors(features, reference)) / len(reference)
            result[group.name] = damage
    finally:
        model.train(was_training)
    return result


def feature_errors(features: Sequence[torch.Tensor], reference: Sequence[torch.Tensor]) -> list[float]:
    """``||f - r|| / ||r||`` per feature map: how far ``features`` moved from ``reference``."""
    if len(features) != len(reference):
        raise ValueError(f"{len(features)} feature maps against {len(reference)} reference maps")
    return [float((f - r).norm() / r.norm()) for f, r in zip(features, reference)]


def _forward_layers(layers: list[nn.Module], earlier: list[torch.Tensor], x: torch.Tensor, start: int) -> list[torch.Tensor]:
    """Every layer's output up to ``Detect``, given those before ``start`` (DetectionModel.forward's routing)."""
    outputs = list(earlier)
    for m in layers[start:-1]:
        if m.f != -1:
            x = outputs[m.f] if isinstance(m.f, int) else [x if j == -1 else outputs[j] for j in m.f]
        x = m(x)
        outputs.append(x)
    return outputs


def _detect_inputs(layers: list[nn.Module], outputs: list[torch.Tensor]) -> list[torch.Tensor]:
    return [outputs[j] for j in layers[-1].f]


def apply_plan(model: nn.Module, kept: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, int]]:
    """Remove every channel a :func:`plan` does not keep, in place.

    Returns ``{group name: (channels before, channels after)}``. The plan's indices
    refer to the groups as they are now (a plan is used once).
    """
    return _apply(model, _groups_of_plan(model, kept), kept)


def _groups_of_plan(model: nn.Module, kept: Mapping[str, torch.Tensor]) -> dict[str, ChannelGroup]:
    """The model's channel groups by name, once the plan is checked against them."""
    groups = {g.name: g for g in channel_groups(model)}
    unknown = sorted(set(kept) - set(groups))
    if unknown:
        raise ValueError(f"thinning plan names groups {unknown} this model does not have")
    for name, indices in kept.items():
        width = groups[name].width
        if len(indices) == 0 or int(indices.min()) < 0 or int(indices.max()) >= width:
            raise ValueError(f"thinning plan for {name}: kept channels must be 1..{width} indices below {width}")
    return groups


def thin(
    model: nn.Module, config: ThinningConfig, names: Collection[str] | None = None, images: torch.Tensor | None = None,
) -> dict[str, tuple[int, int]]:
    """Remove the channels ``config.criterion`` chooses in every group ``config`` selects, in place.

    ``names``: only these groups (see :func:`channel_groups`); ``images``: for the
    ``damage`` criterion (see :func:`plan`). Returns ``{group name:
    (channels before, channels after)}`` for the groups changed. The model's outputs
    change (unless the removed channels were unused): fine-tune it, or fade the
    channels out first (:class:`ChannelFade`).
    """
    return apply_plan(model, plan(model, config, names, images))


class ChannelFade:
    """Scales the channels a plan removes by ``scale`` (set it from 1 down to 0) while training.

    One-shot removal moves a pretrained model's features a long way
    (``benchmarks/thinning_damage.py``). Fading the same channels out over some
    epochs lets the rest of the network take their work over step by step; at
    ``scale == 0`` they output exactly zero (the hook multiplies the producers'
    activated outputs, and a residual stream is the sum of faded producers), so
    :func:`apply_plan` then removes them without changing the model's outputs.
    """

    def __init__(self, model: nn.Module, kept: Mapping[str, torch.Tensor]) -> None:
        groups = _groups_of_plan(model, kept)
        self.scale = 1.0
        self._handles = []
        for name, indices in kept.items():
            removed = torch.ones(groups[name].width, dtype=torch.bool)
            removed[indices] = False
            for producer in groups[name].producers:
                self._handles.append(producer.register_forward_hook(self._hook(removed)))

    def _hook(self, removed: torch.Tensor):
        # The mask is copied to a device once, not on every forward pass of every step.
        masks: dict[torch.device, torch.Tensor] = {}

        def fade(_module: nn.Module, _args: tuple, output: torch.Tensor) -> torch.Tensor:
            if self.scale >= 1.0:
                return output
            mask = masks.get(output.device)
            if mask is None:
                mask = masks[output.device] = removed.to(output.device).view(1, -1, 1, 1)
            # In the output's dtype: a float32 factor would promote half-precision (AMP) outputs.
            factor = torch.where(mask, self.scale, 1.0).to(output.dtype)
            return output * factor

        return fade

    def remove(self) -> None:
        """Take the hooks off (the model computes as before the fade started)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def thin_to_widths(model: nn.Module, widths: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """Cut the named groups to ``widths`` by keeping their first channels.

    For rebuilding a thinned model's architecture before loading its ``state_dict``
    (the weights are then replaced): see :attr:`DetectionModel.config`.
    """
    groups = {g.name: g for g in channel_groups(model)}
    unknown = sorted(set(widths) - set(groups))
    if unknown:
        raise ValueError(f"thinned groups {unknown} do not exist in this model; known: {sorted(groups)}")
    chosen = {}
    for name, width in widths.items():
        if not 1 <= int(width) <= groups[name].width:
            raise ValueError(f"group {name}: width {width} outside 1..{groups[name].width}")
        if int(width) < groups[name].width:
            chosen[name] = torch.arange(int(width))
    return _apply(model, groups, chosen)


def _apply(model: nn.Module, groups: Mapping[str, ChannelGroup], chosen: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, int]]:
    # Input channels each consumer keeps: all, minus each thinned segment's dropped ones.
    consumer_keep: dict[int, torch.Tensor] = {}
    for name, kept in chosen.items():
        group = groups[name]
        for conv, offset in group.consumers:
            current = consumer_keep.setdefault(id(conv), torch.ones(conv.in_channels, dtype=torch.bool))
            segment = torch.zeros(group.width, dtype=torch.bool)
            segment[kept] = True
            current[offset : offset + group.width] &= segment
    out_keep: dict[int, torch.Tensor] = {}
    for name, kept in chosen.items():
        for producer in groups[name].producers:
            out_keep[id(producer.conv)] = kept
    changed = {name: (groups[name].width, len(kept)) for name, kept in chosen.items()}
    for module in list(model.modules()):
        if not isinstance(module, Conv):
            continue
        conv = module.conv
        outs = out_keep.get(id(conv))
        ins = consumer_keep.get(id(conv))
        if outs is None and ins is None:
            continue
        new = _sliced_conv(conv, outs, None if ins is None else torch.nonzero(ins).flatten())
        module.conv = new
        if outs is not None and isinstance(module.bn, nn.BatchNorm2d):
            module.bn = _sliced_bn(module.bn, outs)
    thinned = getattr(model, "thinned", None)
    if isinstance(thinned, dict):
        thinned.update({name: after for name, (_, after) in changed.items()})
    return changed


@torch.no_grad()
def _sliced_conv(conv: nn.Conv2d, outs: torch.Tensor | None, ins: torch.Tensor | None) -> nn.Conv2d:
    weight = conv.weight
    if outs is not None:
        weight = weight[outs.to(weight.device)]
    if ins is not None:
        weight = weight[:, ins.to(weight.device)]
    new = nn.Conv2d(
        weight.shape[1], weight.shape[0], conv.kernel_size, conv.stride, conv.padding,
        dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
    ).to(device=weight.device, dtype=weight.dtype)
    new.weight.copy_(weight)
    if conv.bias is not None:
        new.bias.copy_(conv.bias if outs is None else conv.bias[outs.to(conv.bias.device)])
    new.train(conv.training)
    return new


@torch.no_grad()
def _sliced_bn(bn: nn.BatchNorm2d, outs: torch.Tensor) -> nn.BatchNorm2d:
    index = outs.to(bn.weight.device)
    new = nn.BatchNorm2d(len(outs), eps=bn.eps, momentum=bn.momentum).to(device=bn.weight.device, dtype=bn.weight.dtype)
    new.weight.copy_(bn.weight[index])
    new.bias.copy_(bn.bias[index])
    new.running_mean.copy_(bn.running_mean[index])
    new.running_var.copy_(bn.running_var[index])
    new.num_batches_tracked.copy_(bn.num_batches_tracked)
    new.train(bn.training)
    return new


def conv_weight_count(model: nn.Module) -> int:
    """Number of convolution weights (the figure thinning reduces)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))

