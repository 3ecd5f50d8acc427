"""§2 a corrupt ONNX file whose hash matches the manifest: one line naming the file, exit 2, in every verb."""

from __future__ import annotations

import json
import shutil

import pytest

from lmeec.files import sha256
from tests.faults.conftest import errors, run_take_args, snapshot


@pytest.fixture()
def corrupt_engines(test_engines, tmp_path):
    """A copy of the test engines whose mask decoder is garbage, with the manifest's hash updated to match."""
    folder = shutil.copytree(test_engines, tmp_path / "corrupt")
    graph = folder / "mask_decoder.onnx"
    graph.write_bytes(b"\x08\x07garbage, not a protobuf" * 10)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["graphs"]["mask_decoder"]["sha256"] = sha256(graph)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _one_line(rc, lines):
    assert rc == 2, lines
    assert not any("Traceback" in ln for ln in lines), lines
    (line,) = errors(lines)
    assert "mask_decoder.onnx" in line
    return line


def test_run(corrupt_engines, sandbox, cli):
    before = snapshot(sandbox)
    rc, lines = cli(*run_take_args(corrupt_engines, sandbox / "data", sandbox / "o"))
    assert "ONNX Runtime cannot load" in _one_line(rc, lines)
    assert snapshot(sandbox) == before


def test_bench(corrupt_engines, tmp_path, cli):
    rc, lines = cli("bench", "--preset", "test", "--engines", corrupt_engines, "--frames", "1",
                    "--no-progress", "--no-plot", "--out", tmp_path / "b")  # fmt: skip
    _one_line(rc, lines)
    assert not (tmp_path / "b").exists()


def test_demo(corrupt_engines, tmp_path, cli):
    rc, lines = cli(
        "demo", "--preset", "test", "--frames", "2", "--engines", corrupt_engines, "--cache", tmp_path
    )
    _one_line(rc, lines)


def test_build_onnx_fp16(corrupt_engines, tmp_path, cli):
    rc, lines = cli("build", "onnx-fp16", "--onnx", corrupt_engines, "--out", tmp_path / "f16")
    assert "not a readable ONNX graph" in _one_line(rc, lines)
    assert not (tmp_path / "f16").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
