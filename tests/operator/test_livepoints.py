"""Per-pod live points and the evidence a deployment keeps (pure functions, unit tier)."""

import pytest

from ala_operator.livepoints import (MAX_BINS, SHIFT_STRIKES, Interval, accumulate, evidence_points, intervals,
                                     pair, per_pod, pool)

SCRAPE = 15.0


def _series(labels, values, start=0.0):
    return (labels, [(start + SCRAPE * i, v) for i, v in enumerate(values)])


def _counter(rate, n, start=0.0, offset=1000.0):
    return [offset + rate * SCRAPE * i for i in range(n)]


def test_per_pod_sums_data_parallel_engines_and_counts_repeated_ranks_once():
    pod = {"namespace": "llm", "pod": "p-1"}
    series = [_series({**pod, "dp_rank": "0", "tp_rank": "0"}, [20.0] * 3),
              _series({**pod, "dp_rank": "0", "tp_rank": "1"}, [20.0] * 3),  # a copy of rank 0
              _series({**pod, "dp_rank": "1", "tp_rank": "2"}, [44.0] * 3),
              _series({**pod, "dp_rank": "1", "tp_rank": "3"}, [44.0] * 3)]
    out = per_pod(series, split_labels=("dp_rank",), copy_labels=("tp_rank",))
    assert out == {"llm/p-1#dp_rank=0": {0.0: 20.0, 15.0: 20.0, 30.0: 20.0},
                   "llm/p-1#dp_rank=1": {0.0: 44.0, 15.0: 44.0, 30.0: 44.0}}
    # Series that differ by another label (vLLM's finished_reason) add up.
    reasons = per_pod([_series({**pod, "finished_reason": "stop"}, [3.0]), _series({**pod, "finished_reason": "length"},
                                                                                  [2.0])])
    assert reasons == {"llm/p-1": {0.0: 5.0}}
    # Without a pod label the scrape target is the replica.
    assert list(per_pod([_series({"instance": "10.0.0.1:8000"}, [1.0])])) == ["/10.0.0.1:8000"]


def test_a_pod_of_n_engines_is_n_times_each_engine_and_pod_level_counters_sum_the_batches():
    running = {"llm/p#engine=0": {0.0: 24.0}, "llm/p#engine=1": {0.0: 40.0}}
    tokens = {"llm/p#engine=0": {0.0: 1.0}, "llm/p#engine=1": {0.0: 1.0}}
    assert [(k, n) for k, _, _, n in pair(tokens, running)] == [("llm/p#engine=0", 2), ("llm/p#engine=1", 2)]
    (key, _, gauge, n), = pair({"llm/p": {0.0: 1.0}}, running)
    assert (key, gauge, n) == ("llm/p", {0.0: 64.0}, 1)


def test_uneven_pods_each_give_their_own_point():
    tokens = per_pod([_series({"pod": "a"}, _counter(2900.0, 21)), _series({"pod": "b"}, _counter(400.0, 21))])
    running = per_pod([_series({"pod": "a"}, [60.0] * 21), _series({"pod": "b"}, [4.0] * 21)])
    got = intervals(tokens, running, window_start=0.0, warmup_s=60)
    assert {(i.pod, i.batch, round(i.throughput, 6)) for i in got} == {("/a", 60.0, 2900.0), ("/b", 4.0, 400.0)}
    assert len(got) == 40


