"""`yolotut train`, `yolotut export` and `yolotut sparsity` end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from yolotut.cli import main
from yolotut.models import build_model, save_checkpoint

AUTHOR_HARDSWISH = "companion/yolov5-train/yolov5-deepsparse/yolov5n-sgd-pruned-quantized-hardswish/weights/best.onnx"


def last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_export_and_sparsity_of_a_half_pruned_checkpoint(tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    model = build_model("n", num_classes=1, names=["pistol"])
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 4:
                parameter[torch.rand_like(parameter) < 0.5] = 0
    checkpoint = save_checkpoint(model, tmp_path / "half.pt")

    assert main(["sparsity", str(checkpoint), "--json"]) == 0
    assert last_json(capsys)["conv_sparsity"] == pytest.approx(0.5, abs=0.01)

    onnx_path = tmp_path / "half.onnx"
    assert main(["export", str(checkpoint), "--out", str(onnx_path), "--imgsz", "256", "--json"]) == 0
    exported = last_json(capsys)
    assert exported["quantized"] is False and exported["input_dtype"] == "float32"
    assert exported["conv_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert onnx_path.stat().st_size > 1_000_000

    assert main(["sparsity", str(onnx_path), "--layers"]) == 0
    out = capsys.readouterr().out
    assert out.count("Conv") == 60 and "conv-weight sparsity: 50" in out


def test_uint8_input_for_a_float_model_is_refused(tmp_path: Path, capsys) -> None:
    from yolotut.inference.export import export_onnx

    with pytest.raises(ValueError, match="needs a quantized model"):
        export_onnx(build_model("n", num_classes=1), tmp_path / "x.onnx", uint8_input=True)


def test_sparsity_of_the_blog_authors_model(mirror: Path, capsys) -> None:
    assert main(["sparsity", str(mirror / AUTHOR_HARDSWISH), "--json"]) == 0
    report = last_json(capsys)
    # The author's "pruned-quantized" nano model is dense INT8: ~7 % zeros, no blocks.
    assert report["op_counts"]["QLinearConv"] == 57
    assert 0.03 < report["conv_sparsity"] < 0.12
    assert report["block4_sparsity"] < 0.01


def test_bad_recipe_arg_is_a_clear_error(capsys) -> None:
    assert main(["train", "--recipe", "pruning", "--recipe-arg", "no-equals-sign"]) == 2
    assert "key=value" in capsys.readouterr().err


def test_thinning_flags_reach_training_and_bad_values_are_clear(tmp_path: Path, capsys) -> None:
    cases = [
        (["--recipe", "finetune-quantization", "--thin-c3", "1.5"], "fraction of channels to keep"),
        (["--recipe", "finetune-quantization", "--thin-conv", "0"], "ThinningConfig.conv"),
        (["--thin-c3", "0.5", "--distill", "-1"], "weight of distillation"),
        (["--thin-fade-epochs", "2"], "give thinning settings too"),
        (["--thin-c3", "0.5", "--thin-criterion", "l1"], "largest-norm"),
        (["--thin-criterion", "random"], "give --thin-c3"),
    ]
    for flags, message in cases:
        assert main(["train", *flags, "--out", str(tmp_path / "run")]) == 2, flags
        assert message in capsys.readouterr().err, flags
        assert not (tmp_path / "run").exists(), flags


def test_missing_model_file_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["sparsity", str(tmp_path / "nope.onnx")]) == 2
    assert "nope.onnx" in capsys.readouterr().err


@pytest.mark.slow
def test_train_cli_runs_a_tiny_dense_finetune(tmp_path: Path, capsys) -> None:
    args = ["train", "--recipe", "dense-finetune", "--epochs", "1", "--max-images", "4", "--max-steps", "1"]
    args += ["--imgsz", "128", "--batch-size", "2", "--workers", "0", "--out", str(tmp_path / "run"), "--json"]
    assert main(args) == 0
    summary = last_json(capsys)
    assert Path(summary["checkpoint"]).is_file() and summary["epochs_run"] == 1
    assert summary["sparsity"] < 0.01


def test_sparsity_reads_an_ultralytics_checkpoint(mirror: Path, capsys) -> None:
    assert main(["sparsity", str(mirror / "companion/yolov5-train/yolov5n.pt"), "--json"]) == 0
    assert last_json(capsys)["conv_sparsity"] < 0.01  # the official dense COCO model


def test_garbage_checkpoint_is_a_clear_error(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert main(["sparsity", str(bad)]) == 2
    assert "bad.pt" in capsys.readouterr().err
