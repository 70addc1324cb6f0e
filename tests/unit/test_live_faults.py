"""The cockpit's recovery line: counts of the fault's window at each stage, and where they differ."""

from collections import Counter

from k2tui.model.samples import sample_trades
from k2tui.validate.faults import FAULTS
from k2tui.validate.live_faults import MENU, judge_window

TRADES = list(sample_trades(1_234))
IDS = Counter(t.message_id for t in TRADES)


def test_an_exact_window_reads_as_one_line() -> None:
    recovery = judge_window("registry_unavailable", TRADES, Counter(IDS), 6.24, "")
    assert recovery.ok
    assert (
        recovery.summary() == "recovered in 6.2 s; 1,234 in Kafka = 1,234 in Iceberg, 0 missing, 0 duplicated"
    )


def test_a_lost_and_a_doubled_trade_are_counted_and_named() -> None:
    lost, doubled = TRADES[3].message_id, TRADES[17].message_id
    lake = Counter({i: n for i, n in IDS.items() if i != lost})
    lake[doubled] += 1
    recovery = judge_window("consumer_crash", TRADES, lake, 2.0, "")
    assert not recovery.ok
    assert (recovery.kafka, recovery.iceberg, recovery.missing, recovery.duplicated) == (1_234, 1_234, 1, 1)
    line = recovery.summary()
    assert line.startswith("recovered in 2.0 s; 1,234 in Kafka = 1,234 in Iceberg, 1 missing, 1 duplicated: ")
    assert f"iceberg lost 1: {lost}" in line and doubled in line


def test_a_pipeline_that_did_not_come_back_says_what_it_waited_for() -> None:
    lake = Counter(dict(list(IDS.items())[:1_000]))
    recovery = judge_window("object_store", TRADES, lake, None, "the lake is 234 short")
    assert recovery.summary().startswith(
        "not recovered: the lake is 234 short; 1,234 in Kafka ≠ 1,000 in Iceberg, 234 missing, 0 duplicated: "
    )


def test_an_empty_window_says_no_trade_flowed() -> None:
    recovery = judge_window("broker_restart", [], Counter(), 1.5, "")
    assert recovery.summary() == (
        "recovered in 1.5 s; no trade reached Kafka while the fault lasted (are the streams running?)"
    )


def test_the_menu_reuses_the_scenarios_faults_and_says_what_each_does() -> None:
    assert [f.id for f in MENU[:5]] == [
        "broker_restart",
        "registry_unavailable",
        "object_store",
        "consumer_crash",
        "network_partition",
    ]
    assert all(MENU[i] is FAULTS[MENU[i].id] for i in range(5))
    assert all(f.effect and f.active for f in MENU)
    assert [f.id for f in MENU if f.instant] == [
        "broker_restart",
        "consumer_crash",
        "malformed",
        "sequence_gap",
    ]
