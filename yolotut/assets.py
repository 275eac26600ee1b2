"""Registry of the upstream assets the tutorial uses, and verified, cached fetching.

Where a file comes from, in order:

1. ``$YOLOTUT_MIRROR`` (an offline copy laid out like upstream, see
   ``shared/mirror/README.md`` beside the checkout): the file is checked and its own path returned.
   Nothing is ever written into the mirror; directory assets are used in place.
2. ``$YOLOTUT_CACHE`` (default ``pooch.os_cache("yolotut")``): the cache has the same
   layout as the mirror (``<cache>/<mirror_path>``), so a filled cache can itself be
   used as a mirror.
3. Upstream, downloaded by pooch into the cache: pooch streams to a temporary file next
   to the target, checks the sha256 and only then moves it into place, so an interrupted
   or corrupt download never leaves a file under the final name.

Several processes (notebooks run side by side, test workers) may fetch the same asset
into an empty cache at once: a lock file beside the target (``<target>.lock``,
``filelock``) lets one of them download or extract while the others wait, then find the
verified file. The lock is an OS file lock, released when its holder exits or is killed.

Checksums: every file asset carries the sha256 of the published upstream file (checked
against the mirror copies). The two datasets are directories inside the companion
repository, which GitHub only serves as a zip of branch ``main``; that zip is generated
on the fly and has no stable checksum, so directory assets are checked against a
manifest instead (number of images and labels per split).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import filelock
import pooch
import requests

from yolotut.errors import InputError, UnavailableError
from yolotut.progress import tqdm

__all__ = [
    "REGISTRY",
    "Asset",
    "AssetChecksumError",
    "AssetIncompleteError",
    "AssetUnavailableError",
    "AssetVerificationError",
    "SparseZooUnavailableError",
    "UnknownAssetError",
    "cache_dir",
    "describe_source",
    "fetch",
    "get_asset",
    "mirror_root",
    "resolve_zoo_stub",
    "verify",
]

_LOG = logging.getLogger(__name__)

MIRROR_ENV = "YOLOTUT_MIRROR"
CACHE_ENV = "YOLOTUT_CACHE"
# Seconds pooch/requests waits for a connection or the next chunk, not the whole
# download: a dead server fails fast, a slow but live one still finishes.
DOWNLOAD_TIMEOUT_S = 30
# How long a process waits for another one that is downloading the same asset.
CACHE_LOCK_TIMEOUT_S = 3600
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

COMPANION_REPO = "https://github.com/dnth/yolov5-deepsparse-blogpost"
COMPANION_RAW = f"{COMPANION_REPO}/raw/main"
COMPANION_ZIP = f"{COMPANION_REPO}/archive/refs/heads/main.zip"
# GitHub puts everything of a branch archive under "<repo>-<branch>/".
COMPANION_ZIP_ROOT = "yolov5-deepsparse-blogpost-main"
ULTRALYTICS_V70 = "https://github.com/ultralytics/yolov5/releases/download/v7.0"


@dataclass(frozen=True)
class Asset:
    """One upstream file or folder.

    ``mirror_path`` is relative to the mirror root and follows the upstream layout
    (``companion/<path in the companion repo>``). For ``kind="directory"``, ``url`` is
    the archive that contains the folder, ``archive_path`` the folder inside it and
    ``manifest`` the ``(split, number of images)`` pairs a complete copy has (each split
    has as many label files as images).
    """

    name: str
    url: str
    sha256: str | None
    size: int | None
    description: str
    mirror_path: str
    kind: Literal["file", "directory"] = "file"
    archive_path: str | None = None
    manifest: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("file", "directory"):
            raise ValueError(f"asset {self.name!r}: kind must be 'file' or 'directory', not {self.kind!r}")
        if self.kind == "directory" and (not self.manifest or not self.archive_path):
            raise ValueError(f"directory asset {self.name!r} needs a manifest and an archive_path")
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"asset {self.name!r}: sha256 must be 64 lowercase hex digits")


# --- errors ------------------------------------------------------------------------


class UnknownAssetError(KeyError, InputError):
    """No asset of that name. A KeyError (lookup) and a ValueError (bad input)."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


