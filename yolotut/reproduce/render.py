"""The verdicts as a markdown table, a self-contained HTML page, or JSON."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from yolotut.reproduce.judge import STATUSES, Verdict, format_range, format_value

# --- rendering -------------------------------------------------------------------------------


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def verdicts_to_markdown(verdicts: Sequence[Verdict]) -> str:
    """A markdown table: comparison, claimed, measured, verdict, details, sources."""
    lines = [
        "| Comparison | Claimed | Measured | Verdict | Details | Measurement source |",
        "| --- | ---: | ---: | --- | --- | --- |",
    ]
    for v in verdicts:
        claimed = format_range(v.claimed, v.claimed_high, v.unit)
        measured = format_value(v.measured, v.unit) + (" (proxy)" if v.proxy and v.measured is not None else "")
        links = " ".join(f"[src]({u})" for u in v.source_urls)
        title = f"{v.title} {links}".strip()
        srcs = ", ".join(Path(s).name for s in v.measurement_sources) or "-"
        lines.append(
            "| " + " | ".join(_md_cell(x) for x in (title, claimed, measured, f"**{v.status}**", v.text, srcs)) + " |"
        )
    counts = ", ".join(f"{sum(v.status == s for v in verdicts)} {s}" for s in STATUSES)
    return "\n".join(lines) + f"\n\n{counts}.\n"


def verdicts_to_html(
    verdicts: Sequence[Verdict],
    figures: Sequence[Any] | Mapping[str, Any] = (),
    title: str = "Published claims vs our measurements",
) -> str:
    """A self-contained HTML page: the verdict table, then the figures.

    plotly.js is embedded once (inline, no CDN: the page must work offline), with the
    first figure; later figures reuse it.
    """
    from yolotut.ui.plots import STATUS_COLORS

    esc = html.escape
    rows = []
    for v in verdicts:
        color = STATUS_COLORS.get(v.status, "#999")
        links = " ".join(f'<a href="{esc(u)}">source</a>' for u in v.source_urls)
        proxy_tag = " <small>(proxy)</small>" if v.proxy and v.measured is not None else ""
        rows.append(
            "<tr>"
            f"<td>{esc(v.title)}<br><small>{links}</small></td>"
            f"<td class=num>{esc(format_range(v.claimed, v.claimed_high, v.unit))}</td>"
            f"<td class=num>{esc(format_value(v.measured, v.unit))}{proxy_tag}</td>"
            f'<td><span class=badge style="background:{color}">{esc(v.status)}</span></td>'
            f"<td>{esc(v.text)}</td>"
            f"<td><small>{esc(', '.join(Path(s).name for s in v.measurement_sources) or '-')}</small></td>"
            "</tr>"
        )
    counts = " &middot; ".join(f"{sum(v.status == s for v in verdicts)} {esc(s)}" for s in STATUSES)
    items = list(figures.items()) if isinstance(figures, Mapping) else [(None, f) for f in figures]
    fig_html = []
    for i, (name, fig) in enumerate(items):
        head = f"<h2>{esc(str(name))}</h2>" if name else ""
        fig_html.append(head + fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:6px;vertical-align:top}"
        "th{background:#f4f4f4}.num{text-align:right;white-space:nowrap}"
        ".badge{color:#fff;padding:2px 6px;border-radius:4px;white-space:nowrap}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{style}</style></head><body>"
        f"<h1>{esc(title)}</h1><p>{counts}</p>"
        "<table><thead><tr><th>Comparison</th><th>Claimed</th><th>Measured</th><th>Verdict</th>"
        "<th>Details</th><th>Measurement source</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + "".join(fig_html)
        + "</body></html>"
    )


def verdicts_to_json(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """A JSON-ready object: the verdict list and the count per status."""
    return {
        "verdicts": [v.to_dict() for v in verdicts],
        "counts": {s: sum(v.status == s for v in verdicts) for s in STATUSES},
    }


