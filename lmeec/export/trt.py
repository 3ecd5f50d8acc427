"""`lmeec build trt`: one TensorRT plan per stage graph (TensorRT 10 Python API), kept thin.

Precision modes (both apply `lmeec.export.precision`, the single statement of the FP16 policy):
- `typed` (default with --fp16): parse the FP16-policy ONNX (explicit Casts) into a strongly typed
  network; TensorRT runs each tensor in the type the ONNX gives it, nothing to match by name.
- `layers`: parse the FP32 ONNX, set BuilderFlag.FP16 + OBEY_PRECISION_CONSTRAINTS and pin every layer
  that is not one of the policy's FP16 nodes (matched by ONNX node name) to FP32.
Without --fp16 the plans are FP32 (TF32 disabled, for parity checks).

All shapes are static: the parsed network's inputs must equal the manifest's specs; any dynamic
dimension gets a one-point optimisation profile (min = opt = max = the manifest shape).
The output folder is written atomically: the plans, a copy of the FP32 ONNX graphs (the oracle for
`lmeec check`) and manifest.json with the TensorRT version, the GPU and the build flags.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from lmeec.export.manifest import MANIFEST, GraphEntry, Manifest, check_manifest, read_manifest, sha256
from lmeec.export.precision import describe_policy, fp16_node_names, precision_counts, to_fp16_onnx
from lmeec.files import atomic_dir, atomic_write_bytes

log = logging.getLogger(__name__)
MODES = ("typed", "layers")
ONNX_SUBDIR = "onnx"  # FP32 ONNX copied beside the plans (oracle for `lmeec check`)


def import_tensorrt():
    """The tensorrt module, or a one-line RuntimeError saying how to get it."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise RuntimeError(
            "TensorRT is not installed: on x86-64 `pip install lmeec[trt]`; on Jetson use JetPack's "
            "python3-libnvinfer (see README, 'TensorRT')"
        ) from exc
    major = int(str(trt.__version__).split(".")[0])
    if major < 10:
        raise RuntimeError(f"TensorRT {trt.__version__} found; lmeec needs TensorRT 10 or newer")
    return trt


