"""`lmeec build trt`: one TensorRT plan per stage graph, built through polygraphy's TensorRT loaders.

polygraphy parses the ONNX (`NetworkFromOnnxPath`), configures the builder (`CreateConfig`: TF32 off,
FP16 / precision constraints, the static profile, workspace) and builds the plan (`EngineBytesFromNetwork`);
lmeec adds its manifest, the check of the network against it, the per-layer pins, the timing cache and the
version checks. Precision modes (both apply `lmeec.export.precision`, the single statement of the FP16 policy):
- `typed` (default with --fp16): parse the FP16-policy ONNX (explicit Casts) into a strongly typed
  network; TensorRT runs each tensor in the type the ONNX gives it. TensorRT 10 and 11.
- `layers`: parse the FP32 ONNX, set FP16 + OBEY_PRECISION_CONSTRAINTS and pin every floating-point layer
  that was not created for one of the policy's FP16 nodes (found by `layer.metadata`) to FP32. TensorRT 10
  only: TensorRT 11 removed the FP16 flag, the precision constraints and the per-layer precision API.
Without --fp16 the plans are FP32 (a strongly typed network of the FP32 ONNX, TF32 disabled, for parity
checks).

All shapes are static: the parsed network's inputs must equal the manifest's specs and every input gets a
one-point optimisation profile (min = opt = max = the manifest shape). The output folder is written
atomically: the plans, a copy of the FP32 ONNX graphs (the oracle for `lmeec check`) and manifest.json with
the TensorRT version, the GPU and the build flags.
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
SUPPORTED_MAJORS = (10, 11)  # JetPack 6 ships 10.3; PyPI serves 10.x and 11.x
LAYERS_MAJORS = (10,)  # per-layer precisions exist up to TensorRT 10
ONNX_SUBDIR = "onnx"  # FP32 ONNX copied beside the plans (oracle for `lmeec check`)
ONNX_LAYER = "[ONNX Layer: "  # how TensorRT's ONNX parser starts `layer.metadata`


def trt_major(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


def import_tensorrt():
    """The tensorrt module, or a one-line RuntimeError saying how to get it."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise RuntimeError(
            "TensorRT is not installed: on x86-64 `pip install lmeec[trt]`; on Jetson use JetPack's "
            "python3-libnvinfer (see README, 'TensorRT')"
        ) from exc
    if trt_major(trt) not in SUPPORTED_MAJORS:
        raise RuntimeError(
            f"TensorRT {trt.__version__} found; lmeec supports TensorRT "
            f"{' and '.join(map(str, SUPPORTED_MAJORS))} (pip install 'tensorrt>=10,<12')"
        )
    return trt


def check_mode(trt, fp16: bool, mode: str) -> None:
    """Refuse a precision mode this TensorRT cannot build."""
    if mode not in MODES:
        raise ValueError(f"unknown precision mode {mode!r}; choose {' or '.join(MODES)}")
    if fp16 and mode == "layers" and trt_major(trt) not in LAYERS_MAJORS:
        raise ValueError(
            f"--mode layers needs TensorRT 10 (TensorRT {trt.__version__} has no per-layer precisions); "
            "use --mode typed"
        )


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
    cache_name: str = "timing cache",
) -> tuple[bytes, bytes | None, dict]:
    """Build one plan; returns (plan bytes, updated timing cache bytes or None, facts for the manifest)."""
    from polygraphy.backend.trt import CreateConfig, EngineBytesFromNetwork, NetworkFromOnnxPath
    from polygraphy.exception import PolygraphyException
    from polygraphy.logger import G_LOGGER

    layers = fp16 and mode == "layers"
    quiet = G_LOGGER.verbosity(G_LOGGER.WARNING)  # polygraphy's INFO lines repeat what lmeec prints
    try:  # strongly typed unless per-layer precisions are asked for (FP32 plans too: the ONNX's types)
        with quiet:
            builder, network, parser = NetworkFromOnnxPath(str(onnx_path), strongly_typed=not layers)()
    except PolygraphyException as exc:
        raise RuntimeError(f"{onnx_path.name}: TensorRT's ONNX parser failed: {exc}") from exc
    profile, dynamic = _check_io_and_profile(network, entry, onnx_path.name)
    pinned = pin_fp32_layers(trt, network, fp16_nodes) if layers else {"nodes": 0, "helpers": 0}
    with quiet:
        config = CreateConfig(
            tf32=False,  # FP32 means FP32 (the oracle's numbers), also in the FP32 islands of typed plans
            fp16=layers,
            precision_constraints="obey" if layers else None,
            profiles=[profile],
            memory_pool_limits={trt.MemoryPoolType.WORKSPACE: int(workspace_mb) << 20}
            if workspace_mb
            else None,
        )(builder, network)
    if timing_cache:
        cache = config.create_timing_cache(timing_cache)
        if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
            raise ValueError(
                f"{cache_name} was written by another TensorRT or GPU; pass another --timing-cache file"
            )
    t0 = time.perf_counter()
    try:
        with quiet:
            plan = EngineBytesFromNetwork((builder, network, parser), config=config)()
    except PolygraphyException as exc:
        raise RuntimeError(f"{onnx_path.name}: TensorRT failed to build the engine: {exc}") from exc
    facts = {
        "build_s": round(time.perf_counter() - t0, 1),
        "layers": network.num_layers,
        "fp32_pinned_layers": pinned["nodes"] + pinned["helpers"],
        "fp32_pinned_helper_layers": pinned["helpers"],
        "profile_inputs": dynamic,
    }
    updated = config.get_timing_cache()
    if updated is None:
        log.warning("%s: TensorRT returned no timing cache; %s is left as it was", onnx_path.name, cache_name)
    return bytes(plan), None if updated is None else bytes(updated.serialize()), facts


