#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the tests and print its admin URL on stdout:
#
#   export TEST_POSTGRES_URL="$(bash scripts/start-test-postgres.sh)"
#
# The cluster lives in a temporary folder, listens on 127.0.0.1 only (port TEST_POSTGRES_PORT,
# default 54329) and trusts every local connection: it is for tests, never for data. Running the
# script again reuses the server already running there. Works as root (the server then runs as the
# user postgres, which Debian's package creates) and as any other user.
set -euo pipefail

PORT="${TEST_POSTGRES_PORT:-54329}"
ROOT="${TMPDIR:-/tmp}/imagine-bot-test-postgres-$PORT"
DATA="$ROOT/data"
URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
READY_WITHIN=60  # seconds

# The server's programs (initdb, pg_ctl, pg_isready): Debian keeps them out of PATH, one folder per
# major version; take the newest, else what pg_config names, else PATH.
bindir=""
for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$candidate/initdb" ]; then
        bindir="$candidate"
        break
    fi
done
if [ -z "$bindir" ] && command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    bindir="$(pg_config --bindir)"
fi
if [ -z "$bindir" ]; then
    bindir="$(dirname "$(command -v initdb || echo /nonexistent/initdb)")"
fi
if [ ! -x "$bindir/initdb" ]; then
    echo "PostgreSQL's server programs (initdb, pg_ctl) were not found: install PostgreSQL" \
        "(Debian: apt-get install postgresql)" >&2
    exit 1
fi

# As root, run the server as postgres (PostgreSQL refuses to run as root).
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

ready() {
    "$bindir/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres
}

if ready; then
    echo "$URL"
    exit 0
fi

mkdir -p "$ROOT"
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$ROOT"
fi
if [ ! -f "$DATA/PG_VERSION" ]; then
    as_owner "$bindir/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$ROOT/initdb.log" 2>&1 \
        || { cat "$ROOT/initdb.log" >&2; exit 1; }
fi

# Durability settings off: the data is thrown away, and creating a database per test is quicker.
as_owner "$bindir/pg_ctl" start -D "$DATA" -l "$ROOT/server.log" -w -t "$READY_WITHIN" -o \
    "-p $PORT -k $ROOT -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >&2 || { tail -n 20 "$ROOT/server.log" >&2; exit 1; }

deadline=$((SECONDS + READY_WITHIN))
until ready; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "PostgreSQL did not accept connections on 127.0.0.1:$PORT within $READY_WITHIN s" >&2
        tail -n 20 "$ROOT/server.log" >&2
        exit 1
    fi
    sleep 0.2
done
echo "$URL"
