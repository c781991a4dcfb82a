"""Interactions a test causes as a member: slash and context menu commands, button clicks, modal submits.

Each is checked as Discord's client checks it before anything reaches the bot (the command exists in the
synced set, the member may use it here, every option fits its definition) and refused with
:class:`InvocationRefused` otherwise. A valid one becomes an INTERACTION_CREATE payload with everything
discord.py reads: ``attachment_size_limit``, ``app_permissions``, ``entitlements``,
``authorizing_integration_owners``, ``context``, locales, the member with its permissions and role ids, the
channel (in a thread: with its ``parent_id``, ``type`` and ``thread_metadata``), resolved data. Interactions
reach the bot whatever it may do in the channel (``app_permissions`` tells it), and even from a guild whose
GUILD_CREATE has not reached it yet. A message context menu's ``data.resolved.messages`` holds the target in
full (content, files, a forward's snapshots) even for a bot without the Message Content intent.
"""

from __future__ import annotations

import base64
import math
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from tests.fakes._discord_channels import FakeChannel
from tests.fakes._discord_commands import (
    CommandType,
    InteractionContext,
    InvocationRefused,
    OptionType,
    allowed_in_bot_dm,
    allowed_in_guild,
    find_subcommand,
)
from tests.fakes._discord_files import Upload
from tests.fakes._discord_modals import check_choice, submitted_components
from tests.fakes._discord_model import (
    ALL_PERMISSIONS,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    Permission,
)
from tests.fakes._discord_records import EPHEMERAL, InteractionRecord, InteractionType, MessageRecord, iter_components
from tests.fakes._discord_state import DiscordState

Invoker = FakeMember | FakeUser
MAX_SAFE_INTEGER = 2**53


