"""Hand-computed checks of letterbox, box conversions, NMS and scale_boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolotut.boxes import box_iou, letterbox, nms, non_max_suppression, scale_boxes, xywh2xyxy, xyxy2xywh


# -- conversions / IoU -----------------------------------------------------------------------
def test_xywh_xyxy_hand_values_numpy_and_torch():
    xywh = np.array([[10.0, 20.0, 4.0, 6.0, 0.9]], dtype=np.float32)
    expected = np.array([[8.0, 17.0, 12.0, 23.0, 0.9]], dtype=np.float32)
    np.testing.assert_allclose(xywh2xyxy(xywh), expected)
    np.testing.assert_allclose(xyxy2xywh(expected), xywh)
    t = torch.from_numpy(xywh)
    assert isinstance(xywh2xyxy(t), torch.Tensor)
    torch.testing.assert_close(xyxy2xywh(xywh2xyxy(t)), t)
    assert xywh[0, 0] == 10.0  # input untouched


def test_box_iou_hand_computed():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    # overlap 1x1, union 4 + 4 - 1 = 7
    torch.testing.assert_close(iou[0], torch.tensor([1 / 7, 1.0, 0.0]), atol=1e-6, rtol=0)
    # [0,0,1,1] inside [0,0,2,2]: 1 / 4; touches [1,1,3,3] only at a corner: 0
    torch.testing.assert_close(iou[1], torch.tensor([0.0, 0.25, 0.0]), atol=1e-6, rtol=0)


# -- nms ---------------------------------------------------------------------------------------
def test_nms_suppresses_by_threshold_and_sorts_by_score():
    boxes = np.array([[20, 20, 30, 30], [1, 1, 11, 11], [0, 0, 10, 10]], dtype=np.float32)
    scores = np.array([0.7, 0.8, 0.9], dtype=np.float32)
    # IoU(box2, box1) = 81 / (100 + 100 - 81) = 0.68
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [2, 0])
    np.testing.assert_array_equal(nms(boxes, scores, 0.7), [2, 1, 0])
    np.testing.assert_array_equal(nms(boxes, scores, 0.7, max_det=2), [2, 1])
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)
    with pytest.raises(ValueError, match=r"boxes \[N, 4\]"):
        nms(boxes[:, :3], scores, 0.5)


def _pred(rows: list[list[float]]) -> np.ndarray:
    return np.array([rows], dtype=np.float32)


def test_non_max_suppression_same_class_suppressed_other_class_kept():
    # x, y, w, h, obj, cls0, cls1
    pred = _pred(
        [
            [50, 50, 20, 20, 0.9, 0.9, 0.1],  # class 0, conf .81
            [51, 51, 20, 20, 0.8, 0.9, 0.1],  # class 0, conf .72, overlaps the first: gone
            [52, 50, 20, 20, 0.9, 0.1, 0.8],  # class 1, conf .72, overlaps but other class: kept
            [200, 200, 10, 10, 0.2, 1.0, 0.0],  # objectness below conf_thres
        ]
    )
    before = pred.copy()
    (det,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.45)
    np.testing.assert_array_equal(pred, before)  # input not modified
    assert det.shape == (2, 6) and det.dtype == np.float32
    np.testing.assert_allclose(det[0], [40, 40, 60, 60, 0.81, 0], rtol=1e-6)
    np.testing.assert_allclose(det[1], [42, 40, 62, 60, 0.72, 1], rtol=1e-6)

    (agnostic,) = non_max_suppression(pred, 0.25, 0.45, agnostic=True)
    assert agnostic.shape == (1, 6) and agnostic[0, 5] == 0

    (only1,) = non_max_suppression(pred, 0.25, 0.45, classes=[1])
    np.testing.assert_array_equal(only1[:, 5], [1])


def test_non_max_suppression_conf_is_obj_times_cls():
    # obj .5 passes, but .5 * .4 = .2 < .25
    (det,) = non_max_suppression(_pred([[10, 10, 4, 4, 0.5, 0.4]]), conf_thres=0.25)
    assert det.shape == (0, 6)


def test_non_max_suppression_multi_label_torch_input_and_max_det():
    rows = [[10, 10, 4, 4, 0.9, 0.8, 0.6]] + [[100 + 20 * k, 10, 4, 4, 0.9, 0.5, 0.0] for k in range(5)]
    pred = torch.from_numpy(_pred(rows))
    (single,) = non_max_suppression(pred, conf_thres=0.001)
    (multi,) = non_max_suppression(pred, conf_thres=0.001, multi_label=True)
    assert len(single) == 6 and len(multi) == 7
    first_box = multi[np.all(multi[:, :4] == [8, 8, 12, 12], axis=1)]
    np.testing.assert_allclose(sorted(first_box[:, 4]), [0.54, 0.72], rtol=1e-6)
    assert np.all(np.diff(multi[:, 4]) <= 0)  # sorted by confidence
    (capped,) = non_max_suppression(pred, conf_thres=0.001, max_det=3)
    assert len(capped) == 3


def test_non_max_suppression_batch_and_empty_and_bad_shape():
    pred = np.zeros((2, 10, 6), dtype=np.float32)
    pred[1, 0] = [10, 10, 4, 4, 0.9, 0.9]
    out = non_max_suppression(pred)
    assert [o.shape for o in out] == [(0, 6), (1, 6)]
    with pytest.raises(ValueError, match=r"\[B, N, 5 \+ nc\]"):
        non_max_suppression(np.zeros((1, 10, 4)))


# -- letterbox / scale_boxes -----------------------------------------------------------------
def test_letterbox_non_square_input():
    img = np.full((1080, 810, 3), 7, dtype=np.uint8)  # bus.jpg's shape (h, w)
    out, r, pad = letterbox(img, 640)
    assert out.shape == (640, 640, 3)
    assert r == pytest.approx(640 / 1080)
    assert pad == (80.0, 0.0)  # 810 * 0.5926 = 480 wide: 160 px split left/right
    assert (out[:, :80] == 114).all() and (out[:, 560:] == 114).all() and (out[:, 80:560] == 7).all()

    auto, r2, pad2 = letterbox(img, 640, auto=True)  # minimum rectangle, multiple of 32
    assert auto.shape == (640, 480, 3) and pad2 == (0.0, 0.0) and r2 == r

    rect, r3, pad3 = letterbox(img, (320, 640))  # (height, width)
    assert rect.shape == (320, 640, 3)
    assert r3 == pytest.approx(320 / 1080) and pad3 == (200.0, 0.0)


def test_letterbox_odd_padding_and_no_scaleup():
    img = np.zeros((100, 51, 3), dtype=np.uint8)
    out, r, pad = letterbox(img, 64)
    # w: 51 * 0.64 = 32.64 -> 33, 31 px of padding: 15 left, 16 right
    assert out.shape == (64, 64, 3) and r == pytest.approx(0.64) and pad == (15.0, 0.0)
    assert (out[:, :15] == 114).all() and (out[:, 15 + 33 :] == 114).all()

    small = np.zeros((50, 100, 3), dtype=np.uint8)
    out, r, pad = letterbox(small, 640, scaleup=False)
    assert out.shape == (640, 640, 3) and r == 1.0 and pad == (270.0, 295.0)

    exact = np.zeros((64, 64, 3), dtype=np.uint8)
    same, r, pad = letterbox(exact, 64)
    assert same is exact and r == 1.0 and pad == (0.0, 0.0)  # no needless copy
    with pytest.raises(ValueError, match="HxW"):
        letterbox(np.zeros((0, 5, 3), np.uint8), 64)


def test_scale_boxes_round_trip_and_clip():
    h0, w0 = 1080, 810
    _, r, pad = letterbox(np.zeros((h0, w0, 3), np.uint8), 640)
    orig = np.array([[100, 200, 300, 700, 0.9, 2], [0, 0, 810, 1080, 0.5, 0]], dtype=np.float32)
    letterboxed = orig.copy()
    letterboxed[:, [0, 2]] = orig[:, [0, 2]] * r + pad[0]
    letterboxed[:, [1, 3]] = orig[:, [1, 3]] * r + pad[1]
    back = scale_boxes(letterboxed, r, pad, (h0, w0))
    np.testing.assert_allclose(back, orig, atol=1e-3)
    # A box sticking into the padding is clipped to the image.
    clipped = scale_boxes(np.array([[0, -5, 640, 700]], np.float32), r, pad, (h0, w0))
    np.testing.assert_allclose(clipped, [[0, 0, 810, 1080]])
