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
# # 02 · Dense YOLOv5s on three engines: PyTorch, ONNX Runtime, DeepSparse
#
# Same model, same weights, fp32, no sparsity yet: the only thing that changes is the
# inference engine.
#
# * **ONNX export** turns the PyTorch model into a static graph (decoded predictions
#   `[B, N, 6]` as output 0, like the blog author's models).
# * **ONNX Runtime** (CPUExecutionProvider) runs it with its generic fp32 kernels.
# * **DeepSparse** compiles the graph for this CPU: it fuses layers and executes
#   "tensor columns", running a chunk of the image through several layers while it
#   is still in cache, instead of layer after layer through main memory. On a dense
#   fp32 model that is its only advantage; the big gains come when the weights are
#   pruned (04) and quantized to INT8 (03, 05).
#
# **What the write-ups claimed.** Neural Magic: dense YOLOv5l at 640, batch 1, 24 cores:
# DeepSparse **17.7** vs ONNX Runtime **5.8 items/sec** ("a 3x improvement"). The blog:
# dense YOLOv5s on DeepSparse **29.48 FPS** with 4 cores vs PyTorch **21.91 FPS** with 8.
# Here all engines get the same cores.
#
# **Batch sizes.** Neural Magic's throughput table used batch 64 at 640 on 24 cores. On
# 2 cores one batch of 64 takes seconds, so the quick profile measures batch 8 and the
# full profile batch 64 (at 416). PyTorch is measured at batch 1 only: its batch-64 run
# would take about half an hour on 2 cores and no claim needs it.

# %% tags=["parameters"]
# Parameters (papermill injects new values after this cell: `-p profile full`).
# None means "the profile's default" (see the next cell).
profile = "quick"  # "quick": minutes on 2 CPU cores, for checking the pipeline; "full": the real thing
imgsz = 416  # input size of the blog's models
cores = None  # CPU cores for the engines; None: all cores this process may use
device = "auto"  # training device; "auto": a CUDA GPU when there is one, else the CPU
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
    quick=dict(warmup=10, iterations=30, big_warmup=3, big_iterations=10, video_frames=40, val_images=48, bench_batch_sizes=[1, 8]),
    full=dict(warmup=25, iterations=80, big_warmup=25, big_iterations=80, video_frames=None, val_images=None, bench_batch_sizes=[1, 64]),
    val_images=val_images, bench_batch_sizes=bench_batch_sizes,
)
cfg

# %%
from yolotut.inference.export import export_onnx
from yolotut.models import load_checkpoint

dense_pt = runner.require(models_dir / "yolov5s-dense.pt", "01_baseline")
export = export_onnx(load_checkpoint(dense_pt), models_dir / "yolov5s-dense.onnx", imgsz=imgsz)
dense_onnx = export.path
file_record = runner.onnx_file_record(dense_onnx, arch="yolov5s", variant="dense", precision="fp32", dataset="pistols")
print(f"{dense_onnx}: {file_record['file_size_mb']:.1f} MB ({file_record['file_size_gz_mb']:.1f} MB gzipped), "
      f"conv sparsity {file_record['sparsity']:.1%}")

# %% [markdown]
# ## Engine-only throughput

# %%
from yolotut.inference.benchmark import run_benchmark

bench = []
for batch in cfg.bench_batch_sizes:
    for engine, model_file in (("torch", dense_pt), ("onnxruntime", dense_onnx), ("deepsparse", dense_onnx)):
        if engine == "torch" and batch > 1:
            continue  # see "Batch sizes" above
        warmup, iterations = (cfg.warmup, cfg.iterations) if batch == 1 else (cfg.big_warmup, cfg.big_iterations)
        result = run_benchmark(model_file, engine, batch_size=batch, cores=cores, imgsz=imgsz,
                               warmup=warmup, iterations=iterations)
        bench.append(result)
        print(result.summary() if not result.skipped else f"{engine} batch {batch}: skipped: {result.skipped}")

# %%
from yolotut.ui import plots

ENGINE_NAMES = {"torch": "pytorch"}
rows = [{"label": f"batch {r.batch_size}", "engine": ENGINE_NAMES.get(r.engine, r.engine), "items_per_sec": r.items_per_sec}
        for r in bench if not r.skipped]
plots.engine_bar_figure(rows, title=f"Dense YOLOv5s fp32 at {imgsz}: engine-only items/sec ({hw['cores_available']} cores)")

# %% [markdown]
# ## End-to-end video FPS (batch 1)

# %%
from yolotut.inference.engines import EngineUnavailableError, create_engine
from yolotut.inference.video import run_video

demo_video = assets.fetch("demo-video")
videos, engines = {}, {}
for engine, model_file in (("torch", dense_pt), ("onnxruntime", dense_onnx), ("deepsparse", dense_onnx)):
    try:
        engines[engine] = create_engine(str(model_file), engine, batch_size=1, cores=cores, imgsz=imgsz)
    except EngineUnavailableError as exc:
        print(f"{engine}: skipped: {exc}")
        continue
    videos[engine] = run_video(engines[engine], demo_video, max_frames=cfg.video_frames)
    print(f"{engine:12s} {videos[engine].fps:6.1f} FPS end-to-end, {videos[engine].fps_pipeline:6.1f} FPS pipeline")

# %%
from yolotut.ui.widgets import show_frames

show_frames(engines[fast_engine], demo_video, count=3, title=f"{fast_engine}, dense YOLOv5s");

# %%
tags = dict(arch="yolov5s", variant="dense", precision="fp32", dataset="pistols")
records = [runner.labelled(r, id=f"02-{r.engine}-b{r.batch_size}", **tags) for r in bench]
records += [runner.labelled(v, id=f"02-{e}-video", **tags) for e, v in videos.items()]
records.append(file_record)
entry = runner.record_model("dense", dense_onnx, file_record["sparsity"], "fp32", model="yolov5s", checkpoint=str(dense_pt),
                    notebook="02_deepsparse_dense", imgsz=imgsz, file_size_gz_mb=file_record["file_size_gz_mb"],
                    manifest_path=manifest_path)

# %%
path = runner.write_results(results_dir, "02_deepsparse_dense", {
    "profile": profile, "hardware": hw, "info": {}, "measurements": records,
})
print("wrote", path)
