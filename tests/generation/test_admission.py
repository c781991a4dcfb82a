"""Admission: may this member ask now, and are the options acceptable? Answered from memory, no I/O; and would the
quota refuse it, looked at before any reference is read."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from generation.admission import MAX_ATTACHMENT_BYTES, Admission
from generation.cooldowns import Cooldowns
from generation.models import Choice, ModelMenu
from generation.refusals import (
    AttachmentTooLarge,
    ChannelNotAllowed,
    CoolingDown,
    ModelNotOffered,
    OptionNotOffered,
    PromptBlocked,
    PromptEmpty,
    PromptTooLong,
    QuotaExceeded,
    Restarting,
    ServerNotAllowed,
    Unavailable,
)
from generation.server_settings import ServerSettings
from storage.quotas import Period, RuleScope, RuleUsage
from storage.store import Storage


class Switch:
    """The pipeline's availability, as admission sees it."""

    def __init__(self) -> None:
        self.refusal: Restarting | Unavailable | None = None

    def check_available(self) -> None:
        if self.refusal is not None:
            raise self.refusal


class Quotas:
    """The quota's read-only look, as admission sees it: the rule that would refuse (None: none), and what was asked."""

    def __init__(self, refusing: RuleUsage | None = None) -> None:
        self.refusing = refusing
        self.asked: list[tuple[int, int, frozenset[int], int]] = []

    async def would_refuse(self, guild_id: int, user_id: int, role_ids: Iterable[int], n: int) -> RuleUsage | None:
        self.asked.append((guild_id, user_id, frozenset(role_ids), n))
        return self.refusing


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
        models=ModelMenu(["gpt-image-2"], "gpt-image-2"),
        quotas=Quotas(),
    )
    await store.close()  # from here on, any I/O would fail: every answer comes from memory

    with pytest.raises(ServerNotAllowed):
        admission.check_place_and_pace(3, 10, 100)
    with pytest.raises(ChannelNotAllowed) as elsewhere:
        admission.check_place_and_pace(1, 11, 100)
    assert elsewhere.value.allowed == frozenset({10})
    admission.check_place_and_pace(1, 10, 100)
    admission.check_place_and_pace(2, 99, 100)  # no list in server 2: every channel
    admission.check_place_and_pace(1, 55, 100, parent_id=10)  # a thread of an allowed channel
    with pytest.raises(ChannelNotAllowed):
        admission.check_place_and_pace(1, 55, 100, parent_id=11)

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
        guild_allowed=lambda guild_id: True,
        server_settings=settings,
        cooldowns=Cooldowns(),
        pipeline=Switch(),
        models=ModelMenu(["gpt-image-2"], "gpt-image-2"),
        quotas=Quotas(),
    )

    def check(prompt: str, attachment_sizes: list[int]) -> str:
        cleaned, _choice = admission.check_options(
            1, prompt=prompt, n=1, reference_count=2, attachment_sizes=attachment_sizes
        )
        return cleaned

    assert check("  a cat ", [10, 20]) == "a cat"
    with pytest.raises(PromptEmpty):
        check(" ", [])
    with pytest.raises(AttachmentTooLarge) as large:
        check("a cat", [10, MAX_ATTACHMENT_BYTES + 1])
    assert (large.value.position, large.value.size) == (2, MAX_ATTACHMENT_BYTES + 1)
    await store.close()


