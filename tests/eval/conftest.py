"""A small synthetic benchmark shared by the eval tests (rendered once per session)."""

from __future__ import annotations

import pytest

from lmeec.eval.synth import SynthConfig, synthesize

SMALL = SynthConfig(takes=2, frames=8, scale=0.125, seed=3)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """Folder holding relations_synth.json and the processed layout of two small takes."""
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, SMALL)
    return root
