"""Which sparsity configuration makes pruned + INT8 faster than dense INT8 in DeepSparse?

For each model (YOLOv5s-SiLU and YOLOv5n-Hardswish by default, one class, 416 px) and
each sparsity configuration of a grid, this script

1. builds the dense INT8 model once: fresh weights, one-shot calibration
   (``yolotut.training.loop.calibrate_oneshot``, random images), ``uint8``-input export
   (``yolotut.inference.export.export_onnx``, into graphs DeepSparse runs in full; see
   ``yolotut.inference.sparse_models``);
2. writes each configuration's zeros into that export's INT8 weights by magnitude
   (``yolotut.inference.sparsify.apply_sparsity_onnx``: per-group targets from the pruning
   recipe, layers kept dense, ``[1,4]`` blocks or unstructured) and checks every
   layer's sparsity in the written file. Speed depends on where the zeros are, never
   on the weights' values, so no training is needed. ``--full-pipeline`` instead runs
   ``apply_sparsity`` -> calibration -> export for every configuration (minutes each,
   same file up to rounding ties); ``--validate`` measures two such twins;
3. benchmarks every model engine-only (batch 1, ``--cores`` cores, 25 warm-up + 80
   timed runs = ``yolotut.inference.benchmark.benchmark_engine``) in ``--repeats`` interleaved
   rounds: every round runs every model once, in a rotated order, so drifting
   background load hits all configurations alike. A configuration's speed-up is
   computed per round against dense INT8 *of the same round* (throughput = 1 /
   median latency); the median over rounds is reported with its min-max spread.
   Timed runs are SCHED_FIFO and repeated when other processes took CPU meanwhile
   (see :func:`realtime`).

References measured in the same rounds: the dense fp32 model on DeepSparse and the
dense INT8 model on ONNX Runtime. Every DeepSparse engine's
``fraction_of_supported_ops`` is recorded; below 1.0 part of the graph would run in
DeepSparse's ONNX Runtime fallback and a warning is printed.

Exported models are cached by configuration hash in ``outputs/benchmarks/models/``:
a rerun only benchmarks. Results: ``sparsity_search.json`` / ``.csv`` / ``.html`` in
``--out-dir`` (default ``outputs/benchmarks/``). See ``benchmarks/README.md``.

    .venv/bin/python benchmarks/sparsity_search.py --sizes s n --repeats 5
    .venv/bin/python benchmarks/sparsity_search.py --quick          # 3-config smoke run
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

import yolotut.compat  # noqa: F401  (NM_DISABLE_ANALYTICS before deepsparse loads)
from yolotut.inference.quiet import QuietPolicy, measure_quietly
from yolotut.inference.sparse_models import ModelSpec, Point, ensure_model
from yolotut.inference.sparsify import BLOCK, RECIPE_DENSE, UNSTRUCTURED, SparsityConfig
from yolotut.models.thinning import ThinningConfig
from yolotut.models.thinning_presets import (
    BACKBONE_SPLIT,
    FIRST_C3_WHOLE,
    HALVED_FIRST_C3_WHOLE,
    HEAD_HEAVY,
    STRIDED_C3,
    STRIDED_C3_BOTTLENECKS,
    STRIDED_HALVED,
    STRIDED_HEAD_HEAVY,
)
from yolotut.reproduce.results import write_results

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_OUT = ROOT / "outputs" / "benchmarks"


# --- what is measured ----------------------------------------------------------------


def _dense_except(*extra: str) -> tuple[str, ...]:
    return RECIPE_DENSE + extra


EARLY = ("model.1", "model.2")  # the two high-resolution backbone stages (recipe group sparsity_early)


def _recipe_without_early(scale: float, mask_type: str = BLOCK) -> SparsityConfig:
    """The scaled recipe with the ``sparsity_early`` group (layers 1-2) kept dense."""
    targets = {k: v for k, v in SparsityConfig.recipe(scale, mask_type).targets.items() if k != "sparsity_early"}
    return SparsityConfig(targets, _dense_except(*EARLY), mask_type)


def base_grid() -> list[Point]:
    """The first look: uniform levels for both masks, the recipe's per-group targets
    scaled up, and variants that keep more (or fewer) of the outer layers dense."""
    points = [Point("dense INT8", "dense", SparsityConfig.dense_model())]
    for mask, family in ((BLOCK, "uniform [1,4]"), (UNSTRUCTURED, "uniform unstructured")):
        for level in (0.5, 0.75, 0.85, 0.9):
            points.append(Point(f"uniform {level:.0%} {mask}", family, SparsityConfig.uniform(level, mask)))
    for scale in (1.0, 1.15, 1.25):
        points.append(Point(f"recipe x{scale:g} [1,4]", "recipe [1,4]", SparsityConfig.recipe(scale)))
    points += [
        Point("recipe x1.25 unstructured", "recipe unstructured", SparsityConfig.recipe(1.25, UNSTRUCTURED)),
        Point(
            "recipe x1.25 [1,4], layers 1-2 dense",
            "outer layers dense",
            _recipe_without_early(1.25),
        ),
        Point(
            "uniform 85% [1,4], layers 1-2 dense",
            "outer layers dense",
            SparsityConfig.uniform(0.85, dense=_dense_except(*EARLY)),
        ),
        Point(
            "uniform 85% [1,4] incl. Detect",
            "all layers pruned",
            # The stem keeps 3 input channels: no [1,4] blocks possible there.
            SparsityConfig.uniform(0.85, dense=("model.0",)),
        ),
    ]
    return points


# The 3x3 convolutions: the stride-2 downsampling convs and every bottleneck's cv2.
# DeepSparse's debug analysis showed its sparse kernels *slower* than dense ones on
# these (model.7: 0.40 -> 0.46 ms at 90 %) and 20-30 % faster on 1x1 convs.
_CONV_3X3_RE = r"^model\.(1|3|5|7|18|21)\.conv\.|^.*\.m\.\d+\.cv2\."
CONV_3X3 = (f"re:({_CONV_3X3_RE})",)
NOT_CONV_3X3 = (f"re:(?!{_CONV_3X3_RE})",)


def refine_grid() -> list[Point]:
    """Second look, after the base grid showed no configuration beating dense INT8:
    which group / kernel shape pays (if any), and whether more sparsity helps."""
    points = [Point("dense INT8", "dense", SparsityConfig.dense_model())]
    for group in ("sparsity_early", "sparsity_p3", "sparsity_p4", "sparsity_deep"):
        points.append(Point(f"{group} only, 90% [1,4]", "one group", SparsityConfig({group: 0.9})))
    for level in (0.75, 0.95):  # the only group that came out at par: how far can it go?
        points.append(Point(f"sparsity_deep only, {level:.0%} [1,4]", "one group", SparsityConfig({"sparsity_deep": level})))
    for level in (0.9, 0.95):
        points.append(Point(f"1x1 convs only, {level:.0%} [1,4]", "1x1 only", SparsityConfig.uniform(level, dense=_dense_except(*CONV_3X3))))
        points.append(
            Point(
                f"deep+p4 1x1 only, {level:.0%} [1,4]",
                "1x1 only",
                SparsityConfig({"sparsity_p4": level, "sparsity_deep": level}, dense=_dense_except(*CONV_3X3)),
            )
        )
    points.append(Point("3x3 convs only, 90% [1,4]", "3x3 only", SparsityConfig.uniform(0.9, dense=_dense_except(*NOT_CONV_3X3))))
    points.append(Point("uniform 95% [1,4]", "uniform [1,4]", SparsityConfig.uniform(0.95)))
    return points


STEM = (0, 1)  # YOLOv5 v6: the 6x6 stride-2 stem and the stride-4 convolution
STEM_HALVED = {m: {"conv": 0.5} for m in STEM}
HEAD_C3 = (13, 17, 20, 23)


def structured_grid() -> list[Point]:
    """Third look, after no zero pattern paid: remove whole channels instead
    (``yolotut.models.thinning``: the hidden channels of the C3 bottlenecks, the C3
    branches and SPPF), which leaves a smaller *dense* model."""
    dense = SparsityConfig.dense_model()
    points = [Point("dense INT8", "dense", dense)]
    for label, thinning in (
        ("thin bottlenecks to 50%", ThinningConfig(bottleneck=0.5)),
        ("thin C3 branches to 75%", ThinningConfig(c3=0.75)),
        ("thin C3 branches to 50%", ThinningConfig(c3=0.5)),
        ("thin C3 50%, bottlenecks 50%", ThinningConfig(c3=0.5, bottleneck=0.5)),
        ("thin C3 50%, bottlenecks 50%, SPPF 50%", ThinningConfig(c3=0.5, bottleneck=0.5, sppf=0.5)),
        ("thin C3 branches to 25%", ThinningConfig(c3=0.25)),
        # As many multiply-adds removed as "C3 50%, bottlenecks 50%", more of them in the head.
        ("thin head C3s to 25%, backbone C3 75% / bottlenecks 50%", HEAD_HEAVY),
        # Block 2 whole, blocks 6 and 8 to a quarter: more taken where a group does least damage.
        ("thin split: model.2 whole, model.6/8 to 25%, rest 50%", BACKBONE_SPLIT),
        # The stem (blocks 0 and 1) runs at stride 2 and 4, where most of the time goes;
        # its outputs feed only the next block, so they can be thinned too (kind "conv").
        ("thin stem to 50%", ThinningConfig(conv=0.5, modules=STEM)),
        ("thin stem and strided convs to 50%", ThinningConfig(conv=0.5)),
        ("thin stem 50%, C3 50%, bottlenecks 50%", ThinningConfig(c3=0.5, bottleneck=0.5, module_keep=STEM_HALVED)),
        ("thin stem 50%, C3 branches 50%", ThinningConfig(c3=0.5, module_keep=STEM_HALVED)),
        ("thin stem 50%, head C3s 50%", ThinningConfig(module_keep={**STEM_HALVED, **{m: {"c3": 0.5, "bottleneck": 0.5} for m in HEAD_C3}})),
        # The stem measured no faster thinned; the strided convolutions after it did.
        ("thin strided convs 3/5/7 to 50%", ThinningConfig(module_keep=STRIDED_HALVED)),
        ("thin strided 3/5/7 50%, C3 branches 50%", STRIDED_C3),
        ("thin strided 3/5/7 50%, bottlenecks 50%", ThinningConfig(bottleneck=0.5, module_keep=STRIDED_HALVED)),
        ("thin strided 3/5/7 50%, C3 50%, bottlenecks 50%", STRIDED_C3_BOTTLENECKS),
        ("thin strided 3/5/7 50% + head C3s to 25%, backbone C3 75% / bottlenecks 50%", STRIDED_HEAD_HEAVY),
        # The first C3 (block 2, stride 4) does the most damage thinned; on AVX-512 its
        # 16 -> 8 hidden channels looked no faster in DeepSparse's per-layer timings.
        ("thin C3 50%, bottlenecks 50%, model.2 whole", HALVED_FIRST_C3_WHOLE),
        ("thin strided 3/5/7 50%, C3 50%, bottlenecks 50%, model.2 whole", ThinningConfig(c3=0.5, bottleneck=0.5, module_keep={**STRIDED_HALVED, **FIRST_C3_WHOLE})),
        ("thin strided 3/5/7 50%, C3 branches 50%, model.2 whole", ThinningConfig(c3=0.5, module_keep={**STRIDED_HALVED, **FIRST_C3_WHOLE})),
        ("thin strided 3/5/7 50% + head C3s to 25%, backbone C3 75% / bottlenecks 50%, model.2 whole",
         ThinningConfig(c3=0.75, bottleneck=0.5, module_keep={**STRIDED_HEAD_HEAVY.module_keep, **FIRST_C3_WHOLE})),
    ):
        points.append(Point(label, "channels thinned", dense, method="pipeline", thinning=thinning))
    return points


def tutorial_grid() -> list[Point]:
    """The few configurations notebook 08 measures: one of each kind."""
    return [
        Point("dense INT8", "dense", SparsityConfig.dense_model()),
        Point("recipe x1 [1,4] (notebook 05's targets)", "recipe [1,4]", SparsityConfig.recipe(1.0)),
        Point("sparsity_deep only, 90% [1,4]", "one group", SparsityConfig({"sparsity_deep": 0.9})),
        Point("uniform 90% unstructured", "uniform unstructured", SparsityConfig.uniform(0.9, UNSTRUCTURED)),
        Point("thin C3 branches to 50%", "channels thinned", SparsityConfig.dense_model(), method="pipeline", thinning=ThinningConfig(c3=0.5)),
        Point(
            "thin C3 50%, bottlenecks 50%",
            "channels thinned",
            SparsityConfig.dense_model(),
            method="pipeline",
            thinning=ThinningConfig(c3=0.5, bottleneck=0.5),
        ),
    ]


def quick_grid() -> list[Point]:
    return [
        Point("dense INT8", "dense", SparsityConfig.dense_model()),
        Point("recipe x1.25 [1,4]", "recipe [1,4]", SparsityConfig.recipe(1.25)),
        Point("uniform 85% [1,4]", "uniform [1,4]", SparsityConfig.uniform(0.85)),
    ]


def validation_points() -> list[Point]:
    """Configurations also built through the full pipeline, to show that deriving them
    from the dense INT8 export measures the same."""
    return [
        Point("uniform 85% [1,4] (full pipeline)", "validation", SparsityConfig.uniform(0.85), method="pipeline"),
        Point("recipe x1.25 [1,4] (full pipeline)", "validation", SparsityConfig.recipe(1.25), method="pipeline"),
    ]


AUTHOR_MODEL = Point(
    "blog author's yolov5n-hardswish (dense INT8)", "reference", SparsityConfig.dense_model(), method="published", asset="blog-yolov5n-pq-hardswish"
)


def reference_points() -> list[Point]:
    dense = SparsityConfig.dense_model()
    return [
        Point("dense fp32 (DeepSparse)", "reference", dense, quantized=False),
        Point("dense INT8 (ONNX Runtime)", "reference", dense, engine="onnxruntime"),
    ]


# --- measuring -------------------------------------------------------------------------

@dataclass
class Entry:
    spec: ModelSpec
    point: Point
    path: Path
    info: dict[str, Any]
    items_per_sec: list[float] = field(default_factory=list)  # 1000 / median latency, per round
    items_per_sec_mean: list[float] = field(default_factory=list)  # 1000 / mean latency (yolotut.inference.benchmark's figure)
    latency_ms_median: list[float] = field(default_factory=list)
    foreign_load: list[float] = field(default_factory=list)  # other processes' (or the hypervisor's) CPU during the kept measurement
    tries: list[int] = field(default_factory=list)
    speedup: list[float] = field(default_factory=list)
    supported: float | None = None  # DeepSparse's fraction_of_supported_ops

    @property
    def conv_sparsity(self) -> float:
        return float(self.info["onnx"]["conv_sparsity"])

    @property
    def weights_removed(self) -> float:
        """Share of the dense model's conv weights that are zero *or gone* (thinned)."""
        layers = self.info["onnx"]["layers"]
        present = sum(float(np.prod(layer["shape"])) for layer in layers)
        nonzero = sum(float(np.prod(layer["shape"])) * (1.0 - layer["sparsity"]) for layer in layers)
        dense = float(self.info.get("dense_conv_weights") or present)
        return 1.0 - nonzero / dense