def layer_node(layer) -> str | None:
    """The ONNX node a layer was created for (`[ONNX Layer: NAME | ...]` in its metadata), else None.

    The parser's helper layers (`node_<k>`, `ONNXTRT_*`) carry no metadata; names are not used because
    a prefix match mistakes siblings (`/x/MatMul` for `/x/MatMul_1`).
    """
    meta = str(layer.metadata or "")
    if not meta.startswith(ONNX_LAYER) or not meta.endswith("]"):
        return None
    return meta[len(ONNX_LAYER) : -1].split(" | ")[0]


def pin_fp32_layers(trt, network, fp16_nodes: set[str]) -> dict[str, int]:
    """`layers` mode: every floating-point layer not created for a policy FP16 node runs and outputs FP32.

    Layers without floating-point outputs (BOOL/INT64 comparisons, indices) keep their types: pinning them
    to FP32 would be refused under OBEY_PRECISION_CONSTRAINTS. Helper layers without an ONNX node are
    pinned too (the policy's default is FP32). Returns how many node and helper layers were pinned.
    """
    floats = (trt.float32, trt.float16)
    counts = {"nodes": 0, "helpers": 0}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        node = layer_node(layer)
        if node in fp16_nodes or layer.type in _NON_COMPUTE(trt):
            continue  # constants/shuffles carry their inputs' type; pinning them forces reformatting
        outputs = [j for j in range(layer.num_outputs) if layer.get_output(j).dtype in floats]
        if not outputs:
            continue
        layer.precision = trt.float32
        for j in outputs:
            layer.set_output_type(j, trt.float32)
        counts["helpers" if node is None else "nodes"] += 1
    return counts


def _NON_COMPUTE(trt) -> tuple:
    return (trt.LayerType.CONSTANT, trt.LayerType.SHUFFLE, trt.LayerType.SHAPE)


def _check_io_and_profile(network, entry: GraphEntry, where: str):
    """Inputs/outputs must match the manifest; every input gets a static profile at the manifest shape.

    Returns (polygraphy Profile, names of the inputs that were dynamic in the ONNX).
    """
    from polygraphy.backend.trt import Profile

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
    profile, dynamic = Profile(), []
    for name, tensor in got_in.items():
        shape = _dims(tensor.shape)
        want = tuple(want_in[name])
        if len(shape) != len(want) or any(d not in (-1, w) for d, w in zip(shape, want)):
            raise ValueError(
                f"{where}: input {name} is {list(shape)} in the ONNX but {list(want)} in the manifest"
            )
        profile.add(name, want, want, want)
        if -1 in shape:
            dynamic.append(name)
    return profile, dynamic


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

    if workspace_mb is not None and workspace_mb <= 0:
        raise ValueError("--workspace must be a positive number of MiB")
    onnx_dir = Path(onnx_dir)
    manifest = read_manifest(onnx_dir)
    if manifest.tensorrt:
        raise ValueError(f"{onnx_dir} holds TensorRT plans; pass the exported ONNX folder")
    check_manifest(onnx_dir, manifest)
    trt = trt or import_tensorrt()
    check_mode(trt, fp16, mode)
    gpu = gpu or gpu_facts()
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
            plan, updated, facts = build_engine(
                trt,
                build_src,
                entry,
                fp16=fp16,
                mode=mode,
                fp16_nodes=nodes,
                workspace_mb=workspace_mb,
                timing_cache=cache,
                cache_name=str(cache_path),
            )
            cache = updated or cache
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
            source_mask=manifest.source_mask,
            model=manifest.model,
            image_size=manifest.image_size,
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
