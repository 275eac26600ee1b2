"""Benchmark statistics, skips, result files, scaling figures, the video loop and the
`bench` / `video` CLI commands."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolotut.assets import mirror_root
from yolotut.cli import main
from yolotut.inference import benchmark
from yolotut.inference.benchmark import BenchmarkResult, benchmark_engine, latency_stats, run_benchmark
from yolotut.inference.engines import Engine, create_engine
from yolotut.inference.video import annotate, run_video, running_fps

MIRROR = mirror_root() or Path("no-asset-mirror")  # tests/conftest.py sets YOLOTUT_MIRROR
TRAIN = MIRROR / "companion" / "yolov5-train"
BLOG_HS = TRAIN / "yolov5-deepsparse/yolov5n-sgd-pruned-quantized-hardswish/weights/best.onnx"
VIDEO = TRAIN / "data/pexels-cottonbro-8717592.mp4"
needs_mirror = pytest.mark.skipif(not BLOG_HS.exists(), reason=f"asset mirror not found at {MIRROR}")


@pytest.fixture(autouse=True)
def _mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLOTUT_MIRROR", str(MIRROR))


class _CountingEngine(Engine):
    """Counts infer() calls and returns an empty prediction."""

    name = "counting"

    def __init__(self, batch_size: int = 2) -> None:
        super().__init__("counting.onnx", batch_size, 32, "uint8", ["x"], fixed_batch=True)
        self.calls = 0
        self.inputs: list[np.ndarray] = []

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self._check_batch(batch)
        self.calls += 1
        self.inputs.append(batch)
        return np.zeros((batch.shape[0], 3, 6), np.float32)

    def _engine_info(self) -> dict:
        return {"cores": 1, "versions": {"counting": "1.0"}}


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


# --- statistics and results ---------------------------------------------------------------


def test_latency_stats_definitions() -> None:
    stats = latency_stats([10.0, 20.0, 30.0, 40.0], batch_size=4)
    assert stats["latency_ms_mean"] == pytest.approx(25.0)
    assert stats["latency_ms_median"] == pytest.approx(25.0)
    assert stats["latency_ms_p90"] == pytest.approx(37.0)  # linear interpolation
    assert stats["latency_ms_min"] == 10.0 and stats["latency_ms_max"] == 40.0
    # items/sec = batch / mean latency: 4 images per 25 ms.
    assert stats["items_per_sec"] == pytest.approx(160.0)
    with pytest.raises(ValueError):
        latency_stats([], 1)


def test_benchmark_engine_runs_warmup_plus_iterations_on_one_random_batch() -> None:
    eng = _CountingEngine(batch_size=2)
    result = benchmark_engine(eng, warmup=3, iterations=7, progress=False)
    assert eng.calls == 10
    assert len(result.latencies_ms) == 7 and all(x >= 0 for x in result.latencies_ms)
    assert all(b is eng.inputs[0] for b in eng.inputs)  # same input every run
    assert eng.inputs[0].dtype == np.uint8 and eng.inputs[0].shape == (2, 3, 32, 32)
    assert result.batch_size == 2 and result.cores == 1 and result.skipped is None
    assert result.items_per_sec == pytest.approx(2000.0 / result.latency_ms_mean)
    assert result.engine_info["engine"] == "counting"
    assert "cores_available" in result.hardware
    assert result.load_avg is None or len(result.load_avg) == 3
    assert result.other_cpu_cores is not None and result.other_cpu_cores >= 0
    with pytest.raises(ValueError):
        benchmark_engine(eng, warmup=0, iterations=0)


def test_results_round_trip_through_json_and_csv(tmp_path: Path) -> None:
    done = benchmark_engine(_CountingEngine(), warmup=0, iterations=3, progress=False)
    skipped = benchmark.skipped_result("m.onnx", "deepsparse", 1, 64, "64 cores asked for, 2 available")
    benchmark.save_results([done, skipped], tmp_path / "r.json", tmp_path / "r.csv")
    loaded = benchmark.load_results(tmp_path / "r.json")
    assert loaded[0] == done and loaded[1].skipped == skipped.skipped
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["engine"] for r in rows] == ["counting", "deepsparse"]
    assert float(rows[0]["items_per_sec"]) == pytest.approx(done.items_per_sec)
    assert rows[0]["engine_version"] == "1.0" and rows[1]["skipped"].startswith("64 cores")
    single = done.save(tmp_path / "one.json")
    assert benchmark.load_results(single)[0] == done


def test_busy_machine_is_flagged() -> None:
    assert benchmark.machine_busy(1.5, 2) and not benchmark.machine_busy(0.05, 2)
    assert not benchmark.machine_busy(1.0, 16) and benchmark.machine_busy(3.0, 16)
    result = BenchmarkResult(model="m.onnx", engine="deepsparse", batch_size=1, cores=2, items_per_sec=4.0,
                             latency_ms_mean=250.0, latency_ms_median=125.0, latency_ms_p90=500.0,
                             hardware={"cores_available": 2}, load_avg=[0.2, 0.2, 0.2], other_cpu_cores=1.8)
    assert result.busy and "other processes used 1.8 of 2 cores" in result.summary()
    result.other_cpu_cores = 0.02
    assert not result.busy and "busy" not in result.summary()
    # Results without the contention measurement fall back on the load average.
    result.other_cpu_cores, result.load_avg = None, [7.9, 6.0, 4.3]
    assert result.busy


def test_cpu_contention_ignores_this_process_own_work() -> None:
    meter = benchmark.CpuContention()
    meter.start()
    x = np.random.default_rng(0).random((300, 300))
    for _ in range(30):  # ~0.1 s of our own CPU work
        x = x @ x / 300
    other = meter.stop()
    # Whatever others did meanwhile, it is a non-negative amount below the machine's size.
    assert 0.0 <= other <= (os.cpu_count() or 1) + 0.5
    assert meter.steal_cores is not None and meter.steal_cores >= 0


def test_too_many_cores_is_skipped_not_run() -> None:
    result = run_benchmark("does-not-matter.onnx", "onnxruntime", cores=10_000)
    assert result.skipped and "10000 cores" in result.skipped
    assert result.items_per_sec is None


def test_unavailable_engine_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    from yolotut.inference import engines

    monkeypatch.setattr(engines, "deepsparse_unavailable_reason", lambda: "no AVX2 on this CPU")
    result = run_benchmark(BLOG_HS, "deepsparse", warmup=0, iterations=1, progress=False)
    assert result.skipped == "no AVX2 on this CPU"


def test_scaling_figure_one_line_per_engine_and_lists_skips() -> None:
    def res(engine: str, cores: int, ips: float | None, skipped: str | None = None) -> BenchmarkResult:
        return BenchmarkResult(model="x/weights/best.onnx", engine=engine, batch_size=1, cores=cores,
                               items_per_sec=ips, latency_ms_mean=1.0, latency_ms_p90=1.0, skipped=skipped)

    results = [res("deepsparse", 2, 200.0), res("deepsparse", 1, 110.0), res("onnxruntime", 1, 40.0),
               res("deepsparse", 4, None, "4 cores asked for, 2 available")]
    fig = benchmark.scaling_figure(results, x="cores")
    assert len(fig.data) == 2
    ds = next(t for t in fig.data if t.name.startswith("deepsparse"))
    assert list(ds.x) == [1, 2] and list(ds.y) == [110.0, 200.0]
    assert "x/best.onnx" in ds.name
    assert "4 cores asked for" in fig.layout.annotations[0].text
    with pytest.raises(ValueError):
        benchmark.scaling_figure(results, x="threads")


@needs_mirror
def test_run_benchmark_on_blog_model_with_onnxruntime() -> None:
    result = run_benchmark(BLOG_HS, "onnxruntime", batch_size=1, cores=1, warmup=1, iterations=3, progress=False)
    assert result.skipped is None and result.iterations == 3
    assert result.items_per_sec > 0 and result.latency_ms_p90 >= result.latency_ms_min
    assert result.engine_info["input_dtype"] == "uint8" and result.engine_info["input_shape"] == [1, 3, 416, 416]
    assert result.cores == 1 and result.imgsz == 416


@needs_mirror
def test_bench_cli_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc = main(["bench", str(BLOG_HS), "--engine", "onnxruntime", "--cores", "1", "--warmup", "1",
               "--iterations", "2", "--json", "--out", str(tmp_path / "b.json")])
    assert rc == 0
    payload = _last_json(capsys)
    for key in ("items_per_sec", "latency_ms_mean", "latency_ms_median", "latency_ms_p90", "engine",
                "batch_size", "cores", "model", "skipped"):
        assert key in payload
    assert payload["engine"] == "onnxruntime" and payload["iterations"] == 2 and payload["skipped"] is None
    assert json.loads((tmp_path / "b.json").read_text())[0]["items_per_sec"] == payload["items_per_sec"]


# --- video ------------------------------------------------------------------------------------


def test_annotate_draws_inside_the_box_only() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    det = np.array([[50, 40, 120, 90, 0.87, 0]], np.float32)
    out = annotate(image, det, ["pistol"])
    assert image.max() == 0  # not in place by default
    assert out[40, 80].any() and out[90, 80].any()  # top and bottom edges drawn
    assert not out[5:30, 150:].any()  # far away: untouched
    assert annotate(image, np.zeros((0, 6)), ["pistol"]).max() == 0


@needs_mirror
def test_run_video_writes_annotated_frames_and_times_every_stage(tmp_path: Path) -> None:
    eng = create_engine(BLOG_HS, "onnxruntime", cores=1, names=["pistol"])
    out = tmp_path / "out.mp4"
    result = run_video(eng, VIDEO, out_path=out, max_frames=5, progress=False)
    assert result.frames == 5 and result.width == 640 and result.height == 338
    assert set(result.stage_ms) == {"decode", "preprocess", "infer", "postprocess", "draw", "write"}
    assert all(v >= 0 for v in result.stage_ms.values()) and result.stage_ms["infer"] > 0
    assert result.fps > 0 and result.fps_pipeline >= result.fps
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    cap.release()


def test_run_video_errors(tmp_path: Path) -> None:
    eng = _CountingEngine(batch_size=1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_video(eng, tmp_path / "missing.mp4")
    bogus = tmp_path / "bogus.mp4"
    bogus.write_text("not a video")
    with pytest.raises(ValueError, match="cannot open"):
        run_video(eng, bogus)
    with pytest.raises(ValueError, match="batch 1"):
        run_video(_CountingEngine(batch_size=2), bogus)


@needs_mirror
def test_running_fps_is_the_mean_over_the_last_frames_and_its_peak() -> None:
    eng = _CountingEngine(batch_size=1)
    result = running_fps(eng, VIDEO, window=3, max_frames=8, warmup=2)
    assert result["frames"] == 8 and len(result["running_fps"]) == 8 and eng.calls == 2 + 8
    assert result["fps_peak"] == max(result["running_fps"][2:]) and result["fps"] > 0
    # A run shorter than the window: the peak is taken over the whole run.
    short = running_fps(eng, VIDEO, window=50, max_frames=4, warmup=0)
    assert short["fps_peak"] == max(short["running_fps"])
    with pytest.raises(ValueError, match="window"):
        running_fps(eng, VIDEO, window=0)


@needs_mirror
def test_video_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["video", "blog-yolov5n-pq-hardswish", "--engine", "onnxruntime", "--cores", "1",
               "--max-frames", "3", "--json"])
    assert rc == 0
    payload = _last_json(capsys)
    assert payload["frames"] == 3 and payload["fps"] > 0 and "infer" in payload["stage_ms"]
    assert payload["source"].endswith("pexels-cottonbro-8717592.mp4")