def measure(
    entries: Sequence[Entry],
    repeats: int,
    warmup: int,
    iterations: int,
    cores: int,
    quiet: QuietPolicy | None = None,
    use_realtime: bool = True,
    progress: bool = True,
) -> bool:
    """Interleaved rounds; fills each entry's per-round figures and speed-ups.

    The per-round throughput is ``1000 / median latency``: a run disturbed by another
    process shifts the mean far more than the median. Returns whether the timed runs
    were real-time scheduled.
    """
    quiet = quiet or QuietPolicy()
    from yolotut.inference.engines import create_engine

    engines = []
    for entry in tqdm(entries, desc="compiling", disable=not progress):
        engine = create_engine(entry.path, entry.point.engine, batch_size=1, cores=cores, imgsz=entry.spec.imgsz)
        entry.supported = engine.info().get("fraction_of_supported_ops")
        if entry.supported is not None and entry.supported < 1.0:
            # DeepSparse would run part of the graph in its ONNX Runtime fallback: not what we study.
            print(f"warning: DeepSparse supports only {entry.supported:.0%} of {entry.path.name}", file=sys.stderr)
        engines.append(engine)
    bar = tqdm(total=repeats * len(entries), desc="benchmarking", disable=not progress)
    warned = False
    for round_index in range(repeats):
        # Rotate the order each round: no configuration always runs right after the
        # same neighbour or at the same point of the round.
        shift = round_index % len(entries)
        order = list(range(len(entries)))[shift:] + list(range(len(entries)))[:shift]
        for index in order:
            result, load, attempt, rt = measure_quietly(engines[index], quiet, use_realtime, warmup=warmup,
                                                        iterations=iterations, seed=round_index)
            if use_realtime and not rt and not warned:
                print("warning: no permission for SCHED_FIFO; other processes will disturb the timings", file=sys.stderr)
                warned = True
            entry = entries[index]
            entry.items_per_sec.append(1000.0 / float(result.latency_ms_median))
            entry.items_per_sec_mean.append(float(result.items_per_sec))
            entry.latency_ms_median.append(float(result.latency_ms_median))
            entry.foreign_load.append(load)
            entry.tries.append(attempt)
            bar.set_postfix(other_cpu=f"{load:.2f}")
            bar.update()
    bar.close()
    for spec in {e.spec for e in entries}:
        group = [e for e in entries if e.spec == spec]
        baseline = next(e for e in group if e.point.is_baseline)
        for entry in group:
            entry.speedup = [ips / base for ips, base in zip(entry.items_per_sec, baseline.items_per_sec)]
    return rt


