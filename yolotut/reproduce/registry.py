"""The published-claims registry: ``data/published.yaml`` loaded and validated.

Every figure of the two write-ups lives in ``data/published.yaml`` (schema and sources in
``data/README.md``): the claims, their sources, and the comparisons the checker makes.
Unknown keys are errors, so a typo fails loudly, naming the file and the entry.

Where the file lives: ``data/published.yaml`` at the repository root is the single copy.
:func:`default_claims_path` finds it relative to the package in a checkout or editable
install; elsewhere, set ``YOLOTUT_CLAIMS`` or pass the path explicitly.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from yolotut.errors import InputError
from yolotut.inference.engines import ENGINES

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
# Speed depends on the machine: two sides of a speed ratio must come from one machine.
HARDWARE_DEPENDENT_METRICS = frozenset({"fps", "fps_peak", "items_per_sec", "latency_ms"})


DEFAULT_TOLERANCE = 0.15
DEFAULT_TOLERANCE_POINTS = 1.0

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_]*$")


class ClaimsError(InputError):
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


def is_number(x: Any) -> bool:
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
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise ClaimsError(f"{p}: not valid YAML: {' '.join(str(exc).split())}; fix the file", path=p) from exc
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
    if not isinstance(raw["source"], str) or raw["source"] not in sources:
        raise _fail(path, where, f"source {raw['source']!r} is not a key of 'sources' ({sorted(sources)})")
    if raw["metric"] not in CLAIM_METRICS:
        raise _fail(path, where, f"metric {raw['metric']!r} not one of {list(CLAIM_METRICS)}")
    value = raw["value"]
    if value is None:
        if not raw.get("note"):
            raise _fail(path, where, "value is null: add a 'note' saying why (e.g. not found in stored copies)")
    elif not is_number(value):
        raise _fail(path, where, f"value must be a number or null, got {value!r}")
    high = raw.get("value_high")
    if high is not None and (not is_number(high) or value is None or high < value):
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
            if ref is not None and (not isinstance(ref, str) or ref not in claims):
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
        if not isinstance(same, list) or not all(isinstance(f, str) for f in same) or set(same) - _SAME_FIELDS:
            raise _fail(path, where, f"same must be a list drawn from {sorted(_SAME_FIELDS)}")
        tol = entry.get("tolerance")
        if tol is not None and (not is_number(tol) or not 0 < tol < 1):
            raise _fail(path, where, "tolerance must be a fraction in (0, 1)")
        tolp = entry.get("tolerance_points")
        if tolp is not None and (not is_number(tolp) or tolp <= 0):
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


