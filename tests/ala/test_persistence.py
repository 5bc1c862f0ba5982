import hashlib
import json
import zipfile

import pandas as pd
import pytest

from ala import ALA
from ala.persistence import ModelFileError, load_live, load_model, save_model

QUERY = pd.DataFrame({"model": "Qwen/Qwen3-8B", "hardware": "H100", "num_gpus": 1, "framework": "vLLM",
                      "precision": "bfloat16", "output_tokens": 300.0, "batch_size": [8.0, 64.0]})


@pytest.fixture(scope="module")
def saved(tmp_path_factory, table):
    model = ALA(n_estimators=10, n_anneal=3, anneal_estimators=5, random_state=2).fit(
        table[table["source"].str.startswith("ml-energy")])
    live = QUERY.iloc[:1].assign(throughput_tokens_per_s=500.0)
    path = save_model(model, tmp_path_factory.mktemp("m") / "model.ala", live=live)
    return model, path


def test_round_trip_predicts_the_same(saved):
    model, path = saved
    loaded = load_model(path)
    pd.testing.assert_frame_equal(model.predict_interval(QUERY), loaded.predict_interval(QUERY))
    assert loaded.get_params() == model.get_params()
    live = load_live(path)
    assert len(live) == 1 and live["throughput_tokens_per_s"].iloc[0] == 500.0
    pd.testing.assert_frame_equal(model.predict_interval(QUERY, live=live), loaded.predict_interval(QUERY, live=live))
    assert loaded.predict_interval(QUERY, live=live)["k_live"].iloc[0] == 1
    assert loaded.predict_interval(QUERY)["k_live"].iloc[0] == 0  # the model itself keeps no live state


def test_live_points_of_the_old_keyed_form_are_refused_by_name(saved, tmp_path):
    _, path = saved
    old = tmp_path / "old.ala"
    keyed = b"query_key,batch_size,throughput_tokens_per_s\nabc,8,500\n"

    def change(name, data):
        if name == "live.csv":
            return keyed
        if name == "manifest.json":
            manifest = json.loads(data)
            manifest["sha256"]["live.csv"] = hashlib.sha256(keyed).hexdigest()
            return json.dumps(manifest).encode()
        return data
    _rewrite(path, old, change)
    with pytest.raises(ModelFileError, match="keyed by configuration only"):
        load_live(old)


def _rewrite(src, dst, change):
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for name in a.namelist():
            data = a.read(name)
            b.writestr(name, change(name, data))


def test_tampered_member_is_refused(saved, tmp_path):
    _, path = saved
    bad = tmp_path / "bad.ala"
    _rewrite(path, bad, lambda n, d: d.replace(b"H100", b"H200", 1) if n == "training.csv" else d)
    with pytest.raises(ModelFileError, match="training.csv was altered"):
        load_model(bad)


def test_newer_version_is_refused(saved, tmp_path):
    _, path = saved
    bad = tmp_path / "new.ala"

    def bump(name, data):
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        manifest["version"] = 99
        return json.dumps(manifest).encode()

    _rewrite(path, bad, bump)
    with pytest.raises(ModelFileError, match="version 99 is newer"):
        load_model(bad)


def test_truncated_and_foreign_files_are_refused(saved, tmp_path):
    _, path = saved
    cut = tmp_path / "cut.ala"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        load_model(cut)
    junk = tmp_path / "junk.ala"
    junk.write_bytes(b"\x80\x04 definitely a pickle")
    with pytest.raises(ModelFileError):
        load_model(junk)
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "absent.ala")


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        save_model(ALA(), tmp_path / "x.ala")


@pytest.fixture(scope="module")
def saved_fitted(saved, tmp_path_factory):
    model, _ = saved
    return model, save_model(model, tmp_path_factory.mktemp("f") / "fitted.ala", fitted=True)


def test_fitted_state_loads_without_a_refit(saved_fitted, monkeypatch):
    model, path = saved_fitted

    def no_fit(*args, **kwargs):
        raise AssertionError("a model saved with its fitted state must not be refitted")
    monkeypatch.setattr(ALA, "fit", no_fit)
    loaded = load_model(path)
    pd.testing.assert_frame_equal(model.predict_interval(QUERY), loaded.predict_interval(QUERY))


@pytest.mark.parametrize("change", [
    lambda versions: versions.update({"scikit-learn": "0.0.1"}),
    # Saved before fit revisions were recorded (its calibration strata are keyed otherwise).
    lambda versions: versions.pop("fit_revision"),
], ids=["scikit-learn", "fit-revision"])
def test_fitted_state_under_other_library_versions_is_refitted_not_trusted(saved_fitted, tmp_path, caplog, change):
    model, path = saved_fitted
    other = tmp_path / "other.ala"

    def older(name, data):
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        change(manifest["versions"])
        return json.dumps(manifest).encode()
    _rewrite(path, other, older)
    loaded = load_model(other)  # refitted from training.csv: same predictions, and it says so
    pd.testing.assert_frame_equal(model.predict_interval(QUERY), loaded.predict_interval(QUERY))
    assert "refitting from training.csv" in caplog.text


class _Boom:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned > /dev/null",))


def test_fitted_state_naming_anything_but_the_estimator_is_refused(saved_fitted, tmp_path):
    import pickle
    _, path = saved_fitted
    evil = tmp_path / "evil.ala"
    payload = pickle.dumps(_Boom(), protocol=5)

    def swap(name, data):
        if name == "fitted.pickle":
            return payload
        if name == "manifest.json":  # an attacker can rewrite the digests too
            manifest = json.loads(data)
            manifest["sha256"]["fitted.pickle"] = hashlib.sha256(payload).hexdigest()
            return json.dumps(manifest).encode()
        return data
    _rewrite(path, evil, swap)
    with pytest.raises(ModelFileError, match=r"names (posix|os)\.system.*refused"):
        load_model(evil)
