"""Discord's REST API under ``/api/v10``, its CDN, and the HTTP behaviour discord.py depends on.

- JSON answers carry ``Content-Type: application/json`` exactly: discord.py parses a body as JSON only
  when the header is exactly that, so ``aiohttp.web.json_response`` (which adds a charset) would break it.
- Every API answer has ``X-RateLimit-*`` headers; a 429 has ``Retry-After``, a JSON body with
  ``retry_after`` and ``global``, and a ``Via`` header: discord.py retries a 429 only when ``Via`` is there.
- Unknown routes answer ``404 {"message": "404: Not Found", "code": 0}`` and are recorded.
- Message objects the bot reads follow the Message Content rule (``_discord_content_rule``); the rules of its
  own channel messages are in ``_discord_bot_posts``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes._discord_bot_posts import BotChannelMessages
from tests.fakes._discord_channels import FakeChannel
from tests.fakes._discord_commands import CommandSync, build_stored_commands, stored_command
from tests.fakes._discord_files import UploadedFile
from tests.fakes._discord_messages import SETTABLE_FLAGS, DiscordError, summarize_files, unknown
from tests.fakes._discord_model import Permission
from tests.fakes._discord_records import InteractionRecord, RecordedRequest
from tests.fakes._discord_state import DiscordState, MessageBody

API = "/api/v10"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Routes that authenticate with the interaction token in the path, not the bot token.
_TOKEN_ROUTES = re.compile(r"^/(interactions/[^/]+/[^/]+/callback|webhooks/[^/]+/[^/]+)")
_MAJOR = ("channel_id", "guild_id", "webhook_token", "interaction_id")

# What a handler learned about a request, for the record the middleware writes.
BODY_KEY: web.RequestKey[Any] = web.RequestKey("body")
FILES_KEY: web.RequestKey[tuple[tuple[str, str, int], ...]] = web.RequestKey("files")
INTERACTION_KEY: web.RequestKey[InteractionRecord] = web.RequestKey("interaction")


def json_answer(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer with Discord's exact content type (no charset)."""
    response = web.Response(body=json.dumps(data).encode(), status=status, headers=headers)
    response.headers["Content-Type"] = "application/json"
    return response


def no_content() -> web.Response:
    """``204 No Content``."""
    return web.Response(status=204)


@dataclass
class Injection:
    """Planned 429 answers for requests matching ``pattern`` (``"PATCH /webhooks/*"``)."""

    pattern: str
    remaining: int
    retry_after: float
    is_global: bool = False
    scope: str = "user"
    hits: int = 0
    after: str | None = None
    """Armed only once a request matching this pattern has succeeded (``None``: armed at once)."""

    def armed(self, answered: list[RecordedRequest]) -> bool:
        """Whether the injection applies now, given the requests answered so far."""
        if self.after is None:
            return True
        return any(
            r.status < 400 and fnmatch.fnmatchcase(f"{r.method} {_api_path(r.path)}", self.after) for r in answered
        )


@dataclass
class _Bucket:
    window_start: float
    count: int = 0


