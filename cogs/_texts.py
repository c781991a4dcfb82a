"""What members and admins read about refusals, failures and quotas: every such text is made here, once.

The layers below hand over data (a `Refusal`, a `Failed` event, a `RuleUsage`); this module turns it into
words, so that the same situation reads the same wherever it is met. Times are Discord timestamps, which every
member sees in their own time zone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final

import discord

import i18n
from cogs._limits import ECHO_LIMIT, FIELD_VALUE_LIMIT, MESSAGE_LIST_LIMIT, cut
from generation.alerts import AlertKind
from generation.events import Failed, FailureKind
from generation.refusals import (
    AttachmentTooLarge,
    AttachmentUnreadable,
    ChannelNotAllowed,
    ChannelNotPostable,
    ChatOff,
    CoolingDown,
    DaysReversed,
    FormExpired,
    ImageGoneFromMessage,
    InlineOptionInvalid,
    InvalidDay,
    JobAgeRestricted,
    JobChannelHidden,
    JobNotFound,
    JobReferenceInvalid,
    JobWithoutResult,
    LastModel,
    MemberMissing,
    MemberNotExpected,
    MessageHasNoImages,
    ModelNotOffered,
    NotInServer,
    NotYourJob,
    NoUsableBlockedWord,
    OptionNotOffered,
    ParentUnknown,
    PromptBlocked,
    PromptEmpty,
    PromptTooLong,
    QuotaExceeded,
    ReferencesExpired,
    ReferenceSideTooShort,
    ReferencesNotSaved,
    ReferenceTooElongated,
    ReferenceUnusable,
    Refusal,
    ReplyTargetHidden,
    Restarting,
    ResultGone,
    RoleMissing,
    RoleNotExpected,
    ServerNotAllowed,
    TooManyBlockedWords,
    TooManyImages,
    TooManyReferences,
    Unavailable,
)
from i18n import LocaleLike
from storage.jobs import Job, JobState
from storage.quotas import Period, RuleScope, RuleUsage
from toapis import catalog


def _either(values: tuple[str, ...], locale: LocaleLike) -> str:
    """ "1", "1 to 4" for a run, "1, 2 or 4" otherwise."""
    numbers = [int(value) for value in values]
    if len(numbers) == 1:
        return values[0]
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return i18n.translate("list.range", locale, first=values[0], last=values[-1])
    return i18n.join_or(values, locale)


def model_label(model_id: str) -> str:
    """A model's readable name ("GPT Image 2"), its id if the catalog no longer knows it."""
    try:
        return catalog.get_model(model_id).name
    except catalog.UnknownModelError:
        return model_id


def aspect_label(aspect: str, locale: LocaleLike) -> str:
    """An aspect ratio as members read it: "Widescreen 16:9"."""
    if catalog.ASPECTS.get(aspect) is None:
        return aspect
    return i18n.translate(f"aspect.{aspect}", locale)


def resolution_label(resolution: str, locale: LocaleLike) -> str:
    """A resolution tier as members read it: "2K"."""
    if catalog.RESOLUTIONS.get(resolution) is None:
        return resolution.upper()
    return i18n.translate(f"resolution.{resolution}", locale)


def shape_label(job: Job, locale: LocaleLike) -> str:
    """A job's model, aspect and resolution in a few words: "GPT Image 2 · Widescreen 16:9 · 2K"."""
    return f"{model_label(job.model)} · {aspect_label(job.aspect, locale)} · {resolution_label(job.resolution, locale)}"


def duration(seconds: float, locale: LocaleLike) -> str:
    """A short human duration: 8 s, 1 min 05 s, 2 h 03 min, 3 d 4 h."""
    whole = round(seconds)
    if whole < 60:
        return i18n.translate("duration.seconds", locale, seconds=i18n.number(whole, locale))
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return i18n.translate("duration.minutes", locale, minutes=i18n.number(minutes, locale), seconds=f"{secs:02d}")
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return i18n.translate("duration.hours", locale, hours=i18n.number(hours, locale), minutes=f"{minutes:02d}")
    days, hours = divmod(hours, 24)
    return i18n.translate("duration.days", locale, days=i18n.number(days, locale), hours=i18n.number(hours, locale))


