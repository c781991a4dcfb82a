"""Admission: may this member ask now, and are the options acceptable? Answered from memory, no I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from generation.admission import MAX_ATTACHMENT_BYTES, Admission
from generation.cooldowns import Cooldowns
from generation.refusals import (
    AttachmentTooLarge,
    ChannelNotAllowed,
    CoolingDown,
    PromptEmpty,
    Restarting,
    ServerNotAllowed,
    Unavailable,
)
from generation.server_settings import ServerSettings
from storage.store import Storage


class Switch:
    """The pipeline's availability, as admission sees it."""

    def __init__(self) -> None:
        self.refusal: Restarting | Unavailable | None = None

    def check_available(self) -> None:
        if self.refusal is not None:
            raise self.refusal


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> Storage:
    return await Storage.open(f"sqlite:///{tmp_path / 'imagine.db'}")


async def test_each_check_refuses_with_its_own_refusal_and_no_io(store: Storage) -> None:
    settings = ServerSettings(store.guild_settings)
    await settings.add_allowed_channel(1, 10)
    await settings.set_cooldown(1, 30)
    clock = Clock()
    switch = Switch()
    admission = Admission(
        guild_allowed=lambda guild_id: guild_id in {1, 2},
        server_settings=settings,
        cooldowns=Cooldowns(clock),
        pipeline=switch,
    )
    await store.close()  # from here on, any I/O would fail: every answer comes from memory

    with pytest.raises(ServerNotAllowed):
        admission.check_place_and_pace(3, 10, 100)
    with pytest.raises(ChannelNotAllowed) as elsewhere:
        admission.check_place_and_pace(1, 11, 100)
    assert elsewhere.value.allowed == frozenset({10})
    admission.check_place_and_pace(1, 10, 100)
    admission.check_place_and_pace(2, 99, 100)  # no list in server 2: every channel

    admission.start_cooldown(1, 100)
    clock.now += 10
    with pytest.raises(CoolingDown) as waiting:
        admission.check_place_and_pace(1, 10, 100)
    assert waiting.value.seconds == pytest.approx(20)
    admission.check_place_and_pace(1, 10, 101)  # another member is not held back
    admission.give_back_cooldown(1, 100)
    admission.check_place_and_pace(1, 10, 100)

    switch.refusal = Restarting()
    with pytest.raises(Restarting):
        admission.check_place_and_pace(1, 10, 100)
    switch.refusal = Unavailable()
    with pytest.raises(Unavailable):
        admission.check_place_and_pace(1, 10, 100)
    # The operator's allow-list is asked first: a server off it hears only that.
    with pytest.raises(ServerNotAllowed):
        admission.check_place_and_pace(3, 10, 100)


async def test_options_are_checked_against_the_server_and_the_attachments_sizes(store: Storage) -> None:
    settings = ServerSettings(store.guild_settings)
    admission = Admission(
        guild_allowed=lambda guild_id: True, server_settings=settings, cooldowns=Cooldowns(), pipeline=Switch()
    )

    def check(prompt: str, attachment_sizes: list[int]) -> str:
        return admission.check_options(
            1, prompt=prompt, size="1024x1024", n=1, reference_count=2, attachment_sizes=attachment_sizes
        )

    assert check("  a cat ", [10, 20]) == "a cat"
    with pytest.raises(PromptEmpty):
        check(" ", [])
    with pytest.raises(AttachmentTooLarge) as large:
        check("a cat", [10, MAX_ATTACHMENT_BYTES + 1])
    assert (large.value.position, large.value.size) == (2, MAX_ATTACHMENT_BYTES + 1)
    await store.close()