class RestApi:
    """The aiohttp application: REST routes, CDN, gateway endpoint, and the middleware around them."""

    def __init__(self, state: DiscordState, gateway_handler: Handler) -> None:
        self.state = state
        self.injections: list[Injection] = []
        self.bot_posts = BotChannelMessages(state)
        self._buckets: dict[str, _Bucket] = {}
        self.app = web.Application(
            middlewares=[self._middleware],
            client_max_size=12 * state.config.max_file_size + 1024 * 1024,
        )
        r = self.app.router
        for path in ("/gateway", "/gateway/", "/resume-gateway", "/resume-gateway/"):
            r.add_get(path, gateway_handler)
        for folder in ("attachments", "ephemeral-attachments", "media/attachments", "media/ephemeral-attachments"):
            r.add_get(f"/{folder}/{{channel_id}}/{{attachment_id}}/{{filename}}", self.cdn)
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/users/@me", self.get_me),
            ("GET", "/users/@me/guilds", self.get_my_guilds),
            ("DELETE", "/users/@me/guilds/{guild_id}", self.leave_guild),
            ("GET", "/users/{user_id}", self.get_user),
            ("POST", "/users/@me/channels", self.create_dm),
            ("GET", "/oauth2/applications/@me", self.get_application),
            ("GET", "/applications/@me", self.get_application),
            ("GET", "/gateway", self.get_gateway),
            ("GET", "/gateway/bot", self.get_gateway_bot),
            ("GET", "/applications/{application_id}/commands", self.get_commands),
            ("PUT", "/applications/{application_id}/commands", self.put_commands),
            ("POST", "/applications/{application_id}/commands", self.post_command),
            ("GET", "/applications/{application_id}/commands/{command_id}", self.get_command),
            ("PATCH", "/applications/{application_id}/commands/{command_id}", self.patch_command),
            ("DELETE", "/applications/{application_id}/commands/{command_id}", self.delete_command),
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", self.get_commands),
            ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", self.put_commands),
            ("POST", "/applications/{application_id}/guilds/{guild_id}/commands", self.post_command),
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands/permissions", self.empty_list),
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}", self.get_command),
            (
                "GET",
                "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}/permissions",
                self.no_command_permissions,
            ),
            ("PATCH", "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}", self.patch_command),
            ("DELETE", "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}", self.delete_command),
            ("GET", "/applications/{application_id}/entitlements", self.empty_list),
            ("GET", "/applications/{application_id}/emojis", self.empty_items),
            ("POST", "/interactions/{interaction_id}/{interaction_token}/callback", self.callback),
            ("POST", "/webhooks/{application_id}/{webhook_token}", self.execute_webhook),
            ("GET", "/webhooks/{application_id}/{webhook_token}/messages/{message_id}", self.get_webhook_message),
            ("PATCH", "/webhooks/{application_id}/{webhook_token}/messages/{message_id}", self.edit_webhook_message),
            ("DELETE", "/webhooks/{application_id}/{webhook_token}/messages/{message_id}", self.delete_webhook_message),
            ("GET", "/channels/{channel_id}", self.get_channel),
            ("GET", "/channels/{channel_id}/messages", self.get_messages),
            ("POST", "/channels/{channel_id}/messages", self.post_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self.patch_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message),
            ("POST", "/channels/{channel_id}/typing", self.typing),
            ("GET", "/guilds/{guild_id}", self.get_guild),
            ("GET", "/guilds/{guild_id}/channels", self.get_guild_channels),
            ("GET", "/guilds/{guild_id}/roles", self.get_roles),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member),
        ]
        for method, path, handler in routes:
            r.add_route(method, API + path, handler)

    # --- middleware ---------------------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(("/gateway", "/resume-gateway")):
            return await handler(request)
        is_api = path.startswith(API + "/") or path == API
        api_path = path[len(API) :] if is_api else path
        route = _route_template(request)
        response: web.StreamResponse
        error_code: int | None = None
        try:
            if route is None:
                if _method_not_allowed(request):
                    raise DiscordError(405, 0, "405: Method Not Allowed")
                raise DiscordError(404, 0, "404: Not Found")
            if is_api:
                self._authenticate(request, api_path)
                injected = self._injected(request.method, api_path)
                if injected is not None:
                    raise injected
                self._rate_limit(request.method, api_path, route, request)
            response = await handler(request)
        except DiscordError as error:
            error_code = error.code
            response = json_answer(error.body(), error.status, headers=error.headers)
        if is_api:
            for name, value in self._ratelimit_headers(request.method, api_path, route, request).items():
                # A 429 carries its own numbers.
                response.headers.setdefault(name, value)
        record = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            time=self.state.now(),
            status=response.status,
            route=route,
            body=request.get(BODY_KEY),
            files=request.get(FILES_KEY, ()),
            error_code=error_code,
        )
        self.state.requests.append(record)
        if route is None:
            self.state.unknown_routes.append(record)
        interaction = request.get(INTERACTION_KEY)
        if interaction is not None and response.status >= 400:
            interaction.refused_requests.append(record)
        self.state.changed()
        return response

    def _authenticate(self, request: web.Request, api_path: str) -> None:
        if _TOKEN_ROUTES.match(api_path):
            return
        if request.headers.get("Authorization") != f"Bot {self.state.config.token}":
            raise DiscordError(401, 0, "401: Unauthorized")

    def _injected(self, method: str, api_path: str) -> DiscordError | None:
        target = f"{method} {api_path}"
        for injection in self.injections:
            if (
                injection.remaining > 0
                and fnmatch.fnmatchcase(target, injection.pattern)
                and injection.armed(self.state.requests)
            ):
                injection.remaining -= 1
                injection.hits += 1
                return _too_many(injection.retry_after, is_global=injection.is_global, scope=injection.scope)
        return None

    def _bucket_key(self, method: str, route: str, request: web.Request) -> str:
        major = [f"{k}={request.match_info[k]}" for k in _MAJOR if k in request.match_info]
        return f"{method} {route} {' '.join(major)}"

    def _limits(self, method: str, api_path: str) -> tuple[int, float]:
        target = f"{method} {api_path}"
        for pattern, limits in self.state.config.route_limits.items():
            if fnmatch.fnmatchcase(target, pattern):
                return limits
        return self.state.config.rate_limit

    def _rate_limit(self, method: str, api_path: str, route: str, request: web.Request) -> None:
        limit, window = self._limits(method, api_path)
        key = self._bucket_key(method, route, request)
        now = self.state.now()
        bucket = self._buckets.get(key)
        if bucket is None or now - bucket.window_start >= window:
            bucket = self._buckets[key] = _Bucket(window_start=now)
        if bucket.count >= limit:
            retry_after = round(window - (now - bucket.window_start), 3)
            raise _too_many(max(retry_after, 0.001), is_global=False, scope="user", bucket=_bucket_hash(key))
        bucket.count += 1

    def _ratelimit_headers(self, method: str, api_path: str, route: str | None, request: web.Request) -> dict[str, str]:
        if route is None:
            return {}
        limit, window = self._limits(method, api_path)
        key = self._bucket_key(method, route, request)
        bucket = self._buckets.get(key)
        now = self.state.now()
        used = bucket.count if bucket is not None else 0
        started = bucket.window_start if bucket is not None else now
        reset_after = max(window - (now - started), 0.0)
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(limit - used, 0)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": _bucket_hash(f"{method} {route}"),
        }

    # --- bodies -------------------------------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> MessageBody:
        """The JSON body, or ``payload_json`` plus ``files[n]`` parts of a multipart body."""
        content_type = request.content_type
        if content_type.startswith("multipart/"):
            payload: Any = {}
            files: list[UploadedFile] = []
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                name = part.name or ""
                data = bytes(await part.read(decode=False))
                if name == "payload_json":
                    payload = _parse_json(data)
                elif part.filename is not None:
                    files.append(
                        UploadedFile(
                            field=name,
                            filename=part.filename,
                            data=data,
                            declared_content_type=part.headers.get("Content-Type"),
                        )
                    )
            body = MessageBody(json=payload if isinstance(payload, dict) else {"_": payload}, files=files)
            request[FILES_KEY] = summarize_files((f.field, f.filename, f.data) for f in files)
        else:
            raw = await request.read()
            parsed = _parse_json(raw) if raw else {}
            body = MessageBody(json=parsed if isinstance(parsed, dict) else {"_": parsed})
        request[BODY_KEY] = body.json
        return body

    async def _json(self, request: web.Request) -> Any:
        raw = await request.read()
        parsed = _parse_json(raw) if raw else None
        request[BODY_KEY] = parsed
        return parsed

    # --- users, application, gateway ------------------------------------------------------------------------

    async def get_me(self, request: web.Request) -> web.StreamResponse:
        """``GET /users/@me`` (what ``login`` asks first)."""
        me = self.state.bot_user.to_payload()
        return json_answer({**me, "verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"})

    async def get_my_guilds(self, request: web.Request) -> web.StreamResponse:
        """``GET /users/@me/guilds?limit&before&after&with_counts``: partial guilds in id order, at most ``limit``
        (1-200, default 200) a page; ``after`` pages forwards, ``before`` backwards (the last ``limit`` before it)."""
        query = request.query
        try:
            limit = int(query.get("limit", "200"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 200:
            raise DiscordError(
                400,
                50035,
                "Invalid Form Body",
                errors={
                    "limit": {
                        "_errors": [{"code": "NUMBER_TYPE_MAX", "message": "Int value should be between 1 and 200."}]
                    }
                },
            )
        guilds = sorted(self.state.guilds, key=lambda g: g.id)
        before, after = _opt_int(query.get("before")), _opt_int(query.get("after"))
        if after is not None:
            guilds = [g for g in guilds if g.id > after][:limit]
        elif before is not None:
            guilds = [g for g in guilds if g.id < before][-limit:]
        else:
            guilds = guilds[:limit]
        counts = query.get("with_counts", "false").lower() in ("1", "true")
        return json_answer(
            [
                {
                    "id": str(g.id),
                    "name": g.name,
                    "icon": None,
                    "banner": None,
                    "owner": False,
                    "permissions": str(g.base_permissions(g.bot_member)),
                    "features": list(g.features),
                    **({"approximate_member_count": len(g.members), "approximate_presence_count": 0} if counts else {}),
                }
                for g in guilds
            ]
        )

    async def leave_guild(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /users/@me/guilds/{id}``: the bot leaves the guild (GUILD_DELETE follows, as on Discord)."""
        guild = self.state.guild(_int(request, "guild_id", "Guild", 10004))
        self.state.leave_guild(guild)
        return no_content()

    async def get_user(self, request: web.Request) -> web.StreamResponse:
        """``GET /users/{id}``."""
        return json_answer(self.state.user(_int(request, "user_id", "User", 10013)).to_payload())

    async def create_dm(self, request: web.Request) -> web.StreamResponse:
        """``POST /users/@me/channels``."""
        data = await self._json(request)
        recipient = data.get("recipient_id") if isinstance(data, dict) else None
        try:
            user = self.state.user(int(str(recipient)))
        except (TypeError, ValueError):
            raise unknown("User", 10013) from None
        return json_answer(self.state.dm_channel(user).to_payload())

    async def get_application(self, request: web.Request) -> web.StreamResponse:
        """``GET /oauth2/applications/@me`` (what ``login`` asks second)."""
        state = self.state
        return json_answer(
            {
                "id": str(state.application_id),
                "name": state.bot_user.username,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot_public": state.application.public,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": 1 << 23 | 1 << 19,
                "owner": state.application.owner_payload(),
                "team": state.application.team_payload(),
                "bot": state.bot_user.to_payload(),
                "hook": True,
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "tags": [],
                "integration_types_config": {"0": {}},
                "approximate_guild_count": len(state.guilds),
            }
        )

    async def get_gateway(self, request: web.Request) -> web.StreamResponse:
        """``GET /gateway``."""
        return json_answer({"url": f"ws://{request.host}/gateway"})

    async def get_gateway_bot(self, request: web.Request) -> web.StreamResponse:
        """``GET /gateway/bot`` (asked by an ``AutoShardedBot`` without ``shard_count``)."""
        return json_answer(
            {
                "url": f"ws://{request.host}/gateway",
                "shards": self.state.config.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 86_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    # --- commands -----------------------------------------------------------------------------------------------

    def _command_scope(self, request: web.Request) -> tuple[int | None, list[dict[str, Any]]]:
        application_id = _int(request, "application_id", "Application", 10002)
        if application_id != self.state.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        if "guild_id" in request.match_info:
            guild = self.state.guild(_int(request, "guild_id", "Guild", 10004))
            return guild.id, self.state.guild_commands.setdefault(guild.id, [])
        return None, self.state.global_commands

    async def get_commands(self, request: web.Request) -> web.StreamResponse:
        """``GET /applications/{app}[/guilds/{guild}]/commands``."""
        _, commands = self._command_scope(request)
        return json_answer(commands)

    async def put_commands(self, request: web.Request) -> web.StreamResponse:
        """``PUT /applications/{app}[/guilds/{guild}]/commands``: the bulk overwrite ``tree.sync()`` sends."""
        guild_id, commands = self._command_scope(request)
        payload = await self._json(request)
        try:
            stored = build_stored_commands(
                payload,
                application_id=self.state.application_id,
                guild_id=guild_id,
                existing=commands,
                new_id=self.state.new_id,
            )
        except DiscordError as error:
            self.state.command_syncs.append(CommandSync(self.state.now(), guild_id, payload, error.status))
            raise
        commands[:] = stored
        self.state.command_syncs.append(CommandSync(self.state.now(), guild_id, payload, 200))
        return json_answer(stored)

    async def post_command(self, request: web.Request) -> web.StreamResponse:
        """``POST .../commands``: create or replace one command by name and type."""
        guild_id, commands = self._command_scope(request)
        command = await self._json(request)
        if not isinstance(command, dict):
            raise DiscordError(400, 50035, "Invalid Form Body")
        others = [c for c in commands if (c["type"], c["name"]) != (command.get("type", 1), command.get("name"))]
        existing = [c for c in commands if c not in others]
        stored = build_stored_commands(
            [command],
            application_id=self.state.application_id,
            guild_id=guild_id,
            existing=existing,
            new_id=self.state.new_id,
        )[0]
        commands[:] = [*others, stored]
        return json_answer(stored, 200 if existing else 201)

    def _command(self, request: web.Request) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        _, commands = self._command_scope(request)
        wanted = request.match_info["command_id"]
        found = next((c for c in commands if c["id"] == wanted), None)
        if found is None:
            raise unknown("application command", 10063)
        return commands, found

    async def get_command(self, request: web.Request) -> web.StreamResponse:
        """``GET .../commands/{id}``."""
        return json_answer(self._command(request)[1])

    async def patch_command(self, request: web.Request) -> web.StreamResponse:
        """``PATCH .../commands/{id}``."""
        commands, found = self._command(request)
        changes = await self._json(request)
        merged = {**found, **(changes if isinstance(changes, dict) else {})}
        build_stored_commands(
            [merged],
            application_id=self.state.application_id,
            guild_id=None,
            existing=[],
            new_id=self.state.new_id,
        )
        updated = stored_command(
            merged,
            command_id=int(found["id"]),
            version=self.state.new_id(),
            application_id=self.state.application_id,
            guild_id=int(found["guild_id"]) if "guild_id" in found else None,
        )
        commands[commands.index(found)] = updated
        return json_answer(updated)

    async def delete_command(self, request: web.Request) -> web.StreamResponse:
        """``DELETE .../commands/{id}``."""
        commands, found = self._command(request)
        commands.remove(found)
        return no_content()

    async def no_command_permissions(self, request: web.Request) -> web.StreamResponse:
        """No overrides were set in the server's Integrations settings (the fake has none)."""
        self._command(request)
        raise unknown("application command permissions", 10066)

    async def empty_list(self, request: web.Request) -> web.StreamResponse:
        """Routes discord.py may ask that have nothing in the fake."""
        return json_answer([])

    async def empty_items(self, request: web.Request) -> web.StreamResponse:
        """``GET /applications/{app}/emojis``."""
        return json_answer({"items": []})

    # --- interactions and webhooks --------------------------------------------------------------------------

    async def callback(self, request: web.Request) -> web.StreamResponse:
        """``POST /interactions/{id}/{token}/callback[?with_response=true]``."""
        interaction_id = _int(request, "interaction_id", "interaction", 10062)
        record = self.state.interactions.get(interaction_id)
        if record is not None:
            request[INTERACTION_KEY] = record
        body = await self._body(request)
        with_response = request.query.get("with_response", "false").lower() in ("1", "true")
        result = self.state.handle_callback(
            interaction_id, request.match_info["interaction_token"], body, with_response=with_response
        )
        return no_content() if result is None else json_answer(result)

    def _webhook(self, request: web.Request) -> InteractionRecord:
        application_id = _int(request, "application_id", "Webhook", 10015)
        record = self.state.interaction_by_token(request.match_info["webhook_token"])
        if record is not None:
            request[INTERACTION_KEY] = record
        return self.state.webhook_interaction(application_id, request.match_info["webhook_token"])

    async def execute_webhook(self, request: web.Request) -> web.StreamResponse:
        """``POST /webhooks/{id}/{token}``: a channel webhook's message (``?wait=true``: answered with it, else
        204), or an interaction follow-up (``wait`` is always true for those)."""
        hook_id = _int(request, "application_id", "Webhook", 10015)
        channel_hook = self.state.channel_webhooks.find(hook_id, request.match_info["webhook_token"])
        if channel_hook is not None:
            body = await self._body(request)
            message = self.state.create_message(
                channel=channel_hook.channel,
                author=channel_hook.user,
                body=body,
                via="webhook",
                flags_allowed=SETTABLE_FLAGS,
                webhook_id=channel_hook.id,
            )
            if request.query.get("wait", "false").lower() in ("1", "true"):
                return json_answer(self.state.message_for_bot(message))
            return no_content()
        record = self._webhook(request)
        body = await self._body(request)
        message = self.state.create_followup(record, body)
        return json_answer(self.state.message_for_bot(message))

    async def get_webhook_message(self, request: web.Request) -> web.StreamResponse:
        """``GET /webhooks/{app}/{token}/messages/{id|@original}``."""
        record = self._webhook(request)
        message = self.state.webhook_message(record, request.match_info["message_id"])
        return json_answer(self.state.message_for_bot(message))

    async def edit_webhook_message(self, request: web.Request) -> web.StreamResponse:
        """``PATCH /webhooks/{app}/{token}/messages/{id|@original}``."""
        record = self._webhook(request)
        body = await self._body(request)
        message = self.state.edit_webhook_message(record, request.match_info["message_id"], body)
        return json_answer(self.state.message_for_bot(message))

    async def delete_webhook_message(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /webhooks/{app}/{token}/messages/{id|@original}``."""
        record = self._webhook(request)
        self.state.delete_webhook_message(record, request.match_info["message_id"])
        return no_content()

    # --- channels -----------------------------------------------------------------------------------------------

    def _channel(self, request: web.Request) -> FakeChannel:
        return self.state.channel(_int(request, "channel_id", "Channel", 10003))

    async def get_channel(self, request: web.Request) -> web.StreamResponse:
        """``GET /channels/{id}``."""
        channel = self._channel(request)
        self.state.require_permissions(channel, 0)
        return json_answer(channel.to_payload())

    async def get_messages(self, request: web.Request) -> web.StreamResponse:
        """``GET /channels/{id}/messages?limit&before&after&around``."""
        channel = self._channel(request)
        query = request.query
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise DiscordError(
                400,
                50035,
                "Invalid Form Body",
                errors={
                    "limit": {
                        "_errors": [{"code": "NUMBER_TYPE_MAX", "message": "Int value should be between 1 and 100."}]
                    }
                },
            )
        messages = self.bot_posts.history(
            channel,
            limit=limit,
            before=_opt_int(query.get("before")),
            after=_opt_int(query.get("after")),
            around=_opt_int(query.get("around")),
        )
        return json_answer([self.state.message_for_bot(m) for m in messages])

    async def post_message(self, request: web.Request) -> web.StreamResponse:
        """``POST /channels/{id}/messages`` (JSON or multipart)."""
        channel = self._channel(request)
        body = await self._body(request)
        message = self.bot_posts.post(channel, body)
        return json_answer(self.state.message_for_bot(message))

    async def get_message(self, request: web.Request) -> web.StreamResponse:
        """``GET /channels/{id}/messages/{mid}``."""
        channel = self._channel(request)
        self.state.require_permissions(channel, Permission.READ_MESSAGE_HISTORY)
        message = self.state.visible_message(channel, _int(request, "message_id", "Message", 10008))
        return json_answer(self.state.message_for_bot(message))

    async def patch_message(self, request: web.Request) -> web.StreamResponse:
        """``PATCH /channels/{id}/messages/{mid}``."""
        channel = self._channel(request)
        body = await self._body(request)
        message = self.bot_posts.edit(channel, _int(request, "message_id", "Message", 10008), body)
        return json_answer(self.state.message_for_bot(message))

    async def delete_message(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /channels/{id}/messages/{mid}``."""
        channel = self._channel(request)
        self.bot_posts.delete(channel, _int(request, "message_id", "Message", 10008))
        return no_content()

    async def typing(self, request: web.Request) -> web.StreamResponse:
        """``POST /channels/{id}/typing``."""
        channel = self._channel(request)
        send = Permission.SEND_MESSAGES_IN_THREADS if channel.is_thread else Permission.SEND_MESSAGES
        self.state.require_permissions(channel, send)
        return no_content()

    # --- guilds -------------------------------------------------------------------------------------------------

    async def get_guild(self, request: web.Request) -> web.StreamResponse:
        """``GET /guilds/{id}``."""
        guild = self.state.guild(_int(request, "guild_id", "Guild", 10004))
        payload = guild.to_create_payload(members=[], bot_user=self.state.bot_user)
        for key in (
            "members",
            "channels",
            "threads",
            "presences",
            "voice_states",
            "joined_at",
            "large",
            "member_count",
            "unavailable",
            "lazy",
            "stage_instances",
            "guild_scheduled_events",
            "soundboard_sounds",
            "embedded_activities",
            "activity_instances",
            "application_command_counts",
        ):
            payload.pop(key, None)
        return json_answer(payload)

    async def get_guild_channels(self, request: web.Request) -> web.StreamResponse:
        """``GET /guilds/{id}/channels``."""
        guild = self.state.guild(_int(request, "guild_id", "Guild", 10004))
        return json_answer([c.to_payload() for c in guild.channels])

    async def get_roles(self, request: web.Request) -> web.StreamResponse:
        """``GET /guilds/{id}/roles``."""
        guild = self.state.guild(_int(request, "guild_id", "Guild", 10004))
        return json_answer([r.to_payload() for r in guild.roles])

    async def get_member(self, request: web.Request) -> web.StreamResponse:
        """``GET /guilds/{id}/members/{user_id}``."""
        guild = self.state.guild(_int(request, "guild_id", "Guild", 10004))
        member = guild.member(_int(request, "user_id", "Member", 10007))
        if member is None:
            raise unknown("Member", 10007)
        return json_answer(member.to_payload())

    # --- CDN ------------------------------------------------------------------------------------------------------

    async def cdn(self, request: web.Request) -> web.StreamResponse:
        """Attachment bytes behind a signed, unexpired URL; ``404`` otherwise, as Discord's CDN answers."""
        info = request.match_info
        folder = request.path.split("/")[1] if not request.path.startswith("/media/") else request.path.split("/")[2]
        signed_path = f"/{folder}/{info['channel_id']}/{info['attachment_id']}/{info['filename']}"
        try:
            attachment_id = int(info["attachment_id"])
        except ValueError:
            attachment_id = -1
        self.state.cdn_requests += 1
        self.state.changed()
        gate = self.state.cdn_gate
        if gate is not None:
            await gate.wait()
        stored = self.state.cdn_lookup(signed_path, request.query, attachment_id)
        if stored is None or stored.filename != info["filename"]:
            return web.Response(status=404, text="This content is no longer available.")
        headers = {"Content-Type": stored.content_type or "application/octet-stream"}
        return web.Response(body=stored.data, headers=headers)


def _too_many(retry_after: float, *, is_global: bool, scope: str, bucket: str | None = None) -> DiscordError:
    headers = {
        "Retry-After": str(max(1, math.ceil(retry_after))),
        "X-RateLimit-Scope": scope,
        "Via": "1.1 google",
    }
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    else:
        headers.update(
            {
                "X-RateLimit-Limit": "1",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                "X-RateLimit-Bucket": bucket or "injected",
            }
        )
    return DiscordError(
        429,
        0,
        "You are being rate limited.",
        headers=headers,
        extra={"retry_after": retry_after, "global": is_global},
    )


def _bucket_hash(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def _api_path(path: str) -> str:
    """A recorded path without the ``/api/v10`` prefix, as injection patterns are written."""
    return path[len(API) :] if path.startswith(API + "/") else path


def _route_template(request: web.Request) -> str | None:
    info = request.match_info
    if isinstance(info, web.UrlMappingMatchInfo) and info.http_exception is None:
        canonical = info.route.resource.canonical if info.route.resource is not None else None
        if canonical is not None:
            return canonical[len(API) :] if canonical.startswith(API) else canonical
    return None


def _method_not_allowed(request: web.Request) -> bool:
    exception = request.match_info.http_exception
    return exception is not None and exception.status == 405


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None


def _int(request: web.Request, key: str, kind: str, code: int) -> int:
    try:
        return int(request.match_info[key])
    except (KeyError, ValueError):
        raise unknown(kind, code) from None


def _opt_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise DiscordError(400, 50035, "Invalid Form Body") from None
