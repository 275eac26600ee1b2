"""Apply a sparsity pattern to a model's convolution weights directly, by magnitude.

Inference speed depends on *where* the zeros are (which layers, which block shape),
never on the values of the surviving weights. So the question "which sparsity
configuration makes DeepSparse faster" can be answered on a freshly built model with
its weights pruned in one step -- no training -- and the answer then becomes the
per-group targets of the ``pruning*.yaml`` recipes.

The layer groups are read from ``yolotut/recipes/pruning.yaml`` (the
``final_sparsity`` mapping of its ``GMPruningModifier``), so the recipe stays the one
source of truth for which layers belong together. A :class:`SparsityConfig` gives a
target per group name (``sparsity_early`` ...), optionally ``"all"`` for every other
convolution, the layers that must stay dense, and the mask shape:

* ``"[1,4]"``: blocks of four consecutive *input channels* at one (out channel,
  ky, kx) position are zeroed together, ranked by their mean ``|w|`` -- the layout
  SparseML's ``FourBlockMaskCreator`` produces and DeepSparse's INT8 (VNNI) kernels
  skip;
* ``"unstructured"``: single weights, ranked by ``|w|``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import yaml

BLOCK = "[1,4]"
UNSTRUCTURED = "unstructured"
MASK_TYPES = (BLOCK, UNSTRUCTURED)
ALL = "all"  # config key: every convolution that no recipe group names
GROUP_RECIPE = "pruning.yaml"
# The layers the recipes never prune: the stem (3 input channels, sees raw pixels)
# and the Detect convolutions (they write the outputs directly).
RECIPE_DENSE = ("model.0", "model.24")


@dataclass(frozen=True)
class LayerGroup:
    """One ``final_sparsity`` entry of the pruning recipe: a variable and its regexes."""

    name: str
    patterns: tuple[str, ...]
    default: float

    def matches(self, param_name: str) -> bool:
        return any(re.match(pattern, param_name) for pattern in self.patterns)


class _RecipeLoader(yaml.SafeLoader):
    """A YAML loader that reads SparseML's ``!Modifier`` tags as plain mappings."""


