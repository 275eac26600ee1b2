"""ONNX graph edits of yolotut.inference.export that the speed studies use."""

from __future__ import annotations

from pathlib import Path

import pytest

from yolotut.inference.export import decoded_output_only


def test_the_authors_model_keeps_only_its_decoded_output(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    # The author's layout in small: a raw head tensor (out_1) that the decoded output reads.
    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["out_1"]), helper.make_node("Sigmoid", ["out_1"], ["out_0"])],
        "two_outputs",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("out_0", TensorProto.FLOAT, [1, 4]), helper.make_tensor_value_info("out_1", TensorProto.FLOAT, [1, 4])],
    )
    source = tmp_path / "author.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(source))
    trimmed = decoded_output_only(source, tmp_path / "copy" / "out0.onnx")

    model = onnx.load(str(trimmed))
    assert [o.name for o in model.graph.output] == ["out_0"]
    assert [n.op_type for n in model.graph.node] == ["Relu", "Sigmoid"]
    x = np.array([[-2.0, -0.5, 0.5, 2.0]], dtype=np.float32)

    def decoded(path: Path) -> np.ndarray:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["out_0"], {"input": x})[0]

    np.testing.assert_array_equal(decoded(trimmed), decoded(source))
    assert onnx.load(str(source)).graph.output[1].name == "out_1"  # the original is left alone

    without = tmp_path / "no_out0.onnx"
    onnx.save(helper.make_model(helper.make_graph(graph.node[:1], "g", graph.input, graph.output[1:]), opset_imports=[helper.make_opsetid("", 13)]), str(without))
    with pytest.raises(ValueError, match="no output 'out_0'"):
        decoded_output_only(without, tmp_path / "x.onnx")
