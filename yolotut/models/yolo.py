"""YAML-driven YOLOv5 v6.x builder and the :class:`DetectionModel` it produces.

The layer layout (``model.model[i]`` with ``.i``/``.f`` attributes, ``state_dict`` keys
``model.<i>.<...>``) mirrors the public YOLOv5 one, so official checkpoints load 1:1.
Layer names in the yaml are resolved through the explicit :data:`MODULES` table; nothing
from a config is ever evaluated as code.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import torch
import yaml
from torch import nn

from yolotut.models.common import (
    ACTIVATIONS,
    C3,
    SPPF,
    Bottleneck,
    Concat,
    Conv,
    Detect,
)
from yolotut.models.thinning import thin_to_widths

__all__ = ["MODULES", "SIZES", "DetectionModel", "build_model", "default_config", "model_from_config"]

# yaml name -> class. The only way a yaml row becomes a module.
MODULES: dict[str, type[nn.Module]] = {
    "Conv": Conv,
    "Bottleneck": Bottleneck,
    "C3": C3,
    "SPPF": SPPF,
    "Concat": Concat,
    "nn.Upsample": nn.Upsample,
    "Upsample": nn.Upsample,
    "Detect": Detect,
}
# Modules whose first two arguments are (c_in, c_out) and that take `act=`.
_CONV_LIKE = (Conv, Bottleneck, C3, SPPF)
# Modules that take a repeat count `n` as third argument instead of being stacked n times.
_REPEATED_INSIDE = (C3,)

_STRIDE_PROBE = 256  # input side for the stride-finding forward pass (as YOLOv5)


@functools.cache
def _package_yaml() -> dict[str, Any]:
    text = resources.files("yolotut.models").joinpath("yolov5.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _sizes() -> dict[str, dict[str, float]]:
    return {k: dict(v) for k, v in _package_yaml()["sizes"].items()}


# The size names of yolov5.yaml's table (a test keeps the two in step).
SIZES: tuple[str, ...] = ("n", "s", "m", "l", "x")


def default_config(size: str = "s") -> dict[str, Any]:
    """The architecture dict (Ultralytics ``model.yaml`` layout) of YOLOv5``size`` v6.x."""
    sizes = _sizes()
    if size not in sizes:
        raise ValueError(f"unknown YOLOv5 size {size!r}; choose one of {', '.join(sizes)}")
    base = copy.deepcopy(_package_yaml())
    return {
        "size": size,
        **sizes[size],
        "anchors": base["anchors"],
        "backbone": base["backbone"],
        "head": base["head"],
    }


def _size_of(depth: float, width: float) -> str | None:
    for name, mult in _sizes().items():
        if math.isclose(mult["depth_multiple"], depth) and math.isclose(mult["width_multiple"], width):
            return name
    return None


def _make_divisible(x: float, divisor: int = 8) -> int:
    return math.ceil(x / divisor) * divisor


def _normalise_activation(act: Any) -> str:
    """'silu', 'SiLU', 'nn.SiLU()' (Ultralytics yaml style) -> 'silu'."""
    if not isinstance(act, str):
        raise ValueError(f"activation must be a string such as 'silu', got {act!r}")
    key = act.strip()
    key = key.removeprefix("nn.").removesuffix("()").lower()
    if key not in ACTIVATIONS:
        raise ValueError(f"unsupported activation {act!r}; choose one of {sorted(ACTIVATIONS)}")
    return key


def _normalise_anchors(anchors: Any) -> list[list[float]]:
    if (
        not isinstance(anchors, Sequence)
        or not anchors
        or not all(isinstance(a, Sequence) and len(a) >= 2 and len(a) % 2 == 0 for a in anchors)
        or len({len(a) for a in anchors}) != 1
    ):
        raise ValueError(
            "anchors must be one list of (w, h) pixel pairs per output level, all levels with the "
            f"same number of anchors, e.g. [[10,13, 16,30, 33,23], ...]; got {anchors!r}"
        )
    return [[float(v) for v in a] for a in anchors]


def _normalise_names(names: Any, nc: int) -> list[str]:
    if names is None:
        return [str(i) for i in range(nc)]
    if isinstance(names, Mapping):  # Ultralytics v7 stores {0: 'person', ...}
        names = [names[k] for k in sorted(names, key=int)]
    names = [str(n) for n in names]
    if len(names) != nc:
        raise ValueError(f"{len(names)} class names given for a model with {nc} classes")
    return names


class DetectionModel(nn.Module):
    """YOLOv5 detection model.

    Args:
        cfg: architecture dict in the Ultralytics ``model.yaml`` layout: ``depth_multiple``,
            ``width_multiple``, ``anchors``, ``backbone``, ``head`` and optionally ``nc``,
            ``activation``, ``names``. :func:`default_config` gives the v6.x one. ``.size``
            ("n" ... "x", or None for other multiples) is derived from the multiples.
        nc, activation, anchors, names: override the values in ``cfg``.

    Input: float ``[B, 3, H, W]`` RGB in 0..1, H and W multiples of ``stride.max()``.
    Output: see :class:`~yolotut.models.common.Detect`.
    """

    def __init__(
        self,
        cfg: Mapping[str, Any],
        *,
        nc: int | None = None,
        activation: str | None = None,
        anchors: Sequence[Sequence[float]] | None = None,
        names: Sequence[str] | Mapping[int, str] | None = None,
    ) -> None:
        super().__init__()
        missing = {"depth_multiple", "width_multiple", "backbone", "head"} - set(cfg)
        if missing:
            raise ValueError(f"model config lacks {sorted(missing)}; see yolotut/models/yolov5.yaml")
        nc = int(nc if nc is not None else cfg.get("nc", 80))
        if nc < 1:
            raise ValueError(f"num_classes must be >= 1, got {nc}")
        self.activation = _normalise_activation(activation or cfg.get("activation") or "silu")
        anchors = _normalise_anchors(anchors if anchors is not None else cfg.get("anchors"))
        self.names = _normalise_names(names if names is not None else cfg.get("names"), nc)
        self.nc = nc
        depth, width = float(cfg["depth_multiple"]), float(cfg["width_multiple"])
        self.size = _size_of(depth, width)
        self.yaml: dict[str, Any] = {
            "nc": nc,
            "depth_multiple": depth,
            "width_multiple": width,
            "anchors": anchors,
            "activation": self.activation,
            "backbone": copy.deepcopy(list(cfg["backbone"])),
            "head": copy.deepcopy(list(cfg["head"])),
        }
        self.model, self.save = _parse_model(self.yaml, self.activation)
        self.fused = False
        # Channel groups cut by yolotut.models.thinning: {group name: kept channels}.
        self.thinned: dict[str, int] = {}
        self._init_stride_and_anchors()

    # -- construction -------------------------------------------------------------------
    def _init_stride_and_anchors(self) -> None:
        m = self.detect
        was_training = self.training
        self.eval()
        with torch.no_grad():
            _, raw = self.forward(torch.zeros(1, 3, _STRIDE_PROBE, _STRIDE_PROBE))
        self.train(was_training)
        m.stride.copy_(torch.tensor([_STRIDE_PROBE / r.shape[2] for r in raw]))
        # Anchors must grow with stride (YOLOv5's check_anchor_order).
        area = m.anchors.prod(-1).mean(-1)
        if (area[-1] - area[0]).sign() * (m.stride[-1] - m.stride[0]).sign() < 0:
            m.anchors.copy_(m.anchors.flip(0))
        m.anchors /= m.stride.view(-1, 1, 1)
        m.initialize_biases()

    # -- inference ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor):
        y: list[torch.Tensor | None] = []
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.save else None)
        return x

    def fuse(self) -> DetectionModel:
        """Fold every BatchNorm into its convolution for faster inference (irreversible).

        A fused model keeps its outputs (up to float rounding) but has a different
        ``state_dict``; save checkpoints before fusing. Returns ``self`` in eval mode.
        """
        self.eval()
        for m in self.modules():
            if isinstance(m, Conv):
                m.fuse()
        self.fused = True
        return self

    # -- accessors ----------------------------------------------------------------------
    @property
    def detect(self) -> Detect:
        return self.model[-1]

    @property
    def stride(self) -> torch.Tensor:
        """Output strides, e.g. ``tensor([8., 16., 32.])``."""
        return self.detect.stride

    @property
    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this model (plain Python types, weights_only-safe).

        ``anchors`` are the current pixel anchors (they may have been re-fitted by
        autoanchor since the build).
        """
        m = self.detect
        anchors = (m.anchors.detach().cpu() * m.stride.detach().cpu().view(-1, 1, 1)).view(m.nl, -1)
        return {
            "size": self.size,
            "nc": self.nc,
            "activation": self.activation,
            "anchors": [[round(v, 4) for v in level] for level in anchors.tolist()],
            "names": list(self.names),
            "depth_multiple": self.yaml["depth_multiple"],
            "width_multiple": self.yaml["width_multiple"],
            "backbone": copy.deepcopy(self.yaml["backbone"]),
            "head": copy.deepcopy(self.yaml["head"]),
            **({"thinned": dict(self.thinned)} if self.thinned else {}),
        }

    def extra_repr(self) -> str:
        size = f"yolov5{self.size}" if self.size else "custom"
        return f"{size}, nc={self.nc}, activation={self.activation}"


