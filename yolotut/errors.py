"""The error types yolotut raises for failures a user can fix, in one place.

Every reader of user input (label files, dataset yaml, checkpoints, ONNX files,
videos, result and claims files, asset names) raises one of these, or
:class:`FileNotFoundError`, with a message that names the input and says what to do.
The command line prints such a message as one line and exits with status 2
(:func:`yolotut.cli.main`); anything else is a bug and keeps its traceback.

* :class:`InputError` (a ``ValueError``): the input exists but is wrong -- truncated,
  corrupt, of the wrong type, or valid but not what yolotut can use. The readers'
  own types derive from it: ``training.data.LabelError``/``ImageError``/
  ``DatasetConfigError``, ``models.checkpoint.CheckpointError``,
  ``reproduce.registry.ClaimsError``, ``assets.AssetVerificationError``,
  ``assets.UnknownAssetError``, :class:`OnnxModelError`, :class:`OutputPathError`.
* :class:`UnavailableError` (a ``RuntimeError``): something the task needs is not
  here -- an asset that is neither mirrored, cached nor downloadable, an engine that
  cannot run on this machine, a SparseZoo stub after its end of life.
* ``FileNotFoundError``: an input path that does not exist.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = [
    "InputError",
    "OnnxModelError",
    "OutputPathError",
    "UnavailableError",
    "check_output_path",
    "describe_os_error",
]


class InputError(ValueError):
    """Input a user can fix; the message names it and says what to do.

    ``path`` is the file (or name) the error is about, when there is one.
    """

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else os.fspath(path)


class OnnxModelError(InputError):
    """An ONNX file that cannot be parsed, or is not a YOLOv5 detector this project runs."""


class OutputPathError(InputError):
    """An output path (``--out`` ...) that cannot be written."""


class UnavailableError(RuntimeError):
    """Something the task needs is not available here; the message says how to get it."""


_OS_ERROR_FIXES = {
    errno.ENOENT: "check the path",
    errno.EACCES: "choose a location you may read/write, or fix its permissions",
    errno.EPERM: "choose a location you may read/write, or fix its permissions",
    errno.EROFS: "the file system is read-only; choose another location",
    errno.EISDIR: "that is a folder; give a file name",
    errno.ENOTDIR: "a part of that path is a file, not a folder; choose another path",
    errno.ENOSPC: "the disk is full; free some space or choose another location",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
    errno.EEXIST: "remove it or choose another path",
}


def describe_os_error(exc: OSError) -> str:
    """One line for an ``OSError`` about a file: the path, what went wrong and the fix."""
    where = exc.filename if exc.filename is not None else "file"
    what = exc.strerror or str(exc)
    fix = _OS_ERROR_FIXES.get(exc.errno or -1)
    return f"{where}: {what}" + (f"; {fix}" if fix else "")


def check_output_path(path: str | os.PathLike[str], option: str = "--out", *, folder: bool = False) -> Path:
    """``path`` if a file (``folder``: a folder) can be created there; :class:`OutputPathError` if not.

    Checked before the work starts, so that an hour of training or benchmarking is not
    lost to a typo in the output path. Missing parent folders are fine (the writers
    create them); an existing folder where a file should go (or a file where a folder
    should), a parent that is a file, or a location this process may not write to are not.
    """
    target = Path(path).expanduser()
    if not folder and target.is_dir():
        raise OutputPathError(f"{option} {target}: is a folder; give a file name", path=target)
    if folder and target.exists() and not target.is_dir():
        raise OutputPathError(f"{option} {target}: is a file; give a folder", path=target)
    existing = target if folder and target.is_dir() else target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(
            f"{option} {target}: {existing} is a file, not a folder; choose another path", path=target
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"{option} {target}: {existing} is not writable; choose a location you may write to", path=target
        )
    return target
