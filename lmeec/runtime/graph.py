"""One captured step per step variant: the device work of a step (pre-processing, stages, bank update and
compression, post-processing) recorded once and replayed every frame that has the same variant; the host
only stages the frame, enqueues the copies in before the replay and the copies out after it.

A variant is what decides which launches a step makes: frame sizes, the active objects and each ring's
`RingPlan` (first frame, each warm-up shape, a frame after a skip, steady state). Everything else that
changes per frame (frame bytes, slot validity, pointer distances, the pointer slot) reaches the device
through the staging buffers, so the steady state is one variant and is captured once.

On CUDA a variant's first frame runs eagerly on a side stream (its real run, which also warms up lazy
initialisation, fills module caches and compiles Triton kernels), then the step is captured; later frames
replay it. A pipeline's graphs share one memory pool: they replay one at a time on one stream and keep no
tensor of the pool alive between steps (every result lands in the pipeline's own buffers). Elsewhere
(`cuda=False`) the "graph" is the step function itself: the same keying and buffer plumbing, testable on
the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import torch

Step = Callable[[], None]


class StepGraphs:
    """Captured steps keyed by variant; `captures` counts recordings (none once the steady state runs)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self._graphs: dict[Hashable, tuple[Step, object]] = {}
        self._pool = torch.cuda.graph_pool_handle() if self.cuda else None
        self._side = torch.cuda.Stream(device) if self.cuda else None  # where a variant's first run goes
        self.captures = 0
        self.replays = 0
        self.last_key: Hashable | None = None

    def clear(self) -> None:
        """Forget every captured step (its buffers are being replaced)."""
        self._graphs.clear()

    def run(self, key: Hashable, step: Step) -> None:
        """Replay the step captured for `key`, or run `step` now and capture it for the next frames."""
        self.last_key = key
        found = self._graphs.get(key)
        if found is not None:
            self.replays += 1
            found[0]()
            return
        if self.cuda:
            self._graphs[key] = self._capture_cuda(step)
        else:
            step()
            self._graphs[key] = (step, None)  # replays call it with the arguments of this first frame
        self.captures += 1

    def _capture_cuda(self, step: Step) -> tuple[Step, object]:
        side = self._side
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            step()  # this frame's run, eager
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):  # records only: nothing runs a second time
            step()
        return graph.replay, graph