async def test_the_model_aspect_and_resolution_are_checked_before_any_io_and_weighed(store: Storage) -> None:
    settings = ServerSettings(store.guild_settings)
    menu = ModelMenu(
        ["gpt-image-2", "doubao-seedream-4-5", "gpt-4o-image"],
        "gpt-image-2",
        weights=[("gpt-image-2", "4k", 6), ("gpt-4o-image", None, 3)],
    )
    admission = Admission(
        guild_allowed=lambda guild_id: True,
        server_settings=settings,
        cooldowns=Cooldowns(),
        pipeline=Switch(),
        models=menu,
        quotas=Quotas(),
    )
    await settings.set_models(2, frozenset({"doubao-seedream-4-5", "gpt-4o-image"}))
    await settings.set_default_model(2, "gpt-4o-image")
    await store.close()  # every answer below comes from memory

    def choose(guild_id: int = 1, **options: Any) -> Choice:
        return admission.check_options(guild_id, prompt="a cat", n=options.pop("n", 1), **options)[1]

    default = choose()
    assert (default.model.id, default.aspect, default.resolution, default.weight) == ("gpt-image-2", "1:1", "1k", 1)
    wide = choose(aspect="21:9", resolution="4K")
    assert (wide.aspect, wide.resolution, wide.weight) == ("21:9", "4k", 6)  # MODEL_WEIGHTS beats the catalog
    assert choose(resolution="2k").weight == 2
    seedream = choose(model="doubao-seedream-4-5")
    assert (seedream.resolution, seedream.weight) == ("2k", 2)  # no 1K: its own default
    with pytest.raises(OptionNotOffered) as no_1k:
        choose(model="doubao-seedream-4-5", resolution="1k")
    assert (no_1k.value.option, no_1k.value.model, no_1k.value.offered) == ("resolution", "Seedream 4.5", ("2k", "4k"))
    with pytest.raises(OptionNotOffered) as no_4k:
        choose(guild_id=2, model="gpt-4o-image", resolution="4k")
    assert no_4k.value.option == "resolution"
    with pytest.raises(OptionNotOffered) as tall:
        choose(guild_id=2, aspect="9:16")  # GPT-4o's default here, which has three ratios
    assert (tall.value.option, tall.value.offered) == ("aspect", ("1:1", "3:2", "2:3"))
    with pytest.raises(OptionNotOffered) as three:
        choose(guild_id=2, n=3)
    assert (three.value.option, three.value.offered) == ("n", ("1", "2", "4"))
    assert choose(guild_id=2).weight == 3  # a model-wide weight
    with pytest.raises(ModelNotOffered) as withdrawn:
        choose(guild_id=2, model="gpt-image-2")  # the operator pays for it, this server does not offer it
    assert withdrawn.value.offered == ("Seedream 4.5", "GPT-4o Image")
    with pytest.raises(ModelNotOffered):
        choose(model="flux-2-pro")  # catalogued, but the operator does not pay for it
    with pytest.raises(PromptTooLong) as long_prompt:
        admission.check_options(2, prompt="x" * 1001, n=1)
    assert long_prompt.value.limit == 1000


async def test_the_quota_is_looked_at_for_what_the_images_count_as_and_refuses_before_any_reference(
    store: Storage,
) -> None:
    settings = ServerSettings(store.guild_settings)
    quotas = Quotas()
    admission = Admission(
        guild_allowed=lambda guild_id: True,
        server_settings=settings,
        cooldowns=Cooldowns(),
        pipeline=Switch(),
        models=ModelMenu(["gpt-image-2"], "gpt-image-2", weights=[("gpt-image-2", "4k", 6)]),
        quotas=quotas,
    )
    _prompt, choice = admission.check_options(1, prompt="a cat", n=2, resolution="4k")
    await admission.check_quota(1, 100, frozenset({7}), 2, choice)  # nothing would refuse it
    assert quotas.asked == [(1, 100, frozenset({7}), 12)]  # 2 images counting 6 each

    member_rule = RuleUsage(RuleScope.MEMBER, Period.DAY, limit=25, used=20, resets_at=datetime.now(UTC))
    quotas.refusing = member_rule
    with pytest.raises(QuotaExceeded) as refused:
        await admission.check_quota(1, 100, frozenset({7}), 2, choice)
    assert (refused.value.usage, refused.value.requested, refused.value.weight) == (member_rule, 2, 6)
    await store.close()


async def test_a_blocked_prompt_typed_in_a_form_is_refused_whatever_resolution_was_picked(store: Storage) -> None:
    # A Remix form offers its job's resolutions (3K for Seedream 5.0), while the early check knows only the server's
    # default model (GPT Image 2, which has no 3K): still a refusal, recorded at what that model would have made.
    settings = ServerSettings(store.guild_settings)
    await settings.add_blocked_words(1, ["gore"])
    admission = Admission(
        guild_allowed=lambda guild_id: True,
        server_settings=settings,
        cooldowns=Cooldowns(),
        pipeline=Switch(),
        models=ModelMenu(["gpt-image-2", "doubao-seedream-5-0"], "gpt-image-2"),
        quotas=Quotas(),
    )
    with pytest.raises(PromptBlocked) as refused:
        admission.check_prompt(1, "some gore here", resolution="3k", aspect="16:9")
    blocked = refused.value
    assert (blocked.model, blocked.aspect, blocked.resolution, blocked.weight) == ("gpt-image-2", "16:9", "1k", 1)
    admission.check_prompt(1, "a quiet lake", resolution="3k")  # nothing blocked: nothing raised
    await store.close()
