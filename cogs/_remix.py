"""Remix: a result's button opens a form pre-filled with the job's prompt, aspect and resolution; sending it makes a
new job with what was changed and the same reference images, for the member who sent it (docs/members.md).

The form is the click's first response (a form cannot follow a defer), so it is built without I/O: the prompt
is the one on the result's own embed (`shown_prompt`), the model, aspect and resolution come from the button's
custom id, and the aspect ratios and resolutions offered are the model's, from the catalog. The form is kept as
a record and answered from it whenever it is sent, before or after a restart (cogs/_forms.py), through Re-roll's
path: the stored job (`ParentUnknown` once it is gone), its stored references (`ReferencesExpired`), the quota of
the member who sends it (the intake). A prompt left as it was shown is the job's own, in full: the embed shows a
long prompt cut.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import discord

import i18n
from cogs import _forms
from cogs._embeds import NO_MENTIONS, echo_prompt, shown_prompt
from cogs._errors import answer_error
from cogs._gate import Gated
from cogs._intake import Draft, parent_of
from cogs._result_actions import reroll_draft
from cogs._services import Services, services_of
from cogs._texts import refusal_text
from generation.refusals import FormExpired, NotInServer, Refusal
from generation.validation import PROMPT_MAX_LENGTH
from storage.forms import FormRecord
from storage.jobs import Job, JobKind
from toapis import catalog

log = logging.getLogger(__name__)

FORM_KIND: Final = "remix"
PROMPT_FIELD: Final = "prompt"
ASPECT_FIELD: Final = "aspect"
RESOLUTION_FIELD: Final = "resolution"
FORM_LIFETIME: Final = timedelta(days=1)
"""How long an opened form may be sent: then the member is asked to click Remix again."""
# Discord's limits: a select holds at most 25 options; a custom id, 100 characters.
MAX_OPTIONS: Final = 25
CUSTOM_ID_LIMIT: Final = 100
# The shape of a custom id: the job, its aspect and resolution, its model last (ids of 43 characters at most fit).
_PREFIX: Final = "imagine:remix:"
_JOB: Final = r"(?P<job>[0-9a-f]{32})"  # not member-facing
_ASPECT: Final = r"(?P<aspect>[0-9]{1,2}:[0-9]{1,2})"  # not member-facing
_RESOLUTION: Final = r"(?P<resolution>[0-9.]{1,4}k)"  # not member-facing
_MODEL: Final = r"(?P<model>[A-Za-z0-9._-]{1,43})"  # not member-facing
_TEMPLATE: Final = rf"{_PREFIX}{_JOB}:{_ASPECT}:{_RESOLUTION}:{_MODEL}"
# The text `cut` (cogs/_limits.py) ends a shortened prompt with.
_ELLIPSIS: Final = "…"


@dataclass(frozen=True)
class RemixTarget:
    """What a Remix button names: the job, and its model, aspect and resolution (so the form needs no I/O)."""

    job_id: str
    model: str
    aspect: str
    resolution: str

    @classmethod
    def of(cls, job: Job) -> RemixTarget:
        return cls(job.id, job.model, job.aspect, job.resolution)

    @property
    def custom_id(self) -> str:
        return f"{_PREFIX}{self.job_id}:{self.aspect}:{self.resolution}:{self.model}"


class RemixButton(Gated, discord.ui.DynamicItem[discord.ui.Button[Any]], template=_TEMPLATE):
    """The Remix button of a result; it survives restarts (its custom id says everything the form shows)."""

    def __init__(self, target: RemixTarget, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(label=label, emoji="✏️", style=discord.ButtonStyle.secondary, custom_id=target.custom_id)
        )
        self.target = target

    @classmethod
    def of(cls, job: Job, locale: i18n.LocaleLike = None) -> RemixButton:
        """The button for a job's result, its label in `locale`, else the job's (the message is public)."""
        return cls(RemixTarget.of(job), i18n.translate("button.remix", locale or job.locale))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RemixButton:
        return cls(RemixTarget(match["job"], match["model"], match["aspect"], match["resolution"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await open_form(interaction, services_of(interaction.client), self.target)
        except Exception as exc:
            await answer_error(interaction, exc)


def offered(target: RemixTarget) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The aspect ratios and resolutions the form offers: the job's model's (its own alone if the catalog no longer
    knows the model), at most 25 of each."""
    try:
        spec = catalog.get_model(target.model)
    except catalog.UnknownModelError:
        return (target.aspect,), (target.resolution,)
    return spec.aspects[:MAX_OPTIONS], spec.resolutions[:MAX_OPTIONS]


def prompt_limit(model: str) -> int:
    """The most characters a prompt for `model` may have (every prompt's limit if the catalog no longer knows it)."""
    try:
        return catalog.get_model(model).prompt_max
    except catalog.UnknownModelError:
        return PROMPT_MAX_LENGTH


