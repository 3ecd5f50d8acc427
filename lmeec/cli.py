"""The `lmeec` command line: one verb per stage of the data flow, each defined next to the code it drives."""

from __future__ import annotations

import argparse
import importlib
import sys

from lmeec import __version__

# verb -> module defining `add_parser(subparsers)`; each parser sets `func(args) -> int`.
COMMANDS: dict[str, str] = {
    "demo": "lmeec.runtime.demo_cli",
    "checkpoint": "lmeec.model.cli",
    "export": "lmeec.export.cli",
    "run": "lmeec.runtime.cli",
    "bench": "lmeec.runtime.bench_cli",
    "build": "lmeec.export.trt_cli",
    "check": "lmeec.runtime.check_cli",
    "data": "lmeec.eval.cli",
    "eval": "lmeec.eval.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmeec", description="LM-EEC ego-exo correspondence: reference, export, runtime, evaluation."
    )
    parser.add_argument("--version", action="version", version=f"lmeec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in dict.fromkeys(COMMANDS.values()):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # that stage is not built yet
                continue
            raise
        module.add_parser(sub)
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
