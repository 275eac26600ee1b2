"""The ``yolotut`` command line.

Thin on purpose: each subcommand parses its arguments and calls one module. Heavy
imports (torch, deepsparse, ...) happen inside the handlers so that ``yolotut --help``
and ``yolotut env`` stay fast.

``--json`` prints one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def print_json(payload: dict[str, Any]) -> None:
    """Print one JSON object on its own (last) line of stdout."""
    sys.stdout.flush()
    print(json.dumps(payload, default=str, sort_keys=True), flush=True)


# --- fetch / env (assets, hardware) -----------------------------------------------


def _add_fetch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fetch", help="print the local path of a registered asset (mirror, cache, else download)")
    p.add_argument("name", nargs="?", help="asset name; omit with --list to see them")
    p.add_argument("--list", action="store_true", help="list the registered assets")
    p.add_argument("--no-download", action="store_true", help="use only the mirror and the cache")
    p.add_argument("--no-progress", action="store_true", help="no download progress bar")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_fetch)


def _cmd_fetch(args: argparse.Namespace) -> int:
    from yolotut import assets

    if args.list or not args.name:
        if args.json:
            print_json({name: asset.description for name, asset in assets.REGISTRY.items()})
            return 0
        print(f"source: {assets.describe_source()}")
        for asset in assets.REGISTRY.values():
            print(f"{asset.name:28s} {asset.description}")
        return 0
    path = assets.fetch(args.name, progress=not args.no_progress, allow_download=not args.no_download)
    if args.json:
        print_json({"name": args.name, "path": str(path)})
    else:
        print(path)
    return 0


def _add_env(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("env", help="print versions, CPU features and the asset source in use")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_env)


def _cmd_env(args: argparse.Namespace) -> int:
    from yolotut import assets, hardware

    info = hardware.environment_report()
    info["asset_source"] = assets.describe_source()
    if args.json:
        print_json(info)
    else:
        for key, value in info.items():
            print(f"{key:24s} {value}")
    return 0


# --- end fetch / env ---------------------------------------------------------------


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_fetch,
    _add_env,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yolotut",
        description="YOLOv5 on CPUs: pruning + INT8 with SparseML, DeepSparse, and a check of the published FPS claims.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        # Errors raised by yolotut carry a message that says what to do; show it
        # without a traceback.
        print(f"yolotut {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
