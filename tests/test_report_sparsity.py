"""The report's sparsity-search section: which rows count."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from yolotut.reproduce.report import markdown_table, sparsity_search_figure, sparsity_search_rows, sparsity_search_table

def _search_run(folder: Path, csv_text: str) -> None:
    """A sparsity_search.json results file with these rows (written as the search writes it)."""
    from yolotut.reproduce.results import write_results

    rows = pd.read_csv(io.StringIO(csv_text)).to_dict("records")
    write_results(folder, "sparsity_search", {"meta": {}, "results": rows})


HEADER = "model,config,family,engine,precision,mask_type,conv_sparsity,items_per_sec_median,speedup_median,speedup_min,speedup_max,repeats,deepsparse_supported_ops\n"


def test_only_fully_compiled_deepsparse_int8_rows_count_and_most_repeats_win(tmp_path: Path) -> None:
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    run_a.mkdir()
    run_b.mkdir()
    _search_run(
        run_a,
        HEADER
        + "yolov5s,dense INT8,dense,deepsparse,int8,,0.004,120,1.0,1.0,1.0,5,1.0\n"
        + "yolov5s,\"uniform 90% [1,4]\",uniform,deepsparse,int8,\"[1,4]\",0.9,100,0.83,0.8,0.9,5,1.0\n"
        + "yolov5s,fallback graph,uniform,deepsparse,int8,\"[1,4]\",0.9,30,3.1,2.7,3.5,5,0.0\n"
        + "yolov5s,dense INT8,reference,onnxruntime,int8,,0.004,40,0.33,0.3,0.4,5,\n"
    )
    _search_run(
        run_b,
        HEADER + "yolov5s,\"uniform 90% [1,4]\",uniform,deepsparse,int8,\"[1,4]\",0.9,110,0.92,0.9,0.95,15,1.0\n"
    )
    rows = sparsity_search_rows(tmp_path)
    assert [(r["config"], r["repeats"]) for r in rows] == [("dense INT8", 5), ("uniform 90% [1,4]", 15)]
    table = markdown_table(sparsity_search_table(rows))
    assert "0.92 (0.90-0.95)" in table and "fallback" not in table
    assert len(sparsity_search_figure(rows).data) >= 1
    assert [r["weights_removed"] for r in rows] == [0.004, 0.9]  # old files: the sparsity


def test_thinned_rows_are_placed_by_the_weights_they_removed(tmp_path: Path) -> None:
    _search_run(
        tmp_path,
        HEADER.replace("\n", ",weights_removed\n")
        + "yolov5s,dense INT8,dense,deepsparse,int8,,0.004,120,1.0,1.0,1.0,5,1.0,0.004\n"
        + "yolov5s,thin C3 branches to 50%,channels thinned,deepsparse,int8,,0.004,160,1.35,1.2,1.5,5,1.0,0.278\n"
    )
    rows = sparsity_search_rows(tmp_path)
    assert rows[0]["config"] == "thin C3 branches to 50%" and rows[0]["weights_removed"] == 0.278
    assert "27.8%" in markdown_table(sparsity_search_table(rows))
    figure = sparsity_search_figure(rows)
    assert 0.278 in [x for trace in figure.data for x in trace.x]


def test_no_search_results_no_section(tmp_path: Path) -> None:
    assert sparsity_search_rows(tmp_path) == []


def test_model_table_shows_zeros_and_removed_channels_separately() -> None:
    from yolotut.reproduce.report import model_table

    manifest = {"models": [
        {"variant": "pruned-quantized", "model": "yolov5n", "precision": "int8", "sparsity": 0.71, "onnx": "a/p.onnx"},
        {"variant": "thinned-quantized", "model": "yolov5n", "precision": "int8", "sparsity": 0.004, "channels_removed": 0.358, "onnx": "a/t.onnx"},
    ]}
    table = markdown_table(model_table(manifest))
    pruned, thinned = (line for line in table.splitlines() if "quantized" in line)
    assert "71.0%" in pruned and "| - |" in pruned
    assert "0.4%" in thinned and "35.8%" in thinned
