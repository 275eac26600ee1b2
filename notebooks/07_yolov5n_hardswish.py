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
# # 07 · YOLOv5n + Hardswish, pruned and quantized: the "180+ FPS" model
#
# The blog's last step: the smallest YOLOv5 (**nano**, 1.9 M parameters), its SiLU
# activations replaced by **Hardswish** (`x · relu6(x + 3) / 6`, piecewise linear, which
# DeepSparse computes cheaply and fuses into INT8 convolutions), pruned + quantized on
# pistols at 416 from the COCO-pretrained `yolov5n.pt`. This notebook trains that model
# itself from the real `yolov5n.pt` (it *is* in the offline mirror) and compares it with
# **the blog author's own final models** (Hardswish and SiLU, both in the mirror).
#
# **What the blog claimed.** **101.52 FPS** on DeepSparse with 4 cores (9.84 ms; drafts:
# 93.33 FPS), and the title's **182.4 FPS**, which is the *peak* of its on-screen FPS
# (mean of 1/frame-time over the last 50 frames), not the average of the run.
#
# > **Accuracy here is meaningful for the author's models** (fully trained). Our own
# > YOLOv5n starts from real COCO weights, but the quick profile trains it for only two
# > short epochs.

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
    quick=dict(epochs=2, max_images=32, steps=4, train_batch_size=8, warmup=10, iterations=30, big_warmup=3, big_iterations=10, video_frames=None, val_images=48, bench_batch_sizes=[1, 8]),
    full=dict(epochs=50, max_images=None, steps=None, train_batch_size=16, warmup=25, iterations=80, big_warmup=25, big_iterations=80, video_frames=None, val_images=None, bench_batch_sizes=[1, 64]),
    epochs=epochs, max_images=max_images, steps=steps, train_batch_size=train_batch_size, val_images=val_images, bench_batch_sizes=bench_batch_sizes,
)
cfg

# %%
from yolotut.training.loop import TrainConfig, train

train_config = TrainConfig(
    data="pistols", weights="yolov5n", activation="hardswish", recipe="pruning-quantization",
    epochs=cfg.epochs, imgsz=imgsz, batch_size=cfg.train_batch_size, max_images=cfg.max_images,
    max_steps_per_epoch=cfg.steps, device=device, out_dir=str(runs_dir / "07_yolov5n_hardswish"),
)
train_result = train(train_config)
print(f"{train_result.epochs_run} epoch(s) in {train_result.seconds:.0f} s on {train_result.device}")

# %%
images_seen = train_result.epochs_run * min(cfg.max_images or 2471, (cfg.steps or 10**9) * cfg.train_batch_size)
estimate = runner.full_run_estimate(train_result.seconds, images_seen, epochs=50, train_images=2471)
print(f"{estimate['seconds_per_image']:.2f} s per training image here ({train_result.device}): the full profile "
      f"(50 epochs x 2471 images) would take about {estimate['estimated_hours']:.1f} h on this machine (estimate)")

