"""Neural Magic's YOLOv5 comparisons at the post's own conditions: YOLOv5s and YOLOv5l, 80 classes, 640 px, batch 1 and 64.

Builds (or takes from the cache in ``--out/models``) dense fp32, dense INT8, Neural Magic's
pruned fp32 and pruned INT8 (the per-layer targets and ``[1, 4]`` blocks of its recipes,
``yolotut/recipes/neuralmagic-yolov5{s,l}-pruned-quantized.yaml``) and the project's thinned
INT8 with and without those zeros, from fresh weights (speed does not depend on their
values; the COCO checkpoints cannot be downloaded here), every layer's sparsity checked
in the exported file. Then times them engine-only in interleaved rounds
(:mod:`yolotut.reproduce.neural_magic_table`): DeepSparse at batch 1 and 64, ONNX Runtime
(dense fp32) and PyTorch (pruned INT8, fake-quantized) at batch 1. Prints every
comparison of the post as the median of per-round ratios with its min-max, beside the
claimed ratio, and writes ``neural_magic_table.json`` (the report shows the newest one
below ``outputs/benchmarks/``).

    python benchmarks/neural_magic_table.py                       # both models, 5 rounds (about 1 h on 2 cores)
    python benchmarks/neural_magic_table.py --archs yolov5l --rounds 3 --big-iterations 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yolotut.compat  # noqa: F401  (NM_DISABLE_ANALYTICS before deepsparse loads)
from yolotut.inference.quiet import QuietPolicy
from yolotut.reproduce import neural_magic_table as table
from yolotut.reproduce.report import markdown_table
from yolotut.reproduce.results import write_results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(table.ARCHS), choices=table.ARCHS)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs before each batch-1 measurement")
    parser.add_argument("--iterations", type=int, default=30, help="timed runs per batch-1 measurement")
    parser.add_argument("--big-warmup", type=int, default=1, help="untimed batches before each large-batch measurement")
    parser.add_argument("--big-iterations", type=int, default=3, help="timed batches per large-batch measurement")
    parser.add_argument("--big-batch-variants", nargs="+", default=None,
                        help="only these variants above batch 1 (default: all six), e.g. dense pruned-quantized")
    parser.add_argument("--cores", type=int, default=None, help="default: every core this process may use")
    parser.add_argument("--max-tries", type=int, default=3, help="measurements per setup and round while other processes take the CPU")
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmarks/neural_magic_table"))
    args = parser.parse_args(argv)

    settings = table.TableSettings(
        archs=tuple(args.archs), batch_sizes=tuple(args.batch_sizes), rounds=args.rounds, warmup=args.warmup,
        iterations=args.iterations, big_warmup=args.big_warmup, big_iterations=args.big_iterations, cores=args.cores,
        big_batch_variants=tuple(args.big_batch_variants) if args.big_batch_variants else None,
        profile="benchmark", quiet=QuietPolicy(max_tries=args.max_tries),
    )
    payload = table.run_table(settings, args.out / "models")
    payload["command"] = " ".join(["python", *sys.argv])
    print(f"written: {write_results(args.out, 'neural_magic_table', payload)}")
    print(f"models {payload['seconds']['models']:.0f} s, timing {payload['seconds']['timing']:.0f} s")
    print(markdown_table(table.markdown_cells(payload)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
