"""The quiet-measurement harness (yolotut.inference.quiet): measure again while other
processes or the hypervisor took CPU, and keep the last try."""

from __future__ import annotations

import pytest

from yolotut.inference import quiet


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
def scripted(monkeypatch: pytest.MonkeyPatch) -> type[_ScriptedContention]:
    runs: list[dict] = []
    monkeypatch.setattr(quiet, "CpuContention", _ScriptedContention)
    monkeypatch.setattr(quiet, "benchmark_engine", lambda engine, **kwargs: runs.append(kwargs) or f"run {len(runs)}")
    monkeypatch.setattr(quiet.time, "sleep", lambda seconds: None)
    _ScriptedContention.runs = runs
    return _ScriptedContention


def test_a_disturbed_measurement_is_measured_again(scripted: type[_ScriptedContention]) -> None:
    policy = quiet.QuietPolicy(threshold=0.25, max_wait=0.0, max_tries=3)
    # Each try: one reading while waiting for quiet, one over the benchmark. The first
    # benchmark shared the CPU with another process, the second lost it to the hypervisor.
    scripted.readings = [(0.0, 0.0), (0.9, 0.0), (0.0, 0.0), (0.1, 0.2), (0.0, 0.0), (0.05, 0.0)]
    result, load, tries, _ = quiet.measure_quietly("engine", policy, use_realtime=False, seed=7)
    assert (result, tries, load) == ("run 3", 3, pytest.approx(0.05))
    assert scripted.runs == [{"progress": False, "seed": 7}] * 3
    assert scripted.readings == []


def test_a_machine_that_never_gets_quiet_keeps_the_last_try_and_says_how_busy(
    scripted: type[_ScriptedContention]
) -> None:
    policy = quiet.QuietPolicy(threshold=0.25, max_wait=0.0, max_tries=2)
    scripted.readings = [(1.0, 0.0), (1.2, 0.0), (1.0, 0.0), (0.7, 0.3)]
    result, load, tries, _ = quiet.measure_quietly("engine", policy, use_realtime=False)
    assert (result, tries, load) == ("run 2", 2, pytest.approx(1.0))
    assert load > policy.threshold


def test_a_quiet_first_measurement_is_kept(scripted: type[_ScriptedContention]) -> None:
    scripted.readings = [(0.0, 0.0), (0.1, 0.1)]
    result, load, tries, _ = quiet.measure_quietly("engine", quiet.QuietPolicy(), use_realtime=False)
    assert (result, tries, load) == ("run 1", 1, pytest.approx(0.2))
