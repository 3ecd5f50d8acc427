"""JSON files: reads that name the file and position on failure, atomic writes (temp file, then rename)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def read_json(path: Path | str) -> object:
    """Load a JSON file, naming the file and position when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with path.open("rb") as fp:
            return json.load(fp)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not valid JSON (truncated?): {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 JSON") from exc


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write a temp file beside `path`, then rename it over `path`: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: Path | str, obj: object, indent: int | None = None) -> Path:
    """Serialise `obj` as JSON and write it atomically."""
    return atomic_write_bytes(path, json.dumps(obj, indent=indent, allow_nan=False).encode("utf-8"))
