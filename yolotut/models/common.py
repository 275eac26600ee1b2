"""YOLOv5 v6.x building blocks, written from the published architecture.

Attribute names (``conv``, ``bn``, ``cv1``, ``m`` ...) follow the public YOLOv5 layout on
purpose: they are the ``state_dict`` keys of the official checkpoints, so weights map
1:1 without any renaming table.

The activation is an explicit constructor argument everywhere (``act="silu"`` etc.):
there is no module-level mutable default that one model build could leak into the next.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "C3",
    "SPPF",
    "Bottleneck",
    "Concat",
    "Conv",
    "Detect",
    "autopad",
    "make_activation",
]

# Same BatchNorm settings as YOLOv5 (its `initialize_weights` sets them after build).
BN_EPS = 1e-3
BN_MOMENTUM = 0.03

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU,
    "hardswish": nn.Hardswish,
    "relu": nn.ReLU,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module for ``name`` (one of :data:`ACTIVATIONS`)."""
    key = name.lower() if isinstance(name, str) else name
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    # inplace=True like YOLOv5: saves one activation-sized buffer per layer.
    return ACTIVATIONS[key](inplace=True)


def autopad(k: int, p: int | None = None, d: int = 1) -> int:
    """'same' padding for an odd kernel ``k`` with dilation ``d`` (unless ``p`` is given)."""
    if d > 1:
        k = d * (k - 1) + 1
    return k // 2 if p is None else p


class Conv(nn.Module):
    """Conv2d (no bias) + BatchNorm2d + activation; the only place activations live."""

    def __init__(
        self,
        c1: int,
        c2: int,
        k: int = 1,
        s: int = 1,
        p: int | None = None,
        g: int = 1,
        d: int = 1,
        act: str | None = "silu",
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = make_activation(act) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the BatchNorm into the convolution (inference only; eval-mode statistics)."""
        if isinstance(self.bn, nn.Identity):
            return
        conv, bn = self.conv, self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=True,
        ).to(device=conv.weight.device, dtype=conv.weight.dtype)
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
        self.conv, self.bn = fused, nn.Identity()


class Bottleneck(nn.Module):
    """1x1 then 3x3 Conv, with a residual add when shapes allow it."""

    def __init__(
        self, c1: int, c2: int, shortcut: bool = True, g: int = 1, e: float = 0.5, act: str = "silu"
    ) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = Conv(c_, c2, 3, 1, g=g, act=act)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP bottleneck with 3 convolutions (YOLOv5 v4.0+)."""

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        shortcut: bool = True,
        g: int = 1,
        e: float = 0.5,
        act: str = "silu",
    ) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = Conv(c1, c_, 1, 1, act=act)
        self.cv3 = Conv(2 * c_, c2, 1, act=act)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, g, e=1.0, act=act) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained k x k max-pools == SPP(k, 2k-1, 3k-2)."""

    def __init__(self, c1: int, c2: int, k: int = 5, act: str = "silu") -> None:
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = Conv(c_ * 4, c2, 1, 1, act=act)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Concat(nn.Module):
    """Concatenate a list of tensors along ``dimension``."""

    def __init__(self, dimension: int = 1) -> None:
        super().__init__()
        self.d = dimension

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(x, self.d)


class Detect(nn.Module):
    """Anchor-based detection head.

    ``anchors`` (a buffer, shape ``[nl, na, 2]``) is stored in *stride units* like YOLOv5
    v6: the model builder divides the pixel anchors by the strides once they are known.
    ``stride`` is a non-persistent buffer: it follows ``.to(device)`` but stays out of
    the ``state_dict``, whose keys therefore match the official checkpoints exactly.

    Outputs: training -> list of ``[B, na, ny, nx, no]`` raw logits per level;
    eval -> ``(decoded [B, N, no], raw list)``; eval with ``export=True`` -> decoded only.
    Decoding: ``xy = (2*sigmoid - 0.5 + grid) * stride``, ``wh = (2*sigmoid)^2 * anchor``.
    """

    def __init__(
        self, nc: int = 80, anchors: Sequence[Sequence[float]] = (), ch: Sequence[int] = ()
    ) -> None:
        super().__init__()
        if len(anchors) != len(ch):
            raise ValueError(f"Detect: {len(anchors)} anchor levels for {len(ch)} input feature maps")
        self.nc = nc
        self.no = nc + 5
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(self.nl, -1, 2))
        self.register_buffer("stride", torch.ones(self.nl), persistent=False)
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)
        self.export = False  # eval returns only the decoded tensor (ONNX output 0)
        self.dynamic = False  # rebuild grids every call (dynamic-shape export)
        # (grid, anchor_grid) per level, rebuilt when the input size changes.
        self._grids = [(torch.empty(0), torch.empty(0))] * self.nl

    def forward(self, x: list[torch.Tensor]):
        z = []
        for i in range(self.nl):
            x[i] = self.m[i](x[i])
            bs, _, ny, nx = x[i].shape
            x[i] = x[i].view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            if not self.training:
                grid, anchor_grid = self._grids[i]
                if self.dynamic or grid.shape[2:4] != x[i].shape[2:4] or grid.device != x[i].device:
                    grid, anchor_grid = self._make_grid(nx, ny, i)
                    self._grids[i] = (grid, anchor_grid)
                xy, wh, conf = x[i].sigmoid().split((2, 2, self.nc + 1), 4)
                xy = (xy * 2 + grid) * self.stride[i]  # grid already holds the -0.5
                wh = (wh * 2) ** 2 * anchor_grid
                z.append(torch.cat((xy, wh, conf), 4).view(bs, self.na * nx * ny, self.no))
        if self.training:
            return x
        decoded = torch.cat(z, 1)
        return decoded if self.export else (decoded, x)

    def _make_grid(self, nx: int, ny: int, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        d, t = self.anchors.device, self.anchors.dtype
        shape = (1, self.na, ny, nx, 2)
        yv, xv = torch.meshgrid(
            torch.arange(ny, device=d, dtype=t), torch.arange(nx, device=d, dtype=t), indexing="ij"
        )
        grid = torch.stack((xv, yv), 2).expand(shape) - 0.5
        anchor_grid = (self.anchors[i] * self.stride[i]).view(1, self.na, 1, 1, 2).expand(shape)
        return grid, anchor_grid

    def _apply(self, fn, *args, **kwargs):
        # Cached grids are plain attributes: drop them on .to()/.half() so they are
        # rebuilt with the new device/dtype instead of silently mixing them.
        self._grids = [(torch.empty(0), torch.empty(0))] * self.nl
        return super()._apply(fn, *args, **kwargs)

    def initialize_biases(self) -> None:
        """YOLOv5's prior: ~8 objects per 640x640 image, ~uniform 0.6 class mass."""
        for conv, s in zip(self.m, self.stride.tolist()):
            b = conv.bias.detach().view(self.na, -1)
            b[:, 4] += math.log(8 / (640 / s) ** 2)
            b[:, 5 : 5 + self.nc] += math.log(0.6 / (self.nc - 0.99))
