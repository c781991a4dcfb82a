"""What members and admins read about refusals, failures and quotas: every such text is made here, once.

The layers below hand over data (a `Refusal`, a `Failed` event, a `RuleUsage`); this module turns it into
words, so that the same situation reads the same wherever it is met. Times are Discord timestamps, which every
member sees in their own time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import discord

import i18n
from cogs._limits import FIELD_VALUE_LIMIT, MESSAGE_LIST_LIMIT, cut
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
    ReferencesNotSaved,
    ReferenceUnusable,
    Refusal,
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

# The failures' texts (below) are not in the catalog yet: docs/i18n.md says how they move.
UNAVAILABLE: Final = "Imagine cannot generate images right now. Please try again later."
NOT_COUNTED: Final = "Your images were not counted."
NOT_POSTABLE: Final = (
    "Imagine may not post in this channel: the images are shown here while this reply can be edited (15 "
    "minutes); after that they are sent to you by direct message."
)


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
            return t("refusal.model_not_offered", given=repr(given), offered=i18n.join(offered, locale))
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
        case ReferenceUnusable(position=position, count=count, problem=problem):
            if count == 1:
                return t("refusal.reference_unusable_one", problem=problem)
            return t("refusal.reference_unusable", position=position, problem=problem)
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
            return t("refusal.invalid_day", option=option, given=repr(given))
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
    raise TypeError(f"no text for the refusal {type(refusal).__name__}")


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
    """Which rule refused, what the request would have counted as, what is left, and when it resets (a Discord
    timestamp each member sees locally)."""
    if usage is None:
        return i18n.translate("quota.refusal.unknown", locale)
    rule = rule_name(usage, locale)
    if usage.limit == 0:
        # A limit of 0 is a switch, not a budget: it does not come back when the period turns.
        return i18n.translate("quota.refusal.off", locale, rule=rule)
    resets = discord.utils.format_dt(usage.resets_at, "R")
    left = usage.remaining
    if left == 0:
        return i18n.translate(
            "quota.refusal.reached", locale, rule=rule, images=images(usage.limit, locale), resets=resets
        )
    asked = images(requested, locale)
    if weight > 1:
        asked = i18n.translate(
            "quota.refusal.weighted", locale, images=asked, weighted=i18n.number(requested * weight, locale)
        )
    return i18n.plural(
        "quota.refusal.left",
        left,
        locale,
        asked=asked,
        rule=rule,
        limit=i18n.number(usage.limit, locale),
        resets=resets,
    )


def cap_note(scope: RuleScope, cap: int | None, locale: LocaleLike) -> str:
    """What a rule set above the operator's daily cap really allows ("" when no cap bounds it), on a line of its
    own."""
    if cap is None:
        return ""
    key = "quota.cap_note.server" if scope is RuleScope.SERVER else "quota.cap_note.member"
    return "\n" + i18n.translate(key, locale, images=images(cap, locale))


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


# -- finding a job again: /history and /show's suggestions ---------------------------------------------------

HISTORY_TITLE: Final = "Your latest jobs"
HISTORY_HEADER: Final = "Newest first, in this server. `/show job:<reference>` posts a job's images here again."
HISTORY_EMPTY: Final = "You have not asked Imagine for images in this server yet."
# Lines are one job each: the prompt is cut to its start, on one line.
HISTORY_PROMPT_LIMIT: Final = 60


def one_line(text: str, limit: int) -> str:
    """A member's text on one line (runs of blanks and line breaks become one space), cut to `limit`."""
    return cut(" ".join(text.split()), limit)


def job_status(job: Job) -> str:
    """Where a job stands, in a word or two."""
    if job.state is JobState.COMPLETED:
        return "delivered" if job.images_delivered >= job.n else f"{job.images_delivered} of {job.n} delivered"
    if job.state is JobState.FAILED:
        return "cancelled" if job.error_code == FailureKind.CANCELLED.value else "failed"
    return "waiting in line" if job.state is JobState.QUEUED else "in progress"


