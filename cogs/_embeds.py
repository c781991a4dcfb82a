"""The embeds Imagine shows, each within Discord's limits (user text is cut to its field, with an ellipsis), in
the locale of their readers (docs/i18n.md): a job's progress and result in the job's."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

import discord

import i18n
from cogs import _forms
from cogs._limits import DESCRIPTION_LIMIT, FIELD_VALUE_LIMIT, TOTAL_LIMIT, cut
from cogs._texts import aspect_label, duration, model_label, resolution_label, shape_label, time_left
from cogs._texts import images as image_count
from generation.events import Generating, Late, Paused, ProgressEvent, Queued, Submitted, Uploading
from storage.jobs import Job
from toapis import contract

# Progress replies show the prompt's start; a result and a message of /show show it whole (`_describe`).
PROGRESS_PROMPT_LIMIT: Final = 300

WORKING: Final = discord.Colour.blurple()
DONE: Final = discord.Colour.green()
PROBLEM: Final = discord.Colour.red()
WAITING: Final = discord.Colour.orange()

# Nothing Imagine posts pings anyone, except the requester on the channel-message fallback.
NO_MENTIONS: Final = discord.AllowedMentions.none()


BAR_WIDTH: Final = 10


def progress_bar(percent: int, width: int = BAR_WIDTH) -> str:
    """A bar that reads at a glance: ▰▰▰▱▱▱▱▱▱▱ for 30 %. Never full before the end (99 % shows 9 of 10)."""
    filled = max(0, min(width, percent * width // 100))
    return "▰" * filled + "▱" * (width - filled)


def progress_embed(job: Job, event: ProgressEvent) -> discord.Embed:
    """The deferred reply while the job moves: what is happening now, and the prompt for context. In the job's
    locale: the whole channel sees it."""
    locale = job.locale

    def t(key: str, **params: object) -> str:
        return i18n.translate(key, locale, **params)

    colour = WORKING
    if isinstance(event, Queued):
        title = t("progress.title.waiting") if event.place > 1 else t("progress.title.next")
        status = t("progress.queued", place=i18n.number(event.place, locale))
        colour = WAITING
    elif isinstance(event, Uploading):
        title = t("progress.title.uploading")
        status = i18n.plural("progress.uploading", event.references, locale)
    elif isinstance(event, Submitted):
        title = t("progress.title.generating")
        status = t("progress.submitted")
    elif isinstance(event, Generating):
        title = t("progress.title.generating")
        elapsed = duration(event.elapsed, locale)
        if event.percent > 0:
            status = (
                progress_bar(event.percent)
                + "\n"
                + t("progress.generating", percent=i18n.number(event.percent, locale), elapsed=elapsed)
            )
        else:
            status = t("progress.started", elapsed=elapsed)
        if event.remaining is not None:
            status += "\n" + t("progress.remaining", remaining=time_left(event.remaining, locale))
    elif isinstance(event, Late):
        title = t("progress.title.late")
        # A conversation's reply is edited in place for good; an interaction's is replaced by a channel post, or
        # (where the bot may not post) keeps showing the job while it can be edited, then a DM takes over.
        if not job.interaction_token:
            late = "progress.late_in_place"
        elif not job.channel_postable:
            late = "progress.late_not_postable"
        else:
            late = "progress.late"
        status = t(late, elapsed=duration(event.elapsed, locale))
        colour = WAITING
    else:
        assert isinstance(event, Paused)
        title = t("progress.title.paused")
        status = t("progress.paused")
        colour = WAITING
    embed = discord.Embed(title=title, description=status, colour=colour)
    embed.add_field(name=t("embed.prompt"), value=cut(job.prompt, PROGRESS_PROMPT_LIMIT), inline=False)
    if not job.channel_postable:
        embed.add_field(name=t("embed.note"), value=t("progress.not_postable"), inline=False)
    embed.set_footer(text=f"{shape_label(job, locale)} · {image_count(job.n, locale)}")
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
    now: datetime | None = None,
) -> discord.Embed:
    """The result: prompt, model, aspect and resolution, count and what it counted as, time taken, who asked, and
    the job's reference in the footer (what /show takes). In the job's locale.

    `reencoded`: how many images were re-encoded to fit the server's upload limit; `originals`: links to those
    images as the image service keeps them (a day), shown only while it surely still does (`originals_kept`, at
    `now`: a delivery may come late, after a restart).
    """
    locale = job.locale

    def t(key: str, **params: object) -> str:
        return i18n.translate(key, locale, **params)

    embed = discord.Embed(colour=DONE)
    embed.add_field(name=t("result.model"), value=model_label(job.model))
    embed.add_field(name=t("result.aspect"), value=aspect_label(job.aspect, locale))
    embed.add_field(name=t("result.resolution"), value=resolution_label(job.resolution, locale))
    count = i18n.number(images, locale)
    if images != job.n:
        count = t("result.images_of", delivered=count, asked=i18n.number(job.n, locale))
    embed.add_field(name=t("result.images"), value=count)
    embed.add_field(name=t("result.counted_as"), value=image_count(images * job.weight, locale))
    embed.add_field(name=t("result.time"), value=duration(elapsed, locale))
    embed.add_field(name=t("result.requested_by"), value=f"<@{job.user_id}>")
    if reencoded:
        text = i18n.plural("result.reencoded", reencoded, locale)
        if originals and originals_kept(job, now or datetime.now(UTC)):
            links = " ".join(
                f"[{t('result.original', index=index)}]({url})" for index, url in enumerate(originals, start=1)
            )
            text = t("result.reencoded_originals", reencoded=text, links=links)
        embed.add_field(name=t("result.reencoded_title"), value=cut(text, FIELD_VALUE_LIMIT), inline=False)
    footer = [t("result.job", reference=reference)] if reference else []
    if refunded:
        footer.append(i18n.plural("result.refunded", refunded, locale))
    if footer:
        embed.set_footer(text=" · ".join(footer))
    return _describe(embed, job.prompt)


def originals_kept(job: Job, now: datetime) -> bool:
    """Whether the image service surely still keeps the job's results at their URLs: it does for a day after its
    task completed (toapis/contract.py, RESULT_URL_LIFETIME_SECONDS). Imagine keeps no completion time, but the
    task completed after the job was submitted: a day after the submit the links still work, past it they may
    not, and no link is better than a dead one."""
    submitted = job.submit_started_at or job.created_at
    return now - submitted < timedelta(seconds=contract.RESULT_URL_LIFETIME_SECONDS)


def shown_embed(job: Job, *, reference: str, shown_by: int, locale: i18n.LocaleLike) -> discord.Embed:
    """A job's images posted again with /show: the prompt, who asked for them (and who showed them, if
    someone else), the model, and the reference. In `locale`: the channel's public messages'."""
    embed = discord.Embed(colour=DONE)
    embed.add_field(name=i18n.translate("result.requested_by", locale), value=f"<@{job.user_id}>")
    if shown_by != job.user_id:
        embed.add_field(name=i18n.translate("result.shown_by", locale), value=f"<@{shown_by}>")
    job_text = i18n.translate("result.job", locale, reference=reference)
    embed.set_footer(text=f"{job_text} · {shape_label(job, locale)}")
    return _describe(embed, job.prompt)


def _describe(embed: discord.Embed, prompt: str) -> discord.Embed:
    """The embed with the prompt as its description, whole wherever it fits: Remix pre-fills its form, and Re-roll,
    Vary and Remix repeat their refusals before any I/O, from this text (`shown_prompt`). A prompt holds at most
    4,000 characters and the rest of a result or /show embed far less than 2,000, so it is cut (with an
    ellipsis) only if the embed's 6,000 characters in all would be exceeded, which Imagine's own texts never do."""
    room = min(DESCRIPTION_LIMIT, TOTAL_LIMIT - len(embed))
    embed.description = cut(prompt, room)
    return embed


def problem_embed(text: str, *, title: str) -> discord.Embed:
    """A failure: its title and what happened."""
    return discord.Embed(title=title, description=cut(text, DESCRIPTION_LIMIT), colour=PROBLEM)


# Three backticks in a row, wherever they are, end a code block in Discord (a longer fence does not help, as it
# would in CommonMark), and a backslash escapes nothing inside one (docs/discord.md).
_FENCE_BREAKER: Final = re.compile(r"`{3,}")


def _break_run(run: re.Match[str]) -> str:
    """A run of three or more backticks with a zero-width space after every second one ("````" becomes two pairs)."""
    ticks = run.group()
    return "\u200b".join(ticks[start : start + 2] for start in range(0, len(ticks), 2))


def fenced(text: str, limit: int) -> str:
    """`text` in a code block of at most `limit` characters, which nothing in it can close: only runs of three
    or more backticks are broken, by a zero-width space after every second backtick, so the text grows by
    one character per such pair (a prompt's single and double backticks, far the most common, cost nothing).
    Cut, with an ellipsis, only when even that does not fit."""
    neutral = _FENCE_BREAKER.sub(_break_run, text)
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
    whole prompt on a result or a message of /show (`_describe`); on one posted before they showed it whole
    (a result cut it at 3,500 characters, /show at 300), its start ending with an ellipsis. None if the message
    has none."""
    if message is None or not message.embeds:
        return None
    return message.embeds[0].description or None


# The buttons whose request repeats the job on their message: Re-roll, Vary, Remix (cogs/_views.py, cogs/_remix.py).
_REPEATING_BUTTONS: Final = ("imagine:reroll:", "imagine:vary:", "imagine:remix:")
# /imagine's option, and the prompt field of Imagine's forms (Remix, "Imagine from images").
_PROMPT: Final = "prompt"


def request_prompt(interaction: discord.Interaction) -> str | None:
    """The prompt of the request an interaction makes, read without I/O, for an answer that comes before the
    request was read (the allow-list's gate, an unexpected error) to repeat: /imagine's `prompt`, what a form's
    prompt field holds, or the prompt on the result whose Re-roll, Vary or Remix was clicked. None for anything
    else (a command without a prompt, another button)."""
    data: dict[str, object] = dict(interaction.data or {})
    if interaction.type is discord.InteractionType.application_command:
        options = data.get("options")
        for option in options if isinstance(options, list) else []:
            if isinstance(option, dict) and option.get("name") == _PROMPT and isinstance(option.get("value"), str):
                return str(option["value"])
        return None
    if interaction.type is discord.InteractionType.component:
        clicked = str(data.get("custom_id", ""))
        return shown_prompt(interaction.message) if clicked.startswith(_REPEATING_BUTTONS) else None
    if interaction.type is discord.InteractionType.modal_submit:
        typed = _forms.values(interaction).get(_PROMPT)
        return typed if isinstance(typed, str) else None
    return None
