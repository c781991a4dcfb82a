"""/imagine-settings: where /imagine may be used, how many images a request may ask for, a per-member
cooldown, a channel for operator alerts, the models offered, the language of public messages, and the content
controls: blocked words, spoilers and the moderation log (docs/admins.md). Every answer is private, in the
admin's locale."""

from __future__ import annotations

from typing import Final

import discord
from discord import app_commands
from discord.ext import commands

import i18n
from cogs._chat_settings import ChatGroup, chat_status
from cogs._content_settings import content_groups, spoiler_text
from cogs._embeds import NO_MENTIONS
from cogs._errors import answer_error
from cogs._limits import MESSAGE_LIST_LIMIT
from cogs._locale import server_locale
from cogs._replies import answer, defer_privately
from cogs._services import Services, services_of
from cogs._texts import channel_list, duration, mod_log_status, permission_names
from cogs._translator import command_text
from generation.models import ModelMenu
from generation.refusals import LastModel, ModelNotOffered
from generation.validation import MAX_N
from storage.guild_settings import GuildSettings
from toapis.catalog import ModelSpec

MAX_COOLDOWN: Final = 3600

# Where the bot posts results and alerts it needs these (README: Create the Discord application). In a thread
# (a forum's posts are threads) Send Messages in Threads stands in for Send Messages, which is not inherited.
_NEEDED: Final = ("view_channel", "send_messages", "embed_links", "attach_files", "read_message_history")
_IN_THREADS: Final = ("view_channel", "send_messages_in_threads", "embed_links", "attach_files", "read_message_history")

PostingChannel = discord.TextChannel | discord.ForumChannel

AUTO: Final = "auto"
# A server chooses among the supported locales (each named in its own language), or follows its preferred locale.
LANGUAGE_CHOICES: Final = [
    app_commands.Choice(name=command_text("choice.language.auto"), value=AUTO),
    *(app_commands.Choice(name=i18n.language_name(code), value=code) for code in i18n.SUPPORTED),
]


def _described(command: str, *options: str) -> dict[str, app_commands.locale_str]:
    """The descriptions of an /imagine-settings command's options, for `app_commands.describe`."""
    return {option: command_text(f"option.imagine-settings.{command}.{option}") for option in options}


def _command(path: str) -> app_commands.locale_str:
    return command_text(f"command.imagine-settings.{path}")


def language_text(settings: GuildSettings, guild_locale: discord.Locale | None, locale: i18n.LocaleLike) -> str:
    """The language of the server's public messages, said in `locale`: chosen, or its preferred locale's."""
    if settings.language is not None:
        return i18n.language_name(settings.language)
    return _auto_text("settings.language.field_auto", "settings.language.field_unspoken", guild_locale, locale)


def _auto_text(key: str, unspoken_key: str, guild_locale: discord.Locale | None, locale: i18n.LocaleLike) -> str:
    """`key` naming the language public messages speak when they follow the preferred locale: the one the bot
    falls back to (docs/i18n.md), not the preferred one it may not speak (`unspoken_key` then names both)."""
    preferred = server_locale(guild_locale, None)
    name = i18n.language_name(i18n.resolve(preferred))
    if i18n.spoken(preferred):
        return i18n.translate(key, locale, language=name)
    return i18n.translate(unspoken_key, locale, language=name, preferred=i18n.language_name(preferred))


def settings_embed(
    settings: GuildSettings, menu: ModelMenu, *, locale: i18n.LocaleLike, guild_locale: discord.Locale | None
) -> discord.Embed:
    def t(key: str, **params: object) -> str:
        return i18n.translate(key, locale, **params)

    channels = channel_list(settings.allowed_channel_ids, locale) or t("settings.every_channel")
    cooldown = duration(settings.cooldown_seconds, locale) if settings.cooldown_seconds else t("settings.none")
    alerts = f"<#{settings.log_channel_id}>" if settings.log_channel_id else t("settings.none")
    embed = discord.Embed(title=t("settings.title"), colour=discord.Colour.blurple())
    embed.add_field(name=t("settings.field.channels"), value=channels, inline=False)
    embed.add_field(name=t("settings.field.max_n"), value=i18n.number(settings.max_n, locale))
    embed.add_field(name=t("settings.field.cooldown"), value=cooldown)
    embed.add_field(name=t("settings.field.alerts"), value=alerts)
    embed.add_field(name=t("settings.field.models"), value=models_text(settings, menu, locale), inline=False)
    embed.add_field(name=t("settings.language.field"), value=language_text(settings, guild_locale, locale))
    blocked = len(settings.blocked_words)
    blocked_text = t("settings.blocked_words", count=i18n.number(blocked, locale)) if blocked else t("settings.none")
    embed.add_field(name=t("settings.field.blocked_words"), value=blocked_text)
    embed.add_field(name=t("settings.field.spoilers"), value=spoiler_text(settings, locale))
    embed.add_field(
        name=t("settings.field.mod_log"), value=mod_log_status(settings.mod_log, settings.log_channel_id, locale)
    )
    embed.add_field(name=t("settings.chat.field"), value=chat_status(settings, locale))
    return embed


