"""Saved models: a versioned file that holds data and settings, never code.

Format ``ala-model`` version 1 is a ZIP archive of three kinds of members:

* ``manifest.json``: format name and version, the estimator's parameters, library
  versions, a SHA-256 digest of every other member, and a fingerprint (predictions on
  probe queries);
* ``training.csv``: the validated training table in the benchmark schema;
* ``live.csv`` (optional): live measurements given to ``save_model(..., live=)``, in the
  benchmark schema (read back with :func:`load_live`, used through ``predict(..., live=)``);
* ``fitted.pickle`` (optional, ``save_model(..., fitted=True)``): the fitted estimator, so
  that loading takes about a second instead of a refit.

Loading checks the format, version and digests and reads the tables through the same
validation as any benchmark file. The fitted state is used only when every library
version in the manifest is the one running, and it is read by an unpickler that admits an
explicit list of the estimator's own classes and array reconstructors and nothing else
(no ``os``, ``subprocess``, ``eval``, ``getattr``...): a file naming anything else is
refused, it cannot run code. Otherwise the estimator is refitted (the fit is
deterministic for a given ``random_state``). Either way the fingerprint is compared, so
a truncated, altered or incompatible file is refused with a reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle
import zipfile
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
import sklearn

from .benchmarks import read_benchmarks
from .estimator import ALA, FIT_REVISION

logger = logging.getLogger(__name__)

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


def save_model(model: ALA, path: str | Path, live: pd.DataFrame | None = None, fitted: bool = False) -> Path:
    """Write a fitted ``model`` to ``path`` (format ``ala-model`` version 1), with ``live``
    measurements (query rows plus ``throughput_tokens_per_s``) beside it when given, and
    with its fitted state when ``fitted`` (a larger file that loads without a refit under
    the same library versions)."""
    if not hasattr(model, "regressor_"):
        raise ValueError("the model is not fitted; call fit first.")
    path = Path(path)
    members = {"training.csv": _csv_bytes(model.training_)}
    if live is not None and len(live):
        members["live.csv"] = _csv_bytes(read_benchmarks(live))
    if fitted:
        members["fitted.pickle"] = pickle.dumps(model, protocol=5)
    manifest = {
        "format": FORMAT, "version": VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "params": model.get_params(),
        "versions": _versions(),
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


def _versions() -> dict[str, str]:
    return {"ala": _ala_version(), "scikit-learn": sklearn.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "pandas": pd.__version__,
            # A fitted state of another fit revision keys its calibration differently: refit.
            "fit_revision": str(FIT_REVISION)}


#: What a fitted-state member may name: the estimator's own classes, the scikit-learn
#: estimators and losses it is built from, and numpy/pandas reconstructors. Anything else
#: (a function that runs a command, reads a file or evaluates text) is refused.
_ALLOWED = {
    "ala.annealing": {"AnnealingResult"}, "ala.catalog": {"Catalog"}, "ala.estimator": {"ALA"},
    "ala.extrapolation": {"CurveRegressor"}, "ala.posterior": {"ErrorKernel"},
    "ala.similarity": {"WorkloadEmbedding"}, "ala.uncertainty": {"ConformalCalibrator", "ErrorPredictor"},
    "builtins": {"slice", "set", "frozenset", "complex"},
    "numpy": {"dtype", "ndarray"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"}, "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.numeric": {"_frombuffer"}, "numpy.core.numeric": {"_frombuffer"},
    "numpy.random._pcg64": {"PCG64"}, "numpy.random._mt19937": {"MT19937"},
    "numpy.random._pickle": {"__bit_generator_ctor", "__generator_ctor", "__randomstate_ctor"},
    "numpy.random.mtrand": {"RandomState"},
    "numpy.random.bit_generator": {"SeedSequence", "__pyx_unpickle_SeedSequence"},
    "pandas": {"DataFrame", "Index", "RangeIndex", "Series", "StringDtype", "CategoricalDtype"},
    "pandas._libs.arrays": {"__pyx_unpickle_NDArrayBacked"}, "pandas._libs.internals": {"_unpickle_block"},
    "pandas.arrays": {"StringArray"}, "pandas.core.indexes.base": {"_new_Index"},
    "pandas.core.internals.managers": {"BlockManager", "SingleBlockManager"},
    "pandas.io.formats.printing": {"PrettyDict"},
    "sklearn._loss._loss": {"CyHalfSquaredError"}, "sklearn._loss.link": {"IdentityLink", "Interval"},
    "sklearn._loss.loss": {"HalfSquaredError"},
    "sklearn.ensemble._forest": {"ExtraTreesRegressor", "RandomForestRegressor"},
    "sklearn.ensemble._hist_gradient_boosting.binning": {"_BinMapper"},
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting": {"HistGradientBoostingRegressor"},
    "sklearn.ensemble._hist_gradient_boosting.predictor": {"TreePredictor"},
    "sklearn.impute._base": {"SimpleImputer"}, "sklearn.pipeline": {"Pipeline"},
    "sklearn.tree._classes": {"ExtraTreeRegressor", "DecisionTreeRegressor"}, "sklearn.tree._tree": {"Tree"},
}


class _Refused(Exception):
    pass


class _AllowListUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if name not in _ALLOWED.get(module, ()):
            raise _Refused(f"{module}.{name}")
        return super().find_class(module, name)


def _unpickle(blob: bytes, path: Path) -> ALA:
    try:
        model = _AllowListUnpickler(io.BytesIO(blob)).load()
    except _Refused as exc:
        raise ModelFileError(f"{path}: fitted.pickle names {exc}, which a saved model never holds: "
                             f"refused (it could run code)") from None
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle is a damaged member
        raise ModelFileError(f"{path}: fitted.pickle cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(model, ALA) or not hasattr(model, "regressor_"):
        raise ModelFileError(f"{path}: fitted.pickle does not hold a fitted ALA model")
    return model


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
    saved = manifest.get("versions", {})
    if "fitted.pickle" in data and saved == _versions():
        model = _unpickle(data["fitted.pickle"], path)
        if model.get_params() != params or len(model.training_) != len(training):
            raise ModelFileError(f"{path}: fitted.pickle does not match the manifest's parameters or training.csv")
    else:
        if "fitted.pickle" in data:
            logger.warning("%s: saved with %s, running %s: refitting from training.csv instead of loading "
                           "the fitted state", path, saved, _versions())
        model = ALA(**params).fit(training)
    expected = manifest.get("fingerprint", [])
    got = _fingerprint(model)
    if expected and (len(got) != len(expected) or not np.allclose(got, expected, rtol=FINGERPRINT_RTOL)):
        raise ModelFileError(f"{path}: the loaded model differs from the saved one (saved with "
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
