"""The Discord part of `python bot.py --check`: is the token valid, which application is it, is it public, and
which servers is the bot in that it does not serve. Lines as generation/checks.py makes them (✓, ✗, ⚠).

It logs in over REST only (no gateway connection, no event is handled) and closes again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import discord

from generation.checks import CheckLine, fail, note, ok

DEFAULT_TIMEOUT = 20.0


@dataclass(frozen=True)
class DiscordFindings:
    """The lines to print, and the application's id when the token worked (for the invite URL)."""

    lines: list[CheckLine] = field(default_factory=list)
    application_id: int | None = None


async def check_discord(
    token: str,
    *,
    guild_allowed: Callable[[int], bool],
    restricted: bool,
    operator_guild_id: int | None,
    timeout: float = DEFAULT_TIMEOUT,
) -> DiscordFindings:
    """Log in with `token` and describe the application and its servers. `restricted`: ALLOWED_GUILD_IDS is set."""
    client = discord.Client(intents=discord.Intents(guilds=True))
    try:
        async with asyncio.timeout(timeout):
            await client.login(token)  # asks for the user, then the application
            application = client.application or await client.application_info()
            guilds = [guild async for guild in client.fetch_guilds(limit=None, with_counts=False)]
    except discord.LoginFailure:
        return DiscordFindings(
            [
                fail(
                    "Discord",
                    "the token was refused. Reset it in the Developer Portal (Bot tab) and set DISCORD_TOKEN.",
                )
            ]
        )
    except TimeoutError:  # before OSError, of which it is one
        return DiscordFindings([fail("Discord", f"no answer within {timeout:g} s. Check the network.")])
    except (aiohttp.ClientError, OSError) as exc:
        return DiscordFindings(
            [
                fail(
                    "Discord",
                    f"cannot reach {discord.http.Route.BASE} ({exc}). Check the network and DISCORD_API_BASE_URL.",
                )
            ]
        )
    except discord.HTTPException as exc:
        return DiscordFindings([fail("Discord", f"answered {exc.status}: {exc.text or exc}. Try again later.")])
    finally:
        await client.close()

    lines = [ok("Discord", f"the token is valid: application {application.name} ({application.id})")]
    lines.append(_publicity(application.bot_public, restricted))
    lines.append(_servers(guilds, guild_allowed, restricted))
    if operator_guild_id is not None and not any(guild.id == operator_guild_id for guild in guilds):
        lines.append(
            note(
                "operator's server",
                f"the bot is not in OPERATOR_GUILD_ID {operator_guild_id}: /imagine-admin cannot be synced there. "
                "Invite the bot to it (the URL below).",
            )
        )
    return DiscordFindings(lines, application.id)


def _publicity(public: bool, restricted: bool) -> CheckLine:
    if not public:
        return ok("application", "private: only you can add the bot to a server")
    if restricted:
        return ok(
            "application",
            "public: anyone can add the bot, but it works only in ALLOWED_GUILD_IDS and leaves other servers it is "
            "added to",
        )
    return note(
        "application",
        "public and ALLOWED_GUILD_IDS is empty: anyone can add the bot and spend your credits. Turn off Public Bot "
        "(Developer Portal, Bot tab) or set ALLOWED_GUILD_IDS.",
    )


def _servers(guilds: list[discord.Guild], guild_allowed: Callable[[int], bool], restricted: bool) -> CheckLine:
    count = f"{len(guilds)} server{'' if len(guilds) == 1 else 's'}"
    off_list = [guild for guild in guilds if not guild_allowed(guild.id)]
    if not restricted or not off_list:
        return ok("servers", f"in {count}")
    shown = ", ".join(f"{guild.name} ({guild.id})" for guild in off_list[:10])
    more = f" and {len(off_list) - 10} more" if len(off_list) > 10 else ""
    return note(
        "servers",
        f"in {count}, {len(off_list)} of them off ALLOWED_GUILD_IDS (it answers nothing there): {shown}{more}. "
        "Remove the bot from them, or add their ids.",
    )
