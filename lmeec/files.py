"""Files: JSON reads that name the file and position on failure; atomic writes (temp file, then rename);
the output rules every verb follows: an output never overlaps an input or the working directory, and
`--force` replaces only what lmeec wrote itself (folders carry a marker file)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

MARKER = ".lmeec-output"  # written into every output folder lmeec creates; --force deletes only such folders
_TEMPS: set[Path] = set()  # temp outputs in flight, removed by `remove_temps` when a signal ends the process


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


def sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fp:
        for chunk in iter(lambda: fp.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_lmeec_output(folder: Path) -> bool:
    """A folder lmeec wrote: it holds the marker (or, written before markers existed, an lmeec engine manifest)."""
    if (folder / MARKER).is_file():
        return True
    try:
        return json.loads((folder / "manifest.json").read_text()).get("format") == "lmeec-engines"
    except (OSError, ValueError, AttributeError):
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def check_output(
    path: Path | str, *, force: bool, inputs: Iterable[Path | str | None] = (), folder: bool = True
) -> Path:
    """Refuse an output path that would destroy data: the working directory or one of its ancestors, a
    path equal to / inside / containing an input, or an existing path unless `force` may replace it
    (a folder only if it carries lmeec's marker, a file only if it is a plain file). Call before the work."""
    path = Path(path)
    real = path.resolve()
    cwd = Path.cwd().resolve()
    if real == cwd or real in cwd.parents:
        raise ValueError(f"--out {path} is the working directory or contains it: give a new folder")
    for given in inputs:
        if given is None:
            continue
        if _overlaps(real, Path(given).resolve()):
            raise ValueError(f"--out {path} overlaps the input {given}: give a separate output path")
    if not path.exists() and not path.is_symlink():
        parent = real.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise PermissionError(f"--out {path}: cannot write in {parent}")
        return path
    if not force:
        raise FileExistsError(f"{path} already exists (pass --force to replace it)")
    if path.is_symlink():
        raise ValueError(f"--out {path} is a symbolic link: refusing to replace it")
    if folder:
        if not path.is_dir():
            raise ValueError(f"--out {path} is a file, not an lmeec output folder: refusing to replace it")
        if not is_lmeec_output(path):
            raise ValueError(
                f"--out {path} exists but was not written by lmeec (no {MARKER} marker): refusing to delete it"
            )
    elif not path.is_file():
        raise ValueError(f"--out {path} is not a file: refusing to replace it")
    if not os.access(real.parent, os.W_OK):
        raise PermissionError(f"--out {path}: cannot write in {real.parent}")
    return path


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temp path beside `path`; renamed over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    _TEMPS.add(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the final file gets the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        _TEMPS.discard(tmp)


@contextmanager
def atomic_dir(
    path: Path | str, overwrite: bool = False, inputs: Iterable[Path | str | None] = ()
) -> Iterator[Path]:
    """Yield a temp folder beside `path` (marked as lmeec output); it replaces `path` only if the block
    succeeds, and only under the rules of `check_output`."""
    path = Path(path)
    inputs = list(inputs)
    check_output(path, force=overwrite, inputs=inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    _TEMPS.add(tmp)
    tmp.chmod(0o777 & ~_umask())
    (tmp / MARKER).write_text("written by lmeec; `--force` may replace this folder\n")
    try:
        yield tmp
        if path.exists():
            check_output(path, force=overwrite, inputs=inputs)  # still ours after the work
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            _TEMPS.add(old)
            os.replace(path, old / "x")  # move aside first: the rename below then cannot fail half-way
            os.replace(tmp, path)
            shutil.rmtree(old)
            _TEMPS.discard(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
        _TEMPS.discard(tmp)


def remove_temps() -> None:
    """Delete the temp outputs of the writes in flight (called when SIGINT/SIGTERM ends the process)."""
    for tmp in list(_TEMPS):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        _TEMPS.discard(tmp)


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write bytes so that readers never see half a file."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_json(path: Path | str, obj: object, indent: int | None = None) -> Path:
    """Serialise `obj` as JSON and write it atomically."""
    return atomic_write_bytes(path, json.dumps(obj, indent=indent, allow_nan=False).encode("utf-8"))
