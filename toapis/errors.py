"""The errors of the ToAPIs client.

Every error carries the HTTP status (None when there was no answer), the upstream error code (as a string; the
API sends integers and strings) and message, and `user_message`: one short sentence that may be shown to a
server member as it is. The details (`str(error)`) are for logs and admins. No error ever holds the API key:
the client redacts it from upstream messages, and never puts request headers into an error.

    ToAPIsError
    ├── AuthenticationError            401/403: the key was refused
    ├── InsufficientBalanceError       402: the account is out of credit
    ├── ContentPolicyError             422: the prompt or an image was refused
    ├── BadRequestError                other 4xx: the request was wrong
    │   └── UploadRejectedError        an upload was refused (type or size)
    ├── TaskNotFoundError              404, or 400 "task_not_exist"
    ├── RateLimitError                 429, with retry_after
    ├── ServerError                    5xx, also with an HTML body from a gateway
    │   └── SubmitsPausedError         503 rate_limit_unavailable: submits paused, look-ups still work
    ├── UnexpectedResponseError        a success status with a body that is not what the contract says
    ├── APIConnectionError             no answer: connection refused, dropped, ...
    │   └── APITimeoutError            no answer in time
    ├── SubmitUnconfirmedError         a submit may have created a task, and the lookup could not tell
    ├── TaskWaitTimeoutError           wait_for_task's deadline passed; carries the last Task seen
    └── DownloadError                  a result could not be downloaded
        └── DownloadTooLargeError      ... because it is larger than the cap
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from toapis.models import policy_category

if TYPE_CHECKING:
    from toapis.models import Task

# Upstream text shown to members is cut to this many characters.
_MAX_SHOWN_DETAIL = 200


def _shorten(text: str, limit: int = _MAX_SHOWN_DETAIL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ToAPIsError(Exception):
    """Base class of every error the ToAPIs client raises."""

    default_user_message: ClassVar[str] = "The image service had a problem. Please try again later."
    # A later attempt of the same call may succeed (the client has already retried as its policy allows).
    is_transient: ClassVar[bool] = False

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, operation: str | None = None
    ) -> None:
        super().__init__(message)
        # What went wrong: the upstream message when the API sent one, else the client's own description.
        self.message = message
        self.status = status
        self.code = code
        # The call that failed ("submit", "task lookup", "upload", "download", "health probe").
        self.operation = operation

    @property
    def user_message(self) -> str:
        """One short sentence for a server member; never contains internal details."""
        return self.default_user_message

    def __str__(self) -> str:
        text = f"ToAPIs {self.operation}: {self.message}" if self.operation else self.message
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.code is not None:
            details.append(f"code {self.code}")
        return f"{text} ({', '.join(details)})" if details else text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, code={self.code!r}, "
            f"operation={self.operation!r})"
        )


class AuthenticationError(ToAPIsError):
    """The API refused the key (401, or 403 for a key that may not use this endpoint or model)."""

    default_user_message = "The image service refused the bot's credentials. Please tell a server admin."


class InsufficientBalanceError(ToAPIsError):
    """The ToAPIs account's balance is too low (402 insufficient_quota)."""

    default_user_message = "The image service account has run out of credit. Please tell a server admin."


class ContentPolicyError(ToAPIsError):
    """The prompt or a reference image was refused by the content policy (422 content_policy_violation)."""

    default_user_message = (
        "The image service's content policy refused this prompt or image. Please try a different prompt."
    )

    @property
    def policy_category(self) -> str | None:
        """The content-policy category the upstream's message names, if any (`contract.CONTENT_POLICY_CATEGORIES`)."""
        return policy_category(self.message)


