"""OpenVINO (CPU plugin) behind the :class:`~yolotut.inference.engines.Engine` interface.

It reads the same ONNX files as ONNX Runtime and DeepSparse (and OpenVINO IR ``.xml``
files, which is what NNCF's post-training INT8 writes), with the same pre- and
post-processing. What OpenVINO decides by itself is pinned down and recorded, because
each of these moves its speed on a small CPU:

* ``precision_hint``: ``INFERENCE_PRECISION_HINT``. The plugin's default is bf16 on
  CPUs with AVX-512 BF16 or AMX (Zen 4/5, Sapphire Rapids), f32 elsewhere; ``"f32"``
  (this engine's default) keeps the float parts of every model bit-comparable with
  the other engines, ``"default"`` leaves the plugin's choice.
* ``performance_hint`` (``LATENCY``: one stream, the way every other engine here runs a
  synchronous request), ``num_streams``, ``threads`` (``INFERENCE_NUM_THREADS``) and
  ``pinning`` (``ENABLE_CPU_PINNING``).
* :meth:`OpenVinoEngine.kernels`: which kernel and precision each convolution runs
  with after compilation (the runtime model's ``primitiveType`` and
  ``runtimePrecision``), so an "INT8 model" that runs f32 convolutions shows it.

The input shape is made static (``batch_size`` x 3 x imgsz x imgsz) before
compilation, as DeepSparse does; short batches are padded.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from yolotut.inference.engines import (
    Engine,
    EngineUnavailableError,
    OnnxModelInfo,
    _resolve_imgsz,
    available_cores,
    read_onnx_info,
)

PRECISION_HINTS = ("f32", "bf16", "f16", "default")
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
# OpenVINO's runtime layer types that hold the model's arithmetic (what "INT8" is about).
COMPUTE_LAYERS = ("Convolution", "GroupConvolution", "FullyConnected", "MatMul", "Deconvolution")
# Where an IR file written by yolotut.inference.quantize keeps the ONNX file's metadata.
RT_INFO_KEY = "yolotut"
_ONNX_STYLE_DTYPES = {"u8": "uint8", "f32": "float32"}


def openvino_unavailable_reason() -> str | None:
    """Why OpenVINO cannot run here, or ``None`` when its CPU plugin is there."""
    try:
        import openvino as ov
    except ImportError as exc:
        return f"openvino is not installed or cannot load ({exc}); install openvino==2026.4.1"
    try:
        devices = ov.Core().available_devices
    except RuntimeError as exc:
        return f"OpenVINO cannot list its devices on this machine: {exc}"
    if "CPU" not in devices:
        return f"OpenVINO's CPU plugin is not available (devices: {devices})"
    return None


def read_model_info(path: str | Path) -> OnnxModelInfo:
    """Input name/dtype/shape and ``names``/``imgsz``/``stride`` of an ONNX or OpenVINO IR (``.xml``) file."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return read_onnx_info(path)
    if path.suffix.lower() != ".xml":
        raise ValueError(f"the openvino engine runs .onnx or OpenVINO IR .xml files; {path} is neither")
    import openvino as ov

    model = ov.Core().read_model(str(path))
    if len(model.inputs) != 1:
        raise ValueError(f"{path}: expected one image input, found {[i.get_any_name() for i in model.inputs]}")
    port = model.inputs[0]
    dtype = _ONNX_STYLE_DTYPES.get(port.get_element_type().get_type_name())
    if dtype is None:
        raise ValueError(f"{path}: input type {port.get_element_type()} is not supported (uint8 or float32 images only)")
    shape: list[int | str] = [d.get_length() if d.is_static else "?" for d in port.get_partial_shape()]
    meta = {
        key: model.get_rt_info([RT_INFO_KEY, key]).astype(str)
        for key in ("names", "imgsz", "stride", "source", "quantization")
        if model.has_rt_info([RT_INFO_KEY, key])
    }
    info = OnnxModelInfo(port.get_any_name(), dtype, shape, metadata=meta)
    if "names" in meta:
        info.names = list(json.loads(meta["names"]))
    if "imgsz" in meta:
        info.imgsz = int(json.loads(meta["imgsz"]))
    if "stride" in meta:
        stride = json.loads(meta["stride"])
        info.stride = int(max(stride) if isinstance(stride, list) else stride)
    return info


def _precision_name(hint: Any) -> str:
    # ov.Type prints as "<Type: 'float32'>"; its short names are f32 / bf16 / f16.
    return hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)


