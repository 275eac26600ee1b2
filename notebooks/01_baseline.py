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
# # 01 · Baseline: YOLOv5s in PyTorch on the CPU
#
# Every later notebook is compared with this one. Here we
#
# 1. fine-tune **YOLOv5s** on the *pistols* dataset (1 class, 416×416), the way the
#    "Supercharging YOLOv5" blog did, and save the **dense** checkpoint that notebooks
#    02-05 start from;
# 2. measure the starting speed of that model in **eager PyTorch, fp32, on the CPU**:
#    - *engine-only throughput* (items/sec): one random batch, warm-up runs, then timed
#      runs of the forward pass only (the Neural Magic post's method: 25 + 80);
#    - *end-to-end video FPS* on the blog's demo video: decode → letterbox → infer → NMS → draw.
#
# **What the write-ups claimed for this step.** The blog's PyTorch CPU baseline:
# **21.91 FPS** (45.58 ms per frame) for YOLOv5s at 416 on an Intel i9-11900 using all 8
# cores. Neural Magic's GPU reference: PyTorch on a T4 GPU, **59.3 items/sec** for YOLOv5l
# at 640 (fp16). Absolute speeds depend on the machine; the reproduction report
# (notebook 09) therefore compares *ratios* measured side by side here.

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
    quick=dict(epochs=1, max_images=32, steps=4, train_batch_size=8, warmup=10, iterations=30, big_warmup=3, big_iterations=10, video_frames=40, val_images=48, bench_batch_sizes=[1, 8]),
    full=dict(epochs=50, max_images=None, steps=None, train_batch_size=16, warmup=25, iterations=80, big_warmup=25, big_iterations=80, video_frames=None, val_images=None, bench_batch_sizes=[1, 64]),
    epochs=epochs, max_images=max_images, steps=steps, train_batch_size=train_batch_size, val_images=val_images, bench_batch_sizes=bench_batch_sizes,
)
cfg

# %% [markdown]
# The **quick** profile trains one epoch of a few steps on a few dozen images: enough to
# exercise every step in a few minutes on 2 cores, not enough to detect pistols. The
# **full** profile trains 50 epochs on all 2471 images: on a GPU (`device="auto"` picks it)
# that is well under an hour; on 2 CPU cores it is more than a day (the estimate printed
# after training is extrapolated from the measured time per image).

# %% [markdown]
# > **Offline truth: the starting weights.** The write-ups fine-tuned the COCO-pretrained
# > `yolov5s.pt` (Ultralytics release asset). Where that file cannot be fetched (this
# > project's offline machines; the asset registry knows its URL and checksum), the
# > tutorial **initialises YOLOv5s from scratch** and fine-tunes it on the pistols
# > dataset instead. Its *speed* figures are real (speed does not depend on the values of
# > the weights), but its **mAP is not comparable to the blog's** and is labelled as such.
# > Online, the next cell fetches the real `yolov5s.pt` and everything below uses it.

# %%
try:
    start_weights = str(assets.fetch("yolov5s"))
    weights_note = "COCO-pretrained yolov5s.pt (Ultralytics v7.0)"
except assets.AssetUnavailableError as exc:
    start_weights = None  # TrainConfig(weights=None, size="s"): YOLOv5s from scratch
    weights_note = "YOLOv5s initialised from scratch (yolov5s.pt not obtainable here): mAP not comparable to the blog"
    print(f"offline: {exc}")
print("starting weights:", weights_note)

# %% [markdown]
# ## Dense fine-tuning
#
# `recipe="dense-finetune"` is a SparseML recipe with no pruning and no quantization: the
# same training loop as the sparse runs, so the only difference later is the recipe.

# %%
from yolotut.training.loop import TrainConfig, train

