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
# # 01 · Baseline: YOLOv5s in PyTorch on the CPU
#
# Every later notebook is measured against this one, so it sets the starting line.
#
# **What you will learn**
#
# 1. how the tutorial fine-tunes **YOLOv5s** on the *pistols* dataset (one class,
#    416 × 416 pixels), as the "Supercharging YOLOv5" blog did;
# 2. the two speeds the tutorial measures everywhere:
#    - *engine-only throughput* (items per second): the forward pass alone on a random
#      batch, after warm-up runs, the Neural Magic post's method (25 warm-up + 80 timed runs);
#    - *end-to-end video FPS*: decode → letterbox → infer → NMS → draw, on the blog's demo video;
# 3. why the tutorial compares *ratios* measured side by side rather than absolute speeds.
#
# **What the write-ups reported for this step.** The blog's PyTorch baseline ran
# **21.9 FPS** for YOLOv5s at 416 on an Intel i9-11900 with 8 cores. Your CPU differs, so
# the reproduction report (notebook 11) compares speed-ups measured on *one* machine.

# %% tags=["parameters"]
profile = "quick"  # "quick": minutes on 2 CPU cores, to check the pipeline; "full": the real run
device = "auto"  # training device: a CUDA GPU when there is one, else the CPU
epochs = None  # None: the profile's value (reproduce.profiles)
results_dir = "../outputs/results"
models_dir = "../outputs/models"
manifest_path = "../outputs/manifest.json"

# %% [markdown]
# One call prepares the run: output folders, the profile's settings, quiet third-party
# logs, and which engines this machine has. The table shows what it found.

# %%
from yolotut.notebook import setup

ctx = setup("01_baseline", profile, results_dir=results_dir, models_dir=models_dir,
            manifest_path=manifest_path, epochs=epochs)
cfg = ctx.settings
ctx

# %% [markdown]
# ## Starting weights
#
# The write-ups fine-tuned the COCO-pretrained `yolov5s.pt`. Where that file cannot be
# fetched, YOLOv5s starts from random weights instead: its *speed* is the same (speed
# depends on the architecture, not on the weights' values), but its mAP is not comparable
# to the blog's, and the results say so.

# %%
from yolotut import assets

try:
    start_weights = str(assets.fetch("yolov5s"))
    weights_note = "COCO-pretrained yolov5s.pt (Ultralytics v7.0)"
except assets.AssetUnavailableError:
    start_weights = None
    weights_note = "YOLOv5s from random weights (yolov5s.pt not obtainable here): mAP not comparable to the blog"
weights_note

# %% [markdown]
# ## Dense fine-tuning
#
# `recipe="dense-finetune"` is a SparseML recipe that neither prunes nor quantizes. Using
# a recipe anyway means the pruning and quantization notebooks run the very same training
# loop: the recipe is the only thing that changes. The quick profile trains a few steps,
# enough to exercise the pipeline, not to find pistols.

# %%
from yolotut.training.loop import TrainConfig, train

train_result = train(TrainConfig(
    data="pistols", weights=start_weights, size="s", recipe="dense-finetune", epochs=cfg.epochs,
    imgsz=416, batch_size=cfg.train_batch_size, max_images=cfg.max_images,
    max_steps_per_epoch=cfg.steps, device=device, out_dir=str(ctx.runs_dir / "01_dense"),
))
train_result.history[-1]

# %% [markdown]
# How long would the full profile (50 epochs over all 2,471 images) take on this machine?
# An extrapolation from the time per image just measured, start-up included:

# %%
from yolotut.notebook import full_run_estimate

images_seen = train_result.epochs_run * min(cfg.max_images or 2471, (cfg.steps or 10**9) * cfg.train_batch_size)
estimate = full_run_estimate(train_result.seconds, images_seen, epochs=50, train_images=2471)
print(f"about {estimate['estimated_hours']:.1f} h for the full profile on {train_result.device}")

# %% [markdown]
# The trained weights go to `yolov5s-dense.pt`, where notebooks 02 to 05 pick them up.

# %%
from yolotut.models import load_trained_model, save_checkpoint

dense_pt = save_checkpoint(load_trained_model(train_result.final_checkpoint),
                           ctx.models_dir / "yolov5s-dense.pt", weights=weights_note)

# %% [markdown]
# ## PyTorch on the CPU: engine-only throughput
#
# An `Engine` wraps a model file with the pre- and post-processing every engine shares;
# `benchmark_engine` times its forward pass. The quick profile times fewer runs than the
# post's 25 + 80, and the result records how many.

# %%
from yolotut.inference.benchmark import benchmark_engine
from yolotut.inference.engines import create_engine

tags = dict(arch="yolov5s", variant="dense", precision="fp32", dataset="pistols")
pytorch = create_engine(str(dense_pt), "pytorch", batch_size=1, imgsz=416)
bench = benchmark_engine(pytorch, warmup=cfg.warmup, iterations=cfg.iterations)
ctx.record(bench, id="01-pytorch-b1", **tags);

# %% [markdown]
# ## End-to-end FPS on the demo video
#
# `fps` counts all the work per frame, decoding included; `fps_pipeline` counts only
# pre-processing, inference and NMS, which is what the blog's script timed.

# %%
from yolotut.inference.video import run_video

demo_video = assets.fetch("demo-video")
video = run_video(pytorch, demo_video, max_frames=cfg.video_frames,
                  out_path=ctx.videos_dir / "01_pytorch_dense.mp4")
ctx.record(video, id="01-pytorch-video", **tags)
ctx.table()

# %% [markdown]
# Where does a frame's time go? Inference dominates; decoding, letterboxing and drawing
# are the part no engine can speed up.

# %%
import plotly.express as px

px.bar(x=list(video.stage_ms), y=list(video.stage_ms.values()), labels={"x": "stage", "y": "ms per frame"},
       title="Dense YOLOv5s in PyTorch: time per frame by stage")

# %% [markdown]
# A few annotated frames (the quick profile's barely trained model finds little):

# %%
from yolotut.ui.widgets import show_frames

show_frames(pytorch, demo_video, count=3, title="PyTorch, dense YOLOv5s");

# %% [markdown]
# ## On a GPU, when there is one
#
# The write-ups' GPU rows (T4, V100, RTX 3090) need CUDA. When torch sees a GPU, this
# cell measures the same model there; otherwise it says so and the report marks those
# rows "not measurable here".

# %%
import torch

if torch.cuda.is_available():
    gpu = create_engine(str(dense_pt), "pytorch", batch_size=1, imgsz=416, device="cuda")
    ctx.record(benchmark_engine(gpu, warmup=cfg.warmup, iterations=cfg.iterations),
               id="01-pytorch-gpu-b1", device="cuda", **tags)
    ctx.record(run_video(gpu, demo_video, max_frames=cfg.video_frames), id="01-pytorch-gpu-video", device="cuda", **tags)
else:
    print("no CUDA device: the GPU rows are not measured")

# %% [markdown]
# ## Summary
#
# The blog's figure comes from other hardware: put side by side it shows the scale,
# not a verdict. The verdicts come from ratios in the report.

# %%
px.bar(x=["PyTorch CPU, here", "blog: PyTorch, i9-11900, 8 cores"], y=[video.fps, 21.91],
       labels={"x": "", "y": "end-to-end FPS"}, title="Dense YOLOv5s fp32 at 416 in PyTorch")

# %%
ctx.save(weights=weights_note, seconds=train_result.seconds, device=train_result.device,
         epochs=train_result.epochs_run, estimate=estimate, checkpoint=str(dense_pt))
