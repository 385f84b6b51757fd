"""Opening the SQLite store: every database problem at start-up is one :class:`StoreOpenError`
whose message names the file and says what is wrong (no traceback for the operator to decode).

Each test makes the failure for real: a file where the folder should be, a folder where the file
should be, a lock held by another process, a schema from a newer version, and read-only files and
folders. Read-only needs permission bits to count, which they do not for root: those cases run in
a child process that drops the capabilities letting root ignore them (and skip if it cannot).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.storage.sqlite import SqliteStore, StoreOpenError

LOCKED = "the database {} is locked by another process (is another copy of the bot running?)"


async def up_to_date_database(path: Path) -> int:
    """Create a migrated database at ``path``, closed again; returns its schema version."""
    store = await SqliteStore.open(str(path))
    version = await store.schema_version()
    await store.close()
    return version


async def open_error(path: Path, **options: float) -> str:
    with pytest.raises(StoreOpenError) as info:
        await SqliteStore.open(str(path), **options)
    return str(info.value)


@pytest.mark.parametrize(
    ("where", "reason"),
    [("file.txt/bot.sqlite3", "file.txt is a file"), ("file.txt/data/bot.sqlite3", "Not a directory")],
)
async def test_folder_that_cannot_be_created(tmp_path: Path, where: str, reason: str) -> None:
    (tmp_path / "file.txt").write_text("not a folder")
    path = tmp_path / where
    message = await open_error(path)
    assert message.startswith(f"cannot create the folder of the database {path}: ")
    assert message.endswith(reason)


async def test_path_is_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    path.mkdir()
    assert await open_error(path) == f"cannot open the database {path}: it is a folder, not a file"


async def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    path.write_bytes(b"these are not the pages of a database\n" * 200)
    assert await open_error(path) == f"{path} is not a SQLite database (check DATABASE_URL)"


async def test_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    newest = await up_to_date_database(path)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {newest + 1}")
    assert await open_error(path) == (
        f"the database {path} was written by a newer version of the bot"
        f" (schema {newest + 1}, this version knows up to {newest})"
    )
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (newest + 1,)


# Another process holds the lock: in the usual (WAL) mode a writer, which still lets others read
# but not write; with locking_mode=EXCLUSIVE, nobody else may even read.
HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "exclusive":
    db.execute("PRAGMA locking_mode=EXCLUSIVE")
db.execute("BEGIN EXCLUSIVE")
db.execute("PRAGMA user_version").fetchone()
print("locked", flush=True)
sys.stdin.read()  # until the test closes our stdin
db.rollback()
"""


@pytest.mark.parametrize("mode", ["writing", "exclusive"])
async def test_locked_by_another_process(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "bot.sqlite3"
    await up_to_date_database(path)
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLD_LOCK, str(path), mode, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"locked\n"
        async with asyncio.timeout(10):  # bounded by the busy timeout, not by the other process
            message = await open_error(path, busy_timeout=0.05)
    finally:
        holder.stdin.close()
        await holder.wait()
    assert message == LOCKED.format(path)
    await (await SqliteStore.open(str(path))).close()  # usable once the other process let go


# -- read-only -------------------------------------------------------------------------------

PR_CAPBSET_DROP = 24
# CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER: what lets root write where the bits say no.
FILE_CAPABILITIES = (1, 2, 3)


def without_file_privileges() -> None:
    """``preexec_fn``: when running as root, make the child obey permission bits like anyone else."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in FILE_CAPABILITIES:
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot drop capability")


def run_unprivileged(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python args…`` as a user bound by permission bits; skip if this system cannot."""
    try:
        return subprocess.run(
            [sys.executable, *args],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=without_file_privileges,
        )
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot drop root's file privileges here: {exc}")


def assert_permissions_apply(target: Path) -> None:
    """Skip unless a child started by :func:`run_unprivileged` really cannot write ``target``."""
    proc = run_unprivileged(["-c", f"open({str(target)!r}, 'ab')"])
    if proc.returncode == 0:
        pytest.skip("permission bits do not stop writes here")


OPEN_IN_CHILD = """
import asyncio, sys
from bot.storage.sqlite import SqliteStore, StoreOpenError

async def main() -> None:
    try:
        store = await SqliteStore.open(sys.argv[1])
    except StoreOpenError as exc:
        print(exc)
    else:
        await store.close()
        print("opened")

asyncio.run(main())
"""


def open_unprivileged(path: Path) -> str:
    proc = run_unprivileged(["-c", OPEN_IN_CHILD, str(path)])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@contextlib.contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    modes = [p.stat().st_mode & 0o7777 for p in paths]
    for p in paths:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield
    finally:
        for p, mode in zip(paths, modes, strict=True):
            p.chmod(mode)


async def test_read_only_file(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    await up_to_date_database(path)  # reading it works; the first write would not
    with read_only(path):
        assert_permissions_apply(path)
        assert open_unprivileged(path) == f"the database {path} is read-only: the bot must be able to write to it"


async def test_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    path = folder / "bot.sqlite3"
    folder.mkdir()
    await up_to_date_database(path)  # the file is writable, but WAL needs files next to it
    with read_only(folder):
        assert_permissions_apply(folder / "probe")
        assert open_unprivileged(path) == (
            f"the database {path} is read-only: the bot must be able to write to its folder {folder}"
        )


async def test_new_database_in_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    path = folder / "bot.sqlite3"
    folder.mkdir()
    with read_only(folder):
        assert_permissions_apply(folder / "probe")
        assert open_unprivileged(path) == f"cannot create the database {path} (can the bot write to {folder}?)"


async def test_processes_starting_together_on_a_new_database_migrate_it_once(tmp_path: Path) -> None:
    """Several processes (here: stores) opening one new database at once: each migration is applied
    by whichever takes the write lock first; the others find it applied and open the same schema."""
    path = str(tmp_path / "bot.sqlite3")
    stores = await asyncio.gather(*(SqliteStore.open(path) for _ in range(4)))
    try:
        versions = {await store.schema_version() for store in stores}
    finally:
        for store in stores:
            await store.close()
    assert versions == {await up_to_date_database(tmp_path / "fresh.sqlite3")}
