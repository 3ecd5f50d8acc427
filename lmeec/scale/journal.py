"""`UnitJournal`: finished units' results on disk, one write-once JSON file per unit, tied to a run's settings.

A run that stops (Ctrl-C, lost driver) keeps every unit finished so far; the same command continues from
them. A result arriving twice (a unit retried after its worker was lost) is kept once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from lmeec.files import atomic_write_json, read_json

SETTINGS_FILE = "run.json"


class UnitJournal:
    """A folder of `{hash(key)}.json` results plus `run.json` (the settings the results were made with)."""

    def __init__(self, folder: Path | str, settings: dict) -> None:
        settings = json.loads(json.dumps(settings))  # compared as they read back (tuples become lists)
        self.folder, self.settings = Path(folder), settings
        marker = self.folder / SETTINGS_FILE
        if self.folder.exists():
            if not marker.is_file():
                raise FileExistsError(f"{self.folder} exists and is not an lmeec run journal; move it away")
            kept = read_json(marker)
            kept = kept if isinstance(kept, dict) else {}
            if kept != settings:
                changed = sorted(k for k in set(kept) | set(settings) if kept.get(k) != settings.get(k))
                raise ValueError(
                    f"{self.folder} holds a stopped run with other settings ({', '.join(changed)}): "
                    f"rerun with the same settings to continue it, or delete the folder to start over"
                )
        else:
            atomic_write_json(marker, settings, indent=1)

    def _path(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"

    def done(self, keys: list[str]) -> set[str]:
        """Those of `keys` whose result is stored."""
        return {k for k in keys if self._path(k).is_file()}

    def save(self, key: str, result: object) -> bool:
        """Store a unit's result once (atomically); False when it was already stored."""
        path = self._path(key)
        if path.is_file():
            return False
        atomic_write_json(path, {"key": key, "result": result})
        return True

    def load(self, key: str) -> object:
        """A stored result; the file must be the one written for this key."""
        path = self._path(key)
        doc = read_json(path)
        if not isinstance(doc, dict) or doc.get("key") != key or "result" not in doc:
            raise ValueError(f"{path}: not the journal entry of unit {key!r}")
        return doc["result"]

    def remove(self) -> None:
        """Delete the journal (after its results were written out)."""
        shutil.rmtree(self.folder)
