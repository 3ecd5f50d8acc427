"""The bundled `tritonserver` (from the nvidia-pytriton wheel) driven directly: lmeec writes a model repository
(config.pbtxt + a model.py importing `lmeec.serve.model`) and a backend folder, then runs the binary on
loopback. pytriton's own Python package (numpy<2) is not used: the stub runs lmeec in lmeec's environment.
"""

from __future__ import annotations

import os
import site
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import lmeec

MODEL = "lmeec"
TRITON_WHEEL = "nvidia-pytriton==0.7.0"
LOOPBACK = "127.0.0.1"

# Flags and masks travel as UINT8 0/1, and tensors cross the stub by DLPack: the wheel's stub reads numpy 2
# arrays' sizes wrongly (it was built for numpy 1), DLPack has no such layout dependence.
CONFIG = """name: "{name}"
backend: "python"
max_batch_size: 0
input [
  {{ name: "SESSION_ID" data_type: TYPE_UINT64 dims: [ 1 ] }},
  {{ name: "START" data_type: TYPE_UINT8 dims: [ 1 ] }},
  {{ name: "END" data_type: TYPE_UINT8 dims: [ 1 ] }},
  {{ name: "SOURCE_FRAME" data_type: TYPE_UINT8 dims: [ -1, -1, 3 ] }},
  {{ name: "SOURCE_MASK" data_type: TYPE_UINT8 dims: [ -1, -1 ] }},
  {{ name: "TARGET_FRAME" data_type: TYPE_UINT8 dims: [ -1, -1, 3 ] }}
]
output [
  {{ name: "TARGET_MASK" data_type: TYPE_UINT8 dims: [ -1, -1 ] }},
  {{ name: "OBJECT_SCORE" data_type: TYPE_FP32 dims: [ 1 ] }},
  {{ name: "SKIPPED" data_type: TYPE_UINT8 dims: [ 1 ] }}
]
instance_group [ {{ count: 1 kind: KIND_CPU }} ]
{parameters}
"""

MODEL_PY = "from lmeec.serve.model import TritonPythonModel  # noqa: F401  (written by lmeec serve)\n"

# The stub starts Python without PYTHONPATH; this replaces the utilities module it imports first, puts
# lmeec's environment ahead of the interpreter's own site-packages, then runs the real module.
UTILS_SHIM = """import os, site, sys
_dirs = [d for d in os.environ["LMEEC_SITE_DIRS"].split(os.pathsep) if d]
sys.path[:0] = _dirs
for _d in _dirs:
    site.addsitedir(_d)  # .pth files (editable installs)
_real = os.environ["LMEEC_TRITON_UTILS"]
exec(compile(open(_real).read(), _real, "exec"))
"""


@dataclass(frozen=True)
class ServeConfig:
    """What the served model opens and how many sessions it holds."""

    engines: Path
    backend: str = "ort"
    max_sessions: int = 4
    session_timeout_s: float = 60.0
    device: str = "cpu"
    threads: int | None = None
    http_port: int = 8000


def find_triton() -> Path:
    """The `tritonserver` folder of the nvidia-pytriton wheel: $LMEEC_TRITON_HOME, `{venv}/triton`, or installed."""
    candidates = []
    if os.environ.get("LMEEC_TRITON_HOME"):
        candidates.append(Path(os.environ["LMEEC_TRITON_HOME"]))
    candidates.append(Path(sys.prefix) / "triton" / "pytriton" / "tritonserver")
    candidates += [Path(p) / "pytriton" / "tritonserver" for p in site.getsitepackages()]
    for home in candidates:
        if (home / "bin" / "tritonserver").is_file():
            return home
    raise FileNotFoundError(
        f"tritonserver not found (looked in {', '.join(map(str, candidates))}); install it with "
        f"pip install --no-deps --target {Path(sys.prefix) / 'triton'} {TRITON_WHEEL}  (scripts/setup.sh does)"
    )


