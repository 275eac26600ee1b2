"""Tests of the claims registry (data/published.yaml), the checker and its renderers.

All inputs are fixed: small synthetic registries and result files, plus the real
registry. No timing.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import plotly.graph_objects as go
import pytest

from yolotut.reproduce import claims as C
from yolotut.reproduce.claims import ClaimsError
from yolotut.ui import plots

REPO = Path(__file__).resolve().parent.parent
REGISTRY = REPO / "data" / "published.yaml"


@pytest.fixture(scope="module")
def registry() -> C.Claims:
    return C.load_claims(REGISTRY)


# --- the data file itself ----------------------------------------------------------------

# Every figure of the dnth write-up, as printed (published page, drafts, companion repo).
DNTH_FIGURES = {
    "dnth_pytorch_cpu_yolov5s_dense_fps": 21.91,
    "dnth_pytorch_cpu_yolov5s_dense_latency": 45.58,
    "dnth_deepsparse_yolov5s_dense_fps": 29.48,
    "dnth_deepsparse_yolov5s_dense_latency": 33.91,
    "dnth_deepsparse_yolov5s_one_shot_fps": 32.00,
    "dnth_deepsparse_yolov5s_one_shot_latency": 31.24,
    "dnth_deepsparse_yolov5s_sparse_transfer_fps": 51.56,
    "dnth_deepsparse_yolov5s_sparse_transfer_latency": 19.39,
    "dnth_deepsparse_yolov5s_pruned_fps": 35.50,
    "dnth_deepsparse_yolov5s_pruned_latency": 31.73,
    "dnth_deepsparse_yolov5s_quantized_fps": 43.29,
    "dnth_deepsparse_yolov5s_quantized_latency": 23.09,
    "dnth_deepsparse_yolov5s_pq_fps": 58.06,
    "dnth_deepsparse_yolov5s_pq_latency": 17.22,
    "dnth_deepsparse_yolov5n_pq_hardswish_fps": 101.52,
    "dnth_deepsparse_yolov5n_pq_hardswish_latency": 9.84,
    "dnth_headline_peak_fps": 182.4,
    "dnth_repo_headline_fps": 182.4,
    "dnth_draft_pytorch_gpu_rtx3090_fps": 89.20,
    "dnth_draft_pytorch_gpu_rtx3090_latency": 11.21,
    "dnth_draft_yolov5n_pq_hardswish_fps": 93.33,
    "dnth_draft_yolov5n_pq_hardswish_latency": 10.71,
}

NM_FIGURES = {
    "nm_yolov5l_pytorch_t4_fp16_b1": 59.3,
    "nm_yolov5l_onnxruntime_c5_b1": 5.8,
    "nm_yolov5l_deepsparse_dense_c5_b1": 17.7,
    "nm_yolov5l_deepsparse_pq_c5_b1": 52.6,
    "nm_recipes_2021_yolov5l_dense_map50": 0.654,
    "nm_recipes_2021_yolov5l_pq_map50": 0.623,
    "nm_recipes_2021_yolov5s_dense_map50": 0.556,
    "nm_recipes_2021_yolov5s_pq_map50": 0.525,
    "nm_recipes_2021_yolov5l_dense_size": 154,
    "nm_recipes_2021_yolov5l_pq_size": 12.7,
}


@pytest.mark.parametrize("claim_id,value", sorted({**DNTH_FIGURES, **NM_FIGURES}.items()))
def test_published_figure_recorded_exactly(registry: C.Claims, claim_id: str, value: float) -> None:
    claim = registry.by_id()[claim_id]
    assert claim.value == pytest.approx(value, abs=1e-9)


def test_dnth_conditions(registry: C.Claims) -> None:
    by_id = registry.by_id()
    for cid in DNTH_FIGURES:
        c = by_id[cid]
        assert c.imgsz == 416 and c.dataset == "pistols", cid
        assert c.measurement == "end-to-end-video", cid
    pt = by_id["dnth_pytorch_cpu_yolov5s_dense_fps"]
    assert (pt.engine, pt.cores, pt.model, pt.variant) == ("pytorch", 8, "yolov5s", "dense")
    assert "i9-11900" in pt.device
    for cid in ("dnth_deepsparse_yolov5s_dense_fps", "dnth_deepsparse_yolov5s_pq_fps",
                "dnth_deepsparse_yolov5n_pq_hardswish_fps"):
        assert (by_id[cid].engine, by_id[cid].cores) == ("deepsparse", 4)
    assert by_id["dnth_deepsparse_yolov5n_pq_hardswish_fps"].model == "yolov5n"
    assert by_id["dnth_draft_pytorch_gpu_rtx3090_fps"].source == "dnth_blog_drafts"
    assert by_id["dnth_draft_yolov5n_pq_hardswish_fps"].source == "dnth_blog_drafts"
    assert "peak" in by_id["dnth_headline_peak_fps"].note.lower()


def test_null_values_explain_themselves(registry: C.Claims) -> None:
    nulls = [c for c in registry if c.value is None]
    assert nulls, "Tables 1-3 of the NM post are images; they must be recorded as null"
    for c in nulls:
        assert "not found in stored copies" in c.note, c.id


def test_every_claim_cites_a_url(registry: C.Claims) -> None:
    for c in registry:
        assert c.url and c.url.startswith("https://"), c.id
        assert c.table or c.section, c.id


# --- schema validation -------------------------------------------------------------------

MINI = {
    "schema_version": 1,
    "sources": {"s": {"title": "T", "url": "https://example.org/post"}},
    "claims": [
        {"id": "fast", "source": "s", "metric": "fps", "value": 20.0, "unit": "FPS", "model": "yolov5s",
         "variant": "pruned-quantized", "engine": "deepsparse", "cores": 4},
        {"id": "slow", "source": "s", "metric": "fps", "value": 10.0, "unit": "FPS", "model": "yolov5s",
         "variant": "dense", "engine": "pytorch", "cores": 4},
    ],
    "comparisons": [
        {"id": "speedup", "title": "pq vs dense", "kind": "ratio", "numerator": "fast", "denominator": "slow",
         "select": {"numerator": {"metric": "fps", "variant": "pruned-quantized", "model": ["yolov5s", "yolov5n"]},
                    "denominator": {"metric": "fps", "variant": "dense", "model": ["yolov5s", "yolov5n"]}},
         "same": ["model"], "unmeasurable_reason": "needs both runs"},
    ],
}


def _mini(**edits) -> dict:
    doc = copy.deepcopy(MINI)
    for path, value in edits.items():
        target = doc
        keys = path.split(".")
        for k in keys[:-1]:
            target = target[int(k)] if k.isdigit() else target[k]
        last = keys[-1]
        if value is _DELETE:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize(
    "edits,fragment",
    [
        ({"claims.0.vaule": 3}, "unknown field(s) ['vaule']"),
        ({"claims.0.value": _DELETE}, "missing required field 'value'"),
        ({"claims.0.metric": "frames"}, "metric 'frames' not one of"),
        ({"claims.0.source": "nowhere"}, "source 'nowhere' is not a key"),
        ({"claims.0.value": None}, "add a 'note'"),
        ({"claims.0.value": "fast"}, "value must be a number or null"),
        ({"claims.0.cores": 0}, "'cores' must be a positive integer"),
        ({"claims.0.measurement": "wall-clock"}, "measurement 'wall-clock' not one of"),
        ({"claims.1.id": "fast"}, "duplicate id 'fast'"),
        ({"claims.0.id": "Bad Id"}, "lower-case slug"),
        ({"sources.s.url": "example.org"}, "url must start with http"),
        ({"comparisons.0.numerator": "ghost"}, "numerator 'ghost' is not a claim id"),
        ({"comparisons.0.select.numerator.colour": "red"}, "unknown field(s) ['colour']"),
        ({"comparisons.0.kind": "product"}, "kind 'product' not one of"),
        ({"comparisons.0.same": ["speed"]}, "same must be a list"),
        ({"comparisons.0.tolerance": 15}, "tolerance must be a fraction"),
    ],
)
def test_schema_errors_name_entry_and_field(edits: dict, fragment: str) -> None:
    with pytest.raises(ClaimsError) as err:
        C.parse_claims(_mini(**edits), "published.yaml")
    msg = str(err.value)
    assert fragment in msg
    assert msg.startswith("published.yaml: ")


def test_schema_error_names_the_claim_id() -> None:
    with pytest.raises(ClaimsError, match=r"claims\[0\] \(id 'fast'\)"):
        C.parse_claims(_mini(**{"claims.0.unit": 5}), "x.yaml")


def test_missing_claims_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ClaimsError, match="--claims"):
        C.load_claims(tmp_path / "nope.yaml")


def test_default_path_is_the_repository_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YOLOTUT_CLAIMS", raising=False)
    assert C.default_claims_path() == REGISTRY
    monkeypatch.setenv("YOLOTUT_CLAIMS", "/x/y.yaml")
    assert C.default_claims_path() == Path("/x/y.yaml")


# --- ratio arithmetic ----------------------------------------------------------------------


def test_claimed_ratios_of_the_real_registry(registry: C.Claims) -> None:
    verdicts = {v.comparison_id: v for v in C.check(registry, [])}
    assert verdicts["dnth_pq_vs_pytorch_cpu"].claimed == pytest.approx(58.06 / 21.91)
    assert verdicts["dnth_pq_vs_deepsparse_dense"].claimed == pytest.approx(58.06 / 29.48)
    assert verdicts["dnth_headline_peak_vs_average"].claimed == pytest.approx(182.4 / 101.52)
    assert verdicts["nm_pq_deepsparse_vs_onnxruntime_b1"].claimed == pytest.approx(52.6 / 5.8)
    assert verdicts["nm_size_reduction_yolov5l"].claimed == pytest.approx(154 / 12.7)
    assert verdicts["nm_map_change_yolov5l_pq"].claimed == pytest.approx(-3.1)
    six_seven = verdicts["nm_deepsparse_vs_pytorch_pq_b1"]
    assert (six_seven.claimed, six_seven.claimed_high) == (6, 7)
    assert all(v.status == C.NOT_MEASURABLE and v.reason for v in verdicts.values())


def _meas(metric: str, value: float, **kw) -> C.Measurement:
    kw.setdefault("source", "run.json")
    return C.Measurement(id=f"{kw.get('variant')}-{metric}-{value}", metric=metric, value=value, **kw)


def test_latency_ratio_is_inverted_to_a_speedup() -> None:
    doc = _mini(**{"claims.0.metric": "latency_ms", "claims.0.value": 5.0, "claims.0.unit": "ms",
                   "claims.1.metric": "latency_ms", "claims.1.value": 10.0, "claims.1.unit": "ms",
                   "comparisons.0.select.numerator.metric": "latency_ms",
                   "comparisons.0.select.denominator.metric": "latency_ms"})
    reg = C.parse_claims(doc)
    ms = [_meas("latency_ms", 4.0, model="yolov5s", variant="pruned-quantized"),
          _meas("latency_ms", 8.0, model="yolov5s", variant="dense")]
    (v,) = C.check(reg, ms)
    assert v.claimed == pytest.approx(2.0) and v.measured == pytest.approx(2.0)
    assert v.status == C.REPRODUCED


# --- verdict categories --------------------------------------------------------------------


def _pair(num: float, den: float, model: str = "yolov5s", **kw) -> list[C.Measurement]:
    return [_meas("fps", num, model=model, variant="pruned-quantized", **kw),
            _meas("fps", den, model=model, variant="dense", **kw)]


@pytest.mark.parametrize(
    "num,den,status",
    [(21.0, 10.0, C.REPRODUCED), (16.0, 10.0, C.NOT_REPRODUCED), (30.0, 10.0, C.EXCEEDED), (23.0, 10.0, C.REPRODUCED)],
)
def test_ratio_verdicts(num: float, den: float, status: str) -> None:
    (v,) = C.check(C.parse_claims(MINI), _pair(num, den))
    assert v.status == status
    assert v.measured == pytest.approx(num / den) and v.claimed == pytest.approx(2.0)
    assert not v.proxy


def test_not_reproduced_says_so_with_both_numbers() -> None:
    (v,) = C.check(C.parse_claims(MINI), _pair(12.0, 10.0))
    assert v.status == C.NOT_REPRODUCED
    assert "contradicts" in v.text and "2.00x" in v.text and "1.20x" in v.text and "-40%" in v.text


def test_a_speed_timed_on_a_busy_machine_is_no_evidence() -> None:
    reg = C.parse_claims(MINI)
    quiet_dense = _meas("fps", 10.0, model="yolov5s", variant="dense")
    busy_sparse = _meas("fps", 30.0, model="yolov5s", variant="pruned-quantized", busy=True)
    (v,) = C.check(reg, [busy_sparse, quiet_dense])
    assert v.status == C.NOT_MEASURABLE and "other processes used the CPU" in v.reason
    assert C.check(reg, _pair(21.0, 10.0))[0].status == C.REPRODUCED  # the same figures, quiet


def test_busy_flag_is_read_from_result_files(tmp_path) -> None:
    import json

    path = tmp_path / "r.json"
    path.write_text(json.dumps({"measurements": [{"id": "a", "model": "yolov5s", "variant": "dense", "fps": 5.0, "busy": True}]}))
    (m,) = C.load_measurements([path])
    assert m.busy


def test_tolerance_argument_and_lower_is_better() -> None:
    reg = C.parse_claims(MINI)
    assert C.check(reg, _pair(16.0, 10.0), tolerance=0.25)[0].status == C.REPRODUCED
    doc = _mini(**{"comparisons.0.higher_is_better": False})
    assert C.check(C.parse_claims(doc), _pair(30.0, 10.0))[0].status == C.NOT_REPRODUCED


def test_not_measurable_without_a_pair() -> None:
    (v,) = C.check(C.parse_claims(MINI), [_meas("fps", 20.0, model="yolov5s", variant="pruned-quantized")])
    assert v.status == C.NOT_MEASURABLE and v.reason == "needs both runs" and v.measured is None


def test_pairs_must_share_hardware_and_same_fields() -> None:
    reg = C.parse_claims(MINI)
    ms = [_meas("fps", 20.0, model="yolov5s", variant="pruned-quantized", hardware="cpu A"),
          _meas("fps", 10.0, model="yolov5s", variant="dense", hardware="cpu B")]
    assert C.check(reg, ms)[0].status == C.NOT_MEASURABLE
    ms = [_meas("fps", 20.0, model="yolov5s", variant="pruned-quantized"),
          _meas("fps", 10.0, model="yolov5n", variant="dense")]
    assert C.check(reg, ms)[0].status == C.NOT_MEASURABLE  # same: [model]


def test_proxy_is_labelled_and_can_be_refused() -> None:
    reg = C.parse_claims(MINI)
    (v,) = C.check(reg, _pair(20.0, 10.0, model="yolov5n"))
    assert v.status == C.REPRODUCED and v.proxy
    assert "model yolov5n (claim: yolov5s)" in v.text
    # the exact model is preferred over the proxy when both exist
    (v,) = C.check(reg, _pair(40.0, 10.0, model="yolov5n") + _pair(20.0, 10.0))
    assert not v.proxy and v.measured == pytest.approx(2.0)
    refused = C.parse_claims(_mini(**{"comparisons.0.allow_proxy": False}))
    (v,) = C.check(refused, _pair(20.0, 10.0, model="yolov5n"))
    assert v.status == C.NOT_MEASURABLE and "proxy" in v.reason and v.measured == pytest.approx(2.0)


def test_core_counts_are_reported() -> None:
    (v,) = C.check(C.parse_claims(MINI), _pair(20.0, 10.0, cores=2))
    assert v.conditions == "cores 2/2 (claim: 4/4)" and not v.proxy


def test_null_claim_is_not_measurable() -> None:
    doc = _mini(**{"claims.0.value": None, "claims.0.note": "not found in stored copies (image)"})
    (v,) = C.check(C.parse_claims(doc), _pair(20.0, 10.0))
    assert v.status == C.NOT_MEASURABLE and "image" in v.reason


def test_claimed_range() -> None:
    doc = copy.deepcopy(MINI)
    doc["claims"].append({"id": "range", "source": "s", "metric": "speedup", "value": 6, "value_high": 7, "unit": "x"})
    doc["comparisons"][0] = {**doc["comparisons"][0], "claim": "range"}
    del doc["comparisons"][0]["numerator"], doc["comparisons"][0]["denominator"]
    reg = C.parse_claims(doc)
    assert C.check(reg, _pair(75.0, 10.0))[0].status == C.REPRODUCED  # 7.5 <= 7 * 1.15
    assert C.check(reg, _pair(52.0, 10.0))[0].status == C.REPRODUCED  # 5.2 >= 6 * 0.85
    assert C.check(reg, _pair(90.0, 10.0))[0].status == C.EXCEEDED
    assert C.check(reg, _pair(40.0, 10.0))[0].status == C.NOT_REPRODUCED


def test_map_difference_in_points() -> None:
    doc = copy.deepcopy(MINI)
    doc["claims"] += [
        {"id": "pq_map", "source": "s", "metric": "map50", "value": 0.623, "unit": "fraction", "dataset": "coco"},
        {"id": "base_map", "source": "s", "metric": "map50", "value": 0.654, "unit": "fraction", "dataset": "coco"},
    ]
    doc["comparisons"] = [{
        "id": "drop", "title": "mAP drop", "kind": "difference", "numerator": "pq_map", "denominator": "base_map",
        "select": {"numerator": {"metric": "map50", "variant": "pruned-quantized", "dataset": ["coco", "pistols"]},
                   "denominator": {"metric": "map50", "variant": "dense", "dataset": ["coco", "pistols"]}},
        "same": ["dataset"], "allow_proxy": False, "unmeasurable_reason": "COCO is not available offline"}]
    reg = C.parse_claims(doc)
    coco = [_meas("map50", 0.60, variant="pruned-quantized", dataset="coco"),
            _meas("map50", 0.64, variant="dense", dataset="coco")]
    (v,) = C.check(reg, coco)
    assert v.unit == "points" and v.claimed == pytest.approx(-3.1) and v.measured == pytest.approx(-4.0)
    assert v.status == C.REPRODUCED  # within 1 point
    coco[0] = _meas("map50", 0.58, variant="pruned-quantized", dataset="coco")
    assert C.check(reg, coco)[0].status == C.NOT_REPRODUCED
    pistols = [_meas("map50", 0.90, variant="pruned-quantized", dataset="pistols"),
               _meas("map50", 0.91, variant="dense", dataset="pistols")]
    (v,) = C.check(reg, pistols)
    assert v.status == C.NOT_MEASURABLE and "COCO" in v.reason and v.proxy


def test_absolute_fps_is_never_compared_across_hardware(registry: C.Claims) -> None:
    ms = [_meas("fps", 50.0, model="yolov5n", variant="pruned-quantized-hardswish", engine="deepsparse",
                hardware="Xeon (2 cores)")]
    v = {x.comparison_id: x for x in C.check(registry, ms)}["dnth_abs_yolov5n_fps"]
    assert v.status == C.NOT_MEASURABLE and v.measured == 50.0
    assert "depends on the hardware" in v.reason and "Xeon (2 cores)" in v.reason


def test_absolute_sparsity_is_judged() -> None:
    doc = copy.deepcopy(MINI)
    doc["claims"].append({"id": "sp", "source": "s", "metric": "sparsity", "value": 0.8, "unit": "fraction"})
    doc["comparisons"] = [{"id": "sp", "title": "sparsity", "kind": "absolute", "numerator": "sp",
                           "select": {"numerator": {"metric": "sparsity"}}}]
    reg = C.parse_claims(doc)
    assert C.check(reg, [_meas("sparsity", 0.75)])[0].status == C.REPRODUCED
    assert C.check(reg, [_meas("sparsity", 0.5)])[0].status == C.NOT_REPRODUCED


def test_check_needs_comparisons() -> None:
    reg = C.parse_claims(MINI)
    with pytest.raises(ClaimsError, match="comparisons"):
        C.check(list(reg), [])
    with pytest.raises(ClaimsError, match="tolerance"):
        C.check(reg, [], tolerance=15)


# --- loading measurements ------------------------------------------------------------------


def _write(tmp_path: Path, name: str, payload) -> Path:
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def test_benchmark_results_as_written_by_yolotut_benchmark(tmp_path: Path) -> None:
    from yolotut.inference.benchmark import BenchmarkResult, save_results

    hw = {"cpu_model": "Intel Xeon", "physical_cores": 2}
    runs = [
        BenchmarkResult(model="runs/yolov5n-dense/weights/best.onnx", engine="deepsparse", batch_size=1, cores=2,
                        imgsz=416, items_per_sec=61.0, latency_ms_median=16.0, hardware=hw),
        BenchmarkResult(model="x/yolov5n-sgd-pruned-quantized-hardswish/weights/best.onnx", engine="deepsparse",
                        batch_size=1, cores=2, imgsz=416, items_per_sec=190.0, latency_ms_median=5.0, hardware=hw),
        BenchmarkResult(model="yolov5n.pt", engine="pytorch", batch_size=1, cores=2, skipped="needs a CUDA GPU"),
    ]
    path = tmp_path / "bench.json"
    save_results(runs, path)
    ms = C.load_measurements(path)
    assert {(m.variant, m.metric) for m in ms} == {
        ("dense", "items_per_sec"), ("dense", "latency_ms"),
        ("pruned-quantized-hardswish", "items_per_sec"), ("pruned-quantized-hardswish", "latency_ms"),
    }
    m = next(m for m in ms if m.variant == "dense" and m.metric == "items_per_sec")
    assert (m.model, m.engine, m.cores, m.batch_size, m.imgsz, m.measurement) == (
        "yolov5n", "deepsparse", 2, 1, 416, "engine-only")
    assert m.hardware == "Intel Xeon (2 cores)" and m.value == 61.0 and m.source == str(path)


def test_video_result_as_written_by_yolotut_video(tmp_path: Path) -> None:
    from yolotut.inference.video import VideoResult

    res = VideoResult(source="demo.mp4", frames=100, seconds=2.0, fps=50.0, fps_pipeline=70.0, stage_ms={},
                      width=640, height=360, source_fps=25.0, detections=3,
                      engine_info={"engine": "deepsparse", "model": "m/yolov5n-pruned-quantized/best.onnx",
                                   "cores": 2, "imgsz": 416, "batch_size": 1, "versions": {"deepsparse": "1.8.0"}})
    data = {**res.to_dict(), "fps_peak": 88.0, "variant": "pruned-quantized-hardswish"}
    (fps, peak) = sorted(C.load_measurements(_write(tmp_path, "video.json", data)), key=lambda m: m.metric)
    assert (fps.metric, fps.value, peak.metric, peak.value) == ("fps", 50.0, "fps_peak", 88.0)
    assert fps.variant == "pruned-quantized-hardswish"  # an explicit key beats the file name
    assert (fps.engine, fps.model, fps.cores, fps.measurement) == ("deepsparse", "yolov5n", 2, "end-to-end-video")


def test_evaluation_and_manifest_shapes(tmp_path: Path) -> None:
    ev = {"map50": 0.91, "map50_95": 0.6, "dataset": "pistols", "per_class": {"pistol": {"ap50": 0.91}},
          "engine_info": {"engine": "onnxruntime", "model": "runs/yolov5n-pruned/weights/best.onnx", "imgsz": 416}}
    manifest = {"name": "export", "hardware": "box", "models": [
        {"model": "yolov5n", "variant": "dense", "file_size_mb": 7.6, "sparsity": 0.0},
        {"model": "yolov5n", "variant": "pruned-quantized", "file_size_bytes": 2_000_000, "sparsity": 0.71},
        {"note": "metadata only"},
    ]}
    ms = C.load_measurements([_write(tmp_path, "eval.json", ev), _write(tmp_path, "manifest.json", manifest)])
    got = {(m.variant, m.metric): m.value for m in ms}
    assert got == {("pruned", "map50"): 0.91, ("pruned", "map50_95"): 0.6, ("dense", "file_size_mb"): 7.6,
                   ("dense", "sparsity"): 0.0, ("pruned-quantized", "file_size_mb"): 2.0,
                   ("pruned-quantized", "sparsity"): 0.71}
    assert {m.hardware for m in ms if m.source.endswith("manifest.json")} == {"box"}
    assert len({m.id for m in ms}) == len(ms)


def test_folders_are_searched(tmp_path: Path) -> None:
    sub = tmp_path / "a"
    sub.mkdir()
    _write(sub, "x.json", {"fps": 3.0})
    assert [m.value for m in C.load_measurements(tmp_path)] == [3.0]
    with pytest.raises(ClaimsError, match="no \\*.json"):
        C.load_measurements(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else None)


@pytest.mark.parametrize(
    "payload,fragment",
    [
        ("{not json", "not valid JSON"),
        ('"just a string"', "top level must be"),
        ({"fps": "fast"}, "'fps' must be a finite number"),
        ({"map50": 91.0}, "fraction in [0, 1]"),
        ({"items_per_sec": -2}, "must be positive"),
        ({"cores": "two", "fps": 3.0}, "'cores' must be an integer"),
        ({"measurement": "stopwatch", "fps": 3.0}, "measurement 'stopwatch'"),
        ({"hello": 1}, "no measurement found"),
        ([1, 2], "record 0 is a int"),
    ],
)
def test_garbage_result_files_fail_naming_the_file(tmp_path: Path, payload, fragment: str) -> None:
    path = _write(tmp_path, "bad.json", payload)
    with pytest.raises(ClaimsError) as err:
        C.load_measurements(path)
    assert str(path) in str(err.value) and fragment in str(err.value)


def test_missing_result_file(tmp_path: Path) -> None:
    with pytest.raises(ClaimsError, match="result file not found"):
        C.load_measurements(tmp_path / "none.json")


def test_all_skipped_file_is_not_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "gpu.json", [{"engine": "pytorch", "skipped": "needs a CUDA GPU", "items_per_sec": None}])
    assert C.load_measurements(path) == []


@pytest.mark.parametrize(
    "name,expected",
    [
        ("yolov5n-sgd-pruned-quantized-hardswish/weights/best.onnx", ("yolov5n", "pruned-quantized-hardswish")),
        ("yolov5n-sgd-pruned-quantized/weights/best.onnx", ("yolov5n", "pruned-quantized")),
        ("yolov5s-sgd-one-shot/weights/checkpoint-one-shot.onnx", ("yolov5s", "one-shot-quantized")),
        ("yolov5s-sgd-pruned-quantized-transfer/weights/best.onnx", ("yolov5s", "sparse-transfer")),
        ("yolov5s-sgd-quantized/weights/best.onnx", ("yolov5s", "quantized")),
        ("companion/yolov5-train/yolov5n.pt", ("yolov5n", "dense")),
        ("yolov5s-sgd/weights/best.pt", ("yolov5s", None)),
        ("model.onnx", (None, None)),
    ],
)
def test_infer_model_variant(name: str, expected: tuple) -> None:
    assert C.infer_model_variant(name) == expected


# --- rendering and figures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_verdicts(registry: C.Claims) -> list[C.Verdict]:
    hw = "Xeon (2 cores)"
    ms = [
        _meas("fps", 20.0, model="yolov5n", variant="dense", engine="pytorch", cores=2, imgsz=416, batch_size=1, hardware=hw),
        _meas("fps", 30.0, model="yolov5n", variant="dense", engine="deepsparse", cores=2, imgsz=416, batch_size=1, hardware=hw),
        _meas("fps", 45.0, model="yolov5n", variant="pruned-quantized-hardswish", engine="deepsparse", cores=2,
              imgsz=416, batch_size=1, hardware=hw),
        _meas("sparsity", 0.7, model="yolov5n", variant="pruned-quantized"),
    ]
    return C.check(registry, ms)


def test_markdown_has_a_row_per_verdict(sample_verdicts: list[C.Verdict]) -> None:
    md = C.verdicts_to_markdown(sample_verdicts)
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith(("| Comparison", "| ---"))]
    assert len(rows) == len(sample_verdicts)
    assert all(line.count(" | ") == 5 for line in rows)  # pipes inside cells are escaped
    assert "**reproduced**" in md and "**not measurable here**" in md
    assert "1.50x (proxy)" in md  # dense DeepSparse / PyTorch = 30 / 20


def test_html_is_self_contained(sample_verdicts: list[C.Verdict]) -> None:
    fig = plots.verdict_figure(sample_verdicts)
    page = C.verdicts_to_html(sample_verdicts, {"Claimed vs measured": fig, "again": fig})
    assert page.startswith("<!DOCTYPE html>") and page.count("<tr>") == len(sample_verdicts) + 1
    assert not re.findall(r"<script[^>]*\bsrc=", page)  # nothing fetched: works offline
    assert page.count("plotly.js v") == 1  # the library is embedded once
    assert "Dense model: DeepSparse vs PyTorch CPU" in page


def test_json_object(sample_verdicts: list[C.Verdict]) -> None:
    obj = json.loads(json.dumps(C.verdicts_to_json(sample_verdicts)))
    assert len(obj["verdicts"]) == len(sample_verdicts) and sum(obj["counts"].values()) == len(sample_verdicts)


def test_verdict_figure(sample_verdicts: list[C.Verdict]) -> None:
    fig = plots.verdict_figure(sample_verdicts)
    assert isinstance(fig, go.Figure)
    names = {t.name for t in fig.data}
    assert "claimed" in names and "measured: reproduced" in names
    claimed_bars = sum(len(t.x) for t in fig.data if t.name == "claimed")
    assert claimed_bars == sum(v.claimed is not None for v in sample_verdicts)


def test_speed_vs_map_and_engine_bars() -> None:
    entries = [
        {"label": "v5n dense", "engine": "onnxruntime", "items_per_sec": 30.0, "map50": 0.9},
        {"model": "yolov5n", "variant": "pq", "engine": "deepsparse", "items_per_sec": 120.0, "map50": 0.88},
    ]
    fig = plots.speed_vs_map_figure(entries)
    assert len(fig.data) == 2 and list(fig.data[1].x) == [120.0] and list(fig.data[1].text) == ["yolov5n pq"]
    with pytest.raises(ValueError, match="mix speed units"):
        plots.speed_vs_map_figure(entries + [{"engine": "x", "fps": 10.0, "map50": 0.5}])
    with pytest.raises(ValueError, match="needs a speed"):
        plots.speed_vs_map_figure([{"engine": "x", "map50": 0.5}])
    bars = plots.engine_bar_figure(entries + [{"engine": "pytorch", "model": "m", "items_per_sec": None}])
    assert [t.name for t in bars.data] == ["onnxruntime", "deepsparse"]


# --- command line ------------------------------------------------------------------------------


def test_cli_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from yolotut.cli import main

    res = _write(tmp_path, "video.json", [
        {"fps": 20.0, "engine": "pytorch", "model": "yolov5n.pt", "cores": 2, "imgsz": 416, "batch_size": 1},
        {"fps": 30.0, "engine": "deepsparse", "model": "yolov5n.onnx", "cores": 2, "imgsz": 416, "batch_size": 1},
    ])
    md, page = tmp_path / "out" / "v.md", tmp_path / "out" / "v.html"
    assert main(["check", str(res), "--claims", str(REGISTRY), "--markdown", str(md), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| Comparison") and md.read_text() in out and page.stat().st_size > 0
    assert main(["check", str(res), "--json"]) == 0
    obj = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    v = {x["comparison_id"]: x for x in obj["verdicts"]}["dnth_deepsparse_dense_vs_pytorch"]
    assert v["measured"] == pytest.approx(1.5) and v["status"] == "reproduced"


def test_cli_check_bad_file_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from yolotut.cli import main

    bad = _write(tmp_path, "bad.json", "{")
    assert main(["check", str(bad)]) == 2
    assert "bad.json" in capsys.readouterr().err
