# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
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
# Pick a model (the ones notebooks 02-07 produced, from `outputs/manifest.json`, and the
# blog author's two), one or more engines, the number of cores, the batch size and the
# image size, and press **Run**: each engine is benchmarked (engine-only, warm-up +
# timed runs) and its bars are added to the chart and its row to the table, so runs can
# be compared side by side.
#
# * PyTorch needs a plain checkpoint: quantized (QAT) models exist only as ONNX, and the
#   run says "skipped" with the reason.
# * ONNX files exported with a fixed input size run at that size whatever the image-size
#   control says (the table shows the size that ran); the size control applies to PyTorch.
# * The blog ran DeepSparse on **4 cores**; the cores slider shows how throughput scales
#   on this machine.

# %% tags=["parameters"]
# Parameters (papermill injects new values after this cell: `-p profile full`).
# None means "the profile's default" (see the next cell).
profile = "quick"  # "quick": minutes on 2 CPU cores, for checking the pipeline; "full": the real thing
imgsz = 416  # input size of the blog's models
cores = None  # CPU cores for the engines; None: all cores this process may use
device = "auto"  # training device; "auto": a CUDA GPU when there is one, else the CPU
bench_batch_sizes = None  # throughput batch sizes, e.g. [1, 64]
val_images = None  # validation images for mAP@0.5 (full: all 500)
sparsity_search = True  # run the small sparsity search at the end (quick: ~1 min, full: ~10 min)
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
cfg = runner.settings(
    profile,
    quick=dict(warmup=10, iterations=30, big_warmup=3, big_iterations=10, video_frames=40, val_images=48, bench_batch_sizes=[1, 8]),
    full=dict(warmup=25, iterations=80, big_warmup=25, big_iterations=80, video_frames=None, val_images=None, bench_batch_sizes=[1, 64]),
    val_images=val_images, bench_batch_sizes=bench_batch_sizes,
)
cfg

# %%
from yolotut.ui.widgets import EngineComparison, choices_from_manifest

comparison = EngineComparison(choices_from_manifest(manifest_path), warmup=cfg.warmup, iterations=cfg.iterations)
comparison

# %% [markdown]
# The cell below presses **Run** once from code (so that an unattended run of the
# notebook measures something too): the fastest variant, ONNX Runtime vs DeepSparse,
# batch 1, all cores.

# %%
preferred = [label for label in comparison.models if "pruned-quantized" in label and "ours" not in label]
comparison.variant.value = next((l for l in comparison.models if l.startswith("yolov5s pruned-quantized")), preferred[0])
comparison.engines.value = ("onnxruntime", "deepsparse")
comparison.batch_size.value = 1
comparison.button.click()
print(comparison.status.value)

# %% [markdown]
# ## Scaling with cores (DeepSparse, batch 1)

# %%
from yolotut.inference.benchmark import core_scaling, scaling_figure

choice = comparison.models[comparison.variant.value]
scaling = core_scaling(choice.onnx, fast_engine, range(1, hw["cores_available"] + 1),
                       warmup=cfg.warmup, iterations=cfg.iterations)
scaling_figure(scaling, x="cores", title=f"{comparison.variant.value}: items/sec vs cores ({fast_engine})")

# %% [markdown]
# ## Does sparsity pay on this CPU? The sparsity search
#
# Both write-ups prune *and* quantize, and both leave open which sparsity buys speed on
# a given CPU. `benchmarks/sparsity_search.py` measures it: every configuration is a
# YOLOv5 exported to INT8 (random weights: speed depends on *where* the zeros are, not
# on their values) and timed engine-only in DeepSparse, batch 1, in interleaved rounds
# next to dense INT8, so each speed-up is a ratio taken side by side.
#
# Two kinds of sparsity are compared:
#
# * **zeros in the weights**: the pruning recipe's per-group targets (notebook 05), the
#   deep layers alone, unstructured: the model keeps its shape, and the engine has to
#   skip the zeros with sparse kernels;
# * **channels removed** (`yolotut.models.thinning`, `yolotut train --thin-c3 0.5`): the
#   hidden channels of the C3 blocks go, leaving a smaller *dense* model, which every
#   engine runs faster. Its accuracy must be won back by fine-tuning
#   (`finetune-quantization` recipe).
#
# The quick profile measures YOLOv5n-Hardswish in two short rounds (about a minute);
# the full profile YOLOv5s and YOLOv5n in five. The blog author's model runs in the
# same rounds. `benchmarks/README.md` has the full search (27 zero patterns and the channel thinnings).

# %%
import subprocess
import sys

from IPython.display import Markdown, display

from yolotut.reproduce import report

search_script = Path("..") / "benchmarks" / "sparsity_search.py"
search_dir = models_dir.parent / "benchmarks" / "notebook08"
search_rows = []
if not sparsity_search:
    print("sparsity_search = False: skipped")
elif ds_reason is not None or not search_script.is_file():
    print(f"skipped: {ds_reason or 'benchmarks/sparsity_search.py is not in this checkout'}")
else:
    size_args = (["--sizes", "n", "--repeats", "2", "--warmup", "5", "--iterations", "30", "--max-tries", "1"]
                 if profile == "quick" else ["--sizes", "s", "n", "--repeats", "5"])
    command = [sys.executable, str(search_script), "--grid", "tutorial", "--author", "--no-references",
               "--cores", str(hw["cores_available"]), "--out-dir", str(search_dir), *size_args]
    print("$", " ".join(command[1:]))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the sparsity search failed:\n{done.stderr[-3000:]}")
    search_rows = report.sparsity_search_rows(search_dir)
    display(Markdown(report.markdown_table(report.sparsity_search_table(search_rows))))

# %%
report.sparsity_search_figure(search_rows) if search_rows else None

# %%
records = [runner.labelled(r, id=f"08-widget-{i}", arch=comparison.models[label].arch,
                           variant=comparison.models[label].variant, dataset="pistols")
           for i, (label, r) in enumerate(comparison.results)]
records += [runner.labelled(r, id=f"08-cores-{r.cores}", arch=choice.arch, variant=choice.variant, dataset="pistols")
            for r in scaling]

# %%
path = runner.write_results(results_dir, "08_engine_comparison", {
    "profile": profile, "hardware": hw, "info": {}, "measurements": records,
})
print("wrote", path)
