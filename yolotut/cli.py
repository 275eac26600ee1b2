"""The ``yolotut`` command line.

Thin on purpose: each subcommand parses its arguments and calls one module. Heavy
imports (torch, deepsparse, ...) happen inside the handlers so that ``yolotut --help``
and ``yolotut env`` stay fast.

``--json`` prints one JSON object on the last line of stdout.

Errors: a failure the user can fix (a missing, truncated or wrong file, a model that is
not YOLOv5's, an unwritable ``--out``, an unknown asset ...) ends as one line on stderr,
``yolotut <command>: error: <message>``, and exit status 2; the message names the input
and the fix. Those are the types of :mod:`yolotut.errors`, ``FileNotFoundError`` and other
``OSError`` about a named file, and any ``ValueError``/``RuntimeError`` raised by yolotut's
own code (whose messages are written for the user). The same types raised inside a
library are bugs until shown otherwise, and keep their traceback, as does everything
else. ``--debug`` (or ``YOLOTUT_DEBUG=1``) shows the traceback of every error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from yolotut.errors import InputError, UnavailableError, check_output_path, describe_os_error
from yolotut.inference.engines import ENGINES

Handler = Callable[[argparse.Namespace], int]


def _check_outputs(args: argparse.Namespace, *options: str) -> None:
    """Fail before any work when an output file given on the command line cannot be written."""
    for option in options:
        value = getattr(args, option)
        if value:
            check_output_path(value, f"--{option}")


def print_json(payload: dict[str, Any]) -> None:
    """Print one JSON object on its own (last) line of stdout."""
    sys.stdout.flush()
    print(json.dumps(payload, default=str, sort_keys=True), flush=True)


# --- fetch / env (assets, hardware) -----------------------------------------------


def _add_fetch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fetch", help="print the local path of a registered asset (mirror, cache, else download)")
    p.add_argument("name", nargs="?", help="asset name; omit with --list to see them")
    p.add_argument("--list", action="store_true", help="list the registered assets")
    p.add_argument("--no-download", action="store_true", help="use only the mirror and the cache")
    p.add_argument("--no-progress", action="store_true", help="no download progress bar")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_fetch)


def _cmd_fetch(args: argparse.Namespace) -> int:
    from yolotut import assets

    if args.list or not args.name:
        if args.json:
            print_json({name: asset.description for name, asset in assets.REGISTRY.items()})
            return 0
        print(f"source: {assets.describe_source()}")
        for asset in assets.REGISTRY.values():
            print(f"{asset.name:28s} {asset.description}")
        return 0
    path = assets.fetch(args.name, progress=not args.no_progress, allow_download=not args.no_download)
    if args.json:
        print_json({"name": args.name, "path": str(path)})
    else:
        print(path)
    return 0


def _add_env(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("env", help="print versions, CPU features and the asset source in use")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_env)


def _cmd_env(args: argparse.Namespace) -> int:
    from yolotut import assets, hardware

    info = hardware.environment_report()
    info["asset_source"] = assets.describe_source()
    if args.json:
        print_json(info)
    else:
        for key, value in info.items():
            print(f"{key:24s} {value}")
    return 0


# --- end fetch / env ---------------------------------------------------------------


# --- bench / video / evaluate (engines, benchmark, video, evaluate) --------------------


def _default_engine(model: str, engine: str | None) -> str:
    # .pt checkpoints only run on torch and IR only on OpenVINO; for ONNX the project's engine is DeepSparse.
    if engine:
        return engine
    from yolotut.inference.engines import resolve_model_path

    suffix = resolve_model_path(model).suffix.lower()
    return {".pt": "pytorch", ".xml": "openvino"}.get(suffix, "deepsparse")


def _engine_options(args: argparse.Namespace, engine: str) -> dict[str, Any] | None:
    """The openvino engine's settings given on the command line (an error for other engines)."""
    options = {key: value for key, value in (("precision_hint", args.precision_hint), ("num_streams", args.streams))
               if value is not None}
    if options and engine != "openvino":
        raise ValueError(f"--precision-hint and --streams are openvino settings; drop them or use --engine openvino (not {engine})")
    return options or None


