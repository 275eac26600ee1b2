"""Why is OpenVINO's INT8 slow on this CPU? Kernels, per-layer time and CPU settings, side by side.

For each model (default: the blog author's SparseML QAT INT8 model; add the NNCF IR,
the ONNX Runtime QDQ file and the dense fp32 export of ``benchmarks/living_engines.py``
with ``--model LABEL=PATH``):

1. **kernels**: which kernel and precision every convolution runs with after
   compilation (``OpenVinoEngine.kernels``: the runtime model's ``primitiveType`` and
   ``runtimePrecision``), so an INT8 file that runs float convolutions shows it;
2. **per-layer time**: OpenVINO's own counters (``PERF_COUNT``), summed by layer type,
   kernel and precision (``OpenVinoEngine.layer_times``);
3. **settings**: engine-only batch-1 items/s of OpenVINO with its LATENCY defaults
   (f32 hint, 1 stream, all cores, pinning on) against one change at a time (pinning
   off, 1 thread, 2 streams, THROUGHPUT hint, the plugin's own precision), next to
   ONNX Runtime and DeepSparse on the same file, in interleaved rounds (median, min-max;
   :func:`yolotut.reproduce.living_engines.measure_speed`).

It also runs in an environment that holds only OpenVINO (e.g. an older release in a
throwaway venv, with ``PYTHONPATH`` at this checkout); engines not installed there are
recorded as skipped:

    python benchmarks/openvino_int8.py --rounds 5
    python benchmarks/openvino_int8.py --model nncf=outputs/benchmarks/living_engines/models/dense-nncf-int8.xml
    /tmp/ov-2025.2/bin/python benchmarks/openvino_int8.py --out outputs/benchmarks/openvino_int8-2025.2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from yolotut import hardware
from yolotut.inference.engines import EngineUnavailableError, create_engine
from yolotut.inference.quiet import QuietPolicy
from yolotut.reproduce.living_engines import Setup, StudyModel, measure_speed
from yolotut.reproduce.results import write_results

# label: (options, cores); every other setting stays at the engine's LATENCY default.
OPENVINO_SETTINGS = {
    "defaults": ({}, None),
    "pinning off": ({"pinning": False}, None),
    "1 thread": ({}, 1),
    "2 streams": ({"num_streams": 2}, None),
    "THROUGHPUT hint": ({"performance_hint": "THROUGHPUT"}, None),
    "plugin's own precision": ({"precision_hint": "default"}, None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], metavar="LABEL=PATH", help="more models (ONNX or IR)")
    parser.add_argument("--no-author", action="store_true", help="leave out the blog author's model")
    parser.add_argument("--settings", nargs="+", default=list(OPENVINO_SETTINGS), choices=list(OPENVINO_SETTINGS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=25)
    parser.add_argument("--iterations", type=int, default=80)
    parser.add_argument("--profile-runs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmarks/openvino_int8"))
    args = parser.parse_args()

    models: dict[str, StudyModel] = {}
    if not args.no_author:
        from yolotut import assets

        models["author-qat-int8"] = StudyModel("author-qat-int8", str(assets.fetch("blog-yolov5n-pq-hardswish")), "sparseml-qat",
                                               "blog author", ("pistol",))
    for item in args.model:
        label, sep, path = item.partition("=")
        if not sep or not Path(path).exists():
            parser.error(f"--model expects LABEL=PATH of an existing file, got {item!r}")
        models[label] = StudyModel(label, path, "?", label)

    kernels, layer_times = {}, {}
    for key, model in models.items():
        try:
            engine = create_engine(model.path, "openvino", names=list(model.names) if model.names else None, options={"profile": True})
        except EngineUnavailableError as exc:
            print(f"{key}: OpenVINO cannot run it here: {exc}")
            continue
        kernels[key], layer_times[key] = engine.kernels(), engine.layer_times(args.profile_runs)
        print(f"\n{key}: {model.path}\n  convolution kernels: {kernels[key]}")
        total = sum(layer_times[key].values())
        print(f"  per-layer time (PERF_COUNT, {total:.2f} ms per run in all):")
        for name, ms in list(layer_times[key].items())[:8]:
            print(f"    {ms:7.2f} ms  {100 * ms / total:4.1f} %  {name}")

    setups = []
    for key, model in models.items():
        setups += [Setup(key, "onnxruntime"), Setup(key, "deepsparse")] if model.path.endswith(".onnx") else []
        for name in args.settings:
            options, cores = OPENVINO_SETTINGS[name]
            setups.append(Setup(key, "openvino", tuple({"precision_hint": "f32", **options}.items()), cores))
    speed = measure_speed(setups, models, 1, args.rounds, args.warmup, args.iterations, quiet=QuietPolicy())
    versions = hardware.package_versions()
    payload = {"hardware": hardware.cpu_fingerprint(), "versions": versions, "command": " ".join(sys.argv),
               "models": {k: m.path for k, m in models.items()}, "kernels": kernels, "layer_times_ms": layer_times,
               "speed": speed}
    print(f"\nwritten: {write_results(args.out, 'openvino_int8', payload)}")
    print(f"openvino {versions.get('openvino')}, onnxruntime {versions.get('onnxruntime')}, deepsparse {versions.get('deepsparse')}; "
          f"batch 1, {args.rounds} interleaved rounds")
    for label, row in speed.items():
        if row.get("skipped"):
            print(f"{label:70s} skipped: {row['skipped'][:90]}")
            continue
        info = row["engine_info"]
        detail = (f"threads {info.get('threads')}, streams {info.get('num_streams')}, pinning {info.get('cpu_pinning')}, "
                  f"{info.get('performance_hint')}, {info.get('precision_hint')}") if "kernels" in info else ""
        print(f"{label:70s} {row['items_per_sec_median']:7.1f} items/s ({row['items_per_sec_min']:.1f}-{row['items_per_sec_max']:.1f}, "
              f"{row['disturbed_rounds']} disturbed)  {detail}")


if __name__ == "__main__":
    main()
