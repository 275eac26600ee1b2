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
# # 04 · Pruning: per-layer sparsity targets in blocks of four
#
# **What you will learn**
#
# 1. how **gradual magnitude pruning** (GMP) works: starting from 5 %, each layer's
#    sparsity rises along a cubic curve to its target over the first 70 % of training,
#    the smallest weights set to zero at every step; then the mask stays fixed while the
#    remaining weights fine-tune;
# 2. why the targets differ per layer, and why the zeros come in blocks of four;
# 3. how to measure sparsity on the exported file, layer by layer;
# 4. what the zeros buy in fp32, and what they cost in accuracy.
#
# **What the write-ups reported.** The blog: pruned YOLOv5s in DeepSparse **35.5 FPS**
# against 29.5 dense (4 cores). Neural Magic's recipe table: pruned YOLOv5s **100.5**
# against dense **78.2 items/s** (batch 64, 24 cores), and **8.4 MB** against **24.8 MB** on disk.

# %% [markdown]
# **The recipe.** Layers differ in how much pruning they tolerate
# ([recipes/README.md](../yolotut/recipes/README.md)):
#
# | layers | target |
# | --- | --- |
# | 1-2, the high-resolution backbone | 40 % |
# | 3-4 and the P3 head path | 50 % |
# | 5-6 and 18-20 | 65 % |
# | 7-10 and 21-23, most of the weights | 75 % |
# | the stem (0) and Detect (24) | dense |
#
# `mask_type: [1, 4]` prunes **blocks of four consecutive input channels**, the group one
# VNNI instruction consumes, so that DeepSparse's INT8 kernels can skip whole blocks
# (notebook 05). In fp32, as here, the gain is smaller.

# %% tags=["parameters"]
profile = "quick"  # "quick": minutes on 2 CPU cores, to check the pipeline; "full": the real run
device = "auto"  # training device: a CUDA GPU when there is one, else the CPU
epochs = None  # None: the profile's value (reproduce.profiles)
results_dir = "../outputs/results"
models_dir = "../outputs/models"
manifest_path = "../outputs/manifest.json"

# %%
from yolotut.notebook import setup

ctx = setup("04_pruning", profile, results_dir=results_dir, models_dir=models_dir,
            manifest_path=manifest_path, epochs=epochs)
cfg = ctx.settings
ctx

# %% [markdown]
# ## Prune while fine-tuning
#
# The same training loop as notebook 01, from its dense checkpoint; only the recipe changes.

# %%
from yolotut.reproduce import results
from yolotut.training.loop import TrainConfig, train

dense_pt = results.require(ctx.models_dir / "yolov5s-dense.pt", "01_baseline")
train_result = train(TrainConfig(
    data="pistols", weights=str(dense_pt), size="s", recipe="pruning", epochs=cfg.epochs,
    imgsz=416, batch_size=cfg.train_batch_size, max_images=cfg.max_images,
    max_steps_per_epoch=cfg.steps, device=device, out_dir=str(ctx.runs_dir / "04_pruned"),
))
train_result.history[-1]

# %%
from yolotut.notebook import full_run_estimate

images_seen = train_result.epochs_run * min(cfg.max_images or 2471, (cfg.steps or 10**9) * cfg.train_batch_size)
estimate = full_run_estimate(train_result.seconds, images_seen, epochs=50, train_images=2471)
print(f"about {estimate['estimated_hours']:.1f} h for the full profile on {train_result.device}")

# %% [markdown]
# ## Export, and measure the zeros in the file
#
# Zeros stay in the raw file (a zero costs four bytes like any float) and only compress
# away, which is why the size claims compare gzipped files.

# %%
from yolotut.inference.export import export_onnx
from yolotut.models import load_trained_model, save_checkpoint