train_config = TrainConfig(
    data="pistols", weights=start_weights, size="s", recipe="dense-finetune",
    epochs=cfg.epochs, imgsz=imgsz, batch_size=cfg.train_batch_size, max_images=cfg.max_images,
    max_steps_per_epoch=cfg.steps, device=device, out_dir=str(runs_dir / "01_dense"),
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
from yolotut.models import save_checkpoint
from yolotut.training.loop import load_trained_model

dense_model = load_trained_model(train_result.final_checkpoint)
dense_pt = save_checkpoint(dense_model, models_dir / "yolov5s-dense.pt", weights=weights_note)
print("dense checkpoint for notebooks 02-05:", dense_pt)

# %% [markdown]
# ## PyTorch on the CPU: engine-only throughput (batch 1)
#
# The quick profile times fewer runs (10 warm-up + 30 timed) than the method of the
# Neural Magic post (25 + 80, the full profile); the result records which.

# %%
from yolotut.inference.benchmark import benchmark_engine
from yolotut.inference.engines import create_engine

torch_engine = create_engine(str(dense_pt), "torch", batch_size=1, cores=cores, imgsz=imgsz)
torch_bench = benchmark_engine(torch_engine, warmup=cfg.warmup, iterations=cfg.iterations)
print(torch_bench.summary())

# %% [markdown]
# ## End-to-end FPS on the demo video
#
# `fps` counts everything per frame (decode, letterbox, inference, NMS, drawing);
# `fps_pipeline` only pre-processing + inference + NMS. The blog's FPS figures were
# printed by its `annotate.py` around the per-frame work, excluding video decoding.

# %%
from yolotut.inference.video import run_video

demo_video = assets.fetch("demo-video")
torch_video = run_video(torch_engine, demo_video, max_frames=cfg.video_frames,
                        out_path=models_dir.parent / "videos" / "01_pytorch_dense.mp4")
print(f"{torch_video.frames} frames: {torch_video.fps:.1f} FPS end-to-end, {torch_video.fps_pipeline:.1f} FPS pipeline")
print("ms per frame:", {k: round(v, 1) for k, v in torch_video.stage_ms.items()})

# %%
from yolotut.ui.widgets import show_frames

show_frames(torch_engine, demo_video, count=3, title="PyTorch, dense YOLOv5s (quick profile: a barely trained model finds little)");

# %% [markdown]
# ## GPU figures (only where CUDA exists)
#
# The write-ups' GPU rows (T4, V100, RTX 3090) need a GPU; this cell measures the same
# model on one when torch sees it and otherwise says visibly that it was skipped.

# %%
import torch

gpu_bench = gpu_video = None
if torch.cuda.is_available():
    gpu_engine = create_engine(str(dense_pt), "torch", batch_size=1, imgsz=imgsz, device="cuda")
    gpu_bench = benchmark_engine(gpu_engine, warmup=cfg.warmup, iterations=cfg.iterations)
    gpu_video = run_video(gpu_engine, demo_video, max_frames=cfg.video_frames)
    print(gpu_bench.summary(), f"| video {gpu_video.fps:.1f} FPS")
else:
    print("skipped: no GPU (torch sees no CUDA device), so the GPU rows of the write-ups are not measured here")

# %%
import plotly.graph_objects as go

fig = go.Figure([
    go.Bar(name="engine-only items/sec (batch 1)", x=["PyTorch CPU (here)"], y=[torch_bench.items_per_sec]),
    go.Bar(name="end-to-end video FPS", x=["PyTorch CPU (here)", "blog: PyTorch, i9-11900, 8 cores"],
           y=[torch_video.fps, 21.91]),
])
fig.update_layout(title="Dense YOLOv5s fp32 in PyTorch at 416 (the blog's figure is from other hardware)",
                  yaxis_title="images / second", barmode="group", template="plotly_white")
fig

# %%
tags = dict(arch="yolov5s", variant="dense", precision="fp32", dataset="pistols")
records = [runner.labelled(torch_bench, id="01-pytorch-b1", **tags),
           runner.labelled(torch_video, id="01-pytorch-video", **tags)]
if gpu_bench is not None:
    records += [runner.labelled(gpu_bench, id="01-pytorch-gpu-b1", device="cuda", **tags),
                runner.labelled(gpu_video, id="01-pytorch-gpu-video", device="cuda", **tags)]
train_info = {"weights": weights_note, "seconds": train_result.seconds, "device": train_result.device,
              "epochs": train_result.epochs_run, "estimate": estimate, "checkpoint": str(dense_pt)}

# %%
path = runner.write_results(results_dir, "01_baseline", {
    "profile": profile, "hardware": hw, "info": train_info, "measurements": records,
})
print("wrote", path)
