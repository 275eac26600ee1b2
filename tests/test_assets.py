"""yolotut.assets: registry, mirror, cache, pooch downloads from a local HTTP server."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import socket
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from yolotut import assets
from yolotut.assets import (
    Asset,
    AssetChecksumError,
    AssetIncompleteError,
    AssetUnavailableError,
    SparseZooUnavailableError,
    UnknownAssetError,
)
from yolotut.cli import main

MIRROR = assets.mirror_root()  # tests/conftest.py sets YOLOTUT_MIRROR when a mirror is found
needs_mirror = pytest.mark.skipif(MIRROR is None, reason="offline mirror (shared/mirror) not found")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty cache and no mirror unless it sets one."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("YOLOTUT_CACHE", str(cache))
    monkeypatch.delenv("YOLOTUT_MIRROR", raising=False)
    return cache


@pytest.fixture
def cache(_isolated: Path) -> Path:
    return _isolated


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files_under(root: Path) -> list[Path]:
    """The files in ``root`` but the cache's lock files (they stay: a lock on a file that
    is deleted and created again could be held by two processes at once)."""
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".lock")


# --- a tiny HTTP server on 127.0.0.1 -------------------------------------------------


class Server:
    """Serves ``routes[path] = bytes``; ``truncate`` paths send half the body then close."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.midway: dict[str, Callable[[], None]] = {}  # called after the first half is sent
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                server.requests.append(self.path)
                body = server.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                half = len(body) // 2
                self.wfile.write(body[:half])
                self.wfile.flush()
                if self.path in server.truncate:
                    self.close_connection = True
                    return  # the client sees the connection close after half the bytes
                if self.path in server.midway:
                    server.midway[self.path]()
                self.wfile.write(body[half:])

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def dead_url() -> str:
    """A 127.0.0.1 URL on a port nothing listens on (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/yolov5x.pt"


def _register(monkeypatch: pytest.MonkeyPatch, asset: Asset) -> Asset:
    monkeypatch.setitem(assets.REGISTRY, asset.name, asset)
    return asset


def _file_asset(url: str, data: bytes | None, *, sha256: str | None = "auto", name: str = "t-file") -> Asset:
    return Asset(
        name=name,
        url=url,
        sha256=_sha(data) if sha256 == "auto" else sha256,
        size=len(data) if data is not None else None,
        description="test file",
        mirror_path=f"companion/test/{name}.bin",
    )


PAYLOAD = os.urandom(200_000)


# --- registry ------------------------------------------------------------------------


def test_registry_entries_are_well_formed() -> None:
    expected = {
        "demo-video", "blog-yolov5n-pq-hardswish", "blog-yolov5n-pq-silu", "bus", "zidane",
        "pistols-yaml", "asl-yaml", "pistols", "asl", "yolov5n", "yolov5s", "yolov5m", "yolov5l",
    }  # fmt: skip
    assert set(assets.REGISTRY) == expected
    for name, asset in assets.REGISTRY.items():
        assert asset.name == name
        assert asset.url.startswith("https://github.com/")
        if asset.kind == "file":
            assert asset.sha256 is not None and len(asset.sha256) == 64
            assert asset.size and asset.size > 0
        else:
            assert asset.url.endswith("/main.zip") and asset.manifest
    assert assets.REGISTRY["yolov5l"].url == "https://github.com/ultralytics/yolov5/releases/download/v7.0/yolov5l.pt"


def test_directory_asset_needs_manifest() -> None:
    with pytest.raises(ValueError, match="manifest"):
        Asset("d", "http://x/a.zip", None, None, "", "companion/d", kind="directory")


def test_unknown_asset_lists_known_names() -> None:
    with pytest.raises(UnknownAssetError) as info:
        assets.fetch("yolov9")
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    message = str(info.value)
    assert "'yolov9'" in message and "pistols" in message and "yolov5n" in message


# --- mirror --------------------------------------------------------------------------


@needs_mirror
@pytest.mark.parametrize("name", sorted(n for n, a in assets.REGISTRY.items() if a.kind == "file"))
def test_mirror_files_match_registry(name: str, monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """Every mirrored file is returned in place and has the registered sha256 and size."""
    monkeypatch.setenv("YOLOTUT_MIRROR", str(MIRROR))
    asset = assets.REGISTRY[name]
    mirrored = MIRROR / asset.mirror_path
    if not mirrored.exists():
        assert name in {"yolov5s", "yolov5m", "yolov5l"}  # documented as not mirrored
        with pytest.raises(AssetUnavailableError):
            assets.fetch(name, allow_download=False)
        return
    assert assets.fetch(name, progress=False, allow_download=False) == mirrored
    assert mirrored.stat().st_size == asset.size
    assert _sha(mirrored.read_bytes()) == asset.sha256
    assert _files_under(cache) == []  # nothing copied


@needs_mirror
@pytest.mark.parametrize("name", ["asl", "pistols"])
def test_mirror_dataset_used_in_place(name: str, monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    monkeypatch.setenv("YOLOTUT_MIRROR", str(MIRROR))
    path = assets.fetch(name, allow_download=False)
    assert path == MIRROR / assets.REGISTRY[name].mirror_path
    assert (path / "train" / "images").is_dir()
    assert not cache.exists()


def test_mirror_incomplete_dataset_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    root = mirror / assets.REGISTRY["asl"].mirror_path
    for split in ("train", "valid", "test"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
    (root / "valid" / "images" / "a.jpg").write_bytes(b"x")
    monkeypatch.setenv("YOLOTUT_MIRROR", str(mirror))
    with pytest.raises(AssetIncompleteError, match=r"valid: 1 images / 0 labels \(expected 144 each\)") as info:
        assets.fetch("asl")
    assert str(root) in str(info.value)


def test_mirror_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    mirror = tmp_path / "mirror"
    bus = assets.REGISTRY["bus"]
    bad = mirror / bus.mirror_path
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\0" * bus.size)  # right size, wrong content
    monkeypatch.setenv("YOLOTUT_MIRROR", str(mirror))
    with pytest.raises(AssetChecksumError) as info:
        assets.fetch("bus")
    err = info.value
    assert err.expected == bus.sha256 and err.actual == _sha(b"\0" * bus.size)
    assert str(bad) in str(err) and bus.sha256 in str(err)
    assert bad.read_bytes() == b"\0" * bus.size  # the mirror is never touched
    assert _files_under(cache) == []


def test_mirror_hit_needs_no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    mirror = tmp_path / "mirror"
    asset = _register(monkeypatch, _file_asset(server.url("/f.bin"), PAYLOAD))
    (mirror / asset.mirror_path).parent.mkdir(parents=True)
    (mirror / asset.mirror_path).write_bytes(PAYLOAD)
    monkeypatch.setenv("YOLOTUT_MIRROR", str(mirror))
    assert assets.fetch(asset.name) == mirror / asset.mirror_path
    assert server.requests == []


# --- downloads -----------------------------------------------------------------------


def test_download_good(monkeypatch: pytest.MonkeyPatch, server: Server, cache: Path) -> None:
    server.routes["/f.bin"] = PAYLOAD
    asset = _register(monkeypatch, _file_asset(server.url("/f.bin"), PAYLOAD))
    path = assets.fetch(asset.name, progress=False)
    assert path == cache / asset.mirror_path
    assert path.read_bytes() == PAYLOAD
    assert _files_under(cache) == [path]  # no temp file left behind
    assert assets.fetch(asset.name, progress=False) == path
    assert server.requests == ["/f.bin"]  # second fetch served from the cache


def test_download_is_atomic(monkeypatch: pytest.MonkeyPatch, server: Server, cache: Path) -> None:
    """While bytes are arriving, they go to a temp file; the final name appears only after."""
    asset = _register(monkeypatch, _file_asset(server.url("/f.bin"), PAYLOAD))
    target = cache / asset.mirror_path
    seen: dict[str, object] = {}

    def midway() -> None:
        # Wait (bounded) until the client has written some of the first half to disk.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            partial = [p for p in _files_under(cache) if p.stat().st_size > 0]
            if partial:
                break
            time.sleep(0.01)
        seen["partial_files"] = partial
        seen["final_exists"] = target.exists()

    server.routes["/f.bin"] = PAYLOAD
    server.midway["/f.bin"] = midway
    assert assets.fetch(asset.name, progress=False) == target
    assert seen["final_exists"] is False
    assert len(seen["partial_files"]) == 1 and seen["partial_files"][0].parent == target.parent


def test_download_checksum_mismatch_leaves_nothing(monkeypatch: pytest.MonkeyPatch, server: Server, cache: Path) -> None:
    server.routes["/f.bin"] = PAYLOAD
    asset = _register(monkeypatch, _file_asset(server.url("/f.bin"), PAYLOAD, sha256=_sha(b"other")))
    with pytest.raises(AssetChecksumError) as info:
        assets.fetch(asset.name, progress=False)
    assert info.value.expected == _sha(b"other")
    assert info.value.actual == _sha(PAYLOAD)
    assert asset.url in str(info.value)
    assert _files_under(cache) == []


def test_interrupted_download_leaves_nothing_then_recovers(
    monkeypatch: pytest.MonkeyPatch, server: Server, cache: Path
) -> None:
    server.routes["/f.bin"] = PAYLOAD
    server.truncate.add("/f.bin")
    asset = _register(monkeypatch, _file_asset(server.url("/f.bin"), PAYLOAD))
    with pytest.raises(AssetUnavailableError, match="download failed") as info:
        assets.fetch(asset.name, progress=False)
    assert asset.url in str(info.value)
    assert _files_under(cache) == []
    server.truncate.clear()
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD


def test_no_upstream_no_mirror(monkeypatch: pytest.MonkeyPatch, dead_url: str, cache: Path) -> None:
    asset = _register(monkeypatch, _file_asset(dead_url, PAYLOAD, name="yolov5x"))
    with pytest.raises(AssetUnavailableError) as info:
        assets.fetch(asset.name, progress=False)
    message = str(info.value)
    assert "'yolov5x'" in message and dead_url in message
    assert "YOLOTUT_MIRROR=/path/to/mirror" in message and asset.mirror_path in message
    assert "not set" in message
    assert _files_under(cache) == []


def test_mirror_without_the_file_falls_back_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dead_url: str
) -> None:
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv("YOLOTUT_MIRROR", str(tmp_path / "mirror"))
    asset = _register(monkeypatch, _file_asset(dead_url, PAYLOAD))
    with pytest.raises(AssetUnavailableError, match=f"{tmp_path / 'mirror'} has no {asset.mirror_path}"):
        assets.fetch(asset.name, progress=False)


def test_allow_download_false(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    server.routes["/f.bin"] = PAYLOAD
    asset = _register(monkeypatch, _file_asset(server.url("/f.bin"), PAYLOAD))
    with pytest.raises(AssetUnavailableError, match="downloads are disabled"):
        assets.fetch(asset.name, allow_download=False)
    assert server.requests == []


def test_corrupt_cache_file_is_replaced(monkeypatch: pytest.MonkeyPatch, server: Server, cache: Path) -> None:
    server.routes["/f.bin"] = PAYLOAD
    asset = _register(monkeypatch, _file_asset(server.url("/f.bin"), PAYLOAD))
    target = cache / asset.mirror_path
    target.parent.mkdir(parents=True)
    target.write_bytes(PAYLOAD[:-1] + b"!")
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD
    assert server.requests == ["/f.bin"]


def test_unverified_download_records_its_hash(
    monkeypatch: pytest.MonkeyPatch, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/f.bin"] = PAYLOAD
    asset = _register(monkeypatch, _file_asset(server.url("/f.bin"), PAYLOAD, sha256=None))
    with caplog.at_level(logging.WARNING, logger="yolotut.assets"):
        path = assets.fetch(asset.name, progress=False)
    assert "unverified" in caplog.text
    sidecar = path.with_name(path.name + ".sha256")
    assert sidecar.read_text().split()[0] == _sha(PAYLOAD)
    # Later corruption of the cached copy is caught against the recorded hash.
    path.write_bytes(PAYLOAD[:-1] + b"!")
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD
    assert len(server.requests) == 2


# --- directory assets from the repository zip ----------------------------------------


def _repo_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{assets.COMPANION_ZIP_ROOT}/README.md", b"readme")
        for name, data in files.items():
            zf.writestr(f"{assets.COMPANION_ZIP_ROOT}/{name}", data)
    return buf.getvalue()


def _dataset_asset(url: str, name: str, folder: str, manifest: dict[str, int]) -> Asset:
    return Asset(
        name=name,
        url=url,
        sha256=None,
        size=None,
        description="test dataset",
        mirror_path=f"companion/datasets/{folder}",
        kind="directory",
        archive_path=f"{assets.COMPANION_ZIP_ROOT}/datasets/{folder}",
        manifest=tuple(manifest.items()),
    )


def _split_files(folder: str, split: str, n: int) -> dict[str, bytes]:
    files = {}
    for i in range(n):
        files[f"datasets/{folder}/{split}/images/img ({i}).jpg"] = b"jpg"
        files[f"datasets/{folder}/{split}/labels/img ({i}).txt"] = b"0 0.5 0.5 0.1 0.1\n"
    return files


def test_directory_from_upstream_zip(monkeypatch: pytest.MonkeyPatch, server: Server, cache: Path) -> None:
    files = {**_split_files("tiny", "train", 3), **_split_files("tiny", "valid", 2), **_split_files("other", "train", 1)}
    server.routes["/main.zip"] = _repo_zip(files)
    tiny = _register(monkeypatch, _dataset_asset(server.url("/main.zip"), "tiny", "tiny", {"train": 3, "valid": 2}))
    other = _register(monkeypatch, _dataset_asset(server.url("/main.zip"), "other", "other", {"train": 1}))

    path = assets.fetch(tiny.name, progress=False)
    assert path == cache / tiny.mirror_path
    assert (path / "valid" / "labels" / "img (1).txt").read_bytes() == b"0 0.5 0.5 0.1 0.1\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny", "tiny.lock"]  # no temp dir left
    assert assets.fetch(other.name, progress=False) == cache / other.mirror_path
    assert assets.fetch(tiny.name, progress=False) == path
    assert server.requests == ["/main.zip"]  # the archive is downloaded once


def test_directory_incomplete_archive_leaves_nothing(monkeypatch: pytest.MonkeyPatch, server: Server, cache: Path) -> None:
    server.routes["/main.zip"] = _repo_zip(_split_files("tiny", "train", 2))
    tiny = _register(monkeypatch, _dataset_asset(server.url("/main.zip"), "tiny", "tiny", {"train": 3}))
    with pytest.raises(AssetIncompleteError, match=r"train: 2 images / 2 labels \(expected 3 each\)"):
        assets.fetch(tiny.name, progress=False)
    datasets_dir = cache / "companion" / "datasets"
    assert not datasets_dir.exists() or _files_under(datasets_dir) == [] and [p.name for p in datasets_dir.iterdir()] == ["tiny.lock"]


def test_directory_corrupt_archive(monkeypatch: pytest.MonkeyPatch, server: Server, cache: Path) -> None:
    server.routes["/main.zip"] = b"this is not a zip file"
    tiny = _register(monkeypatch, _dataset_asset(server.url("/main.zip"), "tiny", "tiny", {"train": 1}))
    with pytest.raises(AssetIncompleteError, match="not a valid zip"):
        assets.fetch(tiny.name, progress=False)
    assert _files_under(cache) == []


# --- describe_source / SparseZoo / CLI -----------------------------------------------


def test_describe_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache: Path) -> None:
    assert assets.describe_source().startswith("upstream (cache: ")
    assert str(cache) in assets.describe_source()
    monkeypatch.setenv("YOLOTUT_MIRROR", str(tmp_path))
    assert assets.describe_source().startswith(f"mirror: {tmp_path}")
    monkeypatch.setenv("YOLOTUT_MIRROR", str(tmp_path / "missing"))
    assert "does not exist" in assets.describe_source()


def test_zoo_stub_fails_clearly_offline() -> None:
    """Really asks SparseZoo (unreachable here / end of life); must fail fast and clearly."""
    outcome: dict[str, BaseException | object] = {}

    def call() -> None:
        try:
            outcome["result"] = assets.resolve_zoo_stub(
                "zoo:cv/detection/yolov5-n/pytorch/ultralytics/coco/pruned40_quant-none"
            )
        except BaseException as exc:  # noqa: BLE001 (handed to the main thread)
            outcome["error"] = exc

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "resolve_zoo_stub hung"
    if "result" in outcome:
        pytest.skip("SparseZoo answered: this machine is online and the stub still resolves")
    error = outcome["error"]
    assert isinstance(error, SparseZooUnavailableError), repr(error)
    message = str(error)
    assert "end of life" in message and "yolotut train --recipe" in message and "yolotut fetch" in message


def test_zoo_stub_rejects_non_stub() -> None:
    with pytest.raises(ValueError, match="not a SparseZoo stub"):
        assets.resolve_zoo_stub("/some/local/dir")


def test_cli_fetch_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in assets.REGISTRY)


@needs_mirror
def test_cli_fetch_prints_path(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("YOLOTUT_MIRROR", str(MIRROR))
    assert main(["fetch", "zidane"]) == 0
    assert capsys.readouterr().out.strip() == str(MIRROR / assets.REGISTRY["zidane"].mirror_path)
    assert main(["fetch", "zidane", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert payload == {"name": "zidane", "path": str(MIRROR / assets.REGISTRY["zidane"].mirror_path)}


def test_cli_fetch_errors(monkeypatch: pytest.MonkeyPatch, dead_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", "nope"]) == 2
    assert "unknown asset 'nope'" in capsys.readouterr().err
    _register(monkeypatch, _file_asset(dead_url, PAYLOAD))
    assert main(["fetch", "t-file", "--no-progress"]) == 2
    assert "YOLOTUT_MIRROR=/path/to/mirror" in capsys.readouterr().err