tags = dict(arch="yolov5s", variant="pruned", precision="fp32", dataset="pistols")
pruned_model = load_trained_model(train_result.final_checkpoint)
pruned_pt = save_checkpoint(pruned_model, ctx.models_dir / "yolov5s-pruned.pt")
export = export_onnx(pruned_model, ctx.models_dir / "yolov5s-pruned.onnx", imgsz=416)
pruned_onnx = export.path
file_record = ctx.record(results.onnx_file_record(pruned_onnx, **tags), **tags)
{key: round(file_record[key], 3) for key in ("sparsity", "block4_sparsity", "file_size_mb", "file_size_gz_mb")}

# %% [markdown]
# Each convolution's share of zero weights, and of all-zero blocks of four. The stem and
# Detect stay dense, as the recipe says.

# %%
import plotly.graph_objects as go

layers = export.sparsity.layers
names = [layer.name.replace("/model/", "").replace("/Conv", "") or f"conv{i}" for i, layer in enumerate(layers)]
fig = go.Figure([go.Bar(name="zero weights", x=names, y=[layer.sparsity for layer in layers]),
                 go.Bar(name="all-zero 1x4 blocks", x=names, y=[layer.block4_sparsity for layer in layers])])
fig.update_layout(title="Pruned YOLOv5s: sparsity of each convolution (ONNX)", yaxis_title="fraction",
                  yaxis_range=[0, 1], barmode="group", xaxis_tickangle=-60, height=450)

# %% [markdown]
# ## Throughput: pruned beside dense

# %%
from yolotut.inference.benchmark import run_benchmark

bench = []
for batch in cfg.bench_batch_sizes:
    warmup, iterations = (cfg.warmup, cfg.iterations) if batch == 1 else (cfg.big_warmup, cfg.big_iterations)
    for engine in ("onnxruntime", "deepsparse"):
        result = run_benchmark(pruned_onnx, engine, batch_size=batch, warmup=warmup, iterations=iterations)
        bench.append(ctx.record(result, id=f"04-{engine}-b{batch}", **tags))
ctx.table()

# %%
from yolotut.ui import plots

dense = [r for r in results.read_results(ctx.results_dir, "02_deepsparse_dense")["measurements"]
         if r.get("items_per_sec") and r["engine"] != "pytorch"]
rows = [{**r, "label": f"dense b{r['batch_size']}"} for r in dense] + [{**r, "label": f"pruned b{r['batch_size']}"} for r in bench]
plots.engine_bar_figure(rows, title="Dense vs pruned YOLOv5s (fp32): engine-only items/s")

# %% [markdown]
# ## Accuracy and the video

# %%
from yolotut import assets
from yolotut.inference.engines import create_engine
from yolotut.inference.evaluate import evaluate
from yolotut.inference.video import run_video
from yolotut.ui.widgets import show_frames

pruned_engine = create_engine(str(pruned_onnx), ctx.fast_engine, batch_size=1)
pruned_map = ctx.record(evaluate(pruned_engine, "pistols", split="valid", max_images=cfg.val_images), id="04-map", **tags)
demo_video = assets.fetch("demo-video")
video = ctx.record(run_video(pruned_engine, demo_video, max_frames=cfg.video_frames), id=f"04-{ctx.fast_engine}-video", **tags)
show_frames(pruned_engine, demo_video, count=3,
            title=f"pruned YOLOv5s: mAP@0.5 {pruned_map['map50']:.3f}, {video['fps']:.1f} FPS");

# %% [markdown]
# ## Save

# %%
ctx.add_model("pruned", pruned_onnx, file_record["sparsity"], "fp32", map50=pruned_map["map50"], model="yolov5s",
              checkpoint=str(pruned_pt), imgsz=416, file_size_gz_mb=file_record["file_size_gz_mb"])
ctx.save(seconds=train_result.seconds, device=train_result.device, estimate=estimate,
         layers=[{"name": n, "sparsity": la.sparsity, "block4": la.block4_sparsity} for n, la in zip(names, layers)])