def _tagged_mapping(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(None, None, f"!{tag_suffix} must be a mapping", node.start_mark)
    return {"__modifier__": tag_suffix, **loader.construct_mapping(node, deep=True)}


_RecipeLoader.add_multi_constructor("!", _tagged_mapping)


@lru_cache(maxsize=4)
def recipe_groups(recipe: str = GROUP_RECIPE) -> dict[str, LayerGroup]:
    """The layer groups of a shipped pruning recipe, keyed by their variable name.

    Read from the recipe's ``GMPruningModifier`` entries, in either SparseML form:
    one modifier per group (``params``: ``re:`` regexes or exact parameter names,
    ``final_sparsity: eval(<variable>)``) or one modifier whose ``final_sparsity`` maps
    ``eval(<variable>)`` to regexes.
    The defaults are the recipe's top-level variables.
    """
    source = resources.files("yolotut.recipes") / recipe
    data = yaml.load(source.read_text(), Loader=_RecipeLoader)
    modifiers = [m for m in data.get("modifiers", []) if m.get("__modifier__") == "GMPruningModifier"]
    if not modifiers:
        raise ValueError(f"{source}: no GMPruningModifier to read the layer groups from")
    patterns_by_group: dict[str, list[str]] = {}
    for modifier in modifiers:
        final = modifier.get("final_sparsity")
        entries = final.items() if isinstance(final, Mapping) else [(final, modifier.get("params"))]
        for key, patterns in entries:
            match = re.fullmatch(r"eval\((\w+)\)", str(key).strip())
            if match is None or match.group(1) not in data:
                raise ValueError(
                    f"{source}: final_sparsity {key!r} is not eval(<top-level variable>); "
                    "yolotut.inference.sparsify needs named groups to address"
                )
            name = match.group(1)
            for pattern in [patterns] if isinstance(patterns, str) else patterns or []:
                pattern = str(pattern)
                # SparseML reads a param without "re:" as the exact parameter name.
                regex = pattern[3:] if pattern.startswith("re:") else re.escape(pattern) + "$"
                patterns_by_group.setdefault(name, []).append(regex)
    return {
        name: LayerGroup(name, tuple(patterns), float(data[name])) for name, patterns in patterns_by_group.items()
    }


def _normalise_mask(mask_type: str | Iterable[int]) -> str:
    if not isinstance(mask_type, str):
        mask_type = "[" + ",".join(str(int(v)) for v in mask_type) + "]"
    compact = mask_type.replace(" ", "").lower()
    if compact in ("[1,4]", "1x4", "block4"):
        return BLOCK
    if compact == UNSTRUCTURED:
        return UNSTRUCTURED
    raise ValueError(f"unknown mask_type {mask_type!r}; use '[1,4]' (blocks of 4 input channels) or 'unstructured'")


@dataclass(frozen=True)
class SparsityConfig:
    """Where to put zeros: per-group targets, layers kept dense, mask shape.

    ``targets`` keys are the group names of ``recipe_file`` (:func:`recipe_groups`, e.g.
    ``sparsity_deep`` of ``pruning.yaml``) or ``"all"`` (every convolution no group
    names, and every group not listed). ``dense`` entries are module prefixes
    (``"model.24"``) or ``re:`` regexes over parameter names; they win over any target.
    """

    targets: Mapping[str, float] = field(default_factory=dict)
    dense: tuple[str, ...] = RECIPE_DENSE
    mask_type: str = BLOCK
    name: str = ""
    recipe_file: str = GROUP_RECIPE

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask_type", _normalise_mask(self.mask_type))
        object.__setattr__(self, "dense", tuple(self.dense))
        object.__setattr__(self, "targets", dict(self.targets))
        known = set(recipe_groups(self.recipe_file)) | {ALL}
        for key, value in self.targets.items():
            if key not in known:
                raise ValueError(f"unknown sparsity group {key!r}; known groups: {', '.join(sorted(known))} ({self.recipe_file})")
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"target for {key!r} must be in [0, 1), got {value}")

    @classmethod
    def recipe(cls, scale: float = 1.0, mask_type: str = BLOCK, dense: tuple[str, ...] = RECIPE_DENSE, cap: float = 0.95,
               name: str = "", recipe_file: str = GROUP_RECIPE) -> SparsityConfig:
        """A recipe's own per-group defaults, each multiplied by ``scale`` (at most ``cap``)."""
        targets = {g.name: round(min(cap, g.default * scale), 4) for g in recipe_groups(recipe_file).values()}
        return cls(targets, dense, mask_type, name or f"recipe x{scale:g}", recipe_file)

    @classmethod
    def from_recipe_file(cls, recipe_file: str, dense: tuple[str, ...] = ("model.0",), name: str = "") -> SparsityConfig:
        """Exactly a recipe's per-layer targets and mask type: the layers it names, nothing
        else; only the stem kept dense unless ``dense`` says more."""
        source = resources.files("yolotut.recipes") / recipe_file
        mask = yaml.load(source.read_text(), Loader=_RecipeLoader).get("mask_type", BLOCK)
        return cls.recipe(1.0, mask, dense, cap=0.99, name=name or recipe_file.removesuffix(".yaml"), recipe_file=recipe_file)

    @classmethod
    def uniform(cls, sparsity: float, mask_type: str = BLOCK, dense: tuple[str, ...] = RECIPE_DENSE, name: str = "") -> SparsityConfig:
        """One target for every convolution that is not kept dense."""
        return cls({ALL: sparsity}, dense, mask_type, name or f"uniform {sparsity:g} {_normalise_mask(mask_type)}")

    @classmethod
    def dense_model(cls) -> SparsityConfig:
        return cls({}, RECIPE_DENSE, BLOCK, "dense")

    def to_dict(self) -> dict[str, Any]:
        data = {"targets": dict(sorted(self.targets.items())), "dense": list(self.dense), "mask_type": self.mask_type, "name": self.name}
        if self.recipe_file != GROUP_RECIPE:  # left out for the default: earlier keys (cache hashes) stay valid
            data["recipe"] = self.recipe_file
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SparsityConfig:
        return cls(data.get("targets", {}), tuple(data.get("dense", RECIPE_DENSE)), data.get("mask_type", BLOCK),
                   data.get("name", ""), data.get("recipe", GROUP_RECIPE))

    def key(self) -> str:
        """A short stable hash of what decides the pattern (the name is only a label)."""
        payload = {k: v for k, v in self.to_dict().items() if k != "name"}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

    def recipe_args(self) -> dict[str, Any]:
        """The ``--recipe-arg`` values that make ``pruning*.yaml`` (or ``self.recipe_file``) train towards this pattern."""
        groups = recipe_groups(self.recipe_file)
        fallback = self.targets.get(ALL)
        args: dict[str, Any] = {}
        for name in groups:
            value = self.targets.get(name, fallback)
            if value is not None:
                args[name] = value
        args["mask_type"] = [1, 4] if self.mask_type == BLOCK else UNSTRUCTURED
        return args


