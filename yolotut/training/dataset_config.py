"""Dataset definitions: the dataset yaml (YOLOv5's format) read, checked and resolved.

The short names of :data:`BUILTIN_DATASETS` are the yaml files shipped in
``yolotut/datasets/``, whose data the asset registry fetches; any other yaml path is
read as it is. Every error names the yaml and what to fix.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from yolotut.errors import InputError

# Dataset yaml files shipped in yolotut/datasets/, by short name.
BUILTIN_DATASETS = ("pistols", "asl")
# Split names as YOLOv5 writes them in yaml -> our canonical key.
_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


class DatasetConfigError(InputError):
    """A dataset yaml that is not valid YAML or not a usable dataset definition; the message names it."""


@dataclass(frozen=True)
class DatasetConfig:
    """A dataset definition: where the split image folders are and what the classes are.

    ``splits`` maps the canonical split names ``"train"``, ``"val"``, ``"test"`` to
    image folders (``"valid"`` is accepted as a synonym of ``"val"`` by
    :meth:`split_dir`). ``yaml_path`` is the file the definition came from.
    """

    name: str
    root: Path
    splits: dict[str, Path]
    names: list[str]
    nc: int
    yaml_path: Path | None = field(default=None, compare=False)

    def split_dir(self, split: str) -> Path:
        """Image folder of ``split`` (``train``, ``val``/``valid``, ``test``)."""
        key = _SPLIT_ALIASES.get(split)
        if key is None:
            raise ValueError(f"unknown split {split!r}; use one of train, val (or valid), test")
        if key not in self.splits:
            source = f" ({self.yaml_path})" if self.yaml_path else ""
            raise ValueError(
                f"dataset {self.name!r}{source} defines no {key!r} split; it has {sorted(self.splits)}"
            )
        return self.splits[key]


def _builtin_yaml(name: str) -> Path:
    return Path(str(importlib.resources.files("yolotut") / "datasets" / f"{name}.yaml"))


def _builtin_root(asset_name: str, yaml_file: Path) -> Path:
    from yolotut import assets

    try:
        return assets.fetch(asset_name)
    except assets.UnknownAssetError as exc:
        raise DatasetConfigError(f"{yaml_file}: names asset {asset_name!r}, which yolotut.assets does not know") from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        # safe_load refuses !!python/object tags (ConstructorError, a YAMLError).
        reason = " ".join(str(exc).split())
        raise DatasetConfigError(f"dataset yaml {path} is not valid YAML ({reason}); fix the file", path=path) from exc
    if not isinstance(data, dict):
        raise DatasetConfigError(f"dataset yaml {path} must be a mapping with train/val/names keys, got {type(data).__name__}")
    return data


def _parse_names(data: Mapping[str, Any], path: Path) -> list[str]:
    names = data.get("names")
    if isinstance(names, Mapping):
        # Newer YOLOv5 yaml: {0: person, 1: bicycle, ...}; ids must be 0..n-1.
        by_id = {_class_id(k): v for k, v in names.items()}
        if None in by_id or len(by_id) != len(names) or sorted(by_id) != list(range(len(by_id))):
            raise DatasetConfigError(
                f"{path}: 'names' keys must be the class ids 0..{len(names) - 1} without gaps, got {list(names)}"
            )
        names = [by_id[k] for k in range(len(by_id))]
    if not isinstance(names, list) or not names:
        raise DatasetConfigError(f"{path}: needs 'names', a non-empty list (or {{id: name}} mapping) of class names")
    names = [str(n) for n in names]
    nc = data.get("nc", len(names))
    if not isinstance(nc, int) or nc != len(names):
        raise DatasetConfigError(f"{path}: nc={nc!r} but 'names' lists {len(names)} classes; make them agree")
    return names


def _class_id(key: Any) -> int | None:
    """A ``names`` mapping key as a class id (``0`` or ``"0"``), None if it is none."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.strip().isdecimal():
        return int(key)
    return None


