"""Same training budget, different models: what does each kind of sparse INT8 cost in mAP?

Trains YOLOv5n variants from the COCO ``yolov5n.pt`` on pistols with the same number
of epochs and images, then measures mAP on the pistol valid split in the form each
model is deployed in (dense: PyTorch fp32; INT8: the exported ONNX in DeepSparse, or
ONNX Runtime without it):

* ``dense``: YOLOv5n (SiLU), ``dense-finetune``: the reference;
* ``dense-hardswish``: the same with Hardswish (the activation swap alone), and
  ``dense-hardswish-int8`` with ``finetune-quantization`` too (no thinning);
* ``thinned-int8``: YOLOv5n-Hardswish, C3 and bottleneck hidden channels halved
  (``thinning={"c3": 0.5, "bottleneck": 0.5}``), ``finetune-quantization``;
* ``pruned-int8``: YOLOv5n-Hardswish, ``pruning-quantization`` (the recipe's GMP targets);
* ``thinned-hardswish`` (thinning without QAT) and ``thinned75-int8`` (a quarter of the
  hidden channels removed instead of half), to tell the costs apart;
* ``thinned-distill-*``: thinning with feature distillation from the unthinned model
  (``--teacher`` another model, e.g. a dense run's ``final.pt``; ``--distill-target
  predictions`` distils the teacher's predictions instead of its features);
* ``thinned-fade-*``: the same channels faded out over the first ``--fade-epochs``
  (default: half the epochs, and before QAT starts), then removed;
* ``thinned-head-fade-*``: as many multiply-adds removed, but more from the head than
  from the backbone (``thinning_presets.HEAD_HEAVY``).
* ``thinned-split-fade-*``: about the halved model's speed, with the stride-4 C3 kept
  whole and the low-resolution backbone C3s thinned to a quarter
  (``thinning_presets.BACKBONE_SPLIT``).
* ``thinned-strided-*``: faster than the halved model, the bottlenecks kept whole: the
  C3 branches and the backbone's strided convolutions (blocks 3, 5, 7) halved
  (``thinning_presets.STRIDED_C3``); ``thinned-strided-head-*`` the same convolutions halved on
  top of ``HEAD_HEAVY`` (``thinning_presets.STRIDED_HEAD_HEAVY``); ``thinned-strided-all-*``
  the strided convolutions, C3 branches and bottlenecks all halved
  (``thinning_presets.STRIDED_C3_BOTTLENECKS``, notebook 05's YOLOv5s thinning).
* ``thinned-first-whole-*``: the halved model with the first C3 (block 2, stride 4)
  kept whole, which on AVX-512 VNNI buys no time thinned
  (``thinning_presets.HALVED_FIRST_C3_WHOLE``).

``--criterion`` chooses which channels the thinned variants lose
(``yolotut.models.thinning.CRITERIA``; default: ``ThinningConfig``'s); give each
criterion its own ``--out``, as results are keyed by variant.

Mostly a short-budget check (epochs x images on a 2-core CPU); prints a table and
writes JSON. ``--before`` also scores the starting point (the COCO weights with a
fresh one-class head): does a short fine-tune learn pistols at all?

The accuracy target (docs/lab-notes/README.md) is about the full profile (50 epochs, notebook
07's settings: ``--epochs 50 --warmup-epochs 3``), hours per model on a CPU. Stop such
a run at any time and continue it later with ``--resume`` (same arguments): a variant
whose run folder holds ``final.pt`` is only scored, one with ``last.pt`` continues
after its last finished epoch; the training time reported adds up the epochs of all
sessions. ``--train-only`` trains without scoring, for a machine that lacks the valid
split or DeepSparse (a GPU machine); copy the run folders back and score them with
``--resume`` and the same arguments.

    python benchmarks/accuracy_budget.py --epochs 3 --variants dense thinned-int8
    python benchmarks/accuracy_budget.py --epochs 3 --max-images 256 --val-images 100 --variants dense --before
    python benchmarks/accuracy_budget.py --epochs 50 --warmup-epochs 3 --resume --variants thinned-fade-int8 dense --out outputs/benchmarks/accuracy_budget_full
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from yolotut.inference.engines import TorchEngine, create_engine, deepsparse_unavailable_reason
from yolotut.inference.evaluate import evaluate
from yolotut.inference.export import export_onnx
from yolotut.models import thinning_presets
from yolotut.models.checkpoint import load_trained_model, load_training_checkpoint
from yolotut.models.thinning import CRITERIA, ThinningConfig
from yolotut.reproduce.results import read_results_file, write_results
from yolotut.training.config import TrainConfig
from yolotut.training.distill import DISTILLERS
from yolotut.training.loop import train
from yolotut.training.start import initial_model

HEAD_HEAVY = thinning_presets.HEAD_HEAVY.to_dict()
BACKBONE_SPLIT = thinning_presets.BACKBONE_SPLIT.to_dict()
STRIDED_C3 = thinning_presets.STRIDED_C3.to_dict()
STRIDED_HEAD_HEAVY = thinning_presets.STRIDED_HEAD_HEAVY.to_dict()
STRIDED_C3_BOTTLENECKS = thinning_presets.STRIDED_C3_BOTTLENECKS.to_dict()
HALVED_FIRST_C3_WHOLE = thinning_presets.HALVED_FIRST_C3_WHOLE.to_dict()

VARIANTS = {
    "dense": {"recipe": "dense-finetune"},
    "dense-hardswish": {"recipe": "dense-finetune", "activation": "hardswish"},
    # What INT8 and Hardswish cost without thinning: the floor for the thinned INT8 variants.
    "dense-hardswish-int8": {"recipe": "finetune-quantization", "activation": "hardswish"},
    "thinned-int8": {"recipe": "finetune-quantization", "activation": "hardswish", "thinning": {"c3": 0.5, "bottleneck": 0.5}},
    "pruned-int8": {"recipe": "pruning-quantization", "activation": "hardswish"},
    # To tell the costs apart: thinning without QAT, and a milder thinning with QAT.
    "thinned-hardswish": {"recipe": "dense-finetune", "activation": "hardswish", "thinning": {"c3": 0.5, "bottleneck": 0.5}},
    "thinned75-int8": {"recipe": "finetune-quantization", "activation": "hardswish", "thinning": {"c3": 0.75, "bottleneck": 0.75}},
    # Thinning with feature distillation from the unthinned model (yolotut.training.distill).
    "thinned-distill-hardswish": {"recipe": "dense-finetune", "activation": "hardswish", "thinning": {"c3": 0.5, "bottleneck": 0.5}, "distill": 1.0},
    "thinned-distill-int8": {"recipe": "finetune-quantization", "activation": "hardswish", "thinning": {"c3": 0.5, "bottleneck": 0.5}, "distill": 1.0},
    # The same channels faded out during the first --fade-epochs, then removed (ChannelFade).
    "thinned-fade-hardswish": {"recipe": "dense-finetune", "activation": "hardswish", "thinning": {"c3": 0.5, "bottleneck": 0.5}, "fade": True},
    "thinned-fade-int8": {"recipe": "finetune-quantization", "activation": "hardswish", "thinning": {"c3": 0.5, "bottleneck": 0.5}, "fade": True},
    # As many multiply-adds removed, more from the head than from the backbone (thinning_presets.HEAD_HEAVY).
    "thinned-head-fade-hardswish": {"recipe": "dense-finetune", "activation": "hardswish", "thinning": HEAD_HEAVY, "fade": True},
    "thinned-head-fade-int8": {"recipe": "finetune-quantization", "activation": "hardswish", "thinning": HEAD_HEAVY, "fade": True},
    # About the halved model's speed, block 2 kept whole, blocks 6 and 8 to a quarter (thinning_presets.BACKBONE_SPLIT).
    "thinned-split-fade-hardswish": {"recipe": "dense-finetune", "activation": "hardswish", "thinning": BACKBONE_SPLIT, "fade": True},
    "thinned-split-fade-int8": {"recipe": "finetune-quantization", "activation": "hardswish", "thinning": BACKBONE_SPLIT, "fade": True},
    # Faster than the halved model: the strided convs 3/5/7 halved with the C3 branches
    # (bottlenecks whole), or with HEAD_HEAVY (thinning_presets.STRIDED_C3 / STRIDED_HEAD_HEAVY).
    "thinned-strided-fade-hardswish": {"recipe": "dense-finetune", "activation": "hardswish", "thinning": STRIDED_C3, "fade": True},
    "thinned-strided-fade-int8": {"recipe": "finetune-quantization", "activation": "hardswish", "thinning": STRIDED_C3, "fade": True},
    "thinned-strided-fade-distill-int8": {"recipe": "finetune-quantization", "activation": "hardswish", "thinning": STRIDED_C3, "fade": True, "distill": 1.0},
    "thinned-strided-head-fade-hardswish": {"recipe": "dense-finetune", "activation": "hardswish", "thinning": STRIDED_HEAD_HEAVY, "fade": True},
    "thinned-strided-head-fade-int8": {"recipe": "finetune-quantization", "activation": "hardswish", "thinning": STRIDED_HEAD_HEAVY, "fade": True},
    "thinned-strided-head-fade-distill-int8": {"recipe": "finetune-quantization", "activation": "hardswish", "thinning": STRIDED_HEAD_HEAVY, "fade": True, "distill": 1.0},
    "thinned-strided-all-fade-int8": {"recipe": "finetune-quantization", "activation": "hardswish", "thinning": STRIDED_C3_BOTTLENECKS, "fade": True},
    # The halved model with the first C3 (block 2) whole: no slower on AVX-512 VNNI (thinning_presets.HALVED_FIRST_C3_WHOLE).
    "thinned-first-whole-fade-int8": {"recipe": "finetune-quantization", "activation": "hardswish", "thinning": HALVED_FIRST_C3_WHOLE, "fade": True},
    "thinned-first-whole-fade-distill-int8": {"recipe": "finetune-quantization", "activation": "hardswish", "thinning": HALVED_FIRST_C3_WHOLE, "fade": True, "distill": 1.0},
    "thinned-fade-distill-hardswish": {"recipe": "dense-finetune", "activation": "hardswish", "thinning": {"c3": 0.5, "bottleneck": 0.5}, "fade": True, "distill": 1.0},
    "thinned-fade-distill-int8": {"recipe": "finetune-quantization", "activation": "hardswish", "thinning": {"c3": 0.5, "bottleneck": 0.5}, "fade": True, "distill": 1.0},
}


def _check_same_run(saved: dict, config: TrainConfig) -> None:
    """--resume must not score or continue a run made with other settings under the same name."""
    wanted, saved = asdict(config), dict(saved)
    for settings in (wanted, saved):
        if settings.get("thinning"):
            # Spelled out with every field: a run saved before a field existed got its default.
            settings["thinning"] = ThinningConfig.from_dict(settings["thinning"]).to_dict()
    differ = sorted(key for key in wanted if key in saved and saved[key] != wanted[key])
    if differ:
        raise SystemExit(f"{config.out_dir} holds a run with other settings ({', '.join(differ)}); "
                         "give the same arguments as before or another --out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["dense", "thinned-int8"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--fade-epochs", type=int, default=None, help="fading epochs of the thinned-fade variants (default: half)")
    parser.add_argument("--criterion", choices=CRITERIA, help="which channels the thinned variants lose (default: ThinningConfig's)")
    parser.add_argument("--max-images", type=int, default=None, help="training images (default: all 2471)")
    parser.add_argument("--val-images", type=int, default=None, help="validation images (default: all 500)")
    parser.add_argument("--imgsz", type=int, default=416)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=TrainConfig.workers, help="data-loading processes per run "
                        "(default: TrainConfig's; more on a GPU machine, where loading feeds the GPU)")
    parser.add_argument("--weights", default="yolov5n", help="where every variant starts: an asset, a checkpoint or the "
                        "final.pt of a run trained without QAT (default: the COCO yolov5n.pt)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (data order, augmentation, fresh head)")
    parser.add_argument("--lr0", type=float, default=None, help="initial learning rate (default: TrainConfig's, 0.01); "
                        "a lower one for runs that start from a trained --weights")
    parser.add_argument("--teacher", help="distillation teacher of the *-distill-* variants (default: their unthinned "
                        "start); e.g. a dense run's final.pt")
    parser.add_argument("--distill-target", choices=list(DISTILLERS), help="what the *-distill-* variants "
                        "learn from the teacher (default: TrainConfig's, features)")
    parser.add_argument("--warmup-epochs", type=float, default=None, help="learning-rate warm-up (default: a third of the "
                        "epochs, at most 1; the full profile, like TrainConfig, uses 3)")
    parser.add_argument("--resume", action="store_true", help="score finished runs in --out as they are and continue "
                        "unfinished ones from their last.pt, instead of training every variant afresh")
    parser.add_argument("--train-only", action="store_true", help="train (or continue) the variants without scoring "
                        "them, e.g. on a GPU machine that lacks the valid split or DeepSparse; score them later "
                        "with --resume and the same arguments")
    parser.add_argument("--before", action="store_true", help="also score the starting model (COCO yolov5n.pt, fresh head)")
    parser.add_argument("--out", default="outputs/benchmarks/accuracy_budget")
    args = parser.parse_args()
    out = Path(args.out)
    int8_engine = "deepsparse" if deepsparse_unavailable_reason() is None else "onnxruntime"

    results = {}
    if args.before and args.train_only:
        parser.error("--before scores the starting model; it cannot go with --train-only")
    if args.before:
        start = initial_model(TrainConfig(weights="yolov5n"), ["pistol"]).eval()
        scores = evaluate(TorchEngine(start, imgsz=args.imgsz), "pistols", split="valid", max_images=args.val_images)
        results["before"] = {"map50": round(scores["map50"], 4), "map50_95": round(scores["map50_95"], 4), "val_images": scores["images"], "engine": "pytorch"}
        print(f"{'before':16s} mAP@0.5 {scores['map50']:.3f}  mAP@0.5:0.95 {scores['map50_95']:.3f}  ({scores['images']} images)", flush=True)
    fade_epochs = args.fade_epochs if args.fade_epochs is not None else max(1, round(args.epochs / 2))
    for name in args.variants:
        settings = dict(VARIANTS[name])
        if settings.pop("fade", False):
            settings["thinning_fade_epochs"] = fade_epochs
        if "thinning" in settings and args.criterion is not None:
            settings["thinning"] = {**settings["thinning"], "criterion": args.criterion}
        if args.weights != "yolov5n":
            settings["weights"] = args.weights
        if args.lr0 is not None:
            settings["lr0"] = args.lr0
        if args.teacher is not None and settings.get("distill"):
            settings["distill_teacher"] = args.teacher
        if args.distill_target is not None and settings.get("distill"):
            settings["distill_target"] = args.distill_target
        config = TrainConfig(
            epochs=args.epochs,
            imgsz=args.imgsz,
            batch_size=args.batch_size,
            max_images=args.max_images,
            warmup_epochs=args.warmup_epochs if args.warmup_epochs is not None else min(1.0, args.epochs / 3),
            device=args.device,
            workers=args.workers,
            seed=args.seed,
            out_dir=str(out / name),
            **{"weights": "yolov5n", **settings},
        )
        run_dir = Path(config.out_dir)
        if args.resume and (run_dir / "final.pt").exists():
            checkpoint = load_training_checkpoint(run_dir / "final.pt")
            _check_same_run(checkpoint["config"], config)
            final_checkpoint, history = run_dir / "final.pt", checkpoint["history"]
        else:
            resume = args.resume and (run_dir / "last.pt").exists()
            if resume:
                _check_same_run(load_training_checkpoint(run_dir / "last.pt")["config"], config)
            result = train(config, resume=resume)
            final_checkpoint, history = result.final_checkpoint, result.history
        if args.train_only:
            print(f"{name:16s} trained: {final_checkpoint} (not scored: --train-only)", flush=True)
            continue
        epoch_seconds = [record.get("seconds") for record in history]
        device = ", ".join(sorted({record.get("device", "not recorded") for record in history}))
        # Runs trained before epochs were timed: their training time is not known here.
        seconds = None if None in epoch_seconds else sum(epoch_seconds)
        # A run may start on a GPU machine and go on here: its time on each device.
        seconds_by_device: dict[str, float] = {}
        for record in history if seconds is not None else []:
            where = record.get("device", "not recorded")
            seconds_by_device[where] = seconds_by_device.get(where, 0.0) + record["seconds"]
        model = load_trained_model(final_checkpoint)
        if name.endswith("-int8"):
            path = export_onnx(model, out / f"{name}.onnx", imgsz=args.imgsz, uint8_input=True).path
            engine, engine_name = create_engine(path, int8_engine, imgsz=args.imgsz, names=["pistol"]), int8_engine
        else:
            engine, engine_name = TorchEngine(model.eval(), imgsz=args.imgsz), "pytorch"
        scores = evaluate(engine, "pistols", split="valid", max_images=args.val_images)
        results[name] = {
            "map50": round(scores["map50"], 4),
            "map50_95": round(scores["map50_95"], 4),
            "val_images": scores["images"],
            "engine": engine_name,
            "epochs": args.epochs,
            "train_images": args.max_images or "all",
            "train_seconds": None if seconds is None else round(seconds, 1),
            "train_seconds_by_device": {where: round(value, 1) for where, value in sorted(seconds_by_device.items())},
            "device": device,
            "seed": args.seed,
            "config": settings,
        }
        trained = "for an unrecorded time" if seconds is None else " + ".join(
            f"{value / 60:.1f} min on {where}" for where, value in sorted(seconds_by_device.items()))
        print(f"{name:16s} mAP@0.5 {scores['map50']:.3f}  mAP@0.5:0.95 {scores['map50_95']:.3f}  "
              f"({scores['images']} images, {engine_name}); trained {trained}", flush=True)
        # Several invocations may share --out: keep the variants measured earlier.
        summary_path = out / "accuracy_budget.json"
        earlier = read_results_file(summary_path)["results"] if summary_path.exists() else {}
        write_results(out, "accuracy_budget", {"epochs": args.epochs, "max_images": args.max_images, "results": {**earlier, **results}})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