class OpenVinoEngine(Engine):
    """OpenVINO's CPU plugin, one synchronous infer request, static input shape."""

    name = "openvino"

    def __init__(
        self,
        path: str | Path,
        batch_size: int = 1,
        threads: int | None = None,
        imgsz: int | None = None,
        names: Sequence[str] | None = None,
        precision_hint: str = "f32",
        performance_hint: str = "LATENCY",
        num_streams: int | None = None,
        pinning: bool | None = None,
        profile: bool = False,
    ) -> None:
        reason = openvino_unavailable_reason()
        if reason:
            raise EngineUnavailableError(reason)
        if precision_hint not in PRECISION_HINTS:
            raise ValueError(f"precision_hint must be one of {PRECISION_HINTS}, got {precision_hint!r}")
        if performance_hint not in PERFORMANCE_HINTS:
            raise ValueError(f"performance_hint must be one of {PERFORMANCE_HINTS}, got {performance_hint!r}")
        if num_streams is not None and num_streams < 1:
            raise ValueError(f"num_streams must be >= 1, got {num_streams}")
        import openvino as ov

        path = str(path)
        meta = read_model_info(path)
        imgsz = _resolve_imgsz(meta, imgsz, path)
        core = ov.Core()
        model = core.read_model(path)
        model.reshape({model.inputs[0]: [batch_size, 3, imgsz, imgsz]})
        # Explicit threads, as for ONNX Runtime: the plugin's own default counts the
        # host's cores, not the ones this process may use.
        self.threads = int(threads) if threads else available_cores()
        config: dict[str, Any] = {"PERFORMANCE_HINT": performance_hint, "INFERENCE_NUM_THREADS": self.threads}
        if precision_hint != "default":
            config["INFERENCE_PRECISION_HINT"] = precision_hint
        if num_streams is not None:
            config["NUM_STREAMS"] = int(num_streams)
        if pinning is not None:
            config["ENABLE_CPU_PINNING"] = bool(pinning)
        if profile:  # per-layer timings for layer_times(); costs a little on every run
            config["PERF_COUNT"] = True
        try:
            self.compiled = core.compile_model(model, "CPU", config)
        except RuntimeError as exc:
            # OpenVINO lists AMD CPUs as unsupported; a plugin that refuses this CPU or
            # this graph says so here rather than in the middle of a benchmark sweep.
            raise EngineUnavailableError(f"OpenVINO {ov.__version__} could not compile {path} for this CPU: {exc}") from exc
        self.request = self.compiled.create_infer_request()
        self.config = config
        self.requested_precision_hint = precision_hint
        self._version = ov.__version__
        self._kernels: dict[str, int] | None = None
        super().__init__(path, batch_size, imgsz, meta.input_dtype, names or meta.names, fixed_batch=True, stride=meta.stride or 32)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self._check_batch(batch)
        self.request.infer({0: batch})
        # The output tensor is the request's own buffer, overwritten by the next call.
        return self.request.get_output_tensor(0).data.copy()

    def kernels(self) -> dict[str, int]:
        """How many compute layers run with each ``layer type / kernel / precision`` after compilation.

        E.g. ``{"Convolution / brgconv_avx512_core_amx / i8": 57, ...}``: an INT8 model
        whose convolutions show ``f32`` here runs float kernels on dequantized weights.
        """
        if self._kernels is None:
            counts: Counter[str] = Counter()
            for op in self.compiled.get_runtime_model().get_ordered_ops():
                info = op.get_rt_info()
                layer = info["layerType"].astype(str) if "layerType" in info else ""
                if layer not in COMPUTE_LAYERS:
                    continue
                kernel = info["primitiveType"].astype(str) if "primitiveType" in info else "?"
                precision = info["runtimePrecision"].astype(str) if "runtimePrecision" in info else "?"
                counts[f"{layer} / {kernel} / {precision}"] += 1
            self._kernels = dict(sorted(counts.items()))
        return self._kernels

    def layer_times(self, runs: int = 20) -> dict[str, float]:
        """Milliseconds per run spent in each ``layer type / kernel / precision``, largest first
        (the plugin's own counters over ``runs`` runs of a random batch; needs ``profile=True``)."""
        if not self.config.get("PERF_COUNT"):
            raise ValueError("layer_times() needs the engine built with profile=True (OpenVINO's PERF_COUNT)")
        batch = self.dummy_input()
        totals: Counter[str] = Counter()
        for _ in range(runs):
            self.request.infer({0: batch})
            for layer in self.request.profiling_info:
                if layer.real_time.total_seconds() > 0:
                    totals[f"{layer.node_type} / {layer.exec_type}"] += layer.real_time.total_seconds() * 1000 / runs
        return {key: round(ms, 3) for key, ms in totals.most_common()}

    def int8_compute_fraction(self) -> float:
        """Share of the compute layers that run an integer kernel (``i8``/``u8`` runtime precision)."""
        kernels = self.kernels()
        total = sum(kernels.values())
        integer = sum(n for key, n in kernels.items() if key.rsplit(" / ", 1)[-1] in ("i8", "u8"))
        return integer / total if total else 0.0

    def _engine_info(self) -> dict[str, Any]:
        prop = self.compiled.get_property
        return {
            "threads": int(prop("INFERENCE_NUM_THREADS")),
            "cores": self.threads,
            "num_streams": int(prop("NUM_STREAMS")),
            "precision_hint": _precision_name(prop("INFERENCE_PRECISION_HINT")),
            "precision_hint_requested": self.requested_precision_hint,
            "performance_hint": str(prop("PERFORMANCE_HINT")).rsplit(".", 1)[-1],
            "cpu_pinning": bool(prop("ENABLE_CPU_PINNING")),
            "kernels": self.kernels(),
            "int8_compute_fraction": round(self.int8_compute_fraction(), 3),
            "versions": {"openvino": self._version.split("-", 1)[0]},
        }


def openvino_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``options`` checked against :class:`OpenVinoEngine`'s settings (a clear error for any other key)."""
    allowed = {"precision_hint", "performance_hint", "num_streams", "pinning", "profile"}
    options = dict(options or {})
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"unknown openvino option(s) {unknown}; the openvino engine takes {sorted(allowed)}")
    return options