def time_left(seconds: float, locale: LocaleLike) -> str:
    """An estimate of the time left, no more precise than it is: "20 s" (up to 5 s more, never 0), "1 min 30 s"
    (to 10 s), "12 min 00 s" (to the minute from 10 minutes)."""
    if seconds <= 55:
        shown = max(5, math.ceil(seconds / 5) * 5)
    elif seconds < 600:
        shown = max(60, round(seconds / 10) * 10)
    else:
        shown = round(seconds / 60) * 60
    return duration(shown, locale)


def sentences(first: str, *more: str, locale: LocaleLike) -> str:
    """Sentences one after the other, as the locale writes them (English: a space between)."""
    text = first
    for sentence in more:
        text = i18n.translate("text.sentences", locale, first=text, second=sentence)
    return text


def channel_list(channel_ids: frozenset[int], locale: LocaleLike, *, limit: int = FIELD_VALUE_LIMIT) -> str:
    """Channel mentions within `limit` characters, never cut inside one; says how many did not fit."""
    mentions = [f"<#{channel}>" for channel in sorted(channel_ids)]
    shown: list[str] = []
    for mention in mentions:
        rest = len(mentions) - len(shown) - 1
        tail = len(i18n.plural("list.and_more", rest, locale, items="")) if rest else 0
        if len(i18n.join([*shown, mention], locale)) + tail > limit:
            break
        shown.append(mention)
    text = i18n.join(shown, locale)
    if len(shown) < len(mentions):
        return i18n.plural("list.and_more", len(mentions) - len(shown), locale, items=text)
    return text


def generic_text(locale: LocaleLike) -> str:
    """What a member reads when something failed on the bot's side that they cannot act on."""
    return i18n.translate("error.generic", locale)


# -- refusals ------------------------------------------------------------------------------------------------

_OPTION_REFUSALS: Final = {"aspect": "refusal.aspect_not_offered", "resolution": "refusal.resolution_not_offered"}
_PARENT_UNKNOWN: Final = {
    "re-rolled": "refusal.parent_unknown.re-rolled",
    "varied": "refusal.parent_unknown.varied",
    "remixed": "refusal.parent_unknown.remixed",
}


