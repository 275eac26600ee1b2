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
# # 05 · Pruning + quantization-aware training: sparse INT8
#
# The combination the write-ups' headline figures come from: the zeros of notebook 04 and
# the INT8 arithmetic of notebook 03, in one training run.
#
# **What you will learn**
#
# 1. how **quantization-aware training** (QAT) differs from one-shot quantization:
#    fake-quant modules round weights and activations to INT8 in the forward pass, so
#    the weights learn to live with the rounding;
# 2. why a sparse INT8 file is so much smaller, and what its zeros buy in speed;
# 3. why PyTorch gains nothing from the same model, while DeepSparse does;
# 4. the alternative that pays on this CPU: **removing whole channels** instead of
#    zeroing weights, and what it costs in accuracy.
#
# **What the write-ups reported.** The blog: pruned + quantized YOLOv5s **58.1 FPS** in
# DeepSparse (4 cores) against 29.5 dense and 21.9 in PyTorch. Neural Magic: pruned +
# quantized YOLOv5l **52.6 items/s** against 5.8 for dense ONNX Runtime ("9x"), DeepSparse
# "6-7x faster than PyTorch running the pruned-quantized model", and YOLOv5s **3.3 MB**
# against **24.8 MB**.

# %% tags=["parameters"]
profile = "quick"  # "quick": minutes on 2 CPU cores, to check the pipeline; "full": the real run
device = "auto"  # training device: a CUDA GPU when there is one, else the CPU
epochs = None  # None: the profile's value (reproduce.profiles)
results_dir = "../outputs/results"
models_dir = "../outputs/models"
manifest_path = "../outputs/manifest.json"

# %%
from yolotut.notebook import setup

ctx = setup("05_pruning_quantization", profile, results_dir=results_dir, models_dir=models_dir,
            manifest_path=manifest_path, epochs=epochs)
cfg = ctx.settings
ctx

# %% [markdown]
# ## Prune, then train with INT8 rounding
#
# The `pruning-quantization` recipe runs notebook 04's per-layer pruning and switches QAT
# on for the last 30 % of the epochs (its `quantization_start_epoch`). When QAT starts,
# the trainer turns the EMA of the weights and mixed precision off, as SparseML's YOLOv5
# integration does: both would fight the fake-quant modules. The quick profile trains two
# short epochs, so that QAT gets the last few steps of the second.

# %%
from yolotut.reproduce import results
from yolotut.training.loop import TrainConfig, train

dense_pt = results.require(ctx.models_dir / "yolov5s-dense.pt", "01_baseline")
train_result = train(TrainConfig(
    data="pistols", weights=str(dense_pt), size="s", recipe="pruning-quantization", epochs=cfg.epochs,
    imgsz=416, batch_size=cfg.train_batch_size, max_images=cfg.max_images,
    max_steps_per_epoch=cfg.steps, device=device, out_dir=str(ctx.runs_dir / "05_pruned_quantized"),
))
train_result.history[-1]

# %%
from yolotut.notebook import full_run_estimate

images_seen = train_result.epochs_run * min(cfg.max_images or 2471, (cfg.steps or 10**9) * cfg.train_batch_size)
estimate = full_run_estimate(train_result.seconds, images_seen, epochs=50, train_images=2471)
print(f"about {estimate['estimated_hours']:.1f} h for the full profile on {train_result.device}")

# %% [markdown]
# ## Export to INT8, and weigh the file
#
# The export turns each fake-quantized convolution into an INT8 `QLinearConv` and gives
# the graph a **uint8 input**: 0-255 pixels go straight in. INT8 makes the file four
# times smaller; the zeros shrink it again once it is compressed.

# %%
from yolotut.inference.export import export_onnx
from yolotut.models import load_trained_model

tags = dict(arch="yolov5s", variant="pruned-quantized", precision="int8", dataset="pistols")
pq_model = load_trained_model(train_result.final_checkpoint)
export = export_onnx(pq_model, ctx.models_dir / "yolov5s-pruned-quantized.onnx", imgsz=416)
pq_onnx = export.path
pq_file = ctx.record(results.onnx_file_record(pq_onnx, **tags), **tags)
dense_onnx = results.require(ctx.models_dir / "yolov5s-dense.onnx", "02_deepsparse_dense")
dense_file = ctx.record(results.onnx_file_record(dense_onnx, arch="yolov5s", variant="dense", precision="fp32"),
                        arch="yolov5s", variant="dense", precision="fp32")
{"QLinearConv": export.sparsity.op_counts.get("QLinearConv", 0), "uint8 input": export.uint8_input,
 "zero conv weights": round(pq_file["sparsity"], 3),
 "MB gzipped, dense / sparse INT8": f"{dense_file['file_size_gz_mb']:.1f} / {pq_file['file_size_gz_mb']:.1f}"}

