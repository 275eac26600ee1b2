"""Our measurements: the result JSON files the notebooks and benchmarks write, read into :class:`Measurement` records."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolotut.inference.engines import canonical_engine_name
from yolotut.reproduce.registry import MEASUREMENT_KINDS, ClaimsError, is_number


@dataclass(frozen=True)
class Measurement:
    """One number we measured, with its conditions and the file it came from."""

    id: str
    metric: str
    value: float
    source: str
    model: str | None = None
    variant: str | None = None
    engine: str | None = None
    cores: int | None = None
    batch_size: int | None = None
    imgsz: int | None = None
    measurement: str | None = None
    dataset: str | None = None
    precision: str | None = None
    device: str | None = None
    hardware: str | None = None
    busy: bool = False  # other processes used the CPU while it was measured
    timing: str | None = None  # how a speed was timed (model, size, rounds, runs), where the record says

    def describe(self) -> str:
        parts = [p for p in (self.model, self.variant) if p]
        where = [
            self.engine or "",
            f"{self.cores} cores" if self.cores is not None else "",
            f"bs {self.batch_size}" if self.batch_size is not None else "",
            f"{self.imgsz}px" if self.imgsz is not None else "",
            self.dataset or "",
        ]
        where_s = ", ".join(w for w in where if w)
        return f"{' '.join(parts) or self.id}" + (f" ({where_s})" if where_s else "")




# --- loading measurements ------------------------------------------------------------
#
# Accepted shapes (a file holds one record, a list of records, or a mapping whose
# "results" / "entries" / "models" / "runs" / "measurements" list holds them; keys of
# that mapping other than the list act as defaults for every record, e.g. "hardware"):
#   benchmark  {engine, model, variant?, batch_size, cores|num_cores, imgsz,
#               items_per_sec, latency_ms_median, measurement?, hardware}
#               (yolotut.inference.benchmark.BenchmarkResult.to_dict())
#   video      {fps, fps_peak?, engine_info: {engine, model, cores, imgsz, ...}}
#               (yolotut.inference.video.VideoResult.to_dict())
#   evaluation {map50, map50_95, dataset, engine_info: {...}}  (yolotut.inference.evaluate)
#   manifest   {model, variant, sparsity?, file_size_mb?, file_size_gz_mb?}
# Keys of a nested "engine_info" fill in fields the record itself lacks. Without a
# "variant" key, model and variant are inferred from the model file name (the blog's
# run folders: yolov5n-sgd-pruned-quantized-hardswish/weights/best.onnx -> yolov5n,
# pruned-quantized-hardswish); an explicit key always wins. Records without any metric
# key are skipped as metadata, as are records with a "skipped" reason (a benchmark that
# could not run here); a file that yields neither is an error, as is any non-numeric
# metric value.

_METRIC_KEYS: dict[str, tuple[str, ...]] = {
    "items_per_sec": ("items_per_sec", "images_per_sec", "throughput_items_per_sec"),
    "latency_ms": ("latency_ms_median", "latency_ms", "latency_ms_mean"),
    "fps": ("fps", "fps_mean", "average_fps"),
    "fps_peak": ("fps_peak", "fps_max", "peak_fps"),
    "map50": ("map50", "mAP50", "map_50"),
    "map50_95": ("map50_95", "mAP50_95"),
    "sparsity": ("sparsity",),
    "file_size_mb": ("file_size_mb", "size_mb"),
    "file_size_gz_mb": ("file_size_gz_mb", "gzip_size_mb", "compressed_size_mb"),
}
_BYTES_KEYS = {"file_size_bytes": "file_size_mb", "file_size_gz_bytes": "file_size_gz_mb"}
_FRACTION_METRICS = {"map50", "map50_95", "sparsity"}
_DEFAULT_KIND = {
    "fps": "end-to-end-video",
    "fps_peak": "end-to-end-video",
    "items_per_sec": "engine-only",
    "latency_ms": "engine-only",
}
_CONTAINER_KEYS = ("results", "entries", "models", "runs", "measurements")

def load_measurements(paths: str | Path | Iterable[str | Path]) -> list[Measurement]:
    """Read result JSON files (or folders of ``*.json``) into :class:`Measurement` records."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("*.json"))
            if not found:
                raise ClaimsError(f"{p}: folder holds no *.json result files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise ClaimsError(f"result file not found: {p}")
    out: list[Measurement] = []
    for f in files:
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise ClaimsError(f"{f}: not valid JSON ({exc}); expected a result file written by yolotut") from exc
        found = measurements_from_json(doc, str(f))
        if not found and not _all_skipped(doc):
            raise ClaimsError(
                f"{f}: no measurement found; a result needs one of the keys "
                f"{sorted(k for keys in _METRIC_KEYS.values() for k in keys)}"
            )
        out.extend(found)
    return out


def measurements_from_json(doc: Any, source: str) -> list[Measurement]:
    """Measurements in one parsed result document (see the accepted shapes above)."""
    out: list[Measurement] = []
    for n, rec in enumerate(_records(doc, source)):
        out.extend(_record_measurements(rec, source, n))
    return out


def _records(doc: Any, source: str) -> list[Mapping[str, Any]]:
    if isinstance(doc, list):
        items, defaults = doc, {}
    elif isinstance(doc, Mapping):
        key = next((k for k in _CONTAINER_KEYS if isinstance(doc.get(k), list)), None)
        if key is None:
            return [doc]
        items = doc[key]
        # the container's own name/id label the file, not each record in it
        defaults = {k: v for k, v in doc.items() if k not in (key, "id", "name")}
    else:
        raise ClaimsError(f"{source}: top level must be a JSON object or a list of objects, got {type(doc).__name__}")
    records = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ClaimsError(f"{source}: record {i} is a {type(item).__name__}, expected an object")
        records.append({**defaults, **item})
    return records


def _opt_int(rec: Mapping[str, Any], keys: Sequence[str], source: str, n: int) -> int | None:
    for k in keys:
        v = rec.get(k)
        if v is None:
            continue
        if isinstance(v, (list, tuple)) and v and all(isinstance(x, int) for x in v):
            # [h, w] image sizes: the tutorial only uses square inputs, keep the larger side
            return int(max(v))
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v):
            raise ClaimsError(f"{source}: record {n}: '{k}' must be an integer, got {v!r}")
        return int(v)
    return None


