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
# # 09 · After end of life: what to use now
#
# DeepSparse, SparseML and SparseZoo reached end of life in June 2025, and DeepSparse
# runs on Python 3.11 only. The engines a user would pick today are **OpenVINO** (with
# **NNCF** for INT8) and **ONNX Runtime** (with its static quantizer). This notebook
# puts them next to DeepSparse on the same models, on this machine.
#
# **What you will learn**
#
# * how to make an INT8 model without training, the maintained way: NNCF post-training
#   quantization (OpenVINO IR) and ONNX Runtime static QDQ INT8 (ONNX);
# * how to check which kernels OpenVINO really runs (an "INT8 model" can run float
#   convolutions);
# * speed (batch 1 and a large batch) and mAP@0.5 of every engine x quantization path,
#   measured side by side in one run;
# * what to use for which job, drawn from those measurements.

# %% tags=["parameters"]
profile = "quick"  # "quick": minutes on 2 CPU cores, to check the pipeline; "full": the real run
dense_model = "yolov5s-dense"  # <models_dir>/<name>.onnx: the dense fp32 export (notebook 02)
sparseml_int8 = "yolov5s-oneshot-int8"  # <models_dir>/<name>.onnx: its SparseML one-shot INT8 (notebook 03), if present
results_dir = "../outputs/results"
models_dir = "../outputs/models"
manifest_path = "../outputs/manifest.json"

# %% [markdown]
# The setup's table says what this machine offers: INT8 speed depends on the CPU's
# instruction sets (AVX-512 VNNI or AVX-VNNI for 8-bit dot products, AMX), and OpenVINO
# picks bf16 by itself on CPUs with AVX-512 BF16. The versions follow.

# %%
from IPython.display import display

from yolotut import hardware
from yolotut.notebook import setup

ctx = setup("09_living_engines", profile, results_dir=results_dir, models_dir=models_dir, manifest_path=manifest_path)
cfg, models_dir = ctx.settings, ctx.models_dir
study_dir = models_dir.parent / "benchmarks" / "notebook09"
versions = hardware.package_versions()
display(ctx)
{k: versions[k] for k in ("openvino", "nncf", "onnxruntime", "deepsparse", "sparseml")}

# %% [markdown]
# ## The models
#
# The starting point is the tutorial's dense fp32 model (notebook 02's ONNX export) and,
# when notebook 03 ran, its SparseML one-shot INT8. The blog author's pruned SparseML
# QAT model joins as the end-of-life stack at its best.
#
# Calibration images are a seeded sample of the **training** split, letterboxed like the
# validation images, never augmented: the validation images stay unseen.

# %%
from yolotut.inference.quantize import calibration_images as sample_training_images
from yolotut.reproduce.results import require

dense_onnx = require(models_dir / f"{dense_model}.onnx", "02_deepsparse_dense")
sparseml_onnx = models_dir / f"{sparseml_int8}.onnx"
sparseml_onnx = sparseml_onnx if sparseml_onnx.exists() else None
print("dense:", dense_onnx, "| SparseML INT8:", sparseml_onnx or "not found (run notebook 03)")
calibration = sample_training_images(count=cfg.calib_images, imgsz=416)
len(calibration)

# %% [markdown]
# ## NNCF: post-training INT8 for OpenVINO
#
# `nncf.quantize` reads the ONNX file through OpenVINO, runs the calibration images,
# and inserts quantizers; YOLOv5's Detect head (its three output convolutions and the
# box decoding) stays in float, where 8-bit steps would land directly on box
# coordinates. The result is OpenVINO IR (`.xml` + `.bin`): NNCF's ONNX backend needs a
# newer `onnx` than this project's 1.14.1, which SparseML holds back.

# %%
from yolotut.inference.quantize import quantize_onnxruntime_static, quantize_with_nncf

nncf_ir = quantize_with_nncf(dense_onnx, calibration, study_dir / f"{dense_model}-nncf-int8.xml",
                             subset_size=cfg.calib_images)