def _is_dense(param_name: str, dense: Iterable[str]) -> bool:
    for entry in dense:
        if entry.startswith("re:"):
            if re.match(entry[3:], param_name):
                return True
        elif param_name == entry or param_name.startswith(entry + "."):
            return True
    return False


def conv_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """Every 4-D convolution weight by parameter name."""
    return {name: p for name, p in model.named_parameters() if p.dim() == 4 and name.endswith("weight")}


def layer_targets(model: nn.Module, config: SparsityConfig) -> dict[str, float]:
    """The sparsity each convolution weight gets under ``config`` (0 for dense ones)."""
    return targets_for_names(conv_weights(model), config)


def targets_for_names(param_names: Iterable[str], config: SparsityConfig) -> dict[str, float]:
    """:func:`layer_targets` for a list of convolution parameter names."""
    groups = recipe_groups(config.recipe_file)
    targets: dict[str, float] = {}
    used: set[str] = set()
    for name in param_names:
        if _is_dense(name, config.dense):
            targets[name] = 0.0
            continue
        group = next((g for g in groups.values() if g.matches(name)), None)
        if group is not None and group.name in config.targets:
            targets[name] = float(config.targets[group.name])
            used.add(group.name)
        elif ALL in config.targets:
            targets[name] = float(config.targets[ALL])
            used.add(ALL)
        else:
            targets[name] = 0.0
    unused = set(config.targets) - used
    if unused and any(config.targets[k] > 0 for k in unused):
        raise ValueError(
            f"sparsity config {config.name or config.key()!r}: groups {sorted(unused)} match no convolution "
            f"of this model that is not kept dense; check the regexes in {config.recipe_file} and the dense list"
        )
    return targets


