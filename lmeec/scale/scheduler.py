"""Whole units on Ray actors: one actor per worker opens the backend once, the driver hands each idle actor
the next unit, stores every result in the journal as it arrives, and replaces a lost actor, giving its unit
to the next free one.

Units run whole because each is a sequential take with memory; results are keyed, so the order in which
they finish does not change what the caller writes.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lmeec.scale.journal import UnitJournal

OpenState = Callable[[], Any]  # runs once per actor: e.g. opens the backend and its Pipeline
Work = Callable[[Any, Any], Any]  # (state, unit) -> JSON-ready result


@dataclass(frozen=True)
class RayConfig:
    """Where and how wide: `address` None starts a local Ray, else "auto" or "ray://host:port"."""

    address: str | None = None
    workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    replacements: int = 3  # lost actors replaced before the run gives up

    def validate(self) -> None:
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        if self.gpus_per_worker < 0 or self.cpus_per_worker <= 0:
            raise ValueError("--gpus-per-worker must be >= 0 and CPUs per worker > 0")


@dataclass(frozen=True)
class Progress:
    """One finished unit, as the driver sees it."""

    key: str
    done: int
    total: int
    worker_pid: int  # the actor that ran it
    worker_pids: tuple[int, ...]  # process ids of the live actors, where known


@dataclass
class UnitRun:
    """Every unit's result (resumed ones included) and what happened on the way."""

    results: dict[str, Any]
    resumed: int = 0
    ran: int = 0
    workers_lost: int = 0
    workers: int = 0
    pids: list[int] = field(default_factory=list)


class UnitWorker:
    """The actor: opens its state once; a failure to open is reported by `ready`/`run`, not as a lost actor."""

    def __init__(self, open_state: OpenState, work: Work) -> None:
        self._work, self._error = work, None
        try:
            self._state = open_state()
        except Exception as exc:  # handed to the driver as the task's error (e.g. a missing engine folder)
            self._state, self._error = None, exc

    def ready(self) -> int:
        if self._error is not None:
            raise self._error
        return os.getpid()

    def run(self, unit: Any) -> tuple[int, Any]:
        if self._error is not None:
            raise self._error
        return os.getpid(), self._work(self._state, unit)


def _ray():
    try:
        import ray
    except ImportError:
        raise RuntimeError("--ray needs Ray: pip install 'lmeec[ray]'") from None
    return ray


def connect(config: RayConfig) -> bool:
    """Join the configured Ray (local when no address); True when this call started it."""
    ray = _ray()
    if ray.is_initialized():
        return False
    quiet = dict(log_to_driver=False, logging_level=logging.WARNING, include_dashboard=False)
    if config.address is None:
        need = config.workers * config.cpus_per_worker
        # "local": a new instance even where `ray start` left one running (ray.init() would join that)
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, int(need + 0.999)), **quiet)
    else:
        quiet.pop("include_dashboard")  # a driver joining a cluster has no dashboard of its own
        ray.init(address=config.address, **quiet)
    have = ray.cluster_resources()
    for name, per in (("CPU", config.cpus_per_worker), ("GPU", config.gpus_per_worker)):
        if per and have.get(name, 0) < per * config.workers:
            ray.shutdown()
            raise ValueError(
                f"the Ray cluster has {have.get(name, 0):g} {name}s; {config.workers} workers x {per:g} need more"
            )
    return True


def _raise_cause(err: Exception) -> None:
    """Re-raise a unit's own error (a missing frame, a bad engine folder) as the exception it was."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, Exception):
        raise cause from None
    raise RuntimeError(str(err)) from None


def run_units(
    units: Sequence[tuple[str, Any]],
    open_state: OpenState,
    work: Work,
    journal: UnitJournal,
    config: RayConfig,
    on_unit: Callable[[Progress], None] | None = None,
) -> UnitRun:
    """Run every (key, unit) not yet in the journal on `config.workers` actors, in the given order."""
    config.validate()
    keys = [k for k, _ in units]
    if len(set(keys)) != len(keys):
        raise ValueError("unit keys must be unique")
    done = journal.done(keys)
    run = UnitRun({k: journal.load(k) for k in keys if k in done}, resumed=len(done))
    todo = deque((k, u) for k, u in units if k not in done)
    if not todo:
        return run
    ray = _ray()
    started = connect(config)
    actor_cls = ray.remote(UnitWorker).options(
        num_cpus=config.cpus_per_worker, num_gpus=config.gpus_per_worker, max_restarts=0, max_task_retries=0
    )
    workers = [actor_cls.remote(open_state, work) for _ in range(min(config.workers, len(todo)))]
    run.workers = len(workers)
    try:
        try:
            pids = ray.get([w.ready.remote() for w in workers])
        except ray.exceptions.RayTaskError as err:
            _raise_cause(err)
        run.pids = list(pids)
        inflight: dict[Any, tuple[int, str, Any]] = {}

        def submit(slot: int) -> None:
            if todo:
                key, unit = todo.popleft()
                inflight[workers[slot].run.remote(unit)] = (slot, key, unit)

        for slot in range(len(workers)):
            submit(slot)
        while inflight:
            (ref,), _ = ray.wait(list(inflight), num_returns=1)
            slot, key, unit = inflight.pop(ref)
            try:
                pid, result = ray.get(ref)
            except ray.exceptions.RayActorError as err:  # the actor or its node is gone: retry elsewhere
                run.workers_lost += 1
                if run.workers_lost > config.replacements:
                    raise RuntimeError(
                        f"{run.workers_lost} Ray workers lost (limit {config.replacements}); the last: {err}"
                    ) from None
                todo.appendleft((key, unit))
                ray.kill(workers[slot], no_restart=True)
                workers[slot] = actor_cls.remote(open_state, work)
                run.pids[slot] = -1
                submit(slot)
                continue
            except ray.exceptions.RayTaskError as err:
                _raise_cause(err)
            run.pids[slot] = pid
            journal.save(key, result)  # a result already stored is kept as it was
            run.results[key] = result
            run.ran += 1
            submit(slot)
            if on_unit is not None:
                pids = tuple(p for p in run.pids if p > 0)
                on_unit(Progress(key, run.resumed + run.ran, len(units), pid, pids))
    finally:
        for w in workers:
            ray.kill(w, no_restart=True)
        if started:
            ray.shutdown()
    return run
