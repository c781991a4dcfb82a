"""What the bot posts, built with the longest inputs in every locale and the pseudo-locale (which lengthens every
text), checked by the fake Discord's own rules for a message body (docs/discord.md)."""

from __future__ import annotations

from datetime import timedelta

import discord
import pytest

import i18n
from cogs._embeds import problem_embed, progress_embed, prompt_embed, result_embed, shown_embed
from cogs._mod_log import entry_embed
from cogs._owed import owed_embeds
from cogs._remix import RemixForm, RemixTarget
from cogs._texts import failure_text, failure_title, mod_log_policy_reason
from cogs.actions import PromptModal
from generation.events import (
    Failed,
    FailureKind,
    Generating,
    Late,
    Paused,
    ProgressEvent,
    Queued,
    Submitted,
    Uploading,
)
from storage.jobs import Job, JobState
from storage.owed_answers import OwedAnswer
from tests import jobs
from tests.fakes._discord_messages import check_message_body
from tests.fakes._discord_modals import check_modal
from toapis import catalog

LOCALES = [*i18n.SUPPORTED, i18n.PSEUDO]
# The longest prompt a member can send, made of what grows when it is shown: backtick runs (broken in a code
# block), pipes and backslashes (escaped in a spoiler).
PROMPT = ("```|\\ a harbour at dawn " * 200)[:4000]
LONGEST_MODEL = max((catalog.get_model(model) for model in catalog.MODELS), key=lambda spec: len(spec.name))


def sendable(*embeds: discord.Embed, content: str | None = None) -> None:
    """Discord would take a message of these embeds (the fake's checks raise 400 50035 otherwise)."""
    body: dict[str, object] = {"embeds": [embed.to_dict() for embed in embeds]}
    if content is not None:
        body["content"] = content
    check_message_body(body)


def a_job(locale: str, **changes: object) -> Job:
    return jobs.a_job(
        prompt=PROMPT,
        locale=locale,
        model=LONGEST_MODEL.id,
        n=4,
        aspect="21:9",
        resolution="4k",
        weight=4,
        user_id=2**63 - 1,
        channel_id=2**63 - 1,
        **changes,
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_a_jobs_progress_result_and_failure_fit_in_every_locale(locale: str) -> None:
    events: list[ProgressEvent] = [
        Queued(1_000),
        Uploading(4),
        Submitted("t"),
        Generating(99, 90_000.0, 86_000.0),
        Late(90_000.0),
        Paused(),
    ]
    for postable in (True, False):
        for token in ("token", None):
            job = a_job(locale, channel_postable=postable, interaction_token=token)
            for event in events:
                sendable(progress_embed(job, event))
    job = a_job(locale, state=JobState.DELIVERING, submit_started_at=jobs.CREATED)
    links = tuple(f"https://files.toapis.example/r/{'x' * 200}-{index}.png" for index in range(1, 5))
    result = result_embed(
        job,
        images=3,
        elapsed=999_999.0,
        refunded=1,
        reencoded=3,
        originals=links,
        reference="0123456789abcdef0123456789abcdef",
        now=jobs.CREATED + timedelta(hours=1),
    )
    assert result.description == PROMPT  # whole, as Remix and the buttons' refusals read it
    sendable(result)
    sendable(shown_embed(job, reference="0123456789abcdef0123456789abcdef", shown_by=1, locale=locale))
    for kind in FailureKind:
        failed = Failed(job, kind, refunded=4, reference_position=4, policy_category="self-harm")
        notice = problem_embed(failure_text(failed, locale), title=failure_title(failed, locale))
        notice.set_footer(text=i18n.translate("result.job", locale, reference="0123456789abcdef0123456789abcdef"))
        sendable(
            notice, prompt_embed(PROMPT, locale), content=i18n.translate("reporter.failed.channel", locale, member=1)
        )


@pytest.mark.parametrize("locale", LOCALES)
def test_a_moderation_log_entry_and_an_owed_answer_fit_in_every_locale(locale: str) -> None:
    entry = entry_embed(
        user_id=2**63 - 1,
        channel_id=2**63 - 1,
        prompt="|" * 4000,
        reason=mod_log_policy_reason("self-harm", locale),
        locale=locale,
    )
    entry.set_footer(text=i18n.translate("result.job", locale, reference="0123456789abcdef0123456789abcdef"))
    sendable(entry)
    owed = OwedAnswer(
        interaction_id=1,
        guild_id=1,
        channel_id=1,
        user_id=1,
        application_id=1,
        interaction_token="t",
        token_expires_at=jobs.CREATED,
        reply_message_id=1,
        channel_postable=True,
        prompt=PROMPT,
        options={"aspect": "21:9", "resolution": "4k", "n": 4, "model": LONGEST_MODEL.id, "attachments": 4},
        locale=locale,
    )
    sendable(*owed_embeds(owed), content=i18n.translate("owed.restarted", locale))


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_forms_at_their_fullest_fit_in_every_locale(locale: str) -> None:
    # A Remix form pre-filled with the longest prompt (and with one cut, which adds its note), for the model with the
    # most aspect ratios; and the prompt form of "Imagine from images".
    widest = max((catalog.get_model(model) for model in catalog.MODELS), key=lambda spec: len(spec.aspects))
    target = RemixTarget("0123456789abcdef0123456789abcdef", widest.id, widest.aspects[0], widest.resolutions[-1])
    discord_locale = discord.Locale("fi") if locale == i18n.PSEUDO else discord.Locale(locale)
    i18n.configure(pseudo_alias="fi")
    try:
        for shown in (PROMPT, PROMPT[:3000] + "…"):
            form = RemixForm("f" * 32, target, shown, discord_locale)
            check_modal(form.to_dict())
            assert form.to_dict()["title"] == i18n.translate("form.remix.title", locale)
        check_modal(PromptModal("f" * 32, discord_locale).to_dict())
    finally:
        i18n.configure(pseudo_alias=None)
