"""The engine-comparison widget, driven headlessly (no browser): click Run, check the chart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from yolotut.reproduce import results as store
from yolotut.ui.widgets import (
    AUTHOR_MODELS,
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
    assert list(bars) == [f"author · b1 · {widget.cores.value}c · 416px"]
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
    assert len(bars) == 2 and any(name.startswith("tiny · b1 · 1c · 320px") for name in bars)

    rows = widget.table_rows()
    assert [(r["model"], r["engine"]) for r in rows] == [
        ("author", "pytorch"), ("author", "onnxruntime"), ("tiny", "pytorch"), ("tiny", "deepsparse")]
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
                    widget.progress, widget.table):
        assert control in tree


def test_annotated_frames_from_the_demo_video(mirror: Path) -> None:
    from yolotut import assets
    from yolotut.inference.engines import create_engine

    engine = create_engine("blog-yolov5n-pq-hardswish", "onnxruntime", batch_size=1)
    frames = annotated_frames(engine, assets.fetch("demo-video"), count=2)
    assert [i for i, _, _ in frames][0] == 0 and len(frames) == 2
    index, image, n = frames[-1]
    assert image.dtype == np.uint8 and image.ndim == 3 and n >= 0
    html = frames_html(frames, width=100, title="t")
    assert html.count("<img src=\"data:image/jpeg;base64,") == 2 and "frame 0" in html
