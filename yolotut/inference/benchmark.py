"""Latency and throughput, measured the way the Neural Magic "YOLOv5 on CPUs" post does.

Method: one random input batch in the engine's own dtype and shape (pre- and
post-processing excluded), ``warmup`` untimed runs (25), then ``iterations`` timed
runs (80), each timed with ``time.perf_counter_ns`` around ``engine.infer``.

* latency: mean / median / p90 / std / min / max over the timed runs, milliseconds;
* ``items_per_sec`` = ``batch_size / mean latency in seconds`` -- images per second
  of a synchronous (one stream) engine, the post's "items/sec".

Every result carries ``engine.info()`` (what actually ran), the CPU fingerprint and
how much CPU *other* processes used while it was timed (``other_cpu_cores``: system
CPU time minus this process's, per second of wall time). Other processes on the same
cores distort CPU benchmarks badly -- DeepSparse pins one thread per core and suffers
most -- so a result taken on a busy machine says so (:attr:`BenchmarkResult.busy`).
A benchmark that cannot run here (no CUDA GPU, DeepSparse unsupported, more cores
asked for than the process may use) gives a result with ``skipped`` set to the reason
instead of raising, so a sweep always completes.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import psutil

from yolotut import hardware
from yolotut.inference.engines import Engine, EngineUnavailableError, create_engine
from yolotut.progress import tqdm

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go

WARMUP = 25
ITERATIONS = 80

# Scalar columns written to CSV (lists and nested dicts stay in the JSON).
CSV_FIELDS = [
    "model",
    "engine",
    "batch_size",
    "cores",
    "imgsz",
    "input_dtype",
    "warmup",
    "iterations",
    "items_per_sec",
    "latency_ms_mean",
    "latency_ms_median",
    "latency_ms_p90",
    "latency_ms_std",
    "latency_ms_min",
    "latency_ms_max",
    "cpu_model",
    "engine_version",
    "other_cpu_cores",
    "steal_cpu_cores",
    "timestamp",
    "skipped",
]


@dataclass
class BenchmarkResult:
    """One benchmark: what ran, on what, and how fast (``skipped`` set when it could not run)."""

    model: str
    engine: str
    batch_size: int
    cores: int | None
    imgsz: int | None = None
    input_dtype: str | None = None
    warmup: int = WARMUP
    iterations: int = ITERATIONS
    items_per_sec: float | None = None
    latency_ms_mean: float | None = None
    latency_ms_median: float | None = None
    latency_ms_p90: float | None = None
    latency_ms_std: float | None = None
    latency_ms_min: float | None = None
    latency_ms_max: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    engine_info: dict[str, Any] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    load_avg: list[float] | None = None  # 1/5/15-minute load average at the start
    other_cpu_cores: float | None = None  # cores' worth of CPU other processes used while timed
    steal_cpu_cores: float | None = None  # cores' worth taken by the hypervisor (VMs only)
    timestamp: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "busy": self.busy}

    @property
    def busy(self) -> bool:
        """Whether other processes competed for the CPU while this was measured (see :func:`machine_busy`)."""
        cores = self.hardware.get("cores_available") or 1
        if self.other_cpu_cores is not None:
            return machine_busy(self.other_cpu_cores, cores)
        # Older results: only the (lagging) load average at the start is known.
        return bool(self.load_avg) and machine_busy(self.load_avg[0], cores)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def csv_row(self) -> dict[str, Any]:
        row = {name: getattr(self, name, None) for name in CSV_FIELDS}
        row["cpu_model"] = self.hardware.get("cpu_model")
        versions = self.engine_info.get("versions", {})
        row["engine_version"] = versions.get(self.engine)
        return row

    def save(self, path: str | Path) -> Path:
        """Write this result as one JSON object."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        return path

    def summary(self) -> str:
        head = f"{self.engine} {model_label(self.model)} batch={self.batch_size} cores={self.cores}"
        if self.skipped:
            return f"{head}: skipped ({self.skipped})"
        text = (
            f"{head}: {self.items_per_sec:.1f} items/s, latency mean {self.latency_ms_mean:.2f} ms, "
            f"median {self.latency_ms_median:.2f} ms, p90 {self.latency_ms_p90:.2f} ms"
        )
        if self.busy:
            used = self.other_cpu_cores if self.other_cpu_cores is not None else self.load_avg[0]
            text += f" [machine busy: other processes used {used:.1f} of {self.hardware.get('cores_available')} cores]"
        return text


def machine_busy(other_cores: float, cores: int) -> bool:
    """Other processes using more than a tenth of the cores plus a tenth of a core
    (0.3 cores of 2) distort a CPU benchmark enough to matter."""
    return other_cores > 0.1 * cores + 0.1


