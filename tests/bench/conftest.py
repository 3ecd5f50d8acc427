"""Bench fixtures: one cache (synthetic take + the test preset exported unsimplified) for the session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def bench_cache(tmp_path_factory):
    from lmeec.bench.inputs import ensure_engines

    cache = tmp_path_factory.mktemp("lmeec-cache")
    ensure_engines("test", 0, cache, log=lambda msg: None, progress=False, simplify=False)  # ~10 s
    return cache


@pytest.fixture(scope="session")
def schema():
    import json
    from pathlib import Path

    return json.loads(
        (Path(__file__).parents[2] / "lmeec" / "bench" / "bench_result.schema.json").read_text()
    )
