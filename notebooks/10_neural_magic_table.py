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
# # 10 · Neural Magic's table at its own conditions: YOLOv5s and YOLOv5l at 640 px
#
# The notebooks so far measured the tutorial's models: YOLOv5s and YOLOv5n at 416 px on
# the pistols. Neural Magic's post measured **YOLOv5s and YOLOv5l, 80 COCO classes, at
# 640 px**, at batch 1 and 64. This notebook builds those models and re-measures the
# post's comparisons on this machine's cores.
#
# **What you will learn**
#
# * why a speed can be measured without the trained weights: it depends on the
#   architecture, the input size, the batch, the precision and *where* the zeros are,
#   not on the values of the weights;
# * what Neural Magic's own recipes prune: a target per layer, from 40 % to 85 %, in
#   blocks of four input channels, every convolution but the stem (the file
#   `yolotut/recipes/neuralmagic-yolov5l-pruned-quantized.yaml` holds them);
# * how the post's speed-ups come out on this CPU, round by round, with their spread;
# * what this project's own lever, removing channels, does on the same YOLOv5l.
#
# **What the post reported** (24-core AWS C5, YOLOv5l, batch 1): ONNX Runtime **5.8**,
# DeepSparse dense **17.7** (3x), DeepSparse pruned + INT8 **52.6 items/s** (9x ONNX
# Runtime, 2.97x its dense model, "6-7x" PyTorch running the same pruned INT8 model); at
# batch 64 (the recipes tutorial, 2022) pruned INT8 at **2.92x** (YOLOv5s) and **5.01x**
# (YOLOv5l) dense; files 154 MB → 12.7 MB (YOLOv5l).

# %% tags=["parameters"]
profile = "quick"  # "quick": fewer rounds and runs (the rows say so); "full": the stable medians
archs = ["yolov5s", "yolov5l"]
results_dir = "../outputs/results"
models_dir = "../outputs/models"
manifest_path = "../outputs/manifest.json"

# %%
from yolotut.notebook import setup

ctx = setup("10_neural_magic_table", profile, results_dir=results_dir, models_dir=models_dir,
            manifest_path=manifest_path)
cfg = ctx.settings
ctx

# %% [markdown]
# ## The models: the post's architectures, Neural Magic's zeros
#
# The COCO checkpoints cannot be downloaded here, so each model starts from YOLOv5's own
# initialisation (seed 0). Per architecture:
#
# | variant | what it is |
# | --- | --- |
# | `dense` | fp32, as trained |
# | `quantized` | dense INT8: fake-quant observers calibrated, exported to `QLinearConv` (the graph QAT exports) |
# | `pruned` | fp32 with the zeros of Neural Magic's recipe, put in by magnitude, layer by layer |
# | `pruned-quantized` | the same zeros in the INT8 model: the post's fast model |
# | `thinned-quantized` | this project's lever: the C3 blocks, bottlenecks and strided convolutions keep half their channels, INT8 |
# | `thinned-pruned-quantized` | both: the thinned model with Neural Magic's zeros |
#
# Neural Magic's recipes are written for YOLOv5 v5.0; the recipe files here give the same
# targets to v6.x's layers (the header of each file says how). Every file is checked
# after export: each layer must carry its target within 1 %.

# %%
import pandas as pd

from yolotut.reproduce import neural_magic_table as table

models = table.build_models(archs, ctx.models_dir / "neural_magic_table")
pd.DataFrame(table.sparsity_rows({"models": models})).set_index("model")

# %% [markdown]
# Every layer of the pruned YOLOv5l INT8 file against its recipe target: the points sit
# on the diagonal; the stem is the one dense layer.

# %%
import plotly.express as px

largest = "yolov5l" if "yolov5l" in archs else archs[-1]
layers = pd.DataFrame(table.layer_rows(models, f"{largest}-pruned-quantized"))
px.scatter(layers, x="target", y="measured", hover_name="layer", range_x=[-0.05, 1], range_y=[-0.05, 1],
           title=f"{largest} pruned INT8: measured sparsity per layer vs the recipe's target")

# %% [markdown]
# ## File sizes
#
# The post compares compressed files: zeros stay in the raw ONNX file and only compress
# away. Both files are gzipped here (level 9).

# %%
from yolotut.reproduce import results

