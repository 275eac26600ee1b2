"""Helpers of the benchmark scripts: the quiet policy (benchmarks/sparsity_search.py:
measure again while other processes or the hypervisor took CPU, keep the last try),
issue6_goals.py's copy of the author's model with only its decoded output, and
accuracy_budget.py's training on one machine and scoring on another."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def search() -> ModuleType:
    return _load_script("sparsity_search")


class _ScriptedContention:
    """Stands in for ``CpuContention``: each meter reports the next (other, steal) pair."""

    readings: list[tuple[float, float]] = []

    def __init__(self) -> None:
        self.steal_cores: float | None = None

    def start(self) -> None:
        pass

    def stop(self) -> float:
        other, self.steal_cores = self.readings.pop(0)
        return other


@pytest.fixture()
def scripted(search: ModuleType, monkeypatch: pytest.MonkeyPatch) -> type[_ScriptedContention]:
    runs: list[dict] = []
    monkeypatch.setattr(search, "CpuContention", _ScriptedContention)
    monkeypatch.setattr(search, "benchmark_engine", lambda engine, **kwargs: runs.append(kwargs) or f"run {len(runs)}")
    monkeypatch.setattr(search.time, "sleep", lambda seconds: None)
    _ScriptedContention.runs = runs
    return _ScriptedContention


def test_a_disturbed_measurement_is_measured_again(search: ModuleType, scripted: type[_ScriptedContention]) -> None:
    policy = search.QuietPolicy(threshold=0.25, max_wait=0.0, max_tries=3)
    # Each try: one reading while waiting for quiet, one over the benchmark. The first
    # benchmark shared the CPU with another process, the second lost it to the hypervisor.
    scripted.readings = [(0.0, 0.0), (0.9, 0.0), (0.0, 0.0), (0.1, 0.2), (0.0, 0.0), (0.05, 0.0)]
    result, load, tries, _ = search.measure_quietly("engine", policy, use_realtime=False, seed=7)
    assert (result, tries, load) == ("run 3", 3, pytest.approx(0.05))
    assert scripted.runs == [{"progress": False, "seed": 7}] * 3
    assert scripted.readings == []


def test_a_machine_that_never_gets_quiet_keeps_the_last_try_and_says_how_busy(
    search: ModuleType, scripted: type[_ScriptedContention]
) -> None:
    policy = search.QuietPolicy(threshold=0.25, max_wait=0.0, max_tries=2)
    scripted.readings = [(1.0, 0.0), (1.2, 0.0), (1.0, 0.0), (0.7, 0.3)]
    result, load, tries, _ = search.measure_quietly("engine", policy, use_realtime=False)
    assert (result, tries, load) == ("run 2", 2, pytest.approx(1.0))
    assert load > policy.threshold


def test_a_quiet_first_measurement_is_kept(search: ModuleType, scripted: type[_ScriptedContention]) -> None:
    scripted.readings = [(0.0, 0.0), (0.1, 0.1)]
    result, load, tries, _ = search.measure_quietly("engine", search.QuietPolicy(), use_realtime=False)
    assert (result, tries, load) == ("run 1", 1, pytest.approx(0.2))


def test_the_authors_model_keeps_only_its_decoded_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    monkeypatch.syspath_prepend(str(BENCHMARKS))  # issue6_goals imports the search's helpers
    goals = _load_script("issue6_goals")
    # The author's layout in small: a raw head tensor (out_1) that the decoded output reads.
    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["out_1"]), helper.make_node("Sigmoid", ["out_1"], ["out_0"])],
        "two_outputs",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("out_0", TensorProto.FLOAT, [1, 4]), helper.make_tensor_value_info("out_1", TensorProto.FLOAT, [1, 4])],
    )
    source = tmp_path / "author.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(source))
    trimmed = goals.decoded_output_only(source, tmp_path / "copy" / "out0.onnx")

    model = onnx.load(str(trimmed))
    assert [o.name for o in model.graph.output] == ["out_0"]
    assert [n.op_type for n in model.graph.node] == ["Relu", "Sigmoid"]
    x = np.array([[-2.0, -0.5, 0.5, 2.0]], dtype=np.float32)

    def decoded(path: Path) -> np.ndarray:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["out_0"], {"input": x})[0]

    np.testing.assert_array_equal(decoded(trimmed), decoded(source))
    assert onnx.load(str(source)).graph.output[1].name == "out_1"  # the original is left alone

    without = tmp_path / "no_out0.onnx"
    onnx.save(helper.make_model(helper.make_graph(graph.node[:1], "g", graph.input, graph.output[1:]), opset_imports=[helper.make_opsetid("", 13)]), str(without))
    with pytest.raises(ValueError, match="no output 'out_0'"):
        goals.decoded_output_only(without, tmp_path / "x.onnx")


def test_accuracy_budget_trains_only_then_scores_the_run_later(
    tmp_path: Path, mirror: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--train-only (a GPU machine without the valid split) leaves a finished run that a
    later --resume with the same arguments scores without training it again."""
    budget = _load_script("accuracy_budget")
    out = tmp_path / "runs"
    args = ["accuracy_budget.py", "--epochs", "1", "--max-images", "8", "--batch-size", "4", "--imgsz", "128",
            "--workers", "0", "--variants", "dense", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", [*args, "--train-only"])
    budget.main()
    assert (out / "dense" / "final.pt").is_file()
    assert not (out / "accuracy_budget.json").exists()
    assert "not scored" in capsys.readouterr().out

    trained = (out / "dense" / "final.pt").stat().st_mtime_ns
    monkeypatch.setattr(sys, "argv", [*args, "--resume", "--val-images", "4"])
    budget.main()
    assert (out / "dense" / "final.pt").stat().st_mtime_ns == trained  # scored, not trained again
    result = json.loads((out / "accuracy_budget.json").read_text())["results"]["dense"]
    assert result["val_images"] == 4 and result["engine"] == "pytorch" and 0.0 <= result["map50"] <= 1.0
    assert list(result["train_seconds_by_device"]) == ["cpu"] and result["train_seconds_by_device"]["cpu"] > 0

    # Other settings under the same --out are refused, not scored as if they matched.
    monkeypatch.setattr(sys, "argv", [*args, "--resume", "--seed", "1"])
    with pytest.raises(SystemExit, match="other settings \\(seed\\)"):
        budget.main()


def test_accuracy_budget_refuses_to_score_the_start_when_training_only(monkeypatch: pytest.MonkeyPatch) -> None:
    budget = _load_script("accuracy_budget")
    monkeypatch.setattr(sys, "argv", ["accuracy_budget.py", "--train-only", "--before"])
    with pytest.raises(SystemExit):
        budget.main()