def _add_engine_args(p: argparse.ArgumentParser, batch: bool = True) -> None:
    p.add_argument("model", help=".pt (torch), .onnx (onnxruntime/deepsparse/openvino) or OpenVINO IR .xml (openvino) file, "
                   "or an asset name such as blog-yolov5n-pq-hardswish")
    p.add_argument("--engine", choices=ENGINES, help="default: pytorch for .pt, openvino for .xml, deepsparse for .onnx")
    if batch:
        p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--cores", type=int, default=None, help="cores / threads the engine may use (default: all)")
    p.add_argument("--imgsz", type=int, default=None, help="input size for models whose ONNX input is dynamic (default: from the model, 640 for .pt)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="torch engine only")
    p.add_argument("--precision-hint", choices=["f32", "bf16", "f16", "default"],
                   help="openvino only: INFERENCE_PRECISION_HINT (default f32; 'default': the plugin's own, bf16 on CPUs with AVX-512 BF16)")
    p.add_argument("--streams", type=int, help="openvino only: NUM_STREAMS (default: what the LATENCY hint picks, 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="latency / throughput of a model on one engine (25 warm-up + 80 timed runs)")
    _add_engine_args(p)
    p.add_argument("--warmup", type=int, default=25)
    p.add_argument("--iterations", type=int, default=80)
    p.add_argument("--out", help="also write the full result to this JSON file")
    p.add_argument("--csv", help="also write a one-row CSV")
    p.set_defaults(handler=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from yolotut.inference import benchmark

    _check_outputs(args, "out", "csv")
    engine = _default_engine(args.model, args.engine)
    result = benchmark.run_benchmark(
        args.model, engine, batch_size=args.batch_size, cores=args.cores, imgsz=args.imgsz,
        warmup=args.warmup, iterations=args.iterations, device=args.device, progress=not args.json,
        options=_engine_options(args, engine),
    )
    if args.out or args.csv:
        benchmark.save_results([result], args.out or Path(args.csv).with_suffix(".json"), args.csv)
    if result.skipped:
        print(f"skipped: {result.skipped}", file=sys.stderr)
    if result.busy:
        print(f"warning: other processes kept {result.other_cpu_cores} of {result.hardware.get('cores_available')} "
              "cores busy during the measurement; the figures understate the engine", file=sys.stderr)
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.summary())
    return 0


def _add_video(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("video", help="end-to-end FPS on a video (default: the blog's demo video), optionally writing it annotated")
    _add_engine_args(p, batch=False)
    p.add_argument("--source", help="video file (default: the demo-video asset)")
    p.add_argument("--out", help="write the annotated video here (.mp4)")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--conf-thres", type=float, default=0.25)
    p.add_argument("--iou-thres", type=float, default=0.45)
    p.add_argument("--data", help="dataset (name or yaml) whose class names label the boxes")
    p.add_argument("--no-draw", action="store_true", help="skip drawing boxes (pure detection FPS)")
    p.set_defaults(handler=_cmd_video)


def _cmd_video(args: argparse.Namespace) -> int:
    from yolotut import assets
    from yolotut.inference.engines import create_engine
    from yolotut.inference.video import run_video

    _check_outputs(args, "out")
    names = None
    if args.data:
        from yolotut.training.data import load_dataset_config

        names = load_dataset_config(args.data).names
    engine_name = _default_engine(args.model, args.engine)
    engine = create_engine(
        args.model, engine_name, batch_size=1, cores=args.cores,
        imgsz=args.imgsz, device=args.device, names=names, options=_engine_options(args, engine_name),
    )
    source = args.source or assets.fetch("demo-video")
    result = run_video(
        engine, source, out_path=args.out, conf_thres=args.conf_thres, iou_thres=args.iou_thres,
        max_frames=args.max_frames, progress=not args.json, draw=not args.no_draw,
    )
    if result.busy:
        print(f"warning: other processes kept {result.other_cpu_cores} cores busy during the run; "
              "the FPS understate the engine", file=sys.stderr)
    if args.json:
        print_json(result.to_dict())
    else:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in result.stage_ms.items())
        print(f"{result.frames} frames: {result.fps:.1f} FPS end-to-end, {result.fps_pipeline:.1f} FPS pipeline "
              f"(pre+infer+NMS); ms/frame: {stages}")
        if result.out_path:
            print(f"annotated video: {result.out_path}")
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="mAP@0.5 and mAP@0.5:0.95 on a dataset split (faster-coco-eval)")
    _add_engine_args(p)
    p.add_argument("--data", default="pistols", help="dataset name (pistols, asl) or yaml file")
    p.add_argument("--split", default="valid")
    p.add_argument("--max-images", type=int, default=None, help="evaluate only the first N images")
    p.add_argument("--conf-thres", type=float, default=0.001)
    p.add_argument("--iou-thres", type=float, default=0.6)
    p.add_argument("--out", help="also write the result to this JSON file")
    p.set_defaults(handler=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from yolotut.inference.engines import create_engine
    from yolotut.inference.evaluate import evaluate
    from yolotut.training.data import load_dataset_config

    _check_outputs(args, "out")
    cfg = load_dataset_config(args.data)
    engine_name = _default_engine(args.model, args.engine)
    engine = create_engine(
        args.model, engine_name, batch_size=args.batch_size, cores=args.cores,
        imgsz=args.imgsz, device=args.device, names=None, options=_engine_options(args, engine_name),
    )
    result = evaluate(
        engine, cfg, split=args.split, conf_thres=args.conf_thres, iou_thres=args.iou_thres,
        max_images=args.max_images, progress=not args.json,
    )
    result["model"] = str(args.model)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    if args.json:
        print_json(result)
    else:
        print(f"{result['dataset']}/{result['split']}: {result['images']} images, {result['instances']} instances: "
              f"mAP@0.5 {result['map50']:.4f}, mAP@0.5:0.95 {result['map50_95']:.4f}")
        for name, ap in result["per_class"].items():
            print(f"  {name:20s} AP50 {ap['ap50']:.4f}  AP50-95 {ap['ap50_95']:.4f}  ({ap['instances']} instances)")
    return 0


# --- end bench / video / evaluate ----------------------------------------------------


# --- check (claims) ------------------------------------------------------------------


def _add_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="judge result JSON files against the published claims (data/published.yaml)",
        description="Compare benchmark / video / evaluation / manifest result files with the "
        "figures of the two write-ups; prints a markdown verdict table.",
    )
    p.add_argument("results", nargs="+", help="result JSON files, or folders searched for *.json")
    p.add_argument("--claims", default=None, help="claims registry (default: the repository's data/published.yaml)")
    p.add_argument("--tolerance", type=float, default=0.15, help="relative tolerance for ratios (default 0.15)")
    p.add_argument("--markdown", metavar="OUT.md", help="also write the markdown table here")
    p.add_argument("--html", metavar="OUT.html", help="also write a self-contained HTML page (table + chart)")
    p.add_argument("--json", action="store_true", help="print a JSON object with the verdict list instead of the table")
    p.set_defaults(handler=_cmd_check)


def _cmd_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from yolotut.reproduce import claims

    _check_outputs(args, "markdown", "html")
    registry = claims.load_claims(args.claims)
    measurements = claims.load_measurements(args.results)
    verdicts = claims.check(registry, measurements, tolerance=args.tolerance)
    table = claims.verdicts_to_markdown(verdicts)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table, encoding="utf-8")
    if args.html:
        from yolotut.ui import plots

        page = claims.verdicts_to_html(verdicts, [plots.verdict_figure(verdicts)])
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html).write_text(page, encoding="utf-8")
    if args.json:
        print_json({**claims.verdicts_to_json(verdicts), "measurements": len(measurements)})
    else:
        print(table)
    return 0