class AssetVerificationError(InputError):
    """A file or folder exists but is not the registered content."""


class AssetChecksumError(AssetVerificationError):
    """A file's size or sha256 differs from the registry."""

    def __init__(self, message: str, *, path: str, expected: str | None, actual: str | None) -> None:
        super().__init__(message)
        self.path = path
        self.expected = expected
        self.actual = actual


class AssetIncompleteError(AssetVerificationError):
    """A directory asset does not hold the files its manifest lists, or an archive is corrupt."""


class AssetUnavailableError(UnavailableError):
    """Neither the mirror nor the cache holds the asset and it cannot be downloaded."""


class SparseZooUnavailableError(UnavailableError):
    """A ``zoo:`` stub cannot be resolved (SparseZoo is end-of-life / offline)."""


# --- registry ------------------------------------------------------------------------


def _companion_file(name: str, path: str, sha256: str, size: int, description: str) -> Asset:
    return Asset(
        name=name,
        url=f"{COMPANION_RAW}/{path}",
        sha256=sha256,
        size=size,
        description=description,
        mirror_path=f"companion/{path}",
    )


def _companion_dataset(name: str, path: str, manifest: Mapping[str, int], description: str) -> Asset:
    return Asset(
        name=name,
        url=COMPANION_ZIP,
        sha256=None,
        size=None,
        description=description,
        mirror_path=f"companion/{path}",
        kind="directory",
        archive_path=f"{COMPANION_ZIP_ROOT}/{path}",
        manifest=tuple(manifest.items()),
    )


def _ultralytics_v70(variant: str, sha256: str, size: int, description: str) -> Asset:
    return Asset(
        name=f"yolov5{variant}",
        url=f"{ULTRALYTICS_V70}/yolov5{variant}.pt",
        sha256=sha256,
        size=size,
        description=description,
        # yolov5n is mirrored at this path; the others are laid out alike in the cache.
        mirror_path=f"companion/yolov5-train/yolov5{variant}.pt",
    )


