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
# # 05 · Pruning + quantization-aware training → sparse INT8
#
# The combination the write-ups' headline figures come from. The `pruning-quantization`
# recipe runs the same per-layer GMP pruning as notebook 04, then switches on
# **quantization-aware training** (QAT) for the last 30 % of the epochs: fake-quant
# modules simulate INT8 rounding in the forward pass, so the weights learn to live with
# it (better accuracy than one-shot). The trainer switches EMA and mixed precision off
# when QAT starts, as SparseML's YOLOv5 integration does.
#
# The export turns the model into INT8 `QLinearConv`s with a **uint8 input** (0-255 pixels
# straight into the graph). Now DeepSparse has both levers: INT8 VNNI kernels and
# [1, 4]-block sparsity they can skip.
#
# **What the write-ups claimed.** Blog: pruned + quantized YOLOv5s **58.06 FPS** on
# DeepSparse (4 cores) vs 29.48 dense, 21.91 PyTorch. Neural Magic: pruned-quantized
# YOLOv5l **52.6 items/sec** vs 5.8 for ONNX Runtime dense ("9x"), DeepSparse "6-7x faster
# than PyTorch running the pruned-quantized model", YOLOv5s **3.3 MB** vs **24.8 MB**, and
# **198.2** vs **78.2 items/sec** at batch 64 (2021 table; 396.7 vs 135.8 in 2022).
#
# > QAT starts at 70 % of the run (the recipe's `quantization_start_epoch`), so the quick
# > profile trains two short epochs: QAT then gets the last few steps of the second one.

# %% tags=["parameters"]
# Parameters (papermill injects new values after this cell: `-p profile full`).
# None means "the profile's default" (see the next cell).
profile = "quick"  # "quick": minutes on 2 CPU cores, for checking the pipeline; "full": the real thing
imgsz = 416  # input size of the blog's models
cores = None  # CPU cores for the engines; None: all cores this process may use
device = "auto"  # training device; "auto": a CUDA GPU when there is one, else the CPU
epochs = None  # training epochs
max_images = None  # training images (full: all 2471)
steps = None  # optimizer steps per epoch (full: all)
train_batch_size = None

bench_batch_sizes = None  # throughput batch sizes, e.g. [1, 64]
val_images = None  # validation images for mAP@0.5 (full: all 500)
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
    quick=dict(epochs=2, max_images=32, steps=4, train_batch_size=8, warmup=10, iterations=30, big_warmup=3, big_iterations=10, video_frames=40, val_images=48, bench_batch_sizes=[1, 8]),
    full=dict(epochs=50, max_images=None, steps=None, train_batch_size=16, warmup=25, iterations=80, big_warmup=25, big_iterations=80, video_frames=None, val_images=None, bench_batch_sizes=[1, 64]),
    epochs=epochs, max_images=max_images, steps=steps, train_batch_size=train_batch_size, val_images=val_images, bench_batch_sizes=bench_batch_sizes,
)
cfg

# %% [markdown]
# > **Offline truth: the starting weights.** The write-ups fine-tuned the COCO-pretrained
# > `yolov5s.pt` (Ultralytics release asset). Where that file cannot be fetched (this
# > project's offline machines; the asset registry knows its URL and checksum), the
# > tutorial **initialises YOLOv5s from scratch** and fine-tunes it on the pistols
# > dataset instead. Its *speed* figures are real (speed does not depend on the values of
# > the weights), but its **mAP is not comparable to the blog's** and is labelled as such.
# > Online, the next cell fetches the real `yolov5s.pt` and everything below uses it.

# %%
dense_pt = runner.require(models_dir / "yolov5s-dense.pt", "01_baseline")

# %%
from yolotut.training.loop import TrainConfig, train

train_config = TrainConfig(
    data="pistols", weights=str(dense_pt), size="s", recipe="pruning-quantization",
    epochs=cfg.epochs, imgsz=imgsz, batch_size=cfg.train_batch_size, max_images=cfg.max_images,
    max_steps_per_epoch=cfg.steps, device=device, out_dir=str(runs_dir / "05_pruned_quantized"),
)
train_result = train(train_config)
print(f"{train_result.epochs_run} epoch(s) in {train_result.seconds:.0f} s on {train_result.device}")
train_result.history[-1]

# %%
images_seen = train_result.epochs_run * min(cfg.max_images or 2471, (cfg.steps or 10**9) * cfg.train_batch_size)
estimate = runner.full_run_estimate(train_result.seconds, images_seen, epochs=50, train_images=2471)
print(f"{estimate['seconds_per_image']:.2f} s per training image here ({train_result.device}): the full profile "
      f"(50 epochs x 2471 images) would take about {estimate['estimated_hours']:.1f} h on this machine (estimate)")

