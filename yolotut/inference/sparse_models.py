"""YOLOv5 INT8 models with a chosen sparsity, built for speed measurements and cached.

Speed depends on the architecture, the input size and *where* the zeros are, never on
the weights' values, so these models start from fresh weights: :func:`ensure_model`
builds a YOLOv5 of a :class:`ModelSpec`, puts the zeros (or removes the channels) of a
:class:`Point`, calibrates on random images, exports to ONNX and checks that every
layer's sparsity survived the export. Files are cached by a hash of the configuration.
``benchmarks/sparsity_search.py`` times them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from yolotut.inference.sparsify import SparsityConfig
from yolotut.models.thinning import ThinningConfig

CACHE_SCHEMA = 2  # bump when the export recipe below changes: invalidates cached models
DEFAULT_ACTIVATION = {"n": "hardswish", "s": "silu"}
CALIBRATION_BATCHES = 2
SPARSITY_TOLERANCE = 0.01


@dataclass(frozen=True)
class ModelSpec:
    size: str
    activation: str
    num_classes: int = 1
    imgsz: int = 416

    @property
    def label(self) -> str:
        return f"yolov5{self.size}-{self.activation}"

    @classmethod
    def parse(cls, text: str, imgsz: int) -> ModelSpec:
        """``s`` / ``n`` (default activations) or ``SIZE:ACTIVATION`` (``s:hardswish``)."""
        size, _, activation = text.partition(":")
        if size not in ("n", "s", "m", "l", "x"):
            raise ValueError(f"unknown YOLOv5 size {size!r}; use n, s, m, l or x (optionally SIZE:ACTIVATION)")
        return cls(size, activation or DEFAULT_ACTIVATION.get(size, "silu"), imgsz=imgsz)


@dataclass(frozen=True)
class Point:
    """One model file to benchmark: a sparsity configuration (or a reference)."""

    label: str
    family: str
    config: SparsityConfig
    quantized: bool = True
    engine: str = "deepsparse"
    # "derived": zeros written into the dense INT8 export (yolotut.inference.sparsify.apply_sparsity_onnx);
    # "pipeline": apply_sparsity -> calibrate_oneshot -> export_onnx. Same file up to
    # rounding ties (checked: >99.4 % identical zero positions), seconds instead of minutes.
    method: str = "derived"
    # Channels removed before export (yolotut.models.thinning): a smaller dense model.
    thinning: ThinningConfig | None = None
    # A published model file (yolotut.assets name) measured as it is, instead of an export.
    asset: str | None = None

    @property
    def is_baseline(self) -> bool:
        return self.family == "dense" and self.quantized and self.engine == "deepsparse"

    @property
    def derived(self) -> bool:
        return self.method == "derived" and self.quantized and bool(self.config.targets) and self.thinning is None


# yolotut.inference.export makes the graphs DeepSparse runs itself (fraction_of_supported_ops
# 1.0): it folds the Detect convs' QuantizeLinear -> DequantizeLinear weight pairs into
# float weights (without: 0.0, the whole graph in DeepSparse's bundled ONNX Runtime,
# 20 ms -> 10.5 ms for YOLOv5s) and exports Hardswish as x * clip(x + 3, 0, 6) / 6
# (without: HardSigmoid, 0.70-0.84 supported, 9.8 ms -> 2.2 ms for YOLOv5n). Every
# engine's fraction is still recorded below: a sparsity "speed-up" measured on a
# fallback graph would be ONNX Runtime's.


def _calibration_loader(imgsz: int, batches: int, seed: int) -> list[tuple[Any]]:
    generator = torch.Generator().manual_seed(seed)
    # Random pixels: activation ranges decide no kernel choice, so speed does not care.
    return [(torch.randint(0, 256, (1, 3, imgsz, imgsz), generator=generator, dtype=torch.uint8),) for _ in range(batches)]


def model_key(spec: ModelSpec, point: Point, seed: int) -> str:
    payload = {
        "schema": CACHE_SCHEMA,
        "spec": [spec.size, spec.activation, spec.num_classes, spec.imgsz],
        "config": point.config.key(),
        "quantized": point.quantized,
        "seed": seed,
    }
    if point.thinning is not None:
        payload["thinning"] = point.thinning.to_dict()
    if point.derived:
        payload["method"] = "derived"
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def _check_exported_sparsity(per_layer: dict[str, float], report: dict[str, Any], path: Path) -> None:
    """Every exported convolution must carry the zeros put into its torch weight.

    INT8 export may only *add* zeros (tiny weights rounding to the zero point).
    """
    from yolotut.inference.sparsify import exported_layer_sparsity

    exported = exported_layer_sparsity(report["layers"])
    missing = sorted(set(per_layer) - set(exported))
    if missing:
        raise RuntimeError(f"{path}: convolutions {missing[:3]}... not found in the exported graph")
    lost = {name: per_layer[name] - exported[name] for name in per_layer if per_layer[name] - exported[name] > SPARSITY_TOLERANCE}
    if lost:
        name = max(lost, key=lost.get)
        raise RuntimeError(f"{path}: {len(lost)} layers lost zeros in export (worst {name}: {per_layer[name]:.1%} -> {exported[name]:.1%})")


def build_torch_model(spec: ModelSpec, point: Point, seed: int = 0) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The torch model of ``point`` before export: fresh weights (``seed``), its channels
    removed, its zeros put in and, for INT8, calibrated fake-quant observers (what PyTorch
    runs of a QAT model). Also what was done: thinned groups and per-layer sparsity."""
    from yolotut.inference.sparsify import apply_sparsity, conv_weight_sparsity
    from yolotut.models import build_model
    from yolotut.models.thinning import conv_weight_count, thin
    from yolotut.training.oneshot import calibrate_oneshot

    torch.manual_seed(seed)
    model = build_model(spec.size, num_classes=spec.num_classes, activation=spec.activation)
    dense_conv_weights = conv_weight_count(model)
    thinned = thin(model, point.thinning) if point.thinning is not None else {}
    per_layer = apply_sparsity(model, point.config)
    torch_sparsity = conv_weight_sparsity(model)  # before calibration renames the parameters
    if point.quantized:
        calibrate_oneshot(model, _calibration_loader(spec.imgsz, CALIBRATION_BATCHES, seed), num_batches=CALIBRATION_BATCHES, progress=False)
    return model, {"thinned_groups": thinned, "dense_conv_weights": dense_conv_weights,
                   "torch_conv_sparsity": torch_sparsity, "torch_layers": per_layer}


