"""The catalogs stay complete and in step with the code: every language has every message with the
same placeholders, every key the code uses exists, no message is left unused, command names are
valid for Discord, and Russian plurals come out right."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fluent.syntax import ast, parse
from fluent.syntax.visitor import Visitor

from bot.i18n import DEFAULT_LOCALE, Catalog

ROOT = Path(__file__).resolve().parent.parent
CATALOG = Catalog()
OTHERS = [name for name in CATALOG.locales if name != DEFAULT_LOCALE]
KEY = re.compile(r"""["']([a-z][a-z0-9]*(?:-[a-z0-9]+)+)["']""")
# Keys that the command translator derives from the command tree rather than naming in code.
TREE_PREFIXES = ("cmd-", "menu-", "choice-")
# Literals shaped like keys that are not messages (the package's name, for its version).
NOT_KEYS = {"imagine-bot"}


def messages(locale: str) -> dict[str, ast.Message]:
    resource = parse(CATALOG.source(locale))
    return {entry.id.name: entry for entry in resource.body if isinstance(entry, ast.Message)}


def variables(node: object) -> set[str]:
    """Every ``$name`` a pattern uses."""
    found: set[str] = set()

    class Variables(Visitor):  # type: ignore[misc]
        def visit_VariableReference(self, ref: ast.VariableReference) -> None:
            found.add(ref.id.name)

    Variables().visit(node)
    return found


def shape(message: ast.Message) -> dict[str, set[str]]:
    """The message's value and attributes, each with its placeholders."""
    parts = {"": variables(message.value)} if message.value is not None else {}
    parts.update({f".{attribute.id.name}": variables(attribute.value) for attribute in message.attributes})
    return parts


def code_keys() -> set[str]:
    """String literals in bot/ and cogs/ that name a catalog message."""
    known_prefixes = {key.split("-")[0] for key in messages(DEFAULT_LOCALE)}
    found = set()
    for folder in ("bot", "cogs"):
        for path in (ROOT / folder).rglob("*.py"):
            for literal in KEY.findall(path.read_text(encoding="utf-8")):
                if literal in NOT_KEYS or literal.startswith(TREE_PREFIXES):
                    continue
                if literal.split("-")[0] in known_prefixes:
                    found.add(literal)
    return found


@pytest.mark.parametrize("locale", OTHERS)
def test_every_language_has_the_same_messages_and_placeholders_as_english(locale: str) -> None:
    english, other = messages(DEFAULT_LOCALE), messages(locale)
    assert sorted(set(english) - set(other)) == [], f"{locale} misses these messages"
    assert sorted(set(other) - set(english)) == [], f"{locale} has messages English lacks"
    for key, message in english.items():
        assert shape(other[key]) == shape(message), f"{locale}: {key} differs in its attributes or placeholders"


def test_every_key_in_the_code_is_in_the_catalog() -> None:
    assert sorted(code_keys() - set(messages(DEFAULT_LOCALE))) == []


def test_no_message_is_left_unused() -> None:
    unused = {key for key in messages(DEFAULT_LOCALE) if not key.startswith(TREE_PREFIXES)} - code_keys()
    assert sorted(unused) == []


@pytest.mark.parametrize(
    ("count", "expected"),
    [(1, "1 изображение"), (2, "2 изображения"), (5, "5 изображений"), (21, "21 изображение"), (12, "12 изображений")],
)
def test_russian_plurals(count: int, expected: str) -> None:
    assert expected in CATALOG.text("ru", "menu-too-many-images", count=count, max=14)


def test_a_missing_language_falls_back_to_english_and_regions_to_their_language() -> None:
    assert CATALOG.resolve("ru") == "ru"
    assert CATALOG.resolve("en-US") == "en"
    assert CATALOG.resolve("pt-BR") == "en"
    assert CATALOG.resolve(None) == "en"
    assert CATALOG.text("de", "job-title-done") == CATALOG.text("en", "job-title-done")


def test_numbers_follow_the_locale() -> None:
    assert CATALOG.text("en", "imagine-prompt-too-long", length=2600, max=2500).startswith("The prompt is 2,600")
    assert "2\xa0600" in CATALOG.text("ru", "imagine-prompt-too-long", length=2600, max=2500)


async def test_every_command_and_option_has_valid_names_in_every_language(tmp_path: Path) -> None:
    """What Discord shows in the command picker: a name (lowercase, 1–32 letters, digits, - or _) and
    a description (up to 100 characters) for every command, subcommand and option, in every language."""
    from unittest import mock

    import discord

    from bot.app import EXTENSIONS, ImagineBot
    from bot.config import Settings
    from cogs._translate import command_key

    settings = Settings(discord_token="x", odirouter_api_key="y", database_url=f"sqlite:///{tmp_path}/db.sqlite3")
    bot = ImagineBot(
        settings=settings, store=mock.Mock(), queue=mock.Mock(), tracker=mock.AsyncMock(), session=mock.Mock()
    )
    for name in EXTENSIONS:
        await bot.load_extension(name)
    valid = re.compile(r"^[-_\w]{1,32}$")
    checked = 0
    for command in bot.tree.walk_commands():
        key = command_key(command)
        entries = [(key, True)]
        if isinstance(command, discord.app_commands.Command):
            entries += [(f"{key}-{p.name.replace('_', '-')}", True) for p in command.parameters]
        for locale in CATALOG.locales:
            for entry, described in entries:
                assert CATALOG.has(locale, entry), f"{locale}: no {entry}"
                label = CATALOG.text(locale, entry)
                assert valid.match(label) and label == label.lower(), f"{locale}: {entry} = {label!r}"
                if described:
                    assert 1 <= len(CATALOG.text(locale, entry + ".description")) <= 100, f"{locale}: {entry}"
                checked += 1
    for menu in bot.tree.get_commands(type=discord.AppCommandType.message):
        for locale in CATALOG.locales:
            assert 1 <= len(CATALOG.text(locale, command_key(menu))) <= 32
    assert checked > 50
    await bot.close()
