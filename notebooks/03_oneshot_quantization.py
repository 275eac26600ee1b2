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
# # 03 · One-shot INT8 quantization (no retraining)
#
# **Quantization** stores weights and activations as 8-bit integers with a scale and a
# zero point per tensor (per channel for weights) instead of 32-bit floats: 4x less
# memory traffic, and on CPUs with **AVX-512 VNNI** one instruction (`VPDPBUSD`)
# multiplies four uint8×int8 pairs and accumulates them into an int32, four times the
# multiply-adds of an fp32 FMA per lane.
#
# **One-shot** (post-training) quantization does not train: SparseML inserts fake-quant
# observers, a few hundred calibration images flow through the model so that the
# observers learn each activation's range, and the export turns every convolution into
# an INT8 `QLinearConv`. It costs minutes instead of hours, at the risk of some accuracy,
# which is why we measure mAP@0.5 of both models on the same validation images.
#
# **What the blog claimed.** A "one-shot" YOLOv5s on DeepSparse: **32.00 FPS** vs 29.48
# FPS dense (4 cores). Its command actually applied a *pruning* recipe with `--one-shot`
# while its text speaks of INT8 weights; this notebook does what the text says
# (one-shot INT8, no pruning).

# %% tags=["parameters"]
# Parameters (papermill injects new values after this cell: `-p profile full`).
# None means "the profile's default" (see the next cell).
profile = "quick"  # "quick": minutes on 2 CPU cores, for checking the pipeline; "full": the real thing
imgsz = 416  # input size of the blog's models
cores = None  # CPU cores for the engines; None: all cores this process may use
device = "auto"  # training device; "auto": a CUDA GPU when there is one, else the CPU
bench_batch_sizes = None  # throughput batch sizes, e.g. [1, 64]
val_images = None  # validation images for mAP@0.5 (full: all 500)
calib_images = None  # calibration images from the training split
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
    quick=dict(calib_images=32, warmup=10, iterations=30, big_warmup=3, big_iterations=10, video_frames=40, val_images=48, bench_batch_sizes=[1, 8]),
    full=dict(calib_images=512, warmup=25, iterations=80, big_warmup=25, big_iterations=80, video_frames=None, val_images=None, bench_batch_sizes=[1, 64]),
    calib_images=calib_images, val_images=val_images, bench_batch_sizes=bench_batch_sizes,
)
cfg

# %%
from yolotut.training.data import create_dataloader
from yolotut.inference.export import export_onnx
from yolotut.models import load_checkpoint
from yolotut.training.loop import calibrate_oneshot

dense_pt = runner.require(models_dir / "yolov5s-dense.pt", "01_baseline")
dense_onnx = runner.require(models_dir / "yolov5s-dense.onnx", "02_deepsparse_dense")
calib_loader, _ = create_dataloader("pistols", "train", imgsz=imgsz, batch_size=8, max_images=cfg.calib_images, workers=2)
int8_model = calibrate_oneshot(load_checkpoint(dense_pt), calib_loader, num_batches=len(calib_loader))
export = export_onnx(int8_model, models_dir / "yolov5s-oneshot-int8.onnx", imgsz=imgsz)
int8_onnx = export.path
file_record = runner.onnx_file_record(int8_onnx, arch="yolov5s", variant="one-shot-quantized", precision="int8", dataset="pistols")
print(f"{int8_onnx}: {file_record['file_size_mb']:.1f} MB, {export.sparsity.op_counts.get('QLinearConv', 0)} QLinearConv, "
      f"input {'uint8' if export.uint8_input else 'float32'}")

# %% [markdown]
# ## Throughput: dense vs INT8 (engine-only)
#
# The dense figures come from notebook 02's results (same machine, same cores).

# %%
from yolotut.inference.benchmark import run_benchmark

