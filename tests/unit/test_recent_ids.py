"""The window of written message ids the consumer drops producer-retry duplicates against."""

from k2tui.consume.recent import RecentIds


def test_ids_are_remembered_until_newer_ones_push_them_out() -> None:
    recent = RecentIds(3)
    recent.add_all(["a", "b"])
    recent.add_all(["c", "d"])
    assert "a" not in recent and all(i in recent for i in "bcd") and len(recent) == 3


def test_an_id_added_twice_takes_one_place() -> None:
    recent = RecentIds(3)
    recent.add_all(["a", "b", "a"])
    recent.add_all(["c"])
    assert all(i in recent for i in "abc") and len(recent) == 3
