"""Every reason a member's request can be refused, as data: what to tell them is decided where it is shown.

A refusal means nothing was reserved, stored or uploaded for the request. `Refusal` is the one base class the
callers catch; each subclass carries what its message needs (the cogs turn it into words, in one place:
cogs/_texts.py), so the same refusal reads the same wherever it happens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from generation.images import ImageProblem
from storage.quotas import RuleUsage


class Refusal(Exception):
    """A request Imagine will not take, for a reason the member can act on."""


# -- where and when ------------------------------------------------------------------------------------------


@dataclass(eq=False)
class NotInServer(Refusal):
    """The request came from outside a server (a DM)."""


@dataclass(eq=False)
class ServerNotAllowed(Refusal):
    """The operator limited the bot to other servers (ALLOWED_GUILD_IDS)."""


@dataclass(eq=False)
class Restarting(Refusal):
    """The bot is starting or stopping and takes no new job."""


@dataclass(eq=False)
class AnsweredElsewhere(Refusal):
    """The request was answered by another process while this one was taking it (generation/owed_answers.py):
    nothing more is said to the member."""


@dataclass(eq=False)
class Unavailable(Refusal):
    """The image service cannot be used now (the circuit breaker is open)."""


@dataclass(eq=False)
class ChannelNotAllowed(Refusal):
    """The server allows Imagine's commands in other channels only; `command` names the one refused."""

    allowed: frozenset[int]
    command: str = "/imagine"


@dataclass(eq=False)
class CoolingDown(Refusal):
    """The member asked too recently; they may ask again in `seconds`."""

    seconds: float


# -- the request's own options -------------------------------------------------------------------------------


@dataclass(eq=False)
class PromptEmpty(Refusal):
    """Nothing but blanks in the prompt."""


@dataclass(eq=False)
class PromptTooLong(Refusal):
    length: int
    limit: int


@dataclass(eq=False)
class ModelNotOffered(Refusal):
    """A model this server does not offer (or the operator does not pay for); `offered` are the names it does."""

    given: str
    offered: tuple[str, ...]


@dataclass(eq=False)
class LastModel(Refusal):
    """An admin tried to stop offering the only model the server offers."""

    model: str


@dataclass(eq=False)
class OptionNotOffered(Refusal):
    """An aspect, resolution or n the model does not take; `offered` is what it takes ("1:1", "2k", "4")."""

    option: str
    model: str
    """The model's readable name."""
    offered: tuple[str, ...]


@dataclass(eq=False)
class TooManyImages(Refusal):
    """`n` above what this server allows (`limit`)."""

    limit: int


@dataclass(eq=False)
class TooManyReferences(Refusal):
    given: int
    limit: int


@dataclass(eq=False)
class AttachmentTooLarge(Refusal):
    """A reference attachment over the size Imagine reads at all."""

    position: int
    size: int
    limit: int


@dataclass(eq=False)
class AttachmentUnreadable(Refusal):
    """Discord would not hand over a reference attachment's bytes."""

    position: int


@dataclass(eq=False)
class ReferenceUnusable(Refusal):
    """A reference's bytes are not an image Imagine can use; `problem` says why, with its `details`
    (images.ImageRejected)."""

    position: int
    count: int
    problem: ImageProblem
    details: Mapping[str, int] = field(default_factory=dict)


@dataclass(eq=False)
class ReferenceSideTooShort(Refusal):
    """A reference, as prepared, with a side shorter than its model takes (catalog.References.min_side)."""

    position: int
    count: int
    model: str
    """The model's readable name."""
    width: int
    height: int
    min_side: int


@dataclass(eq=False)
class ReferenceTooElongated(Refusal):
    """A reference, as prepared, longer and narrower than its model takes: its long side more than `max_ratio`
    times its short side (catalog.References.aspect_range)."""

    position: int
    count: int
    model: str
    """The model's readable name."""
    max_ratio: int


@dataclass(eq=False)
class PromptBlocked(Refusal):
    """The prompt holds one of the server's blocked words (which one is never said). It carries what the usage
    log and the moderation log record of the request."""

    prompt: str
    model: str
    aspect: str
    resolution: str
    n: int
    weight: int
    reference_count: int = 0


# -- what a request repeats ----------------------------------------------------------------------------------