def test_moving_batches_resets_gaps_and_new_pods_are_not_believed():
    n = 21
    gauge = [64.0 if (i // 2) % 2 == 0 else 0.0 for i in range(n)]  # 30 s busy, 30 s idle
    counter = [0.0]
    for i in range(1, n):
        counter.append(counter[-1] + (3000.0 * SCRAPE if gauge[i - 1] and gauge[i] else 1000.0 * SCRAPE))
    got = intervals(per_pod([_series({"pod": "a"}, counter)]), per_pod([_series({"pod": "a"}, gauge)]), 0.0, 60)
    assert got and all(i.batch == 64.0 and i.throughput == 3000.0 for i in got)
    reset = _counter(100.0, 6)
    reset[3] = 5.0  # the engine restarted
    got = intervals(per_pod([_series({"pod": "a"}, reset)]), per_pod([_series({"pod": "a"}, [8.0] * 6)]), 0.0, 0)
    assert [i.start for i in got] == [0.0, 15.0, 45.0, 60.0]
    # A pod whose series begins inside the window is believed only after the warm-up.
    late = intervals(per_pod([_series({"pod": "a"}, _counter(100.0, 10), start=150.0)]),
                     per_pod([_series({"pod": "a"}, [8.0] * 10, start=150.0)]), window_start=0.0, warmup_s=60)
    assert min(i.start for i in late) == 210.0


def test_completion_counted_tokens_need_a_steady_batch_for_the_lag_before():
    n = 41
    gauge = [8.0] * 20 + [64.0] * 21
    counter = _counter(500.0, n)
    got = intervals(per_pod([_series({"pod": "a"}, counter)]), per_pod([_series({"pod": "a"}, gauge)]), 0.0, 0,
                    lag_s=60.0)
    assert got and all(i.start >= 300.0 + 60.0 or i.end <= 285.0 for i in got)
    assert not [i for i in got if 285.0 <= i.start < 360.0]


def test_pool_leaves_out_hidden_transitions():
    items = [Interval("a", 15.0 * k, 15.0 * (k + 1), 48.0, 3000.0) for k in range(5)]
    items.append(Interval("a", 75.0, 90.0, 48.0, 1200.0))  # idle for most of it, gauge steady at both ends
    (batch, thpt, seconds, last, n), = pool(items).values()
    assert (batch, thpt, seconds, last, n) == (48.0, 3000.0, 75.0, 75.0, 5)


def _fresh(start, batch=32.0, thpt=2000.0, n=4):
    return [Interval("a", start + 15.0 * k, start + 15.0 * (k + 1), batch, thpt) for k in range(n)]


def test_evidence_accumulates_without_counting_overlapping_windows_twice():
    first = accumulate(None, _fresh(0.0), "r", now=60.0)
    assert first.added_s == 60.0 and first.reset is None
    # The next refit's window overlaps: only intervals after the last merged one count.
    again = accumulate(first.evidence, _fresh(0.0) + _fresh(60.0), "r", now=120.0)
    assert again.added_s == 60.0
    (at, batch, thpt, seconds), = evidence_points(again.evidence)
    assert (batch, thpt, at) == (32.0, 2000.0, 120.0) and seconds == pytest.approx(120.0, rel=1e-3)


def test_evidence_decays_is_bounded_and_is_dropped_for_another_regime():
    ev = accumulate(None, _fresh(0.0), "r", now=60.0).evidence
    assert accumulate(ev, [], "r", now=60.0 + 86400.0).evidence == ev  # nothing new: nothing changes
    later = accumulate(ev, _fresh(86400.0, batch=4.0), "r", now=60.0 + 86400.0).evidence
    by_batch = {p[1]: p[3] for p in evidence_points(later, min_seconds=0, min_intervals=0)}
    assert by_batch[32.0] == pytest.approx(30.0, rel=1e-3) and by_batch[4.0] == 60.0  # a day's half-life
    many = [Interval("a", 15.0 * k, 15.0 * (k + 1), 1.2 ** k, 100.0 * 1.1 ** k) for k in range(60)]
    assert len(accumulate(None, many, "r", now=900.0).evidence["bins"]) == MAX_BINS
    upgraded = accumulate(ev, _fresh(60.0, thpt=2600.0), "r2", now=120.0)
    assert upgraded.reset.startswith("regime changed")
    assert [p[2] for p in evidence_points(upgraded.evidence)] == [2600.0]
    garbage = accumulate({"regime": "r", "bins": {"x": "y"}}, _fresh(0.0), "r", now=60.0)
    assert garbage.reset == "stored evidence unreadable" and evidence_points(garbage.evidence)
    short = accumulate({"regime": "r", "bins": {"22": [32.0, 2000.0, 60.0, 60.0]}}, [], "r", now=60.0)
    assert short.reset == "stored evidence unreadable"
    # A bin of one or two scrape intervals is not yet a point, however long they were.
    assert evidence_points(accumulate(None, _fresh(0.0, n=2), "r", now=60.0).evidence) == []


def test_a_sustained_shift_resets_the_evidence_but_one_odd_refit_does_not():
    ev = accumulate(None, _fresh(0.0, n=20), "r", now=300.0).evidence
    odd = accumulate(ev, _fresh(300.0, thpt=1500.0), "r", now=360.0)
    assert odd.reset is None and odd.evidence["strikes"] == 1
    back = accumulate(odd.evidence, _fresh(360.0), "r", now=420.0)
    assert back.evidence["strikes"] == 0
    ev, start = back.evidence, 420.0
    for k in range(SHIFT_STRIKES):
        update = accumulate(ev, _fresh(start, thpt=1500.0), "r", now=start + 60.0)
        ev, start = update.evidence, start + 60.0
    assert update.reset.startswith("sustained shift")
    assert [p[2] for p in evidence_points(ev)] == [1500.0]
