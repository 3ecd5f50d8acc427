"""Every TensorRT name lmeec (and its fake) uses exists in the real bindings of each supported major.

The name lists come from NVIDIA's bindings wheels (scripts/trt_api_names.py). The names lmeec uses are
collected from its source: attributes reached from `trt` or from a TensorRT object (builder, network,
layer, config, engine, context, ...). Code that runs only in `--mode layers` may use names TensorRT 11
removed, since that mode is refused there.
"""

from __future__ import annotations

import ast
import enum
import inspect
from pathlib import Path

import fake_tensorrt
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "tensorrt_api"
SOURCES = [ROOT / "lmeec" / "export" / "trt.py", ROOT / "lmeec" / "runtime" / "backends" / "trt.py"]
TRT_OBJECTS = {
    "trt",
    "builder",
    "network",
    "parser",
    "layer",
    "config",
    "updated",
    "tensor",
    "engine",
    "context",
}
TRT_MEMBERS = {"trt", "runtime", "engines", "contexts"}  # self.<member> holding TensorRT objects
LAYERS_ONLY = {"pin_fp32_layers"}  # functions run only by `--mode layers` (TensorRT 10)
VERSIONS = {"10.3.0": 10, "10.16.0.72": 10, "11.4.0.106": 11}


def bound_names(version: str) -> list[str]:
    return (FIXTURES / f"tensorrt-{version}.txt").read_text().split()


def exists(name: str, names: list[str]) -> bool:
    """A whole string, or the tail of a longer one (the linker stores `set_output_type` in `reset_output_type`)."""
    return any(n == name or n.endswith(name) for n in names)


def _root(node: ast.AST) -> str | None:
    while True:
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return node.attr if node.attr in TRT_MEMBERS else None
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Name):
            return node.id if node.id in TRT_OBJECTS else None
        else:
            return None


def used_names() -> dict[str, set[str]]:
    """{"all": names any supported TensorRT must have, "layers": names only `--mode layers` uses}."""
    found: dict[str, set[str]] = {"all": set(), "layers": set()}
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            kind = "layers" if func.name in LAYERS_ONLY else "all"
            for node in ast.walk(func):
                if (
                    isinstance(node, ast.Attribute)
                    and _root(node) is not None
                    and node.attr not in TRT_MEMBERS
                ):
                    found[kind].add(node.attr)
    found["layers"] -= found["all"]
    return found


def test_the_collector_finds_the_calls_we_know_of():
    used = used_names()
    for name in ("execute_async_v3", "set_input_shape", "set_tensor_address", "deserialize_cuda_engine",
                 "get_tensor_shape", "metadata", "set_timing_cache", "get_timing_cache", "WORKSPACE", "shape"):  # fmt: skip
        assert name in used["all"], name
    assert {"precision", "set_output_type", "dtype"} <= used["layers"]


@pytest.mark.parametrize("version", VERSIONS)
def test_lmeec_uses_only_names_of_each_supported_tensorrt(version):
    names, used = bound_names(version), used_names()
    needed = used["all"] | (used["layers"] if VERSIONS[version] == 10 else set())
    assert sorted(n for n in needed if not exists(n, names)) == []


def test_tensorrt_11_removed_what_lmeec_must_not_use_there():
    names, used = bound_names("11.4.0.106"), used_names()
    for gone in ("OBEY_PRECISION_CONSTRAINTS", "set_output_type", "precision_is_set", "FP16", "precision"):
        assert not exists(gone, names), gone
        assert gone not in used["all"], gone  # only in layers-mode code (refused on 11), or not at all
    for version in ("10.3.0", "10.16.0.72"):
        assert all(exists(n, bound_names(version)) for n in ("OBEY_PRECISION_CONSTRAINTS", "set_output_type"))


def _fake_names(major: int) -> set[str]:
    """Public names the fake's TensorRT classes and enums define for one major."""
    fake_tensorrt.make("10.3.0" if major == 10 else "11.4.0.106")
    layer = fake_tensorrt.Layer10 if major == 10 else fake_tensorrt.Layer11
    classes = [layer, fake_tensorrt.INetworkDefinition, fake_tensorrt.OnnxParser, fake_tensorrt.ITensor,
               fake_tensorrt.IOptimizationProfile, fake_tensorrt.ITimingCache, fake_tensorrt.IBuilderConfig,
               fake_tensorrt.Builder, fake_tensorrt.ICudaEngine, fake_tensorrt.IExecutionContext,
               fake_tensorrt.Runtime, fake_tensorrt.Logger]  # fmt: skip
    names = {n for c in classes for n in vars(c) if not n.startswith("_")}
    for _, value in inspect.getmembers(fake_tensorrt):
        if inspect.isclass(value) and issubclass(value, enum.Enum):
            names |= set(value.__members__)
    return names


@pytest.mark.parametrize("version", VERSIONS)
def test_the_fake_defines_only_real_names(version, fake_trt):
    names = bound_names(version)
    assert sorted(n for n in _fake_names(VERSIONS[version]) if not exists(n, names)) == []
