"""The embeds Imagine shows, each within Discord's limits (user text is cut to its field, with an ellipsis)."""

from __future__ import annotations

from typing import Final

import discord

from generation.events import Generating, Late, Paused, ProgressEvent, Queued, Submitted, Uploading
from generation.validation import SIZES
from storage.jobs import Job
from storage.quotas import RuleScope, RuleUsage

# Discord's embed limits (discord-notes.md).
TITLE_LIMIT: Final = 256
DESCRIPTION_LIMIT: Final = 4096
FIELD_VALUE_LIMIT: Final = 1024
FOOTER_LIMIT: Final = 2048
TOTAL_LIMIT: Final = 6000

# A list echoed in message content leaves room for the sentence around it within the 2,000 characters.
MESSAGE_LIST_LIMIT: Final = 1500

# The prompt is shown in full only in the result; progress replies show its start.
PROGRESS_PROMPT_LIMIT: Final = 300
RESULT_PROMPT_LIMIT: Final = 3500

WORKING: Final = discord.Colour.blurple()
DONE: Final = discord.Colour.green()
PROBLEM: Final = discord.Colour.red()
WAITING: Final = discord.Colour.orange()

# Nothing Imagine posts pings anyone, except the requester on the channel-message fallback.
NO_MENTIONS: Final = discord.AllowedMentions.none()


def cut(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def duration(seconds: float) -> str:
    """A short human duration: 8 s, 1 min 05 s, 2 h 03 min."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def noun(count: int, singular: str) -> str:
    """The noun for `count` things: `image` for 1, `images` otherwise."""
    return singular if count == 1 else singular + "s"


def plural(count: int, singular: str) -> str:
    """`1 image`, `2 images`, `1,250 images`."""
    return f"{count:,} {noun(count, singular)}"


def size_label(size: str) -> str:
    label = SIZES.get(size)
    return f"{label} ({size.replace('x', '×')})" if label else size


def progress_embed(job: Job, event: ProgressEvent) -> discord.Embed:
    """The deferred reply while the job moves: what is happening now, and the prompt for context."""
    colour = WORKING
    if isinstance(event, Queued):
        title = "Waiting in line" if event.place > 1 else "Next in line"
        status = f"Place in line: **{event.place}**. You can cancel until generation starts."
        colour = WAITING
    elif isinstance(event, Uploading):
        title = "Uploading references"
        status = f"Uploading {plural(event.references, 'reference image')}…"
    elif isinstance(event, Submitted):
        title = "Generating"
        status = "The image service accepted the job."
    elif isinstance(event, Generating):
        title = "Generating"
        percent = f"**{event.percent}%**" if event.percent > 0 else "started"
        status = f"Progress: {percent} · {duration(event.elapsed)} so far"
    elif isinstance(event, Late):
        title = "Taking longer than usual"
        status = (
            f"Still generating after {duration(event.elapsed)}. Imagine keeps following it and will mention you "
            "in this channel when it is ready."
        )
        colour = WAITING
    else:
        assert isinstance(event, Paused)
        title = "Paused"
        status = f"{event.reason} This job will continue when the image service is back."
        colour = WAITING
    embed = discord.Embed(title=title, description=status, colour=colour)
    embed.add_field(name="Prompt", value=cut(job.prompt, PROGRESS_PROMPT_LIMIT), inline=False)
    embed.set_footer(text=f"{size_label(job.size)} · {plural(job.n, 'image')}")
    return embed


def result_embed(job: Job, *, images: int, elapsed: float, refunded: int) -> discord.Embed:
    """The result: prompt, size, count, time taken, who asked."""
    embed = discord.Embed(description=cut(job.prompt, RESULT_PROMPT_LIMIT), colour=DONE)
    embed.add_field(name="Size", value=size_label(job.size))
    count = f"{images}" if images == job.n else f"{images} of {job.n}"
    embed.add_field(name="Images", value=count)
    embed.add_field(name="Time", value=duration(elapsed))
    embed.add_field(name="Requested by", value=f"<@{job.user_id}>")
    if refunded:
        embed.set_footer(text=f"The image service returned fewer images than asked; {refunded} were not counted.")
    return embed


def problem_embed(text: str, *, title: str = "Could not generate") -> discord.Embed:
    return discord.Embed(title=title, description=cut(text, DESCRIPTION_LIMIT), colour=PROBLEM)


def rule_name(usage: RuleUsage) -> str:
    period = {"day": "today", "week": "this week", "month": "this month"}[usage.period.value]
    if usage.scope is RuleScope.SERVER:
        return f"this server's limit for {period}"
    if usage.scope is RuleScope.GLOBAL:
        return f"Imagine's overall limit for {period}"
    if usage.scope is RuleScope.ROLE:
        return f"the limit of your role <@&{usage.role_id}> for {period}"
    return f"your limit for {period}"


def quota_refusal(usage: RuleUsage, requested: int) -> str:
    """Which rule refused, what is left, and when it resets (a Discord timestamp each member sees locally)."""
    if usage.limit == 0:
        # A limit of 0 is a switch, not a budget: it does not come back when the period turns.
        return f"Image generation is turned off by {rule_name(usage)}. A server admin can change that with /quota."
    resets = discord.utils.format_dt(usage.resets_at, "R")
    left = usage.remaining
    if left == 0:
        return f"You have reached {rule_name(usage)} ({plural(usage.limit, 'image')}). It resets {resets}."
    return (
        f"You asked for {plural(requested, 'image')}, but only {left:,} of {rule_name(usage)} "
        f"({usage.limit:,}) {'is' if left == 1 else 'are'} left. Ask for fewer, or wait until it resets {resets}."
    )


def channel_list(channel_ids: frozenset[int], *, limit: int = FIELD_VALUE_LIMIT) -> str:
    """Channel mentions within `limit` characters, never cut inside one; says how many did not fit."""
    mentions = [f"<#{channel}>" for channel in sorted(channel_ids)]
    shown: list[str] = []
    for mention in mentions:
        rest = len(mentions) - len(shown) - 1
        tail = f" … and {rest} more" if rest else ""
        if len(", ".join([*shown, mention])) + len(tail) > limit:
            break
        shown.append(mention)
    text = ", ".join(shown)
    return f"{text} … and {len(mentions) - len(shown)} more" if len(shown) < len(mentions) else text
