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


def test_the_log_keeps_refits_and_failures_but_not_every_timer_tick():
    import logging

    from ala_operator.app import _QuietTicks

    def record(message, level=logging.INFO):
        return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)

    quiet = _QuietTicks()
    assert not quiet.filter(record("Timer 'refit_timer' succeeded."))
    assert not quiet.filter(record("Timer 'refit_timer' is invoked.", logging.DEBUG))
    assert quiet.filter(record("Timer 'refit_timer' failed with an exception. Will retry.", logging.ERROR))
    assert quiet.filter(record("refit default/llama n=3 replicas=4 batch=42 conf=0.64 in 38 ms"))
    assert quiet.filter(record("Handler 'check_spec' succeeded."))
