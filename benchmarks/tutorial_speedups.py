"""The tutorial's speed-ups over its own references and over the blog author's model, side by side in one run.

For the tutorial's two kinds of sparse INT8 model, *pruned* (GMP zeros, notebooks 05
and 07) and *thinned* (hidden channels removed, then QAT; same notebooks):

* YOLOv5s sparse INT8 vs dense INT8 (notebook 03's one-shot INT8 export), DeepSparse,
  engine-only (the random-weight search over many configurations is
  ``sparsity_search.py``);
* the tutorial's YOLOv5n-Hardswish sparse INT8 vs the blog author's
  ``yolov5n-sgd-pruned-quantized-hardswish`` model, DeepSparse, engine-only, batch 1,
  416 px, uint8 input for both; the author's model also returns its three raw head
  tensors, ours only the decoded one, so it is measured a second time with only the
  decoded output kept (same nodes), to show that the extra outputs do not slow it;
* end-to-end video FPS on the demo video (decode -> preprocess -> infer -> NMS ->
  draw), with the per-stage profile, next to the author's model in the same loop;
* YOLOv5s sparse INT8 in DeepSparse vs its dense YOLOv5s in PyTorch at 416 (the
  180-FPS post measured 2.65x).

Each ratio has the target the tutorial sets itself (printed beside it). Models come
from the notebooks' ``outputs/models/`` (run ``make reproduce`` first); speed does not
depend on how long they were trained. Each round runs every engine once (25 warm-up +
80 timed runs) in a rotated order, under SCHED_FIFO when allowed, with the quiet policy
of :mod:`yolotut.inference.quiet`. A round's throughput is 1000 / median latency;
ratios are per round, and the median over rounds is printed with its min-max and the
number of measurements that stayed disturbed after the last try. The results file is
in the project's results format (:func:`yolotut.reproduce.results.write_results`).

    python benchmarks/tutorial_speedups.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from yolotut import assets, hardware
from yolotut.inference.engines import create_engine
from yolotut.inference.export import decoded_output_only
from yolotut.inference.quiet import QuietPolicy, measure_quietly, realtime
from yolotut.inference.video import run_video
from yolotut.reproduce.results import write_results

AUTHOR_OUT0 = "author n-hs, out_0 only (deepsparse)"  # the author's model, raw head outputs dropped
ENGINES = {
    # label: (file in --models-dir, engine); the author's model comes from yolotut.assets
    "ours n-hs pruned+int8 (deepsparse)": ("yolov5n-hardswish-pruned-quantized.onnx", "deepsparse"),
    "ours n-hs thinned+int8 (deepsparse)": ("yolov5n-hardswish-thinned-quantized.onnx", "deepsparse"),
    "author n-hs (deepsparse)": (None, "deepsparse"),
    AUTHOR_OUT0: (None, "deepsparse"),
    "ours s pruned+int8 (deepsparse)": ("yolov5s-pruned-quantized.onnx", "deepsparse"),
    "ours s thinned+int8 (deepsparse)": ("yolov5s-thinned-quantized.onnx", "deepsparse"),
    "ours s dense int8 (deepsparse)": ("yolov5s-oneshot-int8.onnx", "deepsparse"),
    "ours s dense (pytorch)": ("yolov5s-dense.pt", "pytorch"),
}
RATIOS = {
    # name: (numerator, denominator, target)
    "s_pruned_vs_dense_int8": ("ours s pruned+int8 (deepsparse)", "ours s dense int8 (deepsparse)", 1.5),
    "s_thinned_vs_dense_int8": ("ours s thinned+int8 (deepsparse)", "ours s dense int8 (deepsparse)", 1.5),
    "n_pruned_vs_author": ("ours n-hs pruned+int8 (deepsparse)", "author n-hs (deepsparse)", 1.2),
    "n_thinned_vs_author": ("ours n-hs thinned+int8 (deepsparse)", "author n-hs (deepsparse)", 1.2),
    "n_thinned_vs_author_out0_only": ("ours n-hs thinned+int8 (deepsparse)", AUTHOR_OUT0, 1.2),
    "s_pruned_vs_dense_pytorch": ("ours s pruned+int8 (deepsparse)", "ours s dense (pytorch)", 4.0),
    "s_thinned_vs_dense_pytorch": ("ours s thinned+int8 (deepsparse)", "ours s dense (pytorch)", 4.0),
}
AUTHOR_MODEL = "blog-yolov5n-pq-hardswish"
VIDEO = ("ours n-hs pruned+int8 (deepsparse)", "ours n-hs thinned+int8 (deepsparse)", "author n-hs (deepsparse)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default="outputs/models")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--video-rounds", type=int, default=3)
    parser.add_argument("--out", default="outputs/benchmarks/tutorial_speedups", help="folder for tutorial_speedups.json")
    args = parser.parse_args()
    models = Path(args.models_dir)
    engines = {}
    for label, (name, kind) in ENGINES.items():
        path = assets.fetch(AUTHOR_MODEL) if name is None else models / name
        if label == AUTHOR_OUT0:
            path = decoded_output_only(path, Path(args.out) / "author_out0_only.onnx")
        if not path.exists():
            print(f"{label}: {path} missing (run `make reproduce` first): skipped")
            continue
        engines[label] = create_engine(path, kind, imgsz=416, names=["pistol"] if name is None else None)
    for label, engine in engines.items():
        supported = engine.info().get("fraction_of_supported_ops")
        print(f"{label}: {engine.info()['model']} (DeepSparse-supported ops: {supported})")

    labels = list(engines)
    speeds: dict[str, list[float]] = {label: [] for label in labels}
    quiet = QuietPolicy()
    disturbed = 0
    for round_index in range(args.rounds):
        order = labels[round_index % len(labels):] + labels[: round_index % len(labels)]
        for label in order:
            result, load, _, _ = measure_quietly(engines[label], quiet, seed=round_index)
            disturbed += load > quiet.threshold
            # The median: one descheduled DeepSparse run moves the mean far more.
            speeds[label].append(1000.0 / float(result.latency_ms_median))
    ratios = {}
    for name, (top, bottom, target) in RATIOS.items():
        if top in speeds and bottom in speeds:
            per_round = [a / b for a, b in zip(speeds[top], speeds[bottom])]
            ratios[name] = {"median": statistics.median(per_round), "min": min(per_round), "max": max(per_round), "target": target}

    videos: dict[str, list] = {label: [] for label in VIDEO if label in engines and args.video_rounds > 0}
    source = assets.fetch("demo-video")
    for _ in range(args.video_rounds):
        for label in videos:
            with realtime(True):
                videos[label].append(run_video(engines[label], source, progress=False))

    def median_video(label: str):
        runs = sorted(videos[label], key=lambda v: v.fps)
        return runs[len(runs) // 2]

    summary = {
        "hardware": hardware.cpu_fingerprint(),
        "rounds": args.rounds,
        "quiet_policy": {"threshold_cores": quiet.threshold, "max_tries": quiet.max_tries},
        "disturbed_measurements": disturbed,
        "measurements": args.rounds * len(labels),
        "items_per_sec_median": {label: statistics.median(v) for label, v in speeds.items()},
        "ratios": ratios,
        "published_s_sparse_vs_dense_pytorch": 2.65,
        "video": {
            label: {
                "fps_median": median_video(label).fps,
                "fps_all": [round(v.fps, 1) for v in videos[label]],
                "stage_ms": {k: round(v, 3) for k, v in median_video(label).stage_ms.items()},
            }
            for label in videos
        },
        "video_fps_target": 180,
    }
    print(f"written: {write_results(args.out, 'tutorial_speedups', summary)}")
    for label, value in summary["items_per_sec_median"].items():
        print(f"{label:40s} {value:8.1f} items/s (median of {args.rounds})")
    print(f"{disturbed} of {args.rounds * len(labels)} measurements stayed disturbed after {quiet.max_tries} tries "
          f"(other processes or the hypervisor took > {quiet.threshold} cores)")
    for name, g in ratios.items():
        print(f"{name:36s} {g['median']:.2f}x (min {g['min']:.2f}, max {g['max']:.2f}; target {g['target']}x)")
    for label, v in summary["video"].items():
        print(f"video {label}: {v['fps_median']:.1f} FPS end to end {v['fps_all']}, stages ms {v['stage_ms']}")


if __name__ == "__main__":
    main()
