"""What every tutorial notebook does before and after its own step, in two calls.

``ctx = setup("04_pruning", profile)`` makes the output folders, reads the profile's
settings, quiets third-party loggers, chooses plotly renderers that also work in static
viewers, and finds which engines this machine has. ``ctx.record(result, ...)`` collects a
measurement, ``ctx.add_model(...)`` lists a produced model in the manifest, and
``ctx.save()`` writes the notebook's result file the report reads.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from yolotut.reproduce import results
from yolotut.reproduce.profiles import profile_settings

# Libraries whose INFO lines would fill a notebook's outputs; warnings and errors still show.
NOISY_LOGGERS = ("sparseml", "sparsezoo", "deepsparse", "onnxruntime", "nncf", "openvino", "papermill", "pooch", "PIL")


def quiet_third_party_logs() -> None:
    """Keep the notebooks' outputs to results: silence the expected notes of tracing and
    SparseML's imports, and the INFO lines of the libraries in :data:`NOISY_LOGGERS`."""
    import torch

    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", module=r"(torch|sparseml|sparsezoo|deepsparse)(\.|$)")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # SparseML sets its logger to INFO when this module is first imported: import it
    # before lowering the level, or the first export would raise it again.
    with contextlib.suppress(ImportError):
        import sparseml.log  # noqa: F401
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def use_static_friendly_plots() -> None:
    """Plotly figures carry their interactive JSON for JupyterLab *and* an HTML copy with
    plotly.js inline, so GitHub, nbviewer and ``nbconvert --to html`` show them too."""
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype+notebook"
    pio.templates.default = "plotly_white"


