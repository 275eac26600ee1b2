"""PyTorch, ONNX Runtime, DeepSparse and OpenVINO behind one :class:`Engine` interface.

OpenVINO's engine lives in :mod:`yolotut.inference.openvino_engine`.

Every engine shares the same pre- and post-processing, so that a speed or accuracy
difference between two engines comes from the engine and nothing else:

* ``preprocess``: letterbox to the square input size, BGR -> RGB, HWC -> CHW, and
  ``uint8`` (quantized-input graphs such as the blog author's) or ``float32 / 255``
  -- the ONNX graph's input dtype decides, never a flag.
* ``infer``: the decoded predictions ``[B, N, 5 + nc]`` (output 0 of every ONNX model
  this project uses).
* ``postprocess``: NMS, then boxes back into original-image pixels.

Engines with a fixed batch size (DeepSparse always; ONNX Runtime when the graph's
batch dimension is static) get short batches padded by repeating the last image;
the padding rows are dropped before NMS.
"""

from __future__ import annotations

import abc
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from yolotut.errors import OnnxModelError, UnavailableError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

# The one engine vocabulary: results, claims, the report, plots and the CLI all use these names.
ENGINES = ("pytorch", "onnxruntime", "deepsparse", "openvino")
# Spellings found in result files written by hand or by older versions of yolotut.
_ENGINE_ALIASES = {"torch": "pytorch", "ort": "onnxruntime", "onnx runtime": "onnxruntime", "onnx-runtime": "onnxruntime",
                   "ov": "openvino"}


def canonical_engine_name(name: str) -> str:
    """``name`` in the project's engine vocabulary (:data:`ENGINES`); unknown names come back lower-cased."""
    lowered = name.strip().lower()
    return _ENGINE_ALIASES.get(lowered, lowered)

# ONNX TensorProto element types -> numpy dtype names this project supports.
_ONNX_DTYPES = {1: "float32", 2: "uint8"}


class EngineUnavailableError(UnavailableError):
    """The engine cannot run here (missing package, unsupported CPU, no GPU, ...)."""


@dataclass
class LetterboxMeta:
    """How one image was letterboxed: enough to map boxes back onto it."""

    orig_shape: tuple[int, int]  # (h, w) of the original image
    ratio: float  # resize gain applied by letterbox (new / old)
    pad: tuple[float, float]  # (left, top) border in input pixels


@dataclass
class OnnxModelInfo:
    """What the ONNX file says about its input and its metadata props."""

    input_name: str
    input_dtype: str
    input_shape: list[int | str]  # symbolic dims stay strings
    names: list[str] | None = None
    imgsz: int | None = None
    stride: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def static_batch(self) -> int | None:
        dim = self.input_shape[0]
        return dim if isinstance(dim, int) and dim > 0 else None

    @property
    def static_imgsz(self) -> int | None:
        h, w = self.input_shape[2], self.input_shape[3]
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            if h != w:
                raise ValueError(f"non-square ONNX input {h}x{w} is not supported (export with a square --imgsz)")
            return h
        return None


