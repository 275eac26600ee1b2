"""Run the tutorial notebooks in order with papermill, then build the report.

``yolotut reproduce`` calls :func:`reproduce`: every notebook of ``notebooks/`` runs
in order (cwd = ``notebooks/``) with the chosen profile, executed copies land in
``<output>/notebooks/``, and a failure stops the run with the notebook, the cell and
the executed copy to open. The notebooks record the models they produce in
``<output>/manifest.json`` through :func:`~yolotut.reproduce.results.record_model` and their measurements in
``<output>/results/*.json`` through :func:`~yolotut.reproduce.results.write_results`; the runner adds each
notebook's wall time to the manifest and finally builds the report
(:func:`yolotut.reproduce.report.build_report`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from yolotut.reproduce.profiles import PROFILES
from yolotut.reproduce.results import record_notebook_time


class NotebookFailedError(RuntimeError):
    """A notebook raised: names the notebook, the cell and the executed copy."""

    def __init__(self, notebook: str, cell_index: int | None, exec_count: int | None, ename: str, evalue: str,
                 source: str, executed: Path) -> None:
        self.notebook = notebook
        self.cell_index = cell_index
        self.exec_count = exec_count
        self.ename = ename
        self.evalue = evalue
        self.executed = executed
        first_line = next((line for line in source.splitlines() if line.strip()), "").strip()
        where = f"cell {cell_index}" if cell_index is not None else "a cell"
        if exec_count is not None:
            where += f" (In [{exec_count}])"
        super().__init__(
            f"notebook {notebook} failed in {where}: {ename}: {evalue}\n"
            f"  cell starts with: {first_line[:120]}\n"
            f"  executed copy with the full traceback: {executed}"
        )


@dataclass
class NotebookRun:
    name: str
    seconds: float
    executed: str
    status: str = "ok"


@dataclass
class ReproduceSummary:
    profile: str
    output_dir: Path
    runs: list[NotebookRun] = field(default_factory=list)
    report: dict[str, str] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(r.seconds for r in self.runs)


# --- where things are ------------------------------------------------------------------


def default_notebooks_dir() -> Path:
    """``notebooks/`` of the source checkout (the package is installed editable)."""
    return Path(__file__).resolve().parents[2] / "notebooks"


def list_notebooks(notebooks_dir: str | Path | None = None, only: Iterable[str] | None = None) -> list[Path]:
    """The numbered notebooks (``NN_*.ipynb``) in order; ``only`` keeps those whose prefix or name matches."""
    folder = Path(notebooks_dir) if notebooks_dir else default_notebooks_dir()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no notebooks folder at {folder}: run from a source checkout (pip install -e .) or pass --notebooks"
        )
    notebooks = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"{folder} holds no numbered notebooks (NN_name.ipynb)")
    if only is None:
        return notebooks
    wanted = [w.strip() for w in only if w.strip()]
    picked = [p for p in notebooks if any(p.name.startswith(w) or p.stem == w for w in wanted)]
    unknown = [w for w in wanted if not any(p.name.startswith(w) or p.stem == w for p in notebooks)]
    if unknown:
        raise ValueError(f"--only {','.join(unknown)}: no such notebook; choose from {', '.join(p.stem for p in notebooks)}")
    return picked


def notebook_parameters(profile: str, output_dir: str | Path) -> dict[str, Any]:
    """Papermill parameters that point a notebook at one output folder."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    out = Path(output_dir).resolve()
    return {
        "profile": profile,
        "results_dir": str(out / "results"),
        "models_dir": str(out / "models"),
        "manifest_path": str(out / "manifest.json"),
    }


