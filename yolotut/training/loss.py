"""The YOLOv5 (v6.x) training loss: CIoU box loss, IoU-targeted objectness, BCE classes.

Targets are matched to anchors the YOLOv5 way: a ground-truth box is assigned to every
anchor whose width and height ratios to the box stay below ``anchor_t`` (4.0), in the
grid cell holding the box centre and in the two neighbouring cells closest to the
centre (offset 0.5), so that each box gets up to 3 cells x 3 anchors per level.

Use :func:`scale_hyp` first: YOLOv5's ``train.py`` rescales the loss gains to the number
of detection levels, classes and the image size, and so must any training loop that
wants YOLOv5's hyperparameters to mean the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DEFAULT_LOSS_HYP", "ComputeLoss", "bbox_ciou", "find_detect", "scale_hyp"]

# YOLOv5's loss hyperparameters (hyp.scratch*.yaml), before scale_hyp.
DEFAULT_LOSS_HYP: dict[str, float] = {
    "box": 0.05,  # box loss gain
    "obj": 1.0,  # objectness loss gain (scale with pixels)
    "cls": 0.5,  # class loss gain
    "cls_pw": 1.0,  # class BCE positive weight
    "obj_pw": 1.0,  # objectness BCE positive weight
    "anchor_t": 4.0,  # anchor-to-box size ratio threshold for matching
    "label_smoothing": 0.0,
}
# Objectness weights of the P3/P4/P5 levels: the fine level sees most cells.
BALANCE_3 = (4.0, 1.0, 0.4)
BALANCE_5 = (4.0, 1.0, 0.25, 0.06, 0.02)


def scale_hyp(hyp: Mapping[str, Any], nc: int, nl: int = 3, imgsz: int = 640) -> dict[str, Any]:
    """Loss gains rescaled as YOLOv5's ``train.py`` does before training.

    ``box *= 3/nl``, ``cls *= nc/80 * 3/nl``, ``obj *= (imgsz/640)**2 * 3/nl``: the
    hyperparameters were tuned for COCO (80 classes) at 640 with 3 levels, and the
    summed per-cell losses grow with the number of levels, classes and cells. Returns
    a new dict (missing loss keys take :data:`DEFAULT_LOSS_HYP`); call it once.
    """
    out = {**DEFAULT_LOSS_HYP, **hyp}
    out["box"] = float(out["box"]) * 3 / nl
    out["cls"] = float(out["cls"]) * nc / 80 * 3 / nl
    out["obj"] = float(out["obj"]) * (imgsz / 640) ** 2 * 3 / nl
    return out


def bbox_ciou(box1: torch.Tensor, box2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Complete IoU of paired ``[n, 4]`` xywh boxes: IoU - centre distance term - aspect term."""
    (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.unbind(-1), box2.unbind(-1)
    h1, h2 = h1.clamp(min=eps), h2.clamp(min=eps)
    b1x1, b1x2, b1y1, b1y2 = x1 - w1 / 2, x1 + w1 / 2, y1 - h1 / 2, y1 + h1 / 2
    b2x1, b2x2, b2y1, b2y2 = x2 - w2 / 2, x2 + w2 / 2, y2 - h2 / 2, y2 + h2 / 2

    inter = (torch.min(b1x2, b2x2) - torch.max(b1x1, b2x1)).clamp(0) * (
        torch.min(b1y2, b2y2) - torch.max(b1y1, b2y1)
    ).clamp(0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union

    # Squared diagonal of the smallest enclosing box, and squared centre distance.
    cw = torch.max(b1x2, b2x2) - torch.min(b1x1, b2x1)
    ch = torch.max(b1y2, b2y2) - torch.min(b1y1, b2y1)
    c2 = cw**2 + ch**2 + eps
    rho2 = (x2 - x1) ** 2 + (y2 - y1) ** 2
    v = (4 / math.pi**2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


def find_detect(model: nn.Module) -> nn.Module:
    """The detection head of ``model``: ``model.model[-1]``, unwrapping DataParallel/DDP.

    Falls back to the last submodule carrying ``anchors``/``nl``/``na``/``nc``, so
    models whose layers were replaced (SparseML QAT wraps convolutions) still work.
    """
    core = model.module if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else model
    layers = getattr(core, "model", None)
    if isinstance(layers, nn.Sequential) and len(layers) and _is_detect(layers[-1]):
        return layers[-1]
    heads = [m for m in core.modules() if _is_detect(m)]
    if not heads:
        raise ValueError(
            f"{type(model).__name__} has no YOLO detection head (a module with anchors, nl, na, nc); "
            f"pass anchors= and nc= to ComputeLoss instead"
        )
    return heads[-1]


def _is_detect(m: nn.Module) -> bool:
    return all(hasattr(m, a) for a in ("anchors", "nl", "na", "nc")) and isinstance(
        getattr(m, "anchors", None), torch.Tensor
    )


class ComputeLoss:
    """YOLOv5 loss: ``loss_fn(preds, targets) -> (loss, items)``.

    ``preds`` are the training outputs of the model, one ``[B, na, ny, nx, 5 + nc]``
    logits tensor per level; ``targets`` ``[M, 6]`` rows ``(image index, cls, cx, cy, w, h)``
    normalized to the input image (what :func:`yolotut.training.data.collate_fn` yields).
    ``loss`` is the weighted sum multiplied by the batch size (as YOLOv5, whose
    learning rates assume it); ``items`` the detached ``[box, obj, cls]`` parts (not
    multiplied). Pass ``hyp`` already through :func:`scale_hyp`.

    The anchors (``[nl, na, 2]``, in units of each level's stride) and ``nc`` come from
    the model's Detect head, read on every call so that anchors re-fitted later or a
    head swapped by SparseML are honoured; or pass ``anchors=`` and ``nc=`` instead of
    a model. Everything follows the device and dtype of ``preds``.
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        hyp: Mapping[str, Any] | None = None,
        *,
        anchors: torch.Tensor | None = None,
        nc: int | None = None,
    ) -> None:
        if model is None and (anchors is None or nc is None):
            raise ValueError("ComputeLoss needs a model, or both anchors= ([nl, na, 2], stride units) and nc=")
        self.hyp = {**DEFAULT_LOSS_HYP, **(hyp or {})}
        self._detect = find_detect(model) if model is not None else None
        self._anchors = anchors.detach().float() if anchors is not None else None
        self._nc = nc
        a = self.anchors
        if a.ndim != 3 or a.shape[-1] != 2:
            raise ValueError(f"anchors must have shape [nl, na, 2], got {tuple(a.shape)}")
        self.nl, self.na = a.shape[0], a.shape[1]
        if self.nl == 3:
            self.balance = BALANCE_3
        elif self.nl <= len(BALANCE_5):
            self.balance = BALANCE_5[: self.nl]
        else:
            raise ValueError(f"{self.nl} detection levels; YOLOv5's objectness balance covers at most 5")
        eps = float(self.hyp["label_smoothing"])
        # Smoothed BCE targets for the positive and negative classes.
        self.cp, self.cn = 1.0 - 0.5 * eps, 0.5 * eps
        self.gr = 1.0  # objectness target = gr * IoU + (1 - gr)

    @property
    def anchors(self) -> torch.Tensor:
        if self._detect is not None:
            return self._detect.anchors.detach()
        return self._anchors

    @property
    def nc(self) -> int:
        return int(self._detect.nc) if self._detect is not None else int(self._nc)

    def __call__(self, preds: list[torch.Tensor], targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(preds) != self.nl:
            raise ValueError(f"expected {self.nl} prediction levels, got {len(preds)}")
        nc = self.nc
        for p in preds:
            if p.ndim != 5 or p.shape[1] != self.na or p.shape[-1] != 5 + nc:
                raise ValueError(
                    f"prediction of shape {tuple(p.shape)} is not [B, {self.na}, ny, nx, {5 + nc}]; pass the "
                    f"model's training-mode output"
                )
        device = preds[0].device
        targets = targets.to(device=device, dtype=torch.float32)
        if targets.ndim != 2 or targets.shape[1] != 6:
            raise ValueError(f"targets must be [M, 6] (image, cls, cx, cy, w, h), got {tuple(targets.shape)}")

        cls_pw = torch.tensor([self.hyp["cls_pw"]], device=device)
        obj_pw = torch.tensor([self.hyp["obj_pw"]], device=device)
        lbox = torch.zeros((), device=device)
        lobj = torch.zeros((), device=device)
        lcls = torch.zeros((), device=device)
        tcls, tbox, indices, anch = self.build_targets(preds, targets)

        for i, p in enumerate(preds):
            b, a, gj, gi = indices[i]
            tobj = torch.zeros(p.shape[:4], device=device)
            n = b.shape[0]
            if n:
                ps = p[b, a, gj, gi].float()
                # Same decoding as Detect: centre offset in (-0.5, 1.5), size up to 4x anchor.
                pxy = ps[:, :2].sigmoid() * 2 - 0.5
                pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * anch[i]
                iou = bbox_ciou(torch.cat((pxy, pwh), 1), tbox[i])
                lbox = lbox + (1.0 - iou).mean()
                score = iou.detach().clamp(0)
                tobj[b, a, gj, gi] = (1.0 - self.gr) + self.gr * score
                if nc > 1:  # a single class is fully described by objectness
                    t = torch.full_like(ps[:, 5:], self.cn)
                    t[torch.arange(n, device=device), tcls[i]] = self.cp
                    lcls = lcls + F.binary_cross_entropy_with_logits(ps[:, 5:], t, pos_weight=cls_pw)
            lobj = lobj + self.balance[i] * F.binary_cross_entropy_with_logits(
                p[..., 4].float(), tobj, pos_weight=obj_pw
            )

        lbox = lbox * self.hyp["box"]
        lobj = lobj * self.hyp["obj"]
        lcls = lcls * self.hyp["cls"]
        bs = preds[0].shape[0]
        return (lbox + lobj + lcls) * bs, torch.stack((lbox, lobj, lcls)).detach()

    @torch.no_grad()
    def build_targets(
        self, preds: list[torch.Tensor], targets: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[torch.Tensor, ...]], list[torch.Tensor]]:
        """Assign targets to (image, anchor, cell) per level.

        Returns per level: class ids ``[k]``, boxes ``[k, 4]`` (centre offset within the
        cell, in ``[-0.5, 1.5]``, and size, in grid units), indices ``(b, a, gj, gi)``
        and the matched anchors ``[k, 2]`` (grid units).
        """
        device = targets.device
        na, nt = self.na, targets.shape[0]
        anchors_all = self.anchors.to(device=device, dtype=torch.float32)
        tcls, tbox, indices, anch = [], [], [], []
        gain = torch.ones(7, device=device)
        # Every target once per anchor, with the anchor index appended: [na, nt, 7].
        ai = torch.arange(na, device=device, dtype=torch.float32).view(na, 1).repeat(1, nt)
        t_all = torch.cat((targets.repeat(na, 1, 1), ai[..., None]), 2)

        g = 0.5  # how far into a neighbouring cell a centre may be to use it too
        off = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], device=device, dtype=torch.float32) * g

        for i, p in enumerate(preds):
            anchors, (ny, nx) = anchors_all[i], p.shape[2:4]
            gain[2:6] = torch.tensor([nx, ny, nx, ny], device=device, dtype=torch.float32)
            t = t_all * gain  # normalized -> grid units
            if nt:
                ratio = t[..., 4:6] / anchors[:, None]
                keep = torch.max(ratio, 1 / ratio).max(2)[0] < self.hyp["anchor_t"]
                t = t[keep]
                gxy = t[:, 2:4]
                gxi = gain[[2, 3]] - gxy
                # Left/up neighbour if the centre is in the left/upper half of its cell
                # (and not in the first column/row), right/down likewise.
                j, k = ((gxy % 1 < g) & (gxy > 1)).T
                l, m = ((gxi % 1 < g) & (gxi > 1)).T  # noqa: E741  (YOLOv5's names for the four neighbours)
                sel = torch.stack((torch.ones_like(j), j, k, l, m))
                t = t.repeat((5, 1, 1))[sel]
                offsets = (torch.zeros_like(gxy)[None] + off[:, None])[sel]
            else:
                t = t_all[0]
                offsets = torch.zeros((0, 2), device=device)

            bc, gxy, gwh, a = t.split((2, 2, 2, 1), 1)
            a = a.long().view(-1)
            b, c = bc.long().T
            gij = (gxy - offsets).long()
            gi = gij[:, 0].clamp(0, nx - 1)
            gj = gij[:, 1].clamp(0, ny - 1)
            indices.append((b, a, gj, gi))
            tbox.append(torch.cat((gxy - gij, gwh), 1))
            anch.append(anchors[a])
            tcls.append(c)
        return tcls, tbox, indices, anch