def read_onnx_info(path: str | Path) -> OnnxModelInfo:
    """Read input name/dtype/shape and the ``names``/``imgsz``/``stride`` metadata of an ONNX file.

    :class:`~yolotut.errors.OnnxModelError` (naming the file) when it is no ONNX model, or
    not a YOLOv5 detector: one ``[B, 3, H, W]`` image input, decoded predictions out.
    """
    from yolotut.inference.onnx_file import check_detector_outputs, load_onnx, tensor_shape

    model = load_onnx(path)
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if len(inputs) != 1:
        raise OnnxModelError(
            f"{path}: expected one image input, found {[i.name for i in inputs]}; this is not a YOLOv5 "
            "detection model (export one with `yolotut export`)",
            path=path,
        )
    tensor_type = inputs[0].type.tensor_type
    dtype = _ONNX_DTYPES.get(tensor_type.elem_type)
    if dtype is None:
        raise OnnxModelError(
            f"{path}: input {inputs[0].name!r} has ONNX element type {tensor_type.elem_type}; "
            "only float32 and uint8 image inputs are supported (export with `yolotut export`)",
            path=path,
        )
    shape = tensor_shape(inputs[0])
    if len(shape) != 4 or shape[1] != 3:
        raise OnnxModelError(
            f"{path}: input {inputs[0].name!r} has shape {shape}, expected [batch, 3, height, width] (an RGB "
            "image batch); this is not a YOLOv5 detection model (export one with `yolotut export`)",
            path=path,
        )
    check_detector_outputs(model, path)
    meta = {p.key: p.value for p in model.metadata_props}
    info = OnnxModelInfo(inputs[0].name, dtype, shape, metadata=meta)
    try:
        if "names" in meta:
            names = json.loads(meta["names"])
            # YOLOv5 stores names as a dict {index: name}; this project as a list.
            info.names = [str(names[k]) for k in sorted(names, key=int)] if isinstance(names, dict) else [str(n) for n in names]
        if "imgsz" in meta:
            imgsz = json.loads(meta["imgsz"])
            info.imgsz = int(max(imgsz) if isinstance(imgsz, list) else imgsz)
        if "stride" in meta:
            stride = json.loads(meta["stride"])
            info.stride = int(max(stride) if isinstance(stride, list) else stride)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise OnnxModelError(
            f"{path}: unreadable metadata (names/imgsz/stride: {exc}); re-export the model with `yolotut export`",
            path=path,
        ) from exc
    if any(v is not None and v <= 0 for v in (info.imgsz, info.stride)):
        raise OnnxModelError(
            f"{path}: metadata imgsz={info.imgsz}, stride={info.stride} must be positive; re-export the model "
            "with `yolotut export`",
            path=path,
        )
    return info


