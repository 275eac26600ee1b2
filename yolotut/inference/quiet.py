"""Speed measured only while the machine is quiet: the harness every speed study uses.

DeepSparse's worker threads meet at a barrier after every layer: when another process
takes one of the two cores, the whole engine waits for the descheduled thread and a
2 ms model takes 7-250 ms. So every measurement is checked for CPU time used by other
processes during it (:class:`~yolotut.inference.benchmark.CpuContention`: system-wide
busy time minus this process's own; in a VM also the time the hypervisor stole), and
repeated when the machine was not quiet.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from yolotut.inference.benchmark import CpuContention, benchmark_engine

__all__ = ["QuietPolicy", "contention_during", "interleaved_rounds", "measure_quietly", "realtime", "wait_for_quiet"]


def contention_during(seconds: float) -> float:
    """Cores' worth of CPU that other processes and the hypervisor took over the next ``seconds``."""
    meter = CpuContention()
    meter.start()
    time.sleep(seconds)
    return meter.stop() + (meter.steal_cores or 0.0)


def wait_for_quiet(threshold: float, max_wait: float, probe: float = 0.5) -> float:
    """Block until other processes use at most ``threshold`` cores (or ``max_wait`` s pass)."""
    deadline = time.monotonic() + max_wait
    while True:
        load = contention_during(probe)
        if load <= threshold or time.monotonic() >= deadline:
            return load
        time.sleep(1.0)


@contextmanager
def realtime(enabled: bool = True, priority: int = 10) -> Iterator[bool]:
    """Run every thread of this process under SCHED_FIFO while the block runs.

    What makes 2-core numbers usable on a shared machine: a woken DeepSparse worker
    gets its core back at once instead of after another process's time slice. Only
    the timed runs are real-time (not compilation), so other processes lose the CPU
    for seconds, not minutes; the kernel's RT throttling keeps 5 % for them anyway.
    Measured here with another process busy: median 10-240 ms per run at normal
    priority, 10-40 ms at nice -20, 2.2-2.9 ms under SCHED_FIFO (1.95 ms idle).
    Yields False (and changes nothing) without the privilege.
    """
    changed: list[int] = []
    if enabled and hasattr(os, "sched_setscheduler"):
        for tid in (int(t) for t in os.listdir("/proc/self/task")):
            try:
                os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
                changed.append(tid)
            except (PermissionError, ProcessLookupError):
                continue
    try:
        yield bool(changed)
    finally:
        for tid in changed:
            try:
                os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
            except ProcessLookupError:
                continue


@dataclass(frozen=True)
class QuietPolicy:
    threshold: float = 0.25  # cores used by other processes that still count as quiet
    max_wait: float = 2.0  # seconds to wait for quiet before measuring anyway
    max_tries: int = 3  # measurements of one model per round when the machine was busy



def measure_quietly(engine: Any, quiet: QuietPolicy, use_realtime: bool = True, **benchmark_args: Any) -> tuple[Any, float, int, bool]:
    """One benchmark of ``engine``, measured again while the machine was not quiet.

    Returns (the kept ``BenchmarkResult``, the cores' worth of CPU that other processes
    -- or, in a VM, the hypervisor -- took during it, tries used, whether it ran real-time).
    """
    for attempt in range(1, quiet.max_tries + 1):  # noqa: B007  (returned: the tries it took)
        wait_for_quiet(quiet.threshold, quiet.max_wait)
        with realtime(use_realtime) as rt:
            meter = CpuContention()
            meter.start()
            result = benchmark_engine(engine, progress=False, **benchmark_args)
            load = meter.stop() + (meter.steal_cores or 0.0)
        if load <= quiet.threshold:
            break
    return result, load, attempt, rt


def interleaved_rounds(
    engines: Mapping[str, Callable[[], Any]],
    rounds: int,
    warmup: int,
    iterations: int,
    quiet: QuietPolicy,
    keep: bool = True,
    on_measured: Callable[[], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every engine timed once per round, in an order rotated each round, so that drifting
    load hits all of them alike. ``engines`` maps a label to a function that builds the
    engine; with ``keep`` each is built once (and run once, so that its worker threads
    exist before the first real-time measurement), without it built for each measurement
    and freed after it (engines too large to hold together).

    Per label: ``rounds`` (items/s of each round, batch x 1000 / median latency),
    ``latency_ms_median`` (each round's), ``disturbed_rounds`` (rounds in which other
    processes took more than ``quiet.threshold`` cores) and ``engine_info``.
    """
    labels = list(engines)
    kept = {label: engines[label]() for label in labels} if keep else {}
    for engine in kept.values():
        engine.infer(engine.dummy_input())
    out: dict[str, dict[str, Any]] = {label: {"rounds": [], "latency_ms_median": [], "disturbed_rounds": 0} for label in labels}
    for round_index in range(rounds):
        shift = round_index % max(len(labels), 1)
        for label in labels[shift:] + labels[:shift]:
            engine = kept[label] if keep else engines[label]()
            result, load, _, _ = measure_quietly(engine, quiet, warmup=warmup, iterations=iterations, seed=round_index)
            row = out[label]
            row["rounds"].append(engine.batch_size * 1000.0 / float(result.latency_ms_median))
            row["latency_ms_median"].append(float(result.latency_ms_median))
            row["disturbed_rounds"] += load > quiet.threshold
            row["engine_info"] = engine.info()
            if not keep:
                del engine
                gc.collect()
            if on_measured is not None:
                on_measured()
    return out