# %% [markdown]
# ## Throughput: both engines on the sparse INT8 file

# %%
from yolotut.inference.benchmark import run_benchmark

bench = []
for batch in cfg.bench_batch_sizes:
    warmup, iterations = (cfg.warmup, cfg.iterations) if batch == 1 else (cfg.big_warmup, cfg.big_iterations)
    for engine in ("onnxruntime", "deepsparse"):
        result = run_benchmark(pq_onnx, engine, batch_size=batch, warmup=warmup, iterations=iterations)
        bench.append(ctx.record(result, id=f"05-{engine}-b{batch}", **tags))

# %% [markdown]
# PyTorch runs the same trained model with its fake-quant modules: the rounding is
# simulated in fp32, and the zeros are multiplied like any weight. That is the comparison
# behind Neural Magic's "6-7x faster than PyTorch running the pruned-quantized model".

# %%
from yolotut.inference.benchmark import benchmark_engine
from yolotut.inference.engines import create_engine

pytorch_pq = create_engine(pq_model, "pytorch", batch_size=1, imgsz=416)
result = benchmark_engine(pytorch_pq, warmup=cfg.warmup, iterations=cfg.iterations)
bench.append(ctx.record(result, id="05-pytorch-b1", **tags))
ctx.table()

# %% [markdown]
# Beside notebook 02's dense fp32 figures, measured on this machine with the same cores:

# %%
from yolotut.ui import plots

dense = [r for r in results.read_results(ctx.results_dir, "02_deepsparse_dense")["measurements"] if r.get("items_per_sec")]
rows = ([{**r, "label": f"dense fp32 b{r['batch_size']}"} for r in dense]
        + [{**r, "label": f"pruned INT8 b{r['batch_size']}"} for r in bench])
plots.engine_bar_figure(rows, title="Dense fp32 vs pruned + INT8 YOLOv5s: engine-only items/s")

# %% [markdown]
# ## Accuracy and the video
#
# mAP@0.5 is scored on the exported file in the fastest engine here, as the model would be
# deployed. The quick profile's few steps leave it close to zero.

# %%
from yolotut import assets
from yolotut.inference.evaluate import evaluate
from yolotut.inference.video import run_video
from yolotut.ui.widgets import show_frames

pq_engine = create_engine(str(pq_onnx), ctx.fast_engine, batch_size=1)
pq_map = ctx.record(evaluate(pq_engine, "pistols", split="valid", max_images=cfg.val_images), id="05-map", **tags)
demo_video = assets.fetch("demo-video")
video = ctx.record(run_video(pq_engine, demo_video, max_frames=cfg.video_frames), id=f"05-{ctx.fast_engine}-video", **tags)
show_frames(pq_engine, demo_video, count=3,
            title=f"pruned + INT8 YOLOv5s: mAP@0.5 {pq_map['map50']:.3f}, {video['fps']:.1f} FPS");

# %% [markdown]
# ## Removing channels instead of zeroing weights
#
# **On this CPU, removing channels pays; zeros do not.** None of 27 patterns of zeros
# (blocks of four or single weights, 50-95 %) ran reliably faster than dense INT8 in
# DeepSparse 1.8, and this notebook's pruned model, 70 % of its weights zero, ran at
# 0.69-0.71x dense INT8 (two runs). Removing whole channels leaves a smaller *dense* model, which every
# engine runs faster. The preset `STRIDED_C3_BOTTLENECKS` halves the hidden channels of
# every C3 block and bottleneck and the outputs of the strided backbone convolutions:
# about half of the conv weights go, and the trained YOLOv5s ran 1.64-1.72x dense INT8
# (three runs). The measurements, with their commands and history, are in the
# [lab notes](../docs/lab-notes/README.md), from
# [the sparsity search](../docs/lab-notes/2026-11-23-sparsity-search.md) on.