def new_token(interaction_id: int) -> str:
    """An interaction token shaped like Discord's (URL-safe base64 of ``interaction:<id>:<random>``)."""
    raw = f"interaction:{interaction_id}:{secrets.token_urlsafe(48)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Invocations:
    """Builds, checks and registers the interactions a test triggers."""

    def __init__(self, state: DiscordState) -> None:
        self.state = state
        self._submitted_modals: set[int] = set()

    # --- context ------------------------------------------------------------------------------------------------

    def _where(self, user: Invoker, channel: FakeChannel | None) -> tuple[FakeUser, FakeMember | None, FakeChannel]:
        if isinstance(user, FakeMember):
            if channel is None:
                channel = next(iter(user.guild.channels), None)
                if channel is None:
                    raise InvocationRefused(f"{user.guild.name} has no channel")
            if channel.guild is not user.guild:
                raise InvocationRefused(f"{user.user.username} is not a member of the guild of #{channel.name}")
            if not user.guild.can_see(user, channel):
                raise InvocationRefused(f"{user.user.username} cannot see #{channel.name}")
            if not channel.type.holds_messages:
                raise InvocationRefused(f"#{channel.name} has no chat to run a command in")
            return user.user, user, channel
        if channel is not None and channel.guild is not None:
            raise InvocationRefused("a guild channel needs a FakeMember, not a FakeUser")
        return user, None, channel or self.state.dm_channel(user)

    def _find_command(self, name: str, kind: CommandType, guild: FakeGuild | None) -> dict[str, Any]:
        scopes: list[list[dict[str, Any]]] = []
        if guild is not None:
            scopes.append(self.state.guild_commands.get(guild.id, []))
        scopes.append(self.state.global_commands)
        for commands in scopes:
            for command in commands:
                if command["name"] == name and command.get("type", 1) == kind:
                    if guild is not None and not allowed_in_guild(command):
                        raise InvocationRefused(f"{name!r} is not available in servers (contexts)")
                    if guild is None and not allowed_in_bot_dm(command):
                        raise InvocationRefused(f"{name!r} is not available in DMs (contexts / dm_permission)")
                    return command
        raise InvocationRefused(f"no synced {kind.name.lower()} command named {name!r}")

    def _check_member_may_use(
        self, command: Mapping[str, Any], member: FakeMember | None, channel: FakeChannel
    ) -> None:
        if member is None:
            return
        permissions = member.guild.permissions_in(member, channel)
        if not permissions & Permission.USE_APPLICATION_COMMANDS:
            raise InvocationRefused(f"{member.user.username} may not use application commands in #{channel.name}")
        required = command.get("default_member_permissions")
        if required is None:
            return
        needed = int(required)
        if permissions == ALL_PERMISSIONS:
            return
        if needed == 0 or permissions & needed != needed:
            raise InvocationRefused(
                f"{member.user.username} lacks default_member_permissions={needed} for {command['name']!r}"
            )

    # --- payloads -----------------------------------------------------------------------------------------------

    def _register(
        self,
        *,
        kind: InteractionType,
        name: str,
        data: dict[str, Any],
        user: FakeUser,
        member: FakeMember | None,
        channel: FakeChannel,
        source_message: MessageRecord | None = None,
        parent: InteractionRecord | None = None,
        deadline: float | None,
        token_lifetime: float | None,
        locale: str | None,
    ) -> InteractionRecord:
        state = self.state
        interaction_id = state.new_id()
        token = new_token(interaction_id)
        guild = channel.guild
        limit = state.filesize_limit(channel)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(state.application_id),
            "type": int(kind),
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale or user.locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": limit,
            "app_permissions": str(state.bot_permissions(channel)),
            "channel_id": str(channel.id),
        }
        channel_payload = channel.to_payload()
        if guild is not None and member is not None:
            member_permissions = guild.permissions_in(member, channel)
            channel_payload["permissions"] = str(member_permissions)
            payload.update(
                {
                    "guild_id": str(guild.id),
                    "guild": guild.to_partial_payload(),
                    "guild_locale": guild.locale,
                    "member": member.to_payload(permissions=member_permissions),
                    "context": int(InteractionContext.GUILD),
                    "authorizing_integration_owners": {"0": str(guild.id)},
                }
            )
        else:
            payload.update(
                {
                    "user": user.to_payload(),
                    "context": int(InteractionContext.BOT_DM),
                    "authorizing_integration_owners": {"0": "0"},
                }
            )
        payload["channel"] = channel_payload
        if source_message is not None:
            payload["message"] = state.message_payload(source_message)
        now = state.now()
        record = InteractionRecord(
            id=interaction_id,
            token=token,
            type=kind,
            name=name,
            user=user,
            member=member,
            guild=guild,
            channel=channel,
            payload=payload,
            created_at=now,
            deadline=now + (state.config.ack_deadline if deadline is None else deadline),
            token_expires_at=now + (state.config.token_lifetime if token_lifetime is None else token_lifetime),
            source_message=source_message,
            parent=parent,
        )
        state.register_interaction(record)
        return record

    # --- slash commands -----------------------------------------------------------------------------------------

    def slash(
        self,
        name: str,
        options: Mapping[str, Any],
        *,
        user: Invoker,
        channel: FakeChannel | None,
        deadline: float | None,
        token_lifetime: float | None,
        locale: str | None,
    ) -> InteractionRecord:
        """``/name [group] [sub] option:value...``; ``name`` may be ``"quota set"``."""
        words = name.split()
        if not words:
            raise InvocationRefused("empty command name")
        invoker, member, where = self._where(user, channel)
        command = self._find_command(words[0], CommandType.CHAT_INPUT, where.guild)
        self._check_member_may_use(command, member, where)
        chain, leaf = find_subcommand(command, words[1:])
        resolved: dict[str, dict[str, Any]] = {}
        values = self._convert_options(leaf.get("options") or [], options, where, resolved)
        for wrapper in reversed(chain):
            values = [{"name": wrapper["name"], "type": wrapper["type"], "options": values}]
        data: dict[str, Any] = {"id": command["id"], "name": command["name"], "type": 1, "options": values}
        if resolved:
            data["resolved"] = resolved
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return self._register(
            kind=InteractionType.APPLICATION_COMMAND,
            name=" ".join(words),
            data=data,
            user=invoker,
            member=member,
            channel=where,
            deadline=deadline,
            token_lifetime=token_lifetime,
            locale=locale,
        )

    def autocomplete(
        self,
        name: str,
        options: Mapping[str, Any],
        *,
        focused: str,
        user: Invoker,
        channel: FakeChannel | None,
        locale: str | None,
    ) -> InteractionRecord:
        """What Discord's client sends while a member types in an autocomplete option: the options typed so far,
        as they are (nothing is checked yet, required ones may be missing), the one being typed `focused`."""
        words = name.split()
        invoker, member, where = self._where(user, channel)
        command = self._find_command(words[0], CommandType.CHAT_INPUT, where.guild)
        self._check_member_may_use(command, member, where)
        chain, leaf = find_subcommand(command, words[1:])
        definitions = {d["name"]: d for d in leaf.get("options") or []}
        if not definitions.get(focused, {}).get("autocomplete"):
            raise InvocationRefused(f"option {focused!r} of /{name} has no autocomplete")
        unknown = sorted(set(options) - set(definitions))
        if unknown:
            raise InvocationRefused(f"unknown option(s) {unknown}")
        values: list[dict[str, Any]] = []
        for option_name, value in options.items():
            entry = {"name": option_name, "type": definitions[option_name]["type"], "value": value}
            if option_name == focused:
                entry["focused"] = True
            values.append(entry)
        for wrapper in reversed(chain):
            values = [{"name": wrapper["name"], "type": wrapper["type"], "options": values}]
        data: dict[str, Any] = {"id": command["id"], "name": command["name"], "type": 1, "options": values}
        return self._register(
            kind=InteractionType.AUTOCOMPLETE,
            name=" ".join(words),
            data=data,
            user=invoker,
            member=member,
            channel=where,
            deadline=None,
            token_lifetime=None,
            locale=locale,
        )

    def _convert_options(
        self,
        definitions: Sequence[Mapping[str, Any]],
        given: Mapping[str, Any],
        channel: FakeChannel,
        resolved: dict[str, dict[str, Any]],
    ) -> list[dict[str, Any]]:
        known = {d["name"] for d in definitions}
        extra = sorted(set(given) - known)
        if extra:
            raise InvocationRefused(f"unknown option(s) {extra}; the command has {sorted(known)}")
        values = []
        for definition in definitions:
            option_name = definition["name"]
            value = given.get(option_name)
            if value is None:
                if definition.get("required"):
                    raise InvocationRefused(f"option {option_name!r} is required")
                continue
            kind = OptionType(definition["type"])
            converted = self._convert_value(definition, kind, value, channel, resolved)
            values.append({"name": option_name, "type": int(kind), "value": converted})
        return values

    def _convert_value(
        self,
        definition: Mapping[str, Any],
        kind: OptionType,
        value: Any,
        channel: FakeChannel,
        resolved: dict[str, dict[str, Any]],
    ) -> Any:
        name = definition["name"]
        guild = channel.guild
        if kind == OptionType.STRING:
            if not isinstance(value, str) or not value:
                raise InvocationRefused(f"{name!r} needs a non-empty string, not {value!r}")
            low, high = definition.get("min_length") or 0, definition.get("max_length") or 6000
            if not low <= len(value) <= high:
                raise InvocationRefused(f"{name!r} must have {low}-{high} characters, not {len(value)}")
            _check_choice(definition, value)
            return value
        if kind in (OptionType.INTEGER, OptionType.NUMBER):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvocationRefused(f"{name!r} needs a number, not {value!r}")
            if kind == OptionType.INTEGER and not isinstance(value, int):
                raise InvocationRefused(f"{name!r} needs an integer, not {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise InvocationRefused(f"{name!r} must be finite")
            if abs(value) >= MAX_SAFE_INTEGER:
                raise InvocationRefused(f"{name!r} is out of Discord's range")
            low, high = definition.get("min_value"), definition.get("max_value")
            if (low is not None and value < low) or (high is not None and value > high):
                raise InvocationRefused(f"{name!r} must be within {low}..{high}, not {value}")
            _check_choice(definition, value)
            return value
        if kind == OptionType.BOOLEAN:
            if not isinstance(value, bool):
                raise InvocationRefused(f"{name!r} needs a bool, not {value!r}")
            return value
        if kind == OptionType.USER or (kind == OptionType.MENTIONABLE and isinstance(value, FakeMember | FakeUser)):
            return self._resolve_user(name, value, guild, channel, resolved)
        if kind == OptionType.ROLE or (kind == OptionType.MENTIONABLE and isinstance(value, FakeRole)):
            if not isinstance(value, FakeRole) or value.guild is not guild:
                raise InvocationRefused(f"{name!r} needs a role of this server, not {value!r}")
            resolved.setdefault("roles", {})[str(value.id)] = value.to_payload()
            return str(value.id)
        if kind == OptionType.CHANNEL:
            if not isinstance(value, FakeChannel) or value.guild is not guild:
                raise InvocationRefused(f"{name!r} needs a channel of this server, not {value!r}")
            types = definition.get("channel_types")
            if types and int(value.type) not in types:
                raise InvocationRefused(f"{name!r} accepts channel types {types}, not {int(value.type)}")
            payload = {k: v for k, v in value.to_payload().items() if k in ("id", "name", "type", "parent_id", "flags")}
            if guild is not None:
                payload["permissions"] = str(self.state.bot_permissions(value))
            resolved.setdefault("channels", {})[str(value.id)] = payload
            return str(value.id)
        if kind == OptionType.ATTACHMENT:
            if not isinstance(value, Upload):
                raise InvocationRefused(f"{name!r} needs an Upload(data, filename, content_type), not {value!r}")
            limit = self.state.filesize_limit(channel)
            if len(value.data) > limit:
                raise InvocationRefused(f"{name!r}: {len(value.data)} bytes is over the upload limit of {limit}")
            stored = self.state.store_attachment(
                channel=channel,
                filename=value.filename,
                data=value.data,
                declared_content_type=value.content_type,
                description=value.description,
                ephemeral=True,
            )
            resolved.setdefault("attachments", {})[str(stored.id)] = stored.to_payload()
            return str(stored.id)
        raise InvocationRefused(f"{name!r}: option type {kind.name} cannot take {value!r}")

    def _resolve_user(
        self,
        name: str,
        value: Any,
        guild: FakeGuild | None,
        channel: FakeChannel,
        resolved: dict[str, dict[str, Any]],
    ) -> str:
        if isinstance(value, FakeMember):
            if value.guild is not guild:
                raise InvocationRefused(f"{name!r}: {value.user.username} is not a member of this server")
            resolved.setdefault("users", {})[str(value.id)] = value.user.to_payload()
            member_payload = value.to_payload(with_user=False, permissions=value.guild.permissions_in(value, channel))
            resolved.setdefault("members", {})[str(value.id)] = member_payload
            return str(value.id)
        if isinstance(value, FakeUser):
            if guild is not None and guild.member(value.id) is None:
                raise InvocationRefused(f"{name!r}: {value.username} is not a member of this server")
            if guild is not None:
                member = guild.member(value.id)
                assert member is not None
                return self._resolve_user(name, member, guild, channel, resolved)
            resolved.setdefault("users", {})[str(value.id)] = value.to_payload()
            return str(value.id)
        raise InvocationRefused(f"{name!r} needs a member or user, not {value!r}")

    # --- context menus ------------------------------------------------------------------------------------------

    def message_context(
        self,
        name: str,
        message: MessageRecord,
        *,
        user: Invoker,
        deadline: float | None,
        token_lifetime: float | None,
        locale: str | None,
    ) -> InteractionRecord:
        """A message context menu command on ``message``."""
        if message.deleted:
            raise InvocationRefused("the message was deleted")
        if message.ephemeral:
            raise InvocationRefused("context menus cannot target ephemeral messages")
        invoker, member, where = self._where(user, message.channel)
        command = self._find_command(name, CommandType.MESSAGE, where.guild)
        self._check_member_may_use(command, member, where)
        if where.guild is not None and member is not None:
            permissions = where.guild.permissions_in(member, where)
            if not permissions & Permission.READ_MESSAGE_HISTORY:
                raise InvocationRefused(f"{invoker.username} cannot read the history of #{where.name}")
        data: dict[str, Any] = {
            "id": command["id"],
            "name": command["name"],
            "type": int(CommandType.MESSAGE),
            "target_id": str(message.id),
            "resolved": {"messages": {str(message.id): self.state.message_payload(message)}},
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return self._register(
            kind=InteractionType.APPLICATION_COMMAND,
            name=command["name"],
            data=data,
            user=invoker,
            member=member,
            channel=where,
            deadline=deadline,
            token_lifetime=token_lifetime,
            locale=locale,
        )

    def user_context(
        self,
        name: str,
        target: FakeMember,
        *,
        user: Invoker,
        channel: FakeChannel | None,
        deadline: float | None,
        token_lifetime: float | None,
        locale: str | None,
    ) -> InteractionRecord:
        """A user context menu command on ``target``."""
        invoker, member, where = self._where(user, channel)
        command = self._find_command(name, CommandType.USER, where.guild)
        self._check_member_may_use(command, member, where)
        resolved: dict[str, dict[str, Any]] = {}
        self._resolve_user("target", target, where.guild, where, resolved)
        data: dict[str, Any] = {
            "id": command["id"],
            "name": command["name"],
            "type": int(CommandType.USER),
            "target_id": str(target.id),
            "resolved": resolved,
        }
        return self._register(
            kind=InteractionType.APPLICATION_COMMAND,
            name=command["name"],
            data=data,
            user=invoker,
            member=member,
            channel=where,
            deadline=deadline,
            token_lifetime=token_lifetime,
            locale=locale,
        )

    # --- components and modals ------------------------------------------------------------------------------

    def click(
        self,
        message: MessageRecord,
        custom_id: str,
        *,
        user: Invoker,
        values: Sequence[str] | None,
        deadline: float | None,
        token_lifetime: float | None,
        locale: str | None,
    ) -> InteractionRecord:
        """A click on a button (or a choice in a string select, with ``values``) of ``message``."""
        if message.deleted:
            raise InvocationRefused("the message was deleted")
        invoker, member, where = self._where(user, message.channel)
        if message.flags & EPHEMERAL and (message.interaction is None or message.interaction.user is not invoker):
            raise InvocationRefused("only the member who invoked the command sees this ephemeral message")
        component = next((c for c in iter_components(message.components) if c.get("custom_id") == custom_id), None)
        if component is None:
            raise InvocationRefused(f"message {message.id} has no component {custom_id!r}: {message.custom_ids()}")
        if component.get("disabled"):
            raise InvocationRefused(f"component {custom_id!r} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] == 2:
            if values is not None:
                raise InvocationRefused("a button takes no values")
        elif component["type"] == 3:
            data["values"] = check_choice(component, values)
        else:
            if values is None:
                raise InvocationRefused(f"component type {component['type']} needs values")
            data["values"] = list(values)
        return self._register(
            kind=InteractionType.MESSAGE_COMPONENT,
            name=custom_id,
            data=data,
            user=invoker,
            member=member,
            channel=where,
            source_message=message,
            deadline=deadline,
            token_lifetime=token_lifetime,
            locale=locale,
        )

    def submit_modal(
        self,
        opened_by: InteractionRecord,
        values: Mapping[str, str | Sequence[str]],
        *,
        user: Invoker | None,
        deadline: float | None,
        token_lifetime: float | None,
        locale: str | None,
    ) -> InteractionRecord:
        """Submit the modal the bot opened in answer to ``opened_by``."""
        modal = opened_by.modal
        if modal is None:
            raise InvocationRefused(f"interaction {opened_by.id} did not open a modal")
        if opened_by.id in self._submitted_modals:
            raise InvocationRefused("this modal was already submitted")
        invoker_arg: Invoker = user if user is not None else (opened_by.member or opened_by.user)
        invoker, member, where = self._where(invoker_arg, opened_by.channel)
        if invoker is not opened_by.user:
            raise InvocationRefused("only the member the modal was shown to can submit it")
        components = submitted_components(modal, values)
        self._submitted_modals.add(opened_by.id)
        data = {"custom_id": modal["custom_id"], "components": components}
        return self._register(
            kind=InteractionType.MODAL_SUBMIT,
            name=str(modal["custom_id"]),
            data=data,
            user=invoker,
            member=member,
            channel=where,
            source_message=opened_by.source_message,
            parent=opened_by,
            deadline=deadline,
            token_lifetime=token_lifetime,
            locale=locale,
        )


def _check_choice(definition: Mapping[str, Any], value: Any) -> None:
    choices = definition.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        allowed = [c["value"] for c in choices]
        raise InvocationRefused(f"{definition['name']!r} must be one of {allowed}, not {value!r}")
