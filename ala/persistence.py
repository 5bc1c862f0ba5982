"""Saved models: a versioned file that holds data and settings, never code.

Format ``ala-model`` version 1 is a ZIP archive of three kinds of members:

* ``manifest.json``: format name and version, the estimator's parameters, library
  versions, a SHA-256 digest of every other member, and a fingerprint (predictions on
  probe queries);
* ``training.csv``: the validated training table in the benchmark schema;
* ``live.csv`` (optional): live measurements given to ``save_model(..., live=)``, in the
  benchmark schema (read back with :func:`load_live`, used through ``predict(..., live=)``).

Loading checks the format, version and digests, reads the tables through the same
validation as any benchmark file, refits (the fit is deterministic for a given
``random_state``) and compares the fingerprint, so that a file cannot run code, and a
truncated, altered or incompatible one is refused with a reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
import sklearn

from .benchmarks import read_benchmarks
from .estimator import ALA

FORMAT = "ala-model"
VERSION = 1
#: Relative tolerance of the fingerprint check after the refit.
FINGERPRINT_RTOL = 1e-6
_PROBE = pd.DataFrame({"model": "meta-llama/Meta-Llama-3-8B", "hardware": "A100", "num_gpus": 1,
                       "framework": "vLLM", "precision": "16bit", "input_tokens": 512.0,
                       "output_tokens": 512.0, "batch_size": [1.0, 16.0, 64.0]})


class ModelFileError(ValueError):
    """A saved-model file that cannot be used, with the reason."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _fingerprint(model: ALA) -> list[float]:
    try:
        return [float(v) for v in model.predict(_PROBE)]
    except (KeyError, ValueError):
        return []


def save_model(model: ALA, path: str | Path, live: pd.DataFrame | None = None) -> Path:
    """Write a fitted ``model`` to ``path`` (format ``ala-model`` version 1), with ``live``
    measurements (query rows plus ``throughput_tokens_per_s``) beside it when given."""
    if not hasattr(model, "regressor_"):
        raise ValueError("the model is not fitted; call fit first.")
    path = Path(path)
    members = {"training.csv": _csv_bytes(model.training_)}
    if live is not None and len(live):
        members["live.csv"] = _csv_bytes(read_benchmarks(live))
    manifest = {
        "format": FORMAT, "version": VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "params": model.get_params(),
        "versions": {"ala": _ala_version(), "scikit-learn": sklearn.__version__,
                     "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__},
        "sha256": {name: _digest(data) for name, data in members.items()},
        "fingerprint": _fingerprint(model),
    }
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        for name, data in members.items():
            archive.writestr(name, data)
    tmp.replace(path)  # never leave a half-written file under the real name
    return path


def _ala_version() -> str:
    from . import __version__

    return __version__


def _read_members(path: Path) -> tuple[dict, dict[str, bytes]]:
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "manifest.json" not in names:
                raise ModelFileError(f"{path}: not an ALA model file (no manifest.json)")
            manifest = json.loads(archive.read("manifest.json"))
            data = {name: archive.read(name) for name in names if name != "manifest.json"}
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ModelFileError(f"{path}: damaged or truncated archive ({exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: manifest.json is not valid JSON ({exc})") from None
    return manifest, data


def load_model(path: str | Path) -> ALA:
    """Read a model written by :func:`save_model`; refuses bad files with ``ModelFileError``."""
    path = Path(path)
    manifest, data = _read_members(path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an ALA model file (format {manifest.get('format')!r})"
                             if isinstance(manifest, dict) else f"{path}: manifest is not an object")
    version = manifest.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ModelFileError(f"{path}: format version {version!r} is newer than this ala reads "
                             f"({VERSION}); upgrade ala")
    digests = manifest.get("sha256", {})
    if set(digests) != set(data) or "training.csv" not in data:
        raise ModelFileError(f"{path}: members {sorted(data)} do not match the manifest {sorted(digests)}")
    for name, blob in data.items():
        if _digest(blob) != digests[name]:
            raise ModelFileError(f"{path}: {name} was altered or damaged (SHA-256 mismatch)")
    params = manifest.get("params", {})
    known = ALA().get_params()
    if not isinstance(params, dict) or set(params) - set(known):
        raise ModelFileError(f"{path}: unknown estimator parameters {sorted(set(params) - set(known))}")
    training = read_benchmarks(pd.read_csv(io.BytesIO(data["training.csv"]), dtype=str,
                                           keep_default_na=False))
    model = ALA(**params).fit(training)
    expected = manifest.get("fingerprint", [])
    got = _fingerprint(model)
    if expected and (len(got) != len(expected) or not np.allclose(got, expected, rtol=FINGERPRINT_RTOL)):
        saved = manifest.get("versions", {})
        raise ModelFileError(f"{path}: the refitted model differs from the saved one (saved with "
                             f"scikit-learn {saved.get('scikit-learn')}, numpy {saved.get('numpy')}; "
                             f"running {sklearn.__version__}, {np.__version__})")
    return model


def load_live(path: str | Path) -> pd.DataFrame | None:
    """The live measurements saved beside the model in ``path`` (None when there are
    none), checked like any benchmark table; pass them as ``live=`` to predictions."""
    path = Path(path)
    manifest, data = _read_members(path)
    if "live.csv" not in data:
        return None
    if _digest(data["live.csv"]) != (manifest.get("sha256") or {}).get("live.csv"):
        raise ModelFileError(f"{path}: live.csv was altered or damaged (SHA-256 mismatch)")
    frame = pd.read_csv(io.BytesIO(data["live.csv"]), dtype=str, keep_default_na=False)
    if "query_key" in frame.columns and "model" not in frame.columns:
        raise ModelFileError(f"{path}: live.csv holds live points keyed by configuration only (written by "
                             f"ala 0.1's ALA.update); they cannot be matched to a query: save them again "
                             f"with save_model(model, path, live=rows)")
    return read_benchmarks(frame)