# %% [markdown]
# Cutting the channels at once wrecks what the model knew, and a short fine-tune does not
# win it back (YOLOv5n after 8 epochs: mAP@0.5 0.216 against 0.720 dense). So
# `thinning_fade_epochs` scales the chosen channels from 1 down to 0 over the first half
# of the epochs while the rest of the network takes their work over, and only then
# removes them (the same YOLOv5n test: 0.54 and 0.51, two seeds). Which channels go
# matters too: those with the *largest* filters, `ThinningConfig`'s default, moved the
# features the head reads the least. The `finetune-quantization` recipe ends with QAT,
# as above.

# %%
from yolotut.models.thinning_presets import STRIDED_C3_BOTTLENECKS

thin_result = train(TrainConfig(
    data="pistols", weights=str(dense_pt), size="s", recipe="finetune-quantization",
    thinning=STRIDED_C3_BOTTLENECKS.to_dict(), thinning_fade_epochs=cfg.epochs // 2,
    epochs=cfg.epochs, imgsz=416, batch_size=cfg.train_batch_size, max_images=cfg.max_images,
    max_steps_per_epoch=cfg.steps, device=device, out_dir=str(ctx.runs_dir / "05_thinned_quantized"),
))
thin_result.history[-1]

# %% [markdown]
# The thinned model exports like any other. Its file has few zeros: what it lost are whole
# rows and columns of its weight matrices.

# %%
from yolotut.models import build_model
from yolotut.models.thinning import conv_weight_count

thin_tags = dict(arch="yolov5s", variant="thinned-quantized", precision="int8", dataset="pistols")
thin_model = load_trained_model(thin_result.final_checkpoint)
thin_onnx = export_onnx(thin_model, ctx.models_dir / "yolov5s-thinned-quantized.onnx", imgsz=416).path
thin_file = ctx.record(results.onnx_file_record(thin_onnx, **thin_tags), **thin_tags)
channels_removed = 1 - conv_weight_count(thin_model) / conv_weight_count(build_model("s", num_classes=1))
{"conv weights removed": round(channels_removed, 3), "zero conv weights": round(thin_file["sparsity"], 3)}

# %% [markdown]
# Its speed in both engines, and its accuracy, measured as for the pruned model:

# %%
for engine in ("onnxruntime", "deepsparse"):
    result = run_benchmark(thin_onnx, engine, batch_size=1, warmup=cfg.warmup, iterations=cfg.iterations)
    ctx.record(result, id=f"05-thinned-{engine}-b1", **thin_tags)
thin_engine = create_engine(str(thin_onnx), ctx.fast_engine, batch_size=1)
thin_map = ctx.record(evaluate(thin_engine, "pistols", split="valid", max_images=cfg.val_images),
                      id="05-thinned-map", **thin_tags)

# %% [markdown]
# ## Pruned or thinned?
#
# Speed at batch 1, accuracy and compressed size side by side. The quick profile shows
# the speed; only the full profile's 50 epochs can show how much accuracy each keeps.

# %%
import pandas as pd

speeds = pd.DataFrame([r for r in ctx.measurements if r.get("batch_size") == 1 and r.get("items_per_sec")])
comparison = speeds.pivot_table(index="variant", columns="engine", values="items_per_sec").add_suffix(" items/s")
comparison["mAP@0.5"] = pd.Series({"pruned-quantized": pq_map["map50"], "thinned-quantized": thin_map["map50"]})
comparison["MB gzipped"] = pd.Series({"pruned-quantized": pq_file["file_size_gz_mb"],
                                      "thinned-quantized": thin_file["file_size_gz_mb"]})
comparison["conv weights removed"] = pd.Series({"pruned-quantized": 0.0, "thinned-quantized": channels_removed})
comparison.rename_axis(columns=None).round(3)

# %% [markdown]
# ## Save
#
# Both models go into the manifest, where notebook 08 and the report find them.

# %%
ctx.add_model("pruned-quantized", pq_onnx, pq_file["sparsity"], "int8", map50=pq_map["map50"], model="yolov5s",
              imgsz=416, file_size_gz_mb=pq_file["file_size_gz_mb"])
ctx.add_model("thinned-quantized", thin_onnx, thin_file["sparsity"], "int8", map50=thin_map["map50"], model="yolov5s",
              imgsz=416, file_size_gz_mb=thin_file["file_size_gz_mb"], channels_removed=round(channels_removed, 4))
ctx.save(seconds=train_result.seconds, device=train_result.device, estimate=estimate,
         thinned_seconds=thin_result.seconds, channels_removed=channels_removed)
