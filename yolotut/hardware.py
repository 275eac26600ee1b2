"""What machine the numbers were measured on: CPU model, cores, SIMD flags, versions.

DeepSparse's speed depends on the CPU's instruction sets (AVX2, AVX-512, VNNI for INT8,
AMX) and on how many cores the process may use, so every benchmark records this report
next to its figures. Nothing heavy is imported except torch, lazily, for
``cuda_available``.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "cpu_fingerprint",
    "deepsparse_support",
    "environment_report",
    "package_versions",
    "parse_cpuinfo",
]

CPUINFO = Path("/proc/cpuinfo")

# Distribution names, keyed by the short names the report uses.
PACKAGES = {
    "torch": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "deepsparse": "deepsparse",
    "sparseml": "sparseml",
    "sparsezoo": "sparsezoo",
    "openvino": "openvino",
    "nncf": "nncf",
    "numpy": "numpy",
    "opencv": "opencv-python-headless",
}
# Other wheels that provide the same `cv2` module.
_OPENCV_ALTERNATIVES = ("opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless")


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """CPU model and the SIMD flags of interest from the text of ``/proc/cpuinfo``.

    Only the first processor block is read: all cores of a machine share one model.
    ``avx512_vnni`` also accepts the ``avx512vnni`` spelling some kernels/tools use;
    ``amx`` is true if any AMX flag (``amx_tile``, ``amx_int8``, ``amx_bf16``) is set.
    ``avx512_bf16`` decides OpenVINO's default inference precision (bf16 with it, f32
    without); ``avx_vnni`` is the 256-bit VNNI of AVX2-class cores (Alder Lake, Zen 5).
    """
    model: str | None = None
    flags: set[str] = set()
    for line in text.splitlines():
        if not line.strip():
            if model is not None or flags:
                break  # end of the first processor block
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key in ("model name", "processor name", "cpu model") and model is None:
            model = value.strip() or None
        elif key in ("flags", "features"):  # x86 / ARM spelling
            flags.update(value.lower().split())
    return {
        "cpu_model": model,
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_vnni": bool({"avx512_vnni", "avx512vnni"} & flags),
        "amx": any(f.startswith("amx") for f in flags),
        "avx512_bf16": "avx512_bf16" in flags,
        "avx_vnni": "avx_vnni" in flags,
    }


def _cores_available() -> int:
    # Containers and taskset restrict the cores a process may run on; os.cpu_count()
    # reports the host's.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_fingerprint() -> dict[str, Any]:
    """CPU model, logical/physical/available cores and the AVX2/AVX-512/VNNI/BF16/AMX flags."""
    try:
        info = parse_cpuinfo(CPUINFO.read_text())
    except OSError:  # not Linux
        info = parse_cpuinfo("")
    if not info["cpu_model"]:
        info["cpu_model"] = platform.processor() or platform.machine() or "unknown"
    return {
        **info,
        "machine": platform.machine(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "cores_available": _cores_available(),
    }


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, Any]:
    """Versions of python and the ML packages (None if not installed), and ``cuda_available``."""
    versions: dict[str, Any] = {"python": platform.python_version()}
    for key, dist in PACKAGES.items():
        versions[key] = _version(dist)
    if versions["opencv"] is None:
        versions["opencv"] = next(filter(None, map(_version, _OPENCV_ALTERNATIVES)), None)
    versions["cuda_available"] = _cuda_available() if versions["torch"] else False
    return versions


def _cuda_available() -> bool:
    import torch  # heavy: only when asked for the report

    return bool(torch.cuda.is_available())


def deepsparse_support(cpu: dict[str, Any]) -> tuple[str, str]:
    """(short label, plain-English note) on how well DeepSparse can run on ``cpu``."""
    cores = cpu.get("cores_available")
    if cpu.get("avx512_vnni") and cpu.get("avx512f"):
        label = "int8 fast path (VNNI)"
        note = (
            f"AVX-512 with VNNI: DeepSparse runs sparse INT8 models on its fast path; "
            f"{cores} core(s) available to this process."
        )
    elif cpu.get("avx2") or cpu.get("avx512f"):
        label = "supported, no VNNI"
        note = (
            "AVX2/AVX-512 without VNNI: DeepSparse runs, but INT8 models lose most of "
            "their speed-up, so INT8 FPS here will fall short of the published figures."
        )
    else:
        label = "unsupported"
        note = (
            "No AVX2: DeepSparse cannot run on this CPU; DeepSparse benchmarks are "
            "skipped and only PyTorch / ONNX Runtime are measured."
        )
    return label, note


def environment_report() -> dict[str, Any]:
    """Everything a benchmark records about where it ran (flat dict, JSON-serialisable)."""
    cpu = cpu_fingerprint()
    label, note = deepsparse_support(cpu)
    return {
        **cpu,
        **package_versions(),
        "platform": platform.platform(),
        "python_executable": sys.executable,
        "deepsparse_supported": label,
        "deepsparse_note": note,
    }
