"""The benchmark scripts run as a user runs them (``python benchmarks/NAME.py ...``):
accuracy_budget.py trains on one machine and scores on another."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from yolotut.reproduce.results import read_results_file

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run_script(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), *args], capture_output=True, text=True, timeout=900)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_accuracy_budget_trains_only_then_scores_the_run_later(
    tmp_path: Path, mirror: Path
) -> None:
    """--train-only (a GPU machine without the valid split) leaves a finished run that a
    later --resume with the same arguments scores without training it again."""
    out = tmp_path / "runs"
    args = ["--epochs", "1", "--max-images", "8", "--batch-size", "4", "--imgsz", "128",
            "--workers", "0", "--variants", "dense", "--out", str(out)]
    assert "not scored" in _run_script("accuracy_budget", *args, "--train-only").stdout
    assert (out / "dense" / "final.pt").is_file()
    assert not (out / "accuracy_budget.json").exists()

    trained = (out / "dense" / "final.pt").stat().st_mtime_ns
    _run_script("accuracy_budget", *args, "--resume", "--val-images", "4")
    assert (out / "dense" / "final.pt").stat().st_mtime_ns == trained  # scored, not trained again
    result = read_results_file(out / "accuracy_budget.json")["results"]["dense"]
    assert result["val_images"] == 4 and result["engine"] == "pytorch" and 0.0 <= result["map50"] <= 1.0
    assert list(result["train_seconds_by_device"]) == ["cpu"] and result["train_seconds_by_device"]["cpu"] > 0

    # Other settings under the same --out are refused, not scored as if they matched.
    refused = _run_script("accuracy_budget", *args, "--resume", "--seed", "1", check=False)
    assert refused.returncode != 0 and "other settings (seed)" in refused.stderr


def test_accuracy_budget_refuses_to_score_the_start_when_training_only() -> None:
    refused = _run_script("accuracy_budget", "--train-only", "--before", check=False)
    assert refused.returncode == 2 and "--before" in refused.stderr
