"""`Pipeline`: the Correspondence step over a backend, with every buffer allocated once per take size.

Per processed frame t (p = the last processed frame before t, whose target memory is still pending):
image encoder on [source_t, target_t] -> memory encoder on [source_t + its mask, target_p + its logits]
-> bring the banks to frame t's (warm-up, fewer than 7 frames processed: the stored frames t-6 … t-1,
p included; steady state: p appended and one slot compressed away if p = t-1, else unchanged)
-> view attention -> bank attention + MV-MoE (if the banks hold anything) -> mask decoder -> outputs.
Encoding p's target memory one step late lets the memory encoder run as one batch of 2 (its result is
first needed at the next frame), with results identical to the reference order.

Several objects: the image encoder runs once per pair; the later stages run as one batch over the K
objects (2K in the memory encoder), each object with its own ring and its own pending frame p_k (kept by its ring), so an
object skipped at t (empty mask) keeps its state untouched while the others advance.

A step is host bookkeeping (frame clock, ring plans, staging into pinned buffers), then the device step
(`_device_step`: no host synchronisation; replayed from a CUDA graph per variant with `--graph`), then one
synchronisation and the read-back. `StepOptions` picks host or device pre/post-processing (`frame_io`),
the torch backend's precision and `torch.compile`, and graph capture.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch

from lmeec.model.preprocess import FrameClock, check_step_objects, vanished_mask_warning
from lmeec.model.stages import graph_name, object_profiles
from lmeec.model.tracker import VISIBLE_AREA, StepResult
from lmeec.runtime.backend import Backend
from lmeec.runtime.frame_io import DeviceIO, FrameIO, HostIO
from lmeec.runtime.graph import StepGraphs
from lmeec.runtime.ring import BankRing, ObjectRings, RingPlan
from lmeec.runtime.step_options import StepOptions

Section = Callable[[str], AbstractContextManager]
STAGE_SECTIONS = (
    "preprocess",
    "image_encoder",
    "memory_encoder",
    "bank_update",
    "view_attention",
    "bank_attention",
    "moe_fusion",
    "mask_decoder",
    "postprocess",
)


def _no_timing(name: str) -> AbstractContextManager:
    return nullcontext()


def object_profile(backend: Backend, objects: int) -> int:
    """The smallest exported object batch that holds `objects` (padded objects run masked out)."""
    if objects < 1:
        raise ValueError(f"num_objects must be at least 1, got {objects}")
    fits = [k for k in object_profiles(backend.max_objects) if k >= objects]
    if not fits:
        raise ValueError(
            f"{objects} objects, but these engines hold at most {backend.max_objects}; "
            f"re-export with `lmeec export onnx --max-objects {objects}`"
        )
    return fits[0]


class Pipeline:
    """Frame-by-frame LM-EEC over exported stages; same `reset`/`step` contract as `Correspondence`.

    K objects share the image encoder (batch 2) and run the later stages as one batch of the exported
    profile P >= K; each object has its own ring, pending frame and results."""

    def __init__(
        self, backend: Backend, section: Section = _no_timing, options: StepOptions | None = None
    ) -> None:
        self.options = options or StepOptions()
        self.options.configure(backend)  # precision and compile: before the stages are bound
        self.backend, self.section = backend, section
        p, dev = backend.preset, backend.device
        self.preset, self.device = p, dev
        s, g, c = p.image_size, p.grid, p.d_model
        f = dict(device=dev, dtype=torch.float32)
        self.images = torch.empty(2, 3, s, s, **f)
        self.feat_s0 = torch.empty(2, 32, 4 * g, 4 * g, **f)
        self.feat_s1 = torch.empty(2, 64, 2 * g, 2 * g, **f)
        self.feats = torch.empty(2, c, g, g, **f)
        self._io: FrameIO | None = None
        # one captured device step per variant (`--graph`; on a CPU the same keying runs uncaptured)
        self.graphs = StepGraphs(dev) if self.options.graph else None
        self._image_encoder = backend.bind(
            "image_encoder",
            {"images": self.images},
            {"feat_s0": self.feat_s0, "feat_s1": self.feat_s1, "feats": self.feats},
        )
        self.profile = 0
        self.reset()

    def _allocate(self, profile: int) -> None:
        """Buffers and bindings of the per-object stages for an object batch of `profile`."""
        p, dev, k = self.preset, self.device, profile
        s, g, c = p.image_size, p.grid, p.d_model
        f = dict(device=dev, dtype=torch.float32)
        # memory encoder batch: [sources of frame t (K), targets of each object's pending frame (K)]
        self.enc_feats = torch.zeros(2 * k, c, g, g, **f)
        self.enc_masks = torch.zeros(2 * k, 1, s, s, **f)
        self.enc_scores = torch.ones(2 * k, 1, **f)  # [:K] stay +1: source masks count as present
        self.memory = torch.empty(2 * k, p.tokens, p.mem_dim, **f)
        self.f_view, self.f_mem, self.fused = (torch.zeros(k, c, g, g, **f) for _ in range(3))
        self.low_res = torch.empty(k, 1, p.low_res, p.low_res, **f)
        self.logits = torch.empty(k, 1, s, s, **f)
        self.iou = torch.empty(k, 1, **f)
        self.object_score = torch.empty(k, 1, **f)  # own buffer: TensorRT needs 256-byte aligned outputs
        self.pointer = torch.empty(k, c, **f)
        pin = dev.type == "cuda"  # host copies of the outputs, filled by asynchronous downloads
        self._out_host = torch.empty(k, s, s, pin_memory=pin)
        self._low_host = torch.empty(k, p.low_res, p.low_res, pin_memory=pin)
        self._scalars_host = torch.empty(k, 2, pin_memory=pin)  # object score, iou
        # --device-io: compression by lmeec.kernels too (one launch where Triton runs); else the torch ops
        self.rings = ObjectRings(p, dev, k, self.options.kernels if self.options.device_io else "torch")
        if self.graphs is not None:
            self.graphs.clear()  # captured steps read the buffers being replaced
        self.profile = k
        self._bind()

    def _bind(self) -> None:
        b, rings, k = self.backend, self.rings, self.profile

        def per_object(x: torch.Tensor) -> torch.Tensor:  # the K = 1 graphs take these without the K axis
            return x if k > 1 else x[0]

        self._memory_encoder = b.bind(
            graph_name("memory_encoder", k),
            {"feats": self.enc_feats, "mask_logits": self.enc_masks, "object_score": self.enc_scores},
            {"memory": self.memory},
        )
        target = self.feats[1:2]
        self._view = b.bind(
            graph_name("memory_attention_view", k),
            {"feats": target, "memory": self.memory[:k]},
            {"f_view": self.f_view},
        )
        self._bank = b.bind(
            graph_name("memory_attention_bank", k),
            {
                "feats": target,
                "bank": rings.bank,
                "slot_tpos": rings.slot_tpos,
                "slot_valid": per_object(rings.slot_valid),
                "pointer_dist": per_object(rings.pointer_dist),
                "pointer_valid": per_object(rings.pointer_valid),
            },
            {"f_mem": self.f_mem},
        )
        self._moe = b.bind(
            graph_name("moe_fusion", k), {"f_mem": self.f_mem, "f_view": self.f_view}, {"fused": self.fused}
        )
        dec_out = {
            "low_res_logits": self.low_res,
            "logits": self.logits,
            "iou": self.iou,
            "object_score": self.object_score,
            "pointer": self.pointer,
        }
        high_res = {"feat_s0": self.feat_s0[1:2], "feat_s1": self.feat_s1[1:2]}
        decoder = graph_name("mask_decoder", k)
        self._decode_fused = b.bind(decoder, {"fused": self.fused, **high_res}, dec_out)
        self._decode_view = b.bind(decoder, {"fused": self.f_view, **high_res}, dec_out)

    def reset(self, num_frames: int | None = None, num_objects: int = 1) -> None:
        """Start a new take (pass its length when known, as for Correspondence, and its object count)."""
        profile = object_profile(self.backend, num_objects)
        if profile != self.profile:
            self._allocate(profile)
        self.clock = FrameClock(num_frames)  # first: it refuses a num_frames that is not a whole number
        self.num_objects = num_objects
        self.rings.reset(num_frames)

    @property
    def ring(self) -> BankRing:
        """The first object's ring (the only one in a single-object take)."""
        return self.rings[0]

    @property
    def frame_index(self) -> int:
        """Index of the next frame."""
        return self.clock.index

    @torch.inference_mode()
    def step(
        self, source_frame: object, source_masks: object, target_frame: object
    ) -> StepResult | list[StepResult]:
        """As `Correspondence.step`: one H×W mask gives one StepResult, K masks a list of K."""
        source, masks, target, single = check_step_objects(
            source_frame, source_masks, target_frame, self.num_objects
        )
        t = self.clock.advance()
        results = [StepResult(frame_index=t, skipped=True) for _ in masks]
        active = [k for k, m in enumerate(masks) if m is not None and m.any()]
        if active:
            for k, result in self._step(t, source, masks, target, active).items():
                results[k] = result
        return results[0] if single else results

    def _step(
        self, t: int, source: np.ndarray, masks: list, target: np.ndarray, active: list[int]
    ) -> dict[int, StepResult]:
        """Host bookkeeping, the device step (eager, or a captured variant replayed), then the read-back."""
        io = self._frame_io(source.shape[:2], target.shape[:2])
        plans = {k: self.rings[k].plan(t) for k in active}  # warm-up, compression: host ints only
        t_diffs = {k: self.rings[k].stage(t) for k in active}

        def upload() -> None:  # host staging and the asynchronous copies in
            io.stage(source, target, {k: masks[k] for k in active})
            io.upload()
            for k in active:
                self.rings[k].upload()

        def download() -> None:  # the asynchronous copies out
            io.download(active)
            self._download(active)

        if self.graphs is None:
            self._device_step(io, active, plans, self.section, upload, download)
        else:
            upload()
            variant = (io.key, tuple(active), tuple(plans[k] for k in active))
            self.graphs.run(variant, lambda: self._device_step(io, active, plans, _no_timing))
            download()
        self.backend.synchronize()  # the step's one wait: frame in -> masks out
        for k in io.vanished(active):
            warnings.warn(vanished_mask_warning(t, masks[k], self.preset.image_size), stacklevel=4)
        return {k: self._result(t, io, k, t_diffs[k]) for k in active}

    def _frame_io(self, source_hw: tuple[int, int], target_hw: tuple[int, int]) -> FrameIO:
        if self._io is None or not self._io.matches(self.profile, source_hw, target_hw):
            if self.graphs is not None:
                self.graphs.clear()  # their steps read the buffers being replaced
            p, dev = self.preset, self.device
            if self.options.device_io:
                self._io = DeviceIO(p, self.profile, source_hw, target_hw, dev, self.options.kernels)
            else:
                self._io = HostIO(p, self.profile, source_hw, target_hw, dev)
        return self._io

    def _device_step(
        self,
        io: FrameIO,
        active: list[int],
        plans: dict[int, RingPlan],
        sec: Section,
        upload: Callable[[], None] | None = None,
        download: Callable[[], None] | None = None,
    ) -> None:
        """The step's device work, on device buffers only; no host synchronisation, and every launch
        decided by (io, active, plans) alone, so one capture serves every frame of a variant. `upload` and
        `download` (eager steps only; around a replay otherwise) are timed with pre- and post-processing."""
        rings, n = self.rings, self.profile
        with sec("preprocess"):
            if upload is not None:
                upload()
            io.preprocess(self.images, self.enc_masks, active)
        with sec("image_encoder"):
            self._image_encoder()
            self.enc_feats[:n].copy_(self.feats[0:1].expand(n, -1, -1, -1))
        with sec("memory_encoder"):
            self._memory_encoder()
        with sec("bank_update"):
            for k in active:  # each ring has its own pending frame (that object's last processed one)
                ring, plan = rings[k], plans[k]
                ring.slots[1, plan.incoming].copy_(self.memory[n + k])  # the pending frame's target memory
                ring.apply(plan)  # warm-up: banks = frames t-6 … t-1; steady state: append t-1 + compress
                ring.slots[0, plan.count].copy_(self.memory[k])
        with sec("view_attention"):
            self._view()
        with_bank = [k for k in active if plans[k].count]
        if with_bank:
            with sec("bank_attention"):
                self._bank()
            with sec("moe_fusion"):
                self._moe()
                for k in active:
                    if not plans[k].count:  # no stored memory yet: the view expert alone
                        self.fused[k].copy_(self.f_view[k])
            decode = self._decode_fused
        else:
            decode = self._decode_view
        with sec("mask_decoder"):
            decode()
            for k in active:
                rings[k].store_pointer(self.pointer[k])
                self.enc_masks[n + k].copy_(self.logits[k])  # read by the next memory-encoder batch
                self.enc_scores[n + k].copy_(self.object_score[k])
                self.enc_feats[n + k].copy_(self.feats[1])
        with sec("postprocess"):
            io.postprocess(self.low_res, active)
            if download is not None:
                download()

    def _download(self, active: list[int]) -> None:
        for k in active:
            self._out_host[k].copy_(self.logits[k, 0], non_blocking=True)
            self._low_host[k].copy_(self.low_res[k, 0], non_blocking=True)
            self._scalars_host[k, 0:1].copy_(self.object_score[k], non_blocking=True)
            self._scalars_host[k, 1:2].copy_(self.iou[k], non_blocking=True)

    def _result(self, t: int, io: FrameIO, k: int, t_diffs: tuple[int, ...]) -> StepResult:
        """Object k's results from the host buffers (after the synchronisation)."""
        logits = self._out_host[k].numpy().copy()
        mask_model = logits > 0
        score, iou = (float(v) for v in self._scalars_host[k].numpy())
        count = self.rings[k].count
        return StepResult(
            frame_index=t,
            skipped=False,
            mask=io.mask(k),
            mask_model=mask_model,
            logits=logits,
            low_res_logits=self._low_host[k].numpy().copy(),
            object_score=score,
            confidence=float(1.0 / (1.0 + np.exp(-score))),
            visible=bool(mask_model.mean() > VISIBLE_AREA),
            iou=iou,
            bank_sizes=(count, count),
            pointer_t_diffs=t_diffs,
        )
