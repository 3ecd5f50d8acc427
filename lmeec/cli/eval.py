"""`lmeec eval`: score a submission with the official EgoExo4D correspondence metrics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmeec.cli.data import directions
from lmeec.eval.annotations import DIRECTIONS, load_annotations
from lmeec.eval.evaluate import evaluate_direction, format_table, write_report
from lmeec.eval.submission import Submission
from lmeec.eval.validate import Refused, validate
from lmeec.files import read_json


def _validate(args: argparse.Namespace) -> int:
    """Apply the official validator's acceptance rules: one line, exit 1 naming the first violation."""
    annotations = load_annotations(args.annotations, relations=args.relations)
    try:
        summary = validate(
            annotations, read_json(args.predictions), directions(args.direction), args.predictions
        )
    except Refused as exc:
        print(f"lmeec eval: invalid: {exc}", file=sys.stderr)
        return 1
    print(summary.line(args.predictions))
    return 0


def _eval(args: argparse.Namespace) -> int:
    """Score predictions and write the report (or only validate them, with --validate)."""
    if args.validate:
        return _validate(args)
    annotations = load_annotations(args.annotations, relations=args.relations)
    submission = Submission.load(args.predictions)
    chosen = directions(args.direction)
    if args.direction == "both":
        absent = [d for d in chosen if d not in submission.directions()]
        if absent and len(absent) < len(chosen):
            print(f"note: {args.predictions} holds no {', '.join(absent)} predictions; scoring the rest")
            chosen = [d for d in chosen if d not in absent]
    reports = [evaluate_direction(annotations, submission, d, args.allow_missing) for d in chosen]
    print(format_table(reports))
    for r in reports:
        if r.missing_scored_empty:
            print(f"{r.direction}: {r.missing_scored_empty} missing predictions scored as empty")
    report = Path(args.report) if args.report else Path(args.predictions).with_suffix(".report.json")
    write_report(report, reports, str(args.annotations), str(args.predictions))
    print(f"report {report}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the `eval` verb."""
    ev = subparsers.add_parser("eval", help="score a submission with the official EgoExo4D metrics")
    ev.add_argument(
        "--annotations", required=True, help="relations_{split}.json, processed GT file or folder"
    )
    ev.add_argument("--relations", help="raw relations file, when --annotations is a processed folder")
    ev.add_argument("--predictions", required=True, help="submission JSON")
    ev.add_argument("--direction", choices=(*DIRECTIONS, "both"), default="both")
    ev.add_argument("--report", help="JSON report path (default: PREDICTIONS with .report.json)")
    ev.add_argument(
        "--allow-missing", action="store_true", help="score missing predictions as empty and not visible"
    )
    ev.add_argument(
        "--validate",
        action="store_true",
        help="only check the file against the official validator's rules (every take, object, camera pair "
        "and query-mask frame of the chosen directions); exit 1 naming the first violation",
    )
    ev.set_defaults(func=_eval)
