"""Interactive engine comparison for notebook 08 (ipywidgets + plotly).

:class:`EngineComparison` shows controls for the model variant (the models the
notebooks produced, from the manifest, plus the blog author's two ONNX models), the
engines, cores, batch size and image size, and a Run button. Each run benchmarks
every chosen engine (:func:`yolotut.inference.benchmark.benchmark_engine`) and becomes one
numbered series of the chart ("run 3: ..."), drawn beside the earlier runs (grouped bars,
one per engine, never stacked on them), and rows of the table with the same run number;
Clear forgets them. The callbacks are plain methods (:meth:`EngineComparison.run`), so
tests drive the widget headlessly, and ``widget.button.click()`` does what a click in
JupyterLab does. Every part carries a CSS class (``DOM_CLASSES``) for browser tests.

The chart is a live ``plotly.graph_objects.FigureWidget`` when ``anywidget`` is
installed (plotly >= 6 needs it); otherwise a ``go.Figure`` redrawn in an
``ipywidgets.Output`` after each run -- same bars, one redraw per run.
"""

from __future__ import annotations

import base64
import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from yolotut import hardware
from yolotut.inference.benchmark import BenchmarkResult, benchmark_engine, skipped_result
from yolotut.inference.engines import ENGINES, Engine, EngineUnavailableError, create_engine, read_onnx_info

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
IMAGE_SIZES = (320, 416, 512, 640)
AUTHOR_MODELS = {
    "blog author: yolov5n pruned-quantized hardswish (int8)": ("blog-yolov5n-pq-hardswish", "pruned-quantized-hardswish"),
    "blog author: yolov5n pruned-quantized silu (int8)": ("blog-yolov5n-pq-silu", "pruned-quantized"),
}

# CSS classes of the widget's parts in the page (stable selectors for browser tests).
DOM_CLASSES = {
    "widget": "yolotut-engine-comparison", "model": "yolotut-model", "engines": "yolotut-engines",
    "cores": "yolotut-cores", "batch_size": "yolotut-batch-size", "imgsz": "yolotut-imgsz",
    "run": "yolotut-run", "clear": "yolotut-clear", "progress": "yolotut-progress", "status": "yolotut-status",
    "chart": "yolotut-chart", "table": "yolotut-table",
}
CHART_HEIGHT = 440  # pixels, plus one legend line per run
LEGEND_LINE_HEIGHT = 22
# Bar patterns tell runs apart; colour tells engines apart (as in the report's charts).
RUN_PATTERNS = ("", "/", "x", ".", "\\", "+", "-", "|")


@dataclass(frozen=True)
class ModelChoice:
    """One selectable model: its ONNX file (ONNX Runtime / DeepSparse) and, when it has
    one, a plain PyTorch checkpoint (QAT/INT8 models exist as ONNX only)."""

    onnx: str | None
    checkpoint: str | None = None
    arch: str | None = None  # yolov5s, yolov5n ... (labels the results for the claims checker)
    variant: str | None = None  # dense, pruned-quantized ...


def choices_from_manifest(manifest_path: str | Path, include_author_models: bool = True) -> dict[str, ModelChoice]:
    """Selectable models: the manifest's (ONNX file still on disk) and the blog author's two."""
    from yolotut.reproduce.results import manifest_models

    out: dict[str, ModelChoice] = {}
    for m in manifest_models(manifest_path):
        label = " ".join(str(p) for p in (m.get("model"), m.get("variant")) if p) + f" ({m.get('precision', '?')})"
        checkpoint = m.get("checkpoint")
        out[label] = ModelChoice(
            m["onnx"], checkpoint if checkpoint and Path(checkpoint).exists() else None, m.get("model"), m.get("variant")
        )
    if include_author_models:
        for label, (asset, variant) in AUTHOR_MODELS.items():
            out[label] = ModelChoice(asset, None, "yolov5n", variant)
    return out


