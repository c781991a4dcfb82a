"""Guild settings and the command-sync record."""

from __future__ import annotations

import pytest

from storage.database import Database
from storage.guild_settings import GuildSettings, GuildSettingsRepository
from tests.storage.conftest import FakeClock

GUILD = 700_000_000_000_000_001
OTHER = 700_000_000_000_000_002
CHANNEL = 800_000_000_000_000_001


@pytest.fixture
def settings(db: Database, clock: FakeClock) -> GuildSettingsRepository:
    return GuildSettingsRepository(db, clock)


async def test_a_guild_that_set_nothing_has_the_defaults(settings: GuildSettingsRepository) -> None:
    current = await settings.get(GUILD)
    assert current == GuildSettings(GUILD, frozenset(), 4, 0, None)
    assert current.channel_allowed(CHANNEL)
    assert await settings.all() == {}


async def test_setters_change_one_thing_each(settings: GuildSettingsRepository) -> None:
    assert (await settings.set_max_n(GUILD, 2)).max_n == 2
    assert (await settings.set_cooldown(GUILD, 30)).cooldown_seconds == 30
    assert (await settings.set_log_channel(GUILD, CHANNEL)).log_channel_id == CHANNEL
    assert await settings.get(GUILD) == GuildSettings(GUILD, frozenset(), 2, 30, CHANNEL)
    assert (await settings.set_log_channel(GUILD, None)).log_channel_id is None
    assert (await settings.set_max_n(GUILD, 4)).max_n == 4
    assert await settings.get(OTHER) == GuildSettings(OTHER)


async def test_a_server_chooses_its_language_or_follows_its_preferred_locale(
    settings: GuildSettingsRepository,
) -> None:
    assert (await settings.get(GUILD)).language is None
    assert (await settings.set_language(GUILD, "en-US")).language == "en-US"
    assert (await settings.all())[GUILD].language == "en-US"
    assert (await settings.set_language(GUILD, None)).language is None


async def test_allowed_channels(settings: GuildSettingsRepository) -> None:
    await settings.add_allowed_channel(GUILD, CHANNEL)
    current = await settings.add_allowed_channel(GUILD, CHANNEL + 1)
    assert await settings.add_allowed_channel(GUILD, CHANNEL) == current  # adding twice changes nothing
    assert current.allowed_channel_ids == {CHANNEL, CHANNEL + 1}
    assert current.channel_allowed(CHANNEL)
    assert not current.channel_allowed(CHANNEL + 2)
    current = await settings.remove_allowed_channel(GUILD, CHANNEL)
    assert current.allowed_channel_ids == {CHANNEL + 1}
    current = await settings.clear_allowed_channels(GUILD)
    assert current.allowed_channel_ids == frozenset()
    assert current.channel_allowed(CHANNEL + 2)


async def test_all_loads_every_guild_for_the_cache(settings: GuildSettingsRepository) -> None:
    await settings.set_cooldown(GUILD, 10)
    await settings.add_allowed_channel(GUILD, CHANNEL)
    await settings.add_allowed_channel(OTHER, CHANNEL + 5)  # only channels, no other setting
    assert await settings.all() == {
        GUILD: GuildSettings(GUILD, frozenset({CHANNEL}), 4, 10, None),
        OTHER: GuildSettings(OTHER, frozenset({CHANNEL + 5})),
    }