def resolve_kernel() -> str:
    """A kernel name whose interpreter is this one (the venv with yolotut installed).

    jupyter_client starts ``python3`` specs whose argv[0] is a bare ``python`` with
    ``sys.executable``; a user-level ``python3`` spec that names another interpreter
    would run the notebooks without yolotut, so then a ``yolotut`` spec is registered
    into this environment's prefix and used instead.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        spec = manager.get_kernel_spec("python3")
        exe = spec.argv[0] if spec.argv else ""
        if exe in {"python", "python3", f"python3.{sys.version_info[1]}"} or _same_file(exe, sys.executable):
            return "python3"
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    install(kernel_name="yolotut", display_name="Python (yolotut)", prefix=sys.prefix)
    return "yolotut"


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# --- running ---------------------------------------------------------------------------


def run_notebook(
    notebook: str | Path,
    executed: str | Path,
    parameters: dict[str, Any],
    kernel_name: str | None = None,
    cwd: str | Path | None = None,
    log_output: bool = False,
) -> float:
    """Execute one notebook with papermill; return its wall time in seconds.

    Raises :class:`NotebookFailedError` (notebook, cell, error, executed copy) when a cell fails.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from yolotut.progress import FINAL_LINE, PROGRESS_ENV

    notebook, executed = Path(notebook), Path(executed)
    executed.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    # The kernel inherits this process's environment: its progress bars print one final
    # line each, which a saved notebook shows (widget bars would be saved as empty boxes).
    previous = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = FINAL_LINE
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=parameters,
            kernel_name=kernel_name or resolve_kernel(),
            cwd=str(cwd or notebook.parent),
            progress_bar=False,
            log_output=log_output,
        )
    except PapermillExecutionError as exc:
        raise NotebookFailedError(
            notebook.name, exc.cell_index, exc.exec_count, exc.ename, exc.evalue, exc.source or "", executed
        ) from None
    finally:
        if previous is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = previous
    return time.perf_counter() - start


def reproduce(
    profile: str = "quick",
    only: Sequence[str] | None = None,
    output_dir: str | Path = "outputs",
    notebooks_dir: str | Path | None = None,
    build_report: bool = True,
    progress: bool = True,
    log_output: bool = False,
) -> ReproduceSummary:
    """Run the notebooks in order, record their wall times, then build the report."""
    from tqdm.auto import tqdm

    output_dir = Path(output_dir).resolve()
    notebooks = list_notebooks(notebooks_dir, only)
    parameters = notebook_parameters(profile, output_dir)
    kernel = resolve_kernel()
    summary = ReproduceSummary(profile=profile, output_dir=output_dir)
    manifest_path = Path(parameters["manifest_path"])
    bar = tqdm(notebooks, desc="notebooks", unit="nb", disable=not progress)
    for notebook in bar:
        bar.set_postfix_str(notebook.stem)
        executed = output_dir / "notebooks" / notebook.name
        try:
            seconds = run_notebook(notebook, executed, parameters, kernel, notebook.parent, log_output)
        except NotebookFailedError:
            record_notebook_time(manifest_path, notebook.stem, None, executed, profile, status="failed")
            raise
        summary.runs.append(NotebookRun(notebook.stem, seconds, str(executed)))
        record_notebook_time(manifest_path, notebook.stem, seconds, executed, profile)
        tqdm.write(f"{notebook.stem}: {seconds:.0f} s ({profile} profile)")
    if build_report:
        summary.report = write_report(output_dir)
    return summary


def write_report(output_dir: str | Path = "outputs") -> dict[str, str]:
    """Build the reproduction report of one output folder (``<output_dir>/report``) from what is already in it."""
    from yolotut.reproduce.report import build_report

    out = Path(output_dir).resolve()
    layout = notebook_parameters(PROFILES[0], out)  # the folder layout; the profile plays no part
    written = build_report(layout["results_dir"], out / "report", manifest_path=layout["manifest_path"])
    return {kind: str(path) for kind, path in written.items()}


def summary_dict(summary: ReproduceSummary) -> dict[str, Any]:
    """JSON-ready form of a :class:`ReproduceSummary` (for ``--json``)."""
    return {
        "profile": summary.profile,
        "output_dir": str(summary.output_dir),
        "notebooks": [asdict(r) for r in summary.runs],
        "total_seconds": summary.total_seconds,
        "report": summary.report,
    }
