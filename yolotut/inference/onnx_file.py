"""Reading an ONNX file a user hands to yolotut, with one clear error for every way it
can be wrong.

``onnx.load`` on a text file, a truncated download or a PyTorch checkpoint ends in a
protobuf ``DecodeError`` ("Truncated message.", "Unexpected end-group tag.") that names
neither the file nor what to do; an empty file even loads, as an empty model. Every
reader of user-supplied ONNX files (the engines, ``yolotut sparsity``, the sparsity
tools) goes through :func:`load_onnx`, which raises
:class:`~yolotut.errors.OnnxModelError` naming the file, what is wrong and the fix.
:func:`check_detector_outputs` says whether the graph is a YOLOv5 detector at all.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from yolotut.errors import OnnxModelError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import onnx

__all__ = ["check_detector_outputs", "drop_unused_initializers", "load_onnx", "tensor_shape"]

_EXPORT_HINT = "export it again (`yolotut export`) or fetch it again (`yolotut fetch ...`)"


def _what_it_is(path: Path) -> str:
    """A guess at what a file that is not ONNX is, from its first bytes."""
    with path.open("rb") as fh:
        head = fh.read(512)
    if zipfile.is_zipfile(path):
        return "a zip archive (a PyTorch .pt checkpoint?), not an ONNX model; export checkpoints with `yolotut export`"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"not an ONNX model, or a truncated or corrupt one; {_EXPORT_HINT}"
    if text and all(c.isprintable() or c.isspace() for c in text):
        return "a text file, not an ONNX model; give the path of an .onnx model (`yolotut export` writes one)"
    return f"not an ONNX model, or a truncated or corrupt one; {_EXPORT_HINT}"


def load_onnx(path: str | os.PathLike[str], *, check: bool = True, external_data: bool = False) -> onnx.ModelProto:
    """The parsed model in ``path``; :class:`OnnxModelError` if it is not a usable ONNX file.

    ``check`` also runs ``onnx.checker.check_model`` (a few ms for YOLOv5), so that a
    file that parses but is no valid graph fails here, not inside an engine.
    ``external_data``: also load tensors stored beside the file.
    """
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if path.is_dir():
        raise OnnxModelError(f"{path}: is a folder, not an ONNX file; give the .onnx file inside it", path=path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model {path} does not exist; check the path (`yolotut export` writes one)")
    size = path.stat().st_size
    if size == 0:
        raise OnnxModelError(f"{path}: the file is empty (0 bytes), not an ONNX model; {_EXPORT_HINT}", path=path)
    try:
        model = onnx.load(str(path), load_external_data=external_data)
    except (DecodeError, UnicodeDecodeError, RecursionError) as exc:
        # protobuf's pure-Python parser raises UnicodeDecodeError for a string field
        # that is not UTF-8, and RecursionError for absurdly nested groups.
        raise OnnxModelError(
            f"{path}: cannot parse it as ONNX ({type(exc).__name__}: {_first_line(exc)}; {size} bytes): "
            f"{_what_it_is(path)}",
            path=path,
        ) from exc
    if not model.graph.node and not model.graph.input and not model.graph.output:
        # protobuf parses many non-ONNX byte strings as a message with no known fields.
        raise OnnxModelError(f"{path}: holds no ONNX graph: {_what_it_is(path)}", path=path)
    if check:
        try:
            onnx.checker.check_model(model)
        except (onnx.checker.ValidationError, ValueError) as exc:
            raise OnnxModelError(
                f"{path}: not a valid ONNX graph ({_first_line(exc)}); {_EXPORT_HINT}", path=path
            ) from exc
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def tensor_shape(value_info: onnx.ValueInfoProto) -> list[int | str]:
    """The declared shape of a graph input or output; symbolic or unknown dims stay strings."""
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]


def check_detector_outputs(model: onnx.ModelProto, path: str | os.PathLike[str]) -> None:
    """:class:`OnnxModelError` unless output 0 can be YOLOv5's decoded predictions ``[B, N, 5 + nc]``.

    Only what the file declares is checked: a rank other than 3, or a static last
    dimension below 6 (4 box values, objectness, at least one class), cannot be a
    YOLOv5 detection output; symbolic dimensions pass.
    """
    outputs = list(model.graph.output)
    if not outputs:
        raise OnnxModelError(f"{path}: the graph has no outputs; {_EXPORT_HINT}", path=path)
    shape = tensor_shape(outputs[0])
    last = shape[-1] if shape else None
    has_shape = outputs[0].type.tensor_type.HasField("shape")
    if has_shape and (len(shape) != 3 or (isinstance(last, int) and 0 < last < 6)):
        raise OnnxModelError(
            f"{path}: output {outputs[0].name!r} has shape {shape}, not YOLOv5's decoded predictions "
            "[batch, boxes, 5 + classes]; this is not a YOLOv5 detection model (export one with `yolotut export`)",
            path=path,
        )


def drop_unused_initializers(graph: onnx.GraphProto) -> None:
    """Remove the initializers no node reads any more (left behind by a graph rewrite)."""
    used = {name for node in graph.node for name in node.input}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)
