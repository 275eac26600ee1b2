"""yolotut.training.loss: target assignment, CIoU, the YOLOv5 loss on real pistol images."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from yolotut.models import build_model
from yolotut.training.loss import DEFAULT_LOSS_HYP, ComputeLoss, bbox_ciou, find_detect, scale_hyp

# YOLOv5's pixel anchors (P3/8, P4/16, P5/32) in stride units, as Detect stores them.
STRIDES = torch.tensor([8.0, 16.0, 32.0])
PIXEL_ANCHORS = torch.tensor(
    [[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]], [[116, 90], [156, 198], [373, 326]]],
    dtype=torch.float32,
)
ANCHORS = PIXEL_ANCHORS / STRIDES.view(-1, 1, 1)


@pytest.fixture
def pistol_batch(mirror: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Two real pistol training images at 256 px (float 0..1) and their targets."""
    from yolotut.training.data import create_dataloader

    loader, _ = create_dataloader("pistols", "train", imgsz=256, batch_size=2, workers=0, max_images=2)
    imgs, targets, _, _ = next(iter(loader))
    assert len(targets) >= 2
    return imgs.float() / 255, targets


def _empty_preds(batch: int = 2, imgsz: int = 256, nc: int = 1, fill: float = 0.0) -> list[torch.Tensor]:
    return [torch.full((batch, 3, imgsz // int(s), imgsz // int(s), 5 + nc), fill) for s in STRIDES]


def _inverse_decode(offset_xy: torch.Tensor, wh: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """Logits that ComputeLoss (and Detect) decode to the given cell offset and size."""
    sxy = (offset_xy + 0.5) / 2
    swh = torch.sqrt(wh / anchor) / 2
    return torch.cat((torch.logit(sxy), torch.logit(swh)), -1)


# --- pieces ---------------------------------------------------------------------------


def test_scale_hyp_matches_yolov5_train() -> None:
    hyp = scale_hyp({"box": 0.05, "obj": 1.0, "cls": 0.5}, nc=1, nl=3, imgsz=416)
    assert hyp["box"] == pytest.approx(0.05)
    assert hyp["cls"] == pytest.approx(0.5 / 80)
    assert hyp["obj"] == pytest.approx((416 / 640) ** 2)
    hyp = scale_hyp({}, nc=26, nl=4, imgsz=640)
    assert hyp["box"] == pytest.approx(0.05 * 3 / 4)
    assert hyp["cls"] == pytest.approx(0.5 * 26 / 80 * 3 / 4)
    assert hyp["anchor_t"] == DEFAULT_LOSS_HYP["anchor_t"]


def test_bbox_ciou_values() -> None:
    a = torch.tensor([[5.0, 5.0, 2.0, 2.0]])
    assert bbox_ciou(a, a).item() == pytest.approx(1.0, abs=1e-6)
    # Same centre, same aspect, half the side: IoU 1/4, no penalty terms.
    assert bbox_ciou(a, torch.tensor([[5.0, 5.0, 1.0, 1.0]])).item() == pytest.approx(0.25, abs=1e-6)
    # Disjoint boxes: IoU 0 minus centre distance^2 / enclosing diagonal^2 (4^2 / (6^2 + 2^2)).
    far = bbox_ciou(a, torch.tensor([[9.0, 5.0, 2.0, 2.0]])).item()
    assert far == pytest.approx(-16 / 40, abs=1e-6)
    # Aspect mismatch adds a penalty beyond plain IoU.
    tall = torch.tensor([[5.0, 5.0, 1.0, 4.0]])
    iou = 2.0 / (4 + 4 - 2)
    assert bbox_ciou(a, tall).item() < iou


def test_build_targets_assignment() -> None:
    """One box on a 256 px input: which levels, anchors and cells it is assigned to."""
    loss = ComputeLoss(anchors=ANCHORS, nc=1, hyp=scale_hyp({}, 1, 3, 256))
    preds = _empty_preds(batch=2)
    # Image 1, box centre at (100, 60) px, 40x50 px.
    t = torch.tensor([[1, 0, 100 / 256, 60 / 256, 40 / 256, 50 / 256]])
    tcls, tbox, indices, anch = loss.build_targets(preds, t)

    # P3 (stride 8): box 5 x 6.25 cells. Anchors 1.25x1.625, 2x3.75, 4.125x2.875: ratios
    # max(5/1.25, ...) = 4.0 is not < 4 -> anchor 0 out; anchors 1 and 2 in.
    # Centre (12.5, 7.5): exactly half -> x%1 = 0.5 is not < 0.5, so no left/up
    # neighbour; the right/down neighbours need (gain - g) % 1 < 0.5: 32-12.5 = 19.5 -> no.
    b, a, gj, gi = indices[0]
    assert sorted(a.tolist()) == [1, 2]
    assert b.tolist() == [1, 1] and gi.tolist() == [12, 12] and gj.tolist() == [7, 7]
    torch.testing.assert_close(tbox[0], torch.tensor([[0.5, 0.5, 5.0, 6.25]] * 2))

    # P4 (stride 16): centre (6.25, 3.75): left neighbour (x%1 = .25 < .5) and lower
    # neighbour ((16 - 3.75) % 1 = .25 < .5). All three P4 anchors fit (ratios < 4).
    b, a, gj, gi = indices[1]
    cells = sorted(set(zip(gj.tolist(), gi.tolist())))
    assert cells == [(3, 5), (3, 6), (4, 6)]
    assert len(a) == 9 and set(a.tolist()) == {0, 1, 2}
    # Offsets stay in [-0.5, 1.5] and point back at the true centre.
    assert tbox[1][:, :2].min() >= -0.5 and tbox[1][:, :2].max() <= 1.5
    torch.testing.assert_close(tbox[1][:, 0] + gi, torch.full_like(tbox[1][:, 0], 6.25))
    torch.testing.assert_close(tbox[1][:, 1] + gj, torch.full_like(tbox[1][:, 1], 3.75))
    torch.testing.assert_close(anch[1], ANCHORS[1][a])
    assert tcls[1].tolist() == [0] * 9

    # P5 (stride 32): 1.25 x 1.5625 cells vs anchors 3.6x2.8, 4.9x6.2, 11.7x10.2: the
    # first two are within 4x (worst ratio 3.96), the large one is not.
    assert set(indices[2][1].tolist()) == {0, 1}


def test_perfect_predictions_have_near_zero_loss() -> None:
    """Logits that decode exactly to the assigned boxes: box loss 0 and obj loss tiny."""
    torch.manual_seed(0)
    hyp = scale_hyp({}, nc=3, nl=3, imgsz=256)
    loss_fn = ComputeLoss(anchors=ANCHORS, nc=3, hyp=hyp)
    targets = torch.tensor([[0, 2, 0.31, 0.42, 0.2, 0.3], [1, 0, 0.73, 0.22, 0.45, 0.35]])
    preds = _empty_preds(batch=2, nc=3, fill=-20.0)  # confident "nothing" everywhere
    _, tbox, indices, anch = loss_fn.build_targets(preds, targets)
    tcls = loss_fn.build_targets(preds, targets)[0]
    for i, p in enumerate(preds):
        b, a, gj, gi = indices[i]
        p[b, a, gj, gi, :4] = _inverse_decode(tbox[i][:, :2], tbox[i][:, 2:], anch[i])
        p[b, a, gj, gi, 4] = 20.0
        p[b, a, gj, gi, 5 + tcls[i]] = 20.0
    loss, items = loss_fn(preds, targets)
    assert items[0].item() == pytest.approx(0.0, abs=1e-4)
    assert items[1].item() < 1e-5 and items[2].item() < 1e-5

    # Shifting every predicted box by half a cell must cost box loss, and objectness
    # loss too: its target is the (now lower) IoU, not 1.
    for p in preds:
        p[..., 0] += 0.5
    shifted = loss_fn(preds, targets)[1]
    assert shifted[0] > 0.01 and shifted[1] > 1e-3


def test_no_targets_only_objectness() -> None:
    loss_fn = ComputeLoss(anchors=ANCHORS, nc=4)
    preds = _empty_preds(nc=4)
    for p in preds:
        p.requires_grad_(True)
    loss, items = loss_fn(preds, torch.zeros((0, 6)))
    assert items[0] == 0 and items[2] == 0 and items[1] > 0
    assert loss.item() == pytest.approx(2 * items.sum().item(), rel=1e-6)  # x batch size
    loss.backward()
    assert all(p.grad is not None and p.grad[..., 4].abs().sum() > 0 for p in preds)
    assert all(p.grad[..., :4].abs().sum() == 0 for p in preds)


def test_class_loss_only_with_several_classes() -> None:
    t = torch.tensor([[0, 0, 0.5, 0.5, 0.3, 0.3]])
    one = ComputeLoss(anchors=ANCHORS, nc=1)(_empty_preds(nc=1), t)[1]
    many = ComputeLoss(anchors=ANCHORS, nc=5)(_empty_preds(nc=5), t)[1]
    assert one[2] == 0 and many[2] > 0 and one[0] > 0


def test_bad_inputs() -> None:
    loss_fn = ComputeLoss(anchors=ANCHORS, nc=1)
    with pytest.raises(ValueError, match="3 prediction levels"):
        loss_fn(_empty_preds()[:2], torch.zeros((0, 6)))
    with pytest.raises(ValueError, match="training-mode output"):
        loss_fn(_empty_preds(nc=2), torch.zeros((0, 6)))
    with pytest.raises(ValueError, match=r"\[M, 6\]"):
        loss_fn(_empty_preds(), torch.zeros((2, 5)))
    with pytest.raises(ValueError, match="needs a model"):
        ComputeLoss()
    with pytest.raises(ValueError, match="no YOLO detection head"):
        ComputeLoss(nn.Linear(2, 2))


# --- with the real model ----------------------------------------------------------------


def test_finds_detect_through_wrappers() -> None:
    model = build_model("n", num_classes=1)
    assert find_detect(model) is model.model[-1]
    assert find_detect(nn.DataParallel(model)) is model.model[-1]
    # A QAT-style wrapper that hides .model: found by searching the modules.
    wrapped = nn.Sequential(nn.Identity(), model)
    assert find_detect(wrapped) is model.model[-1]
    loss_fn = ComputeLoss(wrapped)
    assert loss_fn.nc == 1 and loss_fn.nl == 3 and loss_fn.na == 3
    # Anchors are read live, so autoanchor changes after construction are seen.
    with torch.no_grad():
        model.model[-1].anchors.mul_(2)
    assert torch.equal(loss_fn.anchors, model.model[-1].anchors)


def test_loss_on_real_images_finite_with_gradients(pistol_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    imgs, targets = pistol_batch
    torch.manual_seed(0)
    model = build_model("n", num_classes=1).train()
    loss_fn = ComputeLoss(model, scale_hyp({}, nc=1, nl=3, imgsz=256))
    loss, items = loss_fn(model(imgs), targets)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    assert items.shape == (3,) and not items.requires_grad
    assert items[0] > 0 and items[1] > 0 and items[2] == 0  # nc=1: no class loss
    assert loss.item() == pytest.approx(imgs.shape[0] * items.sum().item(), rel=1e-5)
    loss.backward()
    head = model.model[-1].m
    assert all(conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0 for conv in head)
    first = next(model.parameters())
    assert first.grad is not None and first.grad.abs().sum() > 0  # reaches the stem


@pytest.mark.slow
def test_loss_decreases_when_overfitting_two_images(pistol_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    imgs, targets = pistol_batch
    torch.manual_seed(0)
    model = build_model("n", num_classes=1).train()
    loss_fn = ComputeLoss(model, scale_hyp({}, nc=1, nl=3, imgsz=256))
    # Adam: plain SGD at YOLOv5's lr needs hundreds of steps from scratch to move the
    # loss; the test is about the gradient pointing the right way, not the optimizer.
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = []
    for _ in range(10):
        loss, items = loss_fn(model(imgs), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append((loss.item(), items.tolist()))
    first, last = history[0], history[-1]
    assert all(math.isfinite(v) for v, _ in history)
    assert last[0] < 0.8 * first[0], history
    assert last[1][0] < first[1][0]  # box loss fell too, not only objectness


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_loss_on_cuda_matches_cpu() -> None:
    torch.manual_seed(0)
    preds = [torch.randn(2, 3, 256 // int(s), 256 // int(s), 8) for s in STRIDES]
    targets = torch.tensor([[0, 1, 0.4, 0.5, 0.2, 0.3], [1, 2, 0.6, 0.3, 0.5, 0.4]])
    loss_fn = ComputeLoss(anchors=ANCHORS, nc=3)
    cpu = loss_fn(preds, targets)
    gpu = loss_fn([p.cuda() for p in preds], targets)  # targets stay on the CPU
    assert gpu[0].device.type == "cuda"
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gpu[1].cpu(), cpu[1], rtol=1e-4, atol=1e-5)
