"""Detector state across restarts: one file, written atomically, read without pickle.

Live detection learns for a while before it judges (the metric detector's learning
period, a service's first log lines, a template's first rate windows). Saving that state
now and then, and loading it at start, spares a restarted Baton the relearning. The file
is an ``.npz`` (NumPy's zip of arrays, loaded with ``allow_pickle=False``): the series'
state arrays stacked, and a JSON document (as bytes) for the rest. A file saved under
another detector configuration, or unreadable, is ignored with a warning: the detectors
then learn again, as on a first start.
"""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from baton.detect.live import LiveDetector, restore, snapshot

log = logging.getLogger("baton.detect")
FORMAT = 1


def save(detector: LiveDetector, path: Path) -> None:
    meta, arrays = snapshot(detector)
    meta["format"] = FORMAT
    document = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=document, **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, path)  # a crash mid-write leaves the previous file whole


def load(detector: LiveDetector, path: Path) -> LiveDetector:
    """A detector like ``detector`` holding the state in ``path``; ``detector`` itself
    when there is no file or it cannot be used."""
    if not path.is_file():
        return detector
    loaded = LiveDetector(detector.config, detector.detector)
    try:
        with np.load(path, allow_pickle=False) as saved:
            meta = json.loads(saved["meta"].tobytes())
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT}")
            arrays = {name: saved[name] for name in saved.files if name != "meta"}
        restore(loaded, meta, arrays)
    except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as exc:
        log.warning("detector state %s not loaded: %s", path, exc)
        return detector
    return loaded
