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
# # 06 · Sparse transfer learning: reuse someone else's pruning
#
# Pruning is the expensive part of notebook 05. Sparse transfer learning pays for it once,
# on a large dataset, and reuses the result on yours.
#
# **What you will learn**
#
# 1. what **sparse transfer learning** is: start from a model already pruned on another
#    dataset (the *upstream*), fine-tune it on your data with its zeros **held fixed**
#    (SparseML's `ConstantPruningModifier`), then quantize it with QAT: the
#    `sparse-transfer-quantization` recipe;
# 2. how to check that the mask held, layer by layer and weight by weight;
# 3. what the transferred model runs at, and what it scores.
#
# **What the blog did.** It started from SparseZoo's
# `zoo:cv/detection/yolov5-s/pytorch/ultralytics/coco/pruned_quant-aggressive_94` (a
# YOLOv5s pruned and quantized on COCO), fine-tuned it on the pistols and reported
# **51.6 FPS** in DeepSparse (4 cores), with a "slightly lower" mAP than its own pruned +
# quantized model.

# %% tags=["parameters"]
profile = "quick"  # "quick": minutes on 2 CPU cores, to check the pipeline; "full": the real run
device = "auto"  # training device: a CUDA GPU when there is one, else the CPU
epochs = None  # transfer epochs; None: the profile's value (reproduce.profiles)
upstream_epochs = None  # pruning epochs of the upstream model; None: the profile's value
results_dir = "../outputs/results"
models_dir = "../outputs/models"
manifest_path = "../outputs/manifest.json"

# %%
from yolotut.notebook import setup

ctx = setup("06_sparse_transfer_learning", profile, results_dir=results_dir, models_dir=models_dir,
            manifest_path=manifest_path, epochs=epochs, upstream_epochs=upstream_epochs)
cfg = ctx.settings
ctx

# %% [markdown]
# ## An upstream of our own
#
# SparseZoo reached its end of life in June 2025: its stubs no longer resolve, and COCO is
# not available offline. The cell below tries the blog's stub and shows why it fails.

# %%
from yolotut import assets

BLOG_UPSTREAM = "zoo:cv/detection/yolov5-s/pytorch/ultralytics/coco/pruned_quant-aggressive_94"
try:
    upstream_note = f"resolved: {assets.resolve_zoo_stub(BLOG_UPSTREAM)}"
except (assets.SparseZooUnavailableError, assets.AssetUnavailableError) as exc:
    upstream_note = f"unavailable: {exc}"
upstream_note

# %% [markdown]
# So the tutorial builds its own upstream, the same way the blog's was built on COCO:
# YOLOv5s (the COCO weights where they can be fetched) pruned with notebook 04's recipe
# on a *different* dataset, American Sign Language letters (26 classes). The transfer to
# the pistols then works as the blog's did; only the upstream dataset is much smaller.

# %%
try:
    start_weights = str(assets.fetch("yolov5s"))
    weights_note = "COCO-pretrained yolov5s.pt (Ultralytics v7.0)"
except assets.AssetUnavailableError:
    start_weights = None
    weights_note = "YOLOv5s from random weights (yolov5s.pt not obtainable here): mAP not comparable to the blog"
weights_note

# %%
from yolotut.training.loop import TrainConfig, train

upstream_result = train(TrainConfig(
    data="asl", weights=start_weights, size="s", recipe="pruning", epochs=cfg.upstream_epochs,
    imgsz=416, batch_size=cfg.train_batch_size, max_images=cfg.max_images,
    max_steps_per_epoch=cfg.steps, device=device, out_dir=str(ctx.runs_dir / "06_upstream_asl"),
))
upstream_result.history[-1]

# %% [markdown]
# The upstream's checkpoint is what the transfer starts from; its ONNX export records
# where its zeros are, layer by layer. In the quick profile the pruning ramp has barely
# begun, so there are few zeros to hold.

# %%
from yolotut.inference.export import export_onnx
from yolotut.inference.sparsify import conv_weight_sparsity
from yolotut.models import load_trained_model, save_checkpoint

upstream_model = load_trained_model(upstream_result.final_checkpoint)
upstream_pt = save_checkpoint(upstream_model, ctx.models_dir / "yolov5s-asl-pruned-upstream.pt")
upstream_export = export_onnx(upstream_model, ctx.models_dir / "yolov5s-asl-pruned-upstream.onnx", imgsz=416)
upstream_sparsity = conv_weight_sparsity(upstream_model)
{"upstream conv sparsity": round(upstream_sparsity, 3)}

# %% [markdown]
# ## Transfer to the pistols: the mask held, then QAT
#
# The recipe holds every zero of the upstream with a constant mask while all other
# weights fine-tune; a new Detect layer replaces the 26 ASL classes with one class, and
# QAT runs at the end as in notebook 05.

