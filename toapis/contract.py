"""Everything this package knows or assumes about the ToAPIs API as a whole, in one place.

Each constant says whether the upstream documentation states it (DOCUMENTED) or whether Imagine relies on it
without the documentation promising it (ASSUMED). The documentation (GitHub `toapis/docs`, followed at commit
7ed09d1e, pages under docs/en/api-reference/) exists in several versions that disagree. What each image model
takes (sizes, resolutions, n, references, prompt limits) is in toapis/catalog.py; the two forms of `size` and the
fallback between them in toapis/size_forms.py. When the real API turns out to differ, these are the modules to
change, and the loopback fake in tests/fakes/toapis.py the place to mirror the change.
"""

from __future__ import annotations

from typing import Final

# --- Endpoints -------------------------------------------------------------------------------------------------

# DOCUMENTED. Newer pages also use https://api.toapis.com/v1; the mainland China host is https://api.toapis.cn/v1.
DEFAULT_BASE_URL: Final = "https://toapis.com/v1"
ALTERNATIVE_BASE_URLS: Final = ("https://api.toapis.com/v1", "https://api.toapis.cn/v1")

# DOCUMENTED. Paths are relative to the base URL, which already ends in /v1.
SUBMIT_PATH: Final = "/images/generations"
TASK_PATH: Final = "/images/generations/{id}"
UPLOAD_PATH: Final = "/uploads/images"
MODELS_PATH: Final = "/models"

# DOCUMENTED on the Chinese page: `client_business_id` is "usable in place of the task id for lookup", so the
# same path serves both. ASSUMED: the two id spaces never collide, which callers ensure by choosing business
# ids that cannot look like task ids (`task_img_…`, `tsk_img_…`, `img_…`), e.g. "imagine-job-42".
LOOKUP_BY_BUSINESS_ID_PATH: Final = TASK_PATH

# ASSUMED: a task is visible to a lookup by `client_business_id` as soon as the submit that created it has been
# processed, so a 404 on that lookup proves that no task exists and submitting again is safe.
LOOKUP_SEES_TASK_AT_ONCE: Final = True

# DOCUMENTED: GET /v1/models lists the models the key can use and is not billed, so it is the health probe.
HEALTH_PROBE_PATH: Final = MODELS_PATH
# DOCUMENTED: the plain list holds text models only; `?type=image` lists the image models (`all`: both). Items
# carry `id`, `owned_by`, `supported_endpoint_types`, ...
MODELS_TYPE_PARAMETER: Final = "type"
IMAGE_MODELS_TYPE: Final = "image"

# DOCUMENTED: GET /v1/balance describes the key's account ({success, remain_balance, used_balance,
# remain_credits, used_credits, credits_per_usd, unlimited_quota, ...}; HTTP 200 with success false when the
# account is not found). `remain_balance` is in whatever unit the account is set to (USD, CNY or tokens) and
# reads -1 when the quota is unlimited; credits are the stable unit (1 USD = 200 credits, `credits_per_usd`), so
# alerts use credits, and dollars are shown as credits over `credits_per_usd`, never as `remain_balance`.
BALANCE_PATH: Final = "/balance"
# DOCUMENTED: the credits a US dollar buys, when the answer leaves `credits_per_usd` out.
CREDITS_PER_USD: Final = 200.0
# ASSUMED: an account can generate while either its balance or its credits remain above zero, so it is
# exhausted only when neither does. (A 402 on a submit is what the documentation promises; this lets the
# circuit breaker see the top-up without spending a billed submit to find out.)
BALANCE_EXHAUSTED_WHEN_BOTH_ZERO: Final = True

# DOCUMENTED: there is no cancel endpoint. A submitted task runs, and is billed, whatever happens to the job.
HAS_CANCEL_ENDPOINT: Final = False

# --- Submitting -----------------------------------------------------------------------------------------------

# DOCUMENTED, current pages: `size` is an aspect ratio, one of 13 for gpt-image-2 ("1:1" default, "3:2", ...,
# "9:21"), with a separate `resolution` ("1k" default, "2k", "4k"; other models: `metadata.resolution`, "1K"...).
# The pixels of each pair are in the page's table (catalog.pixels). This is the form the client sends.
# DOCUMENTED, the older gpt-image-2 page: `size` is a pixel size ("1024x1024", "1536x1024", "1024x1536") with no
# resolution. Kept as the fallback: ASSUMED either form may be the one the live server accepts, so a 400 naming
# the size is answered once with the other form. Both forms, and the fallback, live in size_forms.py.

# DOCUMENTED prompt limits differ per model: gpt-image-2's current page allows 32,000 characters (its older page
# 4,000), some pages 1,000, most none. Imagine caps every prompt at 4,000, the most a Discord text input holds, or
# less where a model documents less: catalog.ModelSpec.prompt_max.

