"""The notebook runner (papermill), the model manifest, result files and the report."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from yolotut.reproduce import claims, profiles, runner
from yolotut.reproduce import results as store
from yolotut.reproduce.report import build_report


def _notebook(path: Path, *sources: str) -> Path:
    params = new_code_cell('profile = "quick"\nresults_dir = "r"\nmodels_dir = "m"\nmanifest_path = "x.json"')
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, *(new_code_cell(s) for s in sources)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


# --- running notebooks -----------------------------------------------------------------------


def test_failing_notebook_names_notebook_cell_and_executed_copy(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    # The first notebook succeeds and proves the parameters reach the kernel (cwd = nbs/).
    _notebook(nbs / "01_ok.ipynb",
              "import pathlib, json\npathlib.Path('seen.json').write_text(json.dumps([profile, results_dir]))")
    _notebook(nbs / "02_broken.ipynb", "x = 1", "def f():\n    raise ValueError('boom in the second cell')\nf()")
    _notebook(nbs / "03_never.ipynb", "open('never-ran', 'w').close()")
    out = tmp_path / "out"

    with pytest.raises(runner.NotebookFailedError) as info:
        runner.reproduce("quick", output_dir=out, notebooks_dir=nbs, build_report=False, progress=False)

    err = info.value
    message = str(err)
    assert "02_broken.ipynb" in message
    assert err.cell_index == 3  # parameters, injected parameters, "x = 1", the failing cell
    assert "ValueError" in message and "boom in the second cell" in message
    assert "def f():" in message  # the cell's first line, to find it
    assert str(out / "notebooks" / "02_broken.ipynb") in message
    assert err.executed.exists()
    assert not (nbs / "never-ran").exists()  # the run stopped at the failure
    assert json.loads((nbs / "seen.json").read_text()) == ["quick", str(out.resolve() / "results")]
    times = {n["name"]: n for n in store.load_manifest(out / "manifest.json")["notebooks"]}
    assert times["01_ok"]["status"] == "ok" and times["01_ok"]["seconds"] > 0
    assert times["02_broken"]["status"] == "failed" and times["02_broken"]["seconds"] is None


def test_list_notebooks_only_and_unknown(tmp_path: Path) -> None:
    for name in ("01_a.ipynb", "02_b.ipynb", "10_c.ipynb", "_build.ipynb", "notes.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in runner.list_notebooks(tmp_path)] == ["01_a.ipynb", "02_b.ipynb", "10_c.ipynb"]
    assert [p.name for p in runner.list_notebooks(tmp_path, ["02", "10_c"])] == ["02_b.ipynb", "10_c.ipynb"]
    with pytest.raises(ValueError, match="--only 07.*01_a"):
        runner.list_notebooks(tmp_path, ["07"])
    with pytest.raises(FileNotFoundError, match="no notebooks folder"):
        runner.list_notebooks(tmp_path / "missing")


def test_repository_notebooks_are_found_in_order() -> None:
    names = [p.stem for p in runner.list_notebooks()]
    assert names[0] == "01_baseline" and names[-1] == "11_reproduction_report" and len(names) == len(set(names))


def test_parameters_and_profiles(tmp_path: Path) -> None:
    params = runner.notebook_parameters("full", tmp_path / "o")
    assert params == {
        "profile": "full",
        "results_dir": str((tmp_path / "o" / "results").resolve()),
        "models_dir": str((tmp_path / "o" / "models").resolve()),
        "manifest_path": str((tmp_path / "o" / "manifest.json").resolve()),
    }
    with pytest.raises(ValueError, match="unknown profile 'slow'"):
        runner.notebook_parameters("slow", tmp_path)


def test_kernel_resolves_to_this_interpreter() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    name = runner.resolve_kernel()
    spec = KernelSpecManager().get_kernel_spec(name)
    assert spec.language == "python"
    # "python" is replaced by sys.executable when jupyter_client starts the kernel.
    assert spec.argv[0] in {"python", "python3"} or Path(spec.argv[0]).resolve() == Path(__import__("sys").executable).resolve()


def test_profile_settings_apply_overrides_and_reject_unknown() -> None:
    cfg = profiles.profile_settings("quick", epochs=None, steps=2)
    assert (cfg.epochs, cfg.steps) == (profiles.SETTINGS["epochs"][0], 2)
    assert profiles.profile_settings("full").epochs == profiles.SETTINGS["epochs"][1]
    # A notebook's own departure from the table wins over the common row.
    assert profiles.profile_settings("quick", "05_pruning_quantization").epochs == 2
    with pytest.raises(ValueError, match="unknown settings"):
        profiles.profile_settings("quick", epoch=3)
    with pytest.raises(ValueError, match="profile must be one of"):
        profiles.profile_settings("medium")


def test_profile_table_lists_every_setting_and_departure() -> None:
    rows = profiles.profile_table()
    names = [row["setting"] for row in rows]
    assert set(profiles.SETTINGS) <= set(names)
    assert "epochs (05_pruning_quantization)" in names
    assert all(row["meaning"] for row in rows)



# --- manifest ----------------------------------------------------------------------------------


def test_record_model_writes_replaces_and_validates(tmp_path: Path) -> None:
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x" * 2000)
    manifest = tmp_path / "out" / "manifest.json"
    store.record_model("dense", onnx, 0.0, "fp32", model="yolov5s", manifest_path=manifest, imgsz=416)
    store.record_model("dense", onnx, 0.0, "fp32", map50=0.5, model="yolov5n", manifest_path=manifest)
    entry = store.record_model("dense", onnx, 0.1, "fp32", map50=0.25, model="yolov5s", manifest_path=manifest)
    models = store.load_manifest(manifest)["models"]
    assert [(m["model"], m["variant"]) for m in models] == [("yolov5n", "dense"), ("yolov5s", "dense")]
    assert models[-1] == entry and entry["map50"] == 0.25 and entry["file_size_mb"] == pytest.approx(0.002)
    assert entry["onnx"] == str(onnx.resolve())

    with pytest.raises(ValueError, match="sparsity must be a fraction"):
        store.record_model("x", onnx, 75.0, "int8", manifest_path=manifest)
    with pytest.raises(ValueError, match="precision must be one of"):
        store.record_model("x", onnx, 0.5, "fp16", manifest_path=manifest)
    with pytest.raises(ValueError, match="map50 must be a fraction"):
        store.record_model("x", onnx, 0.5, "int8", map50=52.0, manifest_path=manifest)
    with pytest.raises(FileNotFoundError, match="export the model first"):
        store.record_model("x", tmp_path / "missing.onnx", 0.5, "int8", manifest_path=manifest)

    onnx.unlink()
    assert store.manifest_models(manifest) == []  # entries whose file is gone are not offered


def test_bad_manifest_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "manifest.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON.*delete it"):
        store.load_manifest(bad)
    bad.write_text('{"models": []}')
    with pytest.raises(ValueError, match="not a yolotut manifest"):
        store.load_manifest(bad)


def test_require_names_the_producing_notebook(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run notebook 01_baseline first"):
        store.require(tmp_path / "yolov5s-dense.pt", "01_baseline")


# --- results and the report -------------------------------------------------------------------------


def _benchmark(engine: str, items: float, variant_model: str, batch: int = 1) -> dict:
    return {"model": f"/x/{variant_model}.onnx", "engine": engine, "batch_size": batch, "cores": 2, "imgsz": 416,
            "items_per_sec": items, "latency_ms_mean": 1000 * batch / items, "latencies_ms": [1.0],
            "hardware": {"cpu_model": "Test CPU", "physical_cores": 2}}


def _write_fake_results(results: Path) -> None:
    dense = dict(arch="yolov5s", variant="dense", precision="fp32", dataset="pistols")
    pq = dict(arch="yolov5s", variant="pruned-quantized", precision="int8", dataset="pistols")
    store.write_results(results, "02_dense", {"profile": "quick", "measurements": [
        store.labelled(_benchmark("onnxruntime", 10.0, "a"), id="ort", **dense),
        store.labelled(_benchmark("deepsparse", 30.0, "a"), id="ds", **dense),
        store.labelled({"map50": 0.5, "map50_95": 0.3, "engine_info": {"engine": "deepsparse", "imgsz": 416}}, id="m1", **dense),
        store.labelled({"model": "x", "engine": "deepsparse", "batch_size": 1, "skipped": "no VNNI"}, id="skip", **dense),
    ]})
    store.write_results(results, "05_pq", {"profile": "quick", "measurements": [
        store.labelled(_benchmark("deepsparse", 90.0, "b"), id="ds-pq", **pq),
        store.labelled({"map50": 0.48, "engine_info": {"engine": "deepsparse", "imgsz": 416}}, id="m2", **pq),
    ]})


def test_labelled_results_are_read_by_the_claims_checker(tmp_path: Path) -> None:
    _write_fake_results(tmp_path)
    ms = claims.load_measurements(tmp_path)
    by_id = {m.id: m for m in ms}
    ds = by_id["ds:items_per_sec"]
    # explicit arch/variant win over the file name ("/x/a.onnx" says nothing)
    assert (ds.model, ds.variant, ds.engine, ds.batch_size, ds.cores, ds.measurement) == (
        "yolov5s", "dense", "deepsparse", 1, 2, "engine-only")
    assert by_id["m2:map50"].value == 0.48
    assert not any(m.id.startswith("skip") for m in ms)  # skipped benchmarks are not measurements
    verdicts = {v.comparison_id: v for v in claims.check(claims.load_claims(), ms)}
    v = verdicts["nm_deepsparse_dense_vs_onnxruntime_b1"]
    assert v.measured == pytest.approx(3.0) and v.status == claims.REPRODUCED


def test_onnx_file_record_measures_the_file(mirror: Path) -> None:
    from yolotut import assets

    path = assets.fetch("blog-yolov5n-pq-hardswish")
    rec = store.onnx_file_record(path, arch="yolov5n", variant="pruned-quantized-hardswish", precision="int8")
    assert rec["quantized"] is True
    # The author's "pruned-quantized" YOLOv5n is barely sparse (his transfer-learning recipe
    # holds an upstream's zeros; from dense yolov5n.pt there were none): INT8 rounding zeros only.
    assert 0.0 < rec["sparsity"] < 0.2
    assert rec["id"] == "yolov5n-pruned-quantized-hardswish-file"
    assert 0 < rec["file_size_gz_mb"] < rec["file_size_mb"] == pytest.approx(path.stat().st_size / 1e6)


def test_build_report_writes_markdown_html_and_verdicts(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _write_fake_results(results)
    onnx = tmp_path / "models" / "pq.onnx"
    onnx.parent.mkdir()
    onnx.write_bytes(b"0" * 100)
    manifest = tmp_path / "manifest.json"
    store.record_model("pruned-quantized", onnx, 0.7, "int8", map50=0.48, model="yolov5s", manifest_path=manifest)
    store.record_notebook_time(manifest, "02_dense", 12.5, tmp_path / "x.ipynb", "quick")

    paths = build_report(results, tmp_path / "report", manifest_path=manifest)
    md = paths["markdown"].read_text()
    assert "| Comparison | Claimed | Measured | Verdict |" in md
    assert "Dense FP32: DeepSparse vs ONNX Runtime, batch 1" in md and "**reproduced**" in md
    assert "| 02_dense | quick | 12 | ok |" in md or "| 02_dense | quick | 13 | ok |" in md
    assert "| pruned-quantized | yolov5s | int8 | 70.0% |" in md
    page = paths["html"].read_text()
    assert page.count("plotly.js v") <= 1 and "Plotly.newPlot" in page  # plotly.js inlined once
    assert "Speed vs accuracy" in page and "Throughput per engine, batch 1" in page
    data = json.loads(paths["verdicts"].read_text())
    assert data["counts"]["reproduced"] >= 1


def test_chart_rows_keep_labels_and_compare_all_core_runs(tmp_path: Path) -> None:
    from yolotut.reproduce.report import engine_rows, fps_rows, load_records, speed_map_rows

    tags = dict(arch="yolov5n", variant="pruned-quantized-hardswish")
    store.write_results(tmp_path, "07", {"measurements": [
        store.labelled(_benchmark("deepsparse", 500.0, "author"), id="a", label="author", **tags),
        store.labelled(_benchmark("deepsparse", 120.0, "ours"), id="o", label="ours", **tags),
        store.labelled({"map50": 0.88}, id="am", label="author", **tags),
        store.labelled({"fps": 200.0, "engine_info": {"engine": "torch", "batch_size": 1}}, id="v", label="ours", **tags),
        store.labelled({"fps": 90.0, "fps_peak": 150.0}, id="peak", label="author (peak loop)", **tags),
    ]})
    store.write_results(tmp_path, "08", {"measurements": [
        store.labelled(_benchmark("deepsparse", 999.0, "author"), id="again", label="author", **tags),  # later re-run
        store.labelled({**_benchmark("deepsparse", 300.0, "author"), "cores": 1}, id="c1", label="author", **tags),
    ]})
    records = load_records(tmp_path)
    rows = engine_rows(records, 1)
    assert [(r["label"], r["items_per_sec"], r["cores"]) for r in rows] == [("author", 500.0, 2), ("ours", 120.0, 2)]
    assert [(p["label"], p["map50"]) for p in speed_map_rows(records)] == [("author", 0.88)]
    assert fps_rows(records) == [{"label": "ours", "engine": "pytorch", "fps": 200.0}]


def test_build_report_without_results_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run the notebooks first"):
        build_report(tmp_path / "nothing", tmp_path / "report")