def refusal_text(refusal: Refusal, locale: LocaleLike) -> str:
    """The one text for each refusal, in `locale` (the member's: refusals are answered privately): what happened
    and what to do."""

    def t(key: str, **params: object) -> str:
        return i18n.translate(key, locale, **params)

    match refusal:
        case NotInServer():
            return t("refusal.not_in_server")
        case ServerNotAllowed():
            return t("refusal.server_not_allowed")
        case Restarting():
            return t("refusal.restarting")
        case Unavailable():
            return t("refusal.unavailable")
        case ChannelNotAllowed(allowed=allowed, command=command):
            places = channel_list(allowed, locale, limit=MESSAGE_LIST_LIMIT)
            return t("refusal.channel_not_allowed", command=command, places=places)
        case CoolingDown(seconds=seconds):
            when = discord.utils.format_dt(datetime.now(UTC) + timedelta(seconds=seconds), "R")
            return t("refusal.cooling_down", when=when)
        case PromptEmpty():
            return t("refusal.prompt_empty")
        case PromptBlocked():
            return t("refusal.prompt_blocked")
        case PromptTooLong(length=length, limit=limit):
            return t("refusal.prompt_too_long", length=i18n.number(length, locale), limit=i18n.number(limit, locale))
        case LastModel(model=model):
            return t("refusal.last_model", model=model)
        case ModelNotOffered(given=given, offered=offered):
            return t("refusal.model_not_offered", given=repr(_echo(given)), offered=i18n.join(offered, locale))
        case OptionNotOffered(option="aspect" | "resolution" as option, model=model, offered=offered):
            shown = offered if option == "aspect" else tuple(o.upper() for o in offered)
            return t(_OPTION_REFUSALS[option], model=model, offered=i18n.join(shown, locale))
        case OptionNotOffered(option="n", model=model, offered=offered):
            counts = _either(offered, locale)
            return i18n.plural("refusal.n_not_offered", int(offered[-1]), locale, model=model, counts=counts)
        case OptionNotOffered(model=model, offered=offered):
            return t("refusal.option_not_offered", model=model, offered=i18n.join(offered, locale))
        case TooManyImages(limit=1):
            return t("refusal.too_many_images_one")
        case TooManyImages(limit=limit):
            return t("refusal.too_many_images", limit=i18n.number(limit, locale))
        case TooManyReferences(given=given, limit=limit):
            return t("refusal.too_many_references", limit=i18n.number(limit, locale), given=i18n.number(given, locale))
        case AttachmentTooLarge(position=position, size=size, limit=limit):
            return t(
                "refusal.attachment_too_large",
                position=position,
                size=i18n.number(round(size / 1_000_000), locale),
                limit=i18n.number(limit // 1_000_000, locale),
            )
        case AttachmentUnreadable(position=position):
            return t("refusal.attachment_unreadable", position=position)
        case ReferenceUnusable(position=position, count=count, problem=problem, details=details):
            # Sizes in pixels read as they are ("7100×7100"); a byte count in the locale's way ("1,048,576").
            numbers = {
                name: i18n.number(value, locale) if name == "max_bytes" else str(value)
                for name, value in details.items()
            }
            which = "one" if count == 1 else "many"
            return t(f"refusal.image.{problem.value}.{which}", position=position, **numbers)
        case ReferenceSideTooShort(
            position=position, count=count, model=model, width=width, height=height, min_side=min_side
        ):
            key = "refusal.image.side_too_short.one" if count == 1 else "refusal.image.side_too_short.many"
            # Pixels read as they are ("40×10"), as for an image over the pixel limit.
            sides = {"width": str(width), "height": str(height)}
            return i18n.plural(key, min_side, locale, position=position, model=model, **sides)
        case ReferenceTooElongated(position=position, count=count, model=model, max_ratio=max_ratio):
            key = "refusal.image.too_elongated.one" if count == 1 else "refusal.image.too_elongated.many"
            return t(key, position=position, model=model, ratio=max_ratio)
        case MessageHasNoImages(forwarded=True):
            return t("refusal.message_no_images_forwarded")
        case MessageHasNoImages():
            return t("refusal.message_no_images")
        case FormExpired(kind="remix"):
            return t("refusal.form_expired.remix", button=t("button.remix"))
        case FormExpired():
            return t("refusal.form_expired", menu=t("menu.from_images"))
        case ImageGoneFromMessage():
            return t("refusal.image_gone")
        case ParentUnknown(action=action):
            return t(_PARENT_UNKNOWN[action])
        case ReferencesExpired(retention_days=days, action="remixed"):
            return i18n.plural("refusal.references_expired.remixed", days, locale)
        case ReferencesExpired(retention_days=days):
            return i18n.plural("refusal.references_expired", days, locale)
        case JobReferenceInvalid():
            return t("refusal.job_reference_invalid")
        case JobNotFound(reference=reference):
            return t("refusal.job_not_found", reference=reference)
        case NotYourJob():
            return t("refusal.not_your_job")
        case JobChannelHidden():
            return t("refusal.job_channel_hidden")
        case JobAgeRestricted():
            return t("refusal.job_age_restricted")
        case JobWithoutResult(finished=True):
            return t("refusal.job_without_result_finished")
        case JobWithoutResult():
            return t("refusal.job_without_result")
        case ResultGone():
            return t("refusal.result_gone")
        case QuotaExceeded(usage=usage, requested=requested, weight=weight):
            return quota_refusal(usage, requested, locale, weight)
        case ReferencesNotSaved():
            return t("refusal.references_not_saved")
        case InvalidDay(option=option, given=given):
            return t("refusal.invalid_day", option=option, given=repr(_echo(given)))
        case DaysReversed():
            return t("refusal.days_reversed")
        case RoleMissing():
            return t("refusal.role_missing")
        case RoleNotExpected():
            return t("refusal.role_not_expected")
        case MemberMissing():
            return t("refusal.member_missing")
        case MemberNotExpected():
            return t("refusal.member_not_expected")
        case TooManyBlockedWords(limit=limit, room=0):
            return t("refusal.blocked_words_full", limit=i18n.number(limit, locale))
        case TooManyBlockedWords(limit=limit, room=room):
            return t("refusal.blocked_words_too_many", limit=i18n.number(limit, locale), room=i18n.number(room, locale))
        case NoUsableBlockedWord(given=given):
            entries = i18n.join(tuple(f"`{entry[:40]}`" for entry in given[:10]), locale)
            return t("refusal.blocked_words_unusable", entries=entries)
        case ChatOff():
            return t("refusal.chat_off")
        case InlineOptionInvalid(option=option, given=None):
            return t("refusal.inline_option_missing", option=option)
        case InlineOptionInvalid(option=option, given=given):
            return t("refusal.inline_option_invalid", option=option, given=_echo(given or ""))
        case ReplyTargetHidden():
            return t("refusal.reply_target_hidden", menu=t("menu.from_images"))
        case ChannelNotPostable():
            return t("refusal.channel_not_postable")
    raise TypeError(f"no text for the refusal {type(refusal).__name__}")


def _echo(given: str) -> str:
    """What a member typed, as a refusal repeats it: on one line, cut to ECHO_LIMIT."""
    return one_line(given, ECHO_LIMIT)


# -- quotas --------------------------------------------------------------------------------------------------

_RULES: Final = {
    RuleScope.SERVER: "quota.rule.server",
    RuleScope.GLOBAL: "quota.rule.global",
    RuleScope.SERVER_CAP: "quota.rule.server_cap",
    RuleScope.MEMBER_CAP: "quota.rule.member_cap",
    RuleScope.ROLE: "quota.rule.role",
    RuleScope.MEMBER: "quota.rule.member",
    RuleScope.MEMBER_OVERRIDE: "quota.rule.member_override",
}
_WHOSE: Final = {
    RuleScope.SERVER: "usage.whose.server",
    RuleScope.GLOBAL: "usage.whose.global",
    RuleScope.SERVER_CAP: "usage.whose.server_cap",
    RuleScope.MEMBER_CAP: "usage.whose.member_cap",
    RuleScope.ROLE: "usage.whose.role",
    RuleScope.MEMBER: "usage.whose.member",
    RuleScope.MEMBER_OVERRIDE: "usage.whose.member_override",
}


def images(count: int, locale: LocaleLike) -> str:
    """`1 image`, `2 images`, `1,250 images`, in `locale`."""
    return i18n.plural("quota.images", count, locale)


def current_period(period: Period, locale: LocaleLike) -> str:
    """The period a rule counts now: "today", "this week", "this month"."""
    return i18n.translate(f"period.current.{period.value}", locale)


def rule_name(usage: RuleUsage, locale: LocaleLike) -> str:
    """The rule a member met, in their terms: "your limit for today"."""
    return i18n.translate(_RULES[usage.scope], locale, period=current_period(usage.period, locale), role=usage.role_id)


def quota_refusal(usage: RuleUsage | None, requested: int, locale: LocaleLike, weight: int = 1) -> str:
    """Which rule refused, what the request would have counted as, what is left, what to do, and when it resets
    (a Discord timestamp each member sees locally). `requested`: the images asked for; `weight`: what each counts
    as (docs/members.md)."""
    if usage is None:
        return i18n.translate("quota.refusal.unknown", locale)
    rule = rule_name(usage, locale)
    if usage.limit == 0:
        # A limit of 0 is a switch, not a budget: it does not come back when the period turns.
        return i18n.translate("quota.refusal.off", locale, rule=rule)
    resets = discord.utils.format_dt(usage.resets_at, "R")
    asked = asked_images(requested, weight, locale)
    if usage.remaining == 0:
        # At one image each, what was asked adds nothing to "nothing is left"; at more, it says why 1 is too many.
        key = "quota.refusal.reached_weighted" if weight > 1 else "quota.refusal.reached"
        return i18n.translate(key, locale, asked=asked, rule=rule, images=images(usage.limit, locale), resets=resets)
    left = i18n.plural(
        "quota.refusal.left", usage.remaining, locale, asked=asked, rule=rule, limit=i18n.number(usage.limit, locale)
    )
    # Fewer images is no way out for one image; a lower resolution none for images that count as one each.
    if weight > 1:
        advice = "quota.refusal.advice.fewer_or_lower" if requested > 1 else "quota.refusal.advice.lower"
    else:
        advice = "quota.refusal.advice.fewer"
    return sentences(left, i18n.translate(advice, locale, resets=resets), locale=locale)


def asked_images(requested: int, weight: int, locale: LocaleLike) -> str:
    """What a request asked for: "2 images", or "1 image, which counts as 4 images at this model and resolution"."""
    if weight == 1:
        return images(requested, locale)
    return i18n.plural("quota.refusal.weighted", requested, locale, weighted=images(requested * weight, locale))


def cap_note(cap_scope: RuleScope | None, cap: int | None, locale: LocaleLike) -> str:
    """What a rule set above the operator's daily cap (`SERVER_CAP` or `MEMBER_CAP`) really allows ("" when no cap
    bounds it), on a line of its own."""
    if cap is None or cap_scope is None:
        return ""
    if cap_scope is RuleScope.SERVER_CAP:
        return "\n" + i18n.translate("quota.cap_note.server", locale, images=images(cap, locale))
    return "\n" + i18n.translate("quota.cap_note.member", locale, images=images(cap, locale))


def limit_text(limit: int, period: Period, locale: LocaleLike) -> str:
    """A rule's limit as admins read it: "25 images per day"."""
    if limit == 0:
        return i18n.translate("quota.limit.off", locale)
    return i18n.translate(f"quota.limit.{period.value}", locale, images=images(limit, locale))


def usage_line(usage: RuleUsage, locale: LocaleLike) -> str:
    """One rule, in the member's terms: whose limit, used, left, and when it resets (in their own time zone)."""
    whose = i18n.translate(_WHOSE[usage.scope], locale, role=usage.role_id)
    if usage.limit == 0:
        return i18n.translate("usage.line.off", locale, whose=whose)
    return i18n.translate(
        "usage.line",
        locale,
        whose=whose,
        period=current_period(usage.period, locale),
        used=i18n.number(usage.used, locale),
        limit=i18n.number(usage.limit, locale),
        left=i18n.number(usage.remaining, locale),
        resets=discord.utils.format_dt(usage.resets_at, "R"),
    )


# -- failures ------------------------------------------------------------------------------------------------

_FAILURES: Final[dict[FailureKind, str]] = {
    FailureKind.CONTENT_POLICY: "failure.content_policy",
    FailureKind.UNAVAILABLE: "failure.unavailable",
    FailureKind.BAD_REQUEST: "failure.bad_request",
    FailureKind.UPSTREAM: "failure.upstream",
    FailureKind.TASK_FAILED: "failure.task_failed",
    FailureKind.TASK_LOST: "failure.task_lost",
    FailureKind.TIMED_OUT: "failure.timed_out",
    FailureKind.DOWNLOAD: "failure.download",
    FailureKind.DELIVERY: "failure.delivery",
    FailureKind.UNDELIVERABLE: "failure.undeliverable",
    FailureKind.CANCELLED: "failure.cancelled",
    FailureKind.REFERENCES_GONE: "failure.references_gone",
    FailureKind.INTERNAL: "failure.internal",
}
# What follows the failure: whether the images were counted.
_COUNTED: Final[dict[FailureKind, str]] = {
    FailureKind.UPSTREAM: "failure.counted.upstream",
    FailureKind.DOWNLOAD: "failure.counted.download",
    FailureKind.TIMED_OUT: "failure.counted.timed_out",
}


def failure_title(event: Failed, locale: LocaleLike) -> str:
    """The title over a failure's text."""
    if event.kind is FailureKind.CANCELLED:
        return i18n.translate("failure.title.cancelled", locale)
    return i18n.translate("failure.title", locale)


def failure_text(event: Failed, locale: LocaleLike) -> str:
    """What the member reads when their job failed: what happened, and whether their images were counted, in
    `locale` (the job's: a failure is shown where its progress was).

    One fixed text per kind of failure: the image service's own words never reach a member (they may carry
    anything, an internal host name included); the log and the usage log keep them."""

    def t(key: str, **params: object) -> str:
        return i18n.translate(key, locale, **params)

    if event.details_lost:
        # Told after a restart: what went wrong was not kept, only whether it was counted.
        lost = t("failure.details_lost")
        return sentences(lost, t("failure.not_counted"), locale=locale) if event.refunded else lost
    kind = event.kind
    if kind is FailureKind.TIMED_OUT and event.job.task_id is None:
        # Its submit was never confirmed, and a day of look-ups by business id did not say.
        head = t("failure.timed_out_unconfirmed")
    elif kind is FailureKind.BAD_REQUEST and event.reference_position is not None:
        head = t("failure.bad_reference", position=i18n.number(event.reference_position, locale))
    elif kind is FailureKind.CONTENT_POLICY and (category := policy_category_text(event.policy_category, locale)):
        head = t("failure.content_policy_category", category=category)
    else:
        head = t(_FAILURES[kind])
    if kind in _COUNTED:
        return sentences(head, t(_COUNTED[kind]), locale=locale)
    if event.refunded and kind is not FailureKind.DELIVERY:
        return sentences(head, t("failure.not_counted"), locale=locale)
    return head


# -- alerts in servers' log channels -------------------------------------------------------------------------

_SERVER_ALERTS: Final[dict[AlertKind, str]] = {
    AlertKind.API_KEY_REJECTED: "alert.paused",
    AlertKind.BALANCE_EXHAUSTED: "alert.paused",
    AlertKind.UPSTREAM_DOWN: "alert.upstream_down",
    AlertKind.UPSTREAM_BACK: "alert.upstream_back",
}


def server_alert_text(kind: AlertKind, locale: LocaleLike) -> str:
    """What a server's admins read in their log channel about an operator alert, in `locale` (the server's):
    fixed, never the details."""
    return i18n.translate(_SERVER_ALERTS[kind], locale)


# -- finding a job again: /history and /show's suggestions ---------------------------------------------------

# Lines are one job each: the prompt is cut to its start, on one line.
HISTORY_PROMPT_LIMIT: Final = 60


def one_line(text: str, limit: int) -> str:
    """A member's text on one line (runs of blanks and line breaks become one space), cut to `limit`."""
    return cut(" ".join(text.split()), limit)


def job_status(job: Job, locale: LocaleLike) -> str:
    """Where a job stands, in a word or two."""
    if job.state is JobState.COMPLETED:
        if job.result_deleted_at is not None:
            return i18n.translate("history.status.deleted", locale)
        if job.images_delivered >= job.n:
            return i18n.translate("history.status.delivered", locale)
        delivered, asked = i18n.number(job.images_delivered, locale), i18n.number(job.n, locale)
        return i18n.translate("history.status.partly_delivered", locale, delivered=delivered, asked=asked)
    if job.state is JobState.FAILED:
        if job.error_code == FailureKind.CANCELLED.value:
            return i18n.translate("history.status.cancelled", locale)
        return i18n.translate("history.status.failed", locale)
    if job.state is JobState.QUEUED:
        return i18n.translate("history.status.waiting", locale)
    return i18n.translate("history.status.in_progress", locale)


def sent_by_dm(job: Job) -> bool:
    """Whether the job's images went to its member's direct messages: a result outside the reply, for a channel
    the bot may not post in (known at intake, or learnt when the channel refused: `JobRepository.record_delivery`).
    Results sent by DM before Imagine kept that are taken for channel posts."""
    return not job.channel_postable and job.result_message_id != job.reply_message_id


def result_link(job: Job, dm_channel_id: int | None = None) -> str | None:
    """A link that jumps to the job's images, once they were posted: in the server's channel, or in the member's
    direct messages (`dm_channel_id`, the DM channel with that member; no link without it)."""
    if job.state is not JobState.COMPLETED or job.result_message_id is None or job.result_deleted_at is not None:
        return None
    if sent_by_dm(job):
        return f"https://discord.com/channels/@me/{dm_channel_id}/{job.result_message_id}" if dm_channel_id else None
    return f"https://discord.com/channels/{job.guild_id}/{job.channel_id}/{job.result_message_id}"


def history_line(job: Job, reference: str, locale: LocaleLike, *, dm_channel_id: int | None = None) -> str:
    """One job in /history: its reference, when, the prompt's start, model and aspect, status, and a jump link."""
    prompt = discord.utils.escape_markdown(one_line(job.prompt, HISTORY_PROMPT_LIMIT))
    when = discord.utils.format_dt(job.created_at, "R")
    line = f"`{reference}` {when} · {prompt} · {model_label(job.model)} · {job.aspect} · {job_status(job, locale)}"
    link = result_link(job, dm_channel_id)
    return f"{line} · [{i18n.translate('history.images_link', locale)}]({link})" if link else line


def age(seconds: float, locale: LocaleLike) -> str:
    """How long ago, in the largest whole unit: "just now", "5 min ago", "3 h ago", "2 days ago"."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return i18n.translate("age.now", locale)
    if minutes < 60:
        return i18n.plural("age.minutes", minutes, locale)
    hours = minutes // 60
    if hours < 48:
        return i18n.plural("age.hours", hours, locale)
    return i18n.plural("age.days", hours // 24, locale)


def suggestion_name(job: Job, reference: str, seconds_ago: float, *, limit: int, locale: LocaleLike) -> str:
    """A job as /show suggests it (within Discord's `limit` for a choice's name): reference, prompt, age."""
    tail = f" · {age(seconds_ago, locale)}"
    head = f"{reference} · "
    return head + one_line(job.prompt, limit - len(head) - len(tail)) + tail


# -- /help ---------------------------------------------------------------------------------------------------


def help_how(locale: LocaleLike) -> str:
    """How members use the bot: the commands, the context menu and the result's buttons, by their own names."""
    return i18n.translate(
        "help.how",
        locale,
        menu=i18n.translate("menu.from_images", locale),
        reroll=i18n.translate("button.reroll", locale),
        remix=i18n.translate("button.remix", locale),
        vary=i18n.translate("button.vary_any", locale),
        delete=i18n.translate("button.delete", locale),
    )


def help_places(allowed: frozenset[int], locale: LocaleLike) -> str:
    """Where the bot works in this server."""
    if not allowed:
        return i18n.translate("help.places.every", locale)
    room = FIELD_VALUE_LIMIT - len(i18n.translate("help.places.only", locale, channels=""))
    return i18n.translate("help.places.only", locale, channels=channel_list(allowed, locale, limit=room))


def help_cooldown(seconds: int, locale: LocaleLike) -> str:
    """The server's cooldown, as /help states it."""
    if not seconds:
        return i18n.translate("help.cooldown.none", locale)
    return i18n.translate("help.cooldown", locale, duration=duration(seconds, locale))


# -- the moderation log --------------------------------------------------------------------------------------


# The content-policy categories toapis/ reads from a refusal (toapis/contract.py, by id), as the catalog names them.
_POLICY_CATEGORIES: Final[dict[str, str]] = {
    "sexual": "failure.category.sexual",
    "minors": "failure.category.minors",
    "violence": "failure.category.violence",
    "self-harm": "failure.category.self_harm",
    "hate": "failure.category.hate",
    "harassment": "failure.category.harassment",
    "illegal": "failure.category.illegal",
    "real people": "failure.category.real_people",  # not member-facing
}


def policy_category_text(category: str | None, locale: LocaleLike) -> str | None:
    """A content-policy category in the locale's words; None without one, or for one the catalog does not name
    (then the text without a category is shown, rather than an English id)."""
    key = _POLICY_CATEGORIES.get(category or "")
    return i18n.translate(key, locale) if key else None


def mod_log_policy_reason(category: str | None, locale: LocaleLike) -> str:
    """Why the image service refused a prompt, as a fixed category (never its own words)."""
    if text := policy_category_text(category, locale):
        return i18n.translate("modlog.reason.policy_category", locale, category=text)
    return i18n.translate("modlog.reason.policy", locale)


def mod_log_status(settings_on: bool, log_channel_id: int | None, locale: LocaleLike) -> str:
    """Where the moderation log goes, for `/imagine-settings`."""
    if not settings_on:
        return i18n.translate("settings.off", locale)
    if log_channel_id:
        return i18n.translate("settings.mod_log.on_in", locale, channel=log_channel_id)
    return i18n.translate("settings.mod_log.on_no_channel", locale)


def permission_names(flags: Iterable[str], locale: LocaleLike) -> list[str]:
    """Discord permissions (discord.py's flag names, "manage_guild") by the names Discord's own client shows in
    `locale` ("Manage Server"); a permission without a name in the catalog by its flag, in words."""
    keys = i18n.message_keys()
    return [
        i18n.translate(f"permission.{flag}", locale) if f"permission.{flag}" in keys else flag.replace("_", " ").title()
        for flag in flags
    ]