@dataclass
class ComparisonRun:
    """One press of Run: its number, the model's label and one result per chosen engine."""

    number: int
    label: str
    results: list[BenchmarkResult] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The chart's series name: run number, model and the settings every engine shared."""
        first = self.results[0] if self.results else None
        parts = [f"run {self.number}: {self.label}"]
        if first is not None:
            parts += [f"b{first.batch_size}", f"{first.cores}c"]
            sizes = {r.imgsz for r in self.results if not r.skipped}
            if len(sizes) == 1 and None not in sizes:
                parts.append(f"{sizes.pop()}px")
        return " · ".join(parts)


class EngineComparison:
    """Benchmark a model on several engines with chosen cores / batch / image size."""

    def __init__(
        self,
        models: Mapping[str, ModelChoice],
        warmup: int = 10,
        iterations: int = 30,
        default_engines: Sequence[str] = ("onnxruntime", "deepsparse"),
        live_figure: bool | None = None,
    ) -> None:
        if not models:
            raise ValueError(
                "no models to compare: run notebooks 01-07 first (they fill outputs/manifest.json), "
                "or pass models={label: ModelChoice(onnx=...)}"
            )
        self.models = dict(models)
        self.warmup = warmup
        self.iterations = iterations
        self.runs: list[ComparisonRun] = []
        available = hardware.cpu_fingerprint()["cores_available"]

        style = {"description_width": "90px"}
        self.variant = widgets.Dropdown(options=list(self.models), description="model", style=style,
                                        layout=widgets.Layout(width="520px"))
        self.engines = widgets.SelectMultiple(options=list(ENGINES), value=tuple(e for e in default_engines if e in ENGINES),
                                              description="engines", rows=len(ENGINES), style=style)
        self.cores = widgets.IntSlider(value=available, min=1, max=available, description="cores", style=style)
        self.batch_size = widgets.Dropdown(options=list(BATCH_SIZES), value=1, description="batch size", style=style)
        self.imgsz = widgets.Dropdown(options=list(IMAGE_SIZES), value=416, description="image size", style=style)
        self.button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.clear_button = widgets.Button(description="Clear", icon="trash", tooltip="forget the runs so far")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="progress", style=style)
        self.status = widgets.HTML("choose a model and engines, then Run")
        self.table = widgets.HTML()
        self.button.on_click(self._on_click)
        self.clear_button.on_click(self._on_clear)

        if live_figure is None:
            live_figure = importlib.util.find_spec("anywidget") is not None
        # The legend (one line per run, long names) goes under the bars, so that it takes
        # height as runs accumulate (see _redraw) instead of the bars' width.
        layout = dict(
            title="Engine-only throughput (items/sec, higher is better)", barmode="group",
            yaxis_title="items / sec", template="plotly_white", height=CHART_HEIGHT, width=760,
            showlegend=True,  # names the run even when there is one
            legend={"title": {"text": "run: model · batch · cores · size", "side": "top"}, "orientation": "h",
                    "yanchor": "top", "y": -0.12, "xanchor": "left", "x": 0},
        )
        if live_figure:
            self.figure: go.Figure = go.FigureWidget(layout=layout)
            self._plot: widgets.Widget = self.figure
        else:
            self.figure = go.Figure(layout=layout)
            self._plot = widgets.Output()
        parts = {"model": self.variant, "engines": self.engines, "cores": self.cores, "batch_size": self.batch_size,
                 "imgsz": self.imgsz, "run": self.button, "clear": self.clear_button, "progress": self.progress,
                 "status": self.status, "chart": self._plot, "table": self.table}
        for part, control in parts.items():
            control.add_class(DOM_CLASSES[part])

    @property
    def results(self) -> list[tuple[str, BenchmarkResult]]:
        """Every result so far, oldest first, as ``(model label, result)``."""
        return [(run.label, r) for run in self.runs for r in run.results]

    # -- layout --------------------------------------------------------------------------

    @property
    def widget(self) -> widgets.Widget:
        controls = widgets.HBox([
            widgets.VBox([self.variant, self.engines]),
            widgets.VBox([self.cores, self.batch_size, self.imgsz, widgets.HBox([self.button, self.clear_button])]),
        ])
        box = widgets.VBox([controls, self.progress, self.status, self._plot, self.table])
        box.add_class(DOM_CLASSES["widget"])
        return box

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
        self._redraw()

    # -- callbacks -----------------------------------------------------------------------

    def _on_click(self, _button: widgets.Button) -> None:
        self.run()

    def _on_clear(self, _button: widgets.Button) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every run: empty chart and table; the next run is run 1 again."""
        self.runs = []
        self.progress.value = 0
        self.status.value = "cleared; choose a model and engines, then Run"
        self._redraw()

    def run(self) -> list[BenchmarkResult]:
        """Benchmark the chosen model on each chosen engine; update chart and table."""
        label = self.variant.value
        choice = self.models[label]
        engines = list(self.engines.value)
        if not engines:
            self.status.value = "<b>choose at least one engine</b>"
            return []
        self.button.disabled = True
        self.progress.max, self.progress.value = len(engines), 0
        run = ComparisonRun(len(self.runs) + 1, label)
        self.runs.append(run)
        new = run.results
        try:
            for engine in engines:
                self.status.value = (
                    f"running <b>{engine}</b> on {label}: batch {self.batch_size.value}, {self.cores.value} cores "
                    f"({self.warmup} warm-up + {self.iterations} timed runs)"
                )
                result = self._benchmark(choice, engine)
                new.append(result)
                self.progress.value += 1
        finally:
            self.button.disabled = False
        skipped = [f"{r.engine}: {r.skipped}" for r in new if r.skipped]
        self.status.value = "done" + ("; skipped: " + "; ".join(skipped) if skipped else "")
        self._redraw()
        return list(new)

    def _benchmark(self, choice: ModelChoice, engine: str) -> BenchmarkResult:
        batch, cores = int(self.batch_size.value), int(self.cores.value)
        if engine == "pytorch":
            model, imgsz = choice.checkpoint, int(self.imgsz.value)
            if model is None:
                return skipped_result(choice.onnx or "?", engine, batch, cores,
                                      "no PyTorch checkpoint for this model (quantized models exist as ONNX only)")
        else:
            model = choice.onnx
            if model is None:
                return skipped_result(choice.checkpoint or "?", engine, batch, cores, "no ONNX file for this model")
            imgsz = self._onnx_imgsz(model)
        try:
            eng = create_engine(model, engine, batch_size=batch, cores=cores, imgsz=imgsz)
        except (EngineUnavailableError, ValueError) as exc:
            return skipped_result(model, engine, batch, cores, str(exc))
        return benchmark_engine(eng, warmup=self.warmup, iterations=self.iterations, progress=False)

    def _onnx_imgsz(self, model: str) -> int | None:
        # An ONNX file with a fixed input size runs at that size whatever the dropdown says.
        from yolotut.inference.engines import resolve_model_path

        static = read_onnx_info(resolve_model_path(model)).static_imgsz
        return None if static else int(self.imgsz.value)

    # -- views ---------------------------------------------------------------------------

    def _bars(self) -> list[go.Bar]:
        """One trace per run (its engines are distinct, so no two bars of a trace share an x:
        plotly.js would stack those); ``barmode="group"`` puts the runs side by side."""
        from yolotut.ui.plots import ENGINE_COLORS

        bars = []
        for run in self.runs:
            shown = [r for r in run.results if not r.skipped]
            if not shown:
                continue
            bars.append(go.Bar(
                name=run.name, x=[r.engine for r in shown], y=[r.items_per_sec for r in shown],
                marker={"color": [ENGINE_COLORS.get(r.engine) for r in shown],
                        "pattern": {"shape": RUN_PATTERNS[(run.number - 1) % len(RUN_PATTERNS)]}},
                text=[f"{r.items_per_sec:.1f}" for r in shown], textposition="outside",
                customdata=[[r.latency_ms_mean, r.latency_ms_p90, r.imgsz or "-"] for r in shown],
                hovertemplate=(f"run {run.number}, " + "%{x}: %{y:.1f} items/s at %{customdata[2]}px<br>"
                               "mean %{customdata[0]:.1f} ms, p90 %{customdata[1]:.1f} ms<extra></extra>"),
            ))
        return bars

    def _redraw(self) -> None:
        bars = self._bars()
        height = CHART_HEIGHT + LEGEND_LINE_HEIGHT * len(bars)
        if isinstance(self.figure, go.FigureWidget):
            with self.figure.batch_update():
                self.figure.data = ()
                for bar in bars:
                    self.figure.add_trace(bar)
                self.figure.layout.height = height
        else:
            self.figure.data = ()
            for bar in bars:
                self.figure.add_trace(bar)
            self.figure.layout.height = height
            self._plot.clear_output(wait=True)
            with self._plot:
                from IPython.display import display

                display(self.figure)
        self.table.value = self.table_html()

    def table_rows(self) -> list[dict[str, Any]]:
        """One row per engine of every run so far (skipped ones with their reason); the
        ``items/sec`` column holds the bar heights, rounded to 2 decimals."""
        return [
            {
                "run": run.number, "model": run.label, "engine": r.engine, "batch": r.batch_size, "cores": r.cores,
                "imgsz": r.imgsz if r.imgsz is not None else "-",
                "items/sec": None if r.skipped else round(r.items_per_sec, 2),
                "mean ms": None if r.skipped else round(r.latency_ms_mean, 2),
                "p90 ms": None if r.skipped else round(r.latency_ms_p90, 2),
                "runs": "-" if r.skipped else f"{r.warmup}+{r.iterations}", "skipped": r.skipped or "",
            }
            for run in self.runs
            for r in run.results
        ]

    def table_html(self) -> str:
        import pandas as pd

        rows = self.table_rows()
        if not rows:
            return ""
        # object dtype: integer columns with a "-" stay integers instead of becoming floats
        return pd.DataFrame(rows, dtype=object).fillna("-").to_html(index=False, border=0, classes="yolotut-results")


# --- annotated frames -------------------------------------------------------------------------


def annotated_frames(
    engine: Engine, source: str | Path, count: int = 3, conf_thres: float = 0.25, iou_thres: float = 0.45
) -> list[tuple[int, np.ndarray, int]]:
    """``count`` evenly spaced frames of a video with the engine's detections drawn:
    ``(frame index, annotated BGR image, number of detections)``."""
    from yolotut.inference.video import annotate, open_video

    cap = open_video(source)
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or count
        wanted = np.linspace(0, max(total - 1, 0), num=count, dtype=int)
        frames = []
        for index in dict.fromkeys(int(i) for i in wanted):
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = cap.read()
            if not ok:
                continue
            det = engine.detect([frame], conf_thres=conf_thres, iou_thres=iou_thres)[0]
            frames.append((index, annotate(frame, det, engine.names), len(det)))
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"no frame could be read from {source}")
    return frames


def frames_html(frames: Sequence[tuple[int, np.ndarray, int]], width: int = 320, title: str = "") -> str:
    """The frames side by side as inline JPEGs (visible in saved notebooks, no widget state needed)."""
    cells = []
    for index, image, n in frames:
        ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            raise ValueError(f"could not encode frame {index} as JPEG")
        data = base64.b64encode(jpg.tobytes()).decode("ascii")
        cells.append(
            f'<figure style="margin:4px"><img src="data:image/jpeg;base64,{data}" width="{width}">'
            f"<figcaption>frame {index}: {n} detection{'s' if n != 1 else ''}</figcaption></figure>"
        )
    head = f"<b>{title}</b>" if title else ""
    return head + '<div style="display:flex;flex-wrap:wrap">' + "".join(cells) + "</div>"


def show_frames(
    engine: Engine, source: str | Path, count: int = 3, width: int = 320, title: str = "", conf_thres: float = 0.25
) -> list[int]:
    """Display ``count`` annotated frames; return the detection count of each."""
    from IPython.display import HTML, display

    frames = annotated_frames(engine, source, count, conf_thres=conf_thres)
    display(HTML(frames_html(frames, width, title)))
    return [n for _, _, n in frames]
