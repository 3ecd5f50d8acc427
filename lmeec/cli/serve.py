"""`lmeec serve`: the bundled Triton Inference Server serving several headsets' sessions on loopback."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from lmeec.runtime.backend import BACKENDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve",
        help="serve sessions of several headsets with Triton Inference Server (loopback)",
        description="One Triton model: (session id, start, end, source frame, source mask, target frame) -> "
        "(target mask, object score, skipped). Each session holds one of --max-sessions preallocated slots.",
    )
    serve.add_argument("--engines", required=True, help="exported engine folder (manifest.json)")
    serve.add_argument("--backend", choices=[b for b in BACKENDS if b != "torch"], default="ort")
    serve.add_argument("--device", default="cpu")
    serve.add_argument("--threads", type=int, help="CPU threads for ONNX Runtime")
    serve.add_argument("--max-sessions", type=int, default=4, help="slots preallocated (sessions at once)")
    serve.add_argument(
        "--session-timeout", type=float, default=60.0, help="seconds idle before a slot is freed"
    )
    serve.add_argument("--http-port", type=int, default=8000, help="HTTP port on 127.0.0.1")
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from lmeec.serve.triton import ServeConfig, TritonServer

    config = ServeConfig(
        engines=Path(args.engines),
        backend=args.backend,
        max_sessions=args.max_sessions,
        session_timeout_s=args.session_timeout,
        device=args.device,
        threads=args.threads,
        http_port=args.http_port,
    )
    if args.backend == "trt" and not args.device.startswith("cuda"):
        raise ValueError("--backend trt runs on a GPU: add --device cuda")
    if config.max_sessions < 1:
        raise ValueError(f"--max-sessions must be at least 1, got {config.max_sessions}")
    with (
        tempfile.TemporaryDirectory(prefix="lmeec-serve.") as workdir,
        TritonServer(config, Path(workdir)) as server,
    ):
        server.wait_ready()
        print(
            f"serving model 'lmeec' on http://{server.url} ({config.max_sessions} session slots); Ctrl-C stops"
        )
        try:
            server.process.wait()
        except KeyboardInterrupt:
            return 0
        raise RuntimeError(f"tritonserver exited ({server.process.returncode}); log: {server.log_path}")