def write_repository(root: Path, config: ServeConfig, triton: Path) -> tuple[Path, Path]:
    """Write `{root}/models/lmeec/{config.pbtxt,1/model.py}` and `{root}/backends/python`; return both roots."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = triton / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise FileNotFoundError(f"{stub}: the Triton Python stub for Python {version} is missing")
    engines = Path(config.engines).resolve()
    if not (engines / "manifest.json").is_file():
        raise FileNotFoundError(f"{engines / 'manifest.json'}: not an exported engine folder")
    params = dict(
        engines=str(engines),
        backend=config.backend,
        max_sessions=str(config.max_sessions),
        session_timeout_s=str(config.session_timeout_s),
        device=config.device,
        threads="" if config.threads is None else str(config.threads),
    )
    parameters = "\n".join(
        f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in params.items()
    )
    models, backends = root / "models", root / "backends"
    (models / MODEL / "1").mkdir(parents=True)
    (models / MODEL / "config.pbtxt").write_text(CONFIG.format(name=MODEL, parameters=parameters))
    (models / MODEL / "1" / "model.py").write_text(MODEL_PY)
    python = backends / "python"
    python.mkdir(parents=True)
    (python / "libtriton_python.so").symlink_to(triton / "backends" / "python" / "libtriton_python.so")
    (python / "triton_python_backend_stub").symlink_to(stub)  # a link keeps the stub's $ORIGIN libraries
    (python / "triton_python_backend_utils.py").write_text(UTILS_SHIM)
    return models, backends


def server_env(triton: Path) -> dict[str, str]:
    """The environment the stub needs: lmeec's site-packages and libpython, the wheel's libraries."""
    env = dict(os.environ)
    lmeec_root = str(Path(lmeec.__file__).resolve().parents[1])
    env["LMEEC_SITE_DIRS"] = os.pathsep.join([lmeec_root, *site.getsitepackages()])
    env["LMEEC_TRITON_UTILS"] = str(triton / "backends" / "python" / "triton_python_backend_utils.py")
    libs = [str(triton.parents[1] / "nvidia_pytriton.libs")]
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        libs.insert(0, sysconfig.get_config_var("LIBDIR"))
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libs + [env.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep)
    return env


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def server_command(triton: Path, models: Path, backends: Path, http_port: int) -> list[str]:
    """tritonserver on loopback, HTTP only (gRPC and metrics off)."""
    return [
        str(triton / "bin" / "tritonserver"),
        f"--model-repository={models}",
        f"--backend-directory={backends}",
        f"--http-address={LOOPBACK}",
        f"--http-port={http_port}",
        "--allow-grpc=false",
        "--allow-metrics=false",
        "--exit-on-error=true",
        "--exit-timeout-secs=5",
        "--log-verbose=0",
    ]


class TritonServer:
    """A running tritonserver serving the lmeec model; a context manager that stops it on exit."""

    def __init__(self, config: ServeConfig, workdir: Path, log: Path | None = None) -> None:
        if config.http_port == 0:
            config = ServeConfig(**{**config.__dict__, "http_port": free_port()})
        self.config, self.triton = config, find_triton()
        models, backends = write_repository(Path(workdir), config, self.triton)
        self.log_path = log or Path(workdir) / "tritonserver.log"
        self.url = f"{LOOPBACK}:{config.http_port}"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            server_command(self.triton, models, backends, config.http_port),
            env=server_env(self.triton),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Block until the model answers ready; a server that exits or stalls raises with its log's tail."""
        import tritonclient.http as http

        client = http.InferenceServerClient(self.url)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"tritonserver exited ({self.process.returncode}): {self._tail()}")
                try:
                    if client.is_model_ready(MODEL):
                        return
                except Exception:  # not listening yet
                    pass
                time.sleep(0.5)
        finally:
            client.close()
        self.stop()
        raise RuntimeError(f"tritonserver not ready after {timeout_s:g} s: {self._tail()}")

    def _tail(self, lines: int = 8) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return " | ".join(line for line in text if line[:1] in "EW" or "rror" in line)[-2000:] or " | ".join(
            text[-lines:]
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> TritonServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
