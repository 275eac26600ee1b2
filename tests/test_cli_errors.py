"""The command line's one error path: a failure the user can fix is one line on stderr
naming the input, and exit status 2; a bug keeps its traceback; ``--debug`` and
``YOLOTUT_DEBUG`` show the traceback of every error."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_inputs import build

from yolotut import cli
from yolotut.cli import main


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from conftest import find_mirror

    mirror = find_mirror()
    if mirror is None:
        pytest.skip("offline asset mirror not found (set YOLOTUT_MIRROR to a copy of shared/mirror)")
    folder = tmp_path_factory.mktemp("hostile")
    return {"folder": folder, "probes": {probe.name: probe for probe in build(folder, mirror)}}


def _probe_names() -> list[str]:
    # The names only (the files are built once, by the fixture).
    return [
        "bench: ONNX cut at 300 kB", "sparsity: a text file named .onnx", "evaluate: ONNX cut at 300 kB",
        "bench: empty .onnx", "bench: missing file", "bench: input [1, 1, 28, 28]", "bench: classifier outputs [1, 4]",
        "bench: text file named .pt", "export: yolov5n.pt cut at 1 MB", "export: .pt whose pickle calls os.system",
        "video: text file as --source", "video: mp4 cut at 60 kB", "video: --out under a file", "bench: --out is a folder",
        "fetch: unknown asset", "bench: unknown asset / missing model", "evaluate: dataset yaml with a !!python tag",
        "evaluate: dataset yaml without splits", "check: result file with NaN", "check: claims file cut short",
    ]


def test_every_probe_is_listed(probes: dict) -> None:
    assert sorted(probes["probes"]) == sorted(_probe_names())


@pytest.mark.parametrize("name", _probe_names())
def test_a_hostile_input_gives_one_line_and_status_2(
    probes: dict, name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("YOLOTUT_DEBUG", raising=False)
    probe = probes["probes"][name]
    rc = main(probe.argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert len(lines) == 1, err
    command = probe.argv[0]
    assert lines[0].startswith(f"yolotut {command}: error: "), lines[0]
    assert probe.names in lines[0], lines[0]
    assert not (probes["folder"] / "pwned").exists()


def test_debug_shows_the_traceback(probes: dict, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    argv = probes["probes"]["sparsity: a text file named .onnx"].argv
    monkeypatch.delenv("YOLOTUT_DEBUG", raising=False)
    assert main(["--debug", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "OnnxModelError" in err
    assert err.strip().splitlines()[-1].startswith("yolotut sparsity: error: ")
    assert main([*argv, "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("YOLOTUT_DEBUG", "1")
    assert main(argv) == 2
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("YOLOTUT_DEBUG", "0")
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    # A ValueError raised inside a library is not a message for the user.
    def broken(args):
        import json

        return json.loads("{")

    parser = cli.build_parser()
    args = parser.parse_args(["env"])
    monkeypatch.setattr(cli, "build_parser", lambda: _Parser(args, broken))
    with pytest.raises(ValueError, match="Expecting property name"):
        main(["env"])
    # ... while one yolotut raises itself is.
    def refused(args):
        return cli._parse_recipe_args(["no-equals-sign"])

    monkeypatch.setattr(cli, "build_parser", lambda: _Parser(args, refused))
    assert main(["env"]) == 2


def test_other_errors_about_a_named_file_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An OSError about a file (here: reading a folder as a result file) names it.
    folder = tmp_path / "results.json"
    folder.mkdir()
    (folder / "inner.json").mkdir()
    assert main(["check", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "inner.json" in err, err


class _Parser:
    """Stands in for the real parser: hands ``main`` the parsed args with another handler."""

    def __init__(self, args, handler) -> None:
        self.args, self.handler = args, handler

    def parse_args(self, argv):
        self.args.handler = self.handler
        return self.args