# --- end check ------------------------------------------------------------------------


# --- train / export / sparsity (train, export) -----------------------------------------


def _parse_recipe_args(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are read as YAML scalars (numbers, lists, strings)."""
    import yaml

    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--recipe-arg expects key=value, got {pair!r}")
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fine-tune / prune / quantize a YOLOv5 model with a SparseML recipe")
    p.add_argument("--recipe", default="dense-finetune", help="shipped recipe name or a recipe file")
    p.add_argument("--recipe-arg", action="append", default=[], metavar="KEY=VALUE", help="override a recipe variable")
    p.add_argument("--data", default="pistols", help="dataset name (pistols, asl) or dataset yaml")
    p.add_argument("--weights", default="yolov5n", help="asset name or .pt path (a model checkpoint, or the final.pt of a run "
                   "trained without QAT, e.g. to thin a trained model); 'none' to start from scratch")
    p.add_argument("--size", default="n", choices=["n", "s", "m", "l", "x"], help="model size when --weights none")
    p.add_argument("--activation", choices=["silu", "hardswish", "relu"], help="override the activation")
    p.add_argument("--epochs", type=int, help="overrides the recipe's num_epochs")
    thin_help = "fraction of channels to keep in %s before training (channel thinning; with --recipe finetune-quantization)"
    p.add_argument("--thin-c3", type=float, metavar="KEEP", help=thin_help % "the C3 branches")
    p.add_argument("--thin-bottleneck", type=float, metavar="KEEP", help=thin_help % "the bottlenecks' hidden layers")
    p.add_argument("--thin-sppf", type=float, metavar="KEEP", help=thin_help % "SPPF")
    p.add_argument("--thin-conv", type=float, metavar="KEEP", help=thin_help % "the stem's and the strided backbone convolutions' outputs")
    p.add_argument(
        "--thin-criterion", metavar="NAME",
        help=("which channels thinning removes: largest-norm (the default), smallest-norm, random, or damage "
              "(measured per channel on 8 training images: minutes before training starts)"),
    )
    p.add_argument(
        "--thin-fade-epochs", type=int, default=0, metavar="N",
        help="fade the thinned channels out over the first N epochs, then remove them (0: remove before training)",
    )
    p.add_argument(
        "--distill", type=float, default=0.0, metavar="WEIGHT",
        help="weight of distillation, from the model before thinning unless --distill-teacher (e.g. 1.0; costs a third to a half more time per step)",
    )
    p.add_argument(
        "--distill-teacher", metavar="WEIGHTS",
        help="distil from these weights instead of the model before thinning (e.g. a dense run's final.pt)",
    )
    p.add_argument(
        "--distill-target", choices=("features", "predictions"), default="features",
        help="what is distilled: the Detect head's input features (teacher of the same size) or its predictions",
    )
    p.add_argument("--imgsz", type=int, default=416)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-images", type=int, help="train on a subset (quick runs)")
    p.add_argument("--max-steps", type=int, help="at most this many steps per epoch")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default="runs/train", help="run directory (checkpoints, history)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from yolotut.training.config import TrainConfig
    from yolotut.training.loop import train

    check_output_path(args.out, "--out", folder=True)
    thinning = {
        kind: keep
        for kind, keep in (("c3", args.thin_c3), ("bottleneck", args.thin_bottleneck), ("sppf", args.thin_sppf), ("conv", args.thin_conv))
        if keep is not None
    }
    if args.thin_criterion is not None:
        if not thinning:
            raise ValueError("--thin-criterion chooses which channels thinning removes: give --thin-c3, --thin-bottleneck, --thin-sppf or --thin-conv too")
        thinning["criterion"] = args.thin_criterion
    config = TrainConfig(
        data=args.data,
        weights=None if args.weights.lower() == "none" else args.weights,
        size=args.size,
        activation=args.activation,
        thinning=thinning or None,
        thinning_fade_epochs=args.thin_fade_epochs,
        distill=args.distill,
        distill_teacher=args.distill_teacher,
        distill_target=args.distill_target,
        recipe=args.recipe,
        recipe_args=_parse_recipe_args(args.recipe_arg),
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch_size=args.batch_size,
        max_images=args.max_images,
        max_steps_per_epoch=args.max_steps,
        device=args.device,
        workers=args.workers,
        out_dir=args.out,
    )
    result = train(config, resume=args.resume)
    last = result.history[-1] if result.history else {}
    summary = {
        "checkpoint": str(result.final_checkpoint),
        "epochs_run": result.epochs_run,
        "seconds": round(result.seconds, 1),
        "device": result.device,
        "sparsity": last.get("sparsity"),
        "loss": {k: last.get(k) for k in ("box", "obj", "cls")},
    }
    if args.json:
        print_json(summary)
    else:
        print(f"trained {result.epochs_run} epoch(s) in {result.seconds:.0f} s on {result.device}: {result.final_checkpoint}")
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX (QAT models become INT8 QLinearConv)")
    p.add_argument("checkpoint", help="training checkpoint (final.pt), yolotut or Ultralytics .pt")
    p.add_argument("--out", required=True, help="ONNX file to write")
    p.add_argument("--imgsz", type=int, default=416)
    p.add_argument("--batch-size", type=int, default=1, help="batch size of the sample (the batch axis stays dynamic)")
    p.add_argument("--float-input", action="store_true", help="quantized models: keep a float32 input instead of uint8")
    p.add_argument("--raw-outputs", action="store_true", help="also output the three raw head tensors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from yolotut.inference.export import export_onnx, is_quantized
    from yolotut.models.checkpoint import load_model

    _check_outputs(args, "out")
    model = load_model(args.checkpoint)
    uint8_input = False if args.float_input else is_quantized(model)
    report = export_onnx(
        model, args.out, imgsz=args.imgsz, batch_size=args.batch_size, uint8_input=uint8_input, raw_outputs=args.raw_outputs
    )
    data = report.to_dict()
    if args.json:
        print_json(data)
    else:
        kind = "INT8" if report.quantized else "fp32"
        print(
            f"{report.path}: {kind}, {report.input_dtype} input, {data['file_size_mb']:.2f} MB, "
            f"conv sparsity {data['conv_sparsity']:.1%}"
        )
    return 0


def _add_sparsity(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sparsity", help="measure the conv-weight sparsity of an ONNX model or checkpoint")
    p.add_argument("model", help=".onnx file or .pt checkpoint")
    p.add_argument("--layers", action="store_true", help="also list every layer")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_sparsity)


def _cmd_sparsity(args: argparse.Namespace) -> int:
    if args.model.endswith(".onnx"):
        from yolotut.inference.export import measure_onnx_sparsity

        report = measure_onnx_sparsity(args.model)
        data = report.to_dict(layers=args.layers)
        layers = [(layer.name, layer.shape, layer.sparsity) for layer in report.layers]
    else:
        from yolotut.inference.sparsify import conv_weight_sparsity
        from yolotut.models.checkpoint import load_model

        model = load_model(args.model)
        layers = [
            (name, tuple(p.shape), float((p == 0).float().mean()))
            for name, p in model.named_parameters()
            if p.dim() == 4
        ]
        data = {"path": args.model, "conv_sparsity": conv_weight_sparsity(model)}
        if args.layers:
            data["layers"] = [{"name": n, "shape": s, "sparsity": v} for n, s, v in layers]
    if args.json:
        print_json(data)
        return 0
    if args.layers:
        for name, shape, value in layers:
            print(f"{value:7.1%}  {shape!s:20s} {name}")
    print(f"conv-weight sparsity: {data['conv_sparsity']:.1%}  ({args.model})")
    return 0


# --- end train / export / sparsity ----------------------------------------------------


# --- reproduce (runner, report) ----------------------------------------------------------


def _add_reproduce(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="run every tutorial notebook in order (papermill), then write the reproduction report",
    )
    p.add_argument("--profile", choices=["quick", "full"], default="quick",
                   help="quick: minutes on 2 CPU cores (pipeline check); full: the real training (GPU advised)")
    p.add_argument("--only", help="comma-separated notebook numbers or names, e.g. 01,02 (default: all)")
    p.add_argument("--output", default="outputs", help="folder for results, models, executed notebooks and the report")
    p.add_argument("--notebooks", help="folder holding the notebooks (default: notebooks/ of the checkout)")
    p.add_argument("--no-report", action="store_true", help="skip building the report at the end")
    p.add_argument("--log-output", action="store_true", help="stream the notebooks' output to this terminal")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_reproduce)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from yolotut.reproduce import runner

    check_output_path(args.output, "--output", folder=True)
    only = args.only.split(",") if args.only else None
    try:
        summary = runner.reproduce(
            args.profile, only=only, output_dir=args.output, notebooks_dir=args.notebooks,
            build_report=not args.no_report, progress=not args.json, log_output=args.log_output,
        )
    except runner.NotebookFailedError as exc:
        print(f"yolotut reproduce: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print_json(runner.summary_dict(summary))
        return 0
    for run in summary.runs:
        print(f"{run.name:32s} {run.seconds:7.0f} s")
    print(f"{'total':32s} {summary.total_seconds:7.0f} s ({summary.profile} profile)")
    for kind, path in summary.report.items():
        print(f"report ({kind}): {path}")
    return 0


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="rebuild the reproduction report from the results already in --output "
             "(e.g. after running benchmarks/*.py, whose results it also shows)",
    )
    p.add_argument("--output", default="outputs", help="the folder `yolotut reproduce` wrote into")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from yolotut.reproduce import runner

    written = runner.write_report(args.output)
    if args.json:
        print_json(written)
    else:
        for kind, path in written.items():
            print(f"report ({kind}): {path}")
    return 0


# --- end reproduce -----------------------------------------------------------------------


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_fetch,
    _add_env,
    _add_bench,
    _add_video,
    _add_evaluate,
    _add_check,
    _add_train,
    _add_export,
    _add_sparsity,
    _add_reproduce,
    _add_report,
]


DEBUG_ENV = "YOLOTUT_DEBUG"
_DEBUG_HELP = f"show the full traceback of any error (or set {DEBUG_ENV}=1)"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yolotut",
        description="YOLOv5 on CPUs: pruning + INT8 with SparseML, DeepSparse, and a check of the published FPS claims.",
    )
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    for subparser in sub.choices.values():
        # Also after the subcommand; SUPPRESS keeps a --debug given before it.
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    return parser


def _raised_by_yolotut(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is yolotut's own code."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and os.path.abspath(frames[-1].filename).startswith(_PACKAGE_DIR + os.sep)


def user_error_message(exc: BaseException) -> str | None:
    """The one-line message for a failure the user can fix, or None for a bug (see the module docstring)."""
    if isinstance(exc, (InputError, UnavailableError, FileNotFoundError)):
        return " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename is not None:
        return describe_os_error(exc)
    if isinstance(exc, (ValueError, RuntimeError)) and _raised_by_yolotut(exc):
        return " ".join(str(exc).split())
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # sorted into the user's errors and the bugs right here
        message = user_error_message(exc)
        if message is None:
            raise
        if debug:
            traceback.print_exc()
        print(f"yolotut {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
