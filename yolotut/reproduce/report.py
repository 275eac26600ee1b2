"""The reproduction report: published claims vs our measurements, as markdown and HTML.

:func:`build_report` reads every result file the notebooks wrote
(``outputs/results/*.json``), runs the claims checker (:mod:`yolotut.reproduce.claims`) and
writes ``report.md`` (tables) and ``report.html`` (the same tables plus interactive
plotly charts, plotly.js embedded once so the page works offline). The manifest
adds the models produced and each notebook's wall time.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from yolotut.errors import InputError
from yolotut.inference.engines import ENGINES, canonical_engine_name
from yolotut.reproduce import claims as claims_mod
from yolotut.reproduce.claims import Measurement, Verdict
from yolotut.reproduce.results import find_results

# --- picking what to chart ------------------------------------------------------------
#
# Charts read the notebooks' result records directly (``yolotut.reproduce.results.write_results``):
# a record may carry a ``label`` (notebook 07 tells the blog author's YOLOv5n from
# ours), which claims.Measurement does not keep.


def load_records(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every measured record of the result files in ``results_dir`` (file order, skipped ones left out)."""
    records = []
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise InputError(f"{path}: not valid JSON ({exc}); re-run what wrote it, or delete the file", path=path) from exc
        measured = doc.get("measurements", []) if isinstance(doc, Mapping) else []
        for i, rec in enumerate(measured if isinstance(measured, list) else []):
            if not isinstance(rec, Mapping):
                raise InputError(f"{path}: measurements[{i}] is a {type(rec).__name__}, not an object; re-run what wrote it", path=path)
            if rec.get("skipped"):
                continue
            info = rec.get("engine_info") if isinstance(rec.get("engine_info"), Mapping) else {}
            engine = rec.get("engine") or info.get("engine")
            if engine is not None and not isinstance(engine, str):
                raise InputError(f"{path}: measurements[{i}]: engine {engine!r} is not a name; re-run what wrote it", path=path)
            records.append({
                **rec,
                "label": rec.get("label") or " ".join(str(p) for p in (rec.get("arch"), rec.get("variant")) if p),
                "engine": canonical_engine_name(engine) if engine else engine,
                "batch_size": rec.get("batch_size") or info.get("batch_size"),
                "cores": rec.get("cores") or info.get("cores"),
                "file": path.name,
            })
    return records


def _all_cores(records: Sequence[Mapping[str, Any]]) -> int | None:
    # Core-scaling runs (notebook 08) measure fewer cores; the charts compare all-core runs.
    cores = [r["cores"] for r in records if isinstance(r.get("cores"), int)]
    return max(cores) if cores else None


def engine_rows(records: Sequence[Mapping[str, Any]], batch_size: int) -> list[dict[str, Any]]:
    """Engine-only items/sec at one batch size and all cores, one row per (label, engine).

    A setup measured again later (the widget run of notebook 08) keeps its first value.
    """
    cores = _all_cores(records)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        if r.get("items_per_sec") is None or r.get("batch_size") != batch_size or r.get("cores") != cores:
            continue
        rows.setdefault((r["label"], r["engine"]), {
            "label": r["label"], "engine": r["engine"], "items_per_sec": r["items_per_sec"],
            "model": r.get("arch"), "variant": r.get("variant"), "cores": cores,
        })
    order = {e: i for i, e in enumerate(ENGINES)}
    return sorted(rows.values(), key=lambda row: (row["label"], order.get(row["engine"], 99)))


def speed_map_rows(records: Sequence[Mapping[str, Any]], engine: str = "deepsparse") -> list[dict[str, Any]]:
    """One point per model (label) with both a batch-1 items/sec on ``engine`` and an mAP@0.5."""
    maps: dict[str, float] = {}
    for r in records:
        if r.get("map50") is not None:
            maps.setdefault(r["label"], r["map50"])
    return [
        {**row, "map50": maps[row["label"]]}
        for row in engine_rows(records, batch_size=1)
        if row["engine"] == engine and row["label"] in maps
    ]


