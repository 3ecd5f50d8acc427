"""The `lmeec` entry point: one verb per module of this package, each parsing arguments and calling the library.

Errors, warnings and interruptions are one line each (`lmeec VERB: error: …`, exit 2; `lmeec VERB: warning: …`;
SIGINT exit 130, SIGTERM exit 143), and an interrupted verb leaves no temp output behind.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import warnings

from lmeec import __version__
from lmeec.files import remove_temps

# verb -> module under lmeec.cli defining `add_parser(subparsers)`; each parser sets `func(args) -> int`.
VERBS = ("demo", "checkpoint", "export", "build", "run", "check", "bench", "data", "eval", "serve")


class Terminated(BaseException):
    """Raised by the SIGTERM handler so that the writes in flight unwind (and clean up) as for Ctrl-C."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmeec", description="LM-EEC ego-exo correspondence: reference, export, runtime, evaluation."
    )
    parser.add_argument("--version", action="version", version=f"lmeec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for verb in VERBS:
        importlib.import_module(f"lmeec.cli.{verb}").add_parser(sub)
    return parser


def _terminate(signum, frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # imports every verb (torch among them): seconds
    except KeyboardInterrupt:
        print("lmeec: interrupted (SIGINT)", file=sys.stderr)
        return 130
    verb = f"lmeec {args.command}"

    def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"{verb}: warning: {message}", file=sys.stderr, flush=True)

    in_main = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main else None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning
            return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError, RuntimeError) as exc:
        print(f"{verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        remove_temps()
        print(f"{verb}: interrupted (SIGINT); no partial output was kept", file=sys.stderr)
        return 130
    except Terminated:
        remove_temps()
        print(f"{verb}: terminated (SIGTERM); no partial output was kept", file=sys.stderr)
        return 143
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
