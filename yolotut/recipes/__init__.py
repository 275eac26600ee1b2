"""The SparseML recipes shipped with yolotut (the ``*.yaml`` files here) and how to load them.

The recipes are data: each file is a SparseML recipe whose variables (epochs, sparsity
targets, when quantization starts) can be overridden per run; ``README.md`` beside them
says what each one does. :func:`load_manager` turns one into the
``ScheduledModifierManager`` that prunes and quantizes on its schedule.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

RECIPE_PACKAGE = "yolotut.recipes"


def available_recipes() -> list[str]:
    """Names of the recipes shipped in ``yolotut/recipes``."""
    folder = resources.files(RECIPE_PACKAGE)
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def recipe_path(name_or_path: str) -> Path:
    """Resolve a recipe name (``pruning``) or a path to a recipe file."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml", ".md"} and candidate.exists():
        return candidate
    shipped = resources.files(RECIPE_PACKAGE) / f"{name_or_path}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    raise FileNotFoundError(
        f"unknown recipe {name_or_path!r}: give a path to a SparseML recipe file or one of "
        f"{', '.join(available_recipes())}"
    )


def load_manager(recipe: str, variables: dict[str, Any] | None = None):
    """A SparseML ``ScheduledModifierManager`` for a recipe (name or path) with variable overrides."""
    return manager_from_yaml(str(recipe_path(recipe)), variables)


def manager_from_yaml(recipe: str, variables: dict[str, Any] | None = None):
    """The manager of a recipe file's path or of a recipe's text (the copy a training checkpoint carries)."""
    from yolotut.compat import apply_sparseml_compat

    apply_sparseml_compat()
    from sparseml.pytorch.optim import ScheduledModifierManager

    return ScheduledModifierManager.from_yaml(recipe, recipe_variables=variables or None)


def quiet_loggers():
    """A SparseML logger manager that logs nowhere.

    SparseML's default one writes ``./sparse_logs/<date>.log`` into whatever the
    working directory is (a notebook folder, a user's checkout); training progress is
    shown by the tqdm bars and saved in ``history.json`` instead. The manager holds one
    no-op logger because SparseML replaces an *empty* (falsy) manager by its default.
    """
    from sparseml.pytorch.utils import LambdaLogger, LoggerManager

    discard = LambdaLogger(lambda_func=lambda *args, **kwargs: True, name="discard")
    return LoggerManager([discard], log_python=False)
