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
# # 11 · Reproduction report: the published claims against what we measured
#
# **What you will learn**
#
# 1. which of the two write-ups' claims hold on this machine, and by how much;
# 2. how a speed claim made on other hardware can still be checked: as the **ratio of
#    two measurements taken side by side here** (DeepSparse against ONNX Runtime, pruned
#    against dense...), never as an absolute speed;
# 3. where the tutorial's models sit on the speed-accuracy plane.
#
# Every published figure is in `data/published.yaml`, with its source. The checker
# (`yolotut.reproduce.claims`) pairs each comparison with our measurements from
# notebooks 01-09 and gives a verdict:
#
# * **reproduced**: our ratio within ±15 % of the claimed one (±1 point for mAP);
# * **exceeded** / **not reproduced**: outside that band, better / worse;
# * **not measurable here**: the claim needs what this machine lacks (a GPU, COCO, 24
#   cores) or its value is not readable in any stored copy.
#
# A measurement under other conditions than the claim's (model size, image size, batch)
# is marked as a *proxy*, with the differences listed.

# %% tags=["parameters"]
profile = "quick"  # "quick" or "full": this notebook only reads what the others measured
results_dir = "../outputs/results"
models_dir = "../outputs/models"
manifest_path = "../outputs/manifest.json"

# %%
from yolotut.notebook import setup

ctx = setup("11_reproduction_report", profile, results_dir=results_dir, models_dir=models_dir,
            manifest_path=manifest_path)
ctx

# %% [markdown]
# ## The verdicts

# %%
from IPython.display import Markdown

from yolotut.reproduce import claims

verdicts = claims.check(claims.load_claims(), claims.load_measurements(ctx.results_dir))
Markdown(claims.verdicts_to_markdown(verdicts))

# %% [markdown]
# Each bar is our measured ratio divided by the claimed one: 1 is a perfect
# reproduction, and the band around it is the tolerance.

# %%
from yolotut.ui import plots

plots.verdict_figure(verdicts)

# %% [markdown]
# ## Speed against accuracy
#
# DeepSparse batch-1 items/s against mAP@0.5 on the pistol validation images, for every
# model that has both. In the quick profile the models are barely trained, so only the
# horizontal axis means much.

# %%
from yolotut.reproduce import report

records = report.load_records(ctx.results_dir)
points = report.speed_map_rows(records)
plots.speed_vs_map_figure(points, title="DeepSparse batch-1 items/s against mAP@0.5") if points else "no model has both yet"

# %% [markdown]
# ## Every engine, every model

# %%
from IPython.display import display

for batch in sorted({r["batch_size"] for r in records if r.get("items_per_sec") and r.get("batch_size")}):
    display(plots.engine_bar_figure(report.engine_rows(records, batch), title=f"Engine-only items/s, batch {batch}"))
plots.engine_bar_figure(report.fps_rows(records), title="End-to-end video FPS (demo video, batch 1)")

# %% [markdown]
# ## Models produced and each notebook's run time

# %%
from yolotut.reproduce import results

manifest = results.load_manifest(ctx.manifest_path)
Markdown(report.markdown_table(report.model_table(manifest)) + "\n\n" + report.markdown_table(report.notebook_table(manifest)))

# %% [markdown]
# ## The benchmark scripts
#
# Two scripts in `benchmarks/` answer what a quick run cannot: `tutorial_speedups.py`
# times the tutorial's sparse INT8 models against dense INT8, the blog author's model and
# PyTorch side by side (medians over interleaved rounds), and `accuracy_budget.py` trains
# YOLOv5n variants on one budget and compares their mAP. Run them after `make reproduce`;
# their results appear here and in the report.

# %%
benchmarks_dir = ctx.results_dir.parent / "benchmarks"
speedups, budget = report.speedup_rows(benchmarks_dir), report.accuracy_budget_rows(benchmarks_dir)
tables = ([report.speedup_table(speedups)] if speedups else []) + ([report.accuracy_budget_table(budget)] if budget else [])
Markdown("\n\n".join(report.markdown_table(t) for t in tables) or f"no benchmark results under {benchmarks_dir} yet")

# %% [markdown]
# ## The report files
#
# The same tables and charts, as `outputs/report/report.md` and `report.html`.

# %%
report.build_report(ctx.results_dir, ctx.results_dir.parent / "report", manifest_path=ctx.manifest_path)