def result_link(job: Job) -> str | None:
    """A link that jumps to the job's images, once they were posted."""
    if job.state is not JobState.COMPLETED or job.result_message_id is None:
        return None
    return f"https://discord.com/channels/{job.guild_id}/{job.channel_id}/{job.result_message_id}"


def history_line(job: Job, reference: str) -> str:
    """One job in /history: its reference, when, the prompt's start, model and aspect, status, and a jump link."""
    prompt = discord.utils.escape_markdown(one_line(job.prompt, HISTORY_PROMPT_LIMIT))
    when = discord.utils.format_dt(job.created_at, "R")
    line = f"`{reference}` {when} · {prompt} · {model_label(job.model)} · {job.aspect} · {job_status(job)}"
    link = result_link(job)
    return f"{line} · [images]({link})" if link else line


def age(seconds: float) -> str:
    """How long ago, in the largest whole unit: "just now", "5 min ago", "3 h ago", "2 days ago"."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h ago"
    return f"{hours // 24} days ago"


def suggestion_name(job: Job, reference: str, seconds_ago: float, *, limit: int) -> str:
    """A job as /show suggests it (within Discord's `limit` for a choice's name): reference, prompt, age."""
    tail = f" · {age(seconds_ago)}"
    head = f"{reference} · "
    return head + one_line(job.prompt, limit - len(head) - len(tail)) + tail


# -- /help ---------------------------------------------------------------------------------------------------

HELP_TITLE: Final = "Imagine"
HELP_INTRO: Final = (
    "Imagine makes images from a description, a *prompt*, with the image models this server offers. Each image "
    "counts against limits this server's admins set."
)
HELP_HOW: Final = "\n".join(
    [
        "`/imagine prompt:<text>`: describe the image. Options: `aspect`, `resolution`, `n` (how many), `model`, "
        "and up to four reference images to guide it.",
        "**Apps → Imagine from images** on a message with images: use them as references.",
        "On a result: **Re-roll** asks again, **Vary** makes new takes on one image, **Delete** removes it.",
        "`/history`: your latest jobs here. `/show job:<reference>`: post a job's images again (the reference is "
        "in the result's footer).",
        "`/usage`: how many images you have left.",
    ]
)
HELP_ADMIN: Final = "\n".join(
    [
        "`/imagine-settings`: the channels where Imagine works, the most images per request, a cooldown, the "
        "models offered and a channel for alerts; `show` lists them.",
        "`/quota`: limits for the server, each member and roles, per day, week or month; `show`, `usage` and "
        "`export` report what was used.",
        "Both need the Manage Server permission.",
    ]
)
HELP_NO_LIMITS: Final = "No limits apply to you in this server."


def images_left_line(left: int) -> str:
    """The last line of a member's standing: what they can make now."""
    return f"You can make **{left:,}** more {noun(left, 'image')} now."


def help_places(allowed: frozenset[int], locale: LocaleLike) -> str:
    """Where Imagine works in this server."""
    return f"Only in {channel_list(allowed, locale, limit=FIELD_VALUE_LIMIT - 8)}" if allowed else "Every channel"


def help_cooldown(seconds: int) -> str:
    """The server's cooldown, as /help states it."""
    return f"{duration(seconds)} between two requests" if seconds else "None"


# -- the welcome ---------------------------------------------------------------------------------------------

WELCOME: Final = "\n".join(
    [
        "Thanks for adding **Imagine**! Members describe an image with `/imagine` and get it in this server.",
        "Admins (Manage Server), two things to set first:",
        "• `/imagine-settings`: the channels where Imagine works (every channel until you list some), the most "
        "images per request, a cooldown, the models offered.",
        "• `/quota`: how many images the server and each member may make per day, week or month (`/quota show` "
        "lists what applies now).",
        "Members start with `/help`.",
    ]
)


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