def summary_row(entry: Entry) -> dict[str, Any]:
    onnx = entry.info["onnx"]
    speedup = np.asarray(entry.speedup)
    return {
        "model": entry.spec.label,
        "config": entry.point.label,
        "family": entry.point.family,
        "engine": entry.point.engine,
        "precision": "int8" if entry.point.quantized else "fp32",
        "method": entry.info.get("method", "derived" if entry.point.derived else "pipeline"),
        "mask_type": entry.point.config.mask_type if entry.point.config.targets else "",
        "conv_sparsity": round(onnx["conv_sparsity"], 4),
        "block4_sparsity": round(onnx["block4_sparsity"], 4),
        "weights_removed": round(entry.weights_removed, 4),
        "thinning": json.dumps(entry.point.thinning.to_dict()) if entry.point.thinning is not None else "",
        "items_per_sec_median": round(float(np.median(entry.items_per_sec)), 2),
        "items_per_sec_mean_latency": round(float(np.median(entry.items_per_sec_mean)), 2),
        "latency_ms_median": round(float(np.median(entry.latency_ms_median)), 3),
        "speedup_median": round(float(np.median(speedup)), 4),
        "speedup_min": round(float(speedup.min()), 4),
        "speedup_max": round(float(speedup.max()), 4),
        "repeats": len(entry.speedup),
        "max_other_cpu": round(float(max(entry.foreign_load)), 3),
        "deepsparse_supported_ops": entry.supported,
        "config_key": entry.point.asset or entry.point.config.key(),
        "targets": json.dumps(entry.point.config.targets, sort_keys=True),
        "dense_layers": " ".join(entry.point.config.dense),
        "onnx": str(entry.path.relative_to(ROOT) if entry.path.is_relative_to(ROOT) else entry.path),
    }


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    for model in dict.fromkeys(r["model"] for r in rows):
        print(f"\n{model}: speed-up vs dense INT8 (DeepSparse) measured in the same rounds")
        print(f"{'configuration':46s} {'sparsity':>8s} {'removed':>8s} {'items/s':>8s} {'speed-up':>8s}  {'min-max':>11s}")
        for r in sorted((r for r in rows if r["model"] == model), key=lambda r: -r["speedup_median"]):
            print(
                f"{r['config']:46s} {r['conv_sparsity']:8.1%} {r['weights_removed']:8.1%} {r['items_per_sec_median']:8.1f} "
                f"{r['speedup_median']:7.2f}x  {r['speedup_min']:.2f}-{r['speedup_max']:.2f}"
            )