@pytest.mark.parametrize("max_n", [0, 5, -1])
async def test_max_n_must_be_1_to_4(settings: GuildSettingsRepository, max_n: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 4"):
        await settings.set_max_n(GUILD, max_n)
    assert (await settings.get(GUILD)).max_n == 4


async def test_cooldown_cannot_be_negative(settings: GuildSettingsRepository) -> None:
    with pytest.raises(ValueError, match="negative"):
        await settings.set_cooldown(GUILD, -1)
    assert (await settings.get(GUILD)).cooldown_seconds == 0


async def test_the_synced_tree_hash_is_kept_per_application(settings: GuildSettingsRepository) -> None:
    assert await settings.synced_tree_hash(1) is None
    await settings.record_sync(1, "hash-a")
    await settings.record_sync(2, "hash-b")
    await settings.record_sync(1, "hash-c")
    assert await settings.synced_tree_hash(1) == "hash-c"
    assert await settings.synced_tree_hash(2) == "hash-b"


async def test_blocked_words_are_added_once_removed_and_loaded_for_the_cache(settings: GuildSettingsRepository) -> None:
    current = await settings.add_blocked_words(GUILD, ["bad", "real person", "bad"])
    assert current.blocked_words == {"bad", "real person"}
    assert (await settings.add_blocked_words(GUILD, ["bad", "裸体"])).blocked_words == {"bad", "real person", "裸体"}
    await settings.add_blocked_words(OTHER, ["only words here"])  # no other setting: still loaded
    current = await settings.remove_blocked_words(GUILD, ["real person", "never there"])
    assert current.blocked_words == {"bad", "裸体"}
    assert await settings.all() == {
        GUILD: GuildSettings(GUILD, blocked_words=frozenset({"bad", "裸体"})),
        OTHER: GuildSettings(OTHER, blocked_words=frozenset({"only words here"})),
    }
    await settings.set_cooldown(GUILD, 5)
    assert (await settings.all())[GUILD].blocked_words == {"bad", "裸体"}


async def test_a_blocked_word_must_have_1_to_200_characters(settings: GuildSettingsRepository) -> None:
    for word in ("", "x" * 201):
        with pytest.raises(ValueError, match="1 to 200 characters"):
            await settings.add_blocked_words(GUILD, ["fine", word])
    assert (await settings.get(GUILD)).blocked_words == frozenset()


async def test_spoiler_and_mod_log_flags(settings: GuildSettingsRepository) -> None:
    current = await settings.set_spoiler(GUILD, True, exempt_nsfw=True)
    assert (current.spoiler, current.spoiler_exempt_nsfw) == (True, True)
    current = await settings.set_spoiler(GUILD, True)
    assert (current.spoiler, current.spoiler_exempt_nsfw) == (True, False)
    # Off: the exemption goes too, so turning spoilers on again starts from no exemption.
    await settings.set_spoiler(GUILD, True, exempt_nsfw=True)
    current = await settings.set_spoiler(GUILD, False, exempt_nsfw=True)
    assert (current.spoiler, current.spoiler_exempt_nsfw) == (False, False)
    assert (await settings.set_mod_log(GUILD, True)).mod_log is True
    assert (await settings.all())[GUILD].mod_log is True
    assert (await settings.set_mod_log(GUILD, False)).mod_log is False
    assert (await settings.get(OTHER)).mod_log is False


async def test_the_sync_record_keeps_one_hash_per_scope(settings: GuildSettingsRepository) -> None:
    await settings.record_sync(1, "global-a")
    await settings.record_sync(1, "operator-a", guild_id=GUILD)
    await settings.record_sync(1, "operator-b", guild_id=OTHER)
    await settings.record_sync(2, "other-app", guild_id=GUILD)
    assert await settings.synced_tree_hash(1) == "global-a"
    assert await settings.synced_tree_hash(1, GUILD) == "operator-a"
    assert await settings.synced_guilds(1) == [GUILD, OTHER]

    await settings.record_sync(1, "operator-c", guild_id=GUILD)
    assert await settings.synced_tree_hash(1, GUILD) == "operator-c"
    assert await settings.synced_tree_hash(1) == "global-a"  # another scope, untouched

    await settings.forget_sync(1, OTHER)
    assert await settings.synced_guilds(1) == [GUILD]
    assert await settings.synced_tree_hash(1, OTHER) is None
    assert await settings.synced_guilds(2) == [GUILD]


async def test_a_guild_is_welcomed_once_unless_the_welcome_was_given_back(settings: GuildSettingsRepository) -> None:
    await settings.set_cooldown(OTHER, 30)  # a guild with settings already

    assert await settings.claim_welcome(GUILD)
    assert not await settings.claim_welcome(GUILD)
    assert await settings.claim_welcome(OTHER)
    assert not await settings.claim_welcome(OTHER)
    # Not a setting: the settings stay what they were.
    assert await settings.get(OTHER) == GuildSettings(OTHER, cooldown_seconds=30)
    assert await settings.get(GUILD) == GuildSettings(GUILD)

    await settings.release_welcome(GUILD)  # it could not be posted
    assert await settings.claim_welcome(GUILD)
    assert not await settings.claim_welcome(GUILD)


async def test_the_conversation_is_on_until_admins_turn_it_off(settings: GuildSettingsRepository) -> None:
    assert (await settings.get(GUILD)).chat is True
    assert (await settings.set_chat(GUILD, False)).chat is False
    assert (await settings.all())[GUILD].chat is False
    assert (await settings.set_chat(GUILD, True)).chat is True
    assert (await settings.get(OTHER)).chat is True
