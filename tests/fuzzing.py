"""Shared pieces of the property-based fuzz tests (``tests/test_fuzz_*.py``).

The property every target is held to: a reader given generated input either returns a
valid result or raises its documented error type (:mod:`yolotut.errors`) with a
message that names the input; any other exception fails the test, and hypothesis's
deadline catches a hang.

Two budgets (profiles registered in ``tests/conftest.py``, chosen by
``HYPOTHESIS_PROFILE``): ``ci`` (the default, a few hundred examples per target, what
``make test`` runs) and ``long`` (at least 10,000 per target, ``make fuzz``).
:func:`record` counts the examples each target really ran; ``conftest.py`` prints the
counts at the end of the session.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import strategies as st

EXAMPLES: Counter[str] = Counter()

# File names with spaces, unicode (accents, CJK, emoji, right-to-left) and punctuation,
# as real datasets have them (the Pistols dataset: spaces and parentheses).
_NAME_CHARS = st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\", max_codepoint=0x1FAFF
)
file_stems = st.text(_NAME_CHARS, min_size=1, max_size=24).filter(
    lambda s: s.strip(".") != "" and len(s.encode("utf-8")) <= 200
)


def record(target: str) -> None:
    """Count one example of ``target`` (see the module docstring)."""
    EXAMPLES[target] += 1


@contextmanager
def documented(target: str, path: str | os.PathLike[str], *errors: type[BaseException]) -> Iterator[None]:
    """Run one example of ``target``: any exception but ``errors`` fails it, and an
    ``errors`` exception must name ``path`` (its file name, at least)."""
    record(target)
    try:
        yield
    except errors as exc:
        name = Path(path).name
        assert name in str(exc), f"{type(exc).__name__} does not name {name!r}: {exc}"


def write_bytes(folder: Path, stem: str, suffix: str, data: bytes) -> Path:
    """``data`` in ``folder/<stem><suffix>``, replacing what an earlier example left there."""
    path = folder / f"{stem}{suffix}"
    path.write_bytes(data)
    return path


# JSON/YAML-like values: what a hand-edited or corrupted file can hold.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