def _parse_model(d: Mapping[str, Any], activation: str) -> tuple[nn.Sequential, list[int]]:
    """Turn the backbone + head rows into modules (YOLOv5's parse_model, minus eval)."""
    nc, anchors = d["nc"], d["anchors"]
    gd, gw = d["depth_multiple"], d["width_multiple"]
    rows = list(d["backbone"]) + list(d["head"])
    layers: list[nn.Module] = []
    save: list[int] = []
    ch = [3]
    for i, row in enumerate(rows):
        if not isinstance(row, Sequence) or len(row) != 4:
            raise ValueError(f"layer {i}: expected [from, number, module, args], got {row!r}")
        f, n, name, args = row
        cls = MODULES.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ValueError(
                f"layer {i}: unsupported module {name!r}; yolotut builds YOLOv5 v6.x models from "
                f"{sorted(MODULES)}"
            )
        froms = [f] if isinstance(f, int) else list(f)
        if not froms or not all(isinstance(j, int) and -len(ch) <= j < max(i, 1) for j in froms):
            raise ValueError(f"layer {i}: invalid 'from' {f!r}")
        n = max(round(n * gd), 1) if n > 1 else n
        # Ultralytics yamls spell Python's None as the string "None" (it evals them).
        args = [None if a == "None" else a for a in args]
        kwargs: dict[str, Any] = {}
        if cls in _CONV_LIKE:
            c1, c2 = ch[f], _make_divisible(args[0] * gw, 8)
            args = [c1, c2, *args[1:]]
            kwargs["act"] = activation
            if cls in _REPEATED_INSIDE:
                args.insert(2, n)
                n = 1
        elif cls is Concat:
            c2 = sum(ch[j] for j in froms)
        elif cls is Detect:
            if len(froms) != len(anchors):
                raise ValueError(
                    f"layer {i}: Detect takes {len(froms)} inputs but there are {len(anchors)} anchor levels"
                )
            args = [nc, anchors, [ch[j] for j in froms]]
            c2 = None
        else:
            c2 = ch[f]
        m_ = nn.Sequential(*(cls(*args, **kwargs) for _ in range(n))) if n > 1 else cls(*args, **kwargs)
        m_.i, m_.f, m_.type = i, f, name
        m_.np = sum(p.numel() for p in m_.parameters())
        save.extend(j % i for j in froms if j != -1)
        layers.append(m_)
        if i == 0:
            ch = []
        ch.append(c2)
    if not isinstance(layers[-1], Detect):
        raise ValueError("the last layer of a YOLOv5 model must be Detect")
    return nn.Sequential(*layers), sorted(set(save))


