"""Compatibility layer: SparseML 1.8 on torch 2.13, ONNX Runtime's quantization tool on onnx 1.14,
and Neural Magic analytics off.

SparseML/DeepSparse/SparseZoo 1.8.0 are the last working releases (1.9.0 are empty
end-of-life stubs) and predate torch 2.13. Pruning works unchanged; quantization-aware
training (QAT) and its ONNX export need the patches below. Each patch restores one
SparseML behaviour and says why it broke.

Importing this module has exactly one side effect, the documented compat switch:
it sets ``NM_DISABLE_ANALYTICS=1`` (unless the user set it) so that deepsparse and
sparsezoo never try to send usage analytics -- there is no network here, and a
tutorial should not phone home. It must therefore be imported before deepsparse or
sparsezoo; ``yolotut`` modules that use them import it first.

The SparseML patches are applied only by calling :func:`apply_sparseml_compat`
(idempotent); :mod:`yolotut.training.loop` and :mod:`yolotut.inference.export` call it.
"""

from __future__ import annotations

import functools
import os
from typing import Any

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

_APPLIED: list[str] = []


def _define_scheme_qconfig() -> type:
    """A ``QConfig`` subclass that accepts extra attributes.

    torch 2.x declares ``QConfig.__slots__ = ()``, so instances have no
    ``__dict__``; SparseML stores its ``QuantizationScheme`` on the qconfig
    (``qconfig.quantization_scheme = scheme``) and reads it back when it converts
    the model. A subclass without ``__slots__`` gets a ``__dict__`` again and is
    still a ``QConfig`` for every ``isinstance`` check in torch.
    """
    global _SchemeQConfig
    if "_SchemeQConfig" in globals():
        return _SchemeQConfig

    from torch.ao.quantization import QConfig

    class _SchemeQConfig(QConfig):  # type: ignore[misc,valid-type]
        """QConfig that can carry SparseML's ``quantization_scheme`` attribute."""

        # No __slots__ here on purpose: that is what restores the __dict__.

    # Bound as a module global so that qconfigs deep-copy and pickle (SparseML
    # deep-copies modules that carry them) without importing torch at import time.
    _SchemeQConfig.__module__ = __name__
    _SchemeQConfig.__qualname__ = "_SchemeQConfig"
    return _SchemeQConfig


def _patch_qconfig_slots() -> None:
    from sparseml.pytorch.sparsification.quantization import quantization_scheme

    scheme_qconfig = _define_scheme_qconfig()
    original = quantization_scheme._get_qconfig
    if getattr(original, "_yolotut_patched", False):
        return

    @functools.wraps(original)
    def _get_qconfig(*args: Any, **kwargs: Any):
        qconfig = original(*args, **kwargs)
        return scheme_qconfig(*qconfig)

    _get_qconfig._yolotut_patched = True  # type: ignore[attr-defined]
    quantization_scheme._get_qconfig = _get_qconfig


def _patch_onnx_export_default() -> None:
    """Make ``torch.onnx.export`` default to the TorchScript exporter again.

    Since torch 2.9 ``torch.onnx.export`` defaults to ``dynamo=True``. SparseML's
    ``export_onnx`` calls it without ``dynamo`` and relies on the TorchScript
    exporter: ``dynamic_axes``, ``training=TrainingMode.PRESERVE`` and the
    FakeQuantize -> QuantizeLinear/DequantizeLinear pairs that its QAT-to-INT8
    conversion (QLinearConv) pattern-matches. The wrapper only fills in the
    *default*; an explicit ``dynamo=...`` from the caller always wins.
    """
    import torch.onnx

    original = torch.onnx.export
    if getattr(original, "_yolotut_patched", False):
        return

    @functools.wraps(original)
    def export(*args: Any, **kwargs: Any):
        kwargs.setdefault("dynamo", False)
        return original(*args, **kwargs)

    export._yolotut_patched = True  # type: ignore[attr-defined]
    torch.onnx.export = export


# onnx 1.16's element-type numbers for the 4-bit types (onnx/onnx.proto: UINT4 = 21, INT4 = 22).
_ONNX_4BIT_TYPES = {"UINT4": 21, "INT4": 22}


def apply_onnxruntime_quantization_compat() -> list[str]:
    """Let ``onnxruntime.quantization`` (1.26) import beside onnx 1.14.1; return the names added.

    Its modules build type tables at import time from ``onnx.TensorProto.INT4`` and
    ``UINT4``, which onnx added in 1.16, and onnx stays at 1.14.1 for SparseML. The two
    names get onnx 1.16's numbers; they are only looked up, never written into a model
    unless 4-bit quantization is asked for, which onnx 1.14 cannot store anyway. 8-bit
    QDQ quantization is unaffected (``tests/test_quantize.py`` checks the graphs it writes).
    """
    import onnx

    added = [name for name in _ONNX_4BIT_TYPES if not hasattr(onnx.TensorProto, name)]
    for name in added:
        setattr(onnx.TensorProto, name, _ONNX_4BIT_TYPES[name])
    return added


def apply_sparseml_compat() -> list[str]:
    """Apply the SparseML <-> torch patches once; return the names of those applied."""
    if not _APPLIED:
        _patch_qconfig_slots()
        _APPLIED.append("qconfig-slots")
        _patch_onnx_export_default()
        _APPLIED.append("onnx-export-torchscript-default")
    return list(_APPLIED)
