"""Command and option names, descriptions and choices in every language of the catalogs.

discord.py passes every string of every command through this translator when it syncs them, and
Discord shows a Russian client the Russian names. Keys follow the command tree, so no decorator
carries one: ``cmd-imagine`` (``.description``), ``cmd-imagine-prompt`` (an option, with its own
``.description``), ``cmd-quota-set`` (a subcommand), ``menu-imagine-with-these-images`` (a message
command) and ``choice-<value>`` for a choice whose name needs words.
"""

from __future__ import annotations

import re
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot.i18n import DEFAULT_LOCALE, Catalog


def command_key(command: Any) -> str:
    if isinstance(command, app_commands.ContextMenu):
        return "menu-" + _slug(command.name)
    return "cmd-" + _slug(command.qualified_name)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def key_for(context: app_commands.TranslationContextTypes) -> str | None:
    """The catalog key of one translatable command string, from where it sits in the tree."""
    location, data = context.location, context.data
    if location in (Where.command_name, Where.group_name):
        return command_key(data)
    if location in (Where.command_description, Where.group_description):
        return command_key(data) + ".description"
    if isinstance(data, app_commands.Parameter):
        suffix = ".description" if location is Where.parameter_description else ""
        return f"{command_key(data.command)}-{_slug(data.name)}{suffix}"
    if isinstance(data, app_commands.Choice):
        return "choice-" + _slug(str(data.value))
    return None


class CommandTranslator(app_commands.Translator):
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        language = self._catalog.resolve(locale.value)
        key = key_for(context)
        if language == DEFAULT_LOCALE or key is None or not self._catalog.has(language, key):
            return None  # the English in the code is what Discord shows by default
        return self._catalog.text(language, key)
