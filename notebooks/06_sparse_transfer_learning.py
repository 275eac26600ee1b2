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
# # 06 · Sparse transfer learning
#
# Pruning is the expensive part. **Sparse transfer learning** reuses a model that someone
# already pruned on a large dataset (the *upstream*) and fine-tunes it on your data with
# its zeros **held fixed** (SparseML's `ConstantPruningModifier`), then quantizes it
# (QAT): the `sparse-transfer-quantization` recipe. You get a sparse INT8 model for the
# price of a short fine-tune.
#
# **What the blog did and claimed.** It started from SparseZoo's
# `zoo:cv/detection/yolov5-s/pytorch/ultralytics/coco/pruned_quant-aggressive_94` (a
# YOLOv5s pruned and quantized on COCO) and fine-tuned it on pistols: **51.56 FPS** on
# DeepSparse (4 cores), "slightly lower" mAP than its own pruned + quantized run.

# %% [markdown]
# > **Offline truth: the upstream model.** SparseZoo reached end of life in June 2025 and
# > its stubs no longer resolve (`yolotut.assets.resolve_zoo_stub` says so), and COCO is
# > not available here. The tutorial therefore **builds its own sparse upstream**: YOLOv5s
# > (COCO weights when fetchable, else from scratch) pruned with the `pruning` recipe on a
# > *different* dataset, American Sign Language letters (26 classes), and then transfers
# > it to pistols, as the blog transferred COCO to pistols. The mechanics (mask held,
# > QAT, INT8 export) are the same; the upstream is much smaller than COCO.

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
upstream_epochs = None  # pruning epochs of the upstream model on ASL
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
    quick=dict(epochs=2, upstream_epochs=1, max_images=32, steps=4, train_batch_size=8, warmup=10, iterations=30, big_warmup=3, big_iterations=10, video_frames=40, val_images=48, bench_batch_sizes=[1, 8]),
    full=dict(epochs=30, upstream_epochs=50, max_images=None, steps=None, train_batch_size=16, warmup=25, iterations=80, big_warmup=25, big_iterations=80, video_frames=None, val_images=None, bench_batch_sizes=[1, 64]),
    upstream_epochs=upstream_epochs, epochs=epochs, max_images=max_images, steps=steps, train_batch_size=train_batch_size, val_images=val_images, bench_batch_sizes=bench_batch_sizes,
)
cfg

# %%
try:
    assets.resolve_zoo_stub("zoo:cv/detection/yolov5-s/pytorch/ultralytics/coco/pruned_quant-aggressive_94")
except (assets.SparseZooUnavailableError, assets.AssetUnavailableError) as exc:
    print(f"SparseZoo upstream unavailable: {exc}")

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
# ## The upstream: YOLOv5s pruned on ASL letters

# %%
from yolotut.training.loop import TrainConfig, train

upstream_config = TrainConfig(
    data="asl", weights=start_weights, size="s", recipe="pruning", epochs=cfg.upstream_epochs, imgsz=imgsz,
    batch_size=cfg.train_batch_size, max_images=cfg.max_images, max_steps_per_epoch=cfg.steps, device=device,
    out_dir=str(runs_dir / "06_upstream_asl"),
)
upstream_result = train(upstream_config)
print(f"upstream: {upstream_result.epochs_run} epoch(s) in {upstream_result.seconds:.0f} s")

# %%
from yolotut.inference.export import export_onnx
from yolotut.models import save_checkpoint
from yolotut.training.loop import conv_weight_sparsity, load_trained_model

upstream_model = load_trained_model(upstream_result.final_checkpoint)
upstream_pt = save_checkpoint(upstream_model, models_dir / "yolov5s-asl-pruned-upstream.pt")
upstream_export = export_onnx(upstream_model, models_dir / "yolov5s-asl-pruned-upstream.onnx", imgsz=imgsz)
upstream_sparsity = conv_weight_sparsity(upstream_model)
print(f"upstream conv sparsity {upstream_sparsity:.1%}")
if upstream_sparsity < 0.1:
    print("WARNING: the upstream model is barely sparse: the pruning run did not reach its targets")

# %% [markdown]
# ## Transfer to pistols: mask held, then QAT

# %%
from yolotut.training.loop import TrainConfig, train

train_config = TrainConfig(
    data="pistols", weights=str(upstream_pt), size="s", recipe="sparse-transfer-quantization",
    epochs=cfg.epochs, imgsz=imgsz, batch_size=cfg.train_batch_size, max_images=cfg.max_images,
    max_steps_per_epoch=cfg.steps, device=device, out_dir=str(runs_dir / "06_sparse_transfer"),
)
train_result = train(train_config)
print(f"{train_result.epochs_run} epoch(s) in {train_result.seconds:.0f} s on {train_result.device}")
train_result.history[-1]

# %%
images_seen = train_result.epochs_run * min(cfg.max_images or 2471, (cfg.steps or 10**9) * cfg.train_batch_size)
estimate = runner.full_run_estimate(train_result.seconds, images_seen, epochs=30, train_images=2471)
print(f"{estimate['seconds_per_image']:.2f} s per training image here ({train_result.device}): the full profile "
      f"(30 epochs x 2471 images) would take about {estimate['estimated_hours']:.1f} h on this machine (estimate)")

