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
# # 02 · One model, three engines: PyTorch, ONNX Runtime, DeepSparse
#
# Same weights, fp32, no sparsity yet: the only thing that changes here is the engine
# that runs the model.
#
# **What you will learn**
#
# 1. how an **ONNX export** turns the PyTorch model into a static graph any engine can run
#    (output 0: decoded predictions `[B, N, 6]`, like the blog author's models);
# 2. what **ONNX Runtime** (generic fp32 kernels) and **DeepSparse** (a compiler for this
#    CPU) make of that graph, at batch 1 and at a large batch;
# 3. why a dense fp32 model gains little from DeepSparse: its advantage, running a chunk
#    of the image through several layers while it is still in cache, pays most when the
#    weights are pruned (notebook 04) and quantized to INT8 (03, 05).
#
# **What the write-ups reported.** Neural Magic: dense YOLOv5l at 640, batch 1, 24 cores,
# DeepSparse **17.7** vs ONNX Runtime **5.8 items/s**. The blog: dense YOLOv5s, DeepSparse
# **29.5 FPS** on 4 cores vs PyTorch **21.9 FPS** on 8. Here every engine gets the same cores.

# %% tags=["parameters"]
profile = "quick"  # "quick": minutes on 2 CPU cores, to check the pipeline; "full": the real run
results_dir = "../outputs/results"
models_dir = "../outputs/models"
manifest_path = "../outputs/manifest.json"

# %%
from yolotut.notebook import setup

ctx = setup("02_deepsparse_dense", profile, results_dir=results_dir, models_dir=models_dir,
            manifest_path=manifest_path)
cfg = ctx.settings
ctx

# %% [markdown]
# ## Export to ONNX
#
# The checkpoint comes from notebook 01. The record of the file (size, gzipped size, the
# fraction of zero conv weights) goes into the results: the write-ups compare file sizes too.

# %%
from yolotut.inference.export import export_onnx
from yolotut.models import load_checkpoint
from yolotut.reproduce import results

tags = dict(arch="yolov5s", variant="dense", precision="fp32", dataset="pistols")
dense_pt = results.require(ctx.models_dir / "yolov5s-dense.pt", "01_baseline")
dense_onnx = export_onnx(load_checkpoint(dense_pt), ctx.models_dir / "yolov5s-dense.onnx", imgsz=416).path
onnx_file = ctx.record(results.onnx_file_record(dense_onnx, **tags), **tags)
{key: onnx_file[key] for key in ("file_size_mb", "file_size_gz_mb", "sparsity")}

# %% [markdown]
# ## Engine-only throughput
#
# Each engine runs the same random batches. The large batch is 8 in the quick profile and
# 64 in the full one (the posts' batch). PyTorch runs batch 1 only: on 2 cores its batch of
# 64 would take half an hour and no claim needs it.

# %%
from yolotut.inference.benchmark import run_benchmark

ENGINE_FILES = {"pytorch": dense_pt, "onnxruntime": dense_onnx, "deepsparse": dense_onnx}
bench = []
for batch in cfg.bench_batch_sizes:
    warmup, iterations = (cfg.warmup, cfg.iterations) if batch == 1 else (cfg.big_warmup, cfg.big_iterations)
    for engine, model_file in ENGINE_FILES.items():
        if engine == "pytorch" and batch > 1:
            continue
        result = run_benchmark(model_file, engine, batch_size=batch, imgsz=416, warmup=warmup, iterations=iterations)
        bench.append(ctx.record(result, id=f"02-{engine}-b{batch}", **tags))
ctx.table()

# %%
from yolotut.ui import plots

plots.engine_bar_figure([{**r, "label": f"batch {r['batch_size']}"} for r in bench],
                        title="Dense YOLOv5s fp32 at 416: engine-only items/s")

# %% [markdown]
# ## End-to-end video FPS
#
# The whole per-frame pipeline, batch 1. An engine this machine cannot run (DeepSparse
# without AVX2, say) is skipped with the reason.

# %%
from yolotut import assets
from yolotut.inference.engines import EngineUnavailableError, create_engine
from yolotut.inference.video import run_video

demo_video = assets.fetch("demo-video")
engines, videos = {}, []
for engine, model_file in ENGINE_FILES.items():
    try:
        engines[engine] = create_engine(str(model_file), engine, batch_size=1, imgsz=416)
    except EngineUnavailableError as exc:
        print(f"{engine} skipped: {exc}")
        continue
    video = run_video(engines[engine], demo_video, max_frames=cfg.video_frames)
    videos.append(ctx.record(video, id=f"02-{engine}-video", **tags))
plots.engine_bar_figure([{**v, "label": "video"} for v in videos], title="Dense YOLOv5s: end-to-end video FPS")

# %% [markdown]
# The fastest engine's view of the demo video:

# %%
from yolotut.ui.widgets import show_frames

show_frames(engines[ctx.fast_engine], demo_video, count=3, title=f"{ctx.fast_engine}, dense YOLOv5s");

# %% [markdown]
# ## Save
#
# The dense ONNX file goes into the manifest: notebook 08 and the report list every model
# the tutorial produced, with its measured sparsity.

# %%
ctx.add_model("dense", dense_onnx, onnx_file["sparsity"], "fp32", model="yolov5s", checkpoint=str(dense_pt),
              imgsz=416, file_size_gz_mb=onnx_file["file_size_gz_mb"])
ctx.save()
