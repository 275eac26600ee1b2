"""The speed goals of the performance issue, measured side by side in one run.

* goal 2: the tutorial's YOLOv5n-Hardswish pruned + INT8 vs the blog author's
  `yolov5n-sgd-pruned-quantized-hardswish` model, DeepSparse, engine-only, batch 1,
  416 px, uint8 input for both (ratio of items/sec);
* goal 3: end-to-end video FPS of the tutorial's model on the demo video
  (decode -> preprocess -> infer -> NMS -> draw), with the per-stage profile, next
  to the author's model in the same loop;
* goal 4: the tutorial's YOLOv5s pruned + INT8 in DeepSparse vs its dense YOLOv5s in
  PyTorch at 416 (the post measured 2.65x).

Models come from the notebooks' `outputs/models/` (run `make reproduce` first); speed
does not depend on how long they were trained. Each round runs every engine once
(25 warm-up + 80 timed runs) in a rotated order, under SCHED_FIFO when allowed (see
sparsity_search.py); ratios are per round, then the median over rounds is printed.

    python benchmarks/issue6_goals.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from sparsity_search import realtime  # same folder: the SCHED_FIFO helper of the search

from yolotut import assets, hardware
from yolotut.benchmark import benchmark_engine
from yolotut.engines import create_engine
from yolotut.video import run_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default="outputs/models")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--video-rounds", type=int, default=3)
    parser.add_argument("--out", default="outputs/benchmarks/issue6_goals.json")
    args = parser.parse_args()
    models = Path(args.models_dir)
    author = assets.fetch("blog-yolov5n-pq-hardswish")
    engines = {
        "ours n-hs pruned+int8 (deepsparse)": create_engine(models / "yolov5n-hardswish-pruned-quantized.onnx", "deepsparse", imgsz=416),
        "author n-hs (deepsparse)": create_engine(author, "deepsparse", imgsz=416, names=["pistol"]),
        "ours s pruned+int8 (deepsparse)": create_engine(models / "yolov5s-pruned-quantized.onnx", "deepsparse", imgsz=416),
        "ours s dense (pytorch)": create_engine(models / "yolov5s-dense.pt", "torch", imgsz=416),
    }
    for label, engine in engines.items():
        supported = engine.info().get("fraction_of_supported_ops")
        print(f"{label}: {engine.info()['model']} (DeepSparse-supported ops: {supported})")

    labels = list(engines)
    speeds: dict[str, list[float]] = {label: [] for label in labels}
    for round_index in range(args.rounds):
        order = labels[round_index % len(labels):] + labels[: round_index % len(labels)]
        for label in order:
            with realtime(True):
                result = benchmark_engine(engines[label], progress=False, seed=round_index)
            speeds[label].append(result.items_per_sec)
    goal2 = [a / b for a, b in zip(speeds[labels[0]], speeds[labels[1]])]
    goal4 = [a / b for a, b in zip(speeds[labels[2]], speeds[labels[3]])]

    videos: dict[str, list] = {labels[0]: [], labels[1]: []}
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
        "items_per_sec_median": {label: statistics.median(v) for label, v in speeds.items()},
        "goal2_ours_vs_author": {"median": statistics.median(goal2), "min": min(goal2), "max": max(goal2), "goal": 1.2},
        "goal4_s_pq_deepsparse_vs_dense_pytorch": {"median": statistics.median(goal4), "min": min(goal4), "max": max(goal4), "goal": 4.0, "published": 2.65},
        "video": {
            label: {
                "fps_median": median_video(label).fps,
                "fps_all": [round(v.fps, 1) for v in videos[label]],
                "stage_ms": {k: round(v, 3) for k, v in median_video(label).stage_ms.items()},
            }
            for label in videos
        },
        "goal3_fps_goal": 180,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    for label, value in summary["items_per_sec_median"].items():
        print(f"{label:40s} {value:8.1f} items/s (median of {args.rounds})")
    for key in ("goal2_ours_vs_author", "goal4_s_pq_deepsparse_vs_dense_pytorch"):
        g = summary[key]
        print(f"{key}: {g['median']:.2f}x (min {g['min']:.2f}, max {g['max']:.2f}; goal {g['goal']}x)")
    for label, v in summary["video"].items():
        print(f"video {label}: {v['fps_median']:.1f} FPS end to end {v['fps_all']}, stages ms {v['stage_ms']}")
    print(json.dumps({k: summary[k] for k in ("goal2_ours_vs_author", "goal4_s_pq_deepsparse_vs_dense_pytorch")}, default=str))


if __name__ == "__main__":
    main()
