"""What the buttons on Imagine's messages do: Re-roll, Vary, Delete, Cancel.

The buttons are DynamicItems (cogs/_views.py) resolved from their custom ids, so they work on messages posted
before a restart; they reach this object through the bot (`services_of(interaction.client).actions`). Re-roll
and Vary start a new job of the member who clicked, counted against their quota, through the same intake as
/imagine. What they repeat is read from the database after the defer, since nothing that does I/O may come
before an interaction's first response.
"""

from __future__ import annotations

import contextlib
import logging

import discord

import i18n
from cogs._attachments import ImageAttachment
from cogs._embeds import NO_MENTIONS, echo_prompt, shown_prompt
from cogs._intake import Draft, Intake
from cogs._texts import refusal_text
from generation.events import FailureKind
from generation.history import JobHistory
from generation.pipeline import Pipeline
from generation.refusals import ImageGoneFromMessage
from storage.jobs import Job, JobKind, JobState

log = logging.getLogger(__name__)


def reroll_draft(parent: Job) -> Draft:
    """The request a Re-roll of `parent` makes: the same prompt, model, aspect, resolution, n and stored
    references (a Remix changes some of them: cogs/_remix.py)."""
    return Draft(
        parent.prompt,
        parent.n,
        JobKind.REROLL,
        model=parent.model,
        aspect=parent.aspect,
        resolution=parent.resolution,
        stored_references=parent,
        parent_job_id=parent.id,
    )


class ResultActions:
    """The buttons' handlers, built once at assembly."""

    def __init__(self, *, intake: Intake, history: JobHistory, pipeline: Pipeline) -> None:
        self._intake = intake
        self._history = history
        self._pipeline = pipeline

    async def reroll(self, interaction: discord.Interaction, job_id: str) -> None:
        """A new job with the same prompt, size, n and references, for the member who clicked."""

        async def load() -> Draft:
            return reroll_draft(await self._history.parent(job_id, "re-rolled", guild_id=interaction.guild_id))

        await self._intake.run(interaction, load, prompt=shown_prompt(interaction.message))

    async def vary(self, interaction: discord.Interaction, job_id: str, index: int) -> None:
        """A new job with the same prompt and this image (the message's current attachment) as its reference."""
        attachments = interaction.message.attachments if interaction.message else []
        if index >= len(attachments):
            await interaction.response.send_message(
                refusal_text(ImageGoneFromMessage(), interaction.locale),
                embeds=echo_prompt(shown_prompt(interaction.message), interaction.locale),
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return
        image = ImageAttachment.of(attachments[index])

        async def load() -> Draft:
            parent = await self._history.parent(job_id, "varied", guild_id=interaction.guild_id)
            return Draft(
                parent.prompt,
                parent.n,
                JobKind.VARY,
                model=parent.model,
                aspect=parent.aspect,
                resolution=parent.resolution,
                attachments=(image,),
                parent_job_id=parent.id,
            )

        await self._intake.run(interaction, load, prompt=shown_prompt(interaction.message))

    async def delete(self, interaction: discord.Interaction, job_id: str, requester_id: int) -> None:
        """The requester, or anyone with Manage Messages, deletes the result."""
        if interaction.user.id != requester_id and not interaction.permissions.manage_messages:
            await interaction.response.send_message(
                i18n.translate("button.delete.not_yours", interaction.locale), ephemeral=True
            )
            return
        await interaction.response.defer()
        # After a deferred update, the interaction's original response is the message with the button.
        with contextlib.suppress(discord.NotFound):  # already gone
            await interaction.delete_original_response()
        log.info("job %s: result deleted by %s", job_id, interaction.user.id)
        if interaction.message is not None:  # noted here too: the gateway's MESSAGE_DELETE may come late, or not
            await self._history.results_deleted((interaction.message.id,))

    async def cancel(self, interaction: discord.Interaction, job_id: str, requester_id: int) -> None:
        """The requester cancels a job still waiting in line; its images are refunded."""
        if interaction.user.id != requester_id:
            await interaction.response.send_message(
                i18n.translate("button.cancel.not_yours", interaction.locale), ephemeral=True
            )
            return
        await interaction.response.defer()
        if await self._pipeline.cancel(job_id, requester_id):
            return
        job = await self._history.get(job_id)
        if job is None:
            key = "button.cancel.unknown"
        elif job.state is JobState.FAILED and job.error_code == FailureKind.CANCELLED.value:
            key = "button.cancel.already"
        elif job.is_finished:
            key = "button.cancel.ended"
        else:
            key = "button.cancel.too_late"
        await interaction.followup.send(i18n.translate(key, interaction.locale), ephemeral=True)