_BLOG_WEIGHTS = "yolov5-train/yolov5-deepsparse/{}/weights/best.onnx"
# sha256/size of the companion files: computed with sha256sum/stat on the mirror copies;
# the four the mirror README lists agree with it.
# yolov5s/m/l: not mirrored. Their sha256 and sizes are the values that several public
# GitHub projects record after downloading the v7.0 release assets (yolov5s: many
# projects; yolov5m: several, same size 42,806,829; yolov5l: one project only). Ultralytics
# does not publish checksums itself, so these could not be re-checked offline.
_ASSETS = [
    _companion_file(
        "demo-video",
        "yolov5-train/data/pexels-cottonbro-8717592.mp4",
        "d3e18618282609daf10fb44d67d7e1733f286434078a918624b433d126b0b1eb",
        519_362,
        "the blog's demo video (Pexels, cottonbro 8717592) that its FPS figures are measured on",
    ),
    _companion_file(
        "blog-yolov5n-pq-hardswish",
        _BLOG_WEIGHTS.format("yolov5n-sgd-pruned-quantized-hardswish"),
        "4df671dfa1f9ef7cb9eb41365edee381f51f51475b3a3eb655f08f21d88d7f5d",
        1_859_376,
        "blog author's final model: YOLOv5n pruned + INT8 (QAT), Hardswish, pistols, 416, uint8 input",
    ),
    _companion_file(
        "blog-yolov5n-pq-silu",
        _BLOG_WEIGHTS.format("yolov5n-sgd-pruned-quantized"),
        "14d6d1fd4e7b3b9a48d6dacea738445a747ecb8a9c0ef5f7bf8f3d23e361d6fb",
        1_851_383,
        "blog author's YOLOv5n pruned + INT8 (QAT), SiLU, pistols, 416, uint8 input",
    ),
    _companion_file(
        "bus",
        "yolov5-train/data/images/bus.jpg",
        "33b198a1d2839bb9ac4c65d61f9e852196793cae9a0781360859425f6022b69c",
        487_438,
        "Ultralytics sample image bus.jpg (COCO classes)",
    ),
    _companion_file(
        "zidane",
        "yolov5-train/data/images/zidane.jpg",
        "356dad2107bb0254e4e4a81bc1d9c7140043e88569d546e5b404b19bffa77d0a",
        168_949,
        "Ultralytics sample image zidane.jpg (COCO classes)",
    ),
    _companion_file(
        "pistols-yaml",
        "yolov5-train/data/pistols.yaml",
        "1d9eed85cb65568f21754fe01968fc619dd65b51721de928e8837852bb6b400a",
        108,
        "dataset definition of the pistols dataset, as the blog used it",
    ),
    _companion_file(
        "asl-yaml",
        "yolov5-train/data/asl.yaml",
        "08d8475963d7c94a77c156a317bc76a7d3942c503e2c09d48b43f56ab9d53677",
        242,
        "dataset definition of the American Sign Language letters dataset",
    ),
    _companion_dataset(
        "pistols",
        "datasets/pistols",
        {"train": 2471, "valid": 500},
        "Roboflow Pistols dataset, 1 class, 416x416, 2471 train / 500 valid (upstream: repo zip, "
        "no stable checksum; checked by file counts)",
    ),
    _companion_dataset(
        "asl",
        "datasets/american_sign_language",
        {"train": 1512, "valid": 144, "test": 72},
        "Roboflow American Sign Language letters, 26 classes, 416x416, 1512/144/72 (upstream: repo "
        "zip, no stable checksum; checked by file counts)",
    ),
    _ultralytics_v70(
        "n",
        "4f180cf23ba0717ada0badd6c685026d73d48f184d00fc159c2641284b2ac0a3",
        4_062_133,
        "official Ultralytics YOLOv5n v7.0 COCO checkpoint (sha256 checked against the mirror copy)",
    ),
    _ultralytics_v70(
        "s",
        "8b3b748c1e592ddd8868022e8732fde20025197328490623cc16c6f24d0782ee",
        14_808_437,
        "official Ultralytics YOLOv5s v7.0 COCO checkpoint (not mirrored; sha256 as recorded by "
        "public third-party projects)",
    ),
    _ultralytics_v70(
        "m",
        "61d933360ba5a7733a36764996c800287d973889d875227f5beedd2473a97a56",
        42_806_829,
        "official Ultralytics YOLOv5m v7.0 COCO checkpoint (not mirrored; sha256 as recorded by "
        "public third-party projects)",
    ),
    _ultralytics_v70(
        "l",
        "2f603b7354c25454d1270663a14d8ddc1eea98e5eebc1d84ce0c6e3150fa155f",
        93_622_629,
        "official Ultralytics YOLOv5l v7.0 COCO checkpoint (not mirrored; sha256 as recorded by "
        "one public third-party project)",
    ),
]

REGISTRY: dict[str, Asset] = {asset.name: asset for asset in _ASSETS}