def fps_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """End-to-end video FPS (``run_video``), one row per (label, engine)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        if r.get("fps") is not None and r.get("fps_peak") is None:
            rows.setdefault((r["label"], r["engine"]), {"label": r["label"], "engine": r["engine"], "fps": r["fps"]})
    return list(rows.values())


def _figures(verdicts: Sequence[Verdict], records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    from yolotut.ui import plots

    figures: dict[str, Any] = {"Claimed vs measured": plots.verdict_figure(verdicts)}
    points = speed_map_rows(records)
    if points:
        figures["Speed vs accuracy (DeepSparse, batch 1)"] = plots.speed_vs_map_figure(
            points, title="DeepSparse batch-1 items/sec vs mAP@0.5 (pistols validation subset)"
        )
    for bs in sorted({r["batch_size"] for r in records if r.get("items_per_sec") and r.get("batch_size")}):
        rows = engine_rows(records, bs)
        if rows:
            figures[f"Throughput per engine, batch {bs}"] = plots.engine_bar_figure(
                rows, title=f"Engine-only throughput, batch {bs} (items/sec, {rows[0]['cores']} cores)"
            )
    fps = fps_rows(records)
    if fps:
        figures["End-to-end video FPS"] = plots.engine_bar_figure(fps, title="End-to-end video FPS (demo video, batch 1)")
    return figures


# --- the sparsity search (benchmarks/sparsity_search.py) -------------------------------------


def sparsity_search_rows(benchmarks_dir: str | Path) -> list[dict[str, Any]]:
    """DeepSparse INT8 rows of every ``sparsity_search.json`` below ``benchmarks_dir``.

    Only rows whose graph DeepSparse compiled fully count; a configuration measured in
    several runs keeps the run with the most repeats.
    """
    import pandas as pd

    runs = find_results(benchmarks_dir, "sparsity_search")
    if not runs:
        return []
    frame = pd.concat([pd.DataFrame(data["results"]).assign(source=str(path)) for path, data in runs], ignore_index=True)
    frame = frame[(frame["engine"] == "deepsparse") & (frame["precision"] == "int8")]
    if "deepsparse_supported_ops" in frame:
        # A graph DeepSparse did not compile fully ran in its ONNX Runtime fallback.
        frame = frame[frame["deepsparse_supported_ops"] >= 1.0]
    else:
        frame = frame.iloc[0:0]  # older files without the check: not trustworthy
    frame = frame.sort_values("repeats").drop_duplicates(["model", "config"], keep="last")
    # Files from before channel thinning have no "weights_removed": there it equals the sparsity.
    removed = frame["weights_removed"] if "weights_removed" in frame else frame["conv_sparsity"]
    frame = frame.assign(weights_removed=removed.fillna(frame["conv_sparsity"]))
    if "mask_type" in frame:
        frame = frame.assign(mask_type=frame["mask_type"].fillna(""))
    return frame.sort_values(["model", "speedup_median"], ascending=[True, False]).to_dict("records")


def sparsity_search_table(rows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    return _table(
        ["model", "configuration", "conv sparsity", "conv weights zero or removed", "speed-up vs dense INT8 (median, min-max)", "rounds", "items/s"],
        (
            [
                r["model"],
                r["config"],
                f"{r['conv_sparsity']:.1%}",
                f"{r['weights_removed']:.1%}",
                f"{r['speedup_median']:.2f} ({r['speedup_min']:.2f}-{r['speedup_max']:.2f})",
                int(r["repeats"]),
                f"{r['items_per_sec_median']:.0f}",
            ]
            for r in rows
        ),
    )


def sparsity_search_figure(rows: Sequence[Mapping[str, Any]]):
    import plotly.express as px

    return px.scatter(
        list(rows),
        x="weights_removed",
        y="speedup_median",
        color="family",
        symbol="mask_type",
        facet_col="model",
        hover_name="config",
        error_y=[r["speedup_max"] - r["speedup_median"] for r in rows],
        error_y_minus=[r["speedup_median"] - r["speedup_min"] for r in rows],
        labels={"weights_removed": "conv weights zero (pruned) or removed (thinned)", "speedup_median": "speed-up vs dense INT8"},
        title="Pruned or channel-thinned INT8 vs dense INT8 in DeepSparse (batch 1, 416 px): what pays on this CPU?",
    ).add_hline(y=1.0, line_dash="dot")


# --- the tutorial's speed-ups and the accuracy budget (benchmarks/tutorial_speedups.py, accuracy_budget.py) ---


def speedup_rows(benchmarks_dir: str | Path) -> list[dict[str, Any]]:
    """One row per speed-up and per end-to-end video figure of every ``tutorial_speedups.json`` below ``benchmarks_dir``."""
    rows: list[dict[str, Any]] = []
    for path, data in find_results(benchmarks_dir, "tutorial_speedups"):
        source = str(path.relative_to(benchmarks_dir))
        quiet = f"{data['disturbed_measurements']} of {data['measurements']} disturbed"
        for name, ratio in data.get("ratios", {}).items():
            rows.append({
                "name": name,
                "measured": f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f})",
                "target": f">= {ratio['target']}x",
                "met": ratio["median"] >= ratio["target"],
                "rounds": data.get("rounds"),
                "quiet": quiet,
                "source": source,
            })
        fps_target = data["video_fps_target"]
        for label, video in data.get("video", {}).items():
            runs = video.get("fps_all", [])
            spread = f" ({min(runs):.1f}-{max(runs):.1f})" if runs else ""
            rows.append({
                "name": f"end-to-end video FPS: {label}",
                "measured": f"{video['fps_median']:.1f} FPS{spread}",
                "target": f">= {fps_target} FPS",
                "met": video["fps_median"] >= fps_target,
                "rounds": len(runs) or None,
                "quiet": "not checked",  # the video loop is not quiet-checked
                "source": source,
            })
    return rows


def speedup_table(rows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    return _table(
        ["speed-up", "measured (median, min-max)", "target", "met", "rounds", "machine quiet", "file"],
        ([r["name"], r["measured"], r["target"], "yes" if r["met"] else "no", r["rounds"], r["quiet"], r["source"]] for r in rows),
    )


def accuracy_budget_rows(benchmarks_dir: str | Path) -> list[dict[str, Any]]:
    """Every variant of every ``accuracy_budget.json`` below ``benchmarks_dir``, by training budget."""
    rows: list[dict[str, Any]] = []
    for path, data in find_results(benchmarks_dir, "accuracy_budget"):
        for variant, result in data.get("results", {}).items():
            rows.append({"variant": variant, "epochs": result.get("epochs", data.get("epochs")), **result, "source": str(path.relative_to(benchmarks_dir))})
    return sorted(rows, key=lambda r: (r["epochs"] or 0, r["variant"]))


def _training_minutes(result: Mapping[str, Any]) -> str | None:
    """Minutes of training; per device when a run moved, e.g. from a GPU machine to the CPU."""
    by_device = result.get("train_seconds_by_device") or {}
    if len(by_device) > 1:
        return " + ".join(f"{seconds / 60:.1f} ({device})" for device, seconds in sorted(by_device.items()))
    return None if result.get("train_seconds") is None else f"{result['train_seconds'] / 60:.1f}"


def accuracy_budget_table(rows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    return _table(
        ["variant", "epochs", "training images", "mAP@0.5", "mAP@0.5:0.95", "validation images", "engine", "training minutes", "device", "file"],
        (
            [
                r["variant"], r["epochs"], r.get("train_images"), r["map50"], r["map50_95"], r.get("val_images"), r.get("engine"),
                _training_minutes(r), r.get("device"), r["source"],
            ]
            for r in rows
        ),
    )


# --- after end of life: engines x quantization paths (benchmarks/living_engines.py, notebook 09) ---


def add_living_engines(benchmarks_dir: str | Path, sections: list, figures: dict[str, Any]) -> None:
    """Append the newest ``living_engines.json`` below ``benchmarks_dir``: the engine x quantization
    table (with versions and CPU flags in its title), the recommendations, and the chart."""
    from yolotut.reproduce import living_engines

    runs = find_results(benchmarks_dir, living_engines.RESULTS_NAME)
    if not runs:
        return
    path, payload = max(runs, key=lambda run: run[1].get("written", ""))
    cpu, versions = payload["hardware"], payload["versions"]
    flags = ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx") if cpu.get(f)) or "none of interest"
    engines = ", ".join(f"{k} {versions.get(k)}" for k in ("openvino", "nncf", "onnxruntime", "deepsparse", "sparseml"))
    title = (f"After end of life: engines x quantization ({path.relative_to(benchmarks_dir)}; {engines}; "
             f"{cpu.get('cpu_model')}, {cpu.get('cores_available')} cores, flags: {flags}; "
             f"{payload['settings']['rounds']} interleaved rounds)")
    sections.append((title, living_engines.markdown_cells(payload)))
    advice = living_engines.recommendations(payload)
    if advice:
        sections.append(("What to use now (from the table above)", _table(["use case", "recommendation"], advice.items())))
    figures["Engines x quantization: speed vs mAP"] = living_engines.figure(payload)


# --- Neural Magic's table at 640 px (benchmarks/neural_magic_table.py, notebook 10) ---------------


def add_neural_magic_table(benchmarks_dir: str | Path, sections: list, figures: dict[str, Any]) -> None:
    """Append the newest ``neural_magic_table.json`` below ``benchmarks_dir``: the post's
    comparisons as medians of per-round ratios with their min-max, and the chart."""
    from yolotut.reproduce import neural_magic_table

    runs = find_results(benchmarks_dir, "neural_magic_table")
    if not runs:
        return
    path, payload = max(runs, key=lambda run: run[1].get("written", ""))
    cpu, settings = payload["hardware"], payload["settings"]
    title = (f"Neural Magic's comparisons at 640 px ({path.relative_to(benchmarks_dir)}; {cpu.get('cpu_model')}, "
             f"{cpu.get('cores_available')} cores; {settings['rounds']} interleaved rounds, {settings['profile']} profile; "
             f"weights: {payload['weights']})")
    sections.append((title, neural_magic_table.markdown_cells(payload)))
    figures["Neural Magic's comparisons at 640 px"] = neural_magic_table.figure(payload)


# --- tables ----------------------------------------------------------------------------------


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[list[str]]:
    return [list(headers)] + [[_fmt(c) if not isinstance(c, str) else c for c in row] for row in rows]


def markdown_table(table: list[list[str]]) -> str:
    head, *body = table
    cell = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def html_table(table: list[list[str]]) -> str:
    head, *body = table
    out = "<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>"
    out += "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
    return out + "</tbody></table>"


def notebook_table(manifest: Mapping[str, Any]) -> list[list[str]]:
    runs = manifest.get("notebooks", [])
    rows = [
        (n["name"], n.get("profile") or "-", "-" if n.get("seconds") is None else f"{n['seconds']:.0f}", n.get("status", "ok"))
        for n in runs
    ]
    total = sum(n["seconds"] for n in runs if n.get("seconds") is not None)
    if runs:
        rows.append(("total", "", f"{total:.0f}", ""))
    return _table(("notebook", "profile", "wall time (s)", "status"), rows)


def model_table(manifest: Mapping[str, Any]) -> list[list[str]]:
    rows = [
        (
            m.get("variant", "?"), m.get("model") or "-", m.get("precision", "-"),
            f"{m['sparsity']:.1%}" if m.get("sparsity") is not None else "-",
            f"{m['channels_removed']:.1%}" if m.get("channels_removed") is not None else "-",
            _fmt(m.get("file_size_mb"), 2), _fmt(m.get("file_size_gz_mb"), 2), _fmt(m.get("map50")),
            Path(m["onnx"]).name if m.get("onnx") else "-",
        )
        for m in manifest.get("models", [])
    ]
    columns = ("variant", "model", "precision", "conv sparsity", "conv weights removed (thinning)", "ONNX MB", "gzip MB", "mAP@0.5", "file")
    return _table(columns, rows)


def measurement_table(measurements: Sequence[Measurement]) -> list[list[str]]:
    rows = [
        (m.metric, _fmt(m.value), m.model or "-", m.variant or "-", m.engine or "-",
         _fmt(m.batch_size), _fmt(m.cores), _fmt(m.imgsz), m.measurement or "-", Path(m.source).name)
        for m in measurements
    ]
    return _table(("metric", "value", "model", "variant", "engine", "batch", "cores", "imgsz", "kind", "file"), rows)


# --- the report ------------------------------------------------------------------------------


def build_report(
    results_dir: str | Path,
    out_dir: str | Path,
    manifest_path: str | Path | None = None,
    claims_path: str | Path | None = None,
    tolerance: float = claims_mod.DEFAULT_TOLERANCE,
) -> dict[str, Path]:
    """Check the claims against ``results_dir`` and write ``report.md``, ``report.html`` and ``verdicts.json``.

    ``manifest_path`` defaults to ``<results_dir>/../manifest.json``. Returns the paths written.
    """
    from yolotut import hardware
    from yolotut.reproduce.results import load_manifest

    results_dir, out_dir = Path(results_dir), Path(out_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"no results folder {results_dir}: run the notebooks first (`yolotut reproduce`)")
    manifest = load_manifest(manifest_path or results_dir.parent / "manifest.json")
    registry = claims_mod.load_claims(claims_path)
    measurements = claims_mod.load_measurements(results_dir)
    verdicts = claims_mod.check(registry, measurements, tolerance=tolerance)
    figures = _figures(verdicts, load_records(results_dir))

    cpu = hardware.cpu_fingerprint()
    machine = f"{cpu['cpu_model']}, {cpu['cores_available']} cores available, AVX-512 VNNI: {cpu['avx512_vnni']}"
    profiles = sorted({n.get("profile") for n in manifest.get("notebooks", []) if n.get("profile")})
    intro = (
        f"Machine: {machine}. Profile: {', '.join(profiles) or 'unknown'}. "
        f"{len(measurements)} measurements from {len({m.source for m in measurements})} result files."
    )
    caveat = (
        "Absolute speeds depend on the machine: the checker compares ratios measured side by side on one "
        "machine (speed-ups, size reductions) with the published ratios. With the quick profile the models "
        "are trained for a handful of steps only: their speeds are real, their mAP is not meaningful."
    )
    sections = [
        ("Notebooks", notebook_table(manifest)),
        ("Models produced", model_table(manifest)),
    ]
    benchmarks_dir = results_dir.parent / "benchmarks"
    search = sparsity_search_rows(benchmarks_dir)
    if search:
        # Produced by benchmarks/sparsity_search.py (not by the notebooks): shown when present.
        sections.append(("Sparsity vs speed (benchmarks/sparsity_search.py)", sparsity_search_table(search)))
        figures["Sparsity vs speed"] = sparsity_search_figure(search)
    speedups = speedup_rows(benchmarks_dir)
    if speedups:
        sections.append(("The tutorial's speed-ups (benchmarks/tutorial_speedups.py)", speedup_table(speedups)))
    budget = accuracy_budget_rows(benchmarks_dir)
    if budget:
        sections.append(("Accuracy at equal training budget (benchmarks/accuracy_budget.py)", accuracy_budget_table(budget)))
    add_living_engines(benchmarks_dir, sections, figures)
    add_neural_magic_table(benchmarks_dir, sections, figures)

    out_dir.mkdir(parents=True, exist_ok=True)
    md = [f"# Reproduction report\n\n{intro}\n\n{caveat}\n", "## Published claims vs our measurements\n",
          claims_mod.verdicts_to_markdown(verdicts)]
    for title, table in sections:
        md += [f"## {title}\n", markdown_table(table)]
    md += ["## All measurements\n", markdown_table(measurement_table(measurements)),
           "\nInteractive charts (claimed vs measured, speed vs mAP, throughput per engine): `report.html`.\n"]
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(md))

    page = claims_mod.verdicts_to_html(verdicts, figures, title="Reproduction report: published claims vs our measurements")
    extra = f"<p>{html.escape(intro)}</p><p>{html.escape(caveat)}</p>" + "".join(
        f"<h2>{html.escape(title)}</h2>{html_table(table)}" for title, table in sections
    )
    extra += f"<h2>All measurements</h2>{html_table(measurement_table(measurements))}"
    html_path = out_dir / "report.html"
    html_path.write_text(page.replace("</body></html>", extra + "</body></html>"))

    json_path = out_dir / "verdicts.json"
    json_path.write_text(json.dumps(claims_mod.verdicts_to_json(verdicts), indent=2) + "\n")
    return {"markdown": md_path, "html": html_path, "verdicts": json_path}