nncf_ir

# %% [markdown]
# ## ONNX Runtime: static INT8 in QDQ form
#
# `quantize_static` writes an ONNX file with `QuantizeLinear -> DequantizeLinear` pairs
# around each convolution: `uint8` activations, `int8` weights with one scale per output
# channel. Both ONNX Runtime and OpenVINO run such a file as INT8.

# %%
ort_qdq = quantize_onnxruntime_static(dense_onnx, calibration, study_dir / f"{dense_model}-ort-int8.onnx",
                                      per_channel=True, subset_size=cfg.calib_images)
ort_qdq

# %% [markdown]
# ## Which kernels does OpenVINO run?
#
# An INT8 file is only fast when the engine runs integer kernels. OpenVINO's runtime
# model says, per layer, which kernel ran and in which precision. Watch the blog author's
# model: SparseML writes it as `QLinearConv`, and OpenVINO runs those as **float**
# convolutions on dequantized weights, while the NNCF and QDQ files run `u8`/`i8` kernels.
# Rewriting each `QLinearConv` as `DequantizeLinear -> Conv -> QuantizeLinear`
# (`qlinear_to_qdq`, the same numbers in the form OpenVINO looks for) gives the "as QDQ"
# models, which run integer kernels too.

# %%
from yolotut.inference.engines import create_engine
from yolotut.reproduce import living_engines

models = living_engines.study_models(dense_onnx, nncf_ir, ort_qdq, sparseml_onnx, network=f"ours: {dense_model}",
                                     qdq_dir=study_dir)
{key: create_engine(m.path, "openvino", names=list(m.names) if m.names else None).kernels() for key, m in models.items()}

# %% [markdown]
# ## Speed and accuracy, side by side
#
# Every model runs on every engine that reads its format (IR: OpenVINO only). Speed is
# engine-only, in interleaved rounds: each round runs every setup once, in a rotated
# order, so that other work on a shared machine spreads over all setups; the figure is
# the median over rounds, with min-max. A DeepSparse engine that would run part of a
# graph in its bundled ONNX Runtime is left out, with the fraction it compiled.
# Then mAP@0.5 on the validation split, batch 1, the same evaluation for all.

# %%
from yolotut.inference.quiet import QuietPolicy

settings = living_engines.StudySettings(
    batch_sizes=tuple(cfg.bench_batch_sizes), rounds=cfg.rounds, warmup=cfg.warmup, iterations=cfg.iterations,
    big_warmup=cfg.big_warmup, big_iterations=cfg.big_iterations, val_images=cfg.val_images, cores=None,
    quiet=QuietPolicy(max_tries=cfg.max_tries),
)
payload = living_engines.run_study(models, settings)

# %% [markdown]
# The table: one row per model and engine. "what ran" says how much of the graph ran
# integer convolutions in OpenVINO, or compiled in DeepSparse.

# %%
from IPython.display import Markdown

from yolotut.reproduce.report import markdown_table

Markdown(markdown_table(living_engines.markdown_cells(payload)))

# %%
living_engines.figure(payload)

# %% [markdown]
# ## What to use now
#
# Each line below is computed from the table: the fastest setup whose mAP@0.5 stays
# within a point of the best measured for that network, for each job. With the quick
# profile the models are barely trained and a few images decide the mAP, so read the
# full profile's answer (or `benchmarks/living_engines.py`'s) before choosing.

# %%
advice = living_engines.recommendations(payload)
Markdown("\n".join(f"* **{use}**: {text}" for use, text in advice.items()))

# %% [markdown]
# The study is saved for the reproduction report (notebook 11), and each speed and mAP
# as a result record, so that the report's engine charts show OpenVINO too.

# %%
from yolotut.reproduce.results import write_results

write_results(study_dir, living_engines.RESULTS_NAME, {**payload, "profile": profile})
for record in living_engines.result_records(payload, arch=dense_model.split("-")[0]):
    ctx.record(record, arch=record["arch"], variant=record["variant"])
ctx.save()