class RemixForm(discord.ui.Modal):
    """The form: only its look. Its submit is answered from its record (`answer_form`)."""

    def __init__(self, form_id: str, target: RemixTarget, shown: str, locale: discord.Locale) -> None:
        def t(key: str) -> str:
            return i18n.translate(key, locale)

        super().__init__(title=t("form.remix.title"), custom_id=_forms.custom_id(FORM_KIND, form_id))
        default = shown[:PROMPT_MAX_LENGTH]
        prompt: discord.ui.TextInput[RemixForm] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph,
            default=default or None,
            min_length=1,
            # Discord holds the member to the model's limit as they type; never below the text shown, so that the
            # form opens even if the catalog lowered the limit since the job (the submit is refused then).
            max_length=max(prompt_limit(target.model), len(default)),
            custom_id=PROMPT_FIELD,
        )
        note = t("form.remix.prompt_cut") if shown.endswith(_ELLIPSIS) else None
        self.add_item(discord.ui.Label(text=t("form.remix.prompt"), description=note, component=prompt))
        aspects, resolutions = offered(target)
        self.add_item(
            discord.ui.Label(
                text=t("form.remix.aspect"),
                component=_select(ASPECT_FIELD, [(a, t(f"aspect.{a}")) for a in aspects], target.aspect),
            )
        )
        self.add_item(
            discord.ui.Label(
                text=t("form.remix.resolution"),
                description=t("form.remix.resolution_note"),
                component=_select(
                    RESOLUTION_FIELD, [(r, t(f"resolution.{r}")) for r in resolutions], target.resolution
                ),
            )
        )


def _select(custom_id: str, choices: list[tuple[str, str]], current: str) -> discord.ui.Select[RemixForm]:
    options = [discord.SelectOption(label=label, value=value, default=value == current) for value, label in choices]
    return discord.ui.Select(custom_id=custom_id, options=options, min_values=1, max_values=1, required=True)


async def open_form(interaction: discord.Interaction, services: Services, target: RemixTarget) -> None:
    """Show the form (the place and the cooldown checked first, from memory), then keep its record."""
    shown = shown_prompt(interaction.message) or ""
    guild_id, channel_id, user_id = interaction.guild_id, interaction.channel_id, interaction.user.id
    try:
        if guild_id is None or channel_id is None:
            raise NotInServer()
        services.intake.admission.check_place_and_pace(guild_id, channel_id, user_id, parent_id=parent_of(interaction))
    except Refusal as refusal:
        await interaction.response.send_message(
            refusal_text(refusal, interaction.locale),
            embeds=echo_prompt(shown, interaction.locale),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )
        return
    form_id = services.forms.new_id()
    await _forms.show(interaction, RemixForm(form_id, target, shown, interaction.locale))
    try:
        await services.forms.open(
            form_id,
            kind=FORM_KIND,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            payload={"job_id": target.job_id, "shown": shown},
            expires_at=datetime.now(UTC) + FORM_LIFETIME,
        )
    except Exception:
        # The form is shown already; its submit will tell the member to open it again.
        log.exception("Could not keep the Remix form of job %s", target.job_id)


def _one(value: str | list[str] | None) -> str | None:
    """A text input's value, or a single select's pick."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def remix_draft(parent: Job, *, typed: str, shown: str, aspect: str | None, resolution: str | None) -> Draft:
    """The request a sent form makes: Re-roll's, with the prompt as typed (the job's own, in full, if it was left
    as shown) and the aspect and resolution picked (the job's own if none)."""
    prompt = parent.prompt if typed.strip() == shown.strip() else typed
    return dataclasses.replace(
        reroll_draft(parent),
        prompt=prompt,
        kind=JobKind.REMIX,
        aspect=aspect or parent.aspect,
        resolution=resolution or parent.resolution,
    )


def _owned(record: FormRecord | None, interaction: discord.Interaction) -> FormRecord:
    """The form's record if it is this member's, opened in this channel; `FormExpired` otherwise."""
    if record is None or (record.guild_id, record.channel_id, record.user_id) != (
        interaction.guild_id,
        interaction.channel_id,
        interaction.user.id,
    ):
        raise FormExpired(FORM_KIND)
    return record


async def answer_form(interaction: discord.Interaction, services: Services, form_id: str) -> None:
    """A sent Remix form, answered from its record whenever it comes; every refusal repeats what was typed."""
    values = _forms.values(interaction)
    typed = _one(values.get(PROMPT_FIELD)) or ""
    aspect, resolution = _one(values.get(ASPECT_FIELD)), _one(values.get(RESOLUTION_FIELD))

    async def load() -> Draft:
        record = _owned(await services.forms.find(form_id), interaction)
        parent = await services.history.parent(str(record.payload["job_id"]), "remixed", guild_id=interaction.guild_id)
        shown = str(record.payload.get("shown", ""))
        return remix_draft(parent, typed=typed, shown=shown, aspect=aspect, resolution=resolution)

    # The prompt as typed is checked for blocked words before the first response, unless it may be the shown one
    # cut (its last word cut short could read as another): the job's own prompt, in full, is checked once loaded.
    cut = typed.strip().endswith(_ELLIPSIS)
    early = None if cut else Draft(typed, 1, JobKind.REMIX, aspect=aspect, resolution=resolution)
    await services.intake.run(interaction, load, prompt=typed, typed=early)
