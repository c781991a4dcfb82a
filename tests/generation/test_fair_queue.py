"""The waiting line: round-robin across servers, then across members; places; removal."""

from __future__ import annotations

import pytest

from generation.fair_queue import FairQueue


def drain(queue: FairQueue[str, str]) -> list[str]:
    return [queue.pop() for _ in range(len(queue))]


def test_servers_take_turns_whatever_their_backlog() -> None:
    queue: FairQueue[str, str] = FairQueue()
    for i in range(5):
        queue.put(f"a{i}", f"a{i}", guild_id=1, user_id=10)
    queue.put("b0", "b0", guild_id=2, user_id=20)
    queue.put("c0", "c0", guild_id=3, user_id=30)
    queue.put("b1", "b1", guild_id=2, user_id=20)
    assert drain(queue) == ["a0", "b0", "c0", "a1", "b1", "a2", "a3", "a4"]


def test_members_take_turns_within_a_server() -> None:
    queue: FairQueue[str, str] = FairQueue()
    for i in range(3):
        queue.put(f"m1-{i}", f"m1-{i}", guild_id=1, user_id=1)
    queue.put("m2-0", "m2-0", guild_id=1, user_id=2)
    queue.put("m3-0", "m3-0", guild_id=1, user_id=3)
    assert drain(queue) == ["m1-0", "m2-0", "m3-0", "m1-1", "m1-2"]


def test_order_predicts_pops_and_positions_count_from_one() -> None:
    queue: FairQueue[str, str] = FairQueue()
    arrivals = [(1, 1), (1, 1), (1, 2), (2, 3), (2, 3), (3, 4), (1, 2)]
    for index, (guild, user) in enumerate(arrivals):
        queue.put(f"j{index}", f"j{index}", guild_id=guild, user_id=user)
    queue.pop()  # serving changes the rotation; the prediction must follow it
    predicted = queue.order()
    assert queue.positions() == {key: place for place, key in enumerate(predicted, start=1)}
    assert drain(queue) == predicted


def test_a_newcomer_is_served_before_a_busy_servers_backlog() -> None:
    queue: FairQueue[str, str] = FairQueue()
    for i in range(10):
        queue.put(f"busy{i}", f"busy{i}", guild_id=1, user_id=1)
    queue.pop()
    queue.put("new", "new", guild_id=2, user_id=2)
    assert queue.positions()["new"] == 2


def test_remove_takes_an_item_out_wherever_it_is() -> None:
    queue: FairQueue[str, str] = FairQueue()
    queue.put("a", "a", guild_id=1, user_id=1)
    queue.put("b", "b", guild_id=2, user_id=2)
    queue.put("c", "c", guild_id=1, user_id=1)
    assert queue.remove("b") == "b"
    assert queue.remove("b") is None
    assert "b" not in queue
    assert len(queue) == 2
    assert drain(queue) == ["a", "c"]


def test_duplicate_keys_and_empty_pops_are_errors() -> None:
    queue: FairQueue[str, str] = FairQueue()
    queue.put("a", "a", guild_id=1, user_id=1)
    with pytest.raises(KeyError):
        queue.put("a", "again", guild_id=1, user_id=1)
    queue.pop()
    with pytest.raises(IndexError):
        queue.pop()