def magnitude_mask(weight: torch.Tensor, sparsity: float, mask_type: str = BLOCK) -> torch.Tensor:
    """Boolean keep-mask that zeroes ``round(sparsity * units)`` lowest-magnitude units.

    A unit is one weight (``unstructured``) or a block of four consecutive input
    channels at one (out, ky, kx) position (``[1,4]``), scored by its mean ``|w|``.
    """
    mask_type = _normalise_mask(mask_type)
    if weight.dim() != 4:
        raise ValueError(f"expected a 4-D convolution weight, got shape {tuple(weight.shape)}")
    if mask_type == UNSTRUCTURED:
        scores = weight.detach().abs().reshape(-1)
    else:
        out_c, in_c, kh, kw = weight.shape
        if in_c % 4:
            raise ValueError(
                f"a [1,4] mask needs input channels divisible by 4, this weight has {in_c} "
                f"(shape {tuple(weight.shape)}); keep the layer dense or use 'unstructured'"
            )
        # (out, in, kh, kw) -> (out, kh, kw, in/4, 4): blocks along input channels.
        scores = weight.detach().abs().permute(0, 2, 3, 1).reshape(-1, 4).mean(dim=1)
    n_prune = int(round(sparsity * scores.numel()))
    keep = torch.ones(scores.numel(), dtype=torch.bool, device=weight.device)
    if n_prune > 0:
        # A stable sort makes ties (e.g. already-zero weights) deterministic.
        order = torch.sort(scores, stable=True).indices
        keep[order[:n_prune]] = False
    if mask_type == UNSTRUCTURED:
        return keep.reshape(weight.shape)
    out_c, in_c, kh, kw = weight.shape
    return keep.reshape(out_c, kh, kw, in_c // 4, 1).expand(-1, -1, -1, -1, 4).reshape(out_c, kh, kw, in_c).permute(0, 3, 1, 2)


@torch.no_grad()
def apply_sparsity(model: nn.Module, config: SparsityConfig) -> dict[str, float]:
    """Zero each convolution's lowest-magnitude weights (or [1,4] blocks) to its target, in place.

    Returns the measured sparsity of every convolution weight (dense ones included).
    """
    targets = layer_targets(model, config)
    weights = conv_weights(model)
    achieved: dict[str, float] = {}
    for name, target in targets.items():
        weight = weights[name]
        if target > 0:
            try:
                mask = magnitude_mask(weight, target, config.mask_type)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from exc
            weight.mul_(mask.to(weight.dtype))
        achieved[name] = float((weight == 0).float().mean())
    return achieved


def conv_weight_sparsity(model: nn.Module) -> float:
    """Fraction of zeros over all convolution weights, layers weighted by size (the figure the recipes target)."""
    weights = conv_weights(model).values()
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / total if total else 0.0


@torch.no_grad()
def zeros_kept(upstream: nn.Module, transferred: nn.Module, skip: tuple[str, ...] = ("model.24.",)) -> dict[str, int]:
    """How many of ``upstream``'s zero convolution weights ``transferred`` still has at zero.

    Sparse transfer learning holds the upstream mask fixed, so ``zeros_lost`` must be 0.
    Weights are matched by name and shape; QAT wraps each convolution
    (``conv.module.weight``), so ``.module.`` is dropped before matching. ``skip`` leaves
    out layers that were re-initialised (Detect, ``model.24``, for a new set of classes).
    """

    def weights(model: nn.Module) -> dict[str, torch.Tensor]:
        return {name.replace(".module.", "."): value for name, value in model.state_dict().items()
                if value.dim() == 4 and not name.startswith(skip)}

    before, after = weights(upstream), weights(transferred)
    common = [name for name in before if name in after and after[name].shape == before[name].shape]
    return {
        "layers": len(before),
        "layers_matched": len(common),
        "upstream_zeros": sum(int((before[name] == 0).sum()) for name in common),
        "zeros_lost": sum(int((after[name][before[name] == 0] != 0).sum()) for name in common),
    }


def onnx_param_name(node_name: str) -> str | None:
    """The torch parameter an exported ONNX convolution came from, or None if unknown.

    ``torch.onnx`` names nodes by module path: ``/model/model.2/m/m.0/cv1/conv/module/Conv_quant``
    is ``model.2.m.0.cv1.conv.weight`` (a container ``m`` is followed by its child
    ``m.0``; ``module`` is SparseML's QAT wrapper; the wrapper's own ``model`` comes first).
    """
    parts = [p for p in node_name.strip("/").split("/")[:-1] if p != "module"]
    if len(parts) < 2 or parts[0] != "model":
        return None
    parts = parts[1:]
    kept = [p for i, p in enumerate(parts) if not (i + 1 < len(parts) and parts[i + 1].startswith(p + "."))]
    return ".".join(kept) + ".weight"


def exported_layer_sparsity(layers: Iterable[Any]) -> dict[str, float]:
    """Per-parameter sparsity of an exported model from ``SparsityReport.layers``
    (objects or dicts with ``name`` and ``sparsity``); layers whose name does not map are left out."""
    result: dict[str, float] = {}
    for layer in layers:
        name = layer["name"] if isinstance(layer, Mapping) else layer.name
        sparsity = layer["sparsity"] if isinstance(layer, Mapping) else layer.sparsity
        param = onnx_param_name(name)
        if param is not None:
            result[param] = float(sparsity)
    return result


def apply_sparsity_onnx(src: str | Path, dst: str | Path, config: SparsityConfig) -> dict[str, float]:
    """Write a copy of an exported model with ``config``'s zeros put into its conv weights.

    The INT8 shortcut for speed studies: an exported dense model's QLinearConv weights
    are set to their zero point (float Conv weights to 0) by magnitude of the
    dequantized weight, layer by layer, exactly as :func:`apply_sparsity` does on the
    torch weights. The graph is untouched, so the file is what ``apply_sparsity`` ->
    calibration -> export gives, minus the export's minutes. Returns the measured
    sparsity of every convolution.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from yolotut.inference.onnx_file import load_onnx

    src, dst = Path(src), Path(dst)
    model = load_onnx(src, external_data=True)
    initializers = {t.name: t for t in model.graph.initializer}
    producers = {output: node for node in model.graph.node for output in node.output}

    def weight_source(name: str) -> tuple[str, str | None, str | None] | None:
        """(initializer, scale, zero point) behind a conv weight input, following QDQ pairs."""
        if name in initializers:
            return name, None, None
        node = producers.get(name)
        if node is None or node.op_type != "DequantizeLinear":
            return None
        if node.input[0] in initializers:
            return node.input[0], node.input[1], node.input[2] if len(node.input) > 2 else None
        quantize = producers.get(node.input[0])
        if quantize is not None and quantize.op_type == "QuantizeLinear" and quantize.input[0] in initializers:
            return quantize.input[0], None, None  # float weights: 0 quantizes to the zero point
        return None

    layers: dict[str, tuple[str, str | None, str | None]] = {}
    for node in model.graph.node:
        if node.op_type == "QLinearConv":
            source = (node.input[3], node.input[4], node.input[5]) if node.input[3] in initializers else None
        elif node.op_type == "Conv":
            source = weight_source(node.input[1])
        else:
            continue
        param = onnx_param_name(node.name)
        if param is None or source is None:
            raise ValueError(
                f"{src}: cannot trace convolution {node.name!r} to a weight initializer of a torch module; "
                "use a model exported by yolotut.inference.export"
            )
        layers[param] = source
    achieved: dict[str, float] = {}
    for param, target in targets_for_names(layers, config).items():
        weight_name, scale_name, zero_name = layers[param]
        weight = numpy_helper.to_array(initializers[weight_name])
        zero = np.zeros(1, weight.dtype) if zero_name is None else numpy_helper.to_array(initializers[zero_name])
        zero = zero.reshape(-1, 1, 1, 1)  # per-tensor or per-output-channel
        if target > 0:
            scale = np.ones(1, np.float32) if scale_name is None else numpy_helper.to_array(initializers[scale_name])
            real = (weight.astype(np.float32) - zero.astype(np.float32)) * scale.reshape(-1, 1, 1, 1)
            try:
                keep = magnitude_mask(torch.from_numpy(real), target, config.mask_type).numpy()
            except ValueError as exc:
                raise ValueError(f"{param}: {exc}") from exc
            weight = np.where(keep, weight, np.broadcast_to(zero, weight.shape)).astype(weight.dtype)
            initializers[weight_name].CopyFrom(numpy_helper.from_array(weight, weight_name))
        achieved[param] = float((weight == zero).mean())
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return achieved
