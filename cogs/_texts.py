"""What members and admins read about refusals, failures and quotas: every such text is made here, once.

The layers below hand over data (a `Refusal`, a `Failed` event, a `RuleUsage`); this module turns it into
words, so that the same situation reads the same wherever it is met. Times are Discord timestamps, which every
member sees in their own time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import discord

from cogs._limits import FIELD_VALUE_LIMIT, MESSAGE_LIST_LIMIT
from generation.alerts import AlertKind
from generation.events import Failed, FailureKind
from generation.refusals import (
    AttachmentTooLarge,
    AttachmentUnreadable,
    ChannelNotAllowed,
    CoolingDown,
    DaysReversed,
    FormExpired,
    ImageGoneFromMessage,
    InvalidDay,
    LastModel,
    MemberMissing,
    MemberNotExpected,
    MessageHasNoImages,
    ModelNotOffered,
    NotInServer,
    NoUsableBlockedWord,
    OptionNotOffered,
    ParentUnknown,
    PromptBlocked,
    PromptEmpty,
    PromptTooLong,
    QuotaExceeded,
    ReferencesExpired,
    ReferencesNotSaved,
    ReferenceUnusable,
    Refusal,
    Restarting,
    RoleMissing,
    RoleNotExpected,
    ServerNotAllowed,
    TooManyBlockedWords,
    TooManyImages,
    TooManyReferences,
    Unavailable,
)
from storage.jobs import Job
from storage.quotas import Period, RuleScope, RuleUsage
from toapis import catalog

UNAVAILABLE: Final = "Imagine cannot generate images right now. Please try again later."
# Names no word: the server's list is its admins' alone, and must not be probed (docs/members.md).
PROMPT_BLOCKED: Final = (
    "Your prompt contains something this server does not allow, so it was not sent. Nothing was counted. "
    "Reword it and try again."
)
NOT_COUNTED: Final = "Your images were not counted."
GENERIC: Final = "Something went wrong on Imagine's side. Please try again in a moment."
NOT_POSTABLE: Final = (
    "Imagine may not post in this channel: the images are shown here while this reply can be edited (15 "
    "minutes); after that they are sent to you by direct message."
)


@dataclass(frozen=True)
class PeriodWords:
    """How a quota period is named: `current` ("today") and `per` ("per day")."""

    current: str
    per: str


PERIODS: Final = {
    Period.DAY: PeriodWords("today", "per day"),
    Period.WEEK: PeriodWords("this week", "per week"),
    Period.MONTH: PeriodWords("this month", "per month"),
}


def _either(values: tuple[str, ...]) -> str:
    """ "1", "1 to 4" for a run, "1, 2 or 4" otherwise."""
    numbers = [int(value) for value in values]
    if len(numbers) == 1:
        return values[0]
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]} to {numbers[-1]}"
    return ", ".join(values[:-1]) + f" or {values[-1]}"


def model_label(model_id: str) -> str:
    """A model's readable name ("GPT Image 2"), its id if the catalog no longer knows it."""
    try:
        return catalog.get_model(model_id).name
    except catalog.UnknownModelError:
        return model_id


def aspect_label(aspect: str) -> str:
    """An aspect ratio as members read it: "Widescreen 16:9"."""
    known = catalog.ASPECTS.get(aspect)
    return known.name if known is not None else aspect


def resolution_label(resolution: str) -> str:
    """A resolution tier as members read it: "2K"."""
    known = catalog.RESOLUTIONS.get(resolution)
    return known.name if known is not None else resolution.upper()


def shape_label(job: Job) -> str:
    """A job's model, aspect and resolution in a few words: "GPT Image 2 · Widescreen 16:9 · 2K"."""
    return f"{model_label(job.model)} · {aspect_label(job.aspect)} · {resolution_label(job.resolution)}"


def noun(count: int, singular: str) -> str:
    """The noun for `count` things: `image` for 1, `images` otherwise."""
    return singular if count == 1 else singular + "s"


def plural(count: int, singular: str) -> str:
    """`1 image`, `2 images`, `1,250 images`."""
    return f"{count:,} {noun(count, singular)}"


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


# -- refusals ------------------------------------------------------------------------------------------------


