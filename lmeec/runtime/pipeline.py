"""`Pipeline`: the Correspondence step over a backend, with every buffer allocated once per take size.

Per processed frame t (p = the last processed frame before t, whose target memory is still pending):
image encoder on [source_t, target_t] -> memory encoder on [source_t + its mask, target_p + its logits]
-> commit p's memories to the banks (append in warm-up, append + compress in steady state if p = t-1)
-> view attention -> bank attention + MV-MoE (if the banks hold anything) -> mask decoder -> outputs.
Encoding p's target memory one step late lets the memory encoder run as one batch of 2 (its result is
first needed at the next frame), with results identical to the reference order.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch

from lmeec.kernels.triton_support import Impl
from lmeec.model.preprocess import IMAGENET_MEAN, IMAGENET_STD, FrameClock, check_step, resize_rgb8
from lmeec.model.tracker import VISIBLE_AREA, StepResult
from lmeec.runtime.backend import Backend
from lmeec.runtime.device_io import DeviceIO
from lmeec.runtime.ring import BankRing

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


class _SizeBuffers:
    """Buffers that depend on the take's frame sizes: source mask input, native-size target logits."""

    def __init__(self, source_hw: tuple[int, int], target_hw: tuple[int, int], device: torch.device) -> None:
        self.source_hw, self.target_hw = source_hw, target_hw
        self.mask_host = torch.empty(1, 1, *source_hw)
        self.native = torch.empty(1, 1, *target_hw, device=device)
        self.native_mask = torch.empty(1, 1, *target_hw, device=device, dtype=torch.bool)
        self.native_host = torch.empty(*target_hw, dtype=torch.bool, pin_memory=device.type == "cuda")


