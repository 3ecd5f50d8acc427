"""Small synthetic benchmarks shared by the eval tests (rendered once per session)."""

from __future__ import annotations

import pytest

from lmeec.eval.synth import SynthConfig, synthesize

SMALL = SynthConfig(takes=2, frames=8, scale=0.125, seed=3)
SPARSE = SynthConfig(takes=2, frames=8, scale=0.125, seed=3, unannotated=0.25)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """Folder holding relations_synth.json and the processed layout of two small takes."""
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, SMALL)
    return root


@pytest.fixture(scope="session")
def sparse_root(tmp_path_factory):
    """As `synth_root`, but each camera leaves a quarter of its frames unannotated per object, so cameras
    list different annotated frames (query masks on frames the target never annotated), as real splits do."""
    root = tmp_path_factory.mktemp("sparse")
    synthesize(root, SPARSE)
    return root
