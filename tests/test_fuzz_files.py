"""Fuzzing the readers of text files a user edits or a run leaves behind: YOLO label
files, dataset yaml, the published-claims registry, result and manifest JSON.

Each test states its property in :func:`fuzzing.documented`: a valid result, or the
documented error type naming the file. Examples a fuzz run found to break that
property are pinned with ``@example`` (the regression examples).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from fuzzing import documented, file_stems, scalars, values, write_bytes
from hypothesis import example, given
from hypothesis import strategies as st

from yolotut.errors import InputError
from yolotut.reproduce.registry import Claims, ClaimsError, default_claims_path, load_claims, parse_claims
from yolotut.training.data import DatasetConfig, DatasetConfigError, LabelError, load_dataset_config, parse_label_file

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-files")


# --- YOLO label files ----------------------------------------------------------------

_field = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=0, max_value=1).map(repr),
    st.integers(min_value=-3, max_value=120).map(str),
    st.sampled_from(["nan", "-inf", "1e400", "1e-50", "0x10", "1_0", "+.5", "5.", "٣", "０.５", "1e0", "-0"]),
    st.text(max_size=6),
)
_line = st.lists(_field, max_size=8).map(" ".join)
_label_text = st.builds(
    lambda lines, sep: sep.join(lines),
    st.lists(_line, max_size=6),
    st.sampled_from(["\n", "\r\n", "\r", "\t\n", "\u2028"]),
)
_label_bytes = st.one_of(
    _label_text.map(lambda t: t.encode("utf-8")),
    st.binary(max_size=200),
    st.just(b""),
    st.sampled_from([b"\xff\xfe0 0.5 0.5 0.1 0.1", b"0 0.5 0.5 0.1 0.1\x00", "0 0.5 0.5 0.1 0.1".encode("utf-16")]),
)


@given(stem=file_stems, data=_label_bytes, nc=st.integers(min_value=1, max_value=100))
@example(stem="img (1)", data=b"0 0.5 0.5 1e-50 0.2", nc=1)  # positive in float64, zero in float32
def test_label_parser(folder: Path, stem: str, data: bytes, nc: int) -> None:
    path = write_bytes(folder, stem, ".txt", data)
    with documented("label file parser", path, LabelError):
        rows = parse_label_file(path, nc)
        assert rows.dtype == np.float32 and rows.ndim == 2 and rows.shape[1] == 5
        assert np.isfinite(rows).all()
        cls = rows[:, 0]
        assert (cls == np.round(cls)).all() and (cls >= 0).all() and (cls < nc).all()
        assert ((rows[:, 1:] >= 0) & (rows[:, 1:] <= 1)).all()
        assert (rows[:, 3:] > 0).all(), "a box of zero width or height"


# --- dataset yaml ----------------------------------------------------------------------

_split_value = st.one_of(
    st.sampled_from(["train/images", "valid/images", "missing/images", "", ".", "/", "~nosuchuser/x", "a\x00b"]),
    values,
)
_names_value = st.one_of(
    st.lists(st.text(max_size=8), max_size=4),
    st.dictionaries(st.one_of(st.integers(-1, 4), st.floats(-1, 4), st.text(max_size=2)), st.text(max_size=6), max_size=4),
    values,
)
_dataset_doc = st.fixed_dictionaries(
    {},
    optional={
        "path": st.one_of(st.sampled_from([".", "root", "missing", "~nosuchuser", "/"]), values),
        "train": _split_value,
        "val": _split_value,
        "valid": _split_value,
        "test": _split_value,
        "names": _names_value,
        "nc": st.one_of(st.integers(0, 5), scalars),
        "extra": values,
    },
)
_yaml_text = st.one_of(
    _dataset_doc.map(lambda doc: yaml.safe_dump(doc, allow_unicode=True)),
    st.sampled_from([
        "names: [a]\ntrain: !!python/object/apply:os.system ['echo pwned']\n",
        "!!python/object:yolotut.training.data.DatasetConfig {name: x}\n",
        "names: !!python/name:os.system\nval: valid/images\n",
        "a: &a [*a]\n",
        "names: [a\nval: [",
        "- just\n- a list\n",
        "",
    ]),
    st.text(max_size=80),
)


@pytest.fixture(scope="module")
def dataset_root(folder: Path) -> Path:
    root = folder / "dataset"
    for split in ("train", "valid"):
        (root / "root" / split / "images").mkdir(parents=True)
        (root / split / "images").mkdir(parents=True)
    return root


@given(stem=file_stems, text=_yaml_text, binary=st.one_of(st.none(), st.binary(max_size=64)))
@example(stem="d", text="names: {0.5: a}\nval: valid/images\n", binary=None)  # class id 0.5 passed int()
@example(stem="d", text="names: [a]\nval: ~nosuchuser/x\n", binary=None)  # expanduser raised RuntimeError
@example(stem="d", text="names: [a]\nval: \"a\\0b\"\n", binary=None)  # a NUL in a path: ValueError from os.stat
@example(stem="d", text="", binary=b"\xff\xfe\x00")  # not UTF-8
def test_dataset_yaml_loader(dataset_root: Path, stem: str, text: str, binary: bytes | None) -> None:
    path = write_bytes(dataset_root, stem, ".yaml", text.encode("utf-8") if binary is None else binary)
    with documented("dataset yaml loader", path, DatasetConfigError, FileNotFoundError):
        config = load_dataset_config(path)
        assert isinstance(config, DatasetConfig)
        assert config.names and all(isinstance(n, str) for n in config.names) and config.nc == len(config.names)
        assert config.splits and all(folder.is_dir() for folder in config.splits.values())


# --- the published-claims registry ------------------------------------------------------


@pytest.fixture(scope="module")
def registry_doc() -> dict:
    return yaml.safe_load(default_claims_path().read_text(encoding="utf-8"))


def _mutate(doc: object, draw: st.DrawFn) -> object:
    """``doc`` with one entry somewhere inside deleted, replaced or joined by a stranger."""
    node = doc
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not keys:
            return doc
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and draw(st.booleans()):
            node = child
            continue
        action = draw(st.sampled_from(["delete", "replace", "add"]))
        if action == "delete":
            del node[key]
        elif action == "replace":
            node[key] = draw(values)
        elif isinstance(node, dict):
            node[draw(st.text(max_size=8))] = draw(values)
        else:
            node.append(draw(values))
        return doc


@st.composite
def _mutated_registry(draw: st.DrawFn, original: dict) -> object:
    doc = copy.deepcopy(original)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        doc = _mutate(doc, draw)
    return doc


@given(data=st.data())
def test_claims_registry_parser(registry_doc: dict, data: st.DataObject) -> None:
    doc = data.draw(_mutated_registry(registry_doc))
    with documented("claims registry (parse_claims)", "published-fuzz.yaml", ClaimsError):
        claims = parse_claims(doc, "published-fuzz.yaml")
        assert isinstance(claims, Claims) and claims
        assert all(c.value is None or math.isfinite(c.value) for c in claims)


@pytest.mark.parametrize(
    "section, field, value",
    [("claims", "source", ["nm_blog"]), ("comparisons", "numerator", ["a"]), ("comparisons", "same", [{"model": 1}])],
)
def test_claims_registry_regressions(registry_doc: dict, section: str, field: str, value: object) -> None:
    # Found by the long fuzz run: an unhashable value where the registry expects a name
    # was looked up in a dict (TypeError) instead of being refused.
    doc = copy.deepcopy(registry_doc)
    doc[section][0][field] = value
    with pytest.raises(ClaimsError, match=f"published-fuzz.yaml: {section}\\[0\\]"):
        parse_claims(doc, "published-fuzz.yaml")


@given(stem=file_stems, data=st.one_of(st.binary(max_size=120), st.text(max_size=120).map(str.encode)))
def test_claims_registry_file(folder: Path, stem: str, data: bytes) -> None:
    path = write_bytes(folder, stem, ".yaml", data)
    with documented("claims registry (load_claims)", path, ClaimsError):
        assert isinstance(load_claims(path), Claims)


# --- result and manifest JSON -----------------------------------------------------------

_RECORD_KEYS = [
    "engine", "model", "variant", "arch", "batch_size", "cores", "num_cores", "imgsz", "items_per_sec",
    "latency_ms_median", "fps", "fps_peak", "map50", "map50_95", "sparsity", "file_size_mb", "file_size_bytes",
    "measurement", "dataset", "precision", "device", "hardware", "engine_info", "skipped", "busy", "id", "name",
    "label", "onnx",
]
_record = st.dictionaries(st.one_of(st.sampled_from(_RECORD_KEYS), st.text(max_size=6)), values, max_size=8)
_result_doc = st.one_of(
    _record,
    st.lists(_record, max_size=3),
    st.fixed_dictionaries(
        {"format": st.sampled_from(["yolotut-results/1", "yolotut-manifest/1", "other"])},
        optional={
            "measurements": st.one_of(st.lists(_record, max_size=3), values),
            "models": st.one_of(st.lists(_record, max_size=3), values),
            "results": st.one_of(st.lists(_record, max_size=3), values),
            "notebooks": values,
            "hardware": values,
        },
    ),
    values,
)
_result_bytes = st.one_of(
    _result_doc.map(lambda doc: json.dumps(doc).encode()),  # NaN and Infinity included, as json writes them
    st.binary(max_size=80),
    st.text(max_size=80).map(str.encode),
)


@given(stem=file_stems, data=_result_bytes)
def test_result_json_readers(folder: Path, stem: str, data: bytes) -> None:
    from yolotut.reproduce.measurements import load_measurements
    from yolotut.reproduce.report import load_records
    from yolotut.reproduce.results import load_manifest, read_results_file

    results_dir = folder / "results"
    results_dir.mkdir(exist_ok=True)
    for old in results_dir.iterdir():
        old.unlink()
    path = write_bytes(results_dir, stem, ".json", data)
    with documented("results JSON (load_measurements)", path, ClaimsError):
        assert isinstance(load_measurements([path]), list)
    with documented("results JSON (read_results_file)", path, InputError):
        assert read_results_file(path)["format"] == "yolotut-results/1"
    with documented("manifest JSON (load_manifest)", path, InputError):
        manifest = load_manifest(path)
        assert isinstance(manifest["models"], list) and isinstance(manifest["notebooks"], list)
    with documented("results folder (report.load_records)", path, InputError):
        assert isinstance(load_records(results_dir), list)