class CpuContention:
    """Measures how much CPU other processes use between :meth:`start` and :meth:`stop`.

    System-wide busy CPU time minus this process's own (all its threads, so DeepSparse's
    and ONNX Runtime's workers count as "ours"), divided by wall time: the average
    number of cores other processes kept busy. Unlike the load average it does not lag.
    In a virtual machine, ``steal_cores`` is the CPU the hypervisor gave to other guests
    meanwhile: contention no process list inside the VM shows.
    """

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self._start: tuple[float, float, float, float] | None = None
        self.steal_cores: float | None = None

    def _sample(self) -> tuple[float, float, float, float]:
        t = psutil.cpu_times()
        steal = getattr(t, "steal", 0.0)
        busy = sum(t) - t.idle - getattr(t, "iowait", 0.0) - steal
        own = sum(self._proc.cpu_times()[:2])  # user + system of every thread of this process
        return time.perf_counter(), busy, own, steal

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> float:
        """Average cores used by other processes since :meth:`start` (also sets ``steal_cores``)."""
        if self._start is None:
            raise RuntimeError("CpuContention.stop() called before start()")
        wall, busy, own, steal = self._sample()
        dwall = max(wall - self._start[0], 1e-9)
        self.steal_cores = round((steal - self._start[3]) / dwall, 3)
        return round(max((busy - self._start[1]) - (own - self._start[2]), 0.0) / dwall, 3)


def load_average() -> list[float] | None:
    """The 1/5/15-minute load average, or None where the OS does not provide it."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def latency_stats(latencies_ms: Sequence[float], batch_size: int) -> dict[str, float]:
    """Mean/median/p90/std/min/max (ms) and ``items_per_sec = batch_size / mean latency``."""
    lat = np.asarray(latencies_ms, dtype=np.float64)
    if lat.size == 0:
        raise ValueError("no latencies to summarise (iterations must be >= 1)")
    mean = float(lat.mean())
    return {
        "latency_ms_mean": mean,
        "latency_ms_median": float(np.median(lat)),
        "latency_ms_p90": float(np.percentile(lat, 90)),
        "latency_ms_std": float(lat.std()),
        "latency_ms_min": float(lat.min()),
        "latency_ms_max": float(lat.max()),
        "items_per_sec": batch_size / (mean / 1000.0),
    }


def benchmark_engine(
    engine: Engine,
    warmup: int = WARMUP,
    iterations: int = ITERATIONS,
    progress: bool = True,
    seed: int = 0,
) -> BenchmarkResult:
    """Time ``engine.infer`` on one random batch: ``warmup`` untimed + ``iterations`` timed runs."""
    if warmup < 0 or iterations < 1:
        raise ValueError(f"need warmup >= 0 and iterations >= 1, got {warmup} and {iterations}")
    batch = engine.dummy_input(seed)
    load = load_average()
    contention = CpuContention()
    latencies_ns = np.empty(iterations, dtype=np.int64)
    bar = tqdm(total=warmup + iterations, desc=f"{engine.name} b{engine.batch_size}", disable=not progress, leave=False)
    for _ in range(warmup):
        engine.infer(batch)
        bar.update()
    contention.start()
    for i in range(iterations):
        start = time.perf_counter_ns()
        engine.infer(batch)
        latencies_ns[i] = time.perf_counter_ns() - start
        bar.update()
    other_cores = contention.stop()
    bar.close()
    info = engine.info()
    latencies_ms = (latencies_ns / 1e6).tolist()
    return BenchmarkResult(
        model=str(engine.model_path),
        engine=engine.name,
        batch_size=engine.batch_size,
        cores=info.get("cores"),
        imgsz=engine.imgsz,
        input_dtype=engine.input_dtype,
        warmup=warmup,
        iterations=iterations,
        latencies_ms=latencies_ms,
        engine_info=info,
        hardware=hardware.cpu_fingerprint(),
        load_avg=load,
        other_cpu_cores=other_cores,
        steal_cpu_cores=contention.steal_cores,
        **latency_stats(latencies_ms, engine.batch_size),
    )


def skipped_result(model: str | Path, engine: str, batch_size: int, cores: int | None, reason: str) -> BenchmarkResult:
    """A result that records why a benchmark did not run."""
    return BenchmarkResult(
        model=str(model), engine=engine, batch_size=batch_size, cores=cores, hardware=hardware.cpu_fingerprint(), skipped=reason
    )


def run_benchmark(
    model: str | Path,
    engine: str,
    batch_size: int = 1,
    cores: int | None = None,
    imgsz: int | None = None,
    warmup: int = WARMUP,
    iterations: int = ITERATIONS,
    device: str = "cpu",
    progress: bool = True,
    options: dict[str, Any] | None = None,
) -> BenchmarkResult:
    """Build the engine and benchmark it; a setup this machine cannot run comes back skipped.

    ``options``: the openvino engine's settings (see :func:`~yolotut.inference.engines.create_engine`).
    """
    available = hardware.cpu_fingerprint()["cores_available"]
    if cores is not None and cores > available and device == "cpu":
        return skipped_result(model, engine, batch_size, cores, f"{cores} cores asked for, {available} available to this process")
    try:
        eng = create_engine(model, engine, batch_size=batch_size, cores=cores, imgsz=imgsz, device=device, options=options)
    except EngineUnavailableError as exc:
        return skipped_result(model, engine, batch_size, cores, str(exc))
    return benchmark_engine(eng, warmup=warmup, iterations=iterations, progress=progress)


def core_scaling(
    model: str | Path,
    engine: str,
    cores_list: Iterable[int],
    batch_size: int = 1,
    imgsz: int | None = None,
    warmup: int = WARMUP,
    iterations: int = ITERATIONS,
    progress: bool = True,
) -> list[BenchmarkResult]:
    """Throughput vs number of cores (threads for torch / ONNX Runtime) at a fixed batch."""
    return [
        run_benchmark(model, engine, batch_size, cores, imgsz, warmup, iterations, progress=progress)
        for cores in cores_list
    ]


def batch_scaling(
    model: str | Path,
    engine: str,
    batch_sizes: Iterable[int],
    cores: int | None = None,
    imgsz: int | None = None,
    warmup: int = WARMUP,
    iterations: int = ITERATIONS,
    progress: bool = True,
) -> list[BenchmarkResult]:
    """Throughput vs batch size at a fixed core count."""
    return [
        run_benchmark(model, engine, batch, cores, imgsz, warmup, iterations, progress=progress)
        for batch in batch_sizes
    ]


def save_results(results: Sequence[BenchmarkResult], json_path: str | Path, csv_path: str | Path | None = None) -> None:
    """All results as a JSON list (full detail) and, optionally, one CSV row each."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps([r.to_dict() for r in results], indent=2, default=str) + "\n")
    if csv_path is not None:
        csv_path = Path(csv_path)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with csv_path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
            writer.writeheader()
            for result in results:
                writer.writerow(result.csv_row())


