"""After end of life: OpenVINO + NNCF and ONNX Runtime static INT8 next to DeepSparse, on the same models, in one run.

From a dense fp32 model of the tutorial (a training checkpoint, e.g. ``final.pt`` of
``yolotut train --recipe dense-finetune``, or its fp32 ONNX export) the script builds

* NNCF post-training INT8 (OpenVINO IR; OpenVINO backend, Detect head kept float),
* ONNX Runtime static INT8 (QDQ, per-channel weights, Detect head kept float),
* optionally SparseML one-shot INT8 (``--sparseml-oneshot``, from the checkpoint: what
  notebook 03 does; QLinearConv, uint8 input),

all calibrated on the same seeded sample of the pistol training split, and measures them
with the blog author's SparseML QAT INT8 model on every engine that runs their format
(:mod:`yolotut.reproduce.living_engines`): engine-only items/s at batch 1 and a large
batch in interleaved rounds (median, min-max), and mAP@0.5 on the validation split.
The machine is shared: each round runs every setup once in a rotated order, under
SCHED_FIFO where allowed, and a measurement disturbed by other processes is repeated
(``--max-tries``) and counted.

    python benchmarks/living_engines.py --dense-checkpoint runs/dense/weights/final.pt --sparseml-oneshot
    python benchmarks/living_engines.py --dense-onnx outputs/models/yolov5s-dense.onnx --sparseml-int8 outputs/models/yolov5s-oneshot-int8.onnx
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yolotut.compat  # noqa: F401  (NM_DISABLE_ANALYTICS before deepsparse loads)
from yolotut.inference.quantize import calibration_images, quantize_onnxruntime_static, quantize_with_nncf
from yolotut.inference.quiet import QuietPolicy
from yolotut.reproduce import living_engines
from yolotut.reproduce.report import markdown_table
from yolotut.reproduce.results import write_results


def sparseml_oneshot_int8(checkpoint: Path, calibration, out: Path, imgsz: int) -> Path:
    """SparseML one-shot INT8 of ``checkpoint`` on the calibration images (notebook 03's path)."""
    from yolotut.inference.export import export_onnx
    from yolotut.models.checkpoint import load_model
    from yolotut.training.data import create_dataloader
    from yolotut.training.oneshot import calibrate_oneshot

    loader, _ = create_dataloader(calibration, batch_size=16, workers=0, shuffle=False)
    model = calibrate_oneshot(load_model(checkpoint), loader, num_batches=len(loader), progress=False)
    return export_onnx(model, out, imgsz=imgsz).path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dense-checkpoint", type=Path, help="dense fp32 training checkpoint (exported here to ONNX)")
    source.add_argument("--dense-onnx", type=Path, help="dense fp32 ONNX export")
    parser.add_argument("--sparseml-oneshot", action="store_true", help="also build SparseML one-shot INT8 (needs --dense-checkpoint)")
    parser.add_argument("--sparseml-int8", type=Path, help="an existing SparseML INT8 export of the same dense model")
    parser.add_argument("--network", default="ours: yolov5n dense", help="what the dense model is, for the table")
    parser.add_argument("--no-author", action="store_true", help="leave out the blog author's QAT model")
    parser.add_argument("--imgsz", type=int, default=416)
    parser.add_argument("--calibration-images", type=int, default=300)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=25)
    parser.add_argument("--iterations", type=int, default=80)
    parser.add_argument("--big-warmup", type=int, default=3)
    parser.add_argument("--big-iterations", type=int, default=10)
    parser.add_argument("--val-images", type=int, default=None, help="default: all 500 validation images")
    parser.add_argument("--cores", type=int, default=None)
    parser.add_argument("--max-tries", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmarks/living_engines"))
    args = parser.parse_args()
    if args.sparseml_oneshot and not args.dense_checkpoint:
        parser.error("--sparseml-oneshot builds from the checkpoint: give --dense-checkpoint")

    models_dir = args.out / "models"
    seconds: dict[str, float] = {}
    if args.dense_checkpoint:
        from yolotut.inference.export import export_onnx
        from yolotut.models.checkpoint import load_model

        dense = export_onnx(load_model(args.dense_checkpoint), models_dir / "dense-fp32.onnx", imgsz=args.imgsz).path
    else:
        dense = args.dense_onnx
    calibration = calibration_images(count=args.calibration_images, imgsz=args.imgsz)
    started = time.perf_counter()
    nncf_ir = quantize_with_nncf(dense, calibration, models_dir / "dense-nncf-int8.xml", subset_size=args.calibration_images)
    seconds["nncf"] = time.perf_counter() - started
    started = time.perf_counter()
    ort_qdq = quantize_onnxruntime_static(dense, calibration, models_dir / "dense-ort-int8.onnx", subset_size=args.calibration_images)
    seconds["ort-qdq"] = time.perf_counter() - started
    sparseml = args.sparseml_int8
    if args.sparseml_oneshot:
        started = time.perf_counter()
        sparseml = sparseml_oneshot_int8(args.dense_checkpoint, calibration, models_dir / "dense-sparseml-int8.onnx", args.imgsz)
        seconds["sparseml-oneshot"] = time.perf_counter() - started
    for key, value in seconds.items():
        print(f"{key}: quantized in {value:.0f} s")

    models = living_engines.study_models(dense, nncf_ir, ort_qdq, sparseml, network=args.network, author_model=not args.no_author,
                                         qdq_dir=models_dir)
    settings = living_engines.StudySettings(
        batch_sizes=tuple(args.batch_sizes), rounds=args.rounds, warmup=args.warmup, iterations=args.iterations,
        big_warmup=args.big_warmup, big_iterations=args.big_iterations, val_images=args.val_images, cores=args.cores,
        quiet=QuietPolicy(max_tries=args.max_tries),
    )
    payload = living_engines.run_study(models, settings)
    payload.update({"command": " ".join(sys.argv), "quantize_seconds": seconds, "calibration_images": args.calibration_images,
                    "dense_checkpoint": str(args.dense_checkpoint) if args.dense_checkpoint else None})
    print(f"written: {write_results(args.out, living_engines.RESULTS_NAME, payload)}")
    print(markdown_table(living_engines.markdown_cells(payload)))
    for use, advice in living_engines.recommendations(payload).items():
        print(f"- {use}: {advice}")


if __name__ == "__main__":
    main()
