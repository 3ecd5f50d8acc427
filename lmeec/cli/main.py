"""The `lmeec` entry point: one verb per module of this package, each parsing arguments and calling the library."""

from __future__ import annotations

import argparse
import importlib
import sys

from lmeec import __version__

# verb -> module under lmeec.cli defining `add_parser(subparsers)`; each parser sets `func(args) -> int`.
VERBS = ("demo", "checkpoint", "export", "build", "run", "check", "bench", "data", "eval", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmeec", description="LM-EEC ego-exo correspondence: reference, export, runtime, evaluation."
    )
    parser.add_argument("--version", action="version", version=f"lmeec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for verb in VERBS:
        importlib.import_module(f"lmeec.cli.{verb}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError, RuntimeError) as exc:
        print(f"lmeec {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
