"""An async client for the ToAPIs image API. Imports nothing from Discord or the rest of Imagine."""

from toapis.client import DEFAULT_TIMEOUT, ToAPIsClient
from toapis.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    DownloadError,
    DownloadTooLargeError,
    InsufficientBalanceError,
    RateLimitError,
    ServerError,
    SubmitUnconfirmedError,
    TaskNotFoundError,
    TaskWaitTimeoutError,
    ToAPIsError,
    UnexpectedResponseError,
    UploadRejectedError,
    WebhookNotConfiguredError,
)
from toapis.health import HealthStatus
from toapis.models import (
    AccountBalance,
    DownloadedImage,
    ResultImage,
    Task,
    TaskError,
    TaskStatus,
    UploadedImage,
)
from toapis.retry import RetryPolicy

__all__ = [
    "DEFAULT_TIMEOUT",
    "APIConnectionError",
    "APITimeoutError",
    "AccountBalance",
    "AuthenticationError",
    "BadRequestError",
    "ContentPolicyError",
    "DownloadError",
    "DownloadTooLargeError",
    "DownloadedImage",
    "HealthStatus",
    "InsufficientBalanceError",
    "RateLimitError",
    "ResultImage",
    "RetryPolicy",
    "ServerError",
    "SubmitUnconfirmedError",
    "Task",
    "TaskError",
    "TaskNotFoundError",
    "TaskStatus",
    "TaskWaitTimeoutError",
    "ToAPIsClient",
    "ToAPIsError",
    "UnexpectedResponseError",
    "UploadRejectedError",
    "UploadedImage",
    "WebhookNotConfiguredError",
]
