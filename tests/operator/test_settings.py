import pytest

from ala_operator.settings import Settings


def test_env_becomes_settings():
    s = Settings.from_env({"ALA_METRICS_PORT": "9100", "ALA_TIMER_SECONDS": "2.5", "ALA_NAMESPACE": "llm",
                           "OTHER": "x"})
    assert (s.metrics_port, s.timer_seconds, s.namespace, s.model_file) == (9100, 2.5, "llm", None)
    assert "metrics_port=9100" in s.describe()


@pytest.mark.parametrize("env,fragment", [({"ALA_METRICS_PORT": "http"}, "ALA_METRICS_PORT='http'"),
                                          ({"ALA_HEALTH_PORT": "70000"}, "out of range"),
                                          ({"ALA_TIMER_SECONDS": "0"}, "positive")])
def test_bad_env_is_named(env, fragment):
    with pytest.raises(ValueError, match=fragment):
        Settings.from_env(env)
