"""The report's sections for the performance goals and the accuracy budget (benchmarks/*.py outputs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yolotut.reproduce.report import (
    accuracy_budget_rows,
    accuracy_budget_table,
    goal_rows,
    goal_table,
    markdown_table,
)


def _goals(path: Path, thinned_ratio: float, fps: float, **extra: int) -> None:
    path.write_text(json.dumps({
        **extra,
        "rounds": 7,
        "ratios": {
            "goal1_s_thinned_vs_dense_int8": {"median": thinned_ratio, "min": thinned_ratio - 0.1, "max": thinned_ratio + 0.2, "goal": 1.5},
            "goal4_s_thinned_vs_dense_pytorch": {"median": 6.64, "min": 5.79, "max": 8.0, "goal": 4.0},
        },
        "video": {"ours n-hs thinned+int8 (deepsparse)": {"fps_median": fps, "fps_all": [fps - 10, fps, fps + 5], "stage_ms": {}}},
        "goal3_fps_goal": 180,
    }))


def test_goals_of_every_run_are_listed_with_their_verdict(tmp_path: Path) -> None:
    _goals(tmp_path / "issue6_goals.json", 1.53, 371.4)
    (tmp_path / "later").mkdir()
    _goals(tmp_path / "later" / "issue6_goals.json", 1.43, 170.0, disturbed_measurements=2, measurements=84)
    rows = goal_rows(tmp_path)
    assert len(rows) == 6
    verdicts = {(r["source"], r["goal"]): r["met"] for r in rows}
    assert verdicts[("issue6_goals.json", "goal1_s_thinned_vs_dense_int8")] is True
    assert verdicts[("later/issue6_goals.json", "goal1_s_thinned_vs_dense_int8")] is False
    assert verdicts[("later/issue6_goals.json", "goal3 end-to-end video FPS: ours n-hs thinned+int8 (deepsparse)")] is False
    table = markdown_table(goal_table(rows))
    assert "1.43x (1.33-1.63)" in table and ">= 1.5x" in table and "371.4 FPS (361.4-376.4)" in table
    quiet = {(r["source"], r["goal"]): r["quiet"] for r in rows}
    assert quiet[("later/issue6_goals.json", "goal1_s_thinned_vs_dense_int8")] == "2 of 84 disturbed"
    assert quiet[("issue6_goals.json", "goal1_s_thinned_vs_dense_int8")] == "not checked"  # an older file
    assert "| 7 | 2 of 84 disturbed | later/issue6_goals.json |" in table


def test_accuracy_budget_rows_by_epochs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    result = {"map50": 0.72, "map50_95": 0.402, "val_images": 500, "engine": "pytorch", "train_images": "all", "train_seconds": 972.0, "device": "cpu"}
    (tmp_path / "a" / "accuracy_budget.json").write_text(json.dumps({"epochs": 8, "results": {"dense": {**result, "epochs": 8}}}))
    # Older files carry the epochs only at the top level.
    (tmp_path / "b" / "accuracy_budget.json").write_text(json.dumps({"epochs": 3, "results": {"thinned-int8": {**result, "map50": 0.036, "engine": "deepsparse"}}}))
    rows = accuracy_budget_rows(tmp_path)
    assert [(r["variant"], r["epochs"]) for r in rows] == [("thinned-int8", 3), ("dense", 8)]
    table = markdown_table(accuracy_budget_table(rows))
    assert "| dense | 8 | all | 0.720 | 0.402 | 500 | torch | 16.2 | cpu | a/accuracy_budget.json |" in table


def test_a_run_that_moved_between_machines_shows_its_minutes_on_each(tmp_path: Path) -> None:
    result = {"map50": 0.768, "map50_95": 0.428, "val_images": 500, "engine": "deepsparse", "epochs": 50, "train_images": "all",
              "train_seconds": 4442.2, "train_seconds_by_device": {"cpu": 3983.7, "cuda": 458.5}, "device": "cpu, cuda"}
    (tmp_path / "accuracy_budget.json").write_text(json.dumps({"epochs": 50, "results": {"thinned-int8": result}}))
    table = markdown_table(accuracy_budget_table(accuracy_budget_rows(tmp_path)))
    assert "| deepsparse | 66.4 (cpu) + 7.6 (cuda) | cpu, cuda |" in table


def test_no_benchmark_files_no_rows(tmp_path: Path) -> None:
    assert goal_rows(tmp_path) == [] and accuracy_budget_rows(tmp_path) == []


def test_a_corrupt_benchmark_file_names_itself(tmp_path: Path) -> None:
    (tmp_path / "issue6_goals.json").write_text('{"ratios": {')
    with pytest.raises(ValueError, match=r"issue6_goals.json is not valid JSON.*re-run the benchmark"):
        goal_rows(tmp_path)


def test_cli_report_rebuilds_the_report_with_the_benchmark_sections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from yolotut.cli import main

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "video.json").write_text(json.dumps([
        {"fps": 20.0, "engine": "pytorch", "model": "yolov5n.pt", "cores": 2, "imgsz": 416, "batch_size": 1},
        {"fps": 30.0, "engine": "deepsparse", "model": "yolov5n.onnx", "cores": 2, "imgsz": 416, "batch_size": 1},
    ]))
    (tmp_path / "benchmarks").mkdir()
    _goals(tmp_path / "benchmarks" / "issue6_goals.json", 1.53, 371.4)
    assert main(["report", "--output", str(tmp_path), "--json"]) == 0
    written = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    report = Path(written["markdown"]).read_text()
    assert "## Performance goals (benchmarks/issue6_goals.py)" in report and "1.53x (1.43-1.73)" in report
    assert "Accuracy at equal training budget" not in report  # no accuracy_budget.json: no section
    assert main(["report", "--output", str(tmp_path / "missing")]) == 2
    assert "run the notebooks first" in capsys.readouterr().err