def write_outputs(out_dir: Path, entries: Sequence[Entry], meta: dict[str, Any]) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [summary_row(e) for e in entries]
    paths = {"json": out_dir / "sparsity_search.json", "csv": out_dir / "sparsity_search.csv", "html": out_dir / "sparsity_search.html"}
    detail = [
        {**row, "items_per_sec": e.items_per_sec, "latency_ms_median_per_round": e.latency_ms_median, "speedup_per_round": e.speedup, "other_cpu_per_round": e.foreign_load, "tries_per_round": e.tries, "recipe_args": e.info.get("recipe_args")}
        for row, e in zip(rows, entries)
    ]
    write_results(out_dir, "sparsity_search", {"meta": meta, "results": detail})
    with paths["csv"].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    speedup_figure(rows, meta).write_html(paths["html"], include_plotlyjs=True)
    return paths


FAMILY_SYMBOLS = {"uniform [1,4]": "square", "uniform unstructured": "circle", "recipe [1,4]": "diamond", "channels thinned": "x"}


def speedup_figure(rows: Sequence[dict[str, Any]], meta: dict[str, Any]):
    """Speed-up vs conv sparsity, one panel per model, one colour per configuration family."""
    import plotly.express as px
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    models = list(dict.fromkeys(r["model"] for r in rows))
    families = list(dict.fromkeys(r["family"] for r in rows if r["family"] != "reference"))
    colors = dict(zip(families, px.colors.qualitative.D3))
    fig = make_subplots(rows=1, cols=len(models), subplot_titles=models, shared_yaxes=True)
    for col, model in enumerate(models, start=1):
        for family in families:
            sel = sorted((r for r in rows if r["model"] == model and r["family"] == family), key=lambda r: r["weights_removed"])
            if not sel:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[r["weights_removed"] for r in sel],
                    y=[r["speedup_median"] for r in sel],
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [r["speedup_max"] - r["speedup_median"] for r in sel],
                        "arrayminus": [r["speedup_median"] - r["speedup_min"] for r in sel],
                    },
                    mode="markers",
                    marker={"size": 10, "color": colors[family], "symbol": FAMILY_SYMBOLS.get(family, "triangle-up")},
                    name=family,
                    legendgroup=family,
                    showlegend=col == 1,
                    text=[r["config"] for r in sel],
                    hovertemplate="%{text}<br>conv weights zero or removed %{x:.1%}<br>speed-up %{y:.2f}x<extra></extra>",
                ),
                row=1,
                col=col,
            )
        for r in (r for r in rows if r["model"] == model and r["family"] == "reference"):
            fig.add_hline(y=r["speedup_median"], line_dash="dot", line_color="grey", annotation_text=r["config"], row=1, col=col)
        fig.add_hline(y=1.0, line_color="black", line_width=1, row=1, col=col)
        fig.update_xaxes(title_text="conv weights zero or removed (vs the dense model, measured in the ONNX file)", tickformat=".0%", row=1, col=col)
    fig.update_yaxes(title_text="speed-up vs dense INT8 (median, min-max bars)", row=1, col=1)
    fig.update_layout(
        title=f"DeepSparse {meta.get('deepsparse')}: pruned or thinned INT8 vs dense INT8, batch 1, {meta.get('cores')} cores, {meta.get('imgsz')} px ({meta.get('date')})",
        template="plotly_white",
        height=520,
        width=560 * len(models),
    )
    return fig


