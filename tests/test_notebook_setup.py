"""The notebooks' shared setup (yolotut.notebook) and the headless progress bars."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from yolotut import notebook, progress


def _ctx(tmp_path: Path, **overrides) -> notebook.Tutorial:
    return notebook.setup(
        "04_pruning", "quick", results_dir=tmp_path / "results", models_dir=tmp_path / "models",
        manifest_path=tmp_path / "manifest.json", **overrides,
    )


def test_setup_makes_the_folders_and_reads_the_profile(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, epochs=3)
    assert ctx.settings.epochs == 3 and ctx.settings.steps == 4
    for folder in (ctx.results_dir, ctx.models_dir, ctx.runs_dir, ctx.videos_dir):
        assert folder.is_dir()
    assert ctx.fast_engine in {"deepsparse", "onnxruntime"}
    assert "04_pruning" in ctx._repr_html_()
    assert logging.getLogger("sparseml").level == logging.WARNING
    with pytest.raises(ValueError, match="unknown settings"):
        _ctx(tmp_path, epoch=3)


def test_record_and_save_write_the_results_file(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ctx.record({"items_per_sec": 12.5, "engine": "deepsparse"}, id="04-a", arch="yolov5s", variant="pruned")
    with pytest.raises(ValueError, match="already recorded"):
        ctx.record({"items_per_sec": 1.0}, id="04-a", arch="yolov5s", variant="pruned")
    path = ctx.save(note="x")
    saved = json.loads(path.read_text())
    assert saved["measurements"][0]["id"] == "04-a" and saved["info"] == {"note": "x"}
    assert list(ctx.table()["items_per_sec"]) == [12.5]


def test_add_model_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="export the model first"):
        _ctx(tmp_path).add_model("pruned", tmp_path / "none.onnx", 0.5, "fp32")


def test_full_run_estimate() -> None:
    est = notebook.full_run_estimate(seconds=100.0, images_seen=50, epochs=10, train_images=360)
    assert est["seconds_per_image"] == 2.0
    assert est["estimated_hours"] == pytest.approx(2.0)
    with pytest.raises(ValueError):
        notebook.full_run_estimate(1.0, 0, 1, 1)


def test_headless_bars_print_only_their_final_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(progress.PROGRESS_ENV, progress.FINAL_LINE)
    out = io.StringIO()
    for _ in progress.tqdm(range(50), desc="frames", file=out, mininterval=0):
        pass
    text = out.getvalue()
    assert text.count("frames") == 1 and text.count("/50") == 1 and "50/50" in text


def test_live_bars_are_tqdm_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    from tqdm.auto import tqdm as auto_tqdm

    bar = progress.tqdm(range(2), disable=True)
    assert isinstance(bar, auto_tqdm)
