"""The checker: each comparison of the registry judged against a side-by-side pair of our measurements.

Absolute FPS measured on different hardware is not comparable, so the comparisons
(defined as data in the ``comparisons:`` section of the registry, not here) are mostly
ratios between two claims -- speed-ups, file-size reductions -- or differences (mAP
points), matched against a pair of our own measurements from one machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from yolotut.reproduce.measurements import Measurement
from yolotut.reproduce.registry import (
    DEFAULT_TOLERANCE,
    DEFAULT_TOLERANCE_POINTS,
    HARDWARE_DEPENDENT_METRICS,
    Claim,
    ClaimsError,
    Comparison,
)

REPRODUCED = "reproduced"
EXCEEDED = "exceeded"
NOT_REPRODUCED = "not reproduced"
NOT_MEASURABLE = "not measurable here"
STATUSES = (REPRODUCED, EXCEEDED, NOT_REPRODUCED, NOT_MEASURABLE)


@dataclass(frozen=True)
class Verdict:
    comparison_id: str
    title: str
    kind: str
    status: str
    claimed: float | None
    measured: float | None
    unit: str
    text: str
    claimed_high: float | None = None
    reason: str | None = None
    proxy: bool = False
    deviations: tuple[str, ...] = ()
    conditions: str | None = None
    claim_ids: tuple[str, ...] = ()
    source_urls: tuple[str, ...] = ()
    measurement_ids: tuple[str, ...] = ()
    measurement_sources: tuple[str, ...] = ()
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}



# --- the checker --------------------------------------------------------------------------


def _speed(value: float, metric: str) -> float:
    # A speed-up of latencies is the inverse ratio; convert so every ratio reads "x faster".
    return 1.0 / value if metric == "latency_ms" else value


def _match_score(sel: Mapping[str, Any], m: Measurement) -> int | None:
    score = 0
    for key, want in sel.items():
        got = getattr(m, key)
        if want == "*":
            continue
        if isinstance(want, list):
            if got not in want:
                return None
            score += want.index(got)
        elif got != want:
            return None
    return score


def _deviations(sel: Mapping[str, Any], m: Measurement) -> list[str]:
    # A list selector names the claim's condition first; anything else is a proxy.
    return [
        f"{key} {getattr(m, key)} (claim: {want[0]})"
        for key, want in sel.items()
        if isinstance(want, list) and getattr(m, key) != want[0]
    ]


def _pair_ok(comp: Comparison, a: Measurement, b: Measurement) -> bool:
    if a is b:
        return False
    if any(getattr(a, f) != getattr(b, f) for f in comp.same):
        return False
    speed = a.metric in HARDWARE_DEPENDENT_METRICS or b.metric in HARDWARE_DEPENDENT_METRICS
    return not speed or a.hardware == b.hardware


def _select_pair(
    comp: Comparison, measurements: Sequence[Measurement]
) -> tuple[Measurement, Measurement] | None:
    def candidates(side: str) -> list[tuple[int, int, Measurement]]:
        sel = comp.select[side]
        out = []
        for i, m in enumerate(measurements):
            s = _match_score(sel, m)
            if s is not None:
                out.append((s, i, m))
        return out

    nums, dens = candidates("numerator"), candidates("denominator")
    best: tuple[int, int, int] | None = None
    pair = None
    for sn, i, n in nums:
        for sd, j, d in dens:
            if _pair_ok(comp, n, d):
                key = (sn + sd, i, j)  # closest to the claim first, then file order
                if best is None or key < best:
                    best, pair = key, (n, d)
    return pair


def _select_one(comp: Comparison, measurements: Sequence[Measurement]) -> Measurement | None:
    sel = comp.select["numerator"]
    scored = [(s, i, m) for i, m in enumerate(measurements) if (s := _match_score(sel, m)) is not None]
    return min(scored, key=lambda t: t[:2])[2] if scored else None


def format_value(v: float | None, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if unit == "x":
        return f"{v:.2f}x"
    if unit == "points":
        return f"{v:+.1f} points"
    mag = abs(v)
    s = f"{v:.3f}" if mag < 1 else f"{v:.2f}" if mag < 100 else f"{v:.1f}"
    return f"{s} {unit}".strip()


def format_range(lo: float | None, hi: float | None, unit: str) -> str:
    if lo is not None and hi is not None and hi != lo:
        return f"{format_value(lo, unit)}-{format_value(hi, unit)}"
    return format_value(lo, unit)


def check(
    claims: Sequence[Claim],
    measurements: Sequence[Measurement],
    tolerance: float = DEFAULT_TOLERANCE,
    comparisons: Sequence[Comparison] | None = None,
) -> list[Verdict]:
    """Judge every comparison of the registry against our measurements.

    ``comparisons`` defaults to the ones loaded with ``claims`` (:class:`Claims`).
    ``tolerance`` is relative (0.15 = +-15 %) and applies where a comparison sets none;
    mAP differences use ``tolerance_points`` (default 1 point).
    """
    if comparisons is None:
        comparisons = getattr(claims, "comparisons", None)
        if comparisons is None:
            raise ClaimsError("check(): no comparisons given; pass comparisons= or claims from load_claims()")
    if not 0 < tolerance < 1:
        raise ClaimsError(f"tolerance must be a fraction in (0, 1), got {tolerance}")
    by_id = {c.id: c for c in claims}
    missing = {r for comp in comparisons for r in (comp.numerator, comp.denominator, comp.claim) if r} - set(by_id)
    if missing:
        raise ClaimsError(f"comparisons refer to unknown claim ids {sorted(missing)}")
    return [_judge(comp, by_id, measurements, tolerance) for comp in comparisons]


class _Side(NamedTuple):
    """One side of a verdict: the value, the range's top (claims only), its unit and how it was formed."""

    value: float | None
    high: float | None
    unit: str
    detail: str


