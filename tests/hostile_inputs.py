"""Hostile and broken inputs for the command line, each with the argv that feeds it in.

``tests/test_cli_errors.py`` checks that every probe ends in one line on stderr that
names the input, and exit status 2. Run as a script, it prints the probe -> message
table from real ``yolotut`` processes::

    YOLOTUT_MIRROR=../shared/mirror .venv/bin/python tests/hostile_inputs.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

BLOG_ONNX = "companion/yolov5-train/yolov5-deepsparse/yolov5n-sgd-pruned-quantized-hardswish/weights/best.onnx"
YOLOV5N_PT = "companion/yolov5-train/yolov5n.pt"
DEMO_VIDEO = "companion/yolov5-train/data/pexels-cottonbro-8717592.mp4"
FAST_ENGINE = ["--engine", "onnxruntime", "--cores", "1"]


@dataclass(frozen=True)
class Probe:
    name: str
    argv: list[str]
    names: str  # what the error line must mention (a file name, an option, an asset)


class _ShellCommand:
    """Unpickling this calls ``os.system``: the attack the checkpoint loader must refuse."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _onnx(path: Path, input_shape: list, output: str) -> Path:
    """A valid ONNX graph that is not a YOLOv5 detector: a wrong input, or a classifier's output."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    channels = input_shape[1]
    nodes = [helper.make_node("Conv", ["input", "w"], ["y"])]
    if output == "classes":
        nodes += [helper.make_node("GlobalAveragePool", ["y"], ["p"]), helper.make_node("Flatten", ["p"], ["out_0"])]
        out_shape = [input_shape[0], 4]
    else:
        nodes[0].output[0] = "out_0"
        out_shape = [input_shape[0], 4, *input_shape[2:]]
    graph = helper.make_graph(
        nodes, path.stem,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("out_0", TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(np.ones((4, channels, 1, 1), np.float32), "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def build(folder: Path, mirror: Path) -> list[Probe]:
    """Write the hostile files into ``folder``; the probes that feed them to ``yolotut``."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    blog = (mirror / BLOG_ONNX).read_bytes()
    (folder / "trunc.onnx").write_bytes(blog[:300_000])
    (folder / "notonnx.onnx").write_text("this is a text file, not a model\n")
    (folder / "empty.onnx").write_bytes(b"")
    _onnx(folder / "gray.onnx", [1, 1, 28, 28], "same")
    _onnx(folder / "classifier.onnx", [1, 3, 32, 32], "classes")
    (folder / "notes.pt").write_text("not a checkpoint\n")
    (folder / "trunc.pt").write_bytes((mirror / YOLOV5N_PT).read_bytes()[:1_000_000])
    canary = folder / "pwned"
    torch.save({"model": _ShellCommand(f"touch {canary}")}, folder / "evil.pt")
    (folder / "notavideo.mp4").write_text("not a video\n")
    (folder / "trunc.mp4").write_bytes((mirror / DEMO_VIDEO).read_bytes()[:60_000])
    (folder / "python-tag.yaml").write_text("names: [a]\nval: !!python/object/apply:os.system ['echo pwned']\n")
    (folder / "no-splits.yaml").write_text("names: [pistol]\n")
    (folder / "nan.json").write_text('{"engine": "deepsparse", "items_per_sec": NaN}\n')
    (folder / "claims.yaml").write_text("sources: {}\nclaims: [\n")
    (folder / "a folder.json").mkdir(exist_ok=True)
    blog_model = str(mirror / BLOG_ONNX)
    bench = ["bench", *FAST_ENGINE, "--warmup", "1", "--iterations", "1"]
    return [
        Probe("bench: ONNX cut at 300 kB", ["bench", str(folder / "trunc.onnx")], "trunc.onnx"),
        Probe("sparsity: a text file named .onnx", ["sparsity", str(folder / "notonnx.onnx")], "notonnx.onnx"),
        Probe("evaluate: ONNX cut at 300 kB", ["evaluate", str(folder / "trunc.onnx")], "trunc.onnx"),
        Probe("bench: empty .onnx", ["bench", str(folder / "empty.onnx")], "empty.onnx"),
        Probe("bench: missing file", ["bench", str(folder / "missing.onnx")], "missing.onnx"),
        Probe("bench: input [1, 1, 28, 28]", [*bench, str(folder / "gray.onnx")], "gray.onnx"),
        Probe("bench: classifier outputs [1, 4]", [*bench, str(folder / "classifier.onnx")], "classifier.onnx"),
        Probe("bench: text file named .pt", ["bench", str(folder / "notes.pt")], "notes.pt"),
        Probe("export: yolov5n.pt cut at 1 MB", ["export", str(folder / "trunc.pt"), "--out", str(folder / "x.onnx")], "trunc.pt"),
        Probe("export: .pt whose pickle calls os.system", ["export", str(folder / "evil.pt"), "--out", str(folder / "x.onnx")], "posix.system"),
        Probe("video: text file as --source", ["video", blog_model, *FAST_ENGINE, "--source", str(folder / "notavideo.mp4")], "notavideo.mp4"),
        Probe("video: mp4 cut at 60 kB", ["video", blog_model, *FAST_ENGINE, "--no-draw", "--json", "--source", str(folder / "trunc.mp4")], "trunc.mp4"),
        Probe("video: --out under a file", ["video", blog_model, "--out", "/proc/version/annotated.mp4"], "/proc/version"),
        Probe("bench: --out is a folder", [*bench, blog_model, "--out", str(folder / "a folder.json")], "a folder.json"),
        Probe("fetch: unknown asset", ["fetch", "yolov5z"], "yolov5z"),
        Probe("bench: unknown asset / missing model", ["bench", "blog-yolov5z"], "blog-yolov5z"),
        Probe("evaluate: dataset yaml with a !!python tag", ["evaluate", blog_model, "--data", str(folder / "python-tag.yaml")], "python-tag.yaml"),
        Probe("evaluate: dataset yaml without splits", ["evaluate", blog_model, "--data", str(folder / "no-splits.yaml")], "no-splits.yaml"),
        Probe("check: result file with NaN", ["check", str(folder / "nan.json")], "nan.json"),
        Probe("check: claims file cut short", ["check", str(folder / "nan.json"), "--claims", str(folder / "claims.yaml")], "claims.yaml"),
    ]


def _table(mirror: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        probes = build(Path(tmp), mirror)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        print("| probe | exit | stderr |\n| --- | ---: | --- |")
        for probe in probes:
            done = subprocess.run([sys.executable, "-m", "yolotut.cli", *probe.argv], capture_output=True, text=True, env=env)
            message = done.stderr.strip().replace(tmp, "$TMP").replace(str(mirror), "$MIRROR").replace("|", "\\|")
            print(f"| {probe.name} | {done.returncode} | {message} |", flush=True)


if __name__ == "__main__":
    _table(Path(os.environ.get("YOLOTUT_MIRROR", Path(__file__).resolve().parents[2] / "shared" / "mirror")))
