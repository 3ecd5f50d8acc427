"""Prompted mode: one prompt on one source frame, the source tracker supplies every later source mask.

Frames before the prompt frame have no source mask (LM-EEC skips them, as for an empty mask); the prompt
frame's mask comes from the prompt, each later one from the tracker, one step per frame with no look-ahead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lmeec.model.preprocess import check_frame
from lmeec.model.source_tracker import Prompt, SourceResult, SourceTracker
from lmeec.model.tracker import Correspondence, StepResult


class Stepper(Protocol):
    """What drives the target view: `Correspondence` or the runtime's `Pipeline`."""

    def reset(self, num_frames: int | None = None) -> None: ...

    def step(self, source_frame: object, source_mask: object, target_frame: object) -> StepResult: ...


@dataclass
class PromptedResult:
    """One frame: the source mask used (None before the prompt frame) and LM-EEC's target result."""

    source: SourceResult | None
    target: StepResult


class PromptedCorrespondence:
    """LM-EEC from one prompt: SAM 2.1 tracks the object in the source view, LM-EEC carries it to the target.

    >>> run = PromptedCorrespondence(Correspondence("t", "lmeec.pt"), SourceTracker("t", "sam2.1_t.pt"))
    >>> run.reset(num_frames=n, prompt=Prompt(box=(10, 20, 90, 120)), prompt_frame=0)
    >>> result = run.step(ego_rgb, exo_rgb)
    """

    def __init__(self, correspondence: Stepper, tracker: SourceTracker, share_encoder: bool = False) -> None:
        """share_encoder: the tracker reuses LM-EEC's image features of the source frame (one encoder pass).

        Needs the reference `Correspondence` and a tracker with the same trunk and image size; the tracker then
        sees LM-EEC's image encoder (exact when both come from the same checkpoint).
        """
        if share_encoder:
            if not isinstance(correspondence, Correspondence):
                raise ValueError("--share-encoder needs the PyTorch reference (Correspondence)")
            a, b = correspondence.preset, tracker.preset
            if (a.trunk, a.image_size) != (b.trunk, b.image_size):
                raise ValueError(
                    f"--share-encoder needs the same trunk and image size: LM-EEC {a.name} at {a.image_size}, "
                    f"tracker {b.name} at {b.image_size}"
                )
        self.correspondence, self.tracker, self.share_encoder = correspondence, tracker, share_encoder
        self.prompt: Prompt | None = None

    def reset(self, prompt: Prompt, prompt_frame: int = 0, num_frames: int | None = None) -> None:
        """Start a take whose object is given by `prompt` on source frame `prompt_frame`."""
        if prompt_frame < 0 or (num_frames is not None and prompt_frame >= num_frames):
            raise ValueError(
                f"prompt frame {prompt_frame} is not in the take (frames 0 to {(num_frames or 1) - 1})"
            )
        self.prompt, self.prompt_frame, self.index = prompt, prompt_frame, 0
        self.correspondence.reset(num_frames)
        self.tracker.reset(num_frames)

    def step(self, source_frame: object, target_frame: object) -> PromptedResult:
        """The next synchronised pair."""
        if self.prompt is None:
            raise RuntimeError("call reset(prompt, ...) before step()")
        t, self.index = self.index, self.index + 1
        source = check_frame(source_frame, "source frame")
        if t < self.prompt_frame:
            return PromptedResult(None, self.correspondence.step(source, None, target_frame))
        features = None
        if self.share_encoder:
            target = check_frame(target_frame, "target frame")
            features = self.correspondence.encode(source, target)
        src = features.select(0) if features is not None else None
        if t == self.prompt_frame:
            tracked = self.tracker.prompt(source, self.prompt, frame_index=t, features=src)
        else:
            tracked = self.tracker.step(source, features=src)
        # an empty tracked mask (object gone from the source view) skips the frame, as a given empty mask does
        extra = {} if features is None else {"features": features}
        return PromptedResult(tracked, self.correspondence.step(source, tracked.mask, target_frame, **extra))