# %%
transfer_model = load_trained_model(train_result.final_checkpoint)
export = export_onnx(transfer_model, models_dir / "yolov5s-sparse-transfer-int8.onnx", imgsz=imgsz)
st_onnx = export.path
file_record = runner.onnx_file_record(st_onnx, arch="yolov5s", variant="sparse-transfer", precision="int8", dataset="pistols")

# %% [markdown]
# ## Did the mask hold?
#
# Every weight that was zero upstream must still be zero after the transfer (INT8
# rounding can only add zeros). Checked twice: per layer in the two ONNX files, and
# weight by weight in PyTorch (the transferred model's weights, fake-quant wrappers
# included, matched to the upstream's by name and shape).

# %%
import numpy as np
import plotly.graph_objects as go

up_layers, st_layers = upstream_export.sparsity.layers, export.sparsity.layers
names = [layer.name.replace("/model/", "").replace("/Conv", "") for layer in up_layers]
fig = go.Figure([go.Bar(name="upstream (ASL, fp32)", x=names, y=[l.sparsity for l in up_layers]),
                 go.Bar(name="after transfer (pistols, INT8)", x=names, y=[l.sparsity for l in st_layers])])
fig.update_layout(title="Sparsity per convolution before and after sparse transfer", barmode="group",
                  yaxis_range=[0, 1], template="plotly_white", xaxis_tickangle=-60, height=450)

def conv_weights(model):
    # QAT wraps each convolution (`conv.module.weight`); without ".module" the names match.
    # Detect (model.24) is left out: it was re-initialised for the new classes.
    return {k.replace(".module.", "."): v for k, v in model.state_dict().items()
            if v.dim() == 4 and not k.startswith("model.24.")}


up_state, st_state = conv_weights(upstream_model), conv_weights(transfer_model)
common = [k for k in up_state if k in st_state and st_state[k].shape == up_state[k].shape]
zeros = sum(int((up_state[k] == 0).sum()) for k in common)
lost = sum(int((st_state[k][up_state[k] == 0] != 0).sum()) for k in common)
print(f"{len(common)} of {len(up_state)} conv layers matched; {zeros} upstream zeros, {lost} of them non-zero after transfer")
print(f"ONNX conv sparsity: upstream {upstream_export.sparsity.conv_sparsity:.1%}, after transfer {file_record['sparsity']:.1%}")
mask_held = zeros > 0 and lost == 0
print("mask held" if mask_held else "WARNING: " + ("the upstream had no zeros to hold" if zeros == 0 else "the mask did NOT hold"))
fig

# %%
from yolotut.inference.benchmark import run_benchmark
from yolotut.inference.engines import create_engine
from yolotut.inference.evaluate import evaluate
from yolotut.inference.video import run_video
from yolotut.ui.widgets import show_frames

bench = []
for batch in cfg.bench_batch_sizes:
    warmup, iterations = (cfg.warmup, cfg.iterations) if batch == 1 else (cfg.big_warmup, cfg.big_iterations)
    result = run_benchmark(st_onnx, fast_engine, batch_size=batch, cores=cores, warmup=warmup, iterations=iterations)
    bench.append(result)
    print(result.summary() if not result.skipped else f"batch {batch}: skipped: {result.skipped}")
st_engine = create_engine(str(st_onnx), fast_engine, batch_size=1, cores=cores)
st_map = evaluate(st_engine, "pistols", split="valid", max_images=cfg.val_images)
demo_video = assets.fetch("demo-video")
video = run_video(st_engine, demo_video, max_frames=cfg.video_frames)
print(f"mAP@0.5 {st_map['map50']:.3f}; video {video.fps:.1f} FPS end-to-end (blog: 51.56 FPS, 4 cores of an i9-11900)")
show_frames(st_engine, demo_video, count=3, title=f"{fast_engine}, sparse-transfer YOLOv5s");

# %%
tags = dict(arch="yolov5s", variant="sparse-transfer", precision="int8", dataset="pistols")
records = [runner.labelled(r, id=f"06-{r.engine}-b{r.batch_size}", **tags) for r in bench]
records += [runner.labelled(video, id=f"06-{fast_engine}-video", **tags),
            runner.labelled(st_map, id="06-map", **tags), file_record]
entry = runner.record_model("sparse-transfer", st_onnx, file_record["sparsity"], "int8", map50=st_map["map50"], model="yolov5s",
                    notebook="06_sparse_transfer_learning", imgsz=imgsz, upstream=str(upstream_pt),
                    file_size_gz_mb=file_record["file_size_gz_mb"], manifest_path=manifest_path)
train_info = {"upstream_sparsity": upstream_sparsity, "mask_held": mask_held, "upstream_zeros": zeros,
              "zeros_lost": lost, "seconds": upstream_result.seconds + train_result.seconds, "estimate": estimate}

# %%
path = runner.write_results(results_dir, "06_sparse_transfer_learning", {
    "profile": profile, "hardware": hw, "info": train_info, "measurements": records,
})
print("wrote", path)
