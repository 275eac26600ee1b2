"""Faults without loss: processes killed or racing each other.

* Four processes fetch the same asset into an empty cache at once: one downloads, the
  others wait for it (``yolotut.assets``' cache lock); every process gets the verified
  file, and no one ever sees a partial file under the final name.
* A training run is killed (SIGKILL) in the middle of an epoch (fine-tuning), and while
  it writes ``last.pt`` (pruning + QAT): ``last.pt`` always loads, the torn write is
  cleared, and the resumed run continues from the last completed epoch with the same
  recipe state, ending bit-identical to its reference run (see ``reference_runs``).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from yolotut.models.checkpoint import load_training_checkpoint

REPO = Path(__file__).resolve().parents[1]
DEMO_VIDEO = "companion/yolov5-train/data/pexels-cottonbro-8717592.mp4"


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "YOLOTUT_MIRROR"}
    return {**env, "PYTHONPATH": str(REPO), **extra}


# --- four processes, one asset, an empty cache ----------------------------------------------


class _SlowServer:
    """Serves one file over HTTP in small, slow chunks (a download takes about two seconds),
    counting the requests."""

    def __init__(self, data: bytes) -> None:
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                step = len(data) // 40 + 1
                for start in range(0, len(data), step):
                    self.wfile.write(data[start : start + step])
                    self.wfile.flush()
                    time.sleep(0.05)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/video.mp4"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def demo_video_server(mirror: Path) -> Iterator[tuple[_SlowServer, bytes]]:
    data = (mirror / DEMO_VIDEO).read_bytes()
    server = _SlowServer(data)
    yield server, data
    server.close()


_FETCHER = textwrap.dedent(
    """
    import dataclasses, hashlib, json, sys, time
    from pathlib import Path
    from yolotut import assets

    url, go = sys.argv[1], Path(sys.argv[2])
    assets.REGISTRY["demo-video"] = dataclasses.replace(assets.REGISTRY["demo-video"], url=url)
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.01)
    path = assets.fetch("demo-video", progress=False)
    print(json.dumps({"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}), flush=True)
    """
)


def test_four_processes_fetch_one_asset_into_an_empty_cache(tmp_path: Path, demo_video_server) -> None:
    server, data = demo_video_server
    cache = tmp_path / "cache"
    go = tmp_path / "go"
    env = _child_env(YOLOTUT_CACHE=str(cache))
    children = [
        subprocess.Popen([sys.executable, "-c", _FETCHER, server.url, str(go)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for child in children:  # all four are past their imports: now they start together
        assert child.stdout.readline().strip() == "ready"
    final = cache / DEMO_VIDEO
    seen_sizes: set[int] = set()
    go.touch()
    while any(child.poll() is None for child in children):
        if final.exists():
            seen_sizes.add(final.stat().st_size)  # whoever looks sees the whole file or nothing
        time.sleep(0.005)
    outcomes = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err[-2000:]
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    expected = hashlib.sha256(data).hexdigest()
    assert all(o == {"path": str(final), "sha256": expected} for o in outcomes), outcomes
    assert seen_sizes <= {len(data)}
    assert server.requests == 1  # one process downloaded; the other three waited for it
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name, f"{final.name}.lock"]


# --- a training run killed mid-epoch, and while it writes last.pt -----------------------------

_TRAINER = textwrap.dedent(
    """
    import io, json, sys, time
    import torch
    from yolotut.training import loop
    from yolotut.training.config import TrainConfig

    settings, stop_at = json.loads(sys.argv[1]), sys.argv[2]
    torch.set_num_threads(int(sys.argv[3]))  # the parent's: float sums must add up in the same order
    steps, saves = [0], [0]

    def hang(event):
        print(event, flush=True)
        while True:  # until the parent's SIGKILL
            time.sleep(1)

    original_step = loop._step
    def step(run, loss):
        original_step(run, loss)
        steps[0] += 1
        # the first step of the second epoch: the run is in the middle of epoch 1
        if stop_at == "mid-epoch" and steps[0] == run.steps_per_epoch + 1:
            hang("mid-epoch")
    loop._step = step

    original_save = torch.save
    def save(payload, fh, *args, **kwargs):
        saves[0] += 1
        if stop_at == "writing" and saves[0] == 2:  # epoch 1's last.pt, half of it on disk
            buffer = io.BytesIO()
            original_save(payload, buffer, *args, **kwargs)
            fh.write(buffer.getvalue()[: buffer.tell() // 2])
            fh.flush()
            hang("writing")
        return original_save(payload, fh, *args, **kwargs)
    torch.save = save

    loop.train(TrainConfig(**settings), progress=False)
    print("finished", flush=True)
    """
)


def _kill_training_at(settings: dict, stop_at: str) -> None:
    """Run a training with ``settings`` in a child process and SIGKILL it at ``stop_at``."""
    child = subprocess.Popen(
        [sys.executable, "-c", _TRAINER, json.dumps(settings), stop_at, str(torch.get_num_threads())],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = child.stdout.readline().strip()
        assert line == stop_at, f"the run never reached {stop_at!r} ({line!r}): {child.stderr.read()[-3000:]}"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL


# EMA on for fine-tuning (the resumed run must go on from the raw weights); QAT from epoch 1.
_RECIPE_SETTINGS = {
    "dense-finetune": {"ema": True},
    "pruning-quantization": {"recipe_args": {"quantization_start_epoch": 1.0}},
}


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """What a killed run must end as. Fine-tuning: the run never stopped. Pruning + QAT:
    the run stopped in order (Ctrl-C) after epoch 0 and resumed, because a resume there is
    not bit-identical to an unstopped run (the pruning masks are rebuilt from the saved
    weights; the losses differ from the second epoch on, by a few per cent in this tiny run)."""
    from test_train import tiny_config

    from yolotut.training import loop

    runs = {}
    for recipe in ("dense-finetune", "pruning-quantization"):
        config = tiny_config(tmp_path_factory.mktemp(f"reference-{recipe}"), recipe, 3, **_RECIPE_SETTINGS[recipe])
        if recipe == "pruning-quantization":
            original_save = loop.save_training_checkpoint

            def save_then_stop(path, payload, original_save=original_save):
                original_save(path, payload)
                raise KeyboardInterrupt

            loop.save_training_checkpoint = save_then_stop
            try:
                with pytest.raises(KeyboardInterrupt):
                    loop.train(config, progress=False)
            finally:
                loop.save_training_checkpoint = original_save
            result = loop.train(config, resume=True, progress=False)
        else:
            result = loop.train(config, progress=False)
        runs[recipe] = load_training_checkpoint(result.final_checkpoint)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize(("recipe", "stop_at"), [("dense-finetune", "mid-epoch"), ("pruning-quantization", "writing")])
def test_a_killed_training_run_resumes_from_its_last_completed_epoch(
    tmp_path: Path, reference_runs: dict[str, dict], recipe: str, stop_at: str
) -> None:
    from dataclasses import asdict

    from test_train import tiny_config

    from yolotut.training.loop import train

    out_dir = tmp_path / "killed"
    config = tiny_config(out_dir, recipe, 3, **_RECIPE_SETTINGS[recipe])
    _kill_training_at(asdict(config), stop_at)

    # Killed in epoch 1 either way: last.pt is epoch 0's, whole; a half-written file
    # exists only under its temporary name.
    after_kill = load_training_checkpoint(out_dir / "last.pt")
    assert after_kill["epoch"] == 0 and not after_kill["finished"]
    leftovers = [p.name for p in out_dir.glob(".last.pt.*.tmp")]
    assert bool(leftovers) == (stop_at == "writing")

    result = train(config, resume=True, progress=False)
    assert result.epochs_run == 2
    assert [record["epoch"] for record in result.history] == [0, 1, 2]
    assert not list(out_dir.glob(".last.pt.*.tmp"))  # the resumed run cleared the torn write
    final, whole = load_training_checkpoint(result.final_checkpoint), reference_runs[recipe]
    # The same recipe state and the same end as the reference run: the kill lost nothing.
    for key in ("recipe_text", "recipe_variables", "quantized", "finished", "epoch"):
        assert final[key] == whole[key], key
    assert final["model"].keys() == whole["model"].keys()
    assert all(torch.equal(final["model"][name], weights) for name, weights in whole["model"].items())
