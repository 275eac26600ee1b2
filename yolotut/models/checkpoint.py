"""Loading official YOLOv5 ``.pt`` checkpoints without trusting their pickle, and the
project's own (plain, weights-only) checkpoints.

Why this design
---------------
An Ultralytics checkpoint is ``torch.save({"model": <pickled models.yolo.Model>, ...})``:
loading it the usual way (``weights_only=False``) imports the ``models`` package of the
YOLOv5 repository and lets the pickle call *any* global -- ``os.system`` included.

Here every load goes through torch's own **weights-only unpickler**
(``torch.load(weights_only=True)``), which only ever calls tensor-rebuild functions and
never imports anything by name. The YOLOv5 classes are made loadable by registering
inert stand-ins under their pickled names with ``torch.serialization.safe_globals``:
each stand-in is a bare ``nn.Module`` subclass, so unpickling only does
``object.__new__`` + ``nn.Module.__setstate__`` (a ``__dict__`` update) -- no constructor,
no ``forward``, no code from the file. The same goes for the ``torch.nn`` layer classes:
they are stand-ins too, so nothing of them is executed either. The stand-in tree is only
read as data (parameters, buffers, ``yaml``, ``names``, activation type straight from the
unpickled ``__dict__``; not even ``state_dict()``, which would call pickled hooks); a clean
:class:`~yolotut.models.yolo.DetectionModel` is rebuilt from the ``yaml`` dict and the
weights are copied in (fp16 -> fp32).

Why not ``torch.load(pickle_module=<restricted Unpickler>)``: ``find_class`` allowlists
only which globals may be *looked up*; ``REDUCE`` would still call any allowed callable
with arguments from the file and ``BUILD`` would run ``__setstate__`` of whatever it
built. The weights-only unpickler restricts ``REDUCE``/``NEWOBJ``/``BUILD`` to the
allowlist as well, and it is maintained (and fuzzed) by PyTorch. The allowlist is
registered only for the duration of one load (``safe_globals`` is a context manager over
torch's process-wide set, so do not load checkpoints from several threads at once).

Before unpickling, the file's globals are listed statically
(``torch.serialization.get_unsafe_globals_in_checkpoint``) so a refusal names the
offending global (``posix.system``, ``builtins.eval`` ...) instead of failing halfway.
Files that are not ``torch.save`` zip archives are never unpickled at all.
"""

from __future__ import annotations

import _compat_pickle  # stdlib: the Python 2 <-> 3 global names pickle itself uses
import functools
import io
import math
import os
import pickle
import pickletools
import struct
import tempfile
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from yolotut.errors import InputError
from yolotut.models.yolo import DetectionModel, model_from_config

__all__ = [
    "FORMAT",
    "CheckpointError",
    "NotATrainingCheckpointError",
    "UnsafeCheckpointError",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
]

FORMAT = "yolotut-checkpoint-v1"


class CheckpointError(InputError):
    """The file is missing pieces, corrupt, truncated or of an unknown layout."""


class UnsafeCheckpointError(CheckpointError):
    """The file's pickle references a global outside the allowlist; nothing was run."""


class NotATrainingCheckpointError(CheckpointError):
    """The file is not a training run's ``last.pt`` / ``final.pt`` (it may still be a model checkpoint)."""


# What torch's zip reader and weights-only unpickler raise on a damaged file (found by
# fuzzing: a mutated pickle gets to call an allowed rebuild function with the wrong
# arguments, index a missing memo entry, read a short struct ...). Nothing of ours runs
# inside torch.load, so each of these means "this file is unreadable", never a bug here.
# AssertionError: torch's weights-only unpickler asserts on a damaged persistent id.
_UNREADABLE = (
    RuntimeError, EOFError, OSError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, TypeError, KeyError,
    IndexError, AttributeError, struct.error, OverflowError, RecursionError, AssertionError,
)