def refusal_text(refusal: Refusal) -> str:
    """The one text for each refusal: what happened and what to do."""
    match refusal:
        case NotInServer():
            return "This works in servers only."
        case ServerNotAllowed():
            return "Imagine is not enabled in this server."
        case Restarting():
            return "Imagine is restarting. Please try again in a minute."
        case Unavailable():
            return UNAVAILABLE
        case ChannelNotAllowed(allowed=allowed):
            places = channel_list(allowed, limit=MESSAGE_LIST_LIMIT)
            return f"/imagine is not used in this channel. In this server, use it in {places}."
        case CoolingDown(seconds=seconds):
            when = discord.utils.format_dt(datetime.now(UTC) + timedelta(seconds=seconds), "R")
            return f"You can use /imagine again {when}."
        case PromptEmpty():
            return "Your prompt is empty: describe the image you want."
        case PromptBlocked():
            return PROMPT_BLOCKED
        case PromptTooLong(length=length, limit=limit):
            return f"Your prompt is {length:,} characters long; the limit is {limit:,}. Shorten it and try again."
        case LastModel(model=model):
            return f"{model} is the only model offered here: add another first, or use `clear` to offer them all."
        case ModelNotOffered(given=given, offered=offered):
            return f"This server does not offer the model {given!r}. It offers: {', '.join(offered)}."
        case OptionNotOffered(option="aspect", model=model, offered=offered):
            return f"{model} offers the aspect ratios {', '.join(offered)}: choose one of them."
        case OptionNotOffered(option="resolution", model=model, offered=offered):
            return f"{model} offers the resolutions {', '.join(o.upper() for o in offered)}: choose one of them."
        case OptionNotOffered(option="n", model=model, offered=offered):
            return f"{model} makes {_either(offered)} image{'s' if offered[-1] != '1' else ''} per request."
        case OptionNotOffered(model=model, offered=offered):
            return f"{model} does not offer that: it takes {', '.join(offered)}."
        case TooManyImages(limit=1):
            return "This server allows one image per request: set n to 1."
        case TooManyImages(limit=limit):
            return f"This server allows 1 to {limit} images per request: choose n within that."
        case TooManyReferences(given=given, limit=limit):
            return f"At most {limit} reference images can be used; you gave {given}."
        case AttachmentTooLarge(position=position, size=size, limit=limit):
            return (
                f"Image {position} is {size / 1_000_000:.0f} MB; reference images can be at most "
                f"{limit // 1_000_000} MB."
            )
        case AttachmentUnreadable(position=position):
            return f"Imagine could not download image {position} from Discord. Attach it again and retry."
        case ReferenceUnusable(position=position, count=count, problem=problem):
            label = "Your image" if count == 1 else f"Image {position}"
            return f"{label} {problem}."
        case MessageHasNoImages(forwarded=True):
            return "The message that was forwarded here has no images. Use this on a message with images."
        case MessageHasNoImages():
            return "That message has no images. Use this on a message with JPEG, PNG, WebP or GIF images."
        case FormExpired():
            return "This form has expired. Use Imagine from images on the message again."
        case ImageGoneFromMessage():
            return "That image is no longer on this message."
        case ParentUnknown(action=action):
            return f"Imagine no longer knows the request behind these images, so they cannot be {action}."
        case ReferencesExpired(retention_days=days):
            return (
                f"The reference images of this request are no longer kept (they are deleted after {days} days), "
                "so it cannot be re-rolled. Start a new /imagine instead."
            )
        case QuotaExceeded(usage=usage, requested=requested, weight=weight):
            return quota_refusal(usage, requested, weight)
        case ReferencesNotSaved():
            return "Imagine could not keep your reference images. Please try again."
        case InvalidDay(option=option, given=given):
            return f"`{option}` must be a date like 2026-11-01, not {given!r}."
        case DaysReversed():
            return "`start` must not be after `end`."
        case RoleMissing():
            return "Choose the `role` whose rule to remove."
        case RoleNotExpected():
            return "A `role` is only for `scope: role`."
        case MemberMissing():
            return "Choose the `member` whose own limit to remove."
        case MemberNotExpected():
            return "A `member` is only for `scope: member-override`."
        case TooManyBlockedWords(limit=limit, room=0):
            return f"This server already blocks {limit:,} words or phrases, the most it can: remove some first."
        case TooManyBlockedWords(limit=limit, room=room):
            return f"A server can block at most {limit:,} words or phrases: only {room:,} more fit. Nothing was added."
        case NoUsableBlockedWord(given=given):
            shown = ", ".join(f"`{entry[:40]}`" for entry in given[:10])
            return (
                f"Nothing to block in {shown}: an entry needs letters or digits (at least two, except in Chinese, "
                "Japanese or Thai), and at most 100 characters. Separate several entries with commas."
            )
    raise TypeError(f"no text for the refusal {type(refusal).__name__}")


