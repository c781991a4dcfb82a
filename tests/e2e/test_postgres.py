"""The happy path with DATABASE_URL pointing at PostgreSQL (skipped, with one line, without TEST_POSTGRES_URL).

Two bot processes share the database, each running one of two shards, as docker-compose.sharded.yml deploys
them: each serves the member of its own shard, and the usage log holds both jobs.
"""

from __future__ import annotations

from typing import Any

import pytest

from storage.store import Storage
from tests.e2e.conftest import STEP_TIMEOUT, World, delivered
from tests.e2e.harness import wait_until
from tests.storage.conftest import fresh_schema

pytestmark = pytest.mark.e2e


async def test_imagine_on_postgres_with_two_shard_processes(world: World) -> None:
    async with fresh_schema() as url:
        # One server on each shard of two: a snowflake's shard is (id >> 22) % 2.
        other_shard = 1 - (world.guild.id >> 22) % 2
        other = world.discord.add_guild("Second server", guild_id=((1_000_000 + other_shard) << 22) | 5)
        other_channel = other.add_text_channel("general")
        assert (world.guild.id >> 22) % 2 != (other.id >> 22) % 2
        shard = {world.guild.id: (world.guild.id >> 22) % 2, other.id: (other.id >> 22) % 2}
        common = {"DATABASE_URL": url, "SHARD_COUNT": "2"}
        async with (
            world.bot(**common, SHARD_IDS=str(shard[world.guild.id])),
            world.bot(**common, SHARD_IDS=str(shard[other.id])),
        ):
            first = await world.imagine(world.member("alice"), "a lighthouse on postgres", n=2)
            second = await world.discord.invoke_slash(
                "imagine", {"prompt": "a harbour on postgres"}, user=other.add_member("bob"), channel=other_channel
            )
            await world.discord.wait_for(lambda: delivered(first) and delivered(second), STEP_TIMEOUT)
            async with await Storage.open(url) as store:
                # A delivery is recorded just after Discord has it: wait for both records before stopping.
                async def both_recorded() -> list[Any]:
                    rows = await store.db.fetch_all("SELECT job_id, guild_id, status, images FROM usage_log")
                    return rows if len(rows) == 2 else []

                rows = await wait_until(both_recorded, STEP_TIMEOUT, what="both usage rows")
                jobs = await store.jobs.list_unfinished()

        assert first.original is not None
        assert len(first.original.attachments) == 2
        assert sorted((row["guild_id"], row["status"], row["images"]) for row in rows) == sorted(
            [(world.guild.id, "completed", 2), (other.id, "completed", 1)]
        )
        assert jobs == []
        for row in rows:
            assert len(world.api.tasks_for(row["job_id"])) == 1