# Ultralytics YOLOv5 v6.x/v7.0 classes a detection checkpoint pickles ("Model" was
# renamed "DetectionModel" in v7.0).
_ULTRALYTICS_CLASSES = (
    "models.yolo.Model",
    "models.yolo.DetectionModel",
    "models.yolo.Detect",
    "models.common.Conv",
    "models.common.C3",
    "models.common.Bottleneck",
    "models.common.SPPF",
    "models.common.Concat",
)
# torch.nn layers of those models -> our activation name (None: not an activation).
_TORCH_CLASSES: dict[str, str | None] = {
    "torch.nn.modules.container.Sequential": None,
    "torch.nn.modules.container.ModuleList": None,
    "torch.nn.modules.conv.Conv2d": None,
    "torch.nn.modules.batchnorm.BatchNorm2d": None,
    "torch.nn.modules.pooling.MaxPool2d": None,
    "torch.nn.modules.upsampling.Upsample": None,
    "torch.nn.modules.linear.Identity": None,
    "torch.nn.modules.activation.SiLU": "silu",
    "torch.nn.modules.activation.Hardswish": "hardswish",
    "torch.nn.modules.activation.ReLU": "relu",
}


class _PickledModule(nn.Module):
    """Inert stand-in for a pickled module class: holds the unpickled ``__dict__`` only."""

    pickled_name: str = ""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{self.pickled_name} from a checkpoint is a weights holder and cannot run")


@functools.cache
def _stand_ins() -> tuple[tuple[type, str], ...]:
    out = []
    for full in (*_ULTRALYTICS_CLASSES, *_TORCH_CLASSES):
        module, name = full.rsplit(".", 1)
        cls = type(name, (_PickledModule,), {"__module__": module, "pickled_name": full})
        out.append((cls, full))
    return tuple(out)


# -- reading -------------------------------------------------------------------------------
def _python3_name(name: str) -> str:
    """'commands.Popen' -> 'commands.Popen (= subprocess.Popen)': protocol-2 pickles
    spell some globals by their Python 2 names, which would hide what they are."""
    module, _, attr = name.rpartition(".")
    mapped = _compat_pickle.NAME_MAPPING.get((module, attr))
    if mapped is None and module in _compat_pickle.IMPORT_MAPPING:
        mapped = (_compat_pickle.IMPORT_MAPPING[module], attr)
    return f"{name} (= {'.'.join(mapped)})" if mapped and ".".join(mapped) != name else name


def _refuse(path: Path, refused: list[str] | set[str]) -> UnsafeCheckpointError:
    names = ", ".join(_python3_name(n) for n in sorted(refused))
    return UnsafeCheckpointError(
        f"{path}: refusing to load it: its pickle references {names}, which is "
        "not on the allowlist of a YOLOv5 checkpoint. This file is not a YOLOv5 checkpoint this "
        "loader trusts; nothing in it was executed. Re-export the weights from a trusted source."
    )


def _corrupt(path: Path, err: BaseException | str) -> CheckpointError:
    return CheckpointError(
        f"{path}: cannot read it as a PyTorch checkpoint (truncated, corrupt or not a torch.save "
        f"file): {err}. Download or copy it again (`yolotut fetch ...`)."
    )