# --- command line ------------------------------------------------------------------------


def _model_spec(text: str, imgsz: int) -> ModelSpec:
    try:
        return ModelSpec.parse(text, imgsz)
    except ValueError as exc:
        raise SystemExit(f"sparsity_search.py: error: --sizes: {exc}") from None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["s", "n"], help="YOLOv5 sizes, SIZE or SIZE:ACTIVATION (default: s n = s:silu n:hardswish)")
    parser.add_argument("--grid", choices=["base", "refine", "structured", "tutorial", "all"], default="all", help="which configurations (default: all)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 configurations, 2 short rounds, no references")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=25)
    parser.add_argument("--iterations", type=int, default=80)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--imgsz", type=int, default=416)
    parser.add_argument("--no-realtime", action="store_true", help="time at normal priority (default: SCHED_FIFO during the timed runs, if permitted)")
    parser.add_argument("--quiet-threshold", type=float, default=QuietPolicy.threshold, help="CPU (in cores) other processes may use during a measurement before it is repeated")
    parser.add_argument("--max-wait", type=float, default=QuietPolicy.max_wait, help="seconds to wait for a quiet machine before each measurement")
    parser.add_argument("--max-tries", type=int, default=QuietPolicy.max_tries, help="measurements per model and round when the machine was busy")
    parser.add_argument("--no-references", action="store_true", help="skip dense fp32 (DeepSparse) and INT8 (ONNX Runtime)")
    parser.add_argument("--author", action="store_true", help="also measure the blog author's YOLOv5n-Hardswish model (with the n:hardswish model only; needs the asset, e.g. via YOLOTUT_MIRROR)")
    parser.add_argument("--only", nargs="+", default=None, metavar="TEXT", help="keep configurations whose label contains any TEXT (dense INT8 always runs)")
    parser.add_argument("--full-pipeline", action="store_true", help="export every configuration through calibrate_oneshot + export_onnx (minutes each) instead of deriving it from the dense INT8 export")
    parser.add_argument("--validate", action="store_true", help="also measure two configurations built through the full pipeline, next to their derived twins")
    parser.add_argument("--export-only", action="store_true", help="build and cache the models, measure nothing")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="where the JSON/CSV/HTML results go")
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_OUT / "models", help="cache of exported models (by config hash)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.iterations < 1 or args.warmup < 0 or args.cores < 1:
        parser.error("--repeats, --iterations and --cores must be >= 1, --warmup >= 0")
    if args.quick:
        args.repeats, args.warmup, args.iterations, args.no_references = min(args.repeats, 2), 5, 20, True
        args.max_wait, args.max_tries = min(args.max_wait, 5.0), 1  # a smoke run does not wait for quiet
    try:
        args.specs = [_model_spec(s, args.imgsz) for s in args.sizes]
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    return args