def _claimed(comp: Comparison, refs: Sequence[Claim]) -> _Side:
    if comp.kind == "ratio" and comp.claim:
        return _Side(refs[0].value, refs[0].value_high, "x", "")
    if comp.kind == "ratio":
        n, d = refs
        if n.value is None or d.value is None:
            return _Side(None, None, "x", "")
        ratio = _speed(n.value, n.metric) / _speed(d.value, d.metric)
        return _Side(ratio, None, "x", f"{format_value(n.value, n.unit)} / {format_value(d.value, d.unit)}")
    if comp.kind == "difference":
        n, d = refs
        unit = "points" if n.metric == "map50" else n.unit
        scale = 100.0 if n.metric == "map50" else 1.0
        if n.value is None or d.value is None:
            return _Side(None, None, unit, "")
        return _Side((n.value - d.value) * scale, None, unit, f"{format_value(n.value)} vs {format_value(d.value)}")
    return _Side(refs[0].value, refs[0].value_high, refs[0].unit, "")


def _measured(comp: Comparison, measurements: Sequence[Measurement]) -> tuple[list[Measurement], float | None, str, list[str]]:
    """The measurements chosen, the measured value, how it was formed, and how they deviate from the claim."""
    if comp.kind == "absolute":
        m = _select_one(comp, measurements)
        if m is None:
            return [], None, "", []
        return [m], m.value, "", list(dict.fromkeys(_deviations(comp.select["numerator"], m)))
    pair = _select_pair(comp, measurements)
    if pair is None:
        return [], None, "", []
    mn, md = pair
    deviations = list(dict.fromkeys(_deviations(comp.select["numerator"], mn) + _deviations(comp.select["denominator"], md)))
    if comp.kind == "ratio":
        measured = _speed(mn.value, mn.metric) / _speed(md.value, md.metric)
        detail = f"{format_value(mn.value, _unit_of(mn))} / {format_value(md.value, _unit_of(md))}"
        timed = [m.timing for m in (mn, md) if m.timing]
        return [mn, md], measured, detail + (f"; {' / '.join(timed)}" if timed else ""), deviations
    scale = 100.0 if mn.metric in ("map50", "map50_95") else 1.0
    return [mn, md], (mn.value - md.value) * scale, f"{format_value(mn.value)} vs {format_value(md.value)}", deviations


_HARDWARE_FREE_METRICS = ("map50", "map50_95", "sparsity", "file_size_mb", "file_size_gz_mb")


def _unmeasurable_reason(
    comp: Comparison, refs: Sequence[Claim], chosen: Sequence[Measurement], claimed: float | None,
    measured: float | None, deviations: Sequence[str],
) -> str | None:
    if claimed is None:
        why = "; ".join(c.note for c in refs if c.value is None and c.note) or "no value"
        return f"the claimed value is not available ({why})"
    if measured is None:
        return comp.unmeasurable_reason or "no matching measurement in the results"
    busy = [m.id for m in chosen if m.busy and m.metric not in _HARDWARE_FREE_METRICS]
    if busy:
        # On 2 cores a second busy process slows torch and DeepSparse by up to 10x:
        # such a number says nothing about the claim.
        return f"{', '.join(busy)} was timed while other processes used the CPU; re-run `yolotut reproduce` on a quiet machine"
    if comp.kind == "absolute" and comp.hardware_dependent:
        # a GPU figure names the GPU, not the host CPU
        hw = ", ".join(sorted({(m.device if m.device not in (None, "cpu") else m.hardware) or "unknown hardware" for m in chosen}))
        dev = refs[0].device or "the author's hardware"
        return (
            f"absolute {refs[0].metric} depends on the hardware (claimed on {dev}, measured on {hw}); "
            "compare the speed-up ratios instead"
        )
    if deviations and not comp.allow_proxy:
        return f"{comp.unmeasurable_reason or 'the claimed conditions are not available'}; only a proxy measurement exists"
    return None


