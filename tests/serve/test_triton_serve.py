"""`lmeec serve`'s Triton server on loopback: 3 concurrent headset sessions of 20 frames each get exactly
what a single-session `Pipeline` gives them, and a full server refuses a 4th session with the reason."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("tritonclient.http", reason="tritonclient is not installed (pip install 'lmeec[serve]')")

from lmeec.runtime.backend import open_backend  # noqa: E402
from lmeec.runtime.pipeline import Pipeline  # noqa: E402
from lmeec.serve.client import HeadsetClient  # noqa: E402
from lmeec.serve.triton import ServeConfig, TritonServer, find_triton  # noqa: E402
from tests.conftest import synthetic_pair  # noqa: E402

FRAMES, SESSIONS = 20, 3


@pytest.fixture(scope="module")
def server(test_engines, tmp_path_factory):
    try:
        find_triton()
    except FileNotFoundError as exc:
        pytest.skip(f"no tritonserver: {exc}")
    config = ServeConfig(engines=test_engines, max_sessions=SESSIONS, threads=1, http_port=0)
    with TritonServer(config, tmp_path_factory.mktemp("serve")) as srv:
        srv.wait_ready(timeout_s=300)
        yield srv


def stream(seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = [synthetic_pair(rng, t) for t in range(FRAMES)]
    src, mask, tgt = out[7]
    out[7] = (src, np.zeros_like(mask), tgt)  # an empty source mask: skipped, t advances
    return out


def test_three_concurrent_sessions_equal_their_serial_runs(server, test_engines):
    streams = {100 + i: stream(i) for i in range(SESSIONS)}
    served: dict[int, list] = {}
    errors = []

    def headset(session: int) -> None:
        try:
            client = HeadsetClient(server.url, session)
            served[session] = [client.step(*f, last=t == FRAMES - 1) for t, f in enumerate(streams[session])]
            client.close()
        except Exception as exc:  # reported below, with the session
            errors.append((session, exc))

    threads = [threading.Thread(target=headset, args=(s,)) for s in streams]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
    assert not errors, errors
    alone = Pipeline(open_backend("ort", engines=test_engines, threads=1))
    for session, frames in streams.items():
        alone.reset()
        for t, f in enumerate(frames):
            want, got = alone.step(*f), served[session][t]
            assert got.skipped == want.skipped, (session, t)
            if want.skipped:
                assert not got.mask.any()
                continue
            assert np.array_equal(got.mask, want.mask), (session, t)
            assert got.object_score == pytest.approx(want.object_score, abs=1e-6), (session, t)
    assert served[100][7].skipped and served[100][8].mask.any()


def test_a_full_server_refuses_a_new_session_with_the_reason(server):
    from tritonclient.utils import InferenceServerException

    f = stream(9)[0]
    clients = [HeadsetClient(server.url, 200 + i) for i in range(SESSIONS + 1)]
    for c in clients[:SESSIONS]:
        c.step(*f)
    with pytest.raises(InferenceServerException, match="server full: 3 sessions open"):
        clients[SESSIONS].step(*f)
    clients[0].step(*f, last=True)  # frees a slot
    assert not clients[SESSIONS].step(*f).skipped
    for c in clients[1:]:
        c.step(*f, last=True)
        c.close()
