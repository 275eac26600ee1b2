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
# # 04 · Pruning: per-layer sparsity targets, [1, 4] blocks
#
# **Pruning** sets weights to zero and fine-tunes the rest to recover accuracy. The
# `pruning` recipe uses **gradual magnitude pruning** (GMP): from 5 % it raises each
# layer's sparsity along a cubic curve to its target over the first 70 % of training,
# removing the smallest weights at every step, then fine-tunes with the mask fixed.
#
# Targets are per layer, because layers differ in how much they tolerate (see
# `yolotut/recipes/README.md`):
#
# | layers | target |
# | --- | --- |
# | 1-2, high-resolution backbone | 40 % |
# | 3-4 and the P3 head path | 50 % |
# | 5-6 and 18-20 | 65 % |
# | 7-10 and 21-23, most of the weights | 75 % |
# | stem (0) and Detect (24) | dense |
#
# `mask_type: [1, 4]` prunes **blocks of four consecutive input channels**: the group
# that one VNNI instruction consumes, so that DeepSparse's INT8 kernels can skip a whole
# block (notebook 05). On an fp32 model like this one, DeepSparse skips zeros too, but the
# gain is smaller.
#
# **What the write-ups claimed.** Blog: pruned YOLOv5s on DeepSparse **35.50 FPS** vs 29.48
# dense (4 cores; its own latency, 31.73 ms, gives 31.5 FPS). Neural Magic's recipe table:
# pruned YOLOv5s **100.5** vs dense **78.2 items/sec** (batch 64, 24 cores, 2021) and
# **8.4 MB** vs **24.8 MB** on disk.

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
    data="pistols", weights=str(dense_pt), size="s", recipe="pruning",
    epochs=cfg.epochs, imgsz=imgsz, batch_size=cfg.train_batch_size, max_images=cfg.max_images,
    max_steps_per_epoch=cfg.steps, device=device, out_dir=str(runs_dir / "04_pruned"),
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
from yolotut.models import save_checkpoint
from yolotut.training.loop import conv_weight_sparsity, load_trained_model

pruned_model = load_trained_model(train_result.final_checkpoint)
pruned_pt = save_checkpoint(pruned_model, models_dir / "yolov5s-pruned.pt")
export = export_onnx(pruned_model, models_dir / "yolov5s-pruned.onnx", imgsz=imgsz)
pruned_onnx = export.path
file_record = runner.onnx_file_record(pruned_onnx, arch="yolov5s", variant="pruned", precision="fp32", dataset="pistols")
print(f"conv sparsity: {conv_weight_sparsity(pruned_model):.1%} in PyTorch, {file_record['sparsity']:.1%} in the ONNX file "
      f"({file_record['block4_sparsity']:.1%} of all 1x4 blocks entirely zero)")
print(f"{file_record['file_size_mb']:.1f} MB raw, {file_record['file_size_gz_mb']:.1f} MB gzipped (zeros compress)")
if file_record["sparsity"] < 0.1:
    print("WARNING: the exported model is barely sparse: the pruning run did not reach its targets")

# %% [markdown]
# ## Sparsity per layer, measured in the exported ONNX file

# %%
import plotly.graph_objects as go

layers = export.sparsity.layers
names = [layer.name.replace("/model/", "").replace("/Conv", "") or f"conv{i}" for i, layer in enumerate(layers)]
fig = go.Figure([
    go.Bar(name="zero weights", x=names, y=[layer.sparsity for layer in layers]),
    go.Bar(name="all-zero 1x4 blocks", x=names, y=[layer.block4_sparsity for layer in layers]),
])
fig.update_layout(title="Pruned YOLOv5s: sparsity of each convolution (ONNX)", yaxis_title="fraction",
                  yaxis_range=[0, 1], barmode="group", template="plotly_white", xaxis_tickangle=-60, height=450)
fig

# %%
from yolotut.inference.benchmark import run_benchmark

bench = []
for batch in cfg.bench_batch_sizes:
    warmup, iterations = (cfg.warmup, cfg.iterations) if batch == 1 else (cfg.big_warmup, cfg.big_iterations)
    for engine in ("onnxruntime", "deepsparse"):
        result = run_benchmark(pruned_onnx, engine, batch_size=batch, cores=cores, warmup=warmup, iterations=iterations)
        bench.append(result)
        print(result.summary() if not result.skipped else f"{engine} batch {batch}: skipped: {result.skipped}")

# %%
from yolotut.ui import plots

dense_records = runner.read_results(results_dir, "02_deepsparse_dense", "02_deepsparse_dense")["measurements"]
rows = [{"label": f"dense b{r['batch_size']}", "engine": r["engine"], "items_per_sec": r["items_per_sec"]}
        for r in dense_records if r.get("items_per_sec") and r["engine"] != "torch"]
rows += [{"label": f"pruned b{r.batch_size}", "engine": r.engine, "items_per_sec": r.items_per_sec} for r in bench if not r.skipped]
plots.engine_bar_figure(rows, title="Dense vs pruned YOLOv5s (fp32): engine-only items/sec")

# %%
from yolotut.inference.engines import create_engine
from yolotut.inference.evaluate import evaluate
from yolotut.inference.video import run_video
from yolotut.ui.widgets import show_frames

pruned_engine = create_engine(str(pruned_onnx), fast_engine, batch_size=1, cores=cores)
pruned_map = evaluate(pruned_engine, "pistols", split="valid", max_images=cfg.val_images)
demo_video = assets.fetch("demo-video")
video = run_video(pruned_engine, demo_video, max_frames=cfg.video_frames)
print(f"mAP@0.5 {pruned_map['map50']:.3f} ({pruned_map['images']} images); video: {video.fps:.1f} FPS end-to-end")
show_frames(pruned_engine, demo_video, count=3, title=f"{fast_engine}, pruned YOLOv5s");

# %%
tags = dict(arch="yolov5s", variant="pruned", precision="fp32", dataset="pistols")
records = [runner.labelled(r, id=f"04-{r.engine}-b{r.batch_size}", **tags) for r in bench]
records += [runner.labelled(video, id=f"04-{fast_engine}-video", **tags),
            runner.labelled(pruned_map, id="04-map", **tags), file_record]
entry = runner.record_model("pruned", pruned_onnx, file_record["sparsity"], "fp32", map50=pruned_map["map50"], model="yolov5s",
                    checkpoint=str(pruned_pt), notebook="04_pruning", imgsz=imgsz,
                    file_size_gz_mb=file_record["file_size_gz_mb"], manifest_path=manifest_path)
train_info = {"seconds": train_result.seconds, "device": train_result.device, "estimate": estimate,
              "layers": [{"name": n, "sparsity": l.sparsity, "block4": l.block4_sparsity} for n, l in zip(names, layers)]}

# %%
path = runner.write_results(results_dir, "04_pruning", {
    "profile": profile, "hardware": hw, "info": train_info, "measurements": records,
})
print("wrote", path)
