"""The fitted default model, built once per machine and reused.

A fit of the bundled data takes about 30 s on 2 cores; ``ala plan`` should answer in about a
second. The first call fits and saves the model with its fitted state under the user's
cache directory (``$ALA_CACHE_DIR``, else ``$XDG_CACHE_HOME/ala``, else ``~/.cache/ala``),
keyed by the package version, a digest of every training file's bytes and the seed; later
calls load it (:mod:`ala.persistence`: digests checked, an allow-listed unpickler, library
versions compared, a refit when they differ). A cache that cannot be written or read is
never an error: the model is fitted as before, and the reason logged.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Callable, Sequence

from .benchmarks import read_benchmarks
from .estimator import ALA, FIT_REVISION
from .persistence import ModelFileError, load_model, save_model

logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    if os.environ.get("ALA_CACHE_DIR"):
        return Path(os.environ["ALA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ala"


def cache_key(paths: Sequence[Path], seed: int) -> str:
    """Package version, fit revision, the training files' and the bundled catalog's bytes
    (in order) and the seed: a fitted model carries the catalog it was fitted with."""
    from importlib import resources

    from . import __version__

    digest = hashlib.sha256()
    root = resources.files("ala") / "data"
    catalog = [Path(str(root / name)) for name in ("accelerators.csv", "models.csv")]
    for path in [*paths, *catalog]:
        digest.update(Path(path).read_bytes())
        digest.update(b"\0")
    return f"ala-{__version__}-r{FIT_REVISION}-{digest.hexdigest()[:16]}-seed{seed}"


def cached_model(paths: Sequence[Path], seed: int = 0, use_cache: bool = True,
                 say: Callable[[str], None] = logger.info, progress: Callable[[int], Callable] | None = None) -> ALA:
    """The model fitted on ``paths`` with ``seed``: from the cache when it holds it, else
    fitted (and cached when ``use_cache``). ``progress(total)``, when given, makes the
    per-stage callback of the fit (a progress bar)."""
    path = cache_dir() / f"{cache_key(paths, seed)}.ala"
    if use_cache and path.exists():
        try:
            model = load_model(path)
            say(f"loaded the fitted model from {path}")
            return model
        except (ModelFileError, OSError) as exc:
            say(f"the cached model {path} cannot be used ({exc}); fitting again")
    table = read_benchmarks(list(paths))
    say(f"fitting ALA on {table['config_id'].nunique()} benchmarked curves ({len(table)} rows); "
        f"this first fit takes about half a minute and is cached for the next calls ...")
    model = ALA(random_state=seed)
    bar = None if progress is None else progress(model.fit_steps())
    model.fit(table, progress=None if bar is None else bar.step)
    if bar is not None:
        bar.close()
    say(f"fitted in {model.fit_seconds_:.1f}s")
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_model(model, path, fitted=True)
            say(f"cached at {path}")
        except OSError as exc:
            say(f"could not cache the model at {path} ({exc}); the next call fits again")
    return model