def _raw_pickle_globals(data: bytes) -> set[str]:
    """Globals named in the pickle stream(s) at the start of ``data``, read statically."""
    found: set[str] = set()
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        strings: list[str] = []
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name == "GLOBAL":
                    found.add(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.add(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
        except (ValueError, EOFError, pickle.UnpicklingError, UnicodeDecodeError):
            break
    return found


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The restricted, weights-only unpickled content of a checkpoint (CPU tensors).

    Ultralytics model objects come back as inert stand-ins (see the module docstring).
    Raises :class:`UnsafeCheckpointError` for any global outside the allowlist and
    :class:`CheckpointError` for unreadable files.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        # Never unpickle anything but torch's zip format; still name a hostile global.
        with path.open("rb") as fh:
            head = fh.read(1 << 20)
        allowed = set(_allowed_names())
        refused = {g for g in _raw_pickle_globals(head) if g not in allowed}
        if refused:
            raise _refuse(path, refused)
        raise _corrupt(path, "not a torch.save zip archive (the pre-1.6 legacy format is not supported)")
    with torch.serialization.safe_globals(list(_stand_ins())):
        try:
            refused = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except _UNREADABLE as err:
            raise _corrupt(path, err) from err
        if refused:
            raise _refuse(path, refused)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            # Static scan passed but the weights-only unpickler still refused (e.g. a
            # reduce call on a class): same verdict, torch's reason attached.
            raise UnsafeCheckpointError(
                f"{path}: refused by the weights-only unpickler; this file is not a YOLOv5 "
                f"checkpoint this loader trusts ({err})"
            ) from err
        except _UNREADABLE as err:
            raise _corrupt(path, err) from err
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, got {type(obj).__name__}")
    return obj


def _allowed_names() -> list[str]:
    ours = [name for _, name in _stand_ins()]
    try:  # torch's default weights-only allowlist (private, only used to word the error)
        from torch._weights_only_unpickler import _get_allowed_globals
    except ImportError:
        return ours
    return [*_get_allowed_globals(), *ours]


# -- loading -------------------------------------------------------------------------------
def load_checkpoint(path: str | os.PathLike) -> DetectionModel:
    """A :class:`DetectionModel` (fp32, CPU, eval mode) from ``path``.

    Accepts official Ultralytics YOLOv5 v6.x/v7.0 detection checkpoints
    (``yolov5n.pt`` ...; EMA weights preferred when present) and files written by
    :func:`save_checkpoint`.
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    if ckpt.get("format") == FORMAT or {"config", "state_dict"} <= set(ckpt):
        model = _from_project(ckpt, path)
    elif isinstance(ckpt.get("ema") or ckpt.get("model"), _PickledModule):
        model = _from_ultralytics(ckpt.get("ema") or ckpt["model"], path)
    else:
        raise CheckpointError(
            f"{path}: unknown checkpoint layout (keys: {sorted(map(_key_name, ckpt))}); expected an "
            "Ultralytics YOLOv5 checkpoint ('model') or a yolotut one ('config' + 'state_dict')"
        )
    return model.eval()


def _key_name(key: Any) -> str:
    # Never str() an object out of the file: a stand-in module without its state fails in repr().
    return key if isinstance(key, str) else f"<{type(key).__name__}>"


def _load_weights(model: DetectionModel, state_dict: Any, path: Path) -> None:
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"{path}: the state_dict is not a mapping of names to tensors")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
    ours = model.state_dict()
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    wrong = sorted(k for k in ours.keys() & state.keys() if ours[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong))
            if keys
        )
        raise CheckpointError(f"{path}: weights do not fit the architecture in its config ({detail})")
    model.load_state_dict(state, strict=True)


def _from_project(ckpt: Mapping[str, Any], path: Path) -> DetectionModel:
    if not isinstance(ckpt["config"], Mapping):
        raise CheckpointError(f"{path}: invalid model config: a {type(ckpt['config']).__name__}, not a mapping")
    try:
        model = model_from_config(ckpt["config"])
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise CheckpointError(f"{path}: invalid model config: {err}") from err
    _load_weights(model, ckpt["state_dict"], path)
    return model


def _walk(module: _PickledModule, prefix: str = "") -> Iterator[tuple[str, _PickledModule]]:
    """(name, module) pairs of a stand-in tree, read from the raw ``__dict__``.

    Deliberately not ``nn.Module.modules()``/``state_dict()``: ``state_dict()`` calls the
    hook dicts that came out of the file, and nothing from the file may be called.
    """
    yield prefix, module
    children = module.__dict__.get("_modules") or {}
    if not isinstance(children, Mapping):
        raise CheckpointError(f"malformed pickled module {prefix or '<root>'}")
    for name, child in children.items():
        if not isinstance(child, _PickledModule):
            kind = type(child).__name__
            raise CheckpointError(f"pickled module {prefix}{name} is a {kind}, not a module")
        yield from _walk(child, f"{prefix}{name}.")


def _pickled_state_dict(src: _PickledModule, path: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for prefix, module in _walk(src):
        skip = module.__dict__.get("_non_persistent_buffers_set")
        skip = skip if isinstance(skip, (set, frozenset)) else set()
        for attr in ("_parameters", "_buffers"):
            for name, value in (module.__dict__.get(attr) or {}).items():
                if value is None or (attr == "_buffers" and name in skip):
                    continue
                if not isinstance(value, torch.Tensor):
                    kind = type(value).__name__
                    raise CheckpointError(f"{path}: {prefix}{name} is a {kind}, not a tensor")
                state[prefix + name] = value.detach()
    return state


def _activation_of(src: _PickledModule, path: Path) -> str:
    found = {_TORCH_CLASSES.get(type(m).pickled_name) for _, m in _walk(src)}
    found.discard(None)
    if len(found) != 1:
        raise CheckpointError(
            f"{path}: expected one activation type in the model, found {sorted(found) or 'none'}"
        )
    return found.pop()


def _from_ultralytics(src: _PickledModule, path: Path) -> DetectionModel:
    cfg = src.__dict__.get("yaml")
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: the pickled model has no 'yaml' architecture dict")
    names = src.__dict__.get("names")
    try:
        model = DetectionModel(cfg, activation=_activation_of(src, path), names=names)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        raise CheckpointError(f"{path}: unsupported YOLOv5 architecture: {err}") from err
    _load_weights(model, _pickled_state_dict(src, path), path)
    stride = src.__dict__.get("stride")
    if isinstance(stride, torch.Tensor) and not torch.equal(stride.float().cpu(), model.stride):
        raise CheckpointError(
            f"{path}: checkpoint strides {stride.tolist()} != built {model.stride.tolist()}"
        )
    return model


# -- saving --------------------------------------------------------------------------------
_SAFE_LEAVES = (
    type(None), bool, int, float, complex, str, bytes, torch.Tensor, torch.Size, torch.dtype, torch.device
)


def _check_safe(obj: Any, where: str) -> None:
    if isinstance(obj, _SAFE_LEAVES):
        return
    if isinstance(obj, (dict, OrderedDict)):
        for k, v in obj.items():
            _check_safe(k, f"{where} key {k!r}")
            _check_safe(v, f"{where}[{k!r}]")
        return
    if isinstance(obj, (list, tuple, set)):
        for i, v in enumerate(obj):
            _check_safe(v, f"{where}[{i}]")
        return
    raise TypeError(
        f"save_checkpoint: {where} is a {type(obj).__module__}.{type(obj).__qualname__}; checkpoints "
        "hold only tensors and plain Python values so they load with weights_only=True. Convert it "
        "(str(path), float(x), obj.state_dict(), ...)."
    )


def save_checkpoint(model: DetectionModel, path: str | os.PathLike, **extra: Any) -> Path:
    """Write ``{"format", "config", "state_dict", **extra}`` to ``path`` atomically.

    ``extra`` (epoch, optimizer state, metrics ...) must be tensors and plain Python values,
    so the file loads with ``weights_only=True``. Returns the path.
    """
    if not isinstance(model, DetectionModel):
        raise TypeError(f"save_checkpoint expects a DetectionModel, got {type(model).__name__}")
    if model.fused:
        raise ValueError("save_checkpoint: the model was fuse()d (BatchNorm folded); save it before fusing")
    clash = {"format", "config", "state_dict"} & set(extra)
    if clash:
        raise ValueError(f"save_checkpoint: {sorted(clash)} are reserved keys")
    for key, value in extra.items():
        _check_safe(value, f"extra[{key!r}]")
    ckpt = {
        "format": FORMAT,
        "config": model.config,
        "state_dict": OrderedDict((k, v.detach().cpu()) for k, v in model.state_dict().items()),
        **extra,
    }
    return save_atomically(ckpt, path)


_TORN_SUFFIX = ".tmp"  # save_atomically writes ".<name>.<random>.tmp" beside the target


def save_atomically(payload: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` next to the target, then rename: an interrupted save never leaves a
    truncated file under the final name (what resume-from-``last.pt`` relies on)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TORN_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_torn_writes(path: str | os.PathLike) -> list[Path]:
    """Delete what :func:`save_atomically` left beside ``path`` when its process was
    killed mid-write (SIGKILL, power loss): temporary files, never the file itself."""
    path = Path(path)
    torn = sorted(path.parent.glob(f".{path.name}.*{_TORN_SUFFIX}"))
    for leftover in torn:
        leftover.unlink(missing_ok=True)
    return torn


# --- training checkpoints (``last.pt`` / ``final.pt`` of a run) ------------------------------

TRAINING_FORMAT = "yolotut-train/1"
# What every training checkpoint holds (loop._checkpoint writes more).
_TRAINING_KEYS = frozenset({"config", "model_config", "model", "optimizer", "epoch", "quantized", "recipe_text",
                            "recipe_variables", "history"})


def save_training_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write a training run's state atomically: a crash mid-write never leaves a truncated ``last.pt``."""
    return save_atomically(payload, path)


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A run's saved state (model, optimizer, EMA, epoch, recipe...).

    :class:`NotATrainingCheckpointError` when the file is none (unreadable, or another
    kind of checkpoint), :class:`CheckpointError` when it says it is one but lacks what
    one holds.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except _UNREADABLE as exc:
        # corrupt files, and pickles that are not plain tensors and containers (an
        # Ultralytics checkpoint, say)
        raise NotATrainingCheckpointError(
            f"{path}: not a readable yolotut training checkpoint ({_first_line(exc)})", path=path
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != TRAINING_FORMAT:
        raise NotATrainingCheckpointError(
            f"{path}: not a yolotut training checkpoint (expected format {TRAINING_FORMAT})", path=path
        )
    missing = sorted(_TRAINING_KEYS - set(payload))
    if missing:
        raise CheckpointError(
            f"{path}: a yolotut training checkpoint without {missing}; it is damaged: use the run's "
            "other checkpoint (final.pt / last.pt) or train again",
            path=path,
        )
    return payload


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def model_from_training_payload(payload: Mapping[str, Any]) -> DetectionModel:
    """The model a training checkpoint holds, SparseML structure (QAT modules) included, in eval mode.

    A checkpoint saved after quantization-aware training started holds fake-quant
    scales and observers: the recipe's structure is re-applied before loading them.
    """
    from yolotut.recipes import manager_from_yaml, quiet_loggers

    model = model_from_config(payload["model_config"])
    if payload["quantized"]:
        manager = manager_from_yaml(payload["recipe_text"], payload["recipe_variables"])
        manager.apply_structure(model, epoch=math.inf, loggers=quiet_loggers())
    model.load_state_dict(payload["model"])
    return model.eval()


def load_trained_model(path: str | os.PathLike) -> DetectionModel:
    """Rebuild a trained model from a run's ``final.pt`` / ``last.pt``, in eval mode."""
    payload = load_training_checkpoint(path)
    try:
        return model_from_training_payload(payload)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
        raise CheckpointError(
            f"{path}: a training checkpoint whose model does not rebuild ({type(exc).__name__}: {_first_line(exc)}); "
            "it is damaged or from an incompatible yolotut version: train again",
            path=path,
        ) from exc


def load_model(path: str | os.PathLike) -> DetectionModel:
    """Any checkpoint this project reads, in eval mode: a training checkpoint
    (``final.pt`` / ``last.pt``, QAT structure included) or a model checkpoint (ours or
    Ultralytics')."""
    try:
        return load_trained_model(path)
    except NotATrainingCheckpointError:
        # The model loader reads it, or says why it cannot.
        return load_checkpoint(path)