# %%
from yolotut.inference.export import export_onnx
from yolotut.training.loop import load_trained_model

pq_model = load_trained_model(train_result.final_checkpoint)
export = export_onnx(pq_model, models_dir / "yolov5s-pruned-quantized.onnx", imgsz=imgsz)
pq_onnx = export.path
file_record = runner.onnx_file_record(pq_onnx, arch="yolov5s", variant="pruned-quantized", precision="int8", dataset="pistols")
dense_file = runner.onnx_file_record(runner.require(models_dir / "yolov5s-dense.onnx", "02_deepsparse_dense"),
                                     arch="yolov5s", variant="dense", precision="fp32")
print(f"INT8: {export.sparsity.op_counts.get('QLinearConv', 0)} QLinearConv, uint8 input: {export.uint8_input}")
print(f"conv sparsity {file_record['sparsity']:.1%}; size {file_record['file_size_gz_mb']:.2f} MB gzipped vs "
      f"{dense_file['file_size_gz_mb']:.2f} MB dense: {dense_file['file_size_gz_mb'] / file_record['file_size_gz_mb']:.1f}x smaller")

# %%
from yolotut.inference.benchmark import benchmark_engine, run_benchmark
from yolotut.inference.engines import create_engine

bench = []
for batch in cfg.bench_batch_sizes:
    warmup, iterations = (cfg.warmup, cfg.iterations) if batch == 1 else (cfg.big_warmup, cfg.big_iterations)
    for engine in ("onnxruntime", "deepsparse"):
        result = run_benchmark(pq_onnx, engine, batch_size=batch, cores=cores, warmup=warmup, iterations=iterations)
        bench.append(result)
        print(result.summary() if not result.skipped else f"{engine} batch {batch}: skipped: {result.skipped}")
# PyTorch running the same pruned + QAT model (fake-quant fp32), for the "6-7x faster than PyTorch" claim
torch_pq = benchmark_engine(create_engine(pq_model, "torch", batch_size=1, cores=cores, imgsz=imgsz),
                            warmup=cfg.warmup, iterations=cfg.iterations)
bench.append(torch_pq)
print(torch_pq.summary())

# %%
from yolotut.ui import plots

ENGINE_NAMES = {"torch": "pytorch"}
dense_records = runner.read_results(results_dir, "02_deepsparse_dense")["measurements"]
rows = [{"label": f"dense b{r['batch_size']}", "engine": ENGINE_NAMES.get(r["engine"], r["engine"]),
         "items_per_sec": r["items_per_sec"]} for r in dense_records if r.get("items_per_sec")]
rows += [{"label": f"pruned+INT8 b{r.batch_size}", "engine": ENGINE_NAMES.get(r.engine, r.engine),
          "items_per_sec": r.items_per_sec} for r in bench if not r.skipped]
plots.engine_bar_figure(rows, title="Dense fp32 vs pruned + INT8 YOLOv5s: engine-only items/sec")

# %%
from yolotut.inference.evaluate import evaluate
from yolotut.inference.video import run_video
from yolotut.ui.widgets import show_frames

pq_engine = create_engine(str(pq_onnx), fast_engine, batch_size=1, cores=cores)
pq_map = evaluate(pq_engine, "pistols", split="valid", max_images=cfg.val_images)
demo_video = assets.fetch("demo-video")
video = run_video(pq_engine, demo_video, max_frames=cfg.video_frames)
print(f"mAP@0.5 {pq_map['map50']:.3f} ({pq_map['images']} images); video: {video.fps:.1f} FPS end-to-end "
      f"(blog: 58.06 FPS on 4 cores of an i9-11900)")
show_frames(pq_engine, demo_video, count=3, title=f"{fast_engine}, pruned + INT8 YOLOv5s");

# %% [markdown]
# ## The alternative that pays on this CPU: remove channels, then QAT
#
# Pruning zeroes weights but keeps every layer's shape; DeepSparse then has to skip the
# zeros with sparse kernels, and on this project's CPU those are no faster than its
# dense INT8 kernels (notebook 08's sparsity search, `benchmarks/README.md`). Removing
# whole channels leaves a smaller *dense* model that every engine runs faster. Below,
# the dense checkpoint keeps half of the hidden channels of its C3 blocks and their
# bottlenecks, and half of the outputs of the strided backbone convolutions
# (`thinning.STRIDED_C3_BOTTLENECKS`: 1.72x dense INT8 for YOLOv5s in DeepSparse where the
# C3 blocks alone gave 1.44x, in the same rounds; the channels with the *largest*
# BatchNorm-scaled filters go, which measured to hurt least on YOLOv5n), then
# `finetune-quantization` fine-tunes it and ends with QAT. Compare
# its speed *and* its mAP with the pruned model above. Removing channels in one shot
# costs a pretrained model most of its accuracy, which a short fine-tune does not win
# back (YOLOv5n, 8 epochs: mAP@0.5 0.216 thinned vs 0.720 dense, `benchmarks/README.md`),
# so `thinning_fade_epochs` fades the channels out over the first half of the epochs
# and removes them only then (8 epochs: 0.413 with the smallest filters removed,
# 0.536 and 0.507 with the largest, two seeds; with the strided convolutions halved too,
# as here, 0.489, one seed). The quick profile shows the speed, only the full profile
# can show how much of the accuracy returns.

