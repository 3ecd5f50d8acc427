#!/usr/bin/env bash
# The one install recipe: a virtual environment with CPU torch, then sam2 without its own dependencies
# (its video path needs no torchvision) and without build isolation (which would pull a CUDA torch),
# then lmeec and the rest of its dependencies. Idempotent: a complete .venv is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ -f "$VENV/.lmeec-installed" ] && [ "$VENV/.lmeec-installed" -nt pyproject.toml ]; then exit 0; fi
"$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install "torch==2.13.0"
"${PIP[@]}" install "setuptools>=68" wheel
"${PIP[@]}" install --no-build-isolation -e ".[dev]"
SAM2_BUILD_CUDA=0 "${PIP[@]}" install --no-build-isolation --no-deps "sam2==1.1.0"
# tritonserver for `lmeec serve`: the nvidia-pytriton wheel's binary only, unpacked without its numpy<2 pin
"${PIP[@]}" install --no-deps --target "$VENV/triton" "nvidia-pytriton==0.7.0"
"$VENV/bin/python" -c "import torch, sam2.modeling.sam2_base, lmeec; print('lmeec env ready: torch', torch.__version__)"
touch "$VENV/.lmeec-installed"