def select_points(args: argparse.Namespace) -> list[Point]:
    if args.quick:
        points = quick_grid()
    elif args.grid == "tutorial":
        points = tutorial_grid()
    else:
        points = (
            (base_grid() if args.grid in ("base", "all") else [])
            + (refine_grid() if args.grid in ("refine", "all") else [])
            + (structured_grid() if args.grid in ("structured", "all") else [])
        )
        if args.grid in ("refine", "structured"):
            points = quick_grid()[:1] + points
    if args.only:
        points = [p for p in points if p.is_baseline or any(text in p.label for text in args.only)]
    if args.full_pipeline:
        points = [replace(p, method="pipeline") for p in points]
    elif args.validate:
        points += validation_points()
    if not args.no_references:
        points += reference_points()
    # The same configuration may appear in two grids: measure it once.
    unique: dict[tuple[str, bool, str, bool, str], Point] = {}
    for point in points:
        thinning = json.dumps(point.thinning.to_dict(), sort_keys=True) if point.thinning is not None else ""
        unique.setdefault((point.config.key(), point.quantized, point.engine, point.derived, thinning), point)
    return list(unique.values())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from yolotut import hardware

    points = select_points(args)
    model_dir = args.models_dir
    model_dir.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = []
    jobs = [(spec, point) for spec in args.specs for point in points]
    if args.author:
        from yolotut.assets import AssetUnavailableError, AssetVerificationError, fetch

        try:
            fetch(AUTHOR_MODEL.asset, progress=False)
            jobs += [(spec, AUTHOR_MODEL) for spec in args.specs if (spec.size, spec.activation, spec.imgsz) == ("n", "hardswish", 416)]
        except (AssetUnavailableError, AssetVerificationError) as exc:
            print(f"warning: --author: the blog author's model is not available ({exc}); measuring without it", file=sys.stderr)
    for spec, point in tqdm(jobs, desc="models (cached by config hash)"):
        path, info = ensure_model(spec, point, model_dir, args.seed)
        entries.append(Entry(spec, point, path, info))
    if args.export_only:
        print(f"{len(entries)} models ready in {model_dir}")
        return 0
    versions = hardware.package_versions()
    meta = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/sparsity_search.py " + shlex.join(sys.argv[1:] if argv is None else list(argv)),
        "repeats": args.repeats,
        "warmup": args.warmup,
        "iterations": args.iterations,
        "cores": args.cores,
        "imgsz": args.imgsz,
        "batch_size": 1,
        "deepsparse": versions.get("deepsparse"),
        "cpu": hardware.cpu_fingerprint(),
        "versions": versions,
    }
    quiet = QuietPolicy(args.quiet_threshold, args.max_wait, args.max_tries)
    meta["quiet_policy"] = asdict(quiet)
    # One model size at a time: fewer compiled engines held in memory at once.
    realtime_used = []
    for spec in args.specs:
        group = [e for e in entries if e.spec == spec]
        realtime_used.append(measure(group, args.repeats, args.warmup, args.iterations, args.cores, quiet, not args.no_realtime))
    meta["realtime_scheduling"] = all(realtime_used)
    rows = [summary_row(e) for e in entries]
    print_table(rows)
    paths = write_outputs(args.out_dir, entries, meta)
    disturbed = sum(load > quiet.threshold for e in entries for load in e.foreign_load)
    print(f"\n{disturbed} of {sum(len(e.foreign_load) for e in entries)} measurements ran while other processes (or the hypervisor) used > {quiet.threshold} cores")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
