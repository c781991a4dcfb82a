"""May this member ask now, and is what they ask acceptable? Answered without I/O, before the first response,
but for the quota, looked at once the request is acknowledged and before any of its references is read.

The cogs call the checks before an interaction's first response (docs/architecture.md, Answering), so they
read only what is in memory: the operator's server allow-list, the pipeline's state, the server's settings
(cached by `ServerSettings`, its blocked words among them) and the cooldowns. Each check raises a `Refusal`.
`check_quota` reads the database (read-only): a request the quota would refuse is refused before any download
or decode, at no cost; the reservation in `Pipeline.submit` stays the authority.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Final, Protocol

from generation.cooldowns import Cooldowns
from generation.models import Choice, ModelMenu
from generation.refusals import (
    AttachmentTooLarge,
    ChannelNotAllowed,
    CoolingDown,
    PromptBlocked,
    QuotaExceeded,
    ServerNotAllowed,
)
from generation.server_settings import ServerSettings
from generation.validation import check_options
from storage.quotas import RuleUsage
from toapis import catalog

# Bigger attachments are refused before anything is downloaded; smaller ones over the upload limit are
# re-encoded to fit.
MAX_ATTACHMENT_BYTES: Final = 50_000_000


class Availability(Protocol):
    def check_available(self) -> None:
        """Raise a `Refusal` when no job can be taken now."""


class QuotaLookup(Protocol):
    async def would_refuse(self, guild_id: int, user_id: int, role_ids: Iterable[int], n: int) -> RuleUsage | None:
        """The rule that would refuse `n` more images for the member now, read-only (None: none would)."""


class Admission:
    """The checks every way in (a command, a button, a form) runs before it answers."""

    def __init__(
        self,
        *,
        guild_allowed: Callable[[int], bool],
        server_settings: ServerSettings,
        cooldowns: Cooldowns,
        pipeline: Availability,
        models: ModelMenu,
        quotas: QuotaLookup,
    ) -> None:
        self._guild_allowed = guild_allowed
        self._server_settings = server_settings
        self.cooldowns = cooldowns
        self._pipeline = pipeline
        self.models = models
        self._quotas = quotas

    def check_server(self, guild_id: int) -> None:
        """The operator lets the bot work in this server (ALLOWED_GUILD_IDS)."""
        if not self._guild_allowed(guild_id):
            raise ServerNotAllowed()

    def check_place_and_pace(
        self, guild_id: int, channel_id: int, user_id: int, *, parent_id: int | None = None
    ) -> None:
        """The server, the pipeline, the channel and the member's cooldown allow a request now.

        `parent_id`: the channel a thread (or a forum post) belongs to; a thread is allowed where its parent is.
        """
        self.check_server(guild_id)
        self._pipeline.check_available()
        self.check_place(guild_id, channel_id, parent_id=parent_id)
        server = self._server_settings.get(guild_id)
        wait = self.cooldowns.remaining(guild_id, user_id, server.cooldown_seconds)
        if wait > 0:
            raise CoolingDown(wait)

    def check_place(
        self, guild_id: int, channel_id: int, *, parent_id: int | None = None, command: str = "/imagine"
    ) -> None:
        """The server's channel allow-list lets `command` run in this channel (a thread: where its parent is)."""
        server = self._server_settings.get(guild_id)
        if not server.channel_allowed(channel_id) and not (parent_id is not None and server.channel_allowed(parent_id)):
            raise ChannelNotAllowed(server.allowed_channel_ids, command)

    def check_options(
        self,
        guild_id: int,
        *,
        prompt: str,
        n: int,
        model: str | None = None,
        aspect: str | None = None,
        resolution: str | None = None,
        reference_count: int = 0,
        attachment_sizes: Sequence[int] = (),
    ) -> tuple[str, Choice]:
        """The request's own options are acceptable in this server: the trimmed prompt, and the model, aspect and
        resolution it gets (a None is the server's, or the model's, default) with what each image counts as.

        Last, the prompt must hold none of the server's blocked words (`PromptBlocked`, which carries the rest of
        the request for the usage log)."""
        server = self._server_settings.get(guild_id)
        cleaned = check_options(prompt, n, max_n=server.max_n, reference_count=reference_count)
        choice = self.models.choose(
            server,
            model=model,
            aspect=aspect,
            resolution=resolution,
            n=n,
            reference_count=reference_count,
            prompt_length=len(cleaned),
        )
        for position, size_in_bytes in enumerate(attachment_sizes, start=1):
            if size_in_bytes > MAX_ATTACHMENT_BYTES:
                raise AttachmentTooLarge(position, size_in_bytes, MAX_ATTACHMENT_BYTES)
        if self._server_settings.blocked_words(guild_id).find(cleaned) is not None:
            raise PromptBlocked(
                cleaned, choice.model.id, choice.aspect, choice.resolution, n, choice.weight, reference_count
            )
        return cleaned, choice

    def check_prompt(
        self,
        guild_id: int,
        prompt: str,
        *,
        n: int = 1,
        model: str | None = None,
        aspect: str | None = None,
        resolution: str | None = None,
    ) -> None:
        """The prompt holds none of the server's blocked words, checked alone: for a form, whose other options are
        known only once its record is read (I/O), and are checked then (`check_options`). The `PromptBlocked`
        carries the options as far as they are known now: those given, else the server's defaults."""
        cleaned = prompt.strip()
        if self._server_settings.blocked_words(guild_id).find(cleaned) is None:
            return
        server = self._server_settings.get(guild_id)
        spec = (self.models.find(model) if model else None) or self.models.default_for(server)
        tier = spec.default_resolution if resolution is None else catalog.normalise_resolution(resolution)
        if tier not in spec.resolutions:
            # Picked for another model (a Remix form offers its job's, which is known only once read): what is
            # recorded is what this model would have made.
            tier = spec.default_resolution
        aspect = aspect or catalog.DEFAULT_ASPECT
        raise PromptBlocked(cleaned, spec.id, aspect, tier, n, self.models.weight(spec, tier))

    async def check_quota(self, guild_id: int, user_id: int, role_ids: Iterable[int], n: int, choice: Choice) -> None:
        """`QuotaExceeded` if the quota would refuse `n` images of `choice` now: read-only, before any reference is
        downloaded, decoded or read, so that what the reservation would refuse anyway costs nothing."""
        usage = await self._quotas.would_refuse(guild_id, user_id, role_ids, n * choice.weight)
        if usage is not None:
            raise QuotaExceeded(usage, n, choice.weight)

    def start_cooldown(self, guild_id: int, user_id: int) -> None:
        """The member's request passed the checks: their cooldown runs from now."""
        self.cooldowns.start(guild_id, user_id)

    def give_back_cooldown(self, guild_id: int, user_id: int) -> None:
        """The request was refused before it cost anything: the member need not wait."""
        self.cooldowns.cancel(guild_id, user_id)
