"""A waiting line served round-robin across servers and, within a server, across members.

One member who queues forty images, or one busy server, takes one turn in each round like everyone else, so
nobody waits for another's whole backlog. Pure data structure: no I/O, no clock, no asyncio.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(frozen=True)
class _Entry(Generic[K, T]):
    key: K
    guild_id: int
    user_id: int
    item: T


class FairQueue(Generic[K, T]):
    """Items keyed by `K`, grouped by guild then member, popped in round-robin order."""

    def __init__(self) -> None:
        # guild -> member -> that member's items in arrival order. The first guild is the next to be served; so
        # is the first member within a guild. OrderedDict keeps both rotations as move_to_end calls.
        self._guilds: OrderedDict[int, OrderedDict[int, deque[_Entry[K, T]]]] = OrderedDict()
        self._entries: dict[K, _Entry[K, T]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def put(self, key: K, item: T, *, guild_id: int, user_id: int) -> None:
        if key in self._entries:
            raise KeyError(f"{key!r} is already queued")
        entry = _Entry(key, guild_id, user_id, item)
        self._entries[key] = entry
        self._guilds.setdefault(guild_id, OrderedDict()).setdefault(user_id, deque()).append(entry)

    def pop(self) -> T:
        """The next item in round-robin order. Raises IndexError when empty."""
        if not self._guilds:
            raise IndexError("pop from an empty FairQueue")
        guild_id, members = next(iter(self._guilds.items()))
        user_id, items = next(iter(members.items()))
        entry = items.popleft()
        del self._entries[entry.key]
        # Served: this member goes to the back of their server's line, and the server to the back of the line.
        if items:
            members.move_to_end(user_id)
        else:
            del members[user_id]
        if members:
            self._guilds.move_to_end(guild_id)
        else:
            del self._guilds[guild_id]
        return entry.item

    def remove(self, key: K) -> T | None:
        """Take an item out wherever it is (a cancellation); None if it is not waiting."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        members = self._guilds[entry.guild_id]
        items = members[entry.user_id]
        items.remove(entry)
        if not items:
            del members[entry.user_id]
        if not members:
            del self._guilds[entry.guild_id]
        return entry.item

    def order(self) -> list[K]:
        """Every waiting key in the order it would be popped, without popping anything."""
        guilds = [
            deque(deque(entry.key for entry in items) for items in members.values())
            for members in self._guilds.values()
        ]
        order: list[K] = []
        rotation = deque(guilds)
        while rotation:
            members = rotation.popleft()
            items = members.popleft()
            order.append(items.popleft())
            if items:
                members.append(items)
            if members:
                rotation.append(members)
        return order

    def positions(self) -> dict[K, int]:
        """Each waiting key's place in line, 1 for the next to be served."""
        return {key: place for place, key in enumerate(self.order(), start=1)}
