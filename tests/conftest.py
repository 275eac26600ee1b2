"""Shared test set-up: the offline asset mirror, and the fuzz tests' budgets.

Tests read upstream assets (datasets, yolov5n.pt, the blog's ONNX models) through
``yolotut.assets``, which uses ``YOLOTUT_MIRROR`` when it is set. CI and the Makefile
set it to the read-only ``../shared/mirror``; when it is unset and that folder sits
beside the checkout, the session uses it too.

Hypothesis profiles (``HYPOTHESIS_PROFILE``): ``ci``, the default, runs a few hundred
examples per fuzz target (seconds; what ``make test`` runs); ``long`` at least 10,000
(``make fuzz``). The deadline is a hang detector, not a speed test: the slowest target
takes about 0.2 s per example on 2 busy cores.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fuzzing import EXAMPLES
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]
SIBLING_MIRROR = REPO.parent / "shared" / "mirror"

_FUZZ = dict(deadline=10_000, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=200, **_FUZZ)
settings.register_profile("long", max_examples=10_000, **_FUZZ)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def find_mirror() -> Path | None:
    for candidate in (os.environ.get("YOLOTUT_MIRROR"), SIBLING_MIRROR):
        if candidate and (Path(candidate) / "companion" / "datasets").is_dir():
            return Path(candidate).resolve()
    return None


def pytest_configure(config: pytest.Config) -> None:
    root = find_mirror()
    if root is not None and not os.environ.get("YOLOTUT_MIRROR"):
        os.environ["YOLOTUT_MIRROR"] = str(root)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if EXAMPLES:
        profile = os.environ.get("HYPOTHESIS_PROFILE", "ci")
        terminalreporter.section(f"fuzz examples per target (hypothesis profile {profile!r})")
        for target, count in sorted(EXAMPLES.items()):
            terminalreporter.write_line(f"{count:8d}  {target}")


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch) -> Path:
    root = find_mirror()
    if root is None:
        pytest.skip("offline asset mirror not found (set YOLOTUT_MIRROR to a copy of shared/mirror)")
    monkeypatch.setenv("YOLOTUT_MIRROR", str(root))
    return root


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory: pytest.TempPathFactory):
    """Every notebook run once (quick profile) into a temporary output folder:
    ``(ReproduceSummary, output folder)``. The notebook tests check what it wrote; the
    browser test opens its executed copies."""
    from yolotut.reproduce import runner

    if not (Path(os.environ.get("YOLOTUT_MIRROR", "")) / "companion").is_dir():
        pytest.skip("offline asset mirror not found (set YOLOTUT_MIRROR)")
    out = tmp_path_factory.mktemp("reproduce")
    summary = runner.reproduce("quick", output_dir=out, progress=False)
    return summary, out


@pytest.fixture
def qdq_weight_conv_onnx(tmp_path: Path):
    """Factory: an ONNX graph with one float Conv whose weight passes through
    QuantizeLinear -> DequantizeLinear -- what SparseML leaves for convs with a float
    output, and what DeepSparse 1.8 cannot compile. Input ``input``, output ``out_0``;
    ``detector_output`` reshapes it to ``[batch, size * size, c_out]``, the rank of
    YOLOv5's decoded predictions, so that the engines accept the graph."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def build(
        c_in: int, c_out: int, kernel: int, size: int, scale: float = 0.02, conv_name: str = "conv",
        detector_output: bool = False,
    ) -> Path:
        rng = np.random.default_rng(0)
        inits = [
            numpy_helper.from_array(rng.normal(size=(c_out, c_in, kernel, kernel)).astype(np.float32), "w"),
            numpy_helper.from_array(np.array(scale, np.float32), "s"),
            numpy_helper.from_array(np.array(0, np.int8), "z"),
        ]
        pad = kernel // 2
        nodes = [
            helper.make_node("QuantizeLinear", ["w", "s", "z"], ["wq"], name="q"),
            helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"], name="dq"),
            helper.make_node("Conv", ["input", "wd"], ["conv_out" if detector_output else "out_0"], name=conv_name, pads=[pad] * 4),
        ]
        out_shape = ["batch", c_out, size, size]
        if detector_output:
            inits.append(numpy_helper.from_array(np.array([0, -1, c_out], np.int64), "rows"))
            nodes += [
                helper.make_node("Transpose", ["conv_out"], ["nhwc"], perm=[0, 2, 3, 1]),
                helper.make_node("Reshape", ["nhwc", "rows"], ["out_0"]),
            ]
            out_shape = ["batch", size * size, c_out]
        graph = helper.make_graph(
            nodes,
            "qdq_weight_conv",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", c_in, size, size])],
            [helper.make_tensor_value_info("out_0", TensorProto.FLOAT, out_shape)],
            initializer=inits,
        )
        path = tmp_path / f"qdq_weight_conv_{c_in}x{c_out}k{kernel}.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
        return path

    return build


@pytest.fixture(scope="session")
def coco_yolov5n_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The official COCO yolov5n (80 classes) exported fp32 at 192 px: small, real weights, ~20 s."""
    root = find_mirror()
    weights = root / "companion" / "yolov5-train" / "yolov5n.pt" if root else None
    if weights is None or not weights.exists():
        pytest.skip("offline asset mirror not found (set YOLOTUT_MIRROR to a copy of shared/mirror)")
    from yolotut.inference.export import export_onnx
    from yolotut.models.checkpoint import load_model

    path = tmp_path_factory.mktemp("coco_yolov5n") / "yolov5n-192.onnx"
    export_onnx(load_model(weights), path, imgsz=192)
    return path
