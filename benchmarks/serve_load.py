"""Load test for `lmeec serve`: N simulated headsets stream a synthetic take each, concurrently, through the
Triton server; prints per-request latency percentiles and throughput, and checks that every session's masks
equal a single-session `Pipeline` run of the same frames.

    python benchmarks/serve_load.py --engines ENGINES --sessions 3 --frames 20 [--url 127.0.0.1:8000]

Without --url it starts the server itself (on a free loopback port) with --max-sessions = --sessions.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from lmeec.runtime.backend import open_backend
from lmeec.runtime.pipeline import Pipeline
from lmeec.serve.client import HeadsetClient
from lmeec.serve.triton import ServeConfig, TritonServer


def synthetic_take(seed: int, frames: int, size: tuple[int, int] = (96, 96)) -> list:
    """A square moving over noise in both views; its source-view mask."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(frames):
        src = rng.integers(0, 60, (*size, 3), dtype=np.uint8)
        tgt = rng.integers(0, 60, (size[0] * 9 // 16, size[1], 3), dtype=np.uint8)
        y, x = 20 + t % 10, 15 + (2 * t) % 30
        src[y : y + 30, x : x + 30] = (220, 40, 40)
        tgt[18 : 18 + 12, 30 + t % 10 : 42 + t % 10] = (220, 40, 40)
        mask = np.zeros(size, bool)
        mask[y : y + 30, x : x + 30] = True
        out.append((src, mask, tgt))
    return out


def headset(url: str, session: int, take: list, latencies: list, served: dict, errors: list) -> None:
    try:
        client = HeadsetClient(url, session)
        answers = []
        for t, frame in enumerate(take):
            t0 = time.perf_counter()
            answers.append(client.step(*frame, last=t == len(take) - 1))
            latencies.append(time.perf_counter() - t0)
        served[session] = answers
        client.close()
    except Exception as exc:
        errors.append(f"session {session}: {exc}")


def load(url: str, args: argparse.Namespace) -> int:
    takes = {1000 + i: synthetic_take(i, args.frames) for i in range(args.sessions)}
    latencies: list[float] = []
    served: dict[int, list] = {}
    errors: list[str] = []
    threads = [
        threading.Thread(target=headset, args=(url, s, take, latencies, served, errors))
        for s, take in takes.items()
    ]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    if errors:
        print("\n".join(errors))
        return 1
    ms = np.array(latencies) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    n = len(latencies)
    print(f"{args.sessions} sessions x {args.frames} frames: {n} requests in {wall:.2f} s")
    print(f"throughput {n / wall:.2f} frames/s in all, {n / wall / args.sessions:.2f} frames/s per session")
    print(f"latency ms: p50 {p50:.1f}  p90 {p90:.1f}  p99 {p99:.1f}  max {ms.max():.1f}")
    pipeline = Pipeline(open_backend("ort", engines=args.engines, threads=args.threads))
    mismatched = 0
    for session, take in takes.items():
        pipeline.reset()
        for frame, got in zip(take, served[session], strict=True):
            want = pipeline.step(*frame)
            mask = np.zeros_like(got.mask) if want.skipped else want.mask
            mismatched += int(got.skipped != want.skipped or not np.array_equal(got.mask, mask))
    print(f"masks equal to single-session Pipeline runs: {n - mismatched}/{n}")
    return 0 if mismatched == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", required=True, help="exported engine folder (ort)")
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (server and check)")
    parser.add_argument("--url", help="a running `lmeec serve` (127.0.0.1:PORT); default: start one")
    args = parser.parse_args()
    if args.url:
        return load(args.url, args)
    config = ServeConfig(Path(args.engines), max_sessions=args.sessions, threads=args.threads, http_port=0)
    with tempfile.TemporaryDirectory() as workdir, TritonServer(config, Path(workdir)) as server:
        server.wait_ready(timeout_s=300)
        return load(server.url, args)


if __name__ == "__main__":
    raise SystemExit(main())
