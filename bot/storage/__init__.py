"""Persistence behind one interface (:class:`Store`): SQLite by default, PostgreSQL for deployments
that outgrow one process. :func:`open_store` picks the one ``DATABASE_URL`` names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.config import is_postgres_url, sqlite_path
from bot.models import Ownership
from bot.storage.base import CLAIM_WAIT, NotOwnerError, Store, StoreOpenError
from bot.storage.postgres import PostgresStore
from bot.storage.sqlite import BUSY_TIMEOUT, SqliteStore

__all__ = [
    "CLAIM_WAIT",
    "NotOwnerError",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "StoreOpenError",
    "open_store",
]


@asynccontextmanager
async def open_store(
    database_url: str, *, ownership: Ownership | None = None, busy_timeout: float = BUSY_TIMEOUT
) -> AsyncIterator[Store]:
    """Open the store named by ``DATABASE_URL`` for the lifetime of the ``async with`` block, migrated,
    for ``ownership`` (default: one process with every job): ``sqlite:///path`` opens SQLite (where
    ``busy_timeout`` applies), ``postgresql://…`` (or ``postgres://…``) PostgreSQL. Call
    :meth:`Store.claim_shards` before resuming jobs.

    Raises :class:`StoreOpenError` when the database cannot be used.
    """
    store: Store
    if is_postgres_url(database_url):
        store = await PostgresStore.open(database_url, ownership=ownership)
    else:
        store = await SqliteStore.open(sqlite_path(database_url), busy_timeout=busy_timeout, ownership=ownership)
    try:
        yield store
    finally:
        await store.close()
