"""The engine-comparison widget, driven headlessly (no browser): click Run, check the chart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from yolotut.reproduce import results as store
from yolotut.ui.widgets import (
    AUTHOR_MODELS,
    DOM_CLASSES,
    EngineComparison,
    ModelChoice,
    annotated_frames,
    choices_from_manifest,
    frames_html,
)


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    import torch

    from yolotut.models import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model("n", num_classes=1, activation="silu", names=["pistol"])
    return save_checkpoint(model, tmp_path / "tiny.pt")


def _bars(figure: go.Figure) -> dict[str, dict[str, float]]:
    return {trace.name: dict(zip(trace.x, trace.y)) for trace in figure.data}


def test_click_run_benchmarks_each_engine_and_draws_bars(mirror: Path, tiny_checkpoint: Path) -> None:
    models = {
        "author": ModelChoice("blog-yolov5n-pq-hardswish", None, "yolov5n", "pruned-quantized-hardswish"),
        "tiny": ModelChoice(None, str(tiny_checkpoint), "yolov5n", "dense"),
    }
    widget = EngineComparison(models, warmup=1, iterations=2, live_figure=False)
    assert widget.figure.data == ()

    widget.variant.value = "author"
    widget.engines.value = ("pytorch", "onnxruntime")
    widget.button.click()  # what a click in JupyterLab does

    # torch has no checkpoint for the ONNX-only author model: skipped with the reason, no bar
    assert [r.engine for _, r in widget.results] == ["pytorch", "onnxruntime"]
    torch_result = widget.results[0][1]
    assert torch_result.skipped and "no PyTorch checkpoint" in torch_result.skipped
    bars = _bars(widget.figure)
    assert list(bars) == [f"run 1: author · b1 · {widget.cores.value}c · 416px"]
    (series,) = bars.values()
    assert list(series) == ["onnxruntime"] and series["onnxruntime"] > 0
    assert widget.progress.value == widget.progress.max == 2
    assert "skipped: pytorch" in widget.status.value
    assert not widget.button.disabled

    # a second run (another model, torch at a chosen image size) adds a series, keeps the first
    widget.variant.value = "tiny"
    widget.engines.value = ("pytorch", "deepsparse")
    widget.imgsz.value = 320
    widget.cores.value = 1
    new = widget.run()
    assert new[0].engine == "pytorch" and not new[0].skipped and new[0].imgsz == 320 and new[0].cores == 1
    assert new[1].skipped == "no ONNX file for this model"
    bars = _bars(widget.figure)
    first, second = bars
    assert first.startswith("run 1: author") and second == "run 2: tiny · b1 · 1c · 320px"

    rows = widget.table_rows()
    assert [(r["run"], r["model"], r["engine"]) for r in rows] == [
        (1, "author", "pytorch"), (1, "author", "onnxruntime"), (2, "tiny", "pytorch"), (2, "tiny", "deepsparse")]
    assert rows[1]["items/sec"] > 0 and rows[0]["items/sec"] is None and rows[0]["skipped"]
    html = widget.table_html()
    assert "<table" in html and "onnxruntime" in html and "None" not in html


def test_no_engine_chosen_says_so(tiny_checkpoint: Path) -> None:
    widget = EngineComparison({"tiny": ModelChoice(None, str(tiny_checkpoint))}, live_figure=False)
    widget.engines.value = ()
    assert widget.run() == []
    assert "at least one engine" in widget.status.value


def test_no_models_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="run notebooks 01-07 first"):
        EngineComparison({})


def test_choices_from_manifest_adds_author_models(tmp_path: Path) -> None:
    onnx = tmp_path / "pq.onnx"
    onnx.write_bytes(b"0")
    ckpt = tmp_path / "dense.pt"
    ckpt.write_bytes(b"0")
    manifest = tmp_path / "manifest.json"
    store.record_model("pruned-quantized", onnx, 0.7, "int8", model="yolov5s", manifest_path=manifest)
    store.record_model("dense", onnx, 0.0, "fp32", model="yolov5s", checkpoint=str(ckpt), manifest_path=manifest)
    choices = choices_from_manifest(manifest)
    assert choices["yolov5s pruned-quantized (int8)"] == ModelChoice(str(onnx.resolve()), None, "yolov5s", "pruned-quantized")
    assert choices["yolov5s dense (fp32)"].checkpoint == str(ckpt)
    assert set(AUTHOR_MODELS) <= set(choices)
    assert set(choices_from_manifest(manifest, include_author_models=False)) == {
        "yolov5s pruned-quantized (int8)", "yolov5s dense (fp32)"}


def test_widget_layout_holds_every_control(tiny_checkpoint: Path) -> None:
    widget = EngineComparison({"tiny": ModelChoice(None, str(tiny_checkpoint))}, live_figure=False)
    tree, stack = [], [widget.widget]
    while stack:
        node = stack.pop()
        tree.append(node)
        stack.extend(getattr(node, "children", ()))
    for control in (widget.variant, widget.engines, widget.cores, widget.batch_size, widget.imgsz, widget.button,
                    widget.clear_button, widget.progress, widget.table):
        assert control in tree
    # each part carries its CSS class, once: the browser test finds them by these
    classes = [c for node in tree for c in getattr(node, "_dom_classes", ()) if c.startswith("yolotut-")]
    assert sorted(classes) == sorted(DOM_CLASSES.values())


def test_annotated_frames_from_the_demo_video(mirror: Path) -> None:
    from yolotut import assets
    from yolotut.inference.engines import create_engine

    engine = create_engine("blog-yolov5n-pq-hardswish", "onnxruntime", batch_size=1)
    frames = annotated_frames(engine, assets.fetch("demo-video"), count=2)
    assert frames[0][0] == 0 and len(frames) == 2
    _, image, n = frames[-1]
    assert image.dtype == np.uint8 and image.ndim == 3 and n >= 0
    html = frames_html(frames, width=100, title="t")
    assert html.count("<img src=\"data:image/jpeg;base64,") == 2 and "frame 0" in html


def _fake_benchmarks(widget: EngineComparison, speeds: list[float]) -> None:
    """Replace the measurement with made-up results, one speed per call, in order."""
    from yolotut.inference.benchmark import BenchmarkResult

    remaining = iter(speeds)

    def measure(choice: ModelChoice, engine: str) -> BenchmarkResult:
        speed = next(remaining)
        return BenchmarkResult(model=str(choice.onnx), engine=engine, batch_size=int(widget.batch_size.value),
                               cores=int(widget.cores.value), imgsz=416, warmup=1, iterations=2,
                               items_per_sec=speed, latency_ms_mean=1000 / speed, latency_ms_p90=1000 / speed)

    widget._benchmark = measure  # type: ignore[method-assign]


def _drawn_heights(figure: go.Figure) -> list[tuple[str, str, float, float]]:
    """(trace, x, base, top) of every bar as plotly.js draws it: bars of one trace at the same x
    are stacked on each other, whatever the barmode."""
    drawn = []
    for trace in figure.data:
        tops: dict[str, float] = {}
        for x, y in zip(trace.x, trace.y):
            base = tops.get(x, 0.0)
            tops[x] = base + y
            drawn.append((trace.name, x, base, tops[x]))
    return drawn


@pytest.mark.parametrize("live_figure", [False, True])
def test_a_second_run_with_the_same_settings_is_drawn_beside_the_first_not_on_top(live_figure: bool) -> None:
    widget = EngineComparison({"model": ModelChoice("m.onnx", None, "yolov5n", "dense")}, live_figure=live_figure)
    _fake_benchmarks(widget, [25.6, 76.9, 26.1, 75.0, 24.0])
    widget.engines.value = ("onnxruntime", "deepsparse")
    widget.button.click()
    widget.button.click()  # the same settings again: what a second click after "Run All" does
    widget.engines.value = ("onnxruntime",)
    widget.button.click()

    drawn = _drawn_heights(widget.figure)
    assert all(base == 0.0 for _, _, base, _ in drawn), f"bars stacked on other bars: {drawn}"
    rows = widget.table_rows()
    assert sorted(top for _, _, _, top in drawn) == sorted(r["items/sec"] for r in rows)
    assert [(r["run"], r["engine"], r["items/sec"]) for r in rows] == [
        (1, "onnxruntime", 25.6), (1, "deepsparse", 76.9), (2, "onnxruntime", 26.1), (2, "deepsparse", 75.0),
        (3, "onnxruntime", 24.0)]
    names = [trace.name for trace in widget.figure.data]
    assert len(names) == 3 and len(set(names)) == 3 and all(name.startswith(f"run {i}") for i, name in
                                                            enumerate(names, start=1))
    assert [list(trace.text) for trace in widget.figure.data] == [["25.6", "76.9"], ["26.1", "75.0"], ["24.0"]]
    assert widget.figure.layout.barmode == "group"


def test_clear_forgets_the_runs() -> None:
    widget = EngineComparison({"model": ModelChoice("m.onnx")}, live_figure=True)
    _fake_benchmarks(widget, [10.0, 20.0, 30.0])
    widget.engines.value = ("onnxruntime", "deepsparse")
    widget.button.click()
    widget.clear_button.click()
    assert widget.figure.data == () and widget.table_rows() == [] and widget.table.value == ""
    widget.engines.value = ("deepsparse",)
    widget.button.click()
    assert [(r["run"], r["engine"], r["items/sec"]) for r in widget.table_rows()] == [(1, "deepsparse", 30.0)]
    assert [trace.name.split(":")[0] for trace in widget.figure.data] == ["run 1"]
