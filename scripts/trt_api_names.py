"""Bound-name lists of TensorRT's Python bindings, read from the wheels without importing them.

NVIDIA's `tensorrt-cuXX-bindings` wheels install from PyPI but import only where libnvinfer exists. Their
extension module keeps every pybind11 name (classes, methods, properties, enum members) as a NUL-terminated
string in `.rodata`; this script lists those identifier strings, plus the names the package's
`__init__.py` defines (`__version__`, helpers, attributes it adds to bound classes), one per line, for
tests/trt/test_api_surface.py. The linker merges a string into the tail of a longer one (10.3 stores
`set_output_type` only inside `reset_output_type`), so the test treats a name as present when it is a
whole string or the tail of one.

    pip download --no-deps -d WHEELS tensorrt-cu12-bindings==10.3.0 tensorrt-cu12-bindings==10.16.0.72 \
        tensorrt-cu13-bindings==11.4.0.106
    python scripts/trt_api_names.py WHEELS/*.whl --out tests/fixtures/tensorrt_api
"""

from __future__ import annotations

import argparse
import ast
import re
import struct
import zipfile
from pathlib import Path

IDENTIFIER = re.compile(rb"(?<=\x00)([A-Za-z_][A-Za-z0-9_]{1,80})(?=\x00)")
WHEEL = re.compile(r"tensorrt_cu\d+_bindings-(\d+\.\d+\.\d+(?:\.\d+)?)-")


def elf_section(data: bytes, wanted: str) -> bytes:
    """The bytes of one section of a 64-bit little-endian ELF file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = headers[shstrndx]
    for h in headers:
        start = names[4] + h[0]
        name = data[start : data.index(b"\x00", start)].decode()
        if name == wanted:
            return data[h[4] : h[4] + h[5]]
    raise ValueError(f"no {wanted} section")


def bound_names(so: bytes) -> list[str]:
    """Identifier strings of the module's read-only data, minus C++ mangled symbols."""
    rodata = b"\x00" + elf_section(so, ".rodata")
    names = {m.group(1).decode() for m in IDENTIFIER.finditer(rodata)}
    return sorted(n for n in names if not n.startswith("_Z"))


def python_names(source: str) -> set[str]:
    """Names a Python module defines at top level or assigns as attributes (`IHostMemory.__enter__ = ...`)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        for target in getattr(node, "targets", []):
            if isinstance(target, ast.Name):
                names.add(target.id)
            elif isinstance(target, ast.Attribute):
                names.add(target.attr)
    return names


def wheel_names(wheel: Path) -> tuple[str, list[str]]:
    """(TensorRT version, bound names) of one bindings wheel."""
    match = WHEEL.search(wheel.name)
    if not match:
        raise ValueError(f"{wheel}: not a tensorrt-cuXX-bindings wheel name")
    with zipfile.ZipFile(wheel) as z:
        so = [n for n in z.namelist() if n.startswith("tensorrt_bindings/tensorrt") and ".so" in n]
        if len(so) != 1:
            raise ValueError(f"{wheel}: expected one tensorrt_bindings extension module, found {so}")
        init = python_names(z.read("tensorrt_bindings/__init__.py").decode())
        return match.group(1), sorted(set(bound_names(z.read(so[0]))) | init)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheels", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="folder for one NAME-LIST per version")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for wheel in args.wheels:
        version, names = wheel_names(wheel)
        path = args.out / f"tensorrt-{version}.txt"
        path.write_text("\n".join(names) + "\n")
        print(f"{path}: {len(names)} names")


if __name__ == "__main__":
    main()