# %% [markdown]
# ## A second nano: channels removed instead of weights zeroed
#
# The sparsity search (notebook 08, `benchmarks/README.md`) found that on this CPU
# DeepSparse 1.8 gains nothing from zeros in the weights, whatever their pattern, while
# removing whole channels pays: a YOLOv5n-Hardswish whose C3 blocks keep half their
# hidden channels ran about 1.3x faster than dense INT8. So we also train that model:
# `thinning={"c3": 0.5, "bottleneck": 0.5}` removes half of those channels, and the
# `finetune-quantization` recipe fine-tunes the model and ends with quantization-aware
# training.
# **It is fast, not (yet) as accurate.** Removing 36 % of the convolution weights in one
# shot wrecks what the COCO weights knew: with 3 epochs on all pistol images it scored
# mAP@0.5 0.036 against 0.599 for the dense YOLOv5n, with 8 epochs 0.216 against 0.720
# (`benchmarks/accuracy_budget.py`); removing even a quarter of one block's channels moves
# the features the head reads by 10-100 % (`benchmarks/thinning_damage.py`).
# So the channels are not cut at once: `thinning_fade_epochs` multiplies them by a factor
# that falls from 1 to 0 over the first epochs (`ChannelFade`; half of them in the 8-epoch
# runs quoted here, a quarter in this notebook), the rest of the network takes their work over meanwhile, and once they output nothing they are
# removed, which then changes nothing. With the same 8 epochs that gave 0.216 this scored
# 0.413 (3 epochs, no QAT: 0.201 against 0.031), better than feature distillation from the
# unthinned model (`distill=1.0`: 0.244; added to fading it did not help, 0.173 at 3
# epochs). *Which* channels go matters as much: the rule of thumb removes those with the
# smallest (BatchNorm-scaled) filters, but in the COCO weights removing the *largest*
# moves the head's features least (`thinning_damage.py`), and faded out they leave a
# better model: 0.536 and 0.507 after 8 epochs (two seeds; 3 epochs: 0.341 against
# 0.201). That is `ThinningConfig`'s default, `criterion="largest-norm"`. It is still
# below dense. Taking more channels from the head and fewer from the backbone
# (`thinning.HEAD_HEAVY`) scored higher, 0.555 and 0.572, but the head's small,
# low-resolution layers cost little time: it ran 1.17-1.20x dense INT8 instead of
# 1.25-1.27x, and 1.14x the author's model on an AVX-512 VNNI machine, below the 1.2x
# this model is meant to beat it by, so this notebook keeps the halved model, with one
# exception: the first C3 block (block 2, stride 4) stays whole
# (`thinning.HALVED_FIRST_C3_WHOLE`). Thinning it moves the features most (on average
# over its channel groups), and on an AVX-512 VNNI CPU its 16 -> 8 channels run no faster: kept
# whole, the model ran 1.27x and 1.31x the author's, the fully halved one 1.23x and 1.28x
# in the same rounds, and after 8 epochs it scored 0.542 and 0.527 (two seeds) against
# 0.506 and 0.520. Halving the
# strided backbone convolutions as well (`thinning.STRIDED_HEAD_HEAVY`) brings it to 1.27x
# the author's model; trained without a teacher for the 50 epochs of the full profile, its
# INT8 model scored 0.725, 0.6 points above the halved model's 0.719 (whose channels
# faded over 25 epochs, not 12; within seed noise): the faster thinning costs no more
# accuracy.
# Training the dense model for half of the epochs
# and thinning the *trained* model in the other half is no better at the same budget
# (0.451, and 0.519 when it also learns the dense model's features).
# The full profile's 50 epochs close most of the gap, not all of it: on the CPU the fully
# halved INT8 model reached mAP@0.5 0.719 in DeepSparse, dense YOLOv5n 0.797
# (`benchmarks/README.md`, "The full profile"). This notebook's model (block 2 whole, the
# channels faded out over the first quarter of the epochs, 12 of 50) reached **0.768**
# without a teacher (36 epochs on a GPU, the last 14 on the CPU): 2.9 points below that
# dense run, which a third run in one go reproduced to the last digit (0.806 came from a
# run resumed the old way, from its EMA weights). Learning the *predictions* of a trained
# dense YOLOv5n at the same time (`TrainConfig(distill=1.0, distill_teacher=<its final.pt>,
# distill_target="predictions")`) reached 0.752 (0.758 with the channels faded out over
# 12 epochs instead of 25) for the fully halved model, 3.9 points below dense, and it
# needs that dense model trained first, so this notebook leaves it out. Hardswish and
# INT8 are not what costs the points: unthinned, this model with QAT scored 0.795 after
# the same 50 epochs. The mAP at the end of this notebook shows where your run stands.

# %%
from yolotut.models.thinning import HALVED_FIRST_C3_WHOLE

