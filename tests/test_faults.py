"""Faults without loss: processes killed or racing each other.

* Four processes fetch the same asset into an empty cache at once: one downloads, the
  others wait for it (``yolotut.assets``' cache lock); every process gets the verified
  file, and no one ever sees a partial file under the final name.
* A training run is killed (SIGKILL) in the middle of an epoch, and again while it writes
  ``last.pt``: ``last.pt`` always loads, and the resumed run continues from the last
  completed epoch with the same recipe state, ending where an uninterrupted run ends.
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
