import pandas as pd
import pytest

from ala import BenchmarkError, read_benchmarks
from ala.benchmarks import bundled_paths, group_curves


def test_bundled_data_loads_with_both_sources(table):
    assert set(table["source"].str[:6]) == {"argonn", "ml-ene"}
    assert len(table) == 3202 + 838
    assert (table["throughput_tokens_per_s"] > 0).all()


def test_bundled_copy_ships_licence_notices():
    data = bundled_paths()[0].parent
    notice = (data / "NOTICE").read_text()
    assert "UChicago Argonne" in notice and "Apache License" in notice


def test_group_curves_reports_one_point_curves(table):
    curves = group_curves(table)
    assert curves.excluded, "the bundled data has one-point curves that must be reported"
    assert all("batch size" in reason for _, reason in curves.excluded)
    assert not set(cid for cid, _ in curves.excluded) & set(curves.configs["config_id"])
    # Replicates are averaged, not double counted.
    assert not curves.points.duplicated(["config_id", "batch_size"]).any()


def _write(tmp_path, text):
    path = tmp_path / "bench.csv"
    path.write_text(text)
    return path


GOOD = "model,hardware,num_gpus,framework,precision,batch_size,throughput_tokens_per_s\n"


def test_malformed_number_names_file_row_and_column(tmp_path):
    path = _write(tmp_path, GOOD + "m,H100,1,vLLM,fp8,8,100\nm,H100,1,vLLM,fp8,abc,200\n")
    with pytest.raises(BenchmarkError) as err:
        read_benchmarks(path)
    assert str(path) in str(err.value) and "row 3" in str(err.value) and "'batch_size'" in str(err.value)


@pytest.mark.parametrize("value,problem", [("-5", "must be positive"), ("nan", "missing"),
                                           ("inf", "not finite"), ("0", "must be positive")])
def test_bad_throughput_is_an_error(tmp_path, value, problem):
    path = _write(tmp_path, GOOD + f"m,H100,1,vLLM,fp8,8,{value}\n")
    with pytest.raises(BenchmarkError, match=problem):
        read_benchmarks(path)


def test_missing_column_and_empty_file(tmp_path):
    with pytest.raises(BenchmarkError, match="missing required column.*throughput"):
        read_benchmarks(_write(tmp_path, "model,hardware,num_gpus,framework,precision,batch_size\nm,H100,1,v,fp8,1\n"))
    with pytest.raises(BenchmarkError, match="empty"):
        read_benchmarks(_write(tmp_path, ""))
    with pytest.raises(BenchmarkError, match="no rows"):
        read_benchmarks(pd.DataFrame(columns=["model"]))
    with pytest.raises(BenchmarkError, match="no such file"):
        read_benchmarks(tmp_path / "absent.csv")


def test_fractional_gpu_count_is_rejected():
    frame = pd.DataFrame({"model": ["m"], "hardware": ["H100"], "num_gpus": [1.5], "framework": ["vLLM"],
                          "precision": ["fp8"], "batch_size": [4], "throughput_tokens_per_s": [10.0]})
    with pytest.raises(BenchmarkError, match="whole number"):
        read_benchmarks(frame)


def test_config_id_is_derived_when_absent():
    frame = pd.DataFrame({"model": ["m", "m"], "hardware": ["H100"] * 2, "num_gpus": [1, 1],
                          "framework": ["vLLM"] * 2, "precision": ["fp8"] * 2, "batch_size": [1, 8],
                          "throughput_tokens_per_s": [10.0, 60.0]})
    out = read_benchmarks(frame)
    assert out["config_id"].nunique() == 1 and len(out["config_id"].iloc[0]) == 10
