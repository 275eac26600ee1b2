"""Small plotly charts for the reproduction report.

* :func:`verdict_figure` -- claimed vs measured value of every comparison, the
  measured bar coloured by verdict (one panel per unit: speed-up ratios, mAP points...);
* :func:`speed_vs_map_figure` -- speed (x) against mAP@0.5 (y), one point per model
  variant / engine;
* :func:`engine_bar_figure` -- throughput per model variant, one bar per engine.

Inputs are plain mappings or objects with the same attributes (``Verdict``,
``Measurement``, ``BenchmarkResult``...), so notebooks can pass dicts straight from
result JSON files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

STATUS_COLORS: dict[str, str] = {
    "reproduced": "#2ca02c",
    "exceeded": "#1f77b4",
    "not reproduced": "#d62728",
    "not measurable here": "#7f7f7f",
}
CLAIMED_COLOR = "#c7c7c7"
ENGINE_COLORS: dict[str, str] = {
    "pytorch": "#ee4c2c",
    "onnxruntime": "#7f7f7f",
    "deepsparse": "#6f42c1",
    "openvino": "#0068b5",
}
_UNIT_TITLES = {"x": "speed-up / size ratio (x)", "points": "mAP@0.5 change (points)"}


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def verdict_figure(verdicts: Sequence[Any], title: str = "Published claims vs our measurements") -> go.Figure:
    """Horizontal bars: the claimed value (grey) and our measured value (coloured by verdict).

    Comparisons without a claimed value are left out; one without a measurement shows
    its claim alone (hover says why). Panels are split by unit so that ratios and mAP
    points never share an axis.
    """
    shown = [v for v in verdicts if _get(v, "claimed") is not None]
    units = list(dict.fromkeys(_get(v, "unit") or "" for v in shown)) or ["x"]
    fig = make_subplots(
        rows=len(units),
        cols=1,
        subplot_titles=[_UNIT_TITLES.get(u, u) for u in units],
        row_heights=[max(1, sum((_get(v, "unit") or "") == u for v in shown)) for u in units],
        vertical_spacing=0.12 if len(units) > 1 else 0.05,
    )
    legend_done: set[str] = set()
    for row, unit in enumerate(units, start=1):
        group = [v for v in shown if (_get(v, "unit") or "") == unit]
        labels = [_short(_get(v, "title") or _get(v, "comparison_id")) for v in group]
        fig.add_trace(
            go.Bar(
                y=labels,
                x=[_get(v, "claimed") for v in group],
                orientation="h",
                name="claimed",
                marker_color=CLAIMED_COLOR,
                legendgroup="claimed",
                showlegend="claimed" not in legend_done,
                hovertext=[_get(v, "text") for v in group],
                hoverinfo="x+text",
            ),
            row=row,
            col=1,
        )
        legend_done.add("claimed")
        for status, color in STATUS_COLORS.items():
            sub = [
                (lab, v)
                for lab, v in zip(labels, group, strict=True)
                if _get(v, "status") == status and _get(v, "measured") is not None
            ]
            if not sub:
                continue
            fig.add_trace(
                go.Bar(
                    y=[lab for lab, _ in sub],
                    x=[_get(v, "measured") for _, v in sub],
                    orientation="h",
                    name=f"measured: {status}",
                    marker_color=color,
                    legendgroup=status,
                    showlegend=status not in legend_done,
                    hovertext=[_get(v, "text") for _, v in sub],
                    hoverinfo="x+text",
                ),
                row=row,
                col=1,
            )
            legend_done.add(status)
        fig.update_yaxes(autorange="reversed", row=row, col=1)
    n_bars = max(len(shown), 1)
    fig.update_layout(
        title=title,
        barmode="group",
        height=180 + 48 * n_bars + 60 * len(units),
        legend={"orientation": "h", "y": -0.08},
        margin={"l": 20, "r": 20, "t": 80, "b": 40},
    )
    return fig


def _speed_of(entry: Any) -> tuple[float | None, str | None]:
    for key, unit in (("speed", None), ("items_per_sec", "items/sec"), ("fps", "FPS")):
        value = _get(entry, key)
        if value is not None:
            return float(value), unit or _get(entry, "speed_unit")
    if _get(entry, "metric") in ("items_per_sec", "fps"):  # a Measurement record
        return float(_get(entry, "value")), "items/sec" if _get(entry, "metric") == "items_per_sec" else "FPS"
    return None, None


def _label(entry: Any) -> str:
    label = _get(entry, "label")
    if label:
        return str(label)
    parts = [_get(entry, k) for k in ("model", "variant")]
    return " ".join(str(p) for p in parts if p) or "?"


def speed_vs_map_figure(entries: Iterable[Any], title: str = "Speed vs accuracy") -> go.Figure:
    """Scatter of speed (x: ``items_per_sec`` or ``fps``, or ``speed`` + ``speed_unit``)
    against ``map50`` (y), one point per entry, coloured by ``engine``.

    Entries need a speed and ``map50``; ``label`` (or ``model`` + ``variant``) names the
    point. Mixing FPS and items/sec on one axis is refused: they measure different things.
    """
    rows = []
    units = set()
    for i, e in enumerate(entries):
        speed, unit = _speed_of(e)
        map50 = _get(e, "map50")
        if speed is None or map50 is None:
            raise ValueError(f"entry {i} ({_label(e)}): needs a speed (items_per_sec / fps / speed) and map50")
        units.add(unit)
        rows.append((e, speed, float(map50)))
    if len(units) > 1:
        raise ValueError(f"entries mix speed units {sorted(u or '?' for u in units)}; plot FPS and items/sec separately")
    unit = next(iter(units), None) or "items/sec"
    fig = go.Figure()
    engines = list(dict.fromkeys(_get(e, "engine") or "unknown" for e, _, _ in rows))
    for engine in engines:
        sub = [(e, s, m) for e, s, m in rows if (_get(e, "engine") or "unknown") == engine]
        fig.add_trace(
            go.Scatter(
                x=[s for _, s, _ in sub],
                y=[m for _, _, m in sub],
                mode="markers+text",
                text=[_label(e) for e, _, _ in sub],
                textposition="top center",
                name=engine,
                marker={"size": 12, "color": ENGINE_COLORS.get(engine)},
                hovertemplate="%{text}<br>%{x:.1f} " + unit + "<br>mAP@0.5 %{y:.3f}<extra>" + engine + "</extra>",
            )
        )
    fig.update_layout(title=title, xaxis_title=f"speed ({unit}, higher is better)", yaxis_title="mAP@0.5")
    return fig


def engine_bar_figure(results: Iterable[Any], title: str = "Throughput per engine") -> go.Figure:
    """Grouped bars: x = model variant, one bar per engine, y = items/sec (or FPS).

    Accepts benchmark result dicts / ``BenchmarkResult`` / ``Measurement`` objects;
    results without a speed (skipped benchmarks) are left out. An ``error`` value, if
    given, is drawn as an error bar.
    """
    rows = []
    units = set()
    for r in results:
        speed, unit = _speed_of(r)
        if speed is None:
            continue
        units.add(unit)
        rows.append((_label(r), _get(r, "engine") or "unknown", speed, _get(r, "error")))
    if len(units) > 1:
        raise ValueError(f"results mix speed units {sorted(u or '?' for u in units)}; plot FPS and items/sec separately")
    unit = next(iter(units), None) or "items/sec"
    fig = go.Figure()
    for engine in dict.fromkeys(e for _, e, _, _ in rows):
        sub = [row for row in rows if row[1] == engine]
        errors = [row[3] for row in sub]
        fig.add_trace(
            go.Bar(
                x=[row[0] for row in sub],
                y=[row[2] for row in sub],
                name=engine,
                marker_color=ENGINE_COLORS.get(engine),
                error_y={"type": "data", "array": [e or 0 for e in errors]} if any(errors) else None,
                text=[f"{row[2]:.1f}" for row in sub],
                textposition="outside",
            )
        )
    fig.update_layout(title=title, barmode="group", yaxis_title=f"{unit} (higher is better)", xaxis_title="model")
    return fig


__all__ = ["ENGINE_COLORS", "STATUS_COLORS", "engine_bar_figure", "speed_vs_map_figure", "verdict_figure"]