def get_asset(name: str) -> Asset:
    """The registered asset ``name``; :class:`UnknownAssetError` lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise UnknownAssetError(f"unknown asset {name!r}; known assets: {known}") from None


# --- locations -----------------------------------------------------------------------


def mirror_root() -> Path | None:
    """``$YOLOTUT_MIRROR`` as an absolute path, or None when unset/empty."""
    value = os.environ.get(MIRROR_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def cache_dir() -> Path:
    """``$YOLOTUT_CACHE``, else the OS cache folder for yolotut (not created here)."""
    value = os.environ.get(CACHE_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else Path(pooch.os_cache("yolotut"))


def describe_source() -> str:
    """One line saying where :func:`fetch` takes assets from."""
    cache = cache_dir()
    mirror = mirror_root()
    if mirror is None:
        return f"upstream (cache: {cache}; {MIRROR_ENV} not set)"
    if not mirror.is_dir():
        return f"upstream (cache: {cache}); {MIRROR_ENV}={mirror} does not exist"
    return f"mirror: {mirror} (else upstream, cache: {cache})"


# --- verification --------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    # Keyed on size and mtime so that a file changed on disk is hashed again, while
    # repeated fetches of the same file (notebooks call fetch often) cost one stat.
    return pooch.file_hash(path, alg="sha256")


def _sha256(path: Path) -> str:
    st = path.stat()
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _verify_file(asset: Asset, path: Path) -> None:
    expected = asset.sha256
    if expected is None:
        # Unverifiable upstream file: at least detect later corruption of our copy.
        sidecar = _sidecar(path)
        if not sidecar.is_file():
            _LOG.warning("%s: %s has no registered sha256; using it unverified", asset.name, path)
            return
        expected = sidecar.read_text().split()[0]
    if asset.size is not None:
        size = path.stat().st_size
        if size != asset.size:
            raise AssetChecksumError(
                f"{asset.name}: {path} has {size} bytes, expected {asset.size} (truncated or a "
                f"different file); delete it or fix the mirror",
                path=str(path),
                expected=expected,
                actual=None,
            )
    actual = _sha256(path)
    if actual != expected:
        raise AssetChecksumError(
            f"{asset.name}: sha256 of {path} is {actual}, expected {expected}; the file is "
            f"corrupt or not the registered one, delete it or fix the mirror",
            path=str(path),
            expected=expected,
            actual=actual,
        )


def _count(folder: Path, suffixes: frozenset[str]) -> int:
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def _verify_directory(asset: Asset, root: Path) -> None:
    problems = []
    for split, expected in asset.manifest:
        n_images = _count(root / split / "images", IMAGE_SUFFIXES)
        n_labels = _count(root / split / "labels", frozenset({".txt"}))
        if n_images != expected or n_labels != expected:
            problems.append(
                f"{split}: {n_images} images / {n_labels} labels (expected {expected} each)"
            )
    if problems:
        raise AssetIncompleteError(
            f"{asset.name}: {root} is incomplete: {'; '.join(problems)}. Re-copy the folder "
            f"(or delete it if it is in the cache {cache_dir()} and fetch again)"
        )


def verify(asset: Asset, path: Path) -> None:
    """Raise :class:`AssetVerificationError` unless ``path`` holds ``asset``."""
    if asset.kind == "directory":
        _verify_directory(asset, path)
    else:
        _verify_file(asset, path)


# --- fetching ------------------------------------------------------------------------


def _unavailable(asset: Asset, reason: str) -> AssetUnavailableError:
    mirror = mirror_root()
    if mirror is None:
        mirror_note = f"{MIRROR_ENV} is not set"
    else:
        mirror_note = f"{MIRROR_ENV}={mirror} has no {asset.mirror_path}"
    return AssetUnavailableError(
        f"cannot get asset {asset.name!r}: {reason} (tried {asset.url}); {mirror_note}. "
        f"Offline? Set {MIRROR_ENV}=/path/to/mirror, a folder laid out like upstream, "
        f"i.e. holding /path/to/mirror/{asset.mirror_path}"
    )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
        _sidecar(path).unlink(missing_ok=True)


def _download(asset: Asset, target: Path, *, progress: bool) -> Path:
    """Download ``asset.url`` to ``target`` with pooch (temp file, hash check, move)."""
    known_hash = f"sha256:{asset.sha256}" if asset.sha256 else None
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=DOWNLOAD_TIMEOUT_S)
    try:
        fetched = pooch.retrieve(
            asset.url,
            known_hash=known_hash,
            fname=target.name,
            path=target.parent,
            downloader=downloader,
        )
    except requests.exceptions.RequestException as exc:
        # Connection refused/reset, DNS, timeouts, HTTP 4xx/5xx, and a connection that
        # closes before Content-Length bytes arrived (ChunkedEncodingError).
        raise _unavailable(asset, f"download failed: {exc}") from exc
    except ValueError as exc:
        # pooch raises ValueError for a hash mismatch, after deleting its temp file.
        found = re.search(r"but got ([0-9a-f]{64})", str(exc))
        raise AssetChecksumError(
            f"{asset.name}: the file downloaded from {asset.url} does not match the registry "
            f"(expected sha256 {asset.sha256}, got {found.group(1) if found else 'see below'}); "
            f"it was discarded. pooch: {exc}",
            path=str(target),
            expected=asset.sha256,
            actual=found.group(1) if found else None,
        ) from exc
    path = Path(fetched)
    if asset.sha256 is None:
        digest = pooch.file_hash(str(path), alg="sha256")
        sidecar = _sidecar(path)
        partial = sidecar.with_name(f".{sidecar.name}.tmp")
        partial.write_text(f"{digest}  {path.name}\n")
        os.replace(partial, sidecar)
        _LOG.warning(
            "%s: no published sha256, downloaded %s unverified; recorded its sha256 %s in %s",
            asset.name,
            path,
            digest,
            _sidecar(path),
        )
    return path


def _extract_directory(asset: Asset, archive: Path, target: Path, *, progress: bool) -> Path:
    """Extract ``asset.archive_path`` from ``archive`` into ``target``, all or nothing."""
    prefix = asset.archive_path.rstrip("/") + "/"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target, so the final rename is atomic (same filesystem).
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                members = [m for m in zf.infolist() if m.filename.startswith(prefix) and not m.is_dir()]
                if not members:
                    raise AssetIncompleteError(
                        f"{asset.name}: {archive} has no folder {prefix}; the upstream repository "
                        f"layout changed. Use {MIRROR_ENV} instead"
                    )
                for member in tqdm(members, desc=f"extract {asset.name}", unit="file", disable=not progress):
                    rel = PurePosixPath(member.filename[len(prefix) :])
                    if rel.is_absolute() or ".." in rel.parts:
                        raise AssetIncompleteError(f"{asset.name}: unsafe path {member.filename!r} in {archive}")
                    dest = tmp.joinpath(*rel.parts)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(member) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        except zipfile.BadZipFile as exc:
            archive.unlink(missing_ok=True)
            _sidecar(archive).unlink(missing_ok=True)
            raise AssetIncompleteError(
                f"{asset.name}: {archive} is not a valid zip ({exc}); deleted it, fetch again"
            ) from exc
        _verify_directory(asset, tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process extracted it first; keep theirs if it is complete.
            if not target.is_dir():
                raise
            _verify_directory(asset, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def fetch(name: str, *, progress: bool = True, allow_download: bool = True) -> Path:
    """Local path of asset ``name``, verified: from the mirror, the cache, or upstream.

    Mirror hits return the mirror's own (read-only) path. Raises
    :class:`UnknownAssetError`, :class:`AssetVerificationError` (bad checksum or
    incomplete folder) or :class:`AssetUnavailableError` (not local, cannot download).
    """
    asset = get_asset(name)
    mirror = mirror_root()
    if mirror is not None:
        candidate = mirror / asset.mirror_path
        if candidate.exists():
            # A bad mirror copy is an error, not a reason to go online: the user asked
            # for the mirror and should learn that it is broken.
            verify(asset, candidate)
            return candidate

    target = cache_dir() / asset.mirror_path
    if target.exists():
        try:
            verify(asset, target)
            return target
        except AssetVerificationError:
            pass  # replaced below, under the lock (another process may be at it already)
    with _cache_lock(asset, target):
        return _fill_cache(asset, target, progress=progress, allow_download=allow_download)


@contextlib.contextmanager
def _cache_lock(asset: Asset, target: Path) -> Iterator[None]:
    """Held by the one process that puts ``target`` into the cache while the others wait."""
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(f"{target}.lock")
    try:
        lock.acquire(timeout=CACHE_LOCK_TIMEOUT_S)
    except filelock.Timeout as exc:
        raise AssetUnavailableError(
            f"cannot get asset {asset.name!r}: another process has been fetching it into {target} for "
            f"{CACHE_LOCK_TIMEOUT_S} s; let it finish, or stop it and fetch again"
        ) from exc
    try:
        yield
    finally:
        lock.release()


def _fill_cache(asset: Asset, target: Path, *, progress: bool, allow_download: bool) -> Path:
    """Put ``asset`` into the cache at ``target``; the caller holds the target's lock."""
    if target.exists():
        try:
            verify(asset, target)
            return target  # another process put it there while this one waited
        except AssetVerificationError as exc:
            _LOG.warning("%s; removing it from the cache and fetching again", exc)
            _remove(target)

    if not allow_download:
        raise _unavailable(asset, "not in the mirror or the cache and downloads are disabled")

    if asset.kind == "file":
        return _download(asset, target, progress=progress)

    # Directory assets: the whole companion repo as a zip, kept in the cache so that the
    # second dataset does not download it again.
    archive_asset = Asset(
        name=asset.name,
        url=asset.url,
        sha256=None,
        size=None,
        description=f"companion repository archive holding {asset.name}",
        mirror_path=asset.mirror_path,
    )
    archive = cache_dir() / "archives" / f"{COMPANION_ZIP_ROOT}.zip"
    with _cache_lock(archive_asset, archive):  # both datasets come from this one archive
        if archive.exists():
            try:
                _verify_file(archive_asset, archive)  # against the sha256 recorded at download
            except AssetVerificationError as exc:
                _LOG.warning("%s; removing it and downloading again", exc)
                _remove(archive)
        if not archive.exists():
            archive = _download(archive_asset, archive, progress=progress)
    return _extract_directory(asset, archive, target, progress=progress)


