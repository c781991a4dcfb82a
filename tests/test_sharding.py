"""Which servers a process serves, and whether it shares its database (leases) or owns it."""

from __future__ import annotations

from bot import pipeline_config, shard_filter, shard_options
from settings import load_settings

BASE = {"DISCORD_TOKEN": "token", "TOAPIS_API_KEY": "key"}


def guild_on_shard(shard: int, count: int, serial: int = 7) -> int:
    # A snowflake's shard is (id >> 22) % shard_count.
    return ((serial * count + shard) << 22) | 12345


def test_without_shards_every_server_is_served() -> None:
    owns = shard_filter(load_settings(BASE))
    assert all(owns(guild_on_shard(shard, 4)) for shard in range(4))


def test_a_process_serves_exactly_its_shards() -> None:
    owns = shard_filter(load_settings(BASE | {"SHARD_COUNT": "4", "SHARD_IDS": "1,3"}))
    assert [owns(guild_on_shard(shard, 4)) for shard in range(4)] == [False, True, False, True]


def test_leases_only_on_a_shared_database() -> None:
    sqlite_settings = load_settings(BASE | {"DATABASE_URL": "sqlite:///data/x.db"})
    postgres_settings = load_settings(BASE | {"DATABASE_URL": "postgresql://db/imagine"})
    assert (sqlite_settings.shared_database, postgres_settings.shared_database) == (False, True)
    sqlite = pipeline_config(sqlite_settings, shared_database=sqlite_settings.shared_database)
    postgres = pipeline_config(postgres_settings, shared_database=postgres_settings.shared_database)
    assert sqlite.lease_ttl is None
    assert postgres.lease_ttl == 60.0  # twelve polls at the default 5 s
    assert sqlite.spool_dir.as_posix() == "data/spool"  # beside the database: a restart finds the results
    assert postgres.spool_dir.name == "imagine-spool"  # the temporary folder: no database folder to share


def test_shard_options_follow_the_settings() -> None:
    assert shard_options(load_settings(BASE | {"SHARD_COUNT": "4", "SHARD_IDS": "2,3"})) == {
        "shard_count": 4,
        "shard_ids": [2, 3],
    }
    assert shard_options(load_settings(BASE | {"SHARD_COUNT": "2"})) == {"shard_count": 2, "shard_ids": [0, 1]}
    # A gateway of our own (a proxy, the tests' fake): one shard, connected to it.
    assert shard_options(load_settings(BASE | {"DISCORD_GATEWAY_URL": "ws://127.0.0.1:1/gw"})) == {
        "shard_count": 1,
        "shard_ids": [0],
    }
    # Discord's gateway: Discord says how many shards the bot needs, and they all run in this process.
    assert shard_options(load_settings(BASE)) == {}