class Pipeline:
    """Frame-by-frame LM-EEC over exported stages; same `reset`/`step` contract as `Correspondence`."""

    def __init__(
        self, backend: Backend, section: Section = _no_timing, device_io: bool = False, kernels: Impl = "auto"
    ) -> None:
        """device_io: upload uint8 frames and resize them on the device (lmeec.kernels: Triton on CUDA,
        else their torch fallback) instead of PIL on the host; the results are the same."""
        self.backend, self.section = backend, section
        self.device_io, self.kernels = device_io, kernels
        self._io: DeviceIO | None = None
        p, dev = backend.preset, backend.device
        self.preset, self.device = p, dev
        s, g, c = p.image_size, p.grid, p.d_model
        f = dict(device=dev, dtype=torch.float32)
        self.images = torch.empty(2, 3, s, s, **f)
        self.feat_s0 = torch.empty(2, 32, 4 * g, 4 * g, **f)
        self.feat_s1 = torch.empty(2, 64, 2 * g, 2 * g, **f)
        self.feats = torch.empty(2, c, g, g, **f)
        # memory encoder batch: [source of frame t, target of the pending frame p]
        self.enc_feats = torch.zeros(2, c, g, g, **f)
        self.enc_masks = torch.zeros(2, 1, s, s, **f)
        self.enc_scores = torch.ones(2, 1, **f)  # [0] stays +1: the source mask counts as present
        self.memory = torch.empty(2, p.tokens, p.mem_dim, **f)
        self.f_view, self.f_mem, self.fused = (torch.empty(1, c, g, g, **f) for _ in range(3))
        self.low_res = torch.empty(1, 1, p.low_res, p.low_res, **f)
        self.iou = torch.empty(1, 1, **f)
        self.pointer = torch.empty(1, c, **f)
        self.ring = BankRing(p, dev)
        pin = dev.type == "cuda"
        self._mean = torch.tensor(IMAGENET_MEAN, **f).view(3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, **f).view(3, 1, 1)
        self._frame_host = torch.empty(2, s, s, 3, dtype=torch.uint8, pin_memory=pin)
        self._mask_model = torch.empty(1, 1, s, s)  # host: antialiased resize of the source mask
        self._out_host = torch.empty(2, s, s, pin_memory=pin)  # [0] logits, [1] spare
        self._low_host = torch.empty(p.low_res, p.low_res, pin_memory=pin)
        self._scalars_host = torch.empty(3, pin_memory=pin)  # object score, iou, (spare)
        self._sizes: _SizeBuffers | None = None
        self._bind()
        self.reset()

    def _bind(self) -> None:
        b, ring = self.backend, self.ring
        self._image_encoder = b.bind(
            "image_encoder",
            {"images": self.images},
            {"feat_s0": self.feat_s0, "feat_s1": self.feat_s1, "feats": self.feats},
        )
        self._memory_encoder = b.bind(
            "memory_encoder",
            {"feats": self.enc_feats, "mask_logits": self.enc_masks, "object_score": self.enc_scores},
            {"memory": self.memory},
        )
        target = self.feats[1:2]
        self._view = b.bind(
            "memory_attention_view", {"feats": target, "memory": self.memory[0:1]}, {"f_view": self.f_view}
        )
        self._bank = b.bind(
            "memory_attention_bank",
            {
                "feats": target,
                "bank": ring.bank,
                "slot_tpos": ring.slot_tpos,
                "slot_valid": ring.slot_valid,
                "pointer_dist": ring.pointer_dist,
                "pointer_valid": ring.pointer_valid,
            },
            {"f_mem": self.f_mem},
        )
        self._moe = b.bind("moe_fusion", {"f_mem": self.f_mem, "f_view": self.f_view}, {"fused": self.fused})
        # decoder outputs land where the next memory-encoder batch reads them (logits, object score)
        dec_out = {
            "low_res_logits": self.low_res,
            "logits": self.enc_masks[1:2],
            "iou": self.iou,
            "object_score": self.enc_scores[1:2],
            "pointer": self.pointer,
        }
        high_res = {"feat_s0": self.feat_s0[1:2], "feat_s1": self.feat_s1[1:2]}
        self._decode_fused = b.bind("mask_decoder", {"fused": self.fused, **high_res}, dec_out)
        self._decode_view = b.bind("mask_decoder", {"fused": self.f_view, **high_res}, dec_out)

    def reset(self, num_frames: int | None = None) -> None:
        """Start a new take (pass its length when known, as for Correspondence)."""
        self.ring.reset(num_frames)
        self.clock = FrameClock(num_frames)
        self.pending: int | None = None

    @property
    def frame_index(self) -> int:
        """Index of the next frame."""
        return self.clock.index

    @torch.inference_mode()
    def step(self, source_frame: object, source_mask: object, target_frame: object) -> StepResult:
        source, mask, target = check_step(source_frame, source_mask, target_frame)
        t = self.clock.advance()
        if mask is None or not mask.any():
            return StepResult(frame_index=t, skipped=True)

        sec, ring = self.section, self.ring
        with sec("preprocess"):
            self._preprocess(source, mask, target)
        with sec("image_encoder"):
            self._image_encoder()
            self.enc_feats[0].copy_(self.feats[0])
        with sec("memory_encoder"):
            self._memory_encoder()
        with sec("bank_update"):
            if self.pending is not None:
                ring.incoming(1).copy_(self.memory[1])  # the pending frame's target memory, now encoded
                if t < ring.warmup or self.pending == t - 1:
                    ring.commit(compress=t >= ring.warmup)
            ring.incoming(0).copy_(self.memory[0])
            t_diffs = ring.prepare(t)
        with sec("view_attention"):
            self._view()
        if ring.count:
            with sec("bank_attention"):
                self._bank()
            with sec("moe_fusion"):
                self._moe()
            decode = self._decode_fused
        else:
            decode = self._decode_view  # no stored memory yet: the view expert alone
        with sec("mask_decoder"):
            decode()
            ring.pointer_slot(t).copy_(self.pointer[0])
            self.enc_feats[1].copy_(self.feats[1])
        self.pending = t
        with sec("postprocess"):
            return self._outputs(t, (ring.count, ring.count), t_diffs)

    def _preprocess(self, source: np.ndarray, mask: np.ndarray, target: np.ndarray) -> None:
        """Frames: PIL bicubic to S×S (as the reference), normalised into `images`; mask: AA-bilinear, >= 0.5."""
        s = self.preset.image_size
        if self.device_io:
            if self._io is None or not self._io.matches(source.shape[:2], target.shape[:2]):
                p = self.preset
                self._io = DeviceIO(
                    source.shape[:2], target.shape[:2], s, p.low_res, self.device, self.kernels
                )
            # float frames are rounded to 8 bits, as resize_rgb8 does
            source, target = (
                f if f.dtype == np.uint8 else np.round(f * 255.0).astype(np.uint8) for f in (source, target)
            )
            self._io.upload(source, mask, target)
            on_off = (10.0, -10.0) if self.preset.source_mask == "sam2" else (1.0, 0.0)
            self._io.preprocess(self.images, self.enc_masks[0, 0], on_off)
            return
        if (
            self._sizes is None
            or self._sizes.source_hw != source.shape[:2]
            or self._sizes.target_hw != target.shape[:2]
        ):
            self._sizes = _SizeBuffers(source.shape[:2], target.shape[:2], self.device)
        for i, frame in enumerate((source, target)):
            self._frame_host[i].numpy()[:] = resize_rgb8(frame, s)
        self.images.copy_(self._frame_host.permute(0, 3, 1, 2), non_blocking=True)
        self.images.div_(255.0).sub_(self._mean).div_(self._std)
        sizes = self._sizes
        sizes.mask_host.numpy()[0, 0] = mask
        torch.ops.aten._upsample_bilinear2d_aa.out(
            sizes.mask_host, [s, s], False, None, None, out=self._mask_model
        )
        self.enc_masks[0].copy_(self._mask_model[0].ge_(0.5), non_blocking=True)
        if self.preset.source_mask == "sam2":
            self.enc_masks[0].mul_(20.0).sub_(10.0)

    def _outputs(self, t: int, bank_sizes: tuple[int, int], t_diffs: tuple[int, ...]) -> StepResult:
        if self.device_io:
            self._io.postprocess(self.low_res[0, 0])
        else:
            sizes = self._sizes
            torch.ops.aten.upsample_bilinear2d.out(
                self.low_res, list(sizes.target_hw), False, None, None, out=sizes.native
            )
            torch.gt(sizes.native, 0, out=sizes.native_mask)
        native = self._download()
        logits = self._out_host[0].numpy().copy()
        mask_model = logits > 0
        score, iou = (float(v) for v in self._scalars_host.numpy()[:2])
        return StepResult(
            frame_index=t,
            skipped=False,
            mask=native,
            mask_model=mask_model,
            logits=logits,
            low_res_logits=self._low_host.numpy().copy(),
            object_score=score,
            confidence=float(1.0 / (1.0 + np.exp(-score))),
            visible=bool(mask_model.mean() > VISIBLE_AREA),
            iou=iou,
            bank_sizes=bank_sizes,
            pointer_t_diffs=t_diffs,
        )

    def _download(self) -> np.ndarray:
        """Device -> host copies of every output, then the step's one synchronisation; the native mask."""
        if self.device_io:
            self._io.download()
        else:
            self._sizes.native_host.copy_(self._sizes.native_mask[0, 0], non_blocking=True)
        self._out_host[0].copy_(self.enc_masks[1, 0], non_blocking=True)
        self._low_host.copy_(self.low_res[0, 0], non_blocking=True)
        self._scalars_host[0:1].copy_(self.enc_scores[1], non_blocking=True)
        self._scalars_host[1:2].copy_(self.iou[0], non_blocking=True)
        self.backend.synchronize()
        return self._io.native_mask() if self.device_io else self._sizes.native_host.numpy().copy()