class BadRequestError(ToAPIsError):
    """The API refused the request's parameters (400 invalid_request and other 4xx).

    `param` is the body field the API (or the client's own check) blamed, when known: "size", "n", ...
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        operation: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, operation=operation)
        self.param = param

    @property
    def user_message(self) -> str:
        """Says what the API found wrong, since the member can usually fix it."""
        return f"The image service did not accept the request: {_shorten(self.message)}"


class WebhookNotConfiguredError(BadRequestError):
    """A submit sent `callback_url`, and the key's Token has webhooks off or no URL or secret (400
    `webhook_not_configured`). No task was created: submit again without `callback_url`."""


class CallbackURLRefusedError(WebhookNotConfiguredError):
    """A submit's `callback_url` was refused by a 400 naming it (`param`): its scheme, host or port differ from
    the URL set for the key's Token in the console (or it has a userinfo or fragment). Webhooks cannot reach this
    URL either, so it is handled as `WebhookNotConfiguredError`: no task was created, submit again without it."""


class UploadRejectedError(BadRequestError):
    """An image upload was refused: unsupported type, or larger than 10,000,000 bytes."""

    @property
    def user_message(self) -> str:
        """Says why the image was refused (type or size)."""
        return f"A reference image was not accepted: {_shorten(self.message)}"


class TaskNotFoundError(ToAPIsError):
    """The API does not know the task (404, or the reported 400 "task_not_exist" variant)."""

    default_user_message = "The image service lost track of this job. Please try again."

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        operation: str | None = None,
        task_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, operation=operation)
        self.task_id = task_id


class RateLimitError(ToAPIsError):
    """Too many requests (429). `retry_after` is the server's Retry-After in seconds, when it sent one."""

    default_user_message = "The image service is busy right now. Please try again in a minute."
    is_transient = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        code: str | None = None,
        operation: str | None = None,
        retry_after: float | None = None,
        category: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, operation=operation)
        self.retry_after = retry_after
        # X-RateLimit-Category: "async_submit" or "async_query".
        self.category = category


class ServerError(ToAPIsError):
    """The API or a gateway in front of it failed (5xx, sometimes with an HTML body)."""

    default_user_message = "The image service is having trouble right now. Please try again later."
    is_transient = True


class SubmitsPausedError(ServerError):
    """503 `rate_limit_unavailable`: ToAPIs takes no submits for now (look-ups still work); no task was created."""


class UnexpectedResponseError(ToAPIsError):
    """A success status whose body is not what the contract describes (not JSON, or a field missing)."""

    default_user_message = "The image service sent an answer the bot did not understand. Please try again later."
    is_transient = True


class APIConnectionError(ToAPIsError):
    """No answer from the API: the connection failed or was closed before a complete response arrived."""

    default_user_message = "The bot could not reach the image service. Please try again later."
    is_transient = True

    def __init__(
        self,
        message: str,
        *,
        maybe_sent: bool,
        status: int | None = None,
        code: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, operation=operation)
        # False only when the request provably never reached the server (the connection was never made).
        self.maybe_sent = maybe_sent


class APITimeoutError(APIConnectionError):
    """The request and the read of its answer did not finish within the timeout (or the server sent 408)."""

    default_user_message = "The image service took too long to answer. Please try again later."


class SubmitUnconfirmedError(ToAPIsError):
    """A submit failed ambiguously and the lookup by client_business_id failed too.

    A task may or may not exist for `client_business_id`; it may be running and will be billed if it does.
    Look it up again later with `find_task` before deciding that the job failed.
    """

    default_user_message = "The bot could not confirm that the image service accepted this job."
    is_transient = True

    def __init__(self, message: str, *, client_business_id: str) -> None:
        super().__init__(message, operation="submit")
        self.client_business_id = client_business_id


class TaskWaitTimeoutError(ToAPIsError):
    """`wait_for_task` reached its deadline; `task` is the last state seen (None if no lookup succeeded)."""

    default_user_message = "The image is taking longer than expected."
    is_transient = True

    def __init__(self, message: str, *, task_id: str, task: Task | None, waited: float) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.task = task
        self.waited = waited


class DownloadError(ToAPIsError):
    """A result image could not be downloaded: the files host refused it, or it is not an image."""

    default_user_message = "The bot could not download the generated image. Please try again."


class DownloadTooLargeError(DownloadError):
    """A result image is larger than the caller's cap; the download was stopped at the cap."""

    def __init__(self, message: str, *, max_bytes: int, status: int | None = None) -> None:
        super().__init__(message, status=status, operation="download")
        self.max_bytes = max_bytes
