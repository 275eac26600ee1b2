"""Where does DeepSparse spend its time? Per-layer timings of one or more ONNX models.

Runs DeepSparse's ``DebugAnalysisEngine`` and prints one row per engine "layer" --
a fused *pyramid* (tensor columns over several convolutions), a single
``convolution`` run by a dense kernel, or a ``ks_convolution`` run by a sparse
kernel (``ks`` = the kernel sparsity it saw) -- with the YOLOv5 modules it covers,
its time and its dense-equivalent GFLOPs. Comparing a dense and a pruned model
shows which layers the sparse kernels speed up and which pyramids the sparsity
broke apart.

    .venv/bin/python benchmarks/layer_timings.py DENSE.onnx PRUNED.onnx [--cores 2]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import yolotut.compat  # noqa: F401  (NM_DISABLE_ANALYTICS before deepsparse loads)
from yolotut.inference.quiet import realtime


def _module(tensor_name: str) -> str:
    """``/model/model.8/cv1/...`` -> ``model.8``."""
    parts = tensor_name.split("/")
    return parts[2] if len(parts) > 2 and parts[1] == "model" else "-"


def analyse(path: Path, cores: int, batch_size: int, iterations: int) -> dict[str, Any]:
    from deepsparse.engine import DebugAnalysisEngine

    from yolotut.inference.engines import read_onnx_info

    info = read_onnx_info(str(path))
    imgsz = info.static_imgsz or info.imgsz or 416
    engine = DebugAnalysisEngine(str(path), batch_size=batch_size, num_cores=cores, num_iterations=iterations, num_warmup_iterations=5)
    shape = (batch_size, 3, imgsz, imgsz)
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, shape, dtype=np.uint8) if info.input_dtype == "uint8" else rng.random(shape, dtype=np.float32)
    with realtime():
        return engine.analyze([batch])


def print_layers(path: Path, result: dict[str, Any]) -> None:
    print(f"\n{path.name}: {result['average_total_time']:.2f} ms per batch ({result['items_per_second']:.1f} items/s)")
    print(f"  {'engine layer':24s} {'modules':20s} {'convs':>5s} {'ms':>7s} {'ks':>5s} {'GFLOP':>6s}")
    for layer in result["layer_info"]:
        names = layer["canonical_name"].split(",")
        modules = f"{_module(names[0])}..{_module(names[-1])}"
        print(
            f"  {layer['name'][:24]:24s} {modules:20s} {len(names):5d} {layer['average_run_time_in_ms']:7.3f} "
            f"{layer['kernel_sparsity']:5.2f} {layer['required_flops'] / 1e9:6.2f}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path, help="ONNX models (e.g. from outputs/benchmarks/models/)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args(argv)
    for path in args.models:
        if not path.is_file():
            parser.error(f"{path}: no such ONNX model")
    for path in args.models:
        print_layers(path, analyse(path, args.cores, args.batch_size, args.iterations))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
