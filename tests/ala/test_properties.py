"""Property-based checks: any table either validates or fails with a BenchmarkError that
names the offending column; nothing else escapes."""

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from ala import BenchmarkError, read_benchmarks

cell = st.one_of(st.text(max_size=6), st.floats(allow_nan=True, allow_infinity=True),
                 st.integers(-5, 10 ** 6), st.none())


@settings(max_examples=150, deadline=None)
@given(batch=cell, throughput=cell, gpus=cell)
def test_validation_fails_only_with_a_named_column(batch, throughput, gpus):
    frame = pd.DataFrame({"model": ["m"], "hardware": ["H100"], "num_gpus": [gpus], "framework": ["vLLM"],
                          "precision": ["fp8"], "batch_size": [batch], "throughput_tokens_per_s": [throughput]})
    try:
        out = read_benchmarks(frame)
    except BenchmarkError as err:
        assert err.column in {"batch_size", "throughput_tokens_per_s", "num_gpus"}
        assert err.row is not None
    else:
        row = out.iloc[0]
        assert row["batch_size"] > 0 and row["throughput_tokens_per_s"] > 0 and row["num_gpus"] >= 1