thin_config = TrainConfig(
    data="pistols", weights="yolov5n", activation="hardswish", recipe="finetune-quantization",
    thinning=HALVED_FIRST_C3_WHOLE.to_dict(),  # C3 branches and bottlenecks halved, block 2 whole
    thinning_fade_epochs=max(1, cfg.epochs // 4),  # fade the channels out over the first quarter, then remove them
    epochs=cfg.epochs, imgsz=imgsz, batch_size=cfg.train_batch_size, max_images=cfg.max_images,
    max_steps_per_epoch=cfg.steps, device=device, out_dir=str(runs_dir / "07_yolov5n_hardswish_thinned"),
)
thin_result = train(thin_config)
print(f"{thin_result.epochs_run} epoch(s) in {thin_result.seconds:.0f} s on {thin_result.device}")

# %%
from yolotut.inference.export import export_onnx
from yolotut.models import build_model
from yolotut.models.thinning import conv_weight_count
from yolotut.training.loop import load_trained_model

ours_model = load_trained_model(train_result.final_checkpoint)
export = export_onnx(ours_model, models_dir / "yolov5n-hardswish-pruned-quantized.onnx", imgsz=imgsz, uint8_input=True)
thin_model = load_trained_model(thin_result.final_checkpoint)
thin_export = export_onnx(thin_model, models_dir / "yolov5n-hardswish-thinned-quantized.onnx", imgsz=imgsz, uint8_input=True)
# Share of the dense model's conv weights that thinning removed (zeros are counted separately).
channels_removed = 1 - conv_weight_count(thin_model) / conv_weight_count(build_model("n", num_classes=1))
print(f"thinned groups: {len(thin_model.thinned)}, conv weights removed: {channels_removed:.1%}")
models = {
    "blog author: yolov5n hardswish": (str(assets.fetch("blog-yolov5n-pq-hardswish")), "pruned-quantized-hardswish"),
    "blog author: yolov5n silu": (str(assets.fetch("blog-yolov5n-pq-silu")), "pruned-quantized"),
    "ours: yolov5n hardswish": (str(export.path), "pruned-quantized-hardswish"),
    "ours: yolov5n hardswish thinned": (str(thin_export.path), "thinned-quantized-hardswish"),
}
files = {label: runner.onnx_file_record(path, arch="yolov5n", variant=variant, precision="int8", dataset="pistols",
                                        label=label, id=f"07-{label.split(':')[0].replace(' ', '-')}-{variant}-file")
         for label, (path, variant) in models.items()}
for label, record in files.items():
    print(f"{label:32s} conv sparsity {record['sparsity']:.1%} ({record['block4_sparsity']:.1%} of 1x4 blocks all zero), "
          f"{record['file_size_mb']:.2f} MB")

# %% [markdown]
# **Look at the sparsity column.** INT8 rounding alone turns a few percent of the weights
# into exact zeros. If the author's models show only that much, they were quantized
# but *not pruned*: his recipe (`yolov5.transfer_learn_pruned_quantized.md`, see its
# `opt.yaml`) holds an upstream model's zeros with a constant mask, and the dense
# `yolov5n.pt` it started from had none to hold. Whatever DeepSparse gains on them then
# comes from INT8 (and Hardswish), not from sparsity.

# %%
from yolotut.inference.benchmark import run_benchmark

bench = {}
for label, (path, variant) in models.items():
    for batch in cfg.bench_batch_sizes:
        warmup, iterations = (cfg.warmup, cfg.iterations) if batch == 1 else (cfg.big_warmup, cfg.big_iterations)
        for engine in ("onnxruntime", "deepsparse"):
            result = run_benchmark(path, engine, batch_size=batch, cores=cores, warmup=warmup, iterations=iterations)
            bench[(label, engine, batch)] = result
            print(f"{label:32s} " + (result.summary() if not result.skipped else f"{engine} b{batch}: skipped: {result.skipped}"))

# %%
from yolotut.ui import plots

rows = [{"label": f"{label} b{batch}", "engine": engine, "items_per_sec": r.items_per_sec}
        for (label, engine, batch), r in bench.items() if not r.skipped]
plots.engine_bar_figure(rows, title="YOLOv5n pruned + INT8: the blog author's models vs ours (engine-only items/sec)")

# %% [markdown]
# ## End-to-end video FPS and accuracy

# %%
from yolotut.training.data import load_dataset_config
from yolotut.inference.engines import create_engine
from yolotut.inference.evaluate import evaluate
from yolotut.inference.video import run_video

demo_video = assets.fetch("demo-video")
pistol_names = load_dataset_config("pistols").names  # the author's files carry no class names
videos, maps, engines = {}, {}, {}
for label, (path, variant) in models.items():
    engines[label] = create_engine(path, fast_engine, batch_size=1, cores=cores, names=pistol_names)
    videos[label] = run_video(engines[label], demo_video, max_frames=cfg.video_frames)
    maps[label] = evaluate(engines[label], "pistols", split="valid", max_images=cfg.val_images)
    print(f"{label:32s} {videos[label].fps:6.1f} FPS end-to-end, {videos[label].fps_pipeline:6.1f} FPS pipeline, "
          f"mAP@0.5 {maps[label]['map50']:.3f} ({maps[label]['images']} images)")

# %%
from yolotut.ui.widgets import show_frames

show_frames(engines["blog author: yolov5n hardswish"], demo_video, count=3, title="The blog author's YOLOv5n (Hardswish, pruned + INT8)")
show_frames(engines["ours: yolov5n hardswish"], demo_video, count=3, title="Ours, pruned (quick profile: two short epochs)")
show_frames(engines["ours: yolov5n hardswish thinned"], demo_video, count=3, title="Ours, thinned (quick profile: two short epochs)");

# %% [markdown]
# ## The headline figure: a peak, not an average
#
# The blog's `annotate.py` shows, on every frame, the mean of 1 / frame-time over the last
# 50 frames; the title's 182.4 FPS is the highest value it showed. The loop below times
# each frame the same way as `run_video` (decode → pre-process → infer → NMS → draw) and
# reports both the run's average and the peak of that running figure once its 50-frame
# window is full. The demo video has 214 frames; this notebook uses all of them in both
# profiles (YOLOv5n runs at hundreds of frames per second).

# %%
import time
from collections import deque

import numpy as np

from yolotut.inference.video import annotate, open_video

engine = engines["blog author: yolov5n hardswish"]
buffer, frame_ms, window, rolling = engine.new_input_buffer(), [], deque(maxlen=50), []
cap = open_video(demo_video)
while cfg.video_frames is None or len(frame_ms) < cfg.video_frames:
    start = time.perf_counter()
    ok, frame = cap.read()
    if not ok:
        break
    batch, metas = engine.preprocess([frame], out=buffer)
    annotate(frame, engine.postprocess(engine.infer(batch), metas)[0], engine.names, inplace=True)
    frame_ms.append((time.perf_counter() - start) * 1000)
    window.append(1000 / frame_ms[-1])
    rolling.append(float(np.mean(window)))
cap.release()
full_windows = rolling[49:] or rolling  # running means over a full 50-frame window
peak = {"fps": 1000 / float(np.mean(frame_ms)), "fps_peak": max(full_windows), "frames": len(frame_ms)}
print(f"average {peak['fps']:.1f} FPS, peak of the 50-frame running FPS {peak['fps_peak']:.1f} "
      f"({peak['fps_peak'] / peak['fps']:.2f}x; blog: 182.4 / 101.52 = 1.80x)")

# %%
# The author's models first: where a claim matches several models, the checker takes the first.
records = []
for label, (path, variant) in models.items():
    tags = dict(arch="yolov5n", variant=variant, precision="int8", dataset="pistols", label=label)
    key = label.split(":")[0].replace(" ", "-")
    records += [runner.labelled(r, id=f"07-{key}-{engine}-b{batch}", **tags)
                for (l, engine, batch), r in bench.items() if l == label]
    records += [runner.labelled(videos[label], id=f"07-{key}-{variant}-video", **tags),
                runner.labelled(maps[label], id=f"07-{key}-{variant}-map", **tags), files[label]]
# Listed first, so that the peak/average comparison pairs the peak with the average of the same loop.
records.insert(0, {"id": "07-author-hardswish-peak", "arch": "yolov5n", "variant": "pruned-quantized-hardswish",
                   "label": "blog author: yolov5n hardswish (peak loop)",
                "engine": fast_engine, "batch_size": 1, "imgsz": imgsz, "cores": engine.info()["cores"],
                "measurement": "end-to-end-video", **peak})
ours = files["ours: yolov5n hardswish"]
entry = runner.record_model("pruned-quantized-hardswish", export.path, ours["sparsity"], "int8",
                    map50=maps["ours: yolov5n hardswish"]["map50"], model="yolov5n", notebook="07_yolov5n_hardswish",
                    imgsz=imgsz, file_size_gz_mb=ours["file_size_gz_mb"], manifest_path=manifest_path)
thinned = files["ours: yolov5n hardswish thinned"]
runner.record_model("thinned-quantized-hardswish", thin_export.path, thinned["sparsity"], "int8",
                    map50=maps["ours: yolov5n hardswish thinned"]["map50"], model="yolov5n", notebook="07_yolov5n_hardswish",
                    imgsz=imgsz, file_size_gz_mb=thinned["file_size_gz_mb"], channels_removed=round(channels_removed, 4),
                    manifest_path=manifest_path)
train_info = {"seconds": train_result.seconds, "device": train_result.device, "estimate": estimate,
              "thinned_seconds": thin_result.seconds, "channels_removed": channels_removed}

# %%
path = runner.write_results(results_dir, "07_yolov5n_hardswish", {
    "profile": profile, "hardware": hw, "info": train_info, "measurements": records,
})
print("wrote", path)
