"""Progress bars that read well both live and in a saved notebook.

Live (JupyterLab, a terminal) they are ``tqdm.auto`` bars. In a notebook executed
headlessly (``yolotut reproduce`` sets ``YOLOTUT_PROGRESS=final``) a widget bar would be
saved as an empty box and a text bar as every intermediate state, so there each bar
prints one line when it closes: what it counted, how many, how long.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm as _auto_tqdm
from tqdm.std import tqdm as _text_tqdm

PROGRESS_ENV = "YOLOTUT_PROGRESS"
FINAL_LINE = "final"


def final_line_only() -> bool:
    """True where bars should print only their final line (headless notebook runs)."""
    return os.environ.get(PROGRESS_ENV, "").strip().lower() == FINAL_LINE


class _FinalLineBar(_text_tqdm):
    """A text bar that draws nothing until it closes, then its final state once."""

    _closing = False

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if not self._closing:
            return True
        return super().display(msg, pos)

    def close(self) -> None:
        self._closing = True
        super().close()


def tqdm(*args: Any, **kwargs: Any) -> _auto_tqdm:
    """``tqdm.auto.tqdm``, or a text bar that draws only when it closes (see the module doc)."""
    if not final_line_only():
        return _auto_tqdm(*args, **kwargs)
    # stdout: a saved notebook shows stderr in red, as if every finished bar were an error.
    kwargs.setdefault("file", sys.stdout)
    kwargs.setdefault("ascii", True)
    kwargs.setdefault("ncols", 100)
    # A bar that clears itself would leave only a stray carriage return in the saved notebook.
    kwargs["leave"] = True
    return _FinalLineBar(*args, **kwargs)


@contextmanager
def plain_rich_bars() -> Iterator[None]:
    """While it lasts, ``rich`` progress bars (NNCF's) draw as text, not as a Jupyter widget,
    in a headless run: a saved notebook would keep an empty widget box. Live, nothing changes."""
    if not final_line_only():
        yield
        return
    import rich

    console = rich.get_console()
    saved = dict(console.__dict__)
    rich.reconfigure(force_jupyter=False, force_terminal=False, file=sys.stdout)
    try:
        yield
    finally:
        console.__dict__.clear()
        console.__dict__.update(saved)