def models_text(settings: GuildSettings, menu: ModelMenu, locale: i18n.LocaleLike) -> str:
    """The models this server offers, its default marked."""
    default = menu.default_for(settings)
    names = [
        i18n.translate("choice.model.default", locale, model=f"**{spec.name}**") if spec is default else spec.name
        for spec in menu.offered(settings)
    ]
    text = i18n.join(names, locale)
    return text if settings.models is not None else i18n.translate("settings.models.every", locale, models=text)


def _missing_permissions(channel: discord.abc.GuildChannel, locale: i18n.LocaleLike) -> list[str]:
    """The permissions the bot lacks to post results there, in the channel itself and in its threads, by the names
    Discord's client shows in `locale` ("Attach Files")."""
    me: discord.Member | None = channel.guild.me  # None when the bot's member is not cached
    if me is None:
        return []
    permissions = channel.permissions_for(me)
    needed = _IN_THREADS if isinstance(channel, discord.ForumChannel) else (*_NEEDED, "send_messages_in_threads")
    return permission_names([name for name in needed if not getattr(permissions, name)], locale)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class ImagineSettingsCog(
    commands.GroupCog, group_name="imagine-settings", group_description=command_text("command.imagine-settings")
):
    channels = app_commands.Group(name="channels", description=_command("channels"))
    models = app_commands.Group(name="models", description=_command("models"))

    def __init__(self, bot: commands.Bot | commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services
        super().__init__()
        group = self.__cog_app_commands_group__
        assert group is not None
        for controls in content_groups(services):
            group.add_command(controls)
        group.add_command(ChatGroup(services))

    @channels.command(name="add", description=_command("channels.add"))
    @app_commands.describe(**_described("channels.add", "channel"))
    async def channel_add(self, interaction: discord.Interaction, channel: PostingChannel) -> None:
        """Allow /imagine in a channel; once one is listed, only listed channels allow it."""
        assert interaction.guild_id is not None
        locale = interaction.locale
        await defer_privately(interaction)
        settings = await self.services.server_settings.add_allowed_channel(interaction.guild_id, channel.id)
        allowed = channel_list(settings.allowed_channel_ids, locale, limit=MESSAGE_LIST_LIMIT)
        text = i18n.translate("settings.channels.added", locale, channel=channel.id, allowed=allowed)
        missing = _missing_permissions(channel, locale)
        if missing:
            lacks = i18n.translate("settings.channels.lacks", locale, permissions=i18n.join(missing, locale))
            text = f"{text}\n{lacks}"
        await answer(interaction, text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @channels.command(name="remove", description=_command("channels.remove"))
    @app_commands.describe(**_described("channels.remove", "channel"))
    async def channel_remove(self, interaction: discord.Interaction, channel: PostingChannel) -> None:
        """Take a channel off the list of channels where /imagine is allowed."""
        assert interaction.guild_id is not None
        locale = interaction.locale
        await defer_privately(interaction)
        before = self.services.server_settings.get(interaction.guild_id)
        if channel.id not in before.allowed_channel_ids:
            await answer(interaction, i18n.translate("settings.channels.not_listed", locale, channel=channel.id))
            return
        settings = await self.services.server_settings.remove_allowed_channel(interaction.guild_id, channel.id)
        rest = channel_list(settings.allowed_channel_ids, locale, limit=MESSAGE_LIST_LIMIT) or i18n.translate(
            "settings.channels.none_listed", locale
        )
        await answer(
            interaction,
            i18n.translate("settings.channels.removed", locale, channel=channel.id, allowed=rest),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @channels.command(name="list", description=_command("channels.list"))
    async def channel_list(self, interaction: discord.Interaction) -> None:
        """List the channels where /imagine is allowed."""
        assert interaction.guild_id is not None
        settings = self.services.server_settings.get(interaction.guild_id)
        locale = interaction.locale
        listed = channel_list(settings.allowed_channel_ids, locale, limit=MESSAGE_LIST_LIMIT)
        if listed:
            text = i18n.translate("settings.channels.list", locale, allowed=listed)
        else:
            text = i18n.translate("settings.channels.every", locale)
        await answer(interaction, text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @channels.command(name="clear", description=_command("channels.clear"))
    async def channel_clear(self, interaction: discord.Interaction) -> None:
        """Allow /imagine in every channel again."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        await self.services.server_settings.clear_allowed_channels(interaction.guild_id)
        await answer(interaction, i18n.translate("settings.channels.cleared", interaction.locale), ephemeral=True)

    @app_commands.command(name="max-n", description=_command("max-n"))
    @app_commands.describe(**_described("max-n", "value"))
    async def max_n(self, interaction: discord.Interaction, value: app_commands.Range[int, 1, MAX_N]) -> None:
        """Set the most images one request may ask for."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        await self.services.server_settings.set_max_n(interaction.guild_id, value)
        await answer(interaction, i18n.plural("settings.max_n", value, interaction.locale), ephemeral=True)

    @app_commands.command(name="cooldown", description=_command("cooldown"))
    @app_commands.describe(**_described("cooldown", "seconds"))
    async def cooldown(
        self, interaction: discord.Interaction, seconds: app_commands.Range[int, 0, MAX_COOLDOWN]
    ) -> None:
        """Set how long each member waits between two requests."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        await self.services.server_settings.set_cooldown(interaction.guild_id, seconds)
        locale = interaction.locale
        if seconds:
            text = i18n.translate("settings.cooldown", locale, duration=duration(seconds, locale))
        else:
            text = i18n.translate("settings.cooldown.none", locale)
        await answer(interaction, text, ephemeral=True)

    @app_commands.command(name="log-channel", description=_command("log-channel"))
    @app_commands.describe(**_described("log-channel", "channel"))
    async def log_channel(self, interaction: discord.Interaction, channel: discord.TextChannel | None = None) -> None:
        """Choose the channel for operator alerts and, when it is on, the moderation log."""
        assert interaction.guild_id is not None
        locale = interaction.locale
        await defer_privately(interaction)
        settings = await self.services.server_settings.set_log_channel(
            interaction.guild_id, channel.id if channel else None
        )
        if channel is None:
            await answer(interaction, i18n.translate("settings.log_channel.off", locale), ephemeral=True)
            return
        if settings.mod_log:
            text = i18n.translate("settings.log_channel.set_with_mod_log", locale, channel=channel.id)
        else:
            text = i18n.translate("settings.log_channel.set", locale, channel=channel.id)
        missing = _missing_permissions(channel, locale)
        if missing:
            lacks = i18n.translate("settings.log_channel.lacks", locale, permissions=i18n.join(missing, locale))
            text = f"{text}\n{lacks}"
        await answer(interaction, text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @models.command(name="add", description=_command("models.add"))
    @app_commands.describe(**_described("models.add", "model"))
    async def model_add(self, interaction: discord.Interaction, model: str) -> None:
        """Offer a model in this server; once one is added, only added models are offered."""
        assert interaction.guild_id is not None
        spec = self._model(model)
        await defer_privately(interaction)
        current = self.services.server_settings.get(interaction.guild_id).models or frozenset()
        settings = await self.services.server_settings.set_models(interaction.guild_id, current | {spec.id})
        offered = models_text(settings, self._menu, interaction.locale)
        text = i18n.translate("settings.models.added", interaction.locale, model=spec.name, offered=offered)
        await answer(interaction, text, ephemeral=True)

    @models.command(name="remove", description=_command("models.remove"))
    @app_commands.describe(**_described("models.remove", "model"))
    async def model_remove(self, interaction: discord.Interaction, model: str) -> None:
        """Stop offering a model in this server."""
        assert interaction.guild_id is not None
        spec = self._model(model)
        before = self.services.server_settings.get(interaction.guild_id)
        offered = self._menu.offered(before)
        if spec not in offered:
            raise ModelNotOffered(spec.name, tuple(model.name for model in offered))
        if offered == (spec,):
            raise LastModel(spec.name)
        await defer_privately(interaction)
        rest = frozenset(model.id for model in offered if model is not spec)
        settings = await self.services.server_settings.set_models(interaction.guild_id, rest)
        if settings.default_model == spec.id:
            settings = await self.services.server_settings.set_default_model(interaction.guild_id, None)
        now = models_text(settings, self._menu, interaction.locale)
        text = i18n.translate("settings.models.removed", interaction.locale, model=spec.name, offered=now)
        await answer(interaction, text, ephemeral=True)

    @models.command(name="default", description=_command("models.default"))
    @app_commands.describe(**_described("models.default", "model"))
    async def model_default(self, interaction: discord.Interaction, model: str) -> None:
        """Choose the model a request uses when it names none."""
        assert interaction.guild_id is not None
        spec = self._model(model)
        before = self.services.server_settings.get(interaction.guild_id)
        if spec not in self._menu.offered(before):
            raise ModelNotOffered(spec.name, tuple(offered.name for offered in self._menu.offered(before)))
        await defer_privately(interaction)
        await self.services.server_settings.set_default_model(interaction.guild_id, spec.id)
        text = i18n.translate("settings.models.default", interaction.locale, model=spec.name)
        await answer(interaction, text, ephemeral=True)

    @models.command(name="clear", description=_command("models.clear"))
    async def model_clear(self, interaction: discord.Interaction) -> None:
        """Offer every model the bot offers again, with the bot's default."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        await self.services.server_settings.set_models(interaction.guild_id, None)
        settings = await self.services.server_settings.set_default_model(interaction.guild_id, None)
        offered = models_text(settings, self._menu, interaction.locale)
        await answer(interaction, i18n.translate("settings.models.cleared", interaction.locale, offered=offered))

    @model_add.autocomplete("model")
    @model_remove.autocomplete("model")
    @model_default.autocomplete("model")
    async def model_suggestions(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The bot's models whose name or id contains what was typed. From memory: no I/O."""
        typed = current.strip().lower()
        return [
            app_commands.Choice(name=spec.name, value=spec.id)
            for spec in self._menu.models
            if typed in spec.name.lower() or typed in spec.id.lower()
        ][:25]

    @property
    def _menu(self) -> ModelMenu:
        return self.services.intake.admission.models

    def _model(self, given: str) -> ModelSpec:
        spec = self._menu.find(given)
        if spec is None:
            raise ModelNotOffered(given, tuple(spec.name for spec in self._menu.models))
        return spec

    @app_commands.command(name="show", description=_command("show"))
    async def show(self, interaction: discord.Interaction) -> None:
        """Show this server's Imagine settings."""
        assert interaction.guild_id is not None
        settings = self.services.server_settings.get(interaction.guild_id)
        embed = settings_embed(settings, self._menu, locale=interaction.locale, guild_locale=interaction.guild_locale)
        await answer(interaction, embed=embed, ephemeral=True)

    @app_commands.command(name="language", description=_command("language"))
    @app_commands.describe(**_described("language", "language"))
    @app_commands.choices(language=LANGUAGE_CHOICES)
    async def language(self, interaction: discord.Interaction, language: str) -> None:
        """Choose the language of progress and results (what the whole channel sees), or `auto` for the server's
        preferred locale. Private answers always follow each member's own Discord language."""
        assert interaction.guild_id is not None
        locale = interaction.locale
        if language != AUTO and language not in i18n.SUPPORTED:
            offered = i18n.join([AUTO, *i18n.SUPPORTED], locale)
            await answer(
                interaction, i18n.translate("settings.language.unknown", locale, given=language, offered=offered)
            )
            return
        await defer_privately(interaction)
        chosen = None if language == AUTO else language
        settings = await self.services.server_settings.set_language(interaction.guild_id, chosen)
        if chosen is None:
            text = _auto_text(
                "settings.language.auto", "settings.language.auto_unspoken", interaction.guild_locale, locale
            )
        else:
            text = i18n.translate("settings.language.set", locale, language=language_text(settings, None, locale))
        await answer(interaction, text, ephemeral=True)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await answer_error(interaction, error)


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(ImagineSettingsCog(bot, services_of(bot)))