@dataclass
class Tutorial:
    """One notebook's run: where it writes, its settings, and the measurements it records."""

    notebook: str
    profile: str
    settings: SimpleNamespace
    results_dir: Path
    models_dir: Path
    manifest_path: Path
    hardware: dict[str, Any]
    deepsparse_missing: str | None
    measurements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def runs_dir(self) -> Path:
        """Training runs (checkpoints, ``last.pt``) live beside the models, one folder per run."""
        return self.models_dir.parent / "runs"

    @property
    def videos_dir(self) -> Path:
        return self.models_dir.parent / "videos"

    @property
    def fast_engine(self) -> str:
        """DeepSparse where it runs, else ONNX Runtime (the notebooks then say which)."""
        return "deepsparse" if self.deepsparse_missing is None else "onnxruntime"

    def record(self, result: Any, *, arch: str, variant: str, id: str | None = None, **tags: Any) -> dict[str, Any]:
        """Add one measurement (benchmark, video, mAP...) with the labels the claims checker matches on.

        ``id`` names it in the results file; a record that carries its own id may omit it.
        """
        id = id or (result.get("id") if isinstance(result, dict) else None)
        if not id:
            raise ValueError(f"{self.notebook}: give the measurement an id")
        if any(m.get("id") == id for m in self.measurements):
            raise ValueError(f"{self.notebook}: a measurement with id {id!r} is already recorded")
        entry = results.labelled(result, id=id, arch=arch, variant=variant, **tags)
        self.measurements.append(entry)
        return entry

    def add_model(
        self, variant: str, onnx_path: str | Path, sparsity: float, precision: str, map50: float | None = None, **extra: Any
    ) -> dict[str, Any]:
        """List an exported model in the manifest (the report's "models produced" table)."""
        return results.record_model(
            variant, onnx_path, sparsity, precision, map50, manifest_path=self.manifest_path, notebook=self.notebook, **extra
        )

    def save(self, **info: Any) -> Path:
        """Write this notebook's result file: profile, hardware, ``info`` and every recorded measurement."""
        payload = {"profile": self.profile, "hardware": self.hardware, "info": info, "measurements": self.measurements}
        return results.write_results(self.results_dir, self.notebook, payload)

    def table(self) -> Any:
        """The recorded speeds and accuracies as a pandas table (one row each, the columns a reader compares)."""
        import pandas as pd

        columns = ["id", "engine", "arch", "variant", "precision", "batch_size", "items_per_sec", "fps", "fps_pipeline", "map50"]
        scored = [m for m in self.measurements if any(m.get(key) is not None for key in ("items_per_sec", "fps", "map50"))]
        frame = pd.DataFrame(scored)
        return frame[[c for c in columns if c in frame.columns]].round(3)

    def __repr__(self) -> str:
        return f"Tutorial({self.notebook!r}, profile={self.profile!r}, fast engine {self.fast_engine!r})"

    def _repr_html_(self) -> str:
        rows = {
            "notebook": self.notebook,
            "profile": self.profile,
            "CPU": f"{self.hardware.get('cpu_model')} ({self.hardware.get('cores_available')} cores)",
            "AVX-512 VNNI": self.hardware.get("avx512_vnni"),
            "fast engine": self.fast_engine if self.deepsparse_missing is None
            else f"onnxruntime (DeepSparse missing: {self.deepsparse_missing})",
            "outputs": str(self.models_dir.parent),
        }
        cells = "".join(f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>" for k, v in rows.items())
        return f"<table>{cells}</table>"


def setup(
    notebook: str,
    profile: str = "quick",
    *,
    results_dir: str | Path = "../outputs/results",
    models_dir: str | Path = "../outputs/models",
    manifest_path: str | Path = "../outputs/manifest.json",
    **overrides: Any,
) -> Tutorial:
    """Prepare a notebook's run; ``overrides`` replace profile settings (``None`` keeps the profile's)."""
    import yolotut.compat  # noqa: F401  (NM_DISABLE_ANALYTICS before deepsparse/sparsezoo load)
    from yolotut import hardware
    from yolotut.inference.engines import deepsparse_unavailable_reason

    settings = profile_settings(profile, notebook, **overrides)
    quiet_third_party_logs()
    use_static_friendly_plots()
    ctx = Tutorial(
        notebook=notebook,
        profile=profile,
        settings=settings,
        results_dir=Path(results_dir),
        models_dir=Path(models_dir),
        manifest_path=Path(manifest_path),
        hardware=hardware.cpu_fingerprint(),
        deepsparse_missing=deepsparse_unavailable_reason(),
    )
    for folder in (ctx.results_dir, ctx.models_dir, ctx.runs_dir, ctx.videos_dir):
        folder.mkdir(parents=True, exist_ok=True)
    return ctx


def full_run_estimate(seconds: float, images_seen: int, epochs: int, train_images: int) -> dict[str, float]:
    """Extrapolate a short training run to ``epochs`` over ``train_images`` images on the same machine.

    Per-image time of the short run (start-up included, so it errs on the long side)
    times the images the full run sees. An estimate, not a measurement.
    """
    if images_seen <= 0:
        raise ValueError("images_seen must be > 0")
    per_image = seconds / images_seen
    return {"seconds_per_image": per_image, "estimated_hours": per_image * epochs * train_images / 3600}


def run_sparsity_search(ctx: Tutorial, checkout: str | Path = "..") -> list[dict[str, Any]]:
    """Run ``benchmarks/sparsity_search.py``'s tutorial grid for this profile; return the report's rows.

    The script runs in its own process, as a user would run it, so that its real-time
    priority and quiet-machine checks apply. Returns no rows, saying why, where
    DeepSparse or the script is missing.
    """
    import subprocess
    import sys

    from yolotut.reproduce.report import sparsity_search_rows

    script = Path(checkout) / "benchmarks" / "sparsity_search.py"
    if ctx.deepsparse_missing or not script.is_file():
        print(f"sparsity search skipped: {ctx.deepsparse_missing or f'{script} is not in this checkout'}")
        return []
    out_dir = ctx.models_dir.parent / "benchmarks" / ctx.notebook
    sizes = (["--sizes", "n", "--repeats", "2", "--warmup", "5", "--iterations", "30", "--max-tries", "1"]
             if ctx.profile == "quick" else ["--sizes", "s", "n", "--repeats", "5"])
    command = [sys.executable, str(script), "--grid", "tutorial", "--author", "--no-references",
               "--cores", str(ctx.hardware["cores_available"]), "--out-dir", str(out_dir), *sizes]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the sparsity search failed ({' '.join(command[1:])}):\n{done.stderr[-3000:]}")
    return sparsity_search_rows(out_dir)