def build_model(
    size: str = "s",
    num_classes: int = 80,
    activation: str = "silu",
    anchors: Sequence[Sequence[float]] | None = None,
    names: Sequence[str] | None = None,
) -> DetectionModel:
    """A freshly initialised YOLOv5``size`` (n/s/m/l/x) v6.x with ``num_classes`` classes.

    ``activation`` is ``"silu"`` (YOLOv5 default), ``"hardswish"`` (cheaper, as in the
    DeepSparse blog model) or ``"relu"``; ``anchors`` are pixel (w, h) pairs per level.
    """
    return DetectionModel(
        default_config(size), nc=num_classes, activation=activation, anchors=anchors, names=names
    )


def model_from_config(config: Mapping[str, Any]) -> DetectionModel:
    """Rebuild a model from :attr:`DetectionModel.config` (weights not included).

    A ``thinned`` entry (channel widths left by :func:`yolotut.models.thinning.thin`)
    is applied, so the architecture matches the saved ``state_dict``.
    """
    if "backbone" in config:
        model = DetectionModel(config)
    elif not config.get("size"):
        raise ValueError("model config has neither 'backbone'/'head' nor a 'size'")
    else:
        model = build_model(
            config["size"],
            num_classes=int(config.get("nc", 80)),
            activation=config.get("activation") or "silu",
            anchors=config.get("anchors"),
            names=config.get("names"),
        )
    if config.get("thinned"):
        thin_to_widths(model, {str(k): int(v) for k, v in config["thinned"].items()})
    return model
