"""The embeds Imagine shows, each within Discord's limits (user text is cut to its field, with an ellipsis)."""

from __future__ import annotations

from typing import Final

import discord

import i18n
from cogs._limits import DESCRIPTION_LIMIT, FIELD_VALUE_LIMIT, cut
from cogs._texts import (
    NOT_POSTABLE,
    UNAVAILABLE,
    aspect_label,
    duration,
    model_label,
    plural,
    resolution_label,
    shape_label,
)
from generation.events import Generating, Late, Paused, ProgressEvent, Queued, Submitted, Uploading
from storage.jobs import Job

# The prompt is shown in full only in the result; progress replies show its start.
PROGRESS_PROMPT_LIMIT: Final = 300
RESULT_PROMPT_LIMIT: Final = 3500

WORKING: Final = discord.Colour.blurple()
DONE: Final = discord.Colour.green()
PROBLEM: Final = discord.Colour.red()
WAITING: Final = discord.Colour.orange()

# Nothing Imagine posts pings anyone, except the requester on the channel-message fallback.
NO_MENTIONS: Final = discord.AllowedMentions.none()


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
        status = f"{UNAVAILABLE} This job will continue when the image service is back."
        colour = WAITING
    embed = discord.Embed(title=title, description=status, colour=colour)
    embed.add_field(name="Prompt", value=cut(job.prompt, PROGRESS_PROMPT_LIMIT), inline=False)
    if not job.channel_postable:
        embed.add_field(name="Note", value=NOT_POSTABLE, inline=False)
    embed.set_footer(text=f"{shape_label(job)} · {plural(job.n, 'image')}")
    return embed


def result_embed(
    job: Job,
    *,
    images: int,
    elapsed: float,
    refunded: int,
    reencoded: int = 0,
    originals: tuple[str, ...] = (),
    reference: str | None = None,
) -> discord.Embed:
    """The result: prompt, model, aspect and resolution, count and what it counted as, time taken, who asked, and
    the job's reference in the footer (what /show takes).

    `reencoded`: how many images were re-encoded to fit the server's upload limit; `originals`: links to those
    images as the image service keeps them (a day).
    """
    embed = discord.Embed(description=cut(job.prompt, RESULT_PROMPT_LIMIT), colour=DONE)
    embed.add_field(name="Model", value=model_label(job.model))
    embed.add_field(name="Aspect", value=aspect_label(job.aspect))
    embed.add_field(name="Resolution", value=resolution_label(job.resolution))
    count = f"{images}" if images == job.n else f"{images} of {job.n}"
    embed.add_field(name="Images", value=count)
    embed.add_field(name="Counted as", value=plural(images * job.weight, "image"))
    embed.add_field(name="Time", value=duration(elapsed))
    embed.add_field(name="Requested by", value=f"<@{job.user_id}>")
    if reencoded:
        text = f"{plural(reencoded, 'image')} re-encoded to fit Discord's upload limit in this server."
        if originals:
            links = " ".join(f"[original {index}]({url})" for index, url in enumerate(originals, start=1))
            text += f" The full ones, for a day: {links}"
        embed.add_field(name="Re-encoded to fit", value=cut(text, FIELD_VALUE_LIMIT), inline=False)
    footer = [f"Job {reference}"] if reference else []
    if refunded:
        footer.append(f"The image service returned fewer images than asked; {refunded} were not counted.")
    if footer:
        embed.set_footer(text=" · ".join(footer))
    return embed


def shown_embed(job: Job, *, reference: str, shown_by: int) -> discord.Embed:
    """A job's images posted again with /show: the prompt's start, who asked for them (and who showed them, if
    someone else), the model, and the reference."""
    embed = discord.Embed(description=cut(job.prompt, PROGRESS_PROMPT_LIMIT), colour=DONE)
    embed.add_field(name="Requested by", value=f"<@{job.user_id}>")
    if shown_by != job.user_id:
        embed.add_field(name="Shown by", value=f"<@{shown_by}>")
    embed.set_footer(text=f"Job {reference} · {shape_label(job)}")
    return embed


def problem_embed(text: str, *, title: str = "Could not generate") -> discord.Embed:
    return discord.Embed(title=title, description=cut(text, DESCRIPTION_LIMIT), colour=PROBLEM)


def fenced(text: str, limit: int) -> str:
    """`text` in a code block of at most `limit` characters, which nothing in it can close: a backtick in the
    text is followed by a zero-width space, so no run of three can form (inside a code block a backslash
    escapes nothing)."""
    neutral = text.replace("`", "`\u200b")
    return "```\n" + cut(neutral, limit - 8) + "\n```"


def prompt_embed(prompt: str, locale: i18n.LocaleLike) -> discord.Embed:
    """A prompt repeated to the member who wrote it (in full, as far as an embed allows), in a code block it
    cannot break out of: so that a refused or failed prompt can be copied and reworded rather than typed again.
    Its own embed, since an embed's description holds 4,096 characters (a message's text, 2,000)."""
    title = i18n.translate("embed.your_prompt", locale)
    return discord.Embed(title=title, description=fenced(prompt, DESCRIPTION_LIMIT), colour=PROBLEM)


def echo_prompt(prompt: str | None, locale: i18n.LocaleLike) -> list[discord.Embed]:
    """The embeds that repeat a prompt with a refusal or a failure: none when there is no prompt to repeat."""
    return [prompt_embed(prompt, locale)] if prompt and prompt.strip() else []


def shown_prompt(message: discord.Message | None) -> str | None:
    """The prompt on one of Imagine's result messages (its first embed's description), read without I/O: the
    whole prompt on a result (up to RESULT_PROMPT_LIMIT), its start on /show's; None if the message has none."""
    if message is None or not message.embeds:
        return None
    return message.embeds[0].description or None
