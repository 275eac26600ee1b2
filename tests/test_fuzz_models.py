"""Fuzzing the readers of model files: the ONNX inspection behind ``bench``, ``sparsity``
and ``evaluate``, and the restricted checkpoint loader.

ONNX: random bytes, truncations of the blog author's model, and byte-level mutations
of a small valid detector graph (they parse, and reach the checker and the shape
checks). Checkpoints: pickles assembled from allowed and forbidden globals, in torch's
zip container and bare, plus truncations and pickle mutations of the official
``yolov5n.pt``. The forbidden calls would create a canary folder: it must never appear.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest
from conftest import find_mirror
from fuzzing import documented, file_stems, write_bytes
from hypothesis import example, given
from hypothesis import strategies as st

from yolotut.errors import OnnxModelError
from yolotut.models.checkpoint import CheckpointError, load_model
from yolotut.models.yolo import DetectionModel

pytestmark = pytest.mark.fuzz

BLOG_ONNX = "companion/yolov5-train/yolov5-deepsparse/yolov5n-sgd-pruned-quantized-hardswish/weights/best.onnx"
YOLOV5N_PT = "companion/yolov5-train/yolov5n.pt"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-models")


@pytest.fixture(scope="module")
def mirror() -> Path:
    root = find_mirror()
    if root is None:
        pytest.skip("offline asset mirror not found (set YOLOTUT_MIRROR to a copy of shared/mirror)")
    return root


# --- ONNX -----------------------------------------------------------------------------


def _tiny_detector_bytes() -> bytes:
    """A valid ONNX detector in miniature: uint8 [B, 3, 8, 8] in, [B, 64, 6] out, with metadata."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((6, 3, 1, 1), np.float32), "w")
    rows = numpy_helper.from_array(np.array([0, -1, 6], np.int64), "rows")
    nodes = [
        helper.make_node("Cast", ["input"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Conv", ["x", "w"], ["y"], name="conv"),
        helper.make_node("Transpose", ["y"], ["nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["nhwc", "rows"], ["out_0"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.UINT8, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("out_0", TensorProto.FLOAT, ["batch", 64, 6])],
        initializer=[weight, rows],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    for key, value in {"names": '["pistol"]', "imgsz": "8", "stride": "[8]"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="module")
def onnx_sources(mirror: Path) -> dict[str, bytes]:
    return {"blog": (mirror / BLOG_ONNX).read_bytes(), "tiny": _tiny_detector_bytes()}


@st.composite
def _mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few bytes overwritten, inserted or deleted."""
    out = bytearray(data)
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        at = draw(st.integers(min_value=0, max_value=max(len(out) - 1, 0)))
        action = draw(st.sampled_from(["set", "insert", "delete"]))
        if action == "set" and out:
            out[at] = draw(st.integers(0, 255))
        elif action == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif out:
            del out[at : at + draw(st.integers(1, 8))]
    return bytes(out)


@st.composite
def _onnx_bytes(draw: st.DrawFn, sources: dict[str, bytes]) -> bytes:
    kind = draw(st.sampled_from(["random", "truncated", "mutated"]))
    if kind == "random":
        return draw(st.binary(max_size=4096))
    if kind == "truncated":
        source = sources[draw(st.sampled_from(["blog", "tiny"]))]
        return source[: draw(st.integers(min_value=0, max_value=len(source) - 1))]
    return draw(_mutated(sources["tiny"]))


@given(stem=file_stems, data=st.data())
def test_onnx_model_inspection(folder: Path, onnx_sources: dict[str, bytes], stem: str, data: st.DataObject) -> None:
    from yolotut.inference.engines import OnnxModelInfo, read_onnx_info
    from yolotut.inference.export import SparsityReport, measure_onnx_sparsity

    path = write_bytes(folder, stem, ".onnx", data.draw(_onnx_bytes(onnx_sources)))
    with documented("ONNX inspection (read_onnx_info)", path, OnnxModelError):
        info = read_onnx_info(path)
        assert isinstance(info, OnnxModelInfo) and len(info.input_shape) == 4 and info.input_shape[1] == 3
        assert info.input_dtype in ("float32", "uint8")
    with documented("ONNX inspection (measure_onnx_sparsity)", path, OnnxModelError):
        report = measure_onnx_sparsity(path)
        assert isinstance(report, SparsityReport) and 0.0 <= report.conv_sparsity <= 1.0



def test_a_weight_whose_bytes_do_not_fill_its_shape_is_a_damaged_file(folder: Path) -> None:
    # Found by the long fuzz run: one flipped byte in the tiny model's weight shape
    # (6, 3, 1, 1) -> (1, 3, 1, 1) left 18 floats for a 3-float tensor; the sparsity
    # reader raised numpy's reshape ValueError instead of naming the file.
    import onnx

    from yolotut.inference.export import measure_onnx_sparsity

    model = onnx.load_from_string(_tiny_detector_bytes())
    next(t for t in model.graph.initializer if t.name == "w").dims[0] = 1
    path = folder / "torn weight.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(OnnxModelError, match="torn weight.onnx.*'conv' has a damaged weight"):
        measure_onnx_sparsity(path)


def test_a_weight_of_a_tensor_type_onnx_cannot_read_is_a_damaged_file(folder: Path) -> None:
    # Found by the CI-profile fuzz run: a mutated data type (21, unknown to onnx 1.14) made
    # numpy_helper raise KeyError.
    import onnx

    from yolotut.inference.export import measure_onnx_sparsity

    model = onnx.load_from_string(_tiny_detector_bytes())
    next(t for t in model.graph.initializer if t.name == "w").data_type = 21
    path = folder / "unknown type.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(OnnxModelError, match="unknown type.onnx.*'conv' has a damaged weight"):
        measure_onnx_sparsity(path)

# --- checkpoints: generated pickles ----------------------------------------------------

ALLOWED_GLOBALS = [
    "collections OrderedDict",
    "torch._utils _rebuild_tensor_v2",
    "torch._utils _rebuild_parameter",
    "torch Size",
    "builtins set",
    "models.yolo Model",
    "models.yolo DetectionModel",
    "models.yolo Detect",
    "models.common Conv",
    "torch.nn.modules.conv Conv2d",
    "torch.nn.modules.activation SiLU",
    "torch.nn.modules.container Sequential",
]
FORBIDDEN_GLOBALS = [
    "posix system",
    "os system",
    "nt system",
    "builtins eval",
    "builtins exec",
    "__builtin__ eval",
    "builtins getattr",
    "builtins __import__",
    "builtins open",
    "os mkdir",
    "subprocess Popen",
    "subprocess check_output",
    "commands getoutput",
    "shutil rmtree",
    "pickle loads",
    "copyreg _reconstructor",
    "torch load",
    "numpy.core.multiarray _reconstruct",
    "yolotut.models.checkpoint save_atomically",
]
_CHECKPOINT_KEYS = [
    "format", "config", "state_dict", "model", "ema", "epoch", "model_config", "quantized", "recipe_text",
    "recipe_variables", "optimizer", "yaml", "names", "stride", "_modules", "_parameters", "_buffers",
]
_CHECKPOINT_STRINGS = ["yolotut-train/1", "yolotut-checkpoint-v1", "n", "silu", "backbone", "head"]


def _canary_strings(canary: Path) -> list:
    return [f"mkdir {canary}", f"__import__('os').mkdir({str(canary)!r})", str(canary)]


def _leaf(canary: Path) -> st.SearchStrategy:
    return st.one_of(
        st.tuples(st.just("none")),
        st.tuples(st.just("bool"), st.booleans()),
        st.tuples(st.just("int"), st.integers(min_value=-(2**31), max_value=2**31 - 1)),
        st.tuples(st.just("float"), st.floats(allow_nan=True, allow_infinity=True)),
        st.tuples(st.just("str"), st.one_of(st.text(max_size=8), st.sampled_from(_CHECKPOINT_KEYS + _CHECKPOINT_STRINGS),
                                            st.sampled_from(_canary_strings(canary)))),
        st.tuples(st.just("tensor"), st.integers(0, 20), st.lists(st.integers(0, 5), max_size=3),
                  st.lists(st.integers(0, 5), max_size=3)),
        st.tuples(st.just("persistent id"), st.integers(min_value=-(2**31), max_value=2**31 - 1)),
    )


def _program(canary: Path) -> st.SearchStrategy:
    globals_ = st.sampled_from(ALLOWED_GLOBALS + FORBIDDEN_GLOBALS)
    return st.recursive(
        _leaf(canary),
        lambda inner: st.one_of(
            st.tuples(st.just("list"), st.lists(inner, max_size=4)),
            st.tuples(st.just("tuple"), st.lists(inner, max_size=4)),
            st.tuples(st.just("dict"), st.lists(st.tuples(st.one_of(st.sampled_from(_CHECKPOINT_KEYS).map(lambda k: ("str", k)), inner), inner), max_size=4)),
            st.tuples(st.just("call"), globals_, st.lists(inner, max_size=3)),
            st.tuples(st.just("new"), globals_, st.lists(inner, max_size=2)),
            st.tuples(st.just("build"), inner, inner),
        ),
        max_leaves=16,
    )


def _text(s: str) -> bytes:
    raw = s.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(raw)) + raw


def _assemble(node: tuple) -> bytes:
    """Protocol-2 pickle opcodes for one node (no memo; the unpickler needs none)."""
    kind = node[0]
    if kind == "none":
        return b"N"
    if kind == "bool":
        return b"\x88" if node[1] else b"\x89"
    if kind == "int":
        return b"J" + struct.pack("<i", node[1])
    if kind == "float":
        return b"G" + struct.pack(">d", node[1])
    if kind == "str":
        return _text(node[1])
    if kind == "tensor":
        _, offset, size, stride = node
        storage = b"(" + _text("storage") + b"ctorch\nFloatStorage\n" + _text("0") + _text("cpu") + b"J" + struct.pack("<i", 16) + b"tQ"
        dims = lambda xs: b"(" + b"".join(b"J" + struct.pack("<i", x) for x in xs) + b"t"  # noqa: E731
        return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage + b"J" + struct.pack("<i", offset) + dims(size)
                + dims(stride) + b"\x89ccollections\nOrderedDict\n)Rt" + b"R")
    if kind == "persistent id":  # torch's storages are tuples; anything else is a damaged file
        return b"J" + struct.pack("<i", node[1]) + b"Q"
    if kind == "list":
        return b"](" + b"".join(map(_assemble, node[1])) + b"e"
    if kind == "tuple":
        return b"(" + b"".join(map(_assemble, node[1])) + b"t"
    if kind == "dict":
        return b"}(" + b"".join(_assemble(k) + _assemble(v) for k, v in node[1]) + b"u"
    if kind in ("call", "new"):
        module, name = node[1].split(" ")
        return b"c" + f"{module}\n{name}\n".encode() + b"(" + b"".join(map(_assemble, node[2])) + (b"tR" if kind == "call" else b"t\x81")
    if kind == "build":
        return _assemble(node[1]) + _assemble(node[2]) + b"b"
    raise AssertionError(kind)


def _torch_zip(path: Path, pickle_bytes: bytes) -> None:
    import torch

    writer = torch._C.PyTorchFileWriter(str(path))
    writer.write_record("data.pkl", pickle_bytes, len(pickle_bytes))
    storage = bytes(64)  # the 16 floats every generated tensor's storage "0" holds
    writer.write_record("data/0", storage, len(storage))
    writer.write_end_of_file()


@st.composite
def _checkpoint_program(draw: st.DrawFn, canary: Path) -> tuple:
    program = _program(canary)
    top = draw(st.one_of(
        st.tuples(st.just("dict"), st.lists(st.tuples(st.sampled_from(_CHECKPOINT_KEYS).map(lambda k: ("str", k)), program), max_size=5)),
        program,
    ))
    return top


# Crashes the fuzz runs found, kept as examples (stem -> program).
_FOUND = {
    # a training checkpoint's format tag without its contents (was a KeyError)
    "format only": ("dict", [(("str", "format"), ("str", "yolotut-train/1"))]),
    # a model checkpoint whose config is a string (was an AttributeError)
    "string config": ("dict", [(("str", "state_dict"), ("none",)), (("str", "config"), ("str", ""))]),
    # a persistent id that is not torch's storage tuple (torch's unpickler asserts)
    "int persistent id": ("dict", [(("str", "model"), ("persistent id", 116))]),
    # a pickled module without its state as a key (the error message's repr() raised)
    "module as key": ("dict", [(("new", "models.yolo Model", []), ("none",))]),
}


@given(stem=file_stems, data=st.data(), container=st.sampled_from(["zip", "bare"]))
@example(stem="format only", data=None, container="zip")
@example(stem="string config", data=None, container="zip")
@example(stem="int persistent id", data=None, container="zip")
@example(stem="module as key", data=None, container="zip")
def test_checkpoint_loader_on_generated_pickles(folder: Path, stem: str, data: st.DataObject | None, container: str) -> None:
    canary = folder / "canary-executed"
    if data is None:
        program = _FOUND[stem]
    else:
        program = data.draw(_checkpoint_program(canary))
    pickle_bytes = b"\x80\x02" + _assemble(program) + b"."
    path = folder / f"{stem}.pt"
    if container == "zip":
        _torch_zip(path, pickle_bytes)
    else:
        path.write_bytes(pickle_bytes)
    with documented("checkpoint loader (generated pickles)", path, CheckpointError):
        assert isinstance(load_model(path), DetectionModel)
    assert not canary.exists(), f"a forbidden global ran: {program}"


# --- checkpoints: the official yolov5n.pt, truncated or with its pickle mutated ---------------


@pytest.fixture(scope="module")
def yolov5n_pt(mirror: Path) -> dict:
    path = mirror / YOLOV5N_PT
    with zipfile.ZipFile(path) as zf:
        records = {info.filename.split("/", 1)[1]: zf.read(info) for info in zf.infolist()}
    return {"bytes": path.read_bytes(), "records": records}


@given(stem=file_stems, data=st.data(), kind=st.sampled_from(["truncated", "mutated pickle"]))
def test_checkpoint_loader_on_damaged_yolov5n(folder: Path, yolov5n_pt: dict, stem: str, data: st.DataObject, kind: str) -> None:
    path = folder / f"{stem}.pt"
    if kind == "truncated":
        whole = yolov5n_pt["bytes"]
        path.write_bytes(whole[: data.draw(st.integers(min_value=0, max_value=len(whole) - 1))])
    else:
        import torch

        writer = torch._C.PyTorchFileWriter(str(path))
        for name, blob in yolov5n_pt["records"].items():
            if name in ("version", "byteorder", ".data/serialization_id"):
                continue  # the writer adds its own
            blob = data.draw(_mutated(blob)) if name == "data.pkl" else blob
            writer.write_record(name, blob, len(blob))
        writer.write_end_of_file()
    with documented(f"checkpoint loader ({kind} yolov5n.pt)", path, CheckpointError):
        assert isinstance(load_model(path), DetectionModel)


def test_the_pickle_assembler_builds_what_torch_loads(folder: Path) -> None:
    # The generator must really produce loadable pickles, or the fuzz test proves nothing.
    import torch

    program = ("dict", [(("str", "format"), ("str", "x")), (("str", "t"), ("tensor", 2, [2, 3], [3, 1]))])
    path = folder / "assembled.pt"
    _torch_zip(path, b"\x80\x02" + _assemble(program) + b".")
    loaded = torch.load(path, weights_only=True)
    assert loaded["format"] == "x" and loaded["t"].shape == (2, 3)
    refused = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    assert refused == []
    _torch_zip(path, b"\x80\x02" + _assemble(("call", "posix system", [("str", "true")])) + b".")
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == ["posix.system"]


def test_a_stem_with_spaces_and_unicode_is_named(folder: Path) -> None:
    path = write_bytes(folder, "modèle (1) 🚀", ".pt", b"not a checkpoint")
    with pytest.raises(CheckpointError, match="modèle"):
        load_model(path)