# --- SparseZoo -----------------------------------------------------------------------

SPARSEZOO_EOL = (
    "SparseZoo reached end of life in June 2025 and its stubs no longer resolve. Use a local "
    "model instead: train a pruned + INT8 model with `yolotut train --recipe ...` (the "
    "tutorial's own recipes), or use the blog author's pruned + quantized ONNX models: "
    "`yolotut fetch blog-yolov5n-pq-hardswish` / `yolotut fetch blog-yolov5n-pq-silu`"
)


def resolve_zoo_stub(stub: str) -> Path:
    """Download a SparseZoo ``zoo:`` stub's ONNX model; :class:`SparseZooUnavailableError` if it cannot."""
    if not stub.startswith("zoo:"):
        raise ValueError(f"{stub!r} is not a SparseZoo stub (they start with 'zoo:')")
    # isort: off
    from yolotut import compat  # noqa: F401  (sets NM_DISABLE_ANALYTICS before sparsezoo loads)
    import sparsezoo
    from sparsezoo.api.exceptions import InvalidQueryException
    # isort: on

    try:
        model = sparsezoo.Model(stub, download_path=str(cache_dir() / "sparsezoo" / _safe_name(stub)))
        onnx_file = model.onnx_model
        if onnx_file is None:
            raise ValueError(f"stub {stub} has no ONNX model")
        return Path(onnx_file.path)
    except (requests.exceptions.RequestException, InvalidQueryException, ValueError, RuntimeError) as exc:
        # Offline: requests ConnectionError (DNS); online after EOL: HTTP errors, bad
        # JSON, or "No matching models found" (ValueError).
        raise SparseZooUnavailableError(f"cannot resolve {stub}: {exc}. {SPARSEZOO_EOL}") from exc


def _safe_name(stub: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stub.removeprefix("zoo:")).strip("_")