sizes = []
for arch in archs:
    for variant in ("dense", "pruned-quantized"):
        model = models[f"{arch}-{variant}"]
        sizes.append(ctx.record(results.onnx_file_record(model["path"], arch=arch, variant=variant,
                                                         precision=model["precision"]),
                                id=f"nm-{arch}-{variant}-file", arch=arch, variant=variant, imgsz=640))
pd.DataFrame([{"model": r["arch"], "variant": r["variant"], "MB": round(r["file_size_mb"], 1),
               "MB gzipped": round(r["file_size_gz_mb"], 1)} for r in sizes])

# %% [markdown]
# ## Speed, side by side
#
# Per architecture and batch size, every setup runs once per round in a rotated order,
# each measurement repeated when another process took the CPU meanwhile. A round's figure
# is batch × 1000 / median latency; the table gives the median over rounds. Batch 64 at
# 640 px is slow on a few cores (a dense YOLOv5l batch takes about 20 s on two), so the
# profile's counts are small there, and the quick profile times only the dense and the
# pruned INT8 models at that batch. Neural Magic timed 25 warm-up + 80 runs and took the
# mean; these figures are engine-only (the post's batch-1 figures include pre- and
# post-processing, a few milliseconds against hundreds here).

# %%
from yolotut.inference.quiet import QuietPolicy

settings = table.TableSettings(archs=tuple(archs), rounds=cfg.rounds, warmup=cfg.warmup, iterations=cfg.iterations,
                               big_warmup=cfg.big_warmup, big_iterations=cfg.big_iterations, profile=profile,
                               big_batch_variants=cfg.big_batch_variants, quiet=QuietPolicy(max_tries=cfg.max_tries))
payload = table.run_table(settings, ctx.models_dir / "neural_magic_table", models=models)
speeds = pd.DataFrame(table.result_records(payload))
speeds.pivot_table(index=["arch", "variant"], columns=["engine", "batch_size"], values="items_per_sec").round(2)

# %% [markdown]
# ## The post's comparisons
#
# Each ratio is computed round by round from two setups timed in the same round; the
# min-max column is its spread over rounds. The claimed figures come from 24 cores, the
# measured ones from this machine's: compare the ratios, not the items/s.

# %%
ratios = pd.DataFrame(table.ratio_rows(payload))
ratios[["model", "batch", "comparison", "measured", "min-max over rounds", "claimed"]]

# %%
table.figure(payload)

# %% [markdown]
# The `project:` rows are this project's answer on the same model: removing channels
# instead of (or as well as) zeroing weights, against dense fp32, where Neural Magic's
# pruned INT8 YOLOv5l claims 2.97x.

# %% [markdown]
# ## On a GPU
#
# The post's GPU figure is PyTorch fp16 YOLOv5l at batch 1 on a T4 (59.3 items/s). When
# torch sees a CUDA GPU, the same measurement runs here and the report names the GPU it
# ran on; a T4's figure needs a T4.

# %%
import torch

from yolotut.inference.benchmark import benchmark_engine
from yolotut.inference.engines import TorchEngine

if torch.cuda.is_available():
    gpu_engine = TorchEngine(table.torch_model(largest, "dense"), batch_size=1, imgsz=640, device="cuda", half=True)
    gpu = ctx.record(benchmark_engine(gpu_engine, warmup=cfg.warmup, iterations=cfg.iterations),
                     id=f"nm-{largest}-dense-pytorch-cuda-fp16-b1", arch=largest, variant="dense", precision="fp16",
                     measurement="engine-only")
    print(f"{gpu['engine_info']['gpu']}: {gpu['items_per_sec']:.1f} items/s")
else:
    print("no CUDA GPU here: the GPU row stays 'not measurable'")

# %% [markdown]
# ## Save
#
# Every timed setup goes into the results with its spread and the way it was timed; the
# report (notebook 11) judges the post's rows with them. The twelve files go into the
# manifest with their measured sparsity, marked untrained: they have no accuracy to show.

# %%
for record in table.result_records(payload):
    ctx.record(record, arch=record["arch"], variant=record["variant"])
for model in models.values():
    ctx.add_model(model["variant"], model["path"], model["conv_sparsity"], model["precision"], model=f"{model['arch']}-640",
                  imgsz=640, trained=False, weights=table.WEIGHTS)
results.write_results(ctx.models_dir.parent / "benchmarks" / "notebook10", "neural_magic_table", payload)
ctx.save(weights=table.WEIGHTS, seconds=payload["seconds"])
