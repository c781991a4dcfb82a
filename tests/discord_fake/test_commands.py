"""Command sync checks and the invocation rules Discord's client enforces before a bot sees anything."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.discord_fake.conftest import (
    CONTEXT_MENU,
    HELP_COMMAND,
    IMAGINE_COMMAND,
    QUOTA_COMMAND,
    RawClient,
    World,
    png_bytes,
)
from tests.fakes.discord import FakeDiscord, FakeUser, InvocationRefused, Permission, Upload


@pytest.fixture
async def synced(http: RawClient, world: World) -> World:
    answer = await http.sync([IMAGINE_COMMAND, QUOTA_COMMAND, CONTEXT_MENU, HELP_COMMAND])
    assert answer.status == 200, answer.body
    return world


def broken(change: Any) -> dict[str, Any]:
    command = copy.deepcopy(IMAGINE_COMMAND)
    change(command)
    return command


@pytest.mark.parametrize(
    ("command", "path", "code"),
    [
        (broken(lambda c: c.update(name="Imagine")), (0, "name"), "APPLICATION_COMMAND_INVALID_NAME"),
        (broken(lambda c: c.update(name="two words")), (0, "name"), "APPLICATION_COMMAND_INVALID_NAME"),
        (broken(lambda c: c.update(description="d" * 101)), (0, "description"), "BASE_TYPE_BAD_LENGTH"),
        (
            broken(lambda c: c["options"].append({"type": 3, "name": "late", "description": "x", "required": True})),
            (0, "options", 4, "required"),
            "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
        ),
        (
            broken(lambda c: c["options"][1].update(choices=[{"name": str(n), "value": str(n)} for n in range(26)])),
            (0, "options", 1, "choices"),
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            broken(lambda c: c["options"][0].update(max_length=6001)),
            (0, "options", 0, "max_length"),
            "NUMBER_TYPE_MAX",
        ),
        (
            broken(lambda c: c["options"].append(copy.deepcopy(c["options"][0]) | {"required": False})),
            (0, "options", 4, "name"),
            "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS",
        ),
        (
            broken(lambda c: c["options"][2].update(min_length=1)),
            (0, "options", 2, "min_length"),
            "APPLICATION_COMMAND_OPTION_INVALID",
        ),
        ({**CONTEXT_MENU, "description": "not allowed"}, (0, "description"), "APPLICATION_COMMAND_INVALID_DESCRIPTION"),
        # Localizations are checked as the field they localize, under Discord's locale codes only.
        (
            broken(lambda c: c.update(description_localizations={"pseudo": "x"})),
            (0, "description_localizations", "pseudo"),
            "LOCALE_INVALID",
        ),
        (
            broken(lambda c: c.update(description_localizations={"fi": "d" * 101})),
            (0, "description_localizations", "fi"),
            "BASE_TYPE_BAD_LENGTH",
        ),
        (
            broken(lambda c: c["options"][0].update(description_localizations={"ja": ""})),
            (0, "options", 0, "description_localizations", "ja"),
            "BASE_TYPE_BAD_LENGTH",
        ),
        (
            broken(lambda c: c["options"][1]["choices"][0].update(name_localizations={"fr": "c" * 101})),
            (0, "options", 1, "choices", 0, "name_localizations", "fr"),
            "BASE_TYPE_BAD_LENGTH",
        ),
        (
            broken(lambda c: c.update(name_localizations={"de": "Bild Erzeugen"})),
            (0, "name_localizations", "de"),
            "APPLICATION_COMMAND_INVALID_NAME",
        ),
        (
            {**CONTEXT_MENU, "name_localizations": {"fi": "m" * 33}},
            (0, "name_localizations", "fi"),
            "BASE_TYPE_BAD_LENGTH",
        ),
    ],
)
async def test_a_sync_is_checked_like_discord_does(
    fake: FakeDiscord, world: World, http: RawClient, command: dict[str, Any], path: tuple[Any, ...], code: str
) -> None:
    answer = await http.sync([command])

    assert (answer.status, answer.code) == (400, 50035)
    assert code in answer.field_errors(*path)
    assert fake.global_commands == []
    assert [s.status for s in fake.command_syncs] == [400]


async def test_valid_localizations_are_accepted_and_stored(fake: FakeDiscord, http: RawClient, world: World) -> None:
    command = broken(lambda c: c.update(description_localizations={"fi": "Luo kuva", "es-419": "Crea una imagen"}))
    menu = {**CONTEXT_MENU, "name_localizations": {"ja": "画像から"}}
    answer = await http.sync([command, menu])

    assert answer.status == 200, answer.body
    stored = {c["name"]: c for c in fake.global_commands}
    assert stored["imagine"]["description_localizations"] == {"fi": "Luo kuva", "es-419": "Crea una imagen"}
    assert stored["Imagine from images"]["name_localizations"] == {"ja": "画像から"}


async def test_duplicate_names_are_refused_per_type(http: RawClient, world: World) -> None:
    same_type = await http.sync([IMAGINE_COMMAND, IMAGINE_COMMAND])
    other_type = await http.sync([IMAGINE_COMMAND, {**CONTEXT_MENU, "name": "imagine"}])

    assert same_type.field_errors(1, "name") == ["APPLICATION_COMMANDS_DUPLICATE_NAME"]
    assert other_type.status == 200


async def test_a_sync_is_stored_recorded_and_keeps_ids(fake: FakeDiscord, http: RawClient, world: World) -> None:
    first = await http.sync([IMAGINE_COMMAND, CONTEXT_MENU])
    second = await http.sync([IMAGINE_COMMAND])
    listed = await http.request("GET", f"/applications/{fake.application_id}/commands")

    assert first.body[0]["id"] == second.body[0]["id"]
    assert first.body[0]["version"] != second.body[0]["version"]
    assert first.body[0]["application_id"] == str(fake.application_id)
    assert first.body[0]["default_member_permissions"] is None
    assert first.body[0]["contexts"] == [0]
    assert listed.body == second.body
    assert [s.payload for s in fake.command_syncs] == [[IMAGINE_COMMAND, CONTEXT_MENU], [IMAGINE_COMMAND]]


async def test_guild_commands_are_separate(fake: FakeDiscord, http: RawClient, world: World) -> None:
    answer = await http.sync([HELP_COMMAND], guild=world.guild)

    assert answer.body[0]["guild_id"] == str(world.guild.id)
    assert fake.guild_commands(world.guild)[0]["name"] == "help"
    assert fake.global_commands == []
    call = await fake.invoke_slash("help", user=world.alice, channel=world.general)
    assert call.payload["data"]["guild_id"] == str(world.guild.id)
    permissions = await http.request(
        "GET",
        f"/applications/{fake.application_id}/guilds/{world.guild.id}/commands/{answer.body[0]['id']}/permissions",
    )
    assert (permissions.status, permissions.code) == (404, 10066)


async def test_a_valid_invocation_is_delivered_with_its_options(fake: FakeDiscord, synced: World) -> None:
    call = await fake.invoke_slash(
        "imagine",
        {"prompt": "a cat", "size": "1536x1024", "n": 4, "image": Upload(png_bytes(), "a.png")},
        user=synced.alice,
        channel=synced.general,
    )

    names = [o["name"] for o in call.payload["data"]["options"]]
    assert names == ["prompt", "size", "n", "image"]
    assert call.name == "imagine"
    assert fake.interactions == [call]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({}, "required"),
        ({"prompt": ""}, "non-empty"),
        ({"prompt": "p" * 4001}, "characters"),
        ({"prompt": "p", "n": 0}, "within"),
        ({"prompt": "p", "n": 5}, "within"),
        ({"prompt": "p", "n": 2.5}, "integer"),
        ({"prompt": "p", "n": "2"}, "number"),
        ({"prompt": "p", "n": True}, "number"),
        ({"prompt": "p", "size": "800x600"}, "one of"),
        ({"prompt": "p", "image": b"raw bytes"}, "Upload"),
        ({"prompt": "p", "image": Upload(b"\0" * (10 * 1024 * 1024 + 1), "big.png")}, "upload limit"),
        ({"prompt": "p", "style": "vivid"}, "unknown option"),
    ],
)
async def test_an_invocation_that_breaks_the_options_is_refused(
    fake: FakeDiscord, synced: World, options: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvocationRefused, match=reason):
        await fake.invoke_slash("imagine", options, user=synced.alice, channel=synced.general)

    assert fake.interactions == []


async def test_default_member_permissions_decide_who_may_invoke(fake: FakeDiscord, synced: World) -> None:
    options = {"scope": "server", "limit": 10}

    with pytest.raises(InvocationRefused, match="default_member_permissions"):
        await fake.invoke_slash("quota set", options, user=synced.alice, channel=synced.general)
    by_admin = await fake.invoke_slash("quota set", options, user=synced.admin, channel=synced.general)
    by_owner = await fake.invoke_slash("quota set", options, user=synced.guild.owner, channel=synced.general)
    administrators = synced.guild.add_role("Administrators", Permission.ADMINISTRATOR)
    root = synced.guild.add_member("root", roles=[administrators])
    by_administrator = await fake.invoke_slash("quota set", options, user=root, channel=synced.general)

    assert {by_admin.member, by_owner.member, by_administrator.member} == {synced.admin, synced.guild.owner, root}


async def test_a_zero_default_member_permission_means_administrators_only(
    fake: FakeDiscord, http: RawClient, world: World
) -> None:
    await http.sync([{**HELP_COMMAND, "default_member_permissions": "0"}])

    with pytest.raises(InvocationRefused):
        await fake.invoke_slash("help", user=world.admin, channel=world.general)
    assert await fake.invoke_slash("help", user=world.guild.owner, channel=world.general)


async def test_subcommands_and_groups_nest_their_options(fake: FakeDiscord, synced: World) -> None:
    set_call = await fake.invoke_slash(
        "quota set", {"scope": "member", "limit": 3}, user=synced.admin, channel=synced.general
    )
    role_call = await fake.invoke_slash(
        "quota role give",
        {"role": synced.admins, "member": synced.alice, "channel": synced.general},
        user=synced.admin,
        channel=synced.general,
    )

    assert set_call.payload["data"]["options"] == [
        {
            "name": "set",
            "type": 1,
            "options": [{"name": "scope", "type": 3, "value": "member"}, {"name": "limit", "type": 4, "value": 3}],
        }
    ]
    group = role_call.payload["data"]["options"][0]
    assert (group["name"], group["type"], group["options"][0]["name"]) == ("role", 2, "give")
    resolved = role_call.payload["data"]["resolved"]
    assert set(resolved) == {"roles", "users", "members", "channels"}
    assert resolved["members"][str(synced.alice.id)]["permissions"]
    with pytest.raises(InvocationRefused, match="needs a subcommand"):
        await fake.invoke_slash("quota", user=synced.admin, channel=synced.general)
    with pytest.raises(InvocationRefused, match="no subcommand"):
        await fake.invoke_slash("quota reset", user=synced.admin, channel=synced.general)


async def test_contexts_and_dm_permission(fake: FakeDiscord, http: RawClient, world: World) -> None:
    no_dm_legacy = {"type": 1, "name": "legacy", "description": "Old style", "dm_permission": False}
    await http.sync([IMAGINE_COMMAND, HELP_COMMAND, no_dm_legacy])
    stranger = FakeUser(id=fake.state.new_id(), username="stranger")

    with pytest.raises(InvocationRefused, match="DMs"):
        await fake.invoke_slash("imagine", {"prompt": "p"}, user=world.alice.user)
    with pytest.raises(InvocationRefused, match="DMs"):
        await fake.invoke_slash("legacy", user=world.alice.user)
    in_dm = await fake.invoke_slash("help", user=stranger)

    assert in_dm.payload["context"] == 1
    assert "member" not in in_dm.payload
    assert in_dm.payload["user"]["id"] == str(stranger.id)
    assert "guild_id" not in in_dm.payload
    assert in_dm.channel.type == 1


async def test_members_need_use_application_commands_and_view_channel(fake: FakeDiscord, synced: World) -> None:
    with pytest.raises(InvocationRefused, match="may not use application commands"):
        await fake.invoke_slash("imagine", {"prompt": "p"}, user=synced.alice, channel=synced.no_commands)
    other = fake.add_guild("Elsewhere")
    with pytest.raises(InvocationRefused, match="not a member"):
        await fake.invoke_slash("imagine", {"prompt": "p"}, user=synced.alice, channel=other.add_text_channel("x"))


async def test_unknown_commands_are_refused(fake: FakeDiscord, synced: World) -> None:
    with pytest.raises(InvocationRefused, match="no synced"):
        await fake.invoke_slash("usage", user=synced.alice, channel=synced.general)
    target = await fake.post_message(synced.general, synced.bob, "hi")
    with pytest.raises(InvocationRefused, match="no synced message command"):
        await fake.invoke_message_context("Describe", target, user=synced.alice)


async def test_a_user_context_menu_resolves_its_target(fake: FakeDiscord, http: RawClient, world: World) -> None:
    await http.sync([{"type": 2, "name": "Show usage", "contexts": [0]}])

    call = await fake.invoke_user_context("Show usage", world.bob, user=world.alice, channel=world.general)

    data = call.payload["data"]
    assert (data["type"], data["target_id"]) == (2, str(world.bob.id))
    assert data["resolved"]["users"][str(world.bob.id)]["username"] == "bob"
