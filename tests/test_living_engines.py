"""The engine x quantization study: which setups it builds, how it measures, what it reports.

A synthetic payload stands in for measurements (no timing is asserted); one test runs
the interleaved rounds on stand-in engines to check the bookkeeping.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from yolotut.inference.engines import Engine
from yolotut.inference.quiet import QuietPolicy
from yolotut.reproduce import living_engines
from yolotut.reproduce.living_engines import Setup, StudyModel, setups_for


def _models() -> dict[str, StudyModel]:
    return {
        "dense-fp32": StudyModel("dense-fp32", "d.onnx", "fp32", "ours"),
        "dense-nncf-int8": StudyModel("dense-nncf-int8", "d.xml", "nncf", "ours"),
        "author-qat-int8": StudyModel("author-qat-int8", "a.onnx", "sparseml-qat", "author", ("pistol",)),
    }


def test_setups_cover_every_engine_that_runs_the_format() -> None:
    setups = setups_for(_models(), cpu={"avx512_bf16": False, "amx": False})
    by_model: dict[str, list[str]] = {}
    for s in setups:
        by_model.setdefault(s.model, []).append(s.engine)
    assert by_model == {"dense-fp32": ["onnxruntime", "deepsparse", "openvino"], "dense-nncf-int8": ["openvino"],
                        "author-qat-int8": ["onnxruntime", "deepsparse", "openvino"]}
    assert all(dict(s.options) == {"precision_hint": "f32"} for s in setups if s.engine == "openvino")
    # Where OpenVINO's own default is bf16, float models are measured with it too.
    bf16 = setups_for(_models(), cpu={"avx512_bf16": True})
    extra = [s for s in bf16 if s not in setups]
    assert extra == [Setup("dense-fp32", "openvino", (("precision_hint", "default"),))]
    assert extra[0].label == "dense-fp32 · openvino (default)"



def test_sparseml_files_are_also_studied_as_qdq_rewrites_on_openvino(tmp_path: Path, mirror: Path) -> None:
    from yolotut.reproduce.living_engines import study_models

    models = study_models(tmp_path / "dense.onnx", ort_qdq=tmp_path / "ort.onnx", network="ours", qdq_dir=tmp_path / "qdq")
    rewrite = models["author-qat-int8-qdq"]
    assert rewrite.quantization == "sparseml-qat-qdq" and rewrite.names == ("pistol",)
    assert Path(rewrite.path) == tmp_path / "qdq" / "author-qat-int8-qdq.onnx" and Path(rewrite.path).is_file()
    qdq_setups = [s for s in setups_for(models, cpu={}) if s.model == "author-qat-int8-qdq"]
    assert qdq_setups == [Setup("author-qat-int8-qdq", "openvino", (("precision_hint", "f32"),))]
    assert "dense-fp32-qdq" not in models  # only INT8 files written by SparseML are rewritten
    # ONNX Runtime's own QDQ file is no rewrite: every engine still runs it
    assert [s.engine for s in setups_for(models, cpu={}) if s.model == "dense-ort-int8"] == ["onnxruntime", "deepsparse", "openvino"]

def _row(model: str, network: str, quantization: str, engine: str, b1: float, b8: float | None, map50: float | None, **extra) -> dict:
    speed = {"1": {"items_per_sec_median": b1, "items_per_sec_min": b1 * 0.9, "items_per_sec_max": b1 * 1.1, "engine_info": extra.pop("info", {})}}
    speed["8"] = {"skipped": "no"} if b8 is None else {"items_per_sec_median": b8, "items_per_sec_min": b8, "items_per_sec_max": b8}
    return {"label": f"{model} · {engine}", "model": model, "network": network, "path": "x", "quantization": quantization,
            "engine": engine, "options": {"precision_hint": "f32"} if engine == "openvino" else {}, "speed": speed,
            "map50": map50, "map50_95": None if map50 is None else map50 / 2, **extra}


@pytest.fixture
def payload() -> dict:
    rows = [
        _row("dense-fp32", "ours", "fp32", "deepsparse", 80, 90, 0.80, info={"fraction_of_supported_ops": 1.0}),
        _row("dense-fp32", "ours", "fp32", "onnxruntime", 70, 85, 0.80),
        _row("dense-fp32", "ours", "fp32", "openvino", 60, 95, 0.80, info={"int8_compute_fraction": 0.0, "precision_hint": "f32", "num_streams": 1}),
        _row("dense-nncf-int8", "ours", "nncf", "openvino", 100, 150, 0.795, info={"int8_compute_fraction": 0.95, "precision_hint": "f32", "num_streams": 1}),
        _row("dense-ort-int8", "ours", "ort-qdq", "onnxruntime", 90, 120, 0.75),
        _row("dense-ort-int8", "ours", "ort-qdq", "deepsparse", 1, None, None, skipped="DeepSparse compiles 0%"),
        _row("author-qat-int8", "author", "sparseml-qat", "deepsparse", 250, 300, 0.90),
        _row("author-qat-int8", "author", "sparseml-qat", "openvino", 75, 80, 0.905),
    ]
    rows[5]["speed"]["1"] = {"skipped": "DeepSparse compiles 0%"}
    return {"hardware": {"cpu_model": "test CPU", "cores_available": 2, "avx2": True}, "versions": {"openvino": "2026.4.1"},
            "settings": {"batch_sizes": [1, 8], "rounds": 3}, "rows": rows}


def test_table_rows_are_ordered_and_say_what_ran(payload: dict) -> None:
    rows = living_engines.table_rows(payload)
    assert [(r["network"], r["engine_name"]) for r in rows[:2]] == [("author", "deepsparse"), ("author", "openvino")]
    ours = [r["quantization"] for r in rows if r["network"] == "ours"]
    assert ours == sorted(ours, key=list(living_engines.QUANTIZATIONS.values()).index)
    nncf = next(r for r in rows if r["quantization"] == "NNCF post-training INT8")
    assert nncf["what ran"] == "OpenVINO: 95% of convs INT8, precision hint f32, 1 stream(s)" and nncf["items_per_sec_b8"] == 150
    skipped = next(r for r in rows if r["engine_name"] == "deepsparse" and r["map50"] is None)
    assert "b1 skipped: DeepSparse compiles 0%" in skipped["what ran"] and "mAP skipped" in skipped["what ran"]
    cells = living_engines.markdown_cells(payload)
    assert cells[0][3:5] == ["items/s batch 1 (median, min-max)", "items/s batch 8 (median, min-max)"]
    nncf_cells = next(c for c in cells if c[1] == "NNCF post-training INT8")
    assert nncf_cells[:7] == ["ours", "NNCF post-training INT8", "openvino", "100.0 (90.0-110.0)", "150.0 (150.0-150.0)", "0.795", "0.398"]


def test_recommendations_follow_from_the_rows(payload: dict) -> None:
    advice = living_engines.recommendations(payload, map_tolerance=0.01)
    values = list(advice.values())
    # Fastest accurate setup anywhere: the author's model in DeepSparse.
    assert values[0].startswith("SparseML QAT INT8 on deepsparse (author): 250 items/s")
    # Maintained only: the author's SparseML file does not count; NNCF on OpenVINO is fastest.
    assert values[1].startswith("NNCF post-training INT8 on openvino (ours): 100 items/s") and "0.40x" in values[1]
    assert values[2].startswith("NNCF post-training INT8 on openvino (ours): 150 items/s")
    assert advice["INT8 without training, maintained tools (ours)"] == (
        "NNCF post-training INT8 on openvino: 1.25x the fastest fp32 setup (deepsparse), mAP@0.5 0.795 against 0.800")
    assert "the fastest maintained engine (openvino) at 75 (0.30x)" in advice["a SparseML INT8 file you already have (author)"]
    # Stricter accuracy: NNCF (0.5 points below fp32) no longer qualifies.
    strict = living_engines.recommendations(payload, map_tolerance=0.001)
    assert list(strict.values())[1].startswith("none (fp32) on onnxruntime (ours): 70 items/s")


def test_figure_has_one_marker_per_measured_setup_and_batch(payload: dict) -> None:
    fig = living_engines.figure(payload)
    assert len(fig.data) == 7 + 7  # the 7 rows with an mAP, in both batch panels
    assert fig.data[0].name == "SparseML QAT INT8 · deepsparse" and fig.data[0].marker.color == "#6f42c1"  # as in every chart
    assert [t.showlegend for t in fig.data] == [True] * 7 + [False] * 7


def test_report_shows_the_newest_study(payload: dict, tmp_path: Path) -> None:
    from yolotut.reproduce import report
    from yolotut.reproduce.results import write_results

    write_results(tmp_path / "old", "living_engines", {**payload, "rows": payload["rows"][:1]})
    write_results(tmp_path / "new", "living_engines", payload)
    sections: list = []
    figures: dict = {}
    report.add_living_engines(tmp_path, sections, figures)
    (title, table), (advice_title, advice) = sections
    assert advice[0] == ["use case", "recommendation"] and len(advice) > 2
    assert "new/living_engines.json" in title and "openvino 2026.4.1" in title and "flags: avx2" in title
    assert len(table) == 1 + len(payload["rows"]) and advice_title.startswith("What to use now")
    assert list(figures) == ["Engines x quantization: speed vs mAP"]
    empty: list = []
    report.add_living_engines(tmp_path / "nothing", empty, {})
    assert empty == []


class _CountingEngine(Engine):
    name = "onnxruntime"

    def __init__(self, batch_size: int) -> None:
        super().__init__("m.onnx", batch_size, 32, "float32", ["a"])
        self.calls = 0

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.zeros((batch.shape[0], 3, 6), np.float32)

    def _engine_info(self) -> dict:
        return {"cores": 1}


def test_measure_speed_interleaves_rounds_and_records_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    built: dict[str, _CountingEngine] = {}

    def fake_create_engine(path, engine, batch_size, **_):
        if engine == "deepsparse":
            from yolotut.inference.engines import EngineUnavailableError

            raise EngineUnavailableError("not on this CPU")
        built[path] = _CountingEngine(batch_size)
        return built[path]

    monkeypatch.setattr(living_engines, "create_engine", fake_create_engine)
    models = {"a": StudyModel("a", "a.onnx", "fp32", "n"), "b": StudyModel("b", "b.onnx", "fp32", "n")}
    setups = [Setup("a", "onnxruntime"), Setup("b", "onnxruntime"), Setup("a", "deepsparse")]
    out = living_engines.measure_speed(setups, models, batch_size=2, rounds=3, warmup=1, iterations=4,
                                       quiet=QuietPolicy(threshold=10.0, max_wait=0.0, max_tries=1), progress=False)
    assert out["a · deepsparse"] == {"batch_size": 2, "skipped": "not on this CPU"}
    for label in ("a · onnxruntime", "b · onnxruntime"):
        row = out[label]
        assert len(row["items_per_sec_rounds"]) == 3 and row["items_per_sec_min"] <= row["items_per_sec_median"] <= row["items_per_sec_max"]
        assert row["batch_size"] == 2 and row["engine_info"]["engine"] == "onnxruntime"
    assert built["a.onnx"].calls == built["b.onnx"].calls == 1 + 3 * (1 + 4)  # a first run, then 3 rounds


def test_result_records_feed_the_report_but_no_claim(payload: dict, tmp_path: Path) -> None:
    from yolotut.reproduce import claims, report
    from yolotut.reproduce.results import write_results

    payload["models"] = {r["model"]: {"quantization": r["quantization"]} for r in payload["rows"]}
    records = living_engines.result_records(payload, arch="yolov5s")
    speeds = [r for r in records if "items_per_sec" in r]
    assert len(speeds) == 7 + 7  # both batch sizes of every row but the skipped DeepSparse one
    nncf = next(r for r in speeds if r["id"] == "09-dense-nncf-int8-openvino-b1")
    assert (nncf["arch"], nncf["variant"], nncf["precision"], nncf["items_per_sec"]) == ("yolov5s", "living-dense-nncf-int8", "int8", 100)
    assert next(r for r in records if r["id"] == "09-author-qat-int8-deepsparse-map")["arch"] == "yolov5n"
    write_results(tmp_path, "09_living_engines", {"profile": "quick", "measurements": records})
    measured = claims.load_measurements(tmp_path)
    assert {m.variant for m in measured} == {f"living-{key}" for key in payload["models"]}
    assert {m.metric for m in measured} == {"items_per_sec", "map50", "map50_95"}
    engines = {row["engine"] for row in report.engine_rows(report.load_records(tmp_path), batch_size=1)}
    assert engines == {"deepsparse", "onnxruntime", "openvino"}