# %%
train_result = train(TrainConfig(
    data="pistols", weights=str(upstream_pt), size="s", recipe="sparse-transfer-quantization",
    epochs=cfg.epochs, imgsz=416, batch_size=cfg.train_batch_size, max_images=cfg.max_images,
    max_steps_per_epoch=cfg.steps, device=device, out_dir=str(ctx.runs_dir / "06_sparse_transfer"),
))
train_result.history[-1]

# %%
from yolotut.notebook import full_run_estimate

images_seen = train_result.epochs_run * min(cfg.max_images or 2471, (cfg.steps or 10**9) * cfg.train_batch_size)
estimate = full_run_estimate(train_result.seconds, images_seen, epochs=30, train_images=2471)
print(f"about {estimate['estimated_hours']:.1f} h for the full profile's transfer on {train_result.device}")

# %%
from yolotut.reproduce import results

tags = dict(arch="yolov5s", variant="sparse-transfer", precision="int8", dataset="pistols")
transfer_model = load_trained_model(train_result.final_checkpoint)
export = export_onnx(transfer_model, ctx.models_dir / "yolov5s-sparse-transfer-int8.onnx", imgsz=416)
st_onnx = export.path
st_file = ctx.record(results.onnx_file_record(st_onnx, **tags), **tags)
{key: round(st_file[key], 3) for key in ("sparsity", "file_size_mb", "file_size_gz_mb")}

# %% [markdown]
# ## Did the mask hold?
#
# Every weight that was zero upstream must still be zero after the transfer; INT8
# rounding can only add zeros. First per layer, in the two ONNX files:

# %%
import plotly.graph_objects as go

up_layers, st_layers = upstream_export.sparsity.layers, export.sparsity.layers
names = [layer.name.replace("/model/", "").replace("/Conv", "") or f"conv{i}" for i, layer in enumerate(up_layers)]
fig = go.Figure([go.Bar(name="upstream (ASL, fp32)", x=names, y=[layer.sparsity for layer in up_layers]),
                 go.Bar(name="after transfer (pistols, INT8)", x=names, y=[layer.sparsity for layer in st_layers])])
fig.update_layout(title="Sparsity of each convolution before and after sparse transfer", barmode="group",
                  yaxis_title="fraction of zero weights", yaxis_range=[0, 1], xaxis_tickangle=-60, height=450)

# %% [markdown]
# Then weight by weight, in PyTorch: `zeros_kept` matches the two models' convolutions by
# name and counts the upstream zeros that are no longer zero. Detect is left out, since
# it was re-initialised for the new classes.

# %%
from yolotut.inference.sparsify import zeros_kept

held = zeros_kept(upstream_model, transfer_model)
mask_held = held["upstream_zeros"] > 0 and held["zeros_lost"] == 0
{**held, "mask held": mask_held}

# %% [markdown]
# ## Speed, accuracy and the video
#
# The fastest engine here runs the transferred model at batch 1 and at the large batch.

# %%
from yolotut.inference.benchmark import run_benchmark

for batch in cfg.bench_batch_sizes:
    warmup, iterations = (cfg.warmup, cfg.iterations) if batch == 1 else (cfg.big_warmup, cfg.big_iterations)
    result = run_benchmark(st_onnx, ctx.fast_engine, batch_size=batch, warmup=warmup, iterations=iterations)
    ctx.record(result, id=f"06-{ctx.fast_engine}-b{batch}", **tags)

# %%
from yolotut.inference.engines import create_engine
from yolotut.inference.evaluate import evaluate
from yolotut.inference.video import run_video
from yolotut.ui.widgets import show_frames

st_engine = create_engine(str(st_onnx), ctx.fast_engine, batch_size=1)
st_map = ctx.record(evaluate(st_engine, "pistols", split="valid", max_images=cfg.val_images), id="06-map", **tags)
demo_video = assets.fetch("demo-video")
ctx.record(run_video(st_engine, demo_video, max_frames=cfg.video_frames), id=f"06-{ctx.fast_engine}-video", **tags)
show_frames(st_engine, demo_video, count=3, title=f"sparse-transfer YOLOv5s, {ctx.fast_engine}")
ctx.table()

# %% [markdown]
# ## Save
#
# The manifest entry names the upstream checkpoint, so the report can say where the
# zeros came from.

# %%
ctx.add_model("sparse-transfer", st_onnx, st_file["sparsity"], "int8", map50=st_map["map50"], model="yolov5s",
              imgsz=416, upstream=str(upstream_pt), file_size_gz_mb=st_file["file_size_gz_mb"])
ctx.save(upstream_sparsity=upstream_sparsity, mask_held=mask_held, upstream_zeros=held["upstream_zeros"],
         zeros_lost=held["zeros_lost"], seconds=upstream_result.seconds + train_result.seconds, estimate=estimate,
         weights=weights_note)
