"""The report's sections for the tutorial's speed-ups and the accuracy budget (benchmarks/*.py results files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yolotut.reproduce.report import (
    accuracy_budget_rows,
    accuracy_budget_table,
    markdown_table,
    speedup_rows,
    speedup_table,
)
from yolotut.reproduce.results import write_results


def _speedups(folder: Path, thinned_ratio: float, fps: float, disturbed: int = 0) -> None:
    write_results(folder, "tutorial_speedups", {
        "rounds": 7,
        "disturbed_measurements": disturbed,
        "measurements": 84,
        "ratios": {
            "s_thinned_vs_dense_int8": {"median": thinned_ratio, "min": thinned_ratio - 0.1, "max": thinned_ratio + 0.2, "target": 1.5},
            "s_thinned_vs_dense_pytorch": {"median": 6.64, "min": 5.79, "max": 8.0, "target": 4.0},
        },
        "video": {"ours n-hs thinned+int8 (deepsparse)": {"fps_median": fps, "fps_all": [fps - 10, fps, fps + 5], "stage_ms": {}}},
        "video_fps_target": 180,
    })


def test_speedups_of_every_run_are_listed_against_their_target(tmp_path: Path) -> None:
    _speedups(tmp_path, 1.53, 371.4)
    _speedups(tmp_path / "later", 1.43, 170.0, disturbed=2)
    rows = speedup_rows(tmp_path)
    assert len(rows) == 6
    met = {(r["source"], r["name"]): r["met"] for r in rows}
    assert met[("tutorial_speedups.json", "s_thinned_vs_dense_int8")] is True
    assert met[("later/tutorial_speedups.json", "s_thinned_vs_dense_int8")] is False
    assert met[("later/tutorial_speedups.json", "end-to-end video FPS: ours n-hs thinned+int8 (deepsparse)")] is False
    table = markdown_table(speedup_table(rows))
    assert "1.43x (1.33-1.63)" in table and ">= 1.5x" in table and "371.4 FPS (361.4-376.4)" in table
    quiet = {(r["source"], r["name"]): r["quiet"] for r in rows}
    assert quiet[("later/tutorial_speedups.json", "s_thinned_vs_dense_int8")] == "2 of 84 disturbed"
    assert quiet[("tutorial_speedups.json", "s_thinned_vs_dense_int8")] == "0 of 84 disturbed"
    assert "| 7 | 2 of 84 disturbed | later/tutorial_speedups.json |" in table


def test_accuracy_budget_rows_by_epochs(tmp_path: Path) -> None:
    result = {"map50": 0.72, "map50_95": 0.402, "val_images": 500, "engine": "pytorch", "train_images": "all", "train_seconds": 972.0, "device": "cpu"}
    write_results(tmp_path / "a", "accuracy_budget", {"epochs": 8, "results": {"dense": {**result, "epochs": 8}}})
    # Older files carry the epochs only at the top level.
    write_results(tmp_path / "b", "accuracy_budget", {"epochs": 3, "results": {"thinned-int8": {**result, "map50": 0.036, "engine": "deepsparse"}}})
    rows = accuracy_budget_rows(tmp_path)
    assert [(r["variant"], r["epochs"]) for r in rows] == [("thinned-int8", 3), ("dense", 8)]
    table = markdown_table(accuracy_budget_table(rows))
    assert "| dense | 8 | all | 0.720 | 0.402 | 500 | pytorch | 16.2 | cpu | a/accuracy_budget.json |" in table


def test_a_run_that_moved_between_machines_shows_its_minutes_on_each(tmp_path: Path) -> None:
    result = {"map50": 0.768, "map50_95": 0.428, "val_images": 500, "engine": "deepsparse", "epochs": 50, "train_images": "all",
              "train_seconds": 4442.2, "train_seconds_by_device": {"cpu": 3983.7, "cuda": 458.5}, "device": "cpu, cuda"}
    write_results(tmp_path, "accuracy_budget", {"epochs": 50, "results": {"thinned-int8": result}})
    table = markdown_table(accuracy_budget_table(accuracy_budget_rows(tmp_path)))
    assert "| deepsparse | 66.4 (cpu) + 7.6 (cuda) | cpu, cuda |" in table


def test_no_benchmark_files_no_rows(tmp_path: Path) -> None:
    assert speedup_rows(tmp_path) == [] and accuracy_budget_rows(tmp_path) == []


def test_a_corrupt_or_foreign_benchmark_file_names_itself(tmp_path: Path) -> None:
    (tmp_path / "tutorial_speedups.json").write_text('{"ratios": {')
    with pytest.raises(ValueError, match=r"tutorial_speedups.json is not valid JSON.*re-run what wrote it"):
        speedup_rows(tmp_path)
    (tmp_path / "tutorial_speedups.json").write_text('{"ratios": {}}')
    with pytest.raises(ValueError, match=r"tutorial_speedups.json is not a yolotut results file"):
        speedup_rows(tmp_path)


def test_cli_report_rebuilds_the_report_with_the_benchmark_sections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from yolotut.cli import main

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "video.json").write_text(json.dumps([
        {"fps": 20.0, "engine": "pytorch", "model": "yolov5n.pt", "cores": 2, "imgsz": 416, "batch_size": 1},
        {"fps": 30.0, "engine": "deepsparse", "model": "yolov5n.onnx", "cores": 2, "imgsz": 416, "batch_size": 1},
    ]))
    (tmp_path / "benchmarks").mkdir()
    _speedups(tmp_path / "benchmarks", 1.53, 371.4)
    assert main(["report", "--output", str(tmp_path), "--json"]) == 0
    written = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    report = Path(written["markdown"]).read_text()
    assert "## The tutorial's speed-ups (benchmarks/tutorial_speedups.py)" in report and "1.53x (1.43-1.73)" in report
    assert "Accuracy at equal training budget" not in report  # no accuracy_budget.json: no section
    assert main(["report", "--output", str(tmp_path / "missing")]) == 2
    assert "run the notebooks first" in capsys.readouterr().err
