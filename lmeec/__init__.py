"""LM-EEC ego-exo correspondence for deployment.

The public surface is small: `Correspondence` (frame-by-frame tracker), the `lmeec` CLI and the README.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Correspondence", "Prompt", "PromptedCorrespondence", "SourceTracker", "__version__"]


def __getattr__(name: str):
    # Lazy so that `lmeec eval` and `lmeec data` never import torch or sam2.
    if name == "Correspondence":
        from lmeec.model.tracker import Correspondence

        return Correspondence
    if name == "PromptedCorrespondence":
        from lmeec.model.prompted import PromptedCorrespondence

        return PromptedCorrespondence
    if name in ("Prompt", "SourceTracker"):
        from lmeec.model import source_tracker

        return getattr(source_tracker, name)
    raise AttributeError(name)
