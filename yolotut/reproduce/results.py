"""The results store: the manifest of produced models and the result files of every notebook and benchmark.

Notebooks record the models they produce in ``<output>/manifest.json``
(:func:`record_model`) and their measurements in ``<output>/results/<name>.json``
(:func:`write_results`); the claims checker and the report read both. Files are
written atomically (a temporary file renamed into place), so an interrupted run
never leaves half a file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from yolotut.errors import InputError

MANIFEST_FORMAT = "yolotut-manifest/1"
RESULTS_FORMAT = "yolotut-results/1"
PRECISIONS = ("fp32", "int8")


# --- manifest ----------------------------------------------------------------------------


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def load_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest, or an empty one when the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        return {"format": MANIFEST_FORMAT, "models": [], "notebooks": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); delete it and re-run the notebooks", path=path) from exc
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise InputError(f"{path}: not a yolotut manifest (expected format {MANIFEST_FORMAT}); delete it and re-run", path=path)
    data.setdefault("models", [])
    data.setdefault("notebooks", [])
    for key in ("models", "notebooks"):
        if not isinstance(data[key], list) or not all(isinstance(entry, dict) for entry in data[key]):
            raise InputError(f"{path}: '{key}' must be a list of objects; delete the file and re-run the notebooks", path=path)
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def record_model(
    variant: str,
    onnx_path: str | Path,
    sparsity: float,
    precision: str,
    map50: float | None = None,
    *,
    manifest_path: str | Path = "../outputs/manifest.json",
    model: str | None = None,
    notebook: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Add (or replace, by ``model`` + ``variant``) one produced model in the manifest; return the entry.

    ``sparsity`` is the measured fraction of zero conv weights of the ONNX file and
    ``map50`` the measured mAP@0.5 when the notebook measured it. ``extra`` holds
    plain JSON values (imgsz, dataset, file size, map50_95, ...).
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.exists():
        raise FileNotFoundError(f"record_model({variant!r}): {onnx_path} does not exist; export the model first")
    if not 0.0 <= float(sparsity) <= 1.0:
        raise ValueError(f"record_model({variant!r}): sparsity must be a fraction in [0, 1], got {sparsity}")
    if precision not in PRECISIONS:
        raise ValueError(f"record_model({variant!r}): precision must be one of {PRECISIONS}, got {precision!r}")
    if map50 is not None and not 0.0 <= float(map50) <= 1.0:
        raise ValueError(f"record_model({variant!r}): map50 must be a fraction in [0, 1], got {map50}")
    entry = {
        "variant": variant,
        "model": model,
        "onnx": str(onnx_path.resolve()),
        "sparsity": float(sparsity),
        "precision": precision,
        "map50": None if map50 is None else float(map50),
        "file_size_mb": onnx_path.stat().st_size / 1e6,
        "notebook": notebook,
        "recorded": _now(),
        **extra,
    }
    path = Path(manifest_path)
    manifest = load_manifest(path)
    # One entry per (architecture, variant): re-running a notebook replaces its model.
    manifest["models"] = [
        m for m in manifest["models"] if (m.get("model"), m.get("variant")) != (model, variant)
    ] + [entry]
    write_json_atomic(path, manifest)
    return entry


def record_notebook_time(
    manifest_path: str | Path, notebook: str, seconds: float | None, executed: str | Path, profile: str, status: str = "ok"
) -> None:
    """Store one notebook's wall time (the report lists them)."""
    path = Path(manifest_path)
    manifest = load_manifest(path)
    entry = {"name": notebook, "seconds": seconds, "profile": profile, "status": status,
             "executed": str(executed), "finished": _now()}
    manifest["notebooks"] = [n for n in manifest["notebooks"] if n.get("name") != notebook] + [entry]
    manifest["notebooks"].sort(key=lambda n: n["name"])
    write_json_atomic(path, manifest)


def manifest_models(manifest_path: str | Path) -> list[dict[str, Any]]:
    """Models in the manifest whose ONNX file still exists."""
    return [m for m in load_manifest(manifest_path)["models"] if Path(m["onnx"]).exists()]


# --- results ------------------------------------------------------------------------------


def write_results(results_dir: str | Path, name: str, payload: dict[str, Any]) -> Path:
    """Write one notebook's measurements as ``<results_dir>/<name>.json``; return the path."""
    path = Path(results_dir) / f"{name}.json"
    data = {"format": RESULTS_FORMAT, "name": name, "written": _now(), **payload}
    write_json_atomic(path, data)
    return path


def labelled(record: Any, *, arch: str, variant: str, **tags: Any) -> dict[str, Any]:
    """A result (``BenchmarkResult``, ``VideoResult``, evaluation dict...) as a dict with the
    labels :func:`yolotut.reproduce.claims.load_measurements` matches claims on.

    ``arch`` (``yolov5s``) and ``variant`` (``dense``, ``pruned-quantized``...) are explicit
    because the file names of the models do not have to say them; ``tags`` adds
    ``dataset``, ``precision``, ``measurement``, ``id``...
    """
    data = record.to_dict() if hasattr(record, "to_dict") else dict(record)
    return {**data, "arch": arch, "variant": variant, **{k: v for k, v in tags.items() if v is not None}}


def onnx_file_record(path: str | Path, *, arch: str, variant: str, precision: str, **tags: Any) -> dict[str, Any]:
    """Sparsity and file size (raw and gzip -9) measured on an exported ONNX file.

    The gzip size is what "compressed file size" claims compare: pruned zeros stay in
    the raw file and only compress away.
    """
    import gzip

    from yolotut.inference.export import measure_onnx_sparsity

    path = Path(path)
    report = measure_onnx_sparsity(path)
    gz = len(gzip.compress(path.read_bytes(), compresslevel=9))
    return {
        "id": f"{arch}-{variant}-file",
        "arch": arch,
        "variant": variant,
        "precision": precision,
        "onnx": str(path),
        "sparsity": report.conv_sparsity,
        "prunable_sparsity": report.prunable_sparsity,
        "block4_sparsity": report.block4_sparsity,
        "quantized": report.quantized,
        "file_size_mb": path.stat().st_size / 1e6,
        "file_size_gz_mb": gz / 1e6,
        **tags,
    }


def read_results_file(path: str | Path) -> dict[str, Any]:
    """One results file (a notebook's or a benchmark script's); a clear error when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}): re-run what wrote it, or delete the file", path=path) from exc
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise InputError(
            f"{path} is not a yolotut results file (expected format {RESULTS_FORMAT}): re-run what wrote it", path=path
        )
    return data


def find_results(folder: str | Path, name: str) -> list[tuple[Path, dict[str, Any]]]:
    """Every results file called ``name`` below ``folder`` (a benchmark script's runs), in path order."""
    return [(path, read_results_file(path)) for path in sorted(Path(folder).rglob(f"{name}.json"))]


def read_results(results_dir: str | Path, name: str, produced_by: str | None = None) -> dict[str, Any]:
    """A results file written by :func:`write_results` (an earlier notebook's measurements)."""
    return read_results_file(require(Path(results_dir) / f"{name}.json", produced_by or name))


def find_record(records: Iterable[Mapping[str, Any]], **match: Any) -> dict[str, Any] | None:
    """The first record whose keys equal every ``match`` value (``None`` when there is none)."""
    for record in records:
        if all(record.get(k) == v for k, v in match.items()):
            return dict(record)
    return None


def require(path: str | Path, produced_by: str) -> Path:
    """A file an earlier notebook produces; a clear error naming that notebook when it is missing."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run notebook {produced_by} first (or `yolotut reproduce`)")
    return path