@dataclass(eq=False)
class MessageHasNoImages(Refusal):
    """ "Imagine from images" on a message without images; `forwarded` when it forwards a message without any."""

    forwarded: bool = False


@dataclass(eq=False)
class FormExpired(Refusal):
    """A form sent after its time (its images' links expired), or one the bot does not know: open it again.
    `kind` names the form ("from-images", "remix")."""

    kind: str = "from-images"


@dataclass(eq=False)
class ImageGoneFromMessage(Refusal):
    """A Vary button whose image is no longer on its message."""


@dataclass(eq=False)
class ParentUnknown(Refusal):
    """The job behind a result's button is no longer known; `action` names what was tried ("re-rolled",
    "varied", "remixed")."""

    action: str


@dataclass(eq=False)
class ReferencesExpired(Refusal):
    """A re-roll (or a remix: `action`) of a job whose references were deleted after `retention_days`."""

    retention_days: int
    action: str = "re-rolled"


# -- finding a job again (/show) ----------------------------------------------------------------------------


@dataclass(eq=False)
class JobReferenceInvalid(Refusal):
    """What was typed is not a job reference (8 to 32 hexadecimal characters)."""

    given: str


@dataclass(eq=False)
class JobNotFound(Refusal):
    """No job of this server has this reference (a job of another server is never found)."""

    reference: str


@dataclass(eq=False)
class NotYourJob(Refusal):
    """Another member's job, and the member may not manage messages here."""


@dataclass(eq=False)
class JobChannelHidden(Refusal):
    """The job was made in a channel the member cannot view (or that Imagine can no longer tell about)."""


@dataclass(eq=False)
class JobAgeRestricted(Refusal):
    """The job was made in an age-restricted channel, and this channel is not one."""


@dataclass(eq=False)
class JobWithoutResult(Refusal):
    """The job has no images to show: it failed (`finished`) or is not done yet."""

    finished: bool


@dataclass(eq=False)
class ResultGone(Refusal):
    """The message with the job's images was deleted (or lost its images)."""


# -- admission -----------------------------------------------------------------------------------------------


@dataclass(eq=False)
class QuotaExceeded(Refusal):
    """A quota rule would be exceeded: `usage` is the rule to tell the member about (None if unknown)."""

    usage: RuleUsage | None
    requested: int
    """Images asked for."""
    weight: int = 1
    """What each counts as: the request needed `requested * weight` of what is left."""


@dataclass(eq=False)
class ReferencesNotSaved(Refusal):
    """The references could not be stored; the reservation was given back."""


# -- admins' options -----------------------------------------------------------------------------------------


@dataclass(eq=False)
class InvalidDay(Refusal):
    """A date option that is not a date."""

    option: str
    given: str


@dataclass(eq=False)
class DaysReversed(Refusal):
    """`start` after `end`."""


@dataclass(eq=False)
class RoleMissing(Refusal):
    """A role rule was named without its role."""


@dataclass(eq=False)
class RoleNotExpected(Refusal):
    """A role was given where the scope takes none."""


@dataclass(eq=False)
class MemberMissing(Refusal):
    """A member override was named without its member."""


@dataclass(eq=False)
class MemberNotExpected(Refusal):
    """A member was given where the scope takes none."""


@dataclass(eq=False)
class TooManyBlockedWords(Refusal):
    """Adding these entries would take the server's blocked words over `limit`; `room` more fit."""

    limit: int
    room: int


@dataclass(eq=False)
class NoUsableBlockedWord(Refusal):
    """None of the entries given can be matched (punctuation only, one letter, or too long)."""

    given: tuple[str, ...]


# -- the conversation (a message that mentions the bot) ----------------------------------------------------------


@dataclass(eq=False)
class ChatOff(Refusal):
    """The server's admins turned the conversational way off: members use the commands there."""


@dataclass(eq=False)
class InlineOptionInvalid(Refusal):
    """An inline option (`--n two`, `--ar` with nothing after it) has no value Imagine can read."""

    option: str
    given: str | None
    """What followed the option; None when nothing did."""


@dataclass(eq=False)
class ReplyTargetHidden(Refusal):
    """The message replies to one the bot cannot read (another member's, which Discord hides from bots without
    the Message Content intent): its images cannot be used this way."""


@dataclass(eq=False)
class ChannelNotPostable(Refusal):
    """The bot may answer in the channel but not post what a result needs there (Embed Links, Attach Files)."""