def load_results(json_path: str | Path) -> list[BenchmarkResult]:
    """Results written by :func:`save_results` or :meth:`BenchmarkResult.save`."""
    data = json.loads(Path(json_path).read_text())
    items = data if isinstance(data, list) else [data]
    return [BenchmarkResult.from_dict(item) for item in items]


def model_label(model: str | Path) -> str:
    """Short name of a model file; YOLOv5 run folders (``<run>/weights/best.onnx``) give the run's name."""
    path = Path(model)
    if path.parent.name == "weights" and path.parent.parent.name:
        return f"{path.parent.parent.name}/{path.name}"
    return path.name


def scaling_figure(
    results: Sequence[BenchmarkResult], x: str = "cores", y: str = "items_per_sec", title: str | None = None
) -> go.Figure:
    """Plotly line chart of ``y`` against ``x`` ("cores" or "batch_size"), one line per engine/model.

    Skipped runs are listed under the chart rather than silently left out.
    """
    import plotly.graph_objects as go

    if x not in ("cores", "batch_size"):
        raise ValueError(f"x must be 'cores' or 'batch_size', got {x!r}")
    other = "batch_size" if x == "cores" else "cores"
    series: dict[str, list[BenchmarkResult]] = {}
    skipped: list[str] = []
    for r in results:
        if r.skipped:
            skipped.append(f"{r.engine} {model_label(r.model)} {x}={getattr(r, x)}: {r.skipped}")
            continue
        label = f"{r.engine} · {model_label(r.model)} ({other}={getattr(r, other)})"
        series.setdefault(label, []).append(r)
    fig = go.Figure()
    for label, runs in series.items():
        runs = sorted(runs, key=lambda r: getattr(r, x))
        fig.add_trace(
            go.Scatter(
                x=[getattr(r, x) for r in runs],
                y=[getattr(r, y) for r in runs],
                mode="lines+markers",
                name=label,
                customdata=[[r.latency_ms_mean, r.latency_ms_p90] for r in runs],
                hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y:.1f}}<br>mean %{{customdata[0]:.2f}} ms, p90 %{{customdata[1]:.2f}} ms<extra></extra>",
            )
        )
    y_title = {"items_per_sec": "items / s (batch / mean latency)"}.get(y, y)
    fig.update_layout(
        title=title or f"{y_title} vs {x}",
        xaxis_title="cores" if x == "cores" else "batch size",
        yaxis_title=y_title,
        template="plotly_white",
        legend_title="engine · model",
    )
    fig.update_xaxes(type="category" if x == "batch_size" else "linear", dtick=1 if x == "cores" else None)
    if skipped:
        fig.add_annotation(
            text="skipped: " + "<br>".join(skipped),
            xref="paper", yref="paper", x=0, y=-0.25, showarrow=False, align="left", font={"size": 10},
        )
        fig.update_layout(margin={"b": 80 + 15 * len(skipped)})
    return fig