class Engine(abc.ABC):
    """One detector behind a common interface; subclasses implement :meth:`infer`."""

    name: str = ""

    def __init__(
        self,
        model_path: str | None,
        batch_size: int,
        imgsz: int,
        input_dtype: str,
        names: Sequence[str] | None = None,
        fixed_batch: bool = False,
        stride: int = 32,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if imgsz % stride:
            raise ValueError(f"imgsz {imgsz} must be a multiple of the model stride {stride}")
        self.model_path = model_path
        self.batch_size = int(batch_size)
        self.imgsz = int(imgsz)
        self.input_dtype = input_dtype
        self.fixed_batch = fixed_batch
        self.stride = stride
        self._names = list(names) if names is not None else None
        self._num_classes: int | None = len(self._names) if self._names else None

    # -- description ------------------------------------------------------------

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch_size, 3, self.imgsz, self.imgsz)

    @property
    def num_classes(self) -> int:
        """Number of classes; a graph without ``names`` metadata reveals it on a dummy run."""
        if self._num_classes is None:
            pred = self.infer(self.dummy_input())
            self._num_classes = int(pred.shape[-1]) - 5
        return self._num_classes

    @property
    def names(self) -> list[str]:
        if self._names is None:
            return [f"class{i}" for i in range(self.num_classes)]
        return self._names

    @names.setter
    def names(self, value: Sequence[str]) -> None:
        value = list(value)
        if self._num_classes is not None and len(value) != self._num_classes:
            raise ValueError(f"model predicts {self._num_classes} classes but {len(value)} names were given: {value}")
        self._names = value
        self._num_classes = len(value)

    def info(self) -> dict[str, Any]:
        """What actually runs: engine, model file, input, batch, threads and versions."""
        return {
            "engine": self.name,
            "model": self.model_path,
            "input_dtype": self.input_dtype,
            "input_shape": list(self.input_shape),
            "batch_size": self.batch_size,
            "fixed_batch": self.fixed_batch,
            "imgsz": self.imgsz,
            **self._engine_info(),
        }

    @abc.abstractmethod
    def _engine_info(self) -> dict[str, Any]:
        """Engine-specific part of :meth:`info` (threads/cores, versions)."""

    # -- the pipeline -------------------------------------------------------------

    def dummy_input(self, seed: int | None = 0) -> np.ndarray:
        """A random batch in the engine's input dtype and shape (for warm-up and benchmarks)."""
        rng = np.random.default_rng(seed)
        if self.input_dtype == "uint8":
            return rng.integers(0, 256, size=self.input_shape, dtype=np.uint8)
        return rng.random(self.input_shape, dtype=np.float32)

    def new_input_buffer(self) -> np.ndarray:
        """A preallocated input batch for :meth:`preprocess` (``out=``) in hot loops."""
        return np.empty(self.input_shape, dtype=self.input_dtype)

    def preprocess(
        self, images: Sequence[np.ndarray], out: np.ndarray | None = None
    ) -> tuple[np.ndarray, list[LetterboxMeta]]:
        """Letterbox BGR images into one NCHW RGB batch of the engine's dtype.

        ``out`` (from :meth:`new_input_buffer`) is filled in place to avoid a
        per-call allocation; without it a new array is returned.
        """
        n = len(images)
        if n == 0:
            raise ValueError("preprocess() got no images")
        if n > self.batch_size:
            raise ValueError(f"{n} images do not fit in a batch of {self.batch_size}; split them first")
        rows = self.batch_size if self.fixed_batch else n
        if out is None or out.shape[0] < rows:
            out = np.empty((rows, 3, self.imgsz, self.imgsz), dtype=self.input_dtype)
        else:
            out = out[:rows]
        metas: list[LetterboxMeta] = []
        for i, image in enumerate(images):
            if image is None or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"expected a BGR HxWx3 image, got {None if image is None else image.shape}")
            metas.append(self._letterbox_into(image, out[i]))
        for i in range(n, rows):  # fixed-batch engines: repeat the last image
            out[i] = out[n - 1]
        return out, metas

    def prepare_letterboxed(self, batch: np.ndarray) -> np.ndarray:
        """Convert an already letterboxed ``uint8`` NCHW RGB batch (from :mod:`yolotut.training.data`)
        to the engine's input: dtype conversion and fixed-batch padding."""
        if batch.ndim != 4 or batch.shape[1:] != (3, self.imgsz, self.imgsz):
            raise ValueError(f"expected [n, 3, {self.imgsz}, {self.imgsz}] letterboxed images, got {batch.shape}")
        n = batch.shape[0]
        if n > self.batch_size:
            raise ValueError(f"{n} images do not fit in a batch of {self.batch_size}")
        if self.input_dtype == "float32":
            batch = batch.astype(np.float32) * np.float32(1 / 255)
        else:
            batch = np.ascontiguousarray(batch, dtype=np.uint8)
        if self.fixed_batch and n < self.batch_size:
            batch = np.concatenate([batch, np.repeat(batch[-1:], self.batch_size - n, axis=0)])
        return batch

    def _letterbox_into(self, image: np.ndarray, dst: np.ndarray) -> LetterboxMeta:
        """:func:`yolotut.boxes.letterbox` of a BGR image, written as RGB planes into ``dst``
        ([3, imgsz, imgsz]) in the engine's dtype.

        The resized image goes straight into the canvas, one plane per channel, instead of
        padding a copy and transposing it: the same values in about a third of the time
        (0.3 against 0.8-1.0 ms for a demo-video frame on 2 busy cores).
        """
        import cv2

        from yolotut.boxes import PAD_VALUE, letterbox_geometry

        g = letterbox_geometry(image.shape[:2], (self.imgsz, self.imgsz), auto=False)
        resized = image if g.size == (image.shape[1], image.shape[0]) else cv2.resize(image, g.size, interpolation=cv2.INTER_LINEAR)
        w1, h1 = g.size
        scale = None if self.input_dtype == "uint8" else np.float32(1 / 255)
        grey = PAD_VALUE if scale is None else PAD_VALUE * scale
        dst[:, : g.top] = grey
        dst[:, g.top + h1 :] = grey
        dst[:, :, : g.left] = grey
        dst[:, :, g.left + w1 :] = grey
        for plane, channel in zip(dst[:, g.top : g.top + h1, g.left : g.left + w1], cv2.split(resized)[::-1]):  # BGR -> RGB
            if scale is None:
                plane[...] = channel
            else:
                np.multiply(channel, scale, out=plane, casting="unsafe")
        return LetterboxMeta(image.shape[:2], float(g.ratio), (float(g.left), float(g.top)))

    @abc.abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a preprocessed batch; return decoded ``[B, N, 5 + nc]`` float32."""

    def postprocess(
        self,
        pred: np.ndarray,
        metas: Sequence[LetterboxMeta],
        conf_thres: float = 0.25,
        iou_thres: float = 0.45,
        multi_label: bool = False,
        max_det: int = 300,
        classes: Sequence[int] | None = None,
        agnostic: bool = False,
    ) -> list[np.ndarray]:
        """NMS, then boxes in original-image pixels: one ``[n, 6]`` array per image."""
        from yolotut.boxes import non_max_suppression, scale_boxes

        dets = non_max_suppression(
            pred[: len(metas)],
            conf_thres=conf_thres,
            iou_thres=iou_thres,
            classes=list(classes) if classes is not None else None,
            agnostic=agnostic,
            max_det=max_det,
            multi_label=multi_label,
        )
        out = []
        for det, meta in zip(dets, metas):
            det = np.asarray(det, dtype=np.float32)
            if len(det):
                det[:, :4] = scale_boxes(det[:, :4], meta.ratio, meta.pad, meta.orig_shape)
            out.append(det)
        return out

    def detect(
        self, images: Sequence[np.ndarray], conf_thres: float = 0.25, iou_thres: float = 0.45
    ) -> list[np.ndarray]:
        """Detections for any number of BGR images (batched by ``batch_size``)."""
        results: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            batch, metas = self.preprocess(chunk)
            results.extend(self.postprocess(self.infer(batch), metas, conf_thres, iou_thres))
        return results

    def _check_batch(self, batch: np.ndarray) -> None:
        if batch.dtype != np.dtype(self.input_dtype):
            raise ValueError(f"{self.name} engine expects {self.input_dtype} input, got {batch.dtype}")
        if batch.shape[1:] != self.input_shape[1:]:
            raise ValueError(f"{self.name} engine expects input [*, {', '.join(map(str, self.input_shape[1:]))}], got {list(batch.shape)}")
        if self.fixed_batch and batch.shape[0] != self.batch_size:
            raise ValueError(f"{self.name} engine was built for batch {self.batch_size}, got {batch.shape[0]}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model_path!r}, batch_size={self.batch_size}, imgsz={self.imgsz}, input={self.input_dtype})"


# --- PyTorch ------------------------------------------------------------------------


class TorchEngine(Engine):
    """Eager fp32 PyTorch (CPU, or CUDA when asked for and present); QAT checkpoints run fake-quantized.

    ``half``: fp16 weights and inputs, on a CUDA GPU only (how the Neural Magic post ran its
    GPU baselines); CPUs have no fast fp16 convolutions in torch.
    """

    name = "pytorch"

    def __init__(
        self,
        model_or_path: str | Path | torch.nn.Module,
        batch_size: int = 1,
        imgsz: int = 640,
        device: str = "cpu",
        threads: int | None = None,
        names: Sequence[str] | None = None,
        half: bool = False,
    ) -> None:
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineUnavailableError("device 'cuda' requested but torch sees no CUDA GPU (this torch build: " f"{torch.__version__})")
        if device != "cpu" and not device.startswith("cuda"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
        if half and not device.startswith("cuda"):
            raise ValueError("fp16 (half=True) is for a CUDA GPU; on the CPU run fp32 (half=False)")
        if threads is not None:
            # Process-wide in torch; recorded in info() so results say what ran.
            torch.set_num_threads(int(threads))
        if isinstance(model_or_path, torch.nn.Module):
            model, path = model_or_path, None
        else:
            # Also a training checkpoint (final.pt), so a QAT model runs fake-quantized.
            from yolotut.models.checkpoint import load_model

            path = str(model_or_path)
            model = load_model(path)
        model = (model.half() if half else model.float()).eval().to(device)
        stride = int(max(np.asarray(getattr(model, "stride", [32])).reshape(-1).tolist()))
        model_names = getattr(model, "names", None)
        if isinstance(model_names, dict):
            model_names = [model_names[k] for k in sorted(model_names)]
        super().__init__(path, batch_size, imgsz, "float32", names or model_names, stride=stride)
        self.model = model
        self.device = torch.device(device)
        self.threads = threads
        self.half = half

    def infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        self._check_batch(batch)
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device, non_blocking=False)
            out = self.model(x.half() if self.half else x)
            pred = out[0] if isinstance(out, (tuple, list)) else out
            # .cpu() synchronises CUDA, so timings around infer() are complete.
            return pred.float().cpu().numpy()

    def _engine_info(self) -> dict[str, Any]:
        import torch

        from yolotut.inference.export import is_quantized

        info: dict[str, Any] = {
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "cores": self.threads if self.threads is not None else torch.get_num_threads(),
            "precision": "fp32, fake-quantized INT8 (QAT)" if is_quantized(self.model) else ("fp16" if self.half else "fp32"),
            "versions": {"torch": torch.__version__},
        }
        if self.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(self.device)
        return info


# --- ONNX Runtime ---------------------------------------------------------------------


class OnnxRuntimeEngine(Engine):
    """ONNX Runtime, CPUExecutionProvider, all graph optimisations."""

    name = "onnxruntime"

    def __init__(
        self,
        path: str | Path,
        batch_size: int = 1,
        threads: int | None = None,
        imgsz: int | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        path = str(path)
        meta = read_onnx_info(path)
        imgsz = _resolve_imgsz(meta, imgsz, path)
        fixed = meta.static_batch is not None
        if fixed and meta.static_batch != batch_size:
            raise ValueError(
                f"{path} has a fixed batch size of {meta.static_batch} but batch_size={batch_size} was asked for; "
                f"use --batch-size {meta.static_batch}, the deepsparse engine (it rewrites the batch dimension), "
                "or re-export with a dynamic batch axis"
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Explicit, so that info() reports what ran (ORT's own default, 0, means
        # "physical cores", which is not what a container's CPU quota allows).
        self.threads = int(threads) if threads else available_cores()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._input_name = meta.input_name
        self._output_name = self.session.get_outputs()[0].name
        super().__init__(path, batch_size, imgsz, meta.input_dtype, names or meta.names, fixed_batch=fixed, stride=meta.stride or 32)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self._check_batch(batch)
        return self.session.run([self._output_name], {self._input_name: batch})[0]

    def _engine_info(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {
            "threads": self.threads,
            "cores": self.threads,
            "providers": self.session.get_providers(),
            "graph_optimization": "ORT_ENABLE_ALL",
            "versions": {"onnxruntime": ort.__version__},
        }


def available_cores() -> int:
    """Cores this process may run on (CPU affinity), not the host's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# --- DeepSparse -------------------------------------------------------------------------


