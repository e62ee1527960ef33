#!/usr/bin/env bash
# Make (or refresh) the Debian sid root the 3.14/3.15 tests run in; quick when all is there.
#   scripts/make_sid_root.sh [--check]
#
# The root holds what Debian sid ships and this machine's Debian 12 cannot:
#   python3.14, python3.15 and their -dbg packages (the debug builds python3.14d
#   and python3.15d, and the DWARF of the release builds), with -dev to build
#   the buggy fixture extension; gdb 18 and lldb-21 with python3-lldb-21, whose
#   embedded Python is 3.14; python3-pygments and python3-tabulate.
#
# Where: $PYLIFE_SID_ROOT (default /var/cache/pylife/sid-root), outside any
# checkout, shared by every checkout of this machine. Concurrent runs take
# $PYLIFE_SID_ROOT.lock. Installed packages are listed in
# $PYLIFE_SID_ROOT/.pylife-packages: when it lists them all, the script only
# checks the mounts.
#
# Mounts (each only when not mounted yet): /proc, /sys, /dev and /dev/pts (lldb
# launches its inferior on a pseudo-terminal), and /tmp and the checkout at the
# same paths as outside, so that a test's files and pylife's entry points have
# one path in and out of the root.
#
# --check: exit 0 when the root is complete and mounted, 1 otherwise (changes nothing).
set -euo pipefail

ROOT_DIR=${PYLIFE_SID_ROOT:-/var/cache/pylife/sid-root}
MIRROR=${PYLIFE_SID_MIRROR:-http://deb.debian.org/debian}
CHECKOUT=$(cd "$(dirname "$0")/.." && pwd)
PACKAGES=(
    python3.14 python3.14-dbg python3.14-dev
    python3.15 python3.15-dbg python3.15-dev
    gdb lldb-21 python3-lldb-21 python3-pygments python3-tabulate
    gcc libc6-dev procps
)
STAMP=$ROOT_DIR/.pylife-packages
MOUNTS=(proc sys dev dev/pts tmp "${CHECKOUT#/}")

complete() {
    [ -f "$STAMP" ] || return 1
    local p
    for p in "${PACKAGES[@]}"; do grep -qx "$p" "$STAMP" || return 1; done
}

# A bind mount whose source was deleted (a checkout removed and cloned again at
# the same path) is still a mount point, but shows the dead directory: the same
# path inside and outside must be the same directory (device and inode).
same_directory() {  # same_directory PATH
    [ "$(stat -c %d:%i "$1")" = "$(stat -c %d:%i "$ROOT_DIR$1")" ]
}

mounted() {
    local m
    for m in "${MOUNTS[@]}"; do mountpoint -q "$ROOT_DIR/$m" || return 1; done
    same_directory /tmp && same_directory "$CHECKOUT"
}

if [ "${1:-}" = "--check" ]; then
    complete && mounted
    exit $?
fi

if [ "$(id -u)" -ne 0 ]; then
    exec sudo --preserve-env=PYLIFE_SID_ROOT,PYLIFE_SID_MIRROR bash "$0" "$@"
fi

mkdir -p "$(dirname "$ROOT_DIR")"
exec 9>"$ROOT_DIR.lock"
flock 9

if [ ! -x "$ROOT_DIR/usr/bin/apt-get" ] || [ -d "$ROOT_DIR/debootstrap" ]; then
    # No root yet, or an interrupted debootstrap (it leaves /debootstrap behind).
    command -v debootstrap >/dev/null 2>&1 || {
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    for m in $(printf '%s\n' "${MOUNTS[@]}" | tac); do
        if mountpoint -q "$ROOT_DIR/$m"; then umount "$ROOT_DIR/$m"; fi
    done
    # /tmp and the checkout are bind mounts: never delete through one.
    if awk -v root="$ROOT_DIR/" 'index($2, root) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
        echo "sid-root: $ROOT_DIR still has mounts; unmount them first" >&2
        exit 1
    fi
    rm -rf "$ROOT_DIR"
    echo "sid-root: debootstrap --variant=minbase sid $ROOT_DIR (a few minutes)"
    debootstrap --variant=minbase sid "$ROOT_DIR" "$MIRROR" >"$ROOT_DIR.debootstrap.log" 2>&1 || {
        tail -20 "$ROOT_DIR.debootstrap.log" >&2
        exit 1
    }
fi

mount_once() {  # mount_once WHERE ARGS...
    local where=$ROOT_DIR/$1
    shift
    mkdir -p "$where"
    mountpoint -q "$where" || mount "$@" "$where"
}
mount_once proc -t proc proc
mount_once sys -t sysfs sysfs
mount_once dev --bind /dev
mount_once dev/pts --bind /dev/pts
mount_once tmp --bind /tmp
if mountpoint -q "$ROOT_DIR$CHECKOUT" && ! same_directory "$CHECKOUT"; then
    echo "sid-root: $ROOT_DIR$CHECKOUT shows a deleted checkout; mounting $CHECKOUT again"
    umount -l "$ROOT_DIR$CHECKOUT"
fi
mount_once "${CHECKOUT#/}" --bind "$CHECKOUT"

if ! complete; then
    echo "sid-root: installing ${PACKAGES[*]}"
    cp /etc/resolv.conf "$ROOT_DIR/etc/resolv.conf"
    # The mirror may serve a sid whose Release is past its Valid-Until by this machine's clock.
    echo 'Acquire::Check-Valid-Until "false";' >"$ROOT_DIR/etc/apt/apt.conf.d/99pylife"
    chroot "$ROOT_DIR" apt-get update -qq
    chroot "$ROOT_DIR" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >"$ROOT_DIR.apt.log" 2>&1 || {
        tail -20 "$ROOT_DIR.apt.log" >&2
        exit 1
    }
    printf '%s\n' "${PACKAGES[@]}" >"$STAMP"
fi

echo "sid-root: ok ($ROOT_DIR: $(chroot "$ROOT_DIR" gdb --version | head -1);" \
    "$(chroot "$ROOT_DIR" lldb-21 --version | head -1);" \
    "$(chroot "$ROOT_DIR" python3.14 -VV | head -1); $(chroot "$ROOT_DIR" python3.15 -VV | head -1))"
