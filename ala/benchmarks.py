"""Benchmark tables: read, validate and group throughput-versus-batch measurements.

A table has one row per (configuration, batch size, replicate), in the schema of the
bundled data (see ``ala/data/README.md``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Union

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

TableLike = Union[pd.DataFrame, str, Path, Iterable[Union[pd.DataFrame, str, Path]]]

#: Columns that describe a configuration; together (without batch size) they name a curve.
DESCRIPTIVE_COLUMNS = (
    "source", "model", "hardware", "num_gpus", "tensor_parallel", "expert_parallel",
    "data_parallel", "framework", "framework_version", "precision", "variant",
    "disaggregated", "workload", "input_tokens", "output_tokens",
)
#: Columns a query row must carry (besides ``batch_size``).
REQUIRED_DESCRIPTIVE = ("model", "hardware", "num_gpus", "framework", "precision")
TEXT_COLUMNS = (
    "source", "config_id", "model", "hardware", "framework", "framework_version",
    "precision", "variant", "workload", "batch_semantics", "run_id",
)
INTEGER_COLUMNS = ("num_gpus", "tensor_parallel", "expert_parallel", "data_parallel", "replicate")
POSITIVE_COLUMNS = ("batch_size", "input_tokens", "output_tokens", "throughput_tokens_per_s")
MEASUREMENT_COLUMNS = (
    "throughput_tokens_per_s", "total_tokens_per_s", "e2e_latency_s", "ttft_ms", "itl_ms",
    "tpot_ms", "measured_avg_batch_size", "energy_per_token_j", "avg_power_w",
)
#: Optional per-row catalog facts, for models or accelerators the catalog lacks.
OVERRIDE_COLUMNS = ("params_b", "active_params_b", "peak_bf16_dense_tflops",
                    "memory_bandwidth_tbps", "memory_gb")
BUNDLED_FILES = ("llm_inference_bench.csv", "mlenergy_v3.csv")
DEFAULTS = {"source": "user", "workload": "unspecified", "framework_version": "", "variant": "",
            "batch_semantics": "", "run_id": "", "disaggregated": False, "replicate": 0}
#: Optional columns of live rows: seconds of observation behind each row (see ``ALA.predict``).
LIVE_COLUMNS = ("evidence_s",)


class BenchmarkError(ValueError):
    """A benchmark table that cannot be used, naming the file, the row and the column."""

    def __init__(self, where: str, problem: str, row: int | str | None = None,
                 column: str | None = None):
        parts = [where]
        if row is not None:
            parts.append(f"row {row}")
        if column is not None:
            parts.append(f"column {column!r}")
        super().__init__(f"{', '.join(parts)}: {problem}")
        self.where, self.row, self.column, self.problem = where, row, column, problem


def _row_label(frame: pd.DataFrame, position: int, is_file: bool) -> int | str:
    # CSV rows are reported as line numbers (the header is line 1) so editors can jump there.
    return position + 2 if is_file else str(frame.index[position])


def _numeric(frame: pd.DataFrame, column: str, where: str, is_file: bool, *,
             required: bool, positive: bool, integer: bool) -> np.ndarray:
    # Plain numpy on purpose: the operator validates small query tables on every refit,
    # where a chain of pandas operations per column cost more than the prediction.
    raw = frame[column]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.to_numpy(dtype=float, na_value=np.nan)
        empty = np.isnan(values)
    else:
        text = pd.Series(_text(raw), index=raw.index)
        empty = text.isin(["", "nan", "NaN", "None"]).to_numpy()
        values = pd.to_numeric(text.where(~empty, "nan"), errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(values) & ~empty
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise BenchmarkError(where, f"{raw.iloc[pos]!r} is not a number", _row_label(frame, pos, is_file), column)
    if required and empty.any():
        pos = int(np.flatnonzero(empty)[0])
        raise BenchmarkError(where, "value is missing", _row_label(frame, pos, is_file), column)
    present = ~np.isnan(values)
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        checks = [(present & ~finite, "is not finite"),
                  (present & (values <= 0), "must be positive") if positive else
                  (present & (values < 0), "must not be negative")]
        if integer:
            checks.append((finite & (values != np.round(values)), "must be a whole number"))
            # Counts (accelerators, parallel degrees, replicates) beyond a million are typos.
            checks.append((finite & (values > 1e6), "is unreasonably large for a count"))
    for mask, problem in checks:
        if mask.any():
            pos = int(np.flatnonzero(mask)[0])
            raise BenchmarkError(where, f"{raw.iloc[pos]!r} {problem}", _row_label(frame, pos, is_file), column)
    return values


def _text(column: pd.Series) -> np.ndarray:
    """The column as stripped strings, missing values as ""."""
    values = column.to_numpy(dtype=object)
    missing = pd.isna(values)
    return np.array(["" if gone else str(v).strip() for v, gone in zip(values, missing)], dtype=object)


def configuration_key(frame: pd.DataFrame, columns: tuple[str, ...] = DESCRIPTIVE_COLUMNS) -> pd.Series:
    """The one key of a configuration: a short hash of ``columns`` of each row.

    With the default columns it is a benchmark row's ``config_id`` (stable across
    releases: saved models and the documentation name curves by it); query keys and
    the evaluation's deployment groups are the same function over other columns.
    """
    values = [frame[c].to_numpy(dtype=object) for c in columns]
    return pd.Series([_hash_key("|".join(map(str, row))) for row in zip(*values)], index=frame.index,
                     dtype=object)


def query_keys(table: pd.DataFrame) -> pd.Series:
    """Key of each query or live row: rows that describe the same configuration share it,
    whatever their source."""
    return configuration_key(table.assign(source="query"))


@functools.lru_cache(maxsize=8192)  # the same configurations are hashed at every refit
def _hash_key(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:10]


def validate_table(frame: pd.DataFrame, where: str = "table", *, measurements: bool = True,
                   is_file: bool = False) -> pd.DataFrame:
    """Check a benchmark or query table and return a normalised copy.

    Parameters
    ----------
    frame : DataFrame
        Rows in the bundled schema.
    where : str
        Name used in error messages (a file path or ``"table"``).
    measurements : bool
        Require ``throughput_tokens_per_s`` (training data) or not (queries).

    Raises
    ------
    BenchmarkError
        Naming the file, the row and the column of the first problem found.
    """
    if not isinstance(frame, pd.DataFrame):
        raise BenchmarkError(where, f"expected a table, got {type(frame).__name__}")
    if frame.empty:
        raise BenchmarkError(where, "the table has no rows")
    frame = frame.reset_index(drop=True) if is_file else frame  # read only: never changed here
    required = list(REQUIRED_DESCRIPTIVE) + ["batch_size"]
    if measurements:
        required.append("throughput_tokens_per_s")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise BenchmarkError(where, f"missing required column(s) {', '.join(missing)}")
    n = len(frame)
    out: dict[str, np.ndarray] = {}
    for column in TEXT_COLUMNS:
        out[column] = _text(frame[column]) if column in frame.columns else \
            np.full(n, DEFAULTS.get(column, ""), dtype=object)
    for column in ("model", "hardware", "framework", "precision"):
        empty = out[column] == ""
        if empty.any():
            pos = int(np.flatnonzero(empty)[0])
            raise BenchmarkError(where, "value is missing", _row_label(frame, pos, is_file), column)
    for column in ("workload", "source"):
        out[column][out[column] == ""] = DEFAULTS[column]
    numeric = [c for c in INTEGER_COLUMNS + POSITIVE_COLUMNS + MEASUREMENT_COLUMNS]
    for column in dict.fromkeys(numeric):
        if column not in frame.columns:
            out[column] = np.full(n, DEFAULTS.get(column, np.nan), dtype=float)
            continue
        required_col = column in ("num_gpus", "batch_size") or (
            measurements and column == "throughput_tokens_per_s")
        out[column] = _numeric(frame, column, where, is_file, required=required_col,
                               positive=column in POSITIVE_COLUMNS or column == "num_gpus",
                               integer=column in INTEGER_COLUMNS)
    for column in OVERRIDE_COLUMNS + LIVE_COLUMNS:
        if column in frame.columns:
            out[column] = _numeric(frame, column, where, is_file, required=False, positive=True,
                                   integer=False)
    out["replicate"] = np.nan_to_num(out["replicate"], nan=0.0).astype(int)
    out["num_gpus"] = out["num_gpus"].astype(int)
    if "disaggregated" in frame.columns:
        flag = np.array([v.lower() for v in _text(frame["disaggregated"])], dtype=object)
        known = np.isin(flag, ["true", "false", "1", "0", "", "nan", "none"])
        if not known.all():
            pos = int(np.flatnonzero(~known)[0])
            raise BenchmarkError(where, f"{frame['disaggregated'].iloc[pos]!r} is not true/false",
                                 _row_label(frame, pos, is_file), "disaggregated")
        out["disaggregated"] = np.isin(flag, ["true", "1"])
    else:
        out["disaggregated"] = np.zeros(n, dtype=bool)
    out = pd.DataFrame(out, index=frame.index)
    no_id = out["config_id"] == ""
    if no_id.any():
        out.loc[no_id, "config_id"] = configuration_key(out.loc[no_id])
    return out


def _read_csv(path: Path, measurements: bool) -> pd.DataFrame:
    if not path.exists():
        raise BenchmarkError(str(path), "no such file")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise BenchmarkError(str(path), "the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BenchmarkError(str(path), f"not a readable CSV file ({exc})") from None
    return validate_table(raw, str(path), measurements=measurements, is_file=True)


def read_benchmarks(data: TableLike, *, measurements: bool = True) -> pd.DataFrame:
    """Read one or more benchmark tables (CSV paths or DataFrames) into one validated table.

    Examples
    --------
    >>> table = read_benchmarks(bundled_paths())
    >>> int(table["num_gpus"].min())
    1
    """
    if isinstance(data, (pd.DataFrame, str, Path)):
        data = [data]
    parts = []
    for item in data:
        if isinstance(item, pd.DataFrame):
            parts.append(validate_table(item, "table", measurements=measurements))
        elif isinstance(item, (str, Path)):
            parts.append(_read_csv(Path(item), measurements))
        else:
            raise BenchmarkError("input", f"expected a CSV path or a DataFrame, got {type(item).__name__}")
    if not parts:
        raise BenchmarkError("input", "no tables given")
    # One DataFrame keeps its index, so that predictions align with the caller's rows.
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def bundled_paths() -> list[Path]:
    """Paths of the benchmark CSV files shipped inside the package."""
    root = resources.files("ala") / "data"
    return [Path(str(root / name)) for name in BUNDLED_FILES]


def load_benchmarks() -> pd.DataFrame:
    """The bundled public benchmark data as one validated table.

    Sources and licences are in ``ala/data/README.md`` and ``ala/data/NOTICE``.
    """
    return read_benchmarks(bundled_paths())


@dataclass
class CurveSet:
    """Measurements grouped into throughput-versus-batch curves, one per configuration.

    ``configs`` has one row per usable curve (descriptive columns, ``n_points``,
    ``max_batch``); ``points`` holds replicate-averaged (config_id, batch_size, throughput,
    n_replicates) rows; ``excluded`` lists ``(config_id, reason)`` for curves left out.
    """

    configs: pd.DataFrame
    points: pd.DataFrame
    excluded: list[tuple[str, str]] = field(default_factory=list)

    def curve(self, config_id: str) -> tuple[np.ndarray, np.ndarray]:
        rows = self.points[self.points["config_id"] == config_id]
        return rows["batch_size"].to_numpy(float), rows["throughput"].to_numpy(float)


def group_curves(table: pd.DataFrame, *, min_points: int = 2) -> CurveSet:
    """Average replicates per (configuration, batch) and group rows into curves.

    Curves with fewer than ``min_points`` distinct batch sizes are excluded and reported
    in ``CurveSet.excluded`` (never dropped silently).
    """
    if table.empty:
        raise BenchmarkError("table", "the table has no rows")
    points = (table.groupby(["config_id", "batch_size"], sort=True)
              .agg(throughput=("throughput_tokens_per_s", "mean"),
                   n_replicates=("throughput_tokens_per_s", "size"))
              .reset_index())
    descriptive = [c for c in DESCRIPTIVE_COLUMNS if c != "output_tokens"]
    # Facts a row carries for a model or accelerator the catalog lacks stay with its curve.
    descriptive += [c for c in OVERRIDE_COLUMNS if c in table.columns and table[c].notna().any()]
    first = table.groupby("config_id", sort=True)[descriptive].first()
    # ML.ENERGY reports the measured mean output length per row: use the curve's mean.
    first["output_tokens"] = table.groupby("config_id", sort=True)["output_tokens"].mean()
    first["batch_semantics"] = table.groupby("config_id", sort=True)["batch_semantics"].first()
    counts = points.groupby("config_id").agg(n_points=("batch_size", "size"),
                                             max_batch=("batch_size", "max"),
                                             min_batch=("batch_size", "min"))
    configs = first.join(counts).reset_index()
    short = configs["n_points"] < min_points
    excluded = [(cid, f"only {n} batch size(s); a curve needs at least {min_points}")
                for cid, n in zip(configs.loc[short, "config_id"], configs.loc[short, "n_points"])]
    if excluded:
        logger.info("excluded %d curve(s) with fewer than %d batch sizes", len(excluded), min_points)
    configs = configs.loc[~short].reset_index(drop=True)
    points = points[points["config_id"].isin(configs["config_id"])].reset_index(drop=True)
    return CurveSet(configs=configs, points=points, excluded=excluded)