# %%
from yolotut.models import build_model
from yolotut.models.thinning import STRIDED_C3_BOTTLENECKS, conv_weight_count

thin_result = train(TrainConfig(
    data="pistols", weights=str(dense_pt), size="s", recipe="finetune-quantization", thinning=STRIDED_C3_BOTTLENECKS.to_dict(),
    thinning_fade_epochs=cfg.epochs // 2,  # fade the channels out over the first half, then remove them
    epochs=cfg.epochs, imgsz=imgsz, batch_size=cfg.train_batch_size, max_images=cfg.max_images,
    max_steps_per_epoch=cfg.steps, device=device, out_dir=str(runs_dir / "05_thinned_quantized"),
))
thin_model = load_trained_model(thin_result.final_checkpoint)
thin_onnx = export_onnx(thin_model, models_dir / "yolov5s-thinned-quantized.onnx", imgsz=imgsz).path
channels_removed = 1 - conv_weight_count(thin_model) / conv_weight_count(build_model("s", num_classes=1))
thin_file = runner.onnx_file_record(thin_onnx, arch="yolov5s", variant="thinned-quantized", precision="int8", dataset="pistols")
thin_bench = [run_benchmark(thin_onnx, engine, batch_size=1, cores=cores, warmup=cfg.warmup, iterations=cfg.iterations)
              for engine in ("onnxruntime", "deepsparse")]
thin_map = evaluate(create_engine(str(thin_onnx), fast_engine, batch_size=1, cores=cores), "pistols", split="valid",
                    max_images=cfg.val_images)
print(f"{thin_result.epochs_run} epoch(s) in {thin_result.seconds:.0f} s; conv weights removed {channels_removed:.1%}, "
      f"{thin_file['file_size_gz_mb']:.2f} MB gzipped; mAP@0.5 {thin_map['map50']:.3f} (pruned: {pq_map['map50']:.3f})")
for r in thin_bench:
    pruned = next((p for p in bench if p.engine == r.engine and p.batch_size == 1 and not p.skipped), None)
    if r.skipped or pruned is None:
        print(f"{r.engine}: skipped: {r.skipped or 'no pruned figure'}")
    else:
        print(f"{r.engine}: thinned {r.items_per_sec:.1f} vs pruned {pruned.items_per_sec:.1f} items/s "
              f"({r.items_per_sec / pruned.items_per_sec:.2f}x)")

# %%
tags = dict(arch="yolov5s", variant="pruned-quantized", precision="int8", dataset="pistols")
records = [runner.labelled(r, id=f"05-{r.engine}-b{r.batch_size}", **tags) for r in bench]
records += [runner.labelled(video, id=f"05-{fast_engine}-video", **tags),
            runner.labelled(pq_map, id="05-map", **tags), file_record, dense_file]
entry = runner.record_model("pruned-quantized", pq_onnx, file_record["sparsity"], "int8", map50=pq_map["map50"], model="yolov5s",
                    notebook="05_pruning_quantization", imgsz=imgsz, file_size_gz_mb=file_record["file_size_gz_mb"],
                    manifest_path=manifest_path)
thin_tags = dict(arch="yolov5s", variant="thinned-quantized", precision="int8", dataset="pistols")
records += [runner.labelled(r, id=f"05-thinned-{r.engine}-b1", **thin_tags) for r in thin_bench]
records += [runner.labelled(thin_map, id="05-thinned-map", **thin_tags), thin_file]
runner.record_model("thinned-quantized", thin_onnx, thin_file["sparsity"], "int8", map50=thin_map["map50"], model="yolov5s",
                    notebook="05_pruning_quantization", imgsz=imgsz, file_size_gz_mb=thin_file["file_size_gz_mb"],
                    channels_removed=round(channels_removed, 4), manifest_path=manifest_path)
train_info = {"seconds": train_result.seconds, "device": train_result.device, "estimate": estimate,
              "thinned_seconds": thin_result.seconds, "channels_removed": channels_removed}

# %%
path = runner.write_results(results_dir, "05_pruning_quantization", {
    "profile": profile, "hardware": hw, "info": train_info, "measurements": records,
})
print("wrote", path)
