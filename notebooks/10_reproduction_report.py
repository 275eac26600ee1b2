# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · Reproduction report: the published claims vs what we measured
#
# Every figure of the two write-ups is recorded, with its source, in
# `data/published.yaml`. The checker (`yolotut.reproduce.claims`) pairs each comparison with our
# measurements from notebooks 01-08 and gives a verdict:
#
# * **reproduced**: our ratio is within ±15 % of the claimed one (±1 point for mAP);
# * **exceeded** / **not reproduced**: outside that band, better / worse;
# * **not measurable here**: the claim needs what this machine does not have (a GPU, 24
#   cores, COCO, SparseZoo models) or its value is not readable in any stored copy.
#
# Absolute speeds depend on the hardware, so speed claims are checked as **ratios of
# two measurements taken side by side here** (DeepSparse vs ONNX Runtime, pruned vs
# dense ...). A measurement under other conditions than the claim (other model size,
# image size, batch) is marked as a *proxy*, with the differences listed.
#
# `yolotut.reproduce.report.build_report` writes the same tables and charts to
# `outputs/report/report.md` and `report.html`.

# %% tags=["parameters"]
# Parameters (papermill injects new values after this cell: `-p profile full`).
# None means "the profile's default" (see the next cell).
profile = "quick"  # "quick": minutes on 2 CPU cores, for checking the pipeline; "full": the real thing
imgsz = 416  # input size of the blog's models
cores = None  # CPU cores for the engines; None: all cores this process may use
device = "auto"  # training device; "auto": a CUDA GPU when there is one, else the CPU

results_dir = "../outputs/results"
models_dir = "../outputs/models"
manifest_path = "../outputs/manifest.json"

# %%
import warnings
from pathlib import Path

import torch

import yolotut.compat  # noqa: F401  (sets NM_DISABLE_ANALYTICS before deepsparse/sparsezoo load)
from yolotut import assets, hardware
from yolotut.reproduce import runner
from yolotut.inference.engines import deepsparse_unavailable_reason

# Tracing an ONNX export and SparseML's imports print pages of expected notes.
warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
warnings.filterwarnings("ignore", module=r"(torch|sparseml)\.")
results_dir, models_dir = Path(results_dir), Path(models_dir)
runs_dir = models_dir.parent / "runs"
for folder in (results_dir, models_dir, runs_dir):
    folder.mkdir(parents=True, exist_ok=True)
hw = hardware.cpu_fingerprint()
ds_reason = deepsparse_unavailable_reason()
fast_engine = "deepsparse" if ds_reason is None else "onnxruntime"
print(f"{hw['cpu_model']}: {hw['cores_available']} cores available, AVX-512 VNNI: {hw['avx512_vnni']}")
print(f"assets: {assets.describe_source()}")
print("DeepSparse: " + ("available" if ds_reason is None else f"NOT available ({ds_reason}); using ONNX Runtime"))

# %%
from IPython.display import Markdown, display

from yolotut.reproduce import claims, report
from yolotut.ui import plots

registry = claims.load_claims()
measurements = claims.load_measurements(results_dir)
verdicts = claims.check(registry, measurements)
print(f"{len(measurements)} measurements from {len({m.source for m in measurements})} result files, "
      f"{len(verdicts)} comparisons")
display(Markdown(claims.verdicts_to_markdown(verdicts)))

# %%
plots.verdict_figure(verdicts)

# %%
records = report.load_records(results_dir)  # the raw result records (they keep each model's label)
points = report.speed_map_rows(records)
if points:
    display(plots.speed_vs_map_figure(points, title="DeepSparse batch-1 items/sec vs mAP@0.5 (pistols validation subset)"))
else:
    print("no model has both a DeepSparse batch-1 benchmark and an mAP yet")

# %%
for batch in sorted({r["batch_size"] for r in records if r.get("items_per_sec") and r.get("batch_size")}):
    display(plots.engine_bar_figure(report.engine_rows(records, batch), title=f"Engine-only items/sec, batch {batch}"))
display(plots.engine_bar_figure(report.fps_rows(records), title="End-to-end video FPS (demo video, batch 1)"))

# %% [markdown]
# ## Models produced and notebook run times

# %%
manifest = runner.load_manifest(manifest_path)
display(Markdown(report.markdown_table(report.model_table(manifest))))
display(Markdown(report.markdown_table(report.notebook_table(manifest))))

# %% [markdown]
# ## The performance goals and the accuracy budget
#
# Two scripts in `benchmarks/` answer questions the notebooks cannot in a quick run:
# `issue6_goals.py` measures the tutorial's sparse INT8 models against dense INT8, the
# blog author's model and PyTorch, side by side in one run (median over rounds), and
# `accuracy_budget.py` trains YOLOv5n variants with the same budget and compares their
# mAP. Run them after `make reproduce`; their results show up here and in the report.

# %%
benchmarks_dir = Path(results_dir).parent / "benchmarks"
goals, budget = report.goal_rows(benchmarks_dir), report.accuracy_budget_rows(benchmarks_dir)
if goals:
    display(Markdown(report.markdown_table(report.goal_table(goals))))
if budget:
    display(Markdown(report.markdown_table(report.accuracy_budget_table(budget))))
if not goals and not budget:
    print(f"no results of benchmarks/issue6_goals.py or accuracy_budget.py under {benchmarks_dir} yet")

# %%
paths = report.build_report(results_dir, Path(results_dir).parent / "report", manifest_path=manifest_path)
paths