# n: DOCUMENTED per model where its page gives a range or a list, ASSUMED where it gives none (a default alone, or
# nothing): catalog.ModelSpec.n_values, each marked there. Imagine asks at most catalog.IMAGINE_MAX_IMAGES.

# DOCUMENTED: results come back as URLs in every documented example, so the client asks for URLs. If a
# `b64_json` field ever appears in a result, it is decoded too.
RESPONSE_FORMAT: Final = "url"

# DOCUMENTED: references must be public http(s) URLs; base64, `data:` URLs and localhost/LAN URLs are rejected.
REFERENCE_URL_SCHEMES: Final = ("http", "https")

# --- Uploading ------------------------------------------------------------------------------------------------

# DOCUMENTED as "10 MB"; the decimal reading is used, so nothing between 10,000,000 and 10 MiB is ever sent.
UPLOAD_MAX_BYTES: Final = 10_000_000
# DOCUMENTED: JPEG, PNG, WebP or GIF.
UPLOAD_MIME_TYPES: Final = ("image/jpeg", "image/png", "image/webp", "image/gif")
UPLOAD_FIELD: Final = "file"
UPLOAD_PURPOSE: Final = "generation"
# DOCUMENTED 400 messages, matched to tell the two refusals apart.
UPLOAD_UNSUPPORTED_TYPE_MESSAGE: Final = "Unsupported image type. Allowed: JPEG, PNG, WebP, GIF"
UPLOAD_TOO_LARGE_MESSAGE: Final = "Image too large. Maximum size is 10MB"

# ASSUMED: the model makes no use of a reference image's detail beyond 2048 pixels on its long side (the
# documentation is silent), so larger references are scaled down to that before upload: smaller uploads and
# stored copies, and far less work preparing them. The model catalog may refine it per model.
REFERENCE_MAX_SIDE: Final = 2048

# ASSUMED: how long an upload URL lives is not documented, so it is treated as short-lived: upload the
# references again for every job (and every re-roll) instead of storing and reusing the URL.
UPLOAD_URLS_ARE_SHORT_LIVED: Final = True

# --- Tasks ----------------------------------------------------------------------------------------------------

# DOCUMENTED statuses. Anything else is treated as still running (see models.TaskStatus).
RUNNING_STATUSES: Final = ("queued", "pending", "submitted", "in_progress")
TERMINAL_STATUSES: Final = ("completed", "failed")

# DOCUMENTED: result URLs expire 24 hours after completion (`expires_at` = `completed_at` + 86,400), so results
# are downloaded and posted as files, never as links.
RESULT_URL_LIFETIME_SECONDS: Final = 86_400

# DOCUMENTED: unknown task ids answer 404; a `400 {"message":"task_not_exist"}` variant has been reported.
TASK_NOT_EXIST: Final = "task_not_exist"

# DOCUMENTED: content-policy refusals of a submit answer 422 with this code; a task can also end "failed" for
# the same reason, with an error whose message names the policy.
CONTENT_POLICY_CODE: Final = "content_policy_violation"
# ASSUMED: the OpenAI-style codes for the same refusal (`moderation_blocked`, `content_filter`), which no page
# names but which a proxy in front of those models may pass through as they are.
CONTENT_POLICY_PASSED_THROUGH_CODES: Final = ("moderation_blocked", "content_filter")
CONTENT_POLICY_CODES: Final = (CONTENT_POLICY_CODE, *CONTENT_POLICY_PASSED_THROUGH_CODES)
# ASSUMED: a message naming the policy contains one of these markers (compared case-insensitively; the Chinese
# ones cover translated messages).
CONTENT_POLICY_MARKERS: Final = (
    "content policy",
    "content_policy",
    "safety system",
    "moderation",
    "违规",
    "敏感",
    "内容政策",
    "内容安全",
)

# ASSUMED: the documentation names no reason categories for a content-policy refusal; upstream models' messages
# often name one ("... flagged as violence", "sexual content", "涉及暴力"). A message containing one of these
# markers (case-insensitively) is read as that category; anything else has none. The keys are ids, not texts:
# callers show the message catalog's words for them (in the reader's language), never the message itself, which
# may carry anything.
CONTENT_POLICY_CATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    "sexual": ("sexual", "nudity", "nsfw", "色情", "裸"),
    "minors": ("minor", "child", "未成年"),
    "violence": ("violence", "violent", "gore", "暴力", "血腥"),
    "self-harm": ("self-harm", "self harm", "suicide", "自残", "自杀"),
    "hate": ("hate", "hateful", "仇恨"),
    "harassment": ("harassment", "bullying", "骚扰"),
    "illegal": ("illegal", "weapon", "drug", "违法"),
    "real people": ("public figure", "real person", "celebrity", "likeness", "名人"),
}

# DOCUMENTED polling advice: first look after about 5 s, then every 5–10 s with jitter.
RECOMMENDED_FIRST_POLL_DELAY: Final = 5.0
RECOMMENDED_POLL_INTERVAL: Final = 5.0

