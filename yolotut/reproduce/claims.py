"""The published-claims checker, in one import: registry, measurements, judge and rendering.

``data/published.yaml`` holds every figure of the two write-ups and the comparisons to
make (:mod:`~yolotut.reproduce.registry`); the notebooks and benchmarks write result
JSON files (:mod:`~yolotut.reproduce.measurements`); :func:`check` judges each
comparison against a side-by-side pair of our measurements
(:mod:`~yolotut.reproduce.judge`); :mod:`~yolotut.reproduce.render` writes the verdicts
as markdown, HTML or JSON. A notebook needs only ``from yolotut.reproduce import claims``.
"""

from yolotut.reproduce.judge import (
    EXCEEDED,
    NOT_MEASURABLE,
    NOT_REPRODUCED,
    REPRODUCED,
    STATUSES,
    Verdict,
    check,
)
from yolotut.reproduce.measurements import (
    Measurement,
    hardware_fingerprint,
    infer_model_variant,
    load_measurements,
    measurements_from_json,
)
from yolotut.reproduce.registry import (
    CLAIM_METRICS,
    DEFAULT_TOLERANCE,
    MEASURED_METRICS,
    MEASUREMENT_KINDS,
    Claim,
    Claims,
    ClaimsError,
    Comparison,
    Source,
    default_claims_path,
    load_claims,
    parse_claims,
)
from yolotut.reproduce.render import verdicts_to_html, verdicts_to_json, verdicts_to_markdown

__all__ = [
    "CLAIM_METRICS", "DEFAULT_TOLERANCE", "EXCEEDED", "MEASURED_METRICS", "MEASUREMENT_KINDS", "NOT_MEASURABLE",
    "NOT_REPRODUCED", "REPRODUCED", "STATUSES",
    "Claim", "Claims", "ClaimsError", "Comparison", "Measurement", "Source", "Verdict",
    "check", "default_claims_path", "hardware_fingerprint", "infer_model_variant", "load_claims",
    "load_measurements", "measurements_from_json", "parse_claims",
    "verdicts_to_html", "verdicts_to_json", "verdicts_to_markdown",
]