def ensure_model(spec: ModelSpec, point: Point, model_dir: Path, seed: int = 0) -> tuple[Path, dict[str, Any]]:
    """The cached ONNX model for ``point`` (exported now if missing) and its sidecar info."""
    if point.asset is not None:
        from yolotut.assets import fetch
        from yolotut.inference.export import measure_onnx_sparsity

        path = fetch(point.asset, progress=False)
        return path, {"model": spec.label, "asset": point.asset, "quantized": point.quantized, "method": "published", "onnx": measure_onnx_sparsity(path).to_dict(layers=True)}
    key = model_key(spec, point, seed)
    path = model_dir / f"{spec.label}-{'int8' if point.quantized else 'fp32'}-{key}.onnx"
    sidecar = path.with_suffix(".json")
    if path.exists() and sidecar.exists():
        return path, json.loads(sidecar.read_text())

    start = time.perf_counter()
    if point.derived:
        return path, _derive_model(spec, point, path, model_dir, seed, start)

    from yolotut.inference.export import export_onnx, measure_onnx_sparsity

    model, built = build_torch_model(spec, point, seed)
    export_onnx(model, path, imgsz=spec.imgsz, uint8_input=point.quantized)
    report = measure_onnx_sparsity(path).to_dict(layers=True)
    _check_exported_sparsity(built["torch_layers"], report, path)
    info = {
        "model": spec.label,
        "config": point.config.to_dict(),
        "recipe_args": point.config.recipe_args(),
        "quantized": point.quantized,
        "method": "pipeline",
        "thinning": point.thinning.to_dict() if point.thinning is not None else None,
        **built,
        "onnx": report,
        "export_seconds": time.perf_counter() - start,
    }
    sidecar.write_text(json.dumps(info, indent=1, default=str) + "\n")
    return path, info


def _derive_model(spec: ModelSpec, point: Point, path: Path, model_dir: Path, seed: int, start: float) -> dict[str, Any]:
    """Zero the dense INT8 export's weights to ``point.config`` (no re-export), then check."""
    from yolotut.inference.export import measure_onnx_sparsity
    from yolotut.inference.sparsify import (
        apply_sparsity_onnx,
        exported_layer_sparsity,
        targets_for_names,
    )

    dense_path, _ = ensure_model(spec, Point("dense INT8", "dense", SparsityConfig.dense_model(), method="pipeline"), model_dir, seed)
    per_layer = apply_sparsity_onnx(dense_path, path, point.config)
    report = measure_onnx_sparsity(path).to_dict(layers=True)
    targets = targets_for_names(per_layer, point.config)
    exported = exported_layer_sparsity(report["layers"])
    off = {name: exported[name] - targets[name] for name in targets if targets[name] > 0 and abs(exported[name] - targets[name]) > SPARSITY_TOLERANCE}
    if off:
        raise RuntimeError(f"{path}: {len(off)} layers miss their target by more than {SPARSITY_TOLERANCE:.0%}: {off}")
    info = {
        "model": spec.label,
        "config": point.config.to_dict(),
        "recipe_args": point.config.recipe_args(),
        "quantized": True,
        "method": "derived",
        "derived_from": dense_path.name,
        "onnx": report,
        "export_seconds": time.perf_counter() - start,
    }
    path.with_suffix(".json").write_text(json.dumps(info, indent=1, default=str) + "\n")
    return info
