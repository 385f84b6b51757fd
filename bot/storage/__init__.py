"""Persistence behind one interface (:class:`Store`), so another database can replace SQLite."""

from bot.storage.base import Store
from bot.storage.sqlite import SqliteStore, StoreOpenError, open_store

__all__ = ["SqliteStore", "Store", "StoreOpenError", "open_store"]
