"""Fuzzing the box and NMS functions with empty, degenerate, huge and NaN boxes.

The property: a well-formed result (kept indices unique, in range and at most
``max_det``; detections ``[n, 6]`` with ``n <= max_det``, sorted by confidence, of
the classes asked for) or ``ValueError`` for a malformed call, never another
exception and never a hang.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fuzzing import record
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from yolotut.boxes import box_iou, letterbox_geometry, nms, non_max_suppression, scale_boxes, xywh2xyxy

pytestmark = pytest.mark.fuzz

# Every float32 value that matters here: 0, subnormals, huge, inf, NaN, negatives.
_coords = st.floats(width=32, allow_nan=True, allow_infinity=True)
_boxes = hnp.arrays(np.float32, st.tuples(st.integers(0, 40), st.just(4)), elements=_coords)
_threshold = st.one_of(st.floats(min_value=-0.5, max_value=1.5), st.just(float("nan")))


@given(boxes=_boxes, data=st.data(), iou=_threshold, max_det=st.one_of(st.none(), st.integers(-2, 50)))
@example(boxes=np.zeros((0, 4), np.float32), data=None, iou=0.5, max_det=None)
def test_nms(boxes: np.ndarray, data: st.DataObject | None, iou: float, max_det: int | None) -> None:
    record("boxes: nms")
    n = len(boxes)
    scores = np.zeros(n, np.float32) if data is None else data.draw(hnp.arrays(np.float32, n, elements=_coords))
    keep = nms(boxes, scores, iou, max_det=max_det)
    assert keep.dtype == np.int64 and keep.ndim == 1
    assert len(set(keep.tolist())) == len(keep) and ((keep >= 0) & (keep < max(n, 1))).all()
    assert len(keep) <= (n if max_det is None else max(max_det, 0) if n else 0)


def test_nms_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="nms expects"):
        nms(np.zeros((3, 4)), np.zeros(2), 0.5)
    with pytest.raises(ValueError, match="nms expects"):
        nms(np.zeros((3, 5)), np.zeros(3), 0.5)


_predictions = hnp.arrays(
    np.float32,
    st.tuples(st.integers(1, 3), st.integers(0, 60), st.integers(4, 9)),
    elements=st.one_of(_coords, st.floats(0, 1, width=32)),
)


@given(
    pred=_predictions,
    conf=_threshold,
    iou=_threshold,
    max_det=st.integers(1, 30),
    multi_label=st.booleans(),
    agnostic=st.booleans(),
    classes=st.one_of(st.none(), st.lists(st.integers(0, 4), max_size=3)),
)
def test_non_max_suppression(
    pred: np.ndarray, conf: float, iou: float, max_det: int, multi_label: bool, agnostic: bool, classes: list[int] | None
) -> None:
    record("boxes: non_max_suppression")
    try:
        out = non_max_suppression(pred, conf, iou, classes=classes, agnostic=agnostic, max_det=max_det, multi_label=multi_label)
    except ValueError as exc:
        # the documented refusals: too few columns, thresholds outside [0, 1]
        assert pred.shape[2] < 6 or not (0 <= conf <= 1 and 0 <= iou <= 1), exc
        return
    assert len(out) == pred.shape[0]
    for det in out:
        assert det.dtype == np.float32 and det.ndim == 2 and det.shape[1] == 6 and len(det) <= max_det
        assert (np.diff(det[:, 4]) <= 0).all(), "not sorted by confidence"
        assert (det[:, 4] > conf).all()
        if classes is not None:
            assert np.isin(det[:, 5], classes).all()


@given(boxes=hnp.arrays(np.float32, st.tuples(st.integers(0, 20), st.integers(4, 6)), elements=_coords),
       ratio=st.floats(allow_nan=True, allow_infinity=True),
       pad=st.tuples(_coords, _coords),
       shape=st.tuples(st.integers(0, 5000), st.integers(0, 5000)))
def test_scale_boxes(boxes: np.ndarray, ratio: float, pad: tuple[float, float], shape: tuple[int, int]) -> None:
    record("boxes: scale_boxes")
    try:
        out = scale_boxes(boxes, ratio, pad, shape)
    except ValueError as exc:
        assert not ratio > 0, exc  # the one documented refusal (NaN included)
        return
    assert out.shape == boxes.shape and out.dtype == np.float32
    finite = out[:, :4][np.isfinite(out[:, :4])]
    assert (finite >= 0).all() and (finite <= max(shape)).all()


@given(a=hnp.arrays(np.float32, st.tuples(st.integers(0, 12), st.just(4)), elements=_coords),
       b=hnp.arrays(np.float32, st.tuples(st.integers(0, 12), st.just(4)), elements=_coords))
def test_box_iou_and_conversions(a: np.ndarray, b: np.ndarray) -> None:
    record("boxes: box_iou, xywh2xyxy")
    iou = box_iou(torch.from_numpy(a), torch.from_numpy(b))
    assert iou.shape == (len(a), len(b))
    assert xywh2xyxy(a).shape == a.shape and xywh2xyxy(torch.from_numpy(a)).shape == a.shape


@given(shape=st.tuples(st.integers(-2, 10_000), st.integers(-2, 10_000)),
       new=st.one_of(st.integers(1, 2048), st.tuples(st.integers(1, 2048), st.integers(1, 2048))),
       auto=st.booleans(), scaleup=st.booleans())
@example(shape=(1, 2), new=1, auto=False, scaleup=False)  # the 1-pixel side rounded to 0 pixels
def test_letterbox_geometry(shape: tuple[int, int], new: int | tuple[int, int], auto: bool, scaleup: bool) -> None:
    record("boxes: letterbox_geometry")
    try:
        g = letterbox_geometry(shape, new, auto=auto, scaleup=scaleup)
    except ValueError as exc:
        assert min(shape) <= 0, exc
        return
    new_h, new_w = (new, new) if isinstance(new, int) else new
    assert g.ratio > 0 and min(g.top, g.bottom, g.left, g.right) >= 0
    assert min(g.size) >= 1, "letterbox would resize to an empty image"
    if not auto:
        assert g.size[0] + g.left + g.right == new_w and g.size[1] + g.top + g.bottom == new_h
