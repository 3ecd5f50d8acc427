"""`SessionTable`: a fixed number of session slots, each a preallocated `Pipeline` over one shared backend.

Memory is fixed at start: N slots, each with its step buffers and bank ring. A session holds a slot from its
start frame to its end frame or until it is idle for longer than the timeout; a new session on a full table
is refused (nothing is evicted that is still live).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lmeec.model.tracker import StepResult
from lmeec.runtime.backend import Backend
from lmeec.runtime.pipeline import Pipeline


class SessionError(RuntimeError):
    """A request the table cannot serve: full, unknown session, or a session id reused."""


@dataclass
class _Slot:
    pipeline: Pipeline
    session: int | None = None
    last_used: float = 0.0


class SessionTable:
    """N slots over one backend; `step` routes a frame to its session's slot."""

    def __init__(
        self,
        backend: Backend,
        max_sessions: int,
        timeout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_sessions < 1:
            raise ValueError(f"--max-sessions must be at least 1, got {max_sessions}")
        self.timeout_s, self.clock = timeout_s, clock
        self.slots = [_Slot(Pipeline(backend)) for _ in range(max_sessions)]
        self._by_session: dict[int, _Slot] = {}

    @property
    def open_sessions(self) -> list[int]:
        return sorted(self._by_session)

    def expire(self) -> list[int]:
        """Free the slots of sessions idle for longer than the timeout; their ids."""
        now = self.clock()
        gone = [s for s, slot in self._by_session.items() if now - slot.last_used > self.timeout_s]
        for session in gone:
            self._free(session)
        return gone

    def _free(self, session: int) -> None:
        slot = self._by_session.pop(session)
        slot.session = None

    def _open(self, session: int) -> _Slot:
        if session in self._by_session:  # a restarted stream: its old state goes
            self._free(session)
        self.expire()
        free = next((s for s in self.slots if s.session is None), None)
        if free is None:
            raise SessionError(
                f"server full: {len(self.slots)} sessions open (--max-sessions {len(self.slots)}); "
                f"end a session or retry after one times out ({self.timeout_s:g} s idle)"
            )
        free.session = session
        free.pipeline.reset()  # a live stream: length unknown
        self._by_session[session] = free
        return free

    def step(
        self, session: int, start: bool, end: bool, source: object, mask: object, target: object
    ) -> StepResult:
        """One frame of a session: `start` opens it (a slot), `end` frees its slot after this frame."""
        if start:
            slot = self._open(session)
        else:
            self.expire()
            slot = self._by_session.get(session)
            if slot is None:
                raise SessionError(
                    f"session {session} is not open: send its first frame with START, "
                    f"or it timed out after {self.timeout_s:g} s idle"
                )
        slot.last_used = self.clock()
        try:
            return slot.pipeline.step(source, mask, target)
        except Exception:
            self._free(session)  # a bad frame ends the session: its state may be half-updated
            raise
        finally:
            if end and session in self._by_session:
                self._free(session)
