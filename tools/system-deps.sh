#!/usr/bin/env bash
# Install the Debian/Ubuntu packages Stethoscope needs, and only those missing.
#
#   tools/system-deps.sh run    Python 3.11+ with venv (make run)
#   tools/system-deps.sh test   also redis-server, PostgreSQL's server binaries
#                               and Chromium (make test)
#
# Nothing is installed when everything is present, so make calls this on
# every run. When something is missing: apt-get update, then a noninteractive
# install (through sudo when not root), waiting for any other apt or dpkg
# that holds the lock. The tests start their own private redis-server and
# PostgreSQL cluster; the system services need not run.
set -euo pipefail

profile=${1:-}
case "$profile" in
    run | test) ;;
    *)
        echo "usage: $0 run|test" >&2
        exit 2
        ;;
esac

PYTHON=${PYTHON:-python3}
missing=()

have_command() { command -v "$1" >/dev/null 2>&1; }

have_package() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

need() {
    # need PACKAGE CHECK...: add PACKAGE unless CHECK succeeds.
    local package=$1
    shift
    if ! "$@" >/dev/null 2>&1; then
        missing+=("$package")
    fi
}

python_has_venv() {
    # Debian splits venv and ensurepip out of python3; pyenv's Python has them.
    "$PYTHON" -c 'import ensurepip, venv'
}

have_initdb() {
    # The tests look for initdb in PATH, then in /usr/lib/postgresql/*/bin.
    have_command initdb && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || return 1
    # As root the tests run PostgreSQL as the postgres user the package makes.
    [ "$(id -u)" -ne 0 ] || id postgres
}

have_chromium() { have_command chromium || [ -x /usr/bin/chromium ]; }

# PYTHON=python3.12 (or /usr/bin/python3.12) comes from python3.12 and
# python3.12-venv; anything else from the distribution's python3.
python_name=$(basename -- "$PYTHON")
case "$python_name" in
    python3.[0-9]*) python_package=$python_name ;;
    *) python_package=python3 ;;
esac
need "$python_package" have_command "$PYTHON"
need "$python_package-venv" python_has_venv
if [ "$profile" = test ]; then
    need redis-server have_command redis-server
    need postgresql have_initdb
    need chromium have_chromium
    # Chromium only recommends fonts; pages need one to lay out text.
    need fonts-liberation have_package fonts-liberation
fi

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif have_command sudo; then
        sudo "$@"
    else
        echo "error: installing ${missing[*]} needs root, and sudo is not installed" >&2
        exit 1
    fi
}

apt_lock_held() {
    # apt and dpkg take POSIX locks on these files; /proc/locks lists every
    # lock held on the machine as MAJOR:MINOR:INODE (hex device numbers).
    local file dev inode id
    for file in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock \
        /var/lib/apt/lists/lock /var/cache/apt/archives/lock; do
        [ -e "$file" ] || continue
        dev=$(stat -c %d "$file")
        inode=$(stat -c %i "$file")
        id=$(printf '%02x:%02x:%s' \
            $(((dev >> 8) & 0xfff)) $(((dev & 0xff) | ((dev >> 12) & 0xfff00))) "$inode")
        if awk -v id="$id" '$6 == id { found = 1 } END { exit !found }' /proc/locks; then
            return 0
        fi
    done
    return 1
}

wait_for_apt() {
    local waited=0
    while apt_lock_held; do
        if [ "$waited" -ge 900 ]; then
            echo "error: apt/dpkg has been locked by another process for 15 minutes" >&2
            exit 1
        fi
        if [ "$waited" -eq 0 ]; then
            echo "waiting for another apt or dpkg to finish..." >&2
        fi
        sleep 5
        waited=$((waited + 5))
    done
}

apt_get() {
    # DPkg::Lock::Timeout covers the race between our check and apt's own
    # lock; a failure while someone else holds a lock is tried again.
    local attempt
    for attempt in 1 2 3; do
        wait_for_apt
        if as_root env DEBIAN_FRONTEND=noninteractive apt-get -q \
            -o DPkg::Lock::Timeout=300 -o Acquire::Retries=3 "$@"; then
            return 0
        fi
        apt_lock_held || [ "$attempt" -eq 3 ] || sleep 5
    done
    return 1
}

if [ "${#missing[@]}" -gt 0 ]; then
    if ! have_command apt-get; then
        echo "error: please install: ${missing[*]} (no apt-get on this machine)" >&2
        exit 1
    fi
    echo "installing system packages: ${missing[*]}" >&2
    apt_get update
    apt_get install -y --no-install-recommends "${missing[@]}"
fi

# After the install, so a fresh machine gets python3 first.
"$PYTHON" - <<'EOF'
import sys

if sys.version_info < (3, 11):
    sys.exit(
        f"error: Stethoscope needs Python 3.11 or newer; {sys.executable} is "
        f"{sys.version.split()[0]}. Run make with PYTHON=python3.11 (or newer)."
    )
EOF

if [ "$profile" = test ]; then
    # The Redis deduplicator claims with SET ... NX PX ... GET (Redis 7.0+).
    version=$(redis-server --version | sed -n 's/.* v=\([0-9]*\)\..*/\1/p')
    if [ -n "$version" ] && [ "$version" -lt 7 ]; then
        echo "warning: redis-server $version is older than 7.0; the Redis" \
            "deduplication tests will fail (Debian 12 and Ubuntu 24.04 have 7.0)" >&2
    fi
fi