# -- quotas --------------------------------------------------------------------------------------------------


def rule_name(usage: RuleUsage) -> str:
    """The rule a member met, in their terms: "your limit for today"."""
    period = PERIODS[usage.period].current
    if usage.scope is RuleScope.SERVER:
        return f"this server's limit for {period}"
    if usage.scope is RuleScope.GLOBAL:
        return f"Imagine's overall limit for {period}"
    if usage.scope is RuleScope.SERVER_CAP:
        return f"the bot owner's cap on this server for {period}"
    if usage.scope is RuleScope.MEMBER_CAP:
        return f"the bot owner's cap on each member for {period}"
    if usage.scope is RuleScope.ROLE:
        return f"the limit of your role <@&{usage.role_id}> for {period}"
    if usage.scope is RuleScope.MEMBER_OVERRIDE:
        return f"the limit set for you for {period}"
    return f"your limit for {period}"


def quota_refusal(usage: RuleUsage | None, requested: int, weight: int = 1) -> str:
    """Which rule refused, what the request would have counted as, what is left, and when it resets (a Discord
    timestamp each member sees locally)."""
    if usage is None:
        return "A quota was reached."
    if usage.limit == 0:
        # A limit of 0 is a switch, not a budget: it does not come back when the period turns.
        return f"Image generation is turned off by {rule_name(usage)}. A server admin can change that with /quota."
    resets = discord.utils.format_dt(usage.resets_at, "R")
    left = usage.remaining
    if left == 0:
        return f"You have reached {rule_name(usage)} ({plural(usage.limit, 'image')}). It resets {resets}."
    asked = plural(requested, "image")
    if weight > 1:
        asked += f", which count as {requested * weight:,} at this model and resolution"
    return (
        f"You asked for {asked}, but only {left:,} of {rule_name(usage)} "
        f"({usage.limit:,}) {'is' if left == 1 else 'are'} left. Ask for fewer, or wait until it resets {resets}."
    )


def cap_note(scope: RuleScope, cap: int | None) -> str:
    """What a rule set above the operator's daily cap really allows ("" when no cap bounds it)."""
    if cap is None:
        return ""
    whom = "this server" if scope is RuleScope.SERVER else "each member"
    return f"\nThe bot's owner caps {whom} at {plural(cap, 'image')} a day, so that is the most it can use in a day."


def limit_text(limit: int, period: Period) -> str:
    """A rule's limit as admins read it: "25 images per day"."""
    return "no images (generation off)" if limit == 0 else f"{plural(limit, 'image')} {PERIODS[period].per}"


def usage_line(usage: RuleUsage) -> str:
    """One rule, in the member's terms: whose limit, used, left, and when it resets (in their own time zone)."""
    if usage.scope is RuleScope.SERVER:
        whose = "The server's pool"
    elif usage.scope is RuleScope.GLOBAL:
        whose = "Imagine's overall limit"
    elif usage.scope is RuleScope.SERVER_CAP:
        whose = "The bot owner's cap on this server"
    elif usage.scope is RuleScope.MEMBER_CAP:
        whose = "The bot owner's cap on you"
    elif usage.scope is RuleScope.ROLE:
        whose = f"Your limit from <@&{usage.role_id}>"
    elif usage.scope is RuleScope.MEMBER_OVERRIDE:
        whose = "Your own limit"
    else:
        whose = "Your limit"
    if usage.limit == 0:
        return f"**{whose}**: generation is off (a server admin can change that)."
    resets = discord.utils.format_dt(usage.resets_at, "R")
    return (
        f"**{whose}** {PERIODS[usage.period].current}: {usage.used:,} of {usage.limit:,} used, "
        f"**{usage.remaining:,} left**. Resets {resets}."
    )


# -- failures ------------------------------------------------------------------------------------------------