# --- Errors and rate limits -----------------------------------------------------------------------------------

# DOCUMENTED upstream error codes (`error.code`, sometimes an integer, sometimes a string).
INVALID_REQUEST_CODE: Final = "invalid_request"
AUTHENTICATION_ERROR_CODE: Final = "authentication_error"
INSUFFICIENT_QUOTA_CODE: Final = "insufficient_quota"
RATE_LIMIT_CODE: Final = "rate_limit_exceeded"
# DOCUMENTED: 503 with this code means submits are paused; lookups still work.
SUBMITS_PAUSED_CODE: Final = "rate_limit_unavailable"

# DOCUMENTED rate-limit headers; `X-RateLimit-Category` names the bucket.
RATE_LIMIT_CATEGORY_HEADER: Final = "X-RateLimit-Category"
RATE_LIMIT_CATEGORY_SUBMIT: Final = "async_submit"
RATE_LIMIT_CATEGORY_QUERY: Final = "async_query"

# --- Webhooks (optional: polling stays the default and the safety net) ------------------------------------------

# DOCUMENTED: webhooks are turned on per Token in the console: an HTTPS default URL, a signing secret (32 bytes,
# shown once per generate or rotate), "Task Webhooks" on, saved, and a test sent. A submit's `callback_url`
# replaces the Token's URL for that task, and may differ from it only in its path and query (same scheme, host
# and port). Without `callback_url` the Token's URL is called, if webhooks are on.
CALLBACK_URL_FIELD: Final = "callback_url"
# DOCUMENTED: a submit that sends `callback_url` while the Token has webhooks off, or no URL or secret, is answered
# 400 with this code. A 400 creates no task. ASSUMED: the code comes as `error.code` or, like `task_not_exist`,
# as the message; both are matched.
WEBHOOK_NOT_CONFIGURED_CODE: Final = "webhook_not_configured"

# DOCUMENTED events: one final event per task (completed or failed), sent at least once (deduplicate by the event
# id); a failure only once the upstream's own retries and the refund settled. `endpoint.test` is the console's
# test, with the task id below and zero times.
EVENT_COMPLETED: Final = "generation.completed"
EVENT_FAILED: Final = "generation.failed"
EVENT_TEST: Final = "endpoint.test"
TEST_EVENT_TASK_ID: Final = "endpoint_test"
# DOCUMENTED: the body is `{id: "evt_…", type, api_version: "v1", created_at, data: {task_id, client_business_id,
# task_type, model, status: SUCCESS|FAILURE, progress: "100%", result (the look-up's shape) or null,
# error {code, message} or null, submitted_at, finished_at}}`.
EVENT_API_VERSION: Final = "v1"

# DOCUMENTED headers of every delivery (also `User-Agent: ToAPIs-Webhook/1.0`).
WEBHOOK_ID_HEADER: Final = "X-ToAPIs-Webhook-Id"
WEBHOOK_TIMESTAMP_HEADER: Final = "X-ToAPIs-Webhook-Timestamp"
WEBHOOK_SIGNATURE_HEADER: Final = "X-ToAPIs-Webhook-Signature"
# DOCUMENTED: the signature header is `v1=<hex>`; for 24 hours after a secret rotation it is `v1=<new>,v1=<old>`.
# A delivery is genuine when any one of its v1 signatures matches.
WEBHOOK_SIGNATURE_SCHEME: Final = "v1"
# DOCUMENTED: the signature is the hex HMAC-SHA256, keyed with the Token's secret, of
# `<event id>.<timestamp>.<raw body>`, compared in constant time. ASSUMED: the key is the secret as the console
# shows it, as UTF-8 bytes, and the timestamp is Unix seconds written in decimal.
WEBHOOK_SIGNATURE_SEPARATOR: Final = "."
# DOCUMENTED: a timestamp more than 300 seconds away from now (either way) is refused. Every retry is signed
# again with a fresh timestamp and carries the same event id.
WEBHOOK_TOLERANCE_SECONDS: Final = 300
# DOCUMENTED: only a 2xx answer counts as delivered; redirects are not followed; 10 s timeout; retries after about
# 10 s, 30 s, 2 min, 10 min, 1 h, 6 h and 24 h. ASSUMED: those are counted from the first attempt, so every
# repeat of an event comes within a day of it, and an event id is remembered for 25 hours. (A repeat that came
# later still changes nothing: a webhook only wakes the look-up of a task that is still followed.)
WEBHOOK_DELIVERY_TIMEOUT_SECONDS: Final = 10
WEBHOOK_RETRY_DELAYS_SECONDS: Final = (10, 30, 120, 600, 3_600, 21_600, 86_400)
WEBHOOK_EVENT_RETENTION_SECONDS: Final = 25 * 3_600
# ASSUMED: an event is small (ids, a status, a few result URLs); anything above this is refused unread.
WEBHOOK_MAX_BODY_BYTES: Final = 256 * 1024