def _yaml_path(value: Any, yaml_file: Path, key: str) -> Path:
    """A path written in the yaml, ``~`` expanded; :class:`DatasetConfigError` if it cannot be one."""
    text = str(value)
    if "\x00" in text:
        raise DatasetConfigError(f"{yaml_file}: {key}: {text!r} contains a NUL character; fix '{key}:'", path=yaml_file)
    try:
        return Path(text).expanduser()
    except RuntimeError as exc:  # "~user" of an unknown user
        raise DatasetConfigError(f"{yaml_file}: {key}: {text!r}: {exc}; fix '{key}:'", path=yaml_file) from exc


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # e.g. a name longer than the file system allows
        return False


def _resolve_root(data: Mapping[str, Any], yaml_file: Path, base: Path | None) -> Path:
    """Dataset root from the yaml's ``path`` key.

    A relative ``path`` is tried against the yaml's folder, then against its parent
    (YOLOv5 resolves it against the YOLOv5 checkout, whose ``data/`` folder holds the
    yaml files), then against the working directory; the first existing folder wins.
    """
    raw = data.get("path") or "."
    p = _yaml_path(raw, yaml_file, "path")
    if base is not None:
        candidates = [base / p]
    elif p.is_absolute():
        candidates = [p]
    else:
        here = yaml_file.parent
        candidates = [here / p, here.parent / p, Path.cwd() / p]
    for c in candidates:
        if _is_dir(c):
            return c.resolve()
    tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise FileNotFoundError(
        f"{yaml_file}: dataset folder path={raw!r} not found (tried {tried}); fix 'path' in the yaml "
        f"or make it absolute"
    )


def load_dataset_config(name_or_path: str | os.PathLike[str]) -> DatasetConfig:
    """Read a dataset definition: a built-in name (``pistols``, ``asl``) or a yaml file.

    The yaml is in the YOLOv5 format: ``path`` (dataset root), ``train``/``val``/``test``
    (image folders, relative to the root), ``names`` (list or ``{id: name}``) and
    optionally ``nc``. Built-in definitions are resolved against the dataset asset
    (:func:`yolotut.assets.fetch`, i.e. ``$YOLOTUT_MIRROR`` or the download cache).
    Every split the yaml declares must exist; the error names the folder and the yaml.
    """
    text = os.fspath(name_or_path)
    base: Path | None = None
    if text in BUILTIN_DATASETS:
        yaml_file = _builtin_yaml(text)
        data = _read_yaml(yaml_file)
        base = _builtin_root(str(data.get("asset", text)), yaml_file)
    else:
        yaml_file = Path(text).expanduser()
        if not yaml_file.is_file():
            raise FileNotFoundError(
                f"dataset {text!r} is neither a built-in dataset ({', '.join(BUILTIN_DATASETS)}) nor an "
                f"existing yaml file"
            )
        yaml_file = yaml_file.resolve()
        data = _read_yaml(yaml_file)

    names = _parse_names(data, yaml_file)
    root = _resolve_root(data, yaml_file, base)
    splits: dict[str, Path] = {}
    for key, value in data.items():
        split = _SPLIT_ALIASES.get(str(key))
        if split is None or value in (None, ""):
            continue
        if not isinstance(value, str):
            raise DatasetConfigError(
                f"{yaml_file}: {key}: {value!r}: only a single image folder per split is supported "
                f"(not lists or .txt file lists)"
            )
        folder = _yaml_path(value, yaml_file, str(key))
        folder = folder if folder.is_absolute() else root / folder
        if not _is_dir(folder):
            raise FileNotFoundError(
                f"{yaml_file}: {key} split folder {folder} does not exist; fix '{key}:' (relative to "
                f"{root}) or fetch the dataset"
            )
        if split in splits and splits[split] != folder:
            raise DatasetConfigError(f"{yaml_file}: both 'val' and 'valid' given, pointing at different folders")
        splits[split] = folder
    if "train" not in splits and "val" not in splits:
        raise DatasetConfigError(f"{yaml_file}: needs at least a 'train' or 'val' image folder")
    return DatasetConfig(
        name=yaml_file.stem, root=root, splits=splits, names=names, nc=len(names), yaml_path=yaml_file
    )


# --- files ----------------------------------------------------------------------------
