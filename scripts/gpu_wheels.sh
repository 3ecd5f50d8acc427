#!/usr/bin/env bash
# Wheels for a lent GPU machine (Python 3.12, x86-64, no network): the packages lmeec needs that its image
# lacks, at the versions of this project's environment, into .whl/ (git-ignored; carry it). There,
# benchmarks/gpu_session.sh installs them. Run once here, from anywhere, after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# lmeec's and sam2's dependencies missing from the GPU image (its package list: the device notes' KINDS.md)
NEEDED=(hydra-core omegaconf antlr4-python3-runtime iopath onnxslim lzstring pycocotools jsonschema
  jsonschema-specifications referencing rpds-py)
rm -rf .whl && mkdir -p .whl
for name in "${NEEDED[@]}"; do
  version=$("$PY" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
  [[ -n $version ]] || { echo "gpu_wheels: $name is not in .venv (run scripts/setup.sh first)" >&2; exit 1; }
  # a binary wheel for the GPU machine's Python, else a wheel built here from the sdist (pure Python ones)
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "$name==$version" 2>/dev/null \
    || "$PY" -m pip wheel -q --no-deps -w .whl "$name==$version"
done
SAM2_BUILD_CUDA=0 "$PY" -m pip wheel -q --no-deps --no-build-isolation -w .whl "sam2==1.1.0"  # no CUDA extension
ls .whl
du -sh .whl