def gpu_facts(device: int = 0) -> dict:
    """Name and compute capability of the CUDA device that builds or runs the plans (via torch)."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("TensorRT needs a CUDA GPU and torch with CUDA; none is visible here")
    major, minor = torch.cuda.get_device_capability(device)
    return {"gpu": torch.cuda.get_device_name(device), "compute_capability": f"{major}.{minor}"}


def _dims(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape)


def build_engine(
    trt,
    onnx_path: Path,
    entry: GraphEntry,
    *,
    fp16: bool,
    mode: str,
    fp16_nodes: set[str],
    workspace_mb: int | None,
    timing_cache: bytes | None,
    logger,
) -> tuple[bytes, bytes, dict]:
    """Build one plan; returns (plan bytes, updated timing cache bytes, facts for the manifest)."""
    typed = fp16 and mode == "typed"
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path.name}: TensorRT's ONNX parser failed: {errors}")

    config = builder.create_builder_config()
    if workspace_mb:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if not typed:
        config.clear_flag(trt.BuilderFlag.TF32)  # FP32 means FP32 (the oracle's numbers)
    pinned = 0
    if fp16 and mode == "layers":
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        pinned = pin_fp32_layers(trt, network, fp16_nodes)

    profile_inputs = _check_io_and_profile(trt, builder, config, network, entry, onnx_path.name)
    cache = config.create_timing_cache(timing_cache or b"")
    config.set_timing_cache(cache, ignore_mismatch=False)

    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"{onnx_path.name}: TensorRT failed to build the engine (see the log above)")
    facts = {
        "build_s": round(time.perf_counter() - t0, 1),
        "layers": network.num_layers,
        "fp32_pinned_layers": pinned,
        "profile_inputs": profile_inputs,
    }
    return bytes(plan), bytes(config.get_timing_cache().serialize()), facts


def pin_fp32_layers(trt, network, fp16_nodes: set[str]) -> int:
    """`layers` mode: every layer not created for a policy FP16 node runs and outputs FP32.

    TensorRT's ONNX parser names a node's main layer after the node; helper layers it adds for a node
    carry the node name as a prefix or are unnamed, so both forms count as that node.
    """
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if _layer_node(layer.name, fp16_nodes) is not None:
            continue
        if layer.type in _NON_COMPUTE(trt):
            continue  # constants/shuffles carry their inputs' type; pinning them forces reformatting
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            if layer.get_output_type(j) in (trt.float32, trt.float16):
                layer.set_output_type(j, trt.float32)
        pinned += 1
    return pinned


def _layer_node(layer_name: str, fp16_nodes: set[str]) -> str | None:
    if layer_name in fp16_nodes:
        return layer_name
    for node in fp16_nodes:
        if layer_name.startswith(node + "_") or layer_name.startswith(node + " "):
            return node
    return None


def _NON_COMPUTE(trt) -> tuple:
    return (trt.LayerType.CONSTANT, trt.LayerType.SHUFFLE, trt.LayerType.SHAPE)


def _check_io_and_profile(trt, builder, config, network, entry: GraphEntry, where: str) -> list[str]:
    """Inputs/outputs must match the manifest; dynamic inputs get a static profile at the manifest shape."""
    want_in = {s.name: s.shape for s in entry.inputs}
    got_in = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    if set(got_in) != set(want_in):
        raise ValueError(
            f"{where}: network inputs {sorted(got_in)} differ from the manifest's {sorted(want_in)}"
        )
    want_out = {s.name for s in entry.outputs}
    got_out = {network.get_output(i).name for i in range(network.num_outputs)}
    if got_out != want_out:
        raise ValueError(
            f"{where}: network outputs {sorted(got_out)} differ from the manifest's {sorted(want_out)}"
        )
    profile, dynamic = None, []
    for name, tensor in got_in.items():
        shape = _dims(tensor.shape)
        want = tuple(want_in[name])
        if len(shape) != len(want) or any(d not in (-1, w) for d, w in zip(shape, want)):
            raise ValueError(
                f"{where}: input {name} is {list(shape)} in the ONNX but {list(want)} in the manifest"
            )
        if -1 in shape:
            profile = profile or builder.create_optimization_profile()
            profile.set_shape(name, want, want, want)
            dynamic.append(name)
    if profile is not None:
        config.add_optimization_profile(profile)
    return dynamic


def build_trt(
    onnx_dir: Path | str,
    out: Path | str,
    *,
    fp16: bool = True,
    mode: str = "typed",
    timing_cache: Path | str | None = None,
    workspace_mb: int | None = None,
    overwrite: bool = False,
    trt=None,
    gpu: dict | None = None,
    progress: bool = True,
) -> Manifest:
    """Build plans for every graph of an exported ONNX folder into `out` (all or nothing)."""
    import onnx

    if mode not in MODES:
        raise ValueError(f"unknown precision mode {mode!r}; choose {' or '.join(MODES)}")
    if workspace_mb is not None and workspace_mb <= 0:
        raise ValueError("--workspace must be a positive number of MiB")
    onnx_dir = Path(onnx_dir)
    manifest = read_manifest(onnx_dir)
    if manifest.tensorrt:
        raise ValueError(f"{onnx_dir} holds TensorRT plans; pass the exported ONNX folder")
    check_manifest(onnx_dir, manifest)
    trt = trt or import_tensorrt()
    gpu = gpu or gpu_facts()
    logger = trt.Logger(trt.Logger.WARNING)
    cache_path = Path(timing_cache) if timing_cache else None
    cache = cache_path.read_bytes() if cache_path and cache_path.is_file() else None

    graphs: dict[str, GraphEntry] = {}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / ONNX_SUBDIR).mkdir()
        shutil.copyfile(onnx_dir / MANIFEST, tmp / ONNX_SUBDIR / MANIFEST)
        for name, entry in manifest.graphs.items():
            src = onnx_dir / entry.file
            shutil.copyfile(src, tmp / ONNX_SUBDIR / entry.file)
            model = onnx.load(str(src))
            nodes = fp16_node_names(model) if fp16 else set()
            build_src = src
            if fp16 and mode == "typed":
                build_src = tmp / f"{name}.fp16.onnx"
                onnx.save(to_fp16_onnx(model), str(build_src))
            if progress:
                print(f"building {name} ({'fp16 ' + mode if fp16 else 'fp32'})...", flush=True)
            plan, cache, facts = build_engine(
                trt,
                build_src,
                entry,
                fp16=fp16,
                mode=mode,
                fp16_nodes=nodes,
                workspace_mb=workspace_mb,
                timing_cache=cache,
                logger=logger,
            )
            if build_src != src:
                build_src.unlink()
            plan_file = f"{name}.plan"
            (tmp / plan_file).write_bytes(plan)
            extra = {
                **facts,
                "onnx": f"{ONNX_SUBDIR}/{entry.file}",
                "onnx_sha256": entry.sha256,
                **(precision_counts(model) if fp16 else {}),
            }
            graphs[name] = GraphEntry(plan_file, sha256(tmp / plan_file), entry.inputs, entry.outputs, extra)
        built = Manifest(
            preset=manifest.preset,
            compression=manifest.compression,
            opset=manifest.opset,
            graphs=graphs,
            checkpoint=manifest.checkpoint,
            versions={**manifest.versions, "tensorrt": str(trt.__version__)},
            max_objects=manifest.max_objects,
            tensorrt={
                "version": str(trt.__version__),
                **gpu,
                "precision": "fp16" if fp16 else "fp32",
                "mode": mode if fp16 else "fp32",
                "policy": describe_policy() if fp16 else None,
                "workspace_mb": workspace_mb,
                "timing_cache": str(cache_path) if cache_path else None,
                "source": str(onnx_dir),
            },
        )
        built.write(tmp)
    if cache_path and cache:
        atomic_write_bytes(cache_path, cache)  # reused by the next build on this GPU and TensorRT
    return built


def check_plan_compat(manifest: Manifest, trt_version: str, gpu: dict, folder: Path | str) -> None:
    """Refuse plans built by another TensorRT or for another GPU (TensorRT plans are not portable)."""
    info = manifest.tensorrt
    if not info:
        raise ValueError(f"{folder}: not a TensorRT plan folder (build one with `lmeec build trt`)")
    built = f"TensorRT {info.get('version')} on {info.get('gpu')} (sm {info.get('compute_capability')})"
    here = f"TensorRT {trt_version} on {gpu['gpu']} (sm {gpu['compute_capability']})"
    if (
        str(info.get("version")) != str(trt_version)
        or info.get("compute_capability") != gpu["compute_capability"]
        or info.get("gpu") != gpu["gpu"]
    ):
        raise RuntimeError(
            f"{folder}: plans were built with {built} but this machine has {here}; rebuild them here: "
            f"lmeec build trt --onnx {Path(folder) / ONNX_SUBDIR} --out NEW_DIR"
            + (f" --fp16 --mode {info.get('mode')}" if info.get("precision") == "fp16" else "")
        )
