"""The published-claims registry and the checker that judges our measurements against it.

Every figure of the two write-ups lives in ``data/published.yaml`` (see
``data/README.md`` for the schema and the sources). This module

* loads and validates that file (:func:`load_claims`),
* loads the result JSON files the other modules write (:func:`load_measurements`),
* compares what can be compared (:func:`check`) and renders the verdicts
  (:func:`verdicts_to_markdown`, :func:`verdicts_to_html`).

Absolute FPS measured on different hardware is not comparable, so the comparisons
(defined as data in the ``comparisons:`` section, not here) are mostly ratios between
two claims -- speed-ups, file-size reductions -- or differences (mAP points), matched
against a side-by-side pair of our own measurements from one machine.

Where the claims file lives: ``data/published.yaml`` at the repository root is the
single copy. :func:`default_claims_path` finds it relative to the package in a checkout
or editable install; elsewhere, set ``YOLOTUT_CLAIMS`` or pass the path explicitly.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

# --- vocabularies -------------------------------------------------------------------

CLAIM_METRICS = (
    "fps",
    "items_per_sec",
    "latency_ms",
    "map50",
    "sparsity",
    "file_size_mb",
    "speedup",
    "size_ratio",
)
MEASURED_METRICS = (
    "fps",
    "fps_peak",
    "items_per_sec",
    "latency_ms",
    "map50",
    "map50_95",
    "sparsity",
    "file_size_mb",
    "file_size_gz_mb",
)
MEASUREMENT_KINDS = ("engine-only", "end-to-end", "end-to-end-video")
ENGINES = ("pytorch", "onnxruntime", "deepsparse")
# Speed depends on the machine: two sides of a speed ratio must come from one machine.
HARDWARE_DEPENDENT_METRICS = frozenset({"fps", "fps_peak", "items_per_sec", "latency_ms"})

REPRODUCED = "reproduced"
EXCEEDED = "exceeded"
NOT_REPRODUCED = "not reproduced"
NOT_MEASURABLE = "not measurable here"
STATUSES = (REPRODUCED, EXCEEDED, NOT_REPRODUCED, NOT_MEASURABLE)

DEFAULT_TOLERANCE = 0.15
DEFAULT_TOLERANCE_POINTS = 1.0

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_]*$")


class ClaimsError(ValueError):
    """Bad claims file or result file; the message names the file and the entry."""


# --- records --------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    key: str
    title: str
    url: str
    date: str | None = None
    author: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Claim:
    """One published figure, with the conditions it was measured under."""

    id: str
    source: str
    metric: str
    value: float | None
    unit: str
    table: str | None = None
    section: str | None = None
    model: str | None = None
    variant: str | None = None
    engine: str | None = None
    device: str | None = None
    cores: int | None = None
    batch_size: int | None = None
    imgsz: int | None = None
    precision: str | None = None
    dataset: str | None = None
    measurement: str | None = None
    note: str | None = None
    value_high: float | None = None
    url: str | None = None  # filled from the source


@dataclass(frozen=True)
class Comparison:
    """What to compare: claims on one side, measurement selectors on the other."""

    id: str
    title: str
    kind: str  # ratio | difference | absolute
    select: Mapping[str, Mapping[str, Any]]
    numerator: str | None = None
    denominator: str | None = None
    claim: str | None = None
    same: tuple[str, ...] = ()
    tolerance: float | None = None
    tolerance_points: float | None = None
    higher_is_better: bool = True
    allow_proxy: bool = True
    hardware_dependent: bool = False
    unmeasurable_reason: str | None = None
    note: str | None = None


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


@dataclass(frozen=True)
class Verdict:
    comparison_id: str
    title: str
    kind: str
    status: str
    claimed: float | None
    measured: float | None
    unit: str
    text: str
    claimed_high: float | None = None
    reason: str | None = None
    proxy: bool = False
    deviations: tuple[str, ...] = ()
    conditions: str | None = None
    claim_ids: tuple[str, ...] = ()
    source_urls: tuple[str, ...] = ()
    measurement_ids: tuple[str, ...] = ()
    measurement_sources: tuple[str, ...] = ()
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


class Claims(list):  # list[Claim] that also carries its sources and comparisons
    """The claims of one registry file; ``.sources``, ``.comparisons`` and ``.path`` ride along."""

    def __init__(
        self,
        claims: Iterable[Claim],
        sources: Mapping[str, Source],
        comparisons: Sequence[Comparison],
        path: Path | None = None,
    ) -> None:
        super().__init__(claims)
        self.sources = dict(sources)
        self.comparisons = list(comparisons)
        self.path = path

    def by_id(self) -> dict[str, Claim]:
        return {c.id: c for c in self}


# --- loading the registry ---------------------------------------------------------------


def default_claims_path() -> Path:
    """``$YOLOTUT_CLAIMS``, else ``data/published.yaml`` next to the package (a checkout)."""
    env = os.environ.get("YOLOTUT_CLAIMS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "data" / "published.yaml"


_CLAIM_FIELDS = {f.name for f in fields(Claim)} - {"url"}
_CLAIM_REQUIRED = ("id", "source", "metric", "value", "unit")
_CLAIM_INT_FIELDS = ("cores", "batch_size", "imgsz")
_CLAIM_STR_FIELDS = (
    "table", "section", "model", "variant", "engine", "device", "precision", "dataset",
    "measurement", "note", "unit",
)
_COMPARISON_FIELDS = {f.name for f in fields(Comparison)}
_SELECTOR_FIELDS = {
    "metric", "model", "variant", "engine", "cores", "batch_size", "imgsz", "measurement",
    "dataset", "precision", "device",
}
_SAME_FIELDS = _SELECTOR_FIELDS | {"source", "hardware"}


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _fail(path: Path | str, where: str, msg: str) -> ClaimsError:
    return ClaimsError(f"{path}: {where}: {msg}")


def load_claims(path: str | Path | None = None) -> Claims:
    """Load and validate the claims registry (default: :func:`default_claims_path`).

    Raises :class:`ClaimsError` naming the file, the entry and the field on any
    schema violation (unknown fields are errors, so typos cannot pass silently).
    """
    p = Path(path) if path is not None else default_claims_path()
    if not p.is_file():
        raise ClaimsError(
            f"claims file not found: {p}. Pass --claims PATH (the repository's "
            "data/published.yaml) or set YOLOTUT_CLAIMS."
        )
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ClaimsError(f"{p}: not valid YAML: {exc}") from exc
    return parse_claims(doc, p)


def parse_claims(doc: Any, path: str | Path = "<claims>") -> Claims:
    """Validate an already-parsed registry document (see :func:`load_claims`)."""
    if not isinstance(doc, Mapping):
        raise ClaimsError(f"{path}: expected a mapping with 'sources', 'claims' and 'comparisons'")
    unknown = set(doc) - {"schema_version", "sources", "claims", "comparisons"}
    if unknown:
        raise _fail(path, "top level", f"unknown key(s) {sorted(unknown)}")
    sources = _parse_sources(doc.get("sources"), path)
    raw_claims = doc.get("claims")
    if not isinstance(raw_claims, list) or not raw_claims:
        raise _fail(path, "claims", "must be a non-empty list")
    claims: list[Claim] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_claims):
        claim = _parse_claim(raw, i, sources, path)
        if claim.id in seen:
            raise _fail(path, f"claims[{i}]", f"duplicate id {claim.id!r}")
        seen.add(claim.id)
        claims.append(claim)
    by_id = {c.id: c for c in claims}
    comparisons = _parse_comparisons(doc.get("comparisons") or [], by_id, path)
    return Claims(claims, sources, comparisons, Path(path) if not isinstance(path, Path) else path)


def _parse_sources(raw: Any, path: Path | str) -> dict[str, Source]:
    if not isinstance(raw, Mapping) or not raw:
        raise _fail(path, "sources", "must be a non-empty mapping of key -> {title, url, ...}")
    out: dict[str, Source] = {}
    allowed = {"title", "url", "date", "author", "note"}
    for key, entry in raw.items():
        where = f"sources.{key}"
        if not isinstance(entry, Mapping):
            raise _fail(path, where, "must be a mapping")
        extra = set(entry) - allowed
        if extra:
            raise _fail(path, where, f"unknown field(s) {sorted(extra)}; allowed: {sorted(allowed)}")
        for req in ("title", "url"):
            if not isinstance(entry.get(req), str) or not entry[req].strip():
                raise _fail(path, where, f"missing or empty '{req}'")
        if not str(entry["url"]).startswith(("http://", "https://")):
            raise _fail(path, where, f"url must start with http(s)://, got {entry['url']!r}")
        out[str(key)] = Source(
            key=str(key),
            title=entry["title"],
            url=entry["url"],
            date=None if entry.get("date") is None else str(entry["date"]),
            author=entry.get("author"),
            note=entry.get("note"),
        )
    return out


def _parse_claim(raw: Any, i: int, sources: Mapping[str, Source], path: Path | str) -> Claim:
    if not isinstance(raw, Mapping):
        raise _fail(path, f"claims[{i}]", "must be a mapping")
    where = f"claims[{i}] (id {raw.get('id')!r})"
    extra = set(raw) - _CLAIM_FIELDS
    if extra:
        raise _fail(path, where, f"unknown field(s) {sorted(extra)}; allowed: {sorted(_CLAIM_FIELDS)}")
    for req in _CLAIM_REQUIRED:
        if req not in raw:
            raise _fail(path, where, f"missing required field '{req}'")
    cid = raw["id"]
    if not isinstance(cid, str) or not _SLUG.match(cid):
        raise _fail(path, where, "id must be a lower-case slug (letters, digits, underscores)")
    if raw["source"] not in sources:
        raise _fail(path, where, f"source {raw['source']!r} is not a key of 'sources' ({sorted(sources)})")
    if raw["metric"] not in CLAIM_METRICS:
        raise _fail(path, where, f"metric {raw['metric']!r} not one of {list(CLAIM_METRICS)}")
    value = raw["value"]
    if value is None:
        if not raw.get("note"):
            raise _fail(path, where, "value is null: add a 'note' saying why (e.g. not found in stored copies)")
    elif not _is_number(value):
        raise _fail(path, where, f"value must be a number or null, got {value!r}")
    high = raw.get("value_high")
    if high is not None:
        if not _is_number(high) or value is None or high < value:
            raise _fail(path, where, "value_high must be a number >= value (a claimed range)")
    for key in _CLAIM_INT_FIELDS:
        v = raw.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
            raise _fail(path, where, f"'{key}' must be a positive integer, got {v!r}")
    for key in _CLAIM_STR_FIELDS:
        v = raw.get(key)
        if v is not None and not isinstance(v, str):
            raise _fail(path, where, f"'{key}' must be a string, got {v!r}")
    if raw.get("measurement") is not None and raw["measurement"] not in MEASUREMENT_KINDS:
        raise _fail(path, where, f"measurement {raw['measurement']!r} not one of {list(MEASUREMENT_KINDS)}")
    if raw.get("engine") is not None and raw["engine"] not in ENGINES:
        raise _fail(path, where, f"engine {raw['engine']!r} not one of {list(ENGINES)}")
    kwargs = {k: raw.get(k) for k in _CLAIM_FIELDS}
    kwargs["value"] = None if value is None else float(value)
    kwargs["value_high"] = None if high is None else float(high)
    return Claim(**kwargs, url=sources[raw["source"]].url)


def _parse_comparisons(raw: Any, claims: Mapping[str, Claim], path: Path | str) -> list[Comparison]:
    if not isinstance(raw, list):
        raise _fail(path, "comparisons", "must be a list")
    out: list[Comparison] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise _fail(path, f"comparisons[{i}]", "must be a mapping")
        where = f"comparisons[{i}] (id {entry.get('id')!r})"
        extra = set(entry) - _COMPARISON_FIELDS
        if extra:
            raise _fail(path, where, f"unknown field(s) {sorted(extra)}; allowed: {sorted(_COMPARISON_FIELDS)}")
        for req in ("id", "title", "kind", "select"):
            if req not in entry:
                raise _fail(path, where, f"missing required field '{req}'")
        if not isinstance(entry["id"], str) or not _SLUG.match(entry["id"]):
            raise _fail(path, where, "id must be a lower-case slug")
        if entry["id"] in seen:
            raise _fail(path, where, "duplicate id")
        seen.add(entry["id"])
        kind = entry["kind"]
        if kind not in ("ratio", "difference", "absolute"):
            raise _fail(path, where, f"kind {kind!r} not one of ['ratio', 'difference', 'absolute']")
        pair = entry.get("numerator") is not None and entry.get("denominator") is not None
        if kind == "ratio" and pair == (entry.get("claim") is not None):
            raise _fail(path, where, "a ratio needs either numerator + denominator claims, or one 'claim' (a claimed speed-up)")
        if kind == "difference" and not pair:
            raise _fail(path, where, "a difference needs numerator and denominator claims")
        if kind == "absolute" and (entry.get("numerator") is None or entry.get("denominator") is not None):
            raise _fail(path, where, "an absolute comparison needs a numerator claim only")
        for key in ("numerator", "denominator", "claim"):
            ref = entry.get(key)
            if ref is not None and ref not in claims:
                raise _fail(path, where, f"{key} {ref!r} is not a claim id")
        sides = ("numerator",) if kind == "absolute" else ("numerator", "denominator")
        select = entry["select"]
        if not isinstance(select, Mapping) or set(select) != set(sides):
            raise _fail(path, where, f"select must have exactly the keys {list(sides)}")
        for side in sides:
            sel = select[side]
            if not isinstance(sel, Mapping) or "metric" not in sel:
                raise _fail(path, where, f"select.{side} must be a mapping with at least 'metric'")
            bad = set(sel) - _SELECTOR_FIELDS
            if bad:
                raise _fail(path, where, f"select.{side}: unknown field(s) {sorted(bad)}; allowed: {sorted(_SELECTOR_FIELDS)}")
            metrics = sel["metric"] if isinstance(sel["metric"], list) else [sel["metric"]]
            if any(m not in MEASURED_METRICS for m in metrics):
                raise _fail(path, where, f"select.{side}.metric must be among {list(MEASURED_METRICS)}")
            for k, v in sel.items():
                if isinstance(v, list) and not v:
                    raise _fail(path, where, f"select.{side}.{k}: empty list matches nothing")
        same = entry.get("same") or []
        if not isinstance(same, list) or set(same) - _SAME_FIELDS:
            raise _fail(path, where, f"same must be a list drawn from {sorted(_SAME_FIELDS)}")
        tol = entry.get("tolerance")
        if tol is not None and (not _is_number(tol) or not 0 < tol < 1):
            raise _fail(path, where, "tolerance must be a fraction in (0, 1)")
        tolp = entry.get("tolerance_points")
        if tolp is not None and (not _is_number(tolp) or tolp <= 0):
            raise _fail(path, where, "tolerance_points must be a positive number")
        out.append(
            Comparison(
                id=entry["id"],
                title=entry["title"],
                kind=kind,
                select={s: dict(select[s]) for s in sides},
                numerator=entry.get("numerator"),
                denominator=entry.get("denominator"),
                claim=entry.get("claim"),
                same=tuple(same),
                tolerance=None if tol is None else float(tol),
                tolerance_points=None if tolp is None else float(tolp),
                higher_is_better=bool(entry.get("higher_is_better", True)),
                allow_proxy=bool(entry.get("allow_proxy", True)),
                hardware_dependent=bool(entry.get("hardware_dependent", False)),
                unmeasurable_reason=entry.get("unmeasurable_reason"),
                note=entry.get("note"),
            )
        )
    return out


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
_ENGINE_ALIASES = {
    "torch": "pytorch", "pytorch": "pytorch", "ort": "onnxruntime", "onnxruntime": "onnxruntime",
    "onnx runtime": "onnxruntime", "onnx-runtime": "onnxruntime", "deepsparse": "deepsparse",
}


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
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
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
        if not _is_number(v):
            raise ClaimsError(f"{source}: record {n}: '{key}' must be a finite number, got {v!r}")
        if metric in _FRACTION_METRICS and not 0.0 <= v <= 1.0:
            raise ClaimsError(f"{source}: record {n}: '{key}' = {v} must be a fraction in [0, 1] (not a percentage)")
        if metric not in _FRACTION_METRICS and v <= 0:
            raise ClaimsError(f"{source}: record {n}: '{key}' = {v} must be positive")
        values[metric] = float(v)
    for key, metric in _BYTES_KEYS.items():
        v = rec.get(key)
        if v is not None and metric not in values:
            if not _is_number(v) or v <= 0:
                raise ClaimsError(f"{source}: record {n}: '{key}' must be a positive number of bytes")
            values[metric] = float(v) / 1e6
    if not values:
        return []
    engine = _opt_str(rec, ("engine", "backend"))
    if engine is not None:
        engine = _ENGINE_ALIASES.get(engine.lower(), engine.lower())
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


# --- the checker --------------------------------------------------------------------------


def _speed(value: float, metric: str) -> float:
    # A speed-up of latencies is the inverse ratio; convert so every ratio reads "x faster".
    return 1.0 / value if metric == "latency_ms" else value


def _match_score(sel: Mapping[str, Any], m: Measurement) -> int | None:
    score = 0
    for key, want in sel.items():
        got = getattr(m, key)
        if want == "*":
            continue
        if isinstance(want, list):
            if got not in want:
                return None
            score += want.index(got)
        elif got != want:
            return None
    return score


def _deviations(sel: Mapping[str, Any], m: Measurement) -> list[str]:
    # A list selector names the claim's condition first; anything else is a proxy.
    return [
        f"{key} {getattr(m, key)} (claim: {want[0]})"
        for key, want in sel.items()
        if isinstance(want, list) and getattr(m, key) != want[0]
    ]


def _pair_ok(comp: Comparison, a: Measurement, b: Measurement) -> bool:
    if a is b:
        return False
    if any(getattr(a, f) != getattr(b, f) for f in comp.same):
        return False
    speed = a.metric in HARDWARE_DEPENDENT_METRICS or b.metric in HARDWARE_DEPENDENT_METRICS
    return not speed or a.hardware == b.hardware


def _select_pair(
    comp: Comparison, measurements: Sequence[Measurement]
) -> tuple[Measurement, Measurement] | None:
    def candidates(side: str) -> list[tuple[int, int, Measurement]]:
        sel = comp.select[side]
        out = []
        for i, m in enumerate(measurements):
            s = _match_score(sel, m)
            if s is not None:
                out.append((s, i, m))
        return out

    nums, dens = candidates("numerator"), candidates("denominator")
    best: tuple[int, int, int] | None = None
    pair = None
    for sn, i, n in nums:
        for sd, j, d in dens:
            if _pair_ok(comp, n, d):
                key = (sn + sd, i, j)  # closest to the claim first, then file order
                if best is None or key < best:
                    best, pair = key, (n, d)
    return pair


def _select_one(comp: Comparison, measurements: Sequence[Measurement]) -> Measurement | None:
    sel = comp.select["numerator"]
    scored = [(s, i, m) for i, m in enumerate(measurements) if (s := _match_score(sel, m)) is not None]
    return min(scored, key=lambda t: t[:2])[2] if scored else None


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if unit == "x":
        return f"{v:.2f}x"
    if unit == "points":
        return f"{v:+.1f} points"
    mag = abs(v)
    s = f"{v:.3f}" if mag < 1 else f"{v:.2f}" if mag < 100 else f"{v:.1f}"
    return f"{s} {unit}".strip()


def _fmt_range(lo: float | None, hi: float | None, unit: str) -> str:
    if lo is not None and hi is not None and hi != lo:
        return f"{_fmt(lo, unit)}-{_fmt(hi, unit)}"
    return _fmt(lo, unit)


def check(
    claims: Sequence[Claim],
    measurements: Sequence[Measurement],
    tolerance: float = DEFAULT_TOLERANCE,
    comparisons: Sequence[Comparison] | None = None,
) -> list[Verdict]:
    """Judge every comparison of the registry against our measurements.

    ``comparisons`` defaults to the ones loaded with ``claims`` (:class:`Claims`).
    ``tolerance`` is relative (0.15 = +-15 %) and applies where a comparison sets none;
    mAP differences use ``tolerance_points`` (default 1 point).
    """
    if comparisons is None:
        comparisons = getattr(claims, "comparisons", None)
        if comparisons is None:
            raise ClaimsError("check(): no comparisons given; pass comparisons= or claims from load_claims()")
    if not 0 < tolerance < 1:
        raise ClaimsError(f"tolerance must be a fraction in (0, 1), got {tolerance}")
    by_id = {c.id: c for c in claims}
    missing = {r for comp in comparisons for r in (comp.numerator, comp.denominator, comp.claim) if r} - set(by_id)
    if missing:
        raise ClaimsError(f"comparisons refer to unknown claim ids {sorted(missing)}")
    return [_judge(comp, by_id, measurements, tolerance) for comp in comparisons]


def _judge(
    comp: Comparison, by_id: Mapping[str, Claim], measurements: Sequence[Measurement], tolerance: float
) -> Verdict:
    if comp.claim:
        refs = [by_id[comp.claim]]
    else:
        refs = [by_id[r] for r in (comp.numerator, comp.denominator) if r]
    # --- claimed value ---
    claimed_high = None
    claim_detail = ""
    if comp.kind == "ratio" and comp.claim:
        c = refs[0]
        claimed, claimed_high, unit = c.value, c.value_high, "x"
    elif comp.kind == "ratio":
        n, d = refs
        unit = "x"
        claimed = None
        if n.value is not None and d.value is not None:
            claimed = _speed(n.value, n.metric) / _speed(d.value, d.metric)
            claim_detail = f"{_fmt(n.value, n.unit)} / {_fmt(d.value, d.unit)}"
    elif comp.kind == "difference":
        n, d = refs
        unit = "points" if n.metric == "map50" else n.unit
        scale = 100.0 if n.metric == "map50" else 1.0
        claimed = None if n.value is None or d.value is None else (n.value - d.value) * scale
        if claimed is not None:
            claim_detail = f"{_fmt(n.value)} vs {_fmt(d.value)}"
    else:
        c = refs[0]
        claimed, claimed_high, unit = c.value, c.value_high, c.unit

    base = dict(
        comparison_id=comp.id,
        title=comp.title,
        kind=comp.kind,
        unit=unit,
        claimed=claimed,
        claimed_high=claimed_high,
        claim_ids=tuple(c.id for c in refs),
        source_urls=tuple(dict.fromkeys(c.url for c in refs if c.url)),
        note=comp.note,
    )

    # --- measured value ---
    chosen: list[Measurement] = []
    deviations: list[str] = []
    measured: float | None = None
    meas_detail = ""
    if comp.kind == "absolute":
        m = _select_one(comp, measurements)
        if m is not None:
            chosen = [m]
            measured = m.value
            deviations = _deviations(comp.select["numerator"], m)
    else:
        pair = _select_pair(comp, measurements)
        if pair is not None:
            chosen = list(pair)
            mn, md = pair
            deviations = _deviations(comp.select["numerator"], mn) + _deviations(comp.select["denominator"], md)
            if comp.kind == "ratio":
                measured = _speed(mn.value, mn.metric) / _speed(md.value, md.metric)
                meas_detail = f"{_fmt(mn.value, _unit_of(mn))} / {_fmt(md.value, _unit_of(md))}"
            else:
                scale = 100.0 if mn.metric in ("map50", "map50_95") else 1.0
                measured = (mn.value - md.value) * scale
                meas_detail = f"{_fmt(mn.value)} vs {_fmt(md.value)}"
    deviations = list(dict.fromkeys(deviations))
    conditions = _cores_note(refs, chosen) if chosen else ""
    base.update(
        measured=measured,
        proxy=bool(deviations),
        deviations=tuple(deviations),
        conditions=conditions or None,
        measurement_ids=tuple(m.id for m in chosen),
        measurement_sources=tuple(dict.fromkeys(m.source for m in chosen)),
    )

    # --- verdict ---
    claim_s = _fmt_range(claimed, claimed_high, unit) + (f" ({claim_detail})" if claim_detail else "")
    meas_s = _fmt(measured, unit) + (f" ({meas_detail})" if meas_detail else "")
    proxy_s = f" Proxy measurement: {'; '.join(deviations)}." if deviations else ""
    proxy_s += f" Conditions: {conditions}." if conditions else ""

    def not_measurable(reason: str) -> Verdict:
        shown = f" Measured here: {meas_s}." if measured is not None else ""
        return Verdict(status=NOT_MEASURABLE, reason=reason,
                       text=f"Not measurable here: {reason}. Claimed {claim_s}.{shown}{proxy_s}", **base)

    if claimed is None:
        why = "; ".join(c.note for c in refs if c.value is None and c.note) or "no value"
        return not_measurable(f"the claimed value is not available ({why})")
    if measured is None:
        return not_measurable(comp.unmeasurable_reason or "no matching measurement in the results")
    busy = [m.id for m in chosen if m.busy and m.metric not in ("map50", "map50_95", "sparsity", "file_size_mb", "file_size_gz_mb")]
    if busy:
        # On 2 cores a second busy process slows torch and DeepSparse by up to 10x:
        # such a number says nothing about the claim.
        return not_measurable(
            f"{', '.join(busy)} was timed while other processes used the CPU; "
            "re-run `yolotut reproduce` on a quiet machine"
        )
    if comp.kind == "absolute" and comp.hardware_dependent:
        hw = ", ".join(sorted({m.hardware or "unknown hardware" for m in chosen}))
        dev = refs[0].device or "the author's hardware"
        return not_measurable(
            f"absolute {refs[0].metric} depends on the hardware (claimed on {dev}, measured on {hw}); "
            "compare the speed-up ratios instead"
        )
    if deviations and not comp.allow_proxy:
        return not_measurable(
            f"{comp.unmeasurable_reason or 'the claimed conditions are not available'}; "
            "only a proxy measurement exists"
        )

    lo, hi = claimed, claimed_high if claimed_high is not None else claimed
    if comp.kind == "difference":
        band = comp.tolerance_points if comp.tolerance_points is not None else DEFAULT_TOLERANCE_POINTS
        lo_b, hi_b = lo - band, hi + band
        tol_s = f"+-{band:g} points"
    else:
        tol = comp.tolerance if comp.tolerance is not None else tolerance
        lo_b, hi_b = lo * (1 - tol), hi * (1 + tol)
        tol_s = f"+-{tol:.0%}"
    if lo_b <= measured <= hi_b:
        status = REPRODUCED
    elif (measured > hi_b) == comp.higher_is_better:
        status = EXCEEDED
    else:
        status = NOT_REPRODUCED

    ref = hi if measured > hi else lo
    if comp.kind == "difference":
        delta = f"{measured - ref:+.1f} points vs the claim"
    else:
        delta = f"{measured / ref - 1:+.0%} vs the claim"
    if status == REPRODUCED:
        text = f"Reproduced: measured {meas_s} vs claimed {claim_s} ({delta}, within {tol_s})."
    elif status == EXCEEDED:
        text = f"Exceeded: measured {meas_s} vs claimed {claim_s} ({delta}, beyond {tol_s})."
    else:
        text = (
            f"Not reproduced: the source claims {claim_s}; we measured {meas_s} "
            f"({delta}, beyond {tol_s}). Our measurement contradicts the claim."
        )
    return Verdict(status=status, text=text + proxy_s, **base)


def _unit_of(m: Measurement) -> str:
    return {
        "fps": "FPS", "fps_peak": "FPS (peak)", "items_per_sec": "items/s", "latency_ms": "ms",
        "file_size_mb": "MB", "file_size_gz_mb": "MB (gz)",
    }.get(m.metric, "")


def _cores_note(refs: Sequence[Claim], chosen: Sequence[Measurement]) -> str:
    claim_cores = [c.cores for c in refs]
    ours = [m.cores for m in chosen]
    if all(c is None for c in claim_cores) or all(m is None for m in ours):
        return ""
    if len(refs) == len(chosen) and claim_cores == ours:
        return ""
    fmt = lambda xs: "/".join("?" if x is None else str(x) for x in xs)  # noqa: E731
    return f"cores {fmt(ours)} (claim: {fmt(claim_cores)})"


# --- rendering -------------------------------------------------------------------------------


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def verdicts_to_markdown(verdicts: Sequence[Verdict]) -> str:
    """A markdown table: comparison, claimed, measured, verdict, details, sources."""
    lines = [
        "| Comparison | Claimed | Measured | Verdict | Details | Measurement source |",
        "| --- | ---: | ---: | --- | --- | --- |",
    ]
    for v in verdicts:
        claimed = _fmt_range(v.claimed, v.claimed_high, v.unit)
        measured = _fmt(v.measured, v.unit) + (" (proxy)" if v.proxy and v.measured is not None else "")
        links = " ".join(f"[src]({u})" for u in v.source_urls)
        title = f"{v.title} {links}".strip()
        srcs = ", ".join(Path(s).name for s in v.measurement_sources) or "-"
        lines.append(
            "| " + " | ".join(_md_cell(x) for x in (title, claimed, measured, f"**{v.status}**", v.text, srcs)) + " |"
        )
    counts = ", ".join(f"{sum(v.status == s for v in verdicts)} {s}" for s in STATUSES)
    return "\n".join(lines) + f"\n\n{counts}.\n"


def verdicts_to_html(
    verdicts: Sequence[Verdict],
    figures: Sequence[Any] | Mapping[str, Any] = (),
    title: str = "Published claims vs our measurements",
) -> str:
    """A self-contained HTML page: the verdict table, then the figures.

    plotly.js is embedded once (inline, no CDN: the page must work offline), with the
    first figure; later figures reuse it.
    """
    from yolotut.ui.plots import STATUS_COLORS

    esc = html.escape
    rows = []
    for v in verdicts:
        color = STATUS_COLORS.get(v.status, "#999")
        links = " ".join(f'<a href="{esc(u)}">source</a>' for u in v.source_urls)
        proxy_tag = " <small>(proxy)</small>" if v.proxy and v.measured is not None else ""
        rows.append(
            "<tr>"
            f"<td>{esc(v.title)}<br><small>{links}</small></td>"
            f"<td class=num>{esc(_fmt_range(v.claimed, v.claimed_high, v.unit))}</td>"
            f"<td class=num>{esc(_fmt(v.measured, v.unit))}{proxy_tag}</td>"
            f'<td><span class=badge style="background:{color}">{esc(v.status)}</span></td>'
            f"<td>{esc(v.text)}</td>"
            f"<td><small>{esc(', '.join(Path(s).name for s in v.measurement_sources) or '-')}</small></td>"
            "</tr>"
        )
    counts = " &middot; ".join(f"{sum(v.status == s for v in verdicts)} {esc(s)}" for s in STATUSES)
    items = list(figures.items()) if isinstance(figures, Mapping) else [(None, f) for f in figures]
    fig_html = []
    for i, (name, fig) in enumerate(items):
        head = f"<h2>{esc(str(name))}</h2>" if name else ""
        fig_html.append(head + fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:6px;vertical-align:top}"
        "th{background:#f4f4f4}.num{text-align:right;white-space:nowrap}"
        ".badge{color:#fff;padding:2px 6px;border-radius:4px;white-space:nowrap}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{style}</style></head><body>"
        f"<h1>{esc(title)}</h1><p>{counts}</p>"
        "<table><thead><tr><th>Comparison</th><th>Claimed</th><th>Measured</th><th>Verdict</th>"
        "<th>Details</th><th>Measurement source</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + "".join(fig_html)
        + "</body></html>"
    )


def verdicts_to_json(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """A JSON-ready object: the verdict list and the count per status."""
    return {
        "verdicts": [v.to_dict() for v in verdicts],
        "counts": {s: sum(v.status == s for v in verdicts) for s in STATUSES},
    }


__all__ = [
    "CLAIM_METRICS", "MEASURED_METRICS", "MEASUREMENT_KINDS", "STATUSES",
    "REPRODUCED", "EXCEEDED", "NOT_REPRODUCED", "NOT_MEASURABLE",
    "Claim", "Claims", "ClaimsError", "Comparison", "Measurement", "Source", "Verdict",
    "check", "default_claims_path", "hardware_fingerprint", "infer_model_variant", "load_claims",
    "load_measurements",
    "measurements_from_json", "parse_claims", "verdicts_to_html", "verdicts_to_json",
    "verdicts_to_markdown",
]
