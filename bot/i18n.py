"""Every text a member or admin sees, in their language: Project Fluent catalogs in ``bot/locales/``.

Fluent keeps plural rules and named placeholders inside each message (``{ $count -> [one] … *[other]
… }``), so a translator sees whole sentences, numbers follow the locale (through Babel's CLDR data),
and adding a language is adding one ``<locale>.ftl`` file. A message missing from a language falls
back to English; a test keeps every catalog complete and its placeholders the same as English's.

Discord tells the bot a member's language (``interaction.locale``, e.g. ``ru`` or ``en-US``) and the
server's (``guild_locale``); :meth:`Catalog.resolve` maps either onto a catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from fluent.runtime import FluentBundle, FluentResource
from fluent.syntax import ast

log = logging.getLogger(__name__)

DEFAULT_LOCALE = "en"


class Catalog:
    """All catalogs, loaded once at start (the bot holds one and hands it to whoever needs it)."""

    def __init__(self, folder: Path | None = None) -> None:
        self._bundles: dict[str, FluentBundle] = {}
        self._sources: dict[str, str] = {}
        # Messages that take no arguments (titles, field names, footers) are formatted once per locale.
        self._plain: dict[tuple[str, str], str] = {}
        for name, text in _catalog_files(folder):
            resource = FluentResource(text)
            junk = [str(entry.content)[:60] for entry in resource.body if isinstance(entry, ast.Junk)]
            if junk:
                raise ValueError(f"locale {name}: unreadable entries {junk}")
            bundle = FluentBundle([name], use_isolating=False)
            bundle.add_resource(resource)
            self._bundles[name] = bundle
            self._sources[name] = text
        if DEFAULT_LOCALE not in self._bundles:
            raise ValueError(f"no {DEFAULT_LOCALE}.ftl catalog")

    @property
    def locales(self) -> tuple[str, ...]:
        return tuple(sorted(self._bundles))

    def source(self, locale: str) -> str:
        """The raw Fluent text of one catalog (for the consistency tests)."""
        return self._sources[locale]

    def resolve(self, locale: str | None) -> str:
        """The catalog for a Discord locale: exact (``pt-BR``), else its language (``en-US`` → ``en``)."""
        if locale:
            if locale in self._bundles:
                return locale
            language = locale.split("-")[0].lower()
            if language in self._bundles:
                return language
        return DEFAULT_LOCALE

    def has(self, locale: str, key: str) -> bool:
        return self._bundles[locale].has_message(key.split(".")[0])

    def text(self, locale: str | None, key: str, **args: Any) -> str:
        """Message ``key`` (``key.attribute`` for an attribute) in ``locale``, English if it lacks it."""
        name = self.resolve(locale)
        if not args and (plain := self._plain.get((name, key))) is not None:
            return plain
        message_id, _, attribute = key.partition(".")
        bundle = self._bundles[name]
        if not bundle.has_message(message_id):
            bundle = self._bundles[DEFAULT_LOCALE]
        message = bundle.get_message(message_id)
        pattern = message.attributes[attribute] if attribute else message.value
        if pattern is None:
            raise KeyError(key)
        value, errors = bundle.format_pattern(pattern, args)
        if errors:
            log.warning("message %s (%s): %s", key, name, errors)
        elif not args:
            self._plain[(name, key)] = str(value)
        return str(value)

    def bind(self, locale: str | None) -> Texts:
        return Texts(self, self.resolve(locale))


class Texts:
    """The catalog in one language: ``t("key", name=value)``."""

    __slots__ = ("catalog", "locale")

    def __init__(self, catalog: Catalog, locale: str) -> None:
        self.catalog = catalog
        self.locale = locale

    def __call__(self, key: str, **args: Any) -> str:
        return self.catalog.text(self.locale, key, **args)


def _catalog_files(folder: Path | None) -> Iterator[tuple[str, str]]:
    if folder is not None:
        for path in sorted(folder.glob("*.ftl")):
            yield path.stem, path.read_text(encoding="utf-8")
        return
    for entry in resources.files("bot").joinpath("locales").iterdir():
        if entry.name.endswith(".ftl"):
            yield entry.name.removesuffix(".ftl"), entry.read_text(encoding="utf-8")