def _opt_str(rec: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for k in keys:
        v = rec.get(k)
        if v is not None and v != "":
            return str(v)
    return None


def hardware_fingerprint(hw: Any) -> str | None:
    """A short stable string identifying the machine of a result (``None`` if unknown)."""
    if hw is None or hw == {}:
        return None
    if isinstance(hw, str):
        return hw
    if isinstance(hw, Mapping):
        if hw.get("fingerprint"):
            return str(hw["fingerprint"])
        cpu = _opt_str(hw, ("cpu_model", "cpu", "model_name", "brand", "processor"))
        cores = _opt_str(hw, ("physical_cores", "cores_physical", "cpu_cores", "cores"))
        if cpu:
            return f"{cpu} ({cores} cores)" if cores else cpu
        return json.dumps(hw, sort_keys=True, default=str)
    return str(hw)


def _all_skipped(doc: Any) -> bool:
    try:
        records = _records(doc, "<doc>")
    except ClaimsError:
        return False
    return bool(records) and all(r.get("skipped") for r in records)


_ARCH = re.compile(r"yolov5([nsmlx])6?(?![a-z0-9])")


def infer_model_variant(name: str) -> tuple[str | None, str | None]:
    """(architecture, variant) guessed from a model file name or run folder; ``None`` if unknown.

    ``yolov5n-sgd-pruned-quantized-hardswish/weights/best.onnx`` -> (``yolov5n``,
    ``pruned-quantized-hardswish``); ``yolov5n.pt`` -> (``yolov5n``, ``dense``).
    """
    low = name.lower().replace("\\", "/")
    arch_m = _ARCH.search(low)
    arch = f"yolov5{arch_m.group(1)}" if arch_m else None
    pruned = "prun" in low or "sparse" in low
    quant = "quant" in low or "int8" in low
    if "transfer" in low:
        variant = "sparse-transfer"
    elif re.search(r"one[-_]?shot", low):
        variant = "one-shot-quantized"
    elif pruned and quant:
        variant = "pruned-quantized-hardswish" if "hardswish" in low else "pruned-quantized"
    elif pruned:
        variant = "pruned"
    elif quant:
        variant = "quantized"
    elif re.search(r"(^|[^a-z])(dense|base|baseline)([^a-z]|$)", low) or re.fullmatch(r".*?yolov5[nsmlx]6?\.(pt|onnx)", low):
        variant = "dense"
    else:
        variant = None
    return arch, variant


def _record_measurements(rec: Mapping[str, Any], source: str, n: int) -> list[Measurement]:
    if rec.get("skipped"):
        return []
    info = rec.get("engine_info")
    if isinstance(info, Mapping):
        # what actually ran (engine.info()) fills in what the record leaves out
        merged = {**{k: v for k, v in info.items() if k != "versions"}, **rec}
        if info.get("gpu") and "device" not in rec:
            merged["device"] = info["gpu"]
        rec = merged
    values: dict[str, float] = {}
    for metric, keys in _METRIC_KEYS.items():
        key = next((k for k in keys if rec.get(k) is not None), None)
        if key is None:
            continue
        v = rec[key]
        if not is_number(v):
            raise ClaimsError(f"{source}: record {n}: '{key}' must be a finite number, got {v!r}")
        if metric in _FRACTION_METRICS and not 0.0 <= v <= 1.0:
            raise ClaimsError(f"{source}: record {n}: '{key}' = {v} must be a fraction in [0, 1] (not a percentage)")
        if metric not in _FRACTION_METRICS and v <= 0:
            raise ClaimsError(f"{source}: record {n}: '{key}' = {v} must be positive")
        values[metric] = float(v)
    for key, metric in _BYTES_KEYS.items():
        v = rec.get(key)
        if v is not None and metric not in values:
            if not is_number(v) or v <= 0:
                raise ClaimsError(f"{source}: record {n}: '{key}' must be a positive number of bytes")
            values[metric] = float(v) / 1e6
    if not values:
        return []
    engine = _opt_str(rec, ("engine", "backend"))
    if engine is not None:
        engine = canonical_engine_name(engine)
    kind = _opt_str(rec, ("measurement", "measurement_kind", "scope"))
    if kind is not None and kind not in MEASUREMENT_KINDS:
        raise ClaimsError(f"{source}: record {n}: measurement {kind!r} not one of {list(MEASUREMENT_KINDS)}")
    model = _opt_str(rec, ("arch", "model_name", "model"))
    variant = _opt_str(rec, ("variant",))
    if model is not None:
        arch, guessed = infer_model_variant(model)
        model = arch or model
        variant = variant or guessed
    common = dict(
        source=source,
        model=model,
        variant=variant,
        engine=engine,
        cores=_opt_int(rec, ("cores", "num_cores"), source, n),
        batch_size=_opt_int(rec, ("batch_size", "batch"), source, n),
        imgsz=_opt_int(rec, ("imgsz", "image_size", "img_size"), source, n),
        dataset=_opt_str(rec, ("dataset",)),
        precision=_opt_str(rec, ("precision",)),
        device=_opt_str(rec, ("device",)),
        hardware=hardware_fingerprint(rec.get("hardware")),
        busy=bool(rec.get("busy", False)),
        timing=_opt_str(rec, ("timing",)),
    )
    base_id = _opt_str(rec, ("id", "name")) or f"{Path(source).stem}#{n}"
    return [
        Measurement(
            id=f"{base_id}:{metric}",
            metric=metric,
            value=value,
            measurement=kind or _DEFAULT_KIND.get(metric),
            **common,
        )
        for metric, value in values.items()
    ]


