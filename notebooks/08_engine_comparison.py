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
# # 08 · Engine comparison: try it yourself
#
# **What you will learn**
#
# 1. how the engines compare on *your* machine, for any model the tutorial produced and
#    the blog author's two, at the batch size and core count you choose;
# 2. how throughput scales with cores (the blog ran DeepSparse on **4 cores**);
# 3. which kind of sparsity pays on this CPU: zeros in the weights, or whole channels removed.
#
# Pick a model, one or more engines, the cores, the batch size and the image size, and
# press **Run**. Each engine is benchmarked engine-only (warm-up, then timed runs) and
# the chart and the table show that run. Two things to know:
#
# * PyTorch needs a plain checkpoint: quantized models exist only as ONNX, so PyTorch
#   says "skipped" with the reason;
# * ONNX files exported at a fixed size run at that size whatever the image-size control
#   says (the table shows the size that ran).

# %% tags=["parameters"]
profile = "quick"  # "quick": minutes on 2 CPU cores, to check the pipeline; "full": the real run
sparsity_search = True  # run the small sparsity search at the end (quick: about 1 min, full: about 10)
results_dir = "../outputs/results"
models_dir = "../outputs/models"
manifest_path = "../outputs/manifest.json"

# %%
from yolotut.notebook import setup

ctx = setup("08_engine_comparison", profile, results_dir=results_dir, models_dir=models_dir,
            manifest_path=manifest_path)
cfg = ctx.settings
ctx

# %% [markdown]
# ## The widget
#
# The model list comes from the manifest the earlier notebooks wrote.

# %%
import plotly.graph_objects as go

from yolotut.ui.widgets import EngineComparison, choices_from_manifest

comparison = EngineComparison(choices_from_manifest(ctx.manifest_path), warmup=cfg.warmup, iterations=cfg.iterations)
comparison

# %% [markdown]
# So that a headless run measures something too, the next cell presses **Run** once from
# code: our pruned + INT8 YOLOv5s, ONNX Runtime against DeepSparse, batch 1, all cores.

# %%
comparison.variant.value = next((label for label in comparison.models if label.startswith("yolov5s pruned-quantized")),
                                next(iter(comparison.models)))
comparison.engines.value = ("onnxruntime", "deepsparse")
comparison.batch_size.value = 1
comparison.button.click()
comparison.status.value

# %% [markdown]
# A widget draws only while its kernel runs, so a saved copy of this notebook (GitHub,
# nbviewer, an HTML export) would show an empty box. The same run as a plain chart and table:

# %%
from IPython.display import HTML, display

display(go.Figure(comparison.figure))
HTML(comparison.table_html())

# %% [markdown]
# ## Scaling with cores
#
# The same model on 1, 2, ... cores, batch 1. A line that flattens says the model is
# limited by memory, not by arithmetic.

# %%
from yolotut.inference.benchmark import core_scaling, scaling_figure

choice = comparison.models[comparison.variant.value]
scaling = core_scaling(choice.onnx, ctx.fast_engine, range(1, ctx.hardware["cores_available"] + 1),
                       warmup=cfg.warmup, iterations=cfg.iterations)
scaling_figure(scaling, x="cores", title=f"{comparison.variant.value}: items/s against cores ({ctx.fast_engine})")

# %% [markdown]
# ## Does sparsity pay on this CPU?
#
# `benchmarks/sparsity_search.py` exports YOLOv5 to INT8 with each kind of sparsity
# (random weights: speed depends on *where* the zeros are, not on their values) and
# times it in DeepSparse beside dense INT8, in interleaved rounds, so that every
# speed-up is a ratio measured side by side. It compares
#
# * **zeros in the weights**, the pruning recipe's targets: the model keeps its shape and
#   the engine must skip the zeros with sparse kernels;
# * **channels removed** (`yolotut.models.thinning`): a smaller *dense* model, which every
#   engine runs faster, whose accuracy fine-tuning must win back.
#
# **The finding on AVX-512 VNNI with DeepSparse 1.8: removing channels pays; zeros
# barely do.** The quick profile checks it on YOLOv5n-Hardswish in two short rounds; the
# history of the search is in the [lab notes](../docs/lab-notes/README.md).

# %%
from yolotut.notebook import run_sparsity_search

search_rows = run_sparsity_search(ctx) if sparsity_search else []

# %%
from IPython.display import Markdown

from yolotut.reproduce import report

Markdown(report.markdown_table(report.sparsity_search_table(search_rows))) if search_rows else "no search run"

# %%
report.sparsity_search_figure(search_rows) if search_rows else None

# %% [markdown]
# ## Save
#
# Every widget run and the core scaling go into the results file.

# %%
for i, (label, result) in enumerate(comparison.results):
    ctx.record(result, id=f"08-widget-{i}", arch=comparison.models[label].arch,
               variant=comparison.models[label].variant, dataset="pistols")
for result in scaling:
    ctx.record(result, id=f"08-cores-{result.cores}", arch=choice.arch, variant=choice.variant, dataset="pistols")
ctx.save()
