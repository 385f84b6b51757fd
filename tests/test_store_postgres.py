"""What only PostgreSQL's store does: its migrations kept in step with SQLite's, migrating once when
processes start together, a shard held by one process at a time, and one clear error for every
database that cannot be used at start-up (the password never shown).

The behaviour both stores share is tested on both in test_store.py and test_store_ownership.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.models import Ownership
from bot.storage import PostgresStore, StoreOpenError, open_store
from bot.storage.postgres import _open_error, redacted
from bot.storage.sqlite import SqliteStore
from tests.stores import created, new_job, postgres_admin_url, store_opener, with_database

MIGRATIONS = resources.files("bot.storage").joinpath("migrations")


def numbers(folder: object) -> list[int]:
    return sorted(int(e.name[:4]) for e in folder.iterdir() if e.name.endswith(".sql"))  # type: ignore[attr-defined]


def test_both_backends_have_the_same_migration_numbers() -> None:
    sqlite, postgres = numbers(MIGRATIONS), numbers(MIGRATIONS.joinpath("postgres"))
    assert sqlite == postgres == list(range(1, len(sqlite) + 1))


async def test_migrated_databases_have_the_same_tables_and_columns(tmp_path: Path, postgres_database_url: str) -> None:
    path = tmp_path / "bot.sqlite3"
    store = await SqliteStore.open(str(path))
    sqlite_tables: dict[str, list[str]] = {}
    for (table,) in await store._rows(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ):
        sqlite_tables[table] = sorted(r["name"] for r in await store._rows(f"PRAGMA table_info({table})"))
    await store.close()

    db = await asyncpg.connect(postgres_database_url)
    try:
        await (await PostgresStore.open(postgres_database_url)).close()
        rows = await db.fetch(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND table_name != 'schema_version'"""
        )
    finally:
        await db.close()
    postgres_tables: dict[str, list[str]] = {}
    for row in rows:
        postgres_tables.setdefault(row["table_name"], []).append(row["column_name"])
    assert {t: sorted(c) for t, c in postgres_tables.items()} == sqlite_tables
    assert "jobs" in sqlite_tables and "owner" in sqlite_tables["jobs"]


async def test_processes_starting_together_migrate_once(postgres_database_url: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(postgres_database_url) for _ in range(4)))
    try:
        assert {await s.schema_version() for s in stores} == {numbers(MIGRATIONS)[-1]}
    finally:
        for store in stores:
            await store.close()


async def test_newer_schema_is_refused_and_left_alone(postgres_database_url: str) -> None:
    store = await PostgresStore.open(postgres_database_url)
    newest = await store.schema_version()
    await store._pool.execute("UPDATE schema_version SET version = $1", newest + 1)
    await store.close()
    with pytest.raises(StoreOpenError) as info:
        await PostgresStore.open(postgres_database_url)
    assert str(info.value) == (
        f"the database {postgres_database_url} was written by a newer version of the bot"
        f" (schema {newest + 1}, this version knows up to {newest})"
    )
    db = await asyncpg.connect(postgres_database_url)
    try:
        assert await db.fetchval("SELECT version FROM schema_version") == newest + 1
    finally:
        await db.close()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (one just closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def open_error(url: str) -> str:
    with pytest.raises(StoreOpenError) as info:
        async with open_store(url):
            pass
    return str(info.value)


async def test_nothing_listening() -> None:
    url = f"postgresql://bot:s3cret@127.0.0.1:{free_port()}/imagine"
    message = await open_error(url)
    assert message == (
        f"cannot connect to the database {url.replace('s3cret', '***')}: connection refused"
        " (is PostgreSQL running and listening there?)"
    )
    assert "s3cret" not in message


async def test_database_that_does_not_exist() -> None:
    url = with_database(postgres_admin_url(), "no_such_database")
    assert await open_error(url) == (
        f"the database {url} does not exist (create it, or check the name in DATABASE_URL)"
    )


async def test_unknown_user_is_a_login_error() -> None:
    parts = urlsplit(postgres_admin_url())
    url = urlunsplit((parts.scheme, f"nobody:pw@{parts.hostname}:{parts.port}", parts.path, "", ""))
    message = await open_error(url)
    assert message.startswith(f"cannot log in to the database {url.replace(':pw@', ':***@')}: ")
    assert message.endswith("(check the user and password)") and ":pw@" not in message


def test_unknown_host_and_timeout_messages() -> None:
    where = "postgresql://bot@db.example:5432/imagine"
    assert str(_open_error(where, socket.gaierror(-2, "Name or service not known"), 10)) == (
        f"cannot connect to the database {where}: unknown host db.example"
    )
    assert str(_open_error(where, TimeoutError(), 10)) == (
        f"cannot connect to the database {where}: no answer within 10 s"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://bot:pa:ss@h:5432/db", "postgresql://bot:***@h:5432/db"),
        (
            "postgresql://bot@h/db?password=x&sslmode=require",
            "postgresql://bot@h/db?password=%2A%2A%2A&sslmode=require",
        ),
        ("postgres://h/db", "postgres://h/db"),
    ],
)
def test_the_password_is_never_shown(url: str, shown: str) -> None:
    assert redacted(url) == shown


# -- shards --------------------------------------------------------------------------------

SHARD0 = Ownership("first", shard_count=2, shard_ids=frozenset({0}))
SHARD0_AGAIN = Ownership("second", shard_count=2, shard_ids=frozenset({0}))
SHARD1 = Ownership("other", shard_count=2, shard_ids=frozenset({1}))


async def test_a_shard_held_by_another_process_is_refused_after_the_wait(
    postgres_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with store_opener(postgres_database_url) as open_one:
        first = await open_one(SHARD0)
        await first.claim_shards()
        other = await open_one(SHARD1)
        assert await other.claim_shards(wait=0.1) == 0  # another shard: no wait
        second = await open_one(SHARD0_AGAIN)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with caplog.at_level(logging.WARNING, "bot.storage.postgres"), pytest.raises(StoreOpenError) as info:
            await second.claim_shards(wait=0.3)
        assert loop.time() - started >= 0.3
        assert str(info.value) == (
            f"shard 0 is held by another process using the database {postgres_database_url}"
            " (is another copy of the bot running for shard 0?); gave up after 0.3 s"
        )
        waiting = [r for r in caplog.records if "waiting" in r.getMessage()]
        assert len(waiting) == 1


async def test_a_shard_is_taken_once_its_holder_closes(postgres_database_url: str) -> None:
    async with store_opener(postgres_database_url) as open_one:
        second = await open_one(SHARD0_AGAIN)
        async with open_store(postgres_database_url, ownership=SHARD0) as first:
            await first.claim_shards()
            job = await created(first, new_job(guild=10))
            claim = asyncio.create_task(second.claim_shards(wait=30))
            done, _ = await asyncio.wait({claim}, timeout=0.3)
            assert not done  # waiting while the first process holds shard 0
        async with asyncio.timeout(10):
            assert await claim == 1  # the first one's unfinished job
        assert (await second.get_job(job.id)).owner == "second"  # type: ignore[union-attr]