_FAILURES: Final[dict[FailureKind, str]] = {
    FailureKind.CONTENT_POLICY: (
        "The image service declined this prompt or image under its content policy. Try rewording it."
    ),
    FailureKind.UNAVAILABLE: UNAVAILABLE,
    FailureKind.BAD_REQUEST: "The image service refused this request.",
    FailureKind.UPSTREAM: "The image service is having trouble.",
    FailureKind.TASK_FAILED: "The image service could not generate this image.",
    FailureKind.TASK_LOST: "The image service lost track of this job.",
    FailureKind.TIMED_OUT: "The image service did not finish this job within a day.",
    FailureKind.DOWNLOAD: "The images were generated but could not be downloaded.",
    FailureKind.DELIVERY: "The images could not be posted here.",
    FailureKind.UNDELIVERABLE: (
        "The images were made, but Imagine could neither post them in this channel nor send them to you by "
        "direct message. They are kept for you for a while."
    ),
    FailureKind.CANCELLED: "Cancelled.",
    FailureKind.REFERENCES_GONE: "The reference images of this request are no longer kept.",
    FailureKind.INTERNAL: "Something went wrong on Imagine's side.",
}


def failure_text(event: Failed) -> str:
    """What the member reads when their job failed: what happened, and whether their images were counted.

    One fixed text per kind of failure: the image service's own words never reach a member (they may carry
    anything, an internal host name included); the log and the usage log keep them."""
    if event.details_lost:
        # Told after a restart: what went wrong was not kept, only whether it was counted.
        return "This request could not be completed." + (f" {NOT_COUNTED}" if event.refunded else "")
    kind = event.kind
    if kind is FailureKind.TIMED_OUT and event.job.task_id is None:
        # Its submit was never confirmed, and a day of look-ups by business id did not say.
        head = "Imagine could not find out whether the image service accepted this job."
    elif kind is FailureKind.BAD_REQUEST and event.reference_position is not None:
        head = f"The image service refused reference image {event.reference_position}."
    elif kind is FailureKind.CONTENT_POLICY and event.policy_category is not None:
        head = (
            "The image service declined this prompt or image under its content policy "
            f"({event.policy_category}). Try rewording it."
        )
    else:
        head = _FAILURES[kind]
    if kind is FailureKind.UPSTREAM:
        return f"{head} Your images were not counted; please try again in a few minutes."
    if kind is FailureKind.DOWNLOAD:
        return f"{head} They stay counted, since they were billed."
    if kind is FailureKind.TIMED_OUT:
        return f"{head} The images stay counted, since it may have been billed."
    if event.refunded and kind is not FailureKind.DELIVERY:
        return f"{head} {NOT_COUNTED}"
    return head


# -- alerts in servers' log channels -------------------------------------------------------------------------

_SERVER_ALERTS: Final[dict[AlertKind, str]] = {
    AlertKind.API_KEY_REJECTED: "⚠️ Generation is paused by a problem the bot's owner must fix. Nothing is counted.",
    AlertKind.BALANCE_EXHAUSTED: "⚠️ Generation is paused by a problem the bot's owner must fix. Nothing is counted.",
    AlertKind.UPSTREAM_DOWN: (
        "⚠️ The image service is not answering: /imagine is paused until it recovers. Nothing is counted."
    ),
    AlertKind.UPSTREAM_BACK: "✅ Image generation works again.",
}


def server_alert_text(kind: AlertKind) -> str:
    """What a server's admins read in their log channel about an operator alert: fixed, never the details."""
    return _SERVER_ALERTS[kind]


# -- the moderation log --------------------------------------------------------------------------------------

MOD_LOG_BLOCKED: Final = "Blocked word: the prompt contains a word or phrase on this server's list."


def mod_log_policy_reason(category: str | None) -> str:
    """Why the image service refused a prompt, as a fixed category (never its own words)."""
    named = f" ({category})" if category else ""
    return f"Content policy of the image service{named}: the service declined the prompt or its images."


def mod_log_status(settings_on: bool, log_channel_id: int | None) -> str:
    """Where the moderation log goes, for `/imagine-settings`."""
    if not settings_on:
        return "off"
    return f"on, in <#{log_channel_id}>" if log_channel_id else "on, but no log channel is set"