def _status(comp: Comparison, claim: _Side, measured: float, tolerance: float) -> tuple[str, str, str]:
    """The status, the deviation from the claim in words, and the tolerance band in words."""
    lo, hi = claim.value, claim.high if claim.high is not None else claim.value
    if comp.kind == "difference":
        band = comp.tolerance_points if comp.tolerance_points is not None else DEFAULT_TOLERANCE_POINTS
        lo_b, hi_b = lo - band, hi + band
        tol_s = f"+-{band:g} points"
    else:
        tol = comp.tolerance if comp.tolerance is not None else tolerance
        lo_b, hi_b = lo * (1 - tol), hi * (1 + tol)
        tol_s = f"+-{tol:.0%}"
    if lo_b <= measured <= hi_b:
        status = REPRODUCED
    elif (measured > hi_b) == comp.higher_is_better:
        status = EXCEEDED
    else:
        status = NOT_REPRODUCED
    ref = hi if measured > hi else lo
    delta = f"{measured - ref:+.1f} points vs the claim" if comp.kind == "difference" else f"{measured / ref - 1:+.0%} vs the claim"
    return status, delta, tol_s


def _judge(
    comp: Comparison, by_id: Mapping[str, Claim], measurements: Sequence[Measurement], tolerance: float
) -> Verdict:
    refs = [by_id[comp.claim]] if comp.claim else [by_id[r] for r in (comp.numerator, comp.denominator) if r]
    claim = _claimed(comp, refs)
    chosen, measured, meas_detail, deviations = _measured(comp, measurements)
    conditions = _cores_note(refs, chosen) if chosen else ""
    base = dict(
        comparison_id=comp.id, title=comp.title, kind=comp.kind, unit=claim.unit,
        claimed=claim.value, claimed_high=claim.high,
        claim_ids=tuple(c.id for c in refs),
        source_urls=tuple(dict.fromkeys(c.url for c in refs if c.url)),
        note=comp.note, measured=measured, proxy=bool(deviations), deviations=tuple(deviations),
        conditions=conditions or None,
        measurement_ids=tuple(m.id for m in chosen),
        measurement_sources=tuple(dict.fromkeys(m.source for m in chosen)),
    )
    claim_s = format_range(claim.value, claim.high, claim.unit) + (f" ({claim.detail})" if claim.detail else "")
    meas_s = format_value(measured, claim.unit) + (f" ({meas_detail})" if meas_detail else "")
    proxy_s = f" Proxy measurement: {'; '.join(deviations)}." if deviations else ""
    proxy_s += f" Conditions: {conditions}." if conditions else ""

    reason = _unmeasurable_reason(comp, refs, chosen, claim.value, measured, deviations)
    if reason is not None:
        shown = f" Measured here: {meas_s}." if measured is not None else ""
        return Verdict(status=NOT_MEASURABLE, reason=reason,
                       text=f"Not measurable here: {reason}. Claimed {claim_s}.{shown}{proxy_s}", **base)
    status, delta, tol_s = _status(comp, claim, measured, tolerance)
    if status == REPRODUCED:
        text = f"Reproduced: measured {meas_s} vs claimed {claim_s} ({delta}, within {tol_s})."
    elif status == EXCEEDED:
        text = f"Exceeded: measured {meas_s} vs claimed {claim_s} ({delta}, beyond {tol_s})."
    else:
        text = (
            f"Not reproduced: the source claims {claim_s}; we measured {meas_s} "
            f"({delta}, beyond {tol_s}). Our measurement contradicts the claim."
        )
    return Verdict(status=status, text=text + proxy_s, **base)


def _unit_of(m: Measurement) -> str:
    return {
        "fps": "FPS", "fps_peak": "FPS (peak)", "items_per_sec": "items/s", "latency_ms": "ms",
        "file_size_mb": "MB", "file_size_gz_mb": "MB (gz)",
    }.get(m.metric, "")


def _cores_note(refs: Sequence[Claim], chosen: Sequence[Measurement]) -> str:
    claim_cores = [c.cores for c in refs]
    ours = [m.cores for m in chosen]
    if all(c is None for c in claim_cores) or all(m is None for m in ours):
        return ""
    if len(refs) == len(chosen) and claim_cores == ours:
        return ""
    fmt = lambda xs: "/".join("?" if x is None else str(x) for x in xs)  # noqa: E731
    return f"cores {fmt(ours)} (claim: {fmt(claim_cores)})"