def deepsparse_unavailable_reason() -> str | None:
    """Why DeepSparse cannot run on this machine, or ``None`` when it can."""
    import yolotut.compat  # noqa: F401  (NM_DISABLE_ANALYTICS before deepsparse loads)

    try:
        from deepsparse.cpu import cpu_architecture
    except ImportError as exc:
        return f"deepsparse is not installed or cannot load ({exc}); install deepsparse==1.8.0"
    except OSError as exc:  # its native library refuses unsupported CPUs at load time
        return f"deepsparse cannot load its native library on this machine: {exc}"
    arch = cpu_architecture()
    if arch.isa not in ("avx2", "avx512", "neon", "sve"):
        return f"DeepSparse needs AVX2, AVX-512, NEON or SVE; this CPU reports {arch.isa!r}"
    return None


class DeepSparseEngine(Engine):
    """Neural Magic DeepSparse (``deepsparse.compile_model``), fixed batch size."""

    name = "deepsparse"

    def __init__(
        self,
        path: str | Path,
        batch_size: int = 1,
        num_cores: int | None = None,
        imgsz: int | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        reason = deepsparse_unavailable_reason()
        if reason:
            raise EngineUnavailableError(reason)
        import deepsparse

        path = str(path)
        meta = read_onnx_info(path)
        imgsz = _resolve_imgsz(meta, imgsz, path)
        # compile_model rewrites the graph's batch dimension to batch_size, so models
        # exported with a static batch of 1 run at any batch size here.
        self.engine = deepsparse.compile_model(path, batch_size=batch_size, num_cores=num_cores)
        supported = self.engine.fraction_of_supported_ops
        if supported < 1.0:
            # DeepSparse then runs the unsupported part (or, below some point, the whole
            # graph) in its bundled ONNX Runtime: figures are not DeepSparse's own.
            warnings.warn(
                f"DeepSparse compiles only {supported:.0%} of {path}; the rest runs in its ONNX Runtime "
                "fallback, so speed figures are not DeepSparse's. Re-export with yolotut.inference.export.",
                RuntimeWarning,
                stacklevel=2,
            )
        super().__init__(path, batch_size, imgsz, meta.input_dtype, names or meta.names, fixed_batch=True, stride=meta.stride or 32)
        self._version = deepsparse.__version__

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self._check_batch(batch)
        # run() also checks C-contiguity (the native engine needs it); microseconds.
        return self.engine.run([batch])[0]

    def _engine_info(self) -> dict[str, Any]:
        return {
            "cores": self.engine.num_cores,
            "threads": self.engine.num_cores,
            "num_streams": self.engine.num_streams,
            "scheduler": str(self.engine.scheduler),
            "cpu_avx_type": self.engine.cpu_avx_type,
            "cpu_vnni": self.engine.cpu_vnni,
            "fraction_of_supported_ops": self.engine.fraction_of_supported_ops,
            "versions": {"deepsparse": self._version},
        }


# --- factory ------------------------------------------------------------------------------


def _resolve_imgsz(meta: OnnxModelInfo, imgsz: int | None, path: str) -> int:
    static = meta.static_imgsz
    if static is not None:
        if imgsz is not None and imgsz != static:
            raise ValueError(f"{path} has a fixed {static}x{static} input; --imgsz {imgsz} cannot change it")
        return static
    resolved = imgsz or meta.imgsz
    if resolved is None:
        raise ValueError(f"{path} has a dynamic input size and no 'imgsz' metadata; pass imgsz (--imgsz)")
    return int(resolved)


# The blog author's ONNX files carry no ``names`` metadata; their asset entries say
# they were trained on the one-class pistols dataset.
ASSET_CLASS_NAMES = {
    "blog-yolov5n-pq-hardswish": ["pistol"],
    "blog-yolov5n-pq-silu": ["pistol"],
}


def resolve_model_path(model: str | Path) -> Path:
    """A model file on disk, or a registered asset name (e.g. ``yolov5n``,
    ``blog-yolov5n-pq-hardswish``) fetched via :mod:`yolotut.assets`."""
    path = Path(model).expanduser()
    if path.exists():
        return path
    from yolotut import assets

    if str(model) in assets.REGISTRY:
        return Path(assets.fetch(str(model)))
    raise FileNotFoundError(
        f"model {str(model)!r} not found: give the path of a .pt or .onnx file, or an asset name "
        f"(`yolotut fetch --list` shows them)"
    )


def create_engine(
    model: str | Path | torch.nn.Module,
    engine: str,
    batch_size: int = 1,
    cores: int | None = None,
    imgsz: int | None = None,
    device: str = "cpu",
    names: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> Engine:
    """Build an engine for a ``.pt`` (pytorch), ``.onnx`` (onnxruntime / deepsparse / openvino)
    or OpenVINO IR ``.xml`` (openvino) model.

    ``cores`` is torch's thread count, ONNX Runtime's ``intra_op_num_threads``,
    DeepSparse's ``num_cores`` or OpenVINO's ``INFERENCE_NUM_THREADS``; ``None`` means all
    cores this process may use. ``options`` are the openvino engine's settings
    (``precision_hint``, ``performance_hint``, ``num_streams``, ``pinning``).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if cores is not None and cores < 1:
        raise ValueError(f"cores must be >= 1, got {cores}")
    if options and engine != "openvino":
        raise ValueError(f"engine options {sorted(options)} are for the openvino engine, not {engine!r}")
    if not isinstance(model, (str, Path)):
        if engine != "pytorch":
            raise ValueError(f"an in-memory torch model runs only on the pytorch engine, not {engine!r}; export it to ONNX first")
        return TorchEngine(model, batch_size, imgsz or 640, device=device, threads=cores, names=names)
    path = resolve_model_path(model)
    names = names or ASSET_CLASS_NAMES.get(str(model))
    suffix = path.suffix.lower()
    if engine == "pytorch":
        if suffix != ".pt":
            raise ValueError(f"the pytorch engine runs .pt checkpoints; {path} is {suffix or 'not'} a .pt file (use --engine onnxruntime or deepsparse for .onnx)")
        return TorchEngine(path, batch_size, imgsz or 640, device=device, threads=cores, names=names)
    if suffix != ".onnx" and not (engine == "openvino" and suffix == ".xml"):
        raise ValueError(f"the {engine} engine runs .onnx files; export {path} first (`yolotut export`)")
    if device not in ("cpu", "auto"):
        raise ValueError(f"the {engine} engine runs on the CPU only; device={device!r} is for --engine pytorch")
    if engine == "onnxruntime":
        return OnnxRuntimeEngine(path, batch_size, threads=cores, imgsz=imgsz, names=names)
    if engine == "openvino":
        from yolotut.inference.openvino_engine import OpenVinoEngine, openvino_options

        return OpenVinoEngine(path, batch_size, threads=cores, imgsz=imgsz, names=names, **openvino_options(options))
    return DeepSparseEngine(path, batch_size, num_cores=cores, imgsz=imgsz, names=names)
