"""/imagine-settings through the real bot: allowed channels, maximum n, cooldown, log channel, show.

Each setting is changed by an admin with the command and then checked where members meet it: /imagine is
refused at once (ephemeral, no defer, nothing sent upstream) and told where or when it can be used.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from storage.guild_settings import GuildSettings
from tests.cogs.conftest import World, WorldFactory
from tests.cogs.test_quota import (
    add_server,
    announce_channel,
    command,
    delivered,
    resets_in,
)
from tests.fakes.discord import CallbackType, InteractionRecord, InvocationRefused, MessageRecord, Overwrite
from tests.fakes.discord import Permission as P
from tests.fakes.toapis import Endpoint

SETTINGS_COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("imagine-settings channels add", {"channel": "general"}),
    ("imagine-settings channels remove", {"channel": "general"}),
    ("imagine-settings channels list", {}),
    ("imagine-settings channels clear", {}),
    ("imagine-settings max-n", {"value": 2}),
    ("imagine-settings cooldown", {"seconds": 30}),
    ("imagine-settings log-channel", {"channel": "general"}),
    ("imagine-settings log-channel", {}),
    ("imagine-settings show", {}),
    ("imagine-settings blocked-words add", {"words": "bad"}),
    ("imagine-settings blocked-words remove", {"words": "bad"}),
    ("imagine-settings blocked-words list", {}),
    ("imagine-settings spoiler on", {}),
    ("imagine-settings spoiler off", {}),
    ("imagine-settings mod-log on", {}),
    ("imagine-settings mod-log off", {}),
]


CONTROLS_OFF = {
    "Blocked words": "none",
    "Spoilers": "off",
    "Moderation log": "off",
    "In the conversation": "on: members may mention Imagine with a prompt",
}


async def refused_at_once(world: World, call: InteractionRecord) -> str:
    """The immediate ephemeral refusal of an /imagine: no defer, no job, nothing upstream."""
    await world.discord.wait_for(lambda: call.acknowledged or call.failed, 10, what="the refusal")
    assert call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE, call.failure
    assert call.callback is not None
    assert call.callback.ephemeral
    assert call.original is not None
    assert call.original.mentions_nobody
    assert world.api.requests_to(Endpoint.SUBMIT) == []
    return call.original.content


async def accepted(world: World, call: InteractionRecord) -> None:
    """The /imagine was deferred (taken) and its images delivered."""
    await world.discord.wait_for(lambda: delivered(call) or call.failed or bool(call.followups), 15)
    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert delivered(call), [m.content for m in call.followups]


def settings_fields(message: MessageRecord) -> dict[str, str]:
    (embed,) = message.embeds
    assert embed["title"] == "Imagine settings"
    return {field["name"]: field["value"] for field in embed["fields"]}


# -- who may change settings -----------------------------------------------------------------------------------


async def test_imagine_settings_is_synced_for_manage_server_and_servers_only(world: World) -> None:
    (group,) = [c for c in world.discord.global_commands if c["name"] == "imagine-settings"]
    assert group["default_member_permissions"] == str(int(P.MANAGE_GUILD))
    assert group["contexts"] == [0]
    names = sorted(option["name"] for option in group["options"])
    assert names == [
        "blocked-words",
        "channels",
        "chat",
        "cooldown",
        "language",
        "log-channel",
        "max-n",
        "mod-log",
        "models",
        "show",
        "spoiler",
    ]


@pytest.mark.parametrize(("name", "options"), SETTINGS_COMMANDS, ids=[f"{n} {sorted(o)}" for n, o in SETTINGS_COMMANDS])
async def test_a_plain_member_cannot_change_or_read_the_settings(
    world: World, name: str, options: dict[str, Any]
) -> None:
    given = {key: world.channel if value == "general" else value for key, value in options.items()}

    with pytest.raises(InvocationRefused, match="default_member_permissions=32"):
        await world.discord.invoke_slash(name, given, user=world.member, channel=world.channel)

    assert world.discord.interactions == []
    assert await world.store.guild_settings.get(world.guild.id) == GuildSettings(world.guild.id)


async def test_settings_are_per_server(world: World) -> None:
    second, lobby = await add_server(world, "Second server")
    carol = second.add_member("carol")
    await command(world, "imagine-settings max-n", {"value": 1})
    await command(world, "imagine-settings cooldown", {"seconds": 600})
    await command(world, "imagine-settings channels add", {"channel": world.channel})

    await accepted(world, await world.imagine("four cats", n=4, user=carol, channel=lobby))
    await accepted(world, await world.imagine("four more", n=4, user=carol, channel=lobby))

    shown = settings_fields(await command(world, "imagine-settings show", user=second.owner, channel=lobby))
    assert shown == {
        "/imagine allowed in": "every channel",
        "Most images per request": "4",
        "Cooldown per member": "none",
        "Operator alerts go to": "none",
        "Models offered": "**GPT Image 2** (default) (every model the bot offers)",
        "Language of progress and results": "English (United States) (the server's preferred locale)",
        **CONTROLS_OFF,
    }


# -- channels ---------------------------------------------------------------------------------------------------


async def test_channels_add_limits_imagine_to_the_listed_channels(world: World) -> None:
    art = await announce_channel(world, "art")

    reply = await command(world, "imagine-settings channels add", {"channel": art})

    assert reply.content == f"/imagine is allowed in <#{art.id}>. Allowed now: <#{art.id}>"
    text = await refused_at_once(world, await world.imagine("a cat"))
    assert text == f"/imagine is not used in this channel. In this server, use it in <#{art.id}>."
    assert await world.jobs() == []
    await accepted(world, await world.imagine("a cat", channel=art))


async def test_channels_add_twice_lists_every_allowed_channel(world: World) -> None:
    art = await announce_channel(world, "art")
    memes = await announce_channel(world, "memes")
    await command(world, "imagine-settings channels add", {"channel": art})

    reply = await command(world, "imagine-settings channels add", {"channel": memes})

    both = f"<#{art.id}>, <#{memes.id}>"
    assert reply.content == f"/imagine is allowed in <#{memes.id}>. Allowed now: {both}"
    text = await refused_at_once(world, await world.imagine("a cat"))
    assert text.endswith(f"use it in {both}.")
    listing = await command(world, "imagine-settings channels list")
    assert listing.content == f"/imagine is allowed in: {both}."
    stored = await world.store.guild_settings.get(world.guild.id)
    assert stored.allowed_channel_ids == {art.id, memes.id}


async def test_channels_add_warns_when_imagine_cannot_post_there(world: World) -> None:
    locked = await announce_channel(
        world, "locked", overwrites=[Overwrite(world.guild.bot_role, deny=int(P.ATTACH_FILES | P.EMBED_LINKS))]
    )

    reply = await command(world, "imagine-settings channels add", {"channel": locked})

    assert reply.content.endswith(
        "\nImagine lacks Embed Links, Attach Files there: grant them, or results cannot be posted."
    )
    plain = await announce_channel(world, "plain")
    fine = await command(world, "imagine-settings channels add", {"channel": plain})
    assert "lacks" not in fine.content


async def test_channels_remove_takes_a_channel_off_and_says_when_it_was_not_listed(world: World) -> None:
    art = await announce_channel(world, "art")
    await command(world, "imagine-settings channels add", {"channel": art})

    not_listed = await command(world, "imagine-settings channels remove", {"channel": world.channel})
    removed = await command(world, "imagine-settings channels remove", {"channel": art})

    assert not_listed.content == f"<#{world.channel.id}> was not on the list."
    assert removed.content == f"Removed <#{art.id}>. /imagine is allowed in: every channel (none listed)."
    assert (await world.store.guild_settings.get(world.guild.id)).allowed_channel_ids == frozenset()
    await accepted(world, await world.imagine("a cat"))


async def test_channels_list_and_clear(world: World) -> None:
    empty = await command(world, "imagine-settings channels list")
    assert empty.content == "/imagine is allowed in every channel."
    art = await announce_channel(world, "art")
    await command(world, "imagine-settings channels add", {"channel": art})

    cleared = await command(world, "imagine-settings channels clear")

    assert cleared.content == "/imagine is allowed in every channel again."
    assert (await command(world, "imagine-settings channels list")).content == "/imagine is allowed in every channel."
    assert (await world.store.guild_settings.get(world.guild.id)).allowed_channel_ids == frozenset()
    await accepted(world, await world.imagine("a cat"))


# -- max-n ------------------------------------------------------------------------------------------------------


async def test_max_n_refuses_larger_requests_at_once(world: World) -> None:
    reply = await command(world, "imagine-settings max-n", {"value": 2})

    assert reply.content == "Requests may now ask for 1 to 2 images."
    text = await refused_at_once(world, await world.imagine("three cats", n=3))
    assert text == "This server allows 1 to 2 images per request: choose n within that."
    await accepted(world, await world.imagine("two cats", n=2))
    assert (await world.store.guild_settings.get(world.guild.id)).max_n == 2


async def test_max_n_of_one_says_image(world: World) -> None:
    reply = await command(world, "imagine-settings max-n", {"value": 1})
    assert reply.content == "Requests may now ask for 1 to 1 image."


@pytest.mark.parametrize("value", [0, 5])
async def test_max_n_outside_1_to_4_never_reaches_the_bot(world: World, value: int) -> None:
    with pytest.raises(InvocationRefused):
        await world.discord.invoke_slash(
            "imagine-settings max-n", {"value": value}, user=world.guild.owner, channel=world.channel
        )
    assert world.bot.services.server_settings.get(world.guild.id).max_n == 4


# -- cooldown ---------------------------------------------------------------------------------------------------


async def test_the_cooldown_refusal_says_when_the_member_can_try_again(world: World) -> None:
    reply = await command(world, "imagine-settings cooldown", {"seconds": 120})
    assert reply.content == "Members now wait 2 min 00 s between requests."
    await accepted(world, await world.imagine("a cat"))

    before = time.time()
    text = await refused_at_once_after(world, await world.imagine("another cat"))
    after = time.time()

    (when,) = resets_in(text)
    assert text == f"You can use /imagine again <t:{when}:R>."
    # The cooldown started before `before`: it ends at most 120 s after it (and a slow machine only shortens it).
    assert after - 1 <= when <= before + 121
    assert when >= before + 60
    # Another member is not held back.
    await accepted(world, await world.imagine("a dog", user=world.guild.add_member("bob")))


async def test_a_cooldown_of_0_lets_members_ask_again_at_once(world: World) -> None:
    await command(world, "imagine-settings cooldown", {"seconds": 3600})
    await accepted(world, await world.imagine("a cat"))
    await refused_at_once_after(world, await world.imagine("again"))

    reply = await command(world, "imagine-settings cooldown", {"seconds": 0})

    assert reply.content == "No cooldown any more."
    await accepted(world, await world.imagine("again"))
    assert (await world.store.guild_settings.get(world.guild.id)).cooldown_seconds == 0


async def refused_at_once_after(world: World, call: InteractionRecord) -> str:
    """Like `refused_at_once`, once earlier requests of the test were submitted."""
    submits = len(world.api.requests_to(Endpoint.SUBMIT))
    await world.discord.wait_for(lambda: call.acknowledged or call.failed, 10, what="the refusal")
    assert call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE, call.failure
    assert call.callback is not None
    assert call.callback.ephemeral
    assert call.original is not None
    assert call.original.mentions_nobody
    assert len(world.api.requests_to(Endpoint.SUBMIT)) == submits
    return call.original.content


@pytest.mark.parametrize("seconds", [-1, 3601])
async def test_a_cooldown_outside_0_to_an_hour_never_reaches_the_bot(world: World, seconds: int) -> None:
    with pytest.raises(InvocationRefused):
        await world.discord.invoke_slash(
            "imagine-settings cooldown", {"seconds": seconds}, user=world.guild.owner, channel=world.channel
        )


# -- log channel ------------------------------------------------------------------------------------------------


async def test_log_channel_is_set_and_unset(world: World) -> None:
    ops = await announce_channel(world, "ops")

    chosen = await command(world, "imagine-settings log-channel", {"channel": ops})

    assert chosen.content == f"Operator alerts will be posted in <#{ops.id}>."
    assert (await world.store.guild_settings.get(world.guild.id)).log_channel_id == ops.id
    assert world.bot.services.server_settings.log_channels() == {world.guild.id: ops.id}

    stopped = await command(world, "imagine-settings log-channel")

    assert stopped.content.startswith("Operator alerts are no longer posted")
    assert (await world.store.guild_settings.get(world.guild.id)).log_channel_id is None
    assert world.bot.services.server_settings.log_channels() == {}


async def test_log_channel_warns_when_imagine_cannot_post_there(world: World) -> None:
    muted = await announce_channel(
        world, "muted", overwrites=[Overwrite(world.guild.bot_role, deny=int(P.SEND_MESSAGES))]
    )

    reply = await command(world, "imagine-settings log-channel", {"channel": muted})

    assert reply.content == (
        f"Operator alerts will be posted in <#{muted.id}>.\n"
        # Without Send Messages, Discord grants neither Embed Links nor Attach Files.
        "Imagine lacks Send Messages, Embed Links, Attach Files there: grant them, or alerts cannot be posted."
    )


# -- show -------------------------------------------------------------------------------------------------------


async def test_show_reports_the_defaults(world: World) -> None:
    reply = await command(world, "imagine-settings show")

    assert settings_fields(reply) == {
        "/imagine allowed in": "every channel",
        "Most images per request": "4",
        "Cooldown per member": "none",
        "Operator alerts go to": "none",
        "Models offered": "**GPT Image 2** (default) (every model the bot offers)",
        "Language of progress and results": "English (United States) (the server's preferred locale)",
        **CONTROLS_OFF,
    }


async def test_show_reports_every_change_and_they_survive_a_restart(world: World) -> None:
    art = await announce_channel(world, "art")
    ops = await announce_channel(world, "ops")
    await command(world, "imagine-settings channels add", {"channel": art})
    await command(world, "imagine-settings channels add", {"channel": world.channel})
    await command(world, "imagine-settings max-n", {"value": 3})
    await command(world, "imagine-settings cooldown", {"seconds": 90})
    await command(world, "imagine-settings log-channel", {"channel": ops})
    expected = {
        "/imagine allowed in": ", ".join(f"<#{c}>" for c in sorted([art.id, world.channel.id])),
        "Most images per request": "3",
        "Cooldown per member": "1 min 30 s",
        "Operator alerts go to": f"<#{ops.id}>",
        "Models offered": "**GPT Image 2** (default) (every model the bot offers)",
        "Language of progress and results": "English (United States) (the server's preferred locale)",
        **CONTROLS_OFF,
    }

    assert settings_fields(await command(world, "imagine-settings show")) == expected

    await world.restart()
    assert settings_fields(await command(world, "imagine-settings show")) == expected
    text = await refused_at_once(world, await world.imagine("four cats", n=4, channel=art))
    assert text == "This server allows 1 to 3 images per request: choose n within that."


async def test_show_keeps_a_long_channel_list_within_the_field_limit(world: World) -> None:
    for index in range(60):
        await world.bot.services.server_settings.add_allowed_channel(world.guild.id, 10**18 + index)

    reply = await command(world, "imagine-settings show")

    assert len(settings_fields(reply)["/imagine allowed in"]) <= 1024


async def test_show_cuts_a_long_channel_list_between_channels_and_says_how_many_more(world: World) -> None:
    for index in range(60):
        await world.bot.services.server_settings.add_allowed_channel(world.guild.id, 10**18 + index)

    value = settings_fields(await command(world, "imagine-settings show"))["/imagine allowed in"]

    shown, _, rest = value.partition(" … ")
    mentions = shown.rstrip(",").split(", ")
    assert all(re.fullmatch(r"<#\d+>", mention) for mention in mentions), mentions[-1]
    assert rest == f"and {60 - len(mentions)} more"


async def test_a_hundred_allowed_channels_still_fit_the_refusal_and_the_answers(world: World) -> None:
    for index in range(100):
        await world.bot.services.server_settings.add_allowed_channel(world.guild.id, 10**18 + index)
    call = await world.imagine("a cat in the wrong channel")
    await world.discord.wait_for(lambda: call.callback is not None, 10)
    assert call.callback is not None
    content = (call.callback.data or {})["content"]
    assert len(content) <= 2000
    assert content.startswith("/imagine is not used in this channel. In this server, use it in <#")
    assert re.search(r"… and \d+ more\.$", content)

    listed = await command(world, "imagine-settings channels list")
    assert len(listed.content) <= 2000
    assert "more" in listed.content


# -- models -----------------------------------------------------------------------------------------------------


async def test_a_server_chooses_its_models_and_default_among_the_operators(make_world: WorldFactory) -> None:
    operators = "gpt-image-2,doubao-seedream-4-5,gpt-4o-image"
    async with make_world(TOAPIS_MODELS=operators) as world:
        # The operator's models are suggested to the admin; a model the operator does not pay for is refused.
        suggested = await world.discord.autocomplete(
            "imagine-settings models add", {"model": "seed"}, focused="model", user=world.guild.owner
        )
        assert suggested == [{"name": "Seedream 4.5", "value": "doubao-seedream-4-5"}]
        refused = await command(world, "imagine-settings models add", {"model": "flux-2-pro"})
        assert refused.content.startswith("This server does not offer the model 'flux-2-pro'.")

        added = await command(world, "imagine-settings models add", {"model": "doubao-seedream-4-5"})
        # The operator's default is no longer offered here: the one model offered is the default.
        assert added.content == "Seedream 4.5 is offered here. Offered now: **Seedream 4.5** (default)."
        await command(world, "imagine-settings models add", {"model": "gpt-4o-image"})
        chosen = await command(world, "imagine-settings models default", {"model": "gpt-4o-image"})
        assert chosen.content == "Requests that name no model now use GPT-4o Image."

        # Members are offered exactly those, the default first named so.
        offered = await world.discord.autocomplete(
            "imagine", {"prompt": "a cat", "model": ""}, focused="model", user=world.member
        )
        assert offered == [
            {"name": "Seedream 4.5", "value": "doubao-seedream-4-5"},
            {"name": "GPT-4o Image (default)", "value": "gpt-4o-image"},
        ]
        text = await refused_at_once(world, await world.imagine("a cat", model="gpt-image-2"))
        assert text == "This server does not offer the model 'gpt-image-2'. It offers: Seedream 4.5, GPT-4o Image."
        text = await refused_at_once(world, await world.imagine("a cat", resolution="4k"))
        assert text == "GPT-4o Image offers the resolutions 1K: choose one of them."
        await accepted(world, await world.imagine("a cat"))
        (submit,) = world.api.requests_to(Endpoint.SUBMIT)
        assert submit.json is not None
        assert submit.json["model"] == "gpt-4o-image"

        last = await command(world, "imagine-settings models remove", {"model": "doubao-seedream-4-5"})
        assert last.content == "Seedream 4.5 is no longer offered here. Offered now: **GPT-4o Image** (default)."
        only = await command(world, "imagine-settings models remove", {"model": "gpt-4o-image"})
        assert only.content.startswith("GPT-4o Image is the only model offered here")
        cleared = await command(world, "imagine-settings models clear")
        assert cleared.content == (
            "Offered now: **GPT Image 2** (default), Seedream 4.5, GPT-4o Image (every model the bot offers)."
        )
