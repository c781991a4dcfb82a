"""The buttons on Imagine's messages, as DynamicItems whose custom ids carry the job.

Registered at start-up (`bot.add_dynamic_items`), they are resolved from their custom id alone, so buttons on
messages posted before a restart keep working. What a button does lives in cogs/_result_actions.py, which the
items reach through the bot (`interaction.client`); they only parse their id and hand over. Their labels speak
the locale of the message they are on (a job's); an item resolved from a click keeps the label Discord shows.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import discord

import i18n
from cogs._errors import answer_error
from cogs._gate import Gated
from cogs._remix import RemixButton
from cogs._services import services_of
from storage.jobs import Job
from toapis import catalog

if TYPE_CHECKING:
    from cogs._result_actions import ResultActions

# Job ids are uuid4 hex; user ids are snowflakes. Custom ids stay far below Discord's 100 characters.
_JOB: Final = r"(?P<job>[0-9a-f]{32})"
_USER: Final = r"(?P<user>[0-9]{1,20})"


async def _run(interaction: discord.Interaction, action: Callable[[ResultActions], Awaitable[None]]) -> None:
    """Run a button's action; any error becomes a short message (a button has no command error handler)."""
    try:
        await action(services_of(interaction.client).actions)
    except Exception as exc:
        await answer_error(interaction, exc)


class RerollButton(Gated, discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"imagine:reroll:{_JOB}"):
    def __init__(self, job_id: str, locale: i18n.LocaleLike = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=i18n.translate("button.reroll", locale),
                emoji="🔁",
                style=discord.ButtonStyle.secondary,
                custom_id=f"imagine:reroll:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RerollButton:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await _run(interaction, lambda actions: actions.reroll(interaction, self.job_id))


class VaryButton(
    Gated, discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"imagine:vary:{_JOB}:(?P<index>[0-9])"
):
    def __init__(self, job_id: str, index: int, locale: i18n.LocaleLike = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=i18n.translate("button.vary", locale, number=i18n.number(index + 1, locale)),
                style=discord.ButtonStyle.secondary,
                custom_id=f"imagine:vary:{job_id}:{index}",
                row=1,
            )
        )
        self.job_id = job_id
        self.index = index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> VaryButton:
        return cls(match["job"], int(match["index"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _run(interaction, lambda actions: actions.vary(interaction, self.job_id, self.index))


class DeleteButton(Gated, discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"imagine:delete:{_JOB}:{_USER}"):
    def __init__(self, job_id: str, requester_id: int, locale: i18n.LocaleLike = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=i18n.translate("button.delete", locale),
                emoji="🗑️",
                style=discord.ButtonStyle.danger,
                custom_id=f"imagine:delete:{job_id}:{requester_id}",
            )
        )
        self.job_id = job_id
        self.requester_id = requester_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> DeleteButton:
        return cls(match["job"], int(match["user"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _run(interaction, lambda actions: actions.delete(interaction, self.job_id, self.requester_id))


class CancelButton(Gated, discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"imagine:cancel:{_JOB}:{_USER}"):
    def __init__(self, job_id: str, requester_id: int, locale: i18n.LocaleLike = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=i18n.translate("button.cancel", locale),
                style=discord.ButtonStyle.secondary,
                custom_id=f"imagine:cancel:{job_id}:{requester_id}",
            )
        )
        self.job_id = job_id
        self.requester_id = requester_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CancelButton:
        return cls(match["job"], int(match["user"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _run(interaction, lambda actions: actions.cancel(interaction, self.job_id, self.requester_id))


DYNAMIC_ITEMS: Final = (RerollButton, RemixButton, VaryButton, DeleteButton, CancelButton)


def result_view(job: Job, images: int, locale: i18n.LocaleLike = None) -> discord.ui.View:
    """Re-roll, Remix (cogs/_remix.py) and Delete, then one Vary per image where the job's model takes a reference
    image (a Vary is one); labelled in `locale`, else the job's."""
    locale = locale or job.locale
    view = discord.ui.View(timeout=None)
    view.add_item(RerollButton(job.id, locale))
    view.add_item(RemixButton.of(job, locale))
    view.add_item(DeleteButton(job.id, job.user_id, locale))
    if takes_references(job.model):
        for index in range(min(images, 4)):
            view.add_item(VaryButton(job.id, index, locale))
    return view


def takes_references(model: str) -> bool:
    """Whether the model takes reference images, by the catalog; False for one it no longer knows (no request of
    that model can be made any more)."""
    try:
        return catalog.get_model(model).takes_references
    except catalog.UnknownModelError:
        return False


def queued_view(job: Job, _: int = 0) -> discord.ui.View:
    """Cancel, shown while the job waits and nothing was submitted; labelled in the job's locale."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job.id, job.user_id, job.locale))
    return view
