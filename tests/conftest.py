"""Shared test set-up: the offline asset mirror.

Tests read upstream assets (datasets, yolov5n.pt, the blog's ONNX models) through
``yolotut.assets``, which uses ``YOLOTUT_MIRROR`` when it is set. CI and the Makefile
set it to the read-only ``../shared/mirror``; when it is unset and that folder sits
beside the checkout, the session uses it too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SIBLING_MIRROR = REPO.parent / "shared" / "mirror"


def find_mirror() -> Path | None:
    for candidate in (os.environ.get("YOLOTUT_MIRROR"), SIBLING_MIRROR):
        if candidate and (Path(candidate) / "companion" / "datasets").is_dir():
            return Path(candidate).resolve()
    return None


def pytest_configure(config: pytest.Config) -> None:
    root = find_mirror()
    if root is not None and not os.environ.get("YOLOTUT_MIRROR"):
        os.environ["YOLOTUT_MIRROR"] = str(root)


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch) -> Path:
    root = find_mirror()
    if root is None:
        pytest.skip("offline asset mirror not found (set YOLOTUT_MIRROR to a copy of shared/mirror)")
    monkeypatch.setenv("YOLOTUT_MIRROR", str(root))
    return root