bench = []
for batch in cfg.bench_batch_sizes:
    warmup, iterations = (cfg.warmup, cfg.iterations) if batch == 1 else (cfg.big_warmup, cfg.big_iterations)
    for engine in ("onnxruntime", "deepsparse"):
        result = run_benchmark(int8_onnx, engine, batch_size=batch, cores=cores, warmup=warmup, iterations=iterations)
        bench.append(result)
        print(result.summary() if not result.skipped else f"{engine} batch {batch}: skipped: {result.skipped}")

# %%
from yolotut.ui import plots

dense_records = runner.read_results(results_dir, "02_deepsparse_dense")["measurements"]
rows = [{"label": f"dense b{r['batch_size']}", "engine": r["engine"], "items_per_sec": r["items_per_sec"]}
        for r in dense_records if r.get("items_per_sec") and r["engine"] != "torch"]
rows += [{"label": f"one-shot INT8 b{r.batch_size}", "engine": r.engine, "items_per_sec": r.items_per_sec}
         for r in bench if not r.skipped]
plots.engine_bar_figure(rows, title="Dense fp32 vs one-shot INT8 YOLOv5s: engine-only items/sec")

# %% [markdown]
# ## Accuracy: mAP@0.5 of dense vs INT8 on the same validation images
#
# > **Offline truth.** Without the COCO-pretrained `yolov5s.pt`, the quick profile's model
# > is barely trained: its mAP is near zero and the INT8-vs-dense difference says nothing.
# > Run the full profile (or go online) for meaningful accuracy.

# %%
from yolotut.inference.engines import create_engine
from yolotut.inference.evaluate import evaluate

maps = {}
for variant, path in (("dense", dense_onnx), ("one-shot-quantized", int8_onnx)):
    engine = create_engine(str(path), fast_engine, batch_size=1, cores=cores)
    maps[variant] = evaluate(engine, "pistols", split="valid", max_images=cfg.val_images)
    print(f"{variant:20s} mAP@0.5 {maps[variant]['map50']:.3f}  mAP@0.5:0.95 {maps[variant]['map50_95']:.3f} "
          f"({maps[variant]['images']} images)")

# %%
from yolotut.inference.video import run_video
from yolotut.ui.widgets import show_frames

demo_video = assets.fetch("demo-video")
int8_engine = create_engine(str(int8_onnx), fast_engine, batch_size=1, cores=cores)
video = run_video(int8_engine, demo_video, max_frames=cfg.video_frames)
print(f"{fast_engine}, one-shot INT8: {video.fps:.1f} FPS end-to-end, {video.fps_pipeline:.1f} FPS pipeline")
show_frames(int8_engine, demo_video, count=3, title=f"{fast_engine}, one-shot INT8 YOLOv5s");

# %%
int8_tags = dict(arch="yolov5s", variant="one-shot-quantized", precision="int8", dataset="pistols")
records = [runner.labelled(r, id=f"03-{r.engine}-b{r.batch_size}", **int8_tags) for r in bench]
records.append(runner.labelled(video, id=f"03-{fast_engine}-video", **int8_tags))
records.append(runner.labelled(maps["one-shot-quantized"], id="03-map", **int8_tags))
records.append(runner.labelled(maps["dense"], id="03-dense-map", arch="yolov5s", variant="dense", precision="fp32"))
records.append(file_record)
for variant, path, precision, record in (("dense", dense_onnx, "fp32", None), ("one-shot-quantized", int8_onnx, "int8", file_record)):
    record = record or runner.onnx_file_record(path, arch="yolov5s", variant=variant, precision=precision)
    entry = runner.record_model(variant, path, record["sparsity"], precision, map50=maps[variant]["map50"], model="yolov5s",
                        checkpoint=str(dense_pt) if variant == "dense" else None, notebook="03_oneshot_quantization",
                        imgsz=imgsz, file_size_gz_mb=record["file_size_gz_mb"], manifest_path=manifest_path)

# %%
path = runner.write_results(results_dir, "03_oneshot_quantization", {
    "profile": profile, "hardware": hw, "info": {}, "measurements": records,
})
print("wrote", path)
