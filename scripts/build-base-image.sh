#!/usr/bin/env bash
# Build a local Debian bookworm + Python 3.11 base image, close to python:3.11-slim-bookworm,
# from Debian's packages (no container registry is reachable here). Idempotent.
#
#   scripts/build-base-image.sh [TAG]        # default TAG: mlship-base:bookworm
#   scripts/build-base-image.sh --official [TAG]   # default TAG: mlship-base:bookworm-official
#   FORCE=1 scripts/build-base-image.sh      # rebuild even if TAG exists
#
# --official makes the base equivalent to python:3.11-slim-bookworm in what it lacks: no
# libgomp1 (the official image has no OpenMP runtime), so image sizes and the Dockerfile's
# own package installs are measured as they will be on the official base (docs/images.md).
#
# The image has:
#   - python3.11 at /usr/bin/python3.11, with /usr/local/bin/python and /usr/local/bin/python3
#     symlinks (as in python:3.11-slim, so `python -m venv /opt/venv` works in both);
#   - python3-venv (ensurepip wheels), so `python -m venv X && X/bin/pip install ...` works.
#     There is no system-wide pip (Debian's python is PEP 668 "externally managed"): use a venv;
#   - ca-certificates, netbase, tzdata, libgomp1 (OpenMP runtime for LightGBM; not with
#     --official),
#     passwd (useradd/groupadd), apt with bookworm + bookworm-updates + bookworm-security sources;
#   - this machine's CA bundle at /etc/ssl/certs/ca-certificates.crt (and any CA in it that
#     Debian does not ship, kept in /usr/local/share/ca-certificates/ so update-ca-certificates
#     does not drop it), so pip/apt work inside `docker build` here.
#
# Needs root, debootstrap and a running engine (scripts/start-dockerd.sh provides both).
# Env: FORCE=1, MIRROR (default http://deb.debian.org/debian),
#      SECURITY_MIRROR (default http://deb.debian.org/debian-security),
#      UPGRADE=0 to skip applying bookworm-updates/security updates in the rootfs.
set -euo pipefail

OFFICIAL=0
if [ "${1:-}" = --official ]; then
    OFFICIAL=1
    shift
fi
case "${1:-}" in -*) echo "usage: $0 [--official] [TAG]" >&2; exit 2 ;; esac
if [ "$OFFICIAL" = 1 ]; then
    TAG="${1:-mlship-base:bookworm-official}"
else
    TAG="${1:-mlship-base:bookworm}"
fi
SUITE=bookworm
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
UPGRADE="${UPGRADE:-1}"
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
PACKAGES=python3,python3-venv,ca-certificates,netbase,tzdata,passwd
[ "$OFFICIAL" = 1 ] || PACKAGES="$PACKAGES,libgomp1"

log() { echo "[build-base-image] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap)"
docker info >/dev/null 2>&1 || die "no Docker engine answers; run scripts/start-dockerd.sh first"

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    log "image $TAG already exists ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}')); FORCE=1 rebuilds"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

OLD_ID="$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)"
WORK="$(mktemp -d /tmp/mlship-base.XXXXXX)"
ROOTFS="$WORK/rootfs"

umount_all() {
    # Unmount anything left mounted under ROOTFS (deepest first) before deleting it.
    local m
    if [ -d "$ROOTFS" ]; then
        awk -v r="$ROOTFS" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r |
            while read -r m; do umount -l "$m" 2>/dev/null || true; done
    fi
}
cleanup() {
    umount_all
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

in_root() { chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }

log "debootstrap $SUITE ($PACKAGES) from $MIRROR"
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" \
        >"$WORK/debootstrap.out" 2>&1; then
    tail -n 30 "$WORK/debootstrap.out" >&2
    [ -f "$ROOTFS/debootstrap/debootstrap.log" ] && tail -n 30 "$ROOTFS/debootstrap/debootstrap.log" >&2
    die "debootstrap failed"
fi

# --- apt/dpkg configuration as in Debian's official (slim) images --------------------------
rm -f "$ROOTFS/etc/apt/sources.list"
cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
# Keep images small: no docs, man pages or translations (copyright files are kept).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-no-languages" <<'EOF'
Acquire::Languages "none";
EOF
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-autoremove-suggests" <<'EOF'
Apt::AutoRemove::SuggestsImportant "false";
EOF
# Services never start inside image builds.
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"

# --- apply bookworm-updates / bookworm-security --------------------------------------------
if [ "$UPGRADE" = 1 ]; then
    log "applying $SUITE-updates and $SUITE-security updates"
    cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf" 2>/dev/null || true
    mount -t proc proc "$ROOTFS/proc"
    if ! { in_root apt-get update -qq && in_root apt-get -y -qq -o Dpkg::Use-Pty=0 \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
            dist-upgrade; } >"$WORK/upgrade.out" 2>&1; then
        tail -n 30 "$WORK/upgrade.out" >&2
        die "apt-get upgrade inside the rootfs failed (UPGRADE=0 skips it)"
    fi
    umount "$ROOTFS/proc"
fi

# --- Python as in python:3.11-slim: python/python3 on /usr/local/bin ------------------------
[ -x "$ROOTFS/usr/bin/python3.11" ] || die "python3.11 missing from the rootfs"
ln -sf /usr/bin/python3.11 "$ROOTFS/usr/local/bin/python3"
ln -sf /usr/bin/python3.11 "$ROOTFS/usr/local/bin/python"

# --- trust this machine's CA bundle -------------------------------------------------------
if [ -f "$HOST_CA_BUNDLE" ]; then
    # CAs in the host bundle that Debian's bundle lacks (e.g. a TLS-inspecting proxy's CA)
    # go to /usr/local/share/ca-certificates so a later update-ca-certificates keeps them.
    # The host bundle itself is then copied over as is.
    python3 - "$HOST_CA_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt" \
        "$ROOTFS/usr/local/share/ca-certificates" <<'PY' || die "could not import the host CA bundle"
import os, re, sys
host, image, outdir = sys.argv[1:]
pem = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
norm = lambda c: "".join(c.split())
have = {norm(c) for c in pem.findall(open(image).read())} if os.path.exists(image) else set()
extra = [c for c in pem.findall(open(host).read()) if norm(c) not in have]
os.makedirs(outdir, exist_ok=True)
for i, c in enumerate(extra):
    with open(os.path.join(outdir, f"host-extra-{i}.crt"), "w") as f:
        f.write(c + "\n")
print(f"[build-base-image] host CA bundle: {len(extra)} CA(s) not in Debian's bundle kept", file=sys.stderr)
PY
    install -m 644 "$HOST_CA_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
else
    log "warning: $HOST_CA_BUNDLE not found; keeping Debian's CA bundle"
fi

# --- slim down ------------------------------------------------------------------------------
rm -rf "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* \
    "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/lib/dpkg/*-old \
    "$ROOTFS"/var/log/* "$ROOTFS"/debootstrap \
    "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/usr/share/locale/* "$ROOTFS"/usr/share/lintian/* \
    "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* "$ROOTFS"/root/.cache
find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
mkdir -p "$ROOTFS/var/lib/apt/lists/partial" "$ROOTFS/var/cache/apt/archives/partial"
# Docker provides these at run time.
: >"$ROOTFS/etc/resolv.conf"
: >"$ROOTFS/etc/hostname"
: >"$ROOTFS/etc/machine-id" 2>/dev/null || true
chmod 1777 "$ROOTFS/tmp" "$ROOTFS/var/tmp"

# --- import -------------------------------------------------------------------------------
log "docker import -> $TAG"
tar --numeric-owner --xattrs -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PYTHON_VERSION=3.11' \
    --change 'CMD ["python3"]' \
    --message "Debian $SUITE minbase + Python 3.11 (scripts/build-base-image.sh$([ "$OFFICIAL" = 1 ] && echo ' --official'))" \
    - "$TAG" >/dev/null

docker run --rm "$TAG" python -c 'import ssl, venv, ensurepip, sys; print(sys.version.split()[0])' >/dev/null \
    || die "smoke test of $TAG failed"
if [ "$OFFICIAL" = 1 ] && docker run --rm "$TAG" sh -c 'ldconfig -p | grep -q libgomp'; then
    die "$TAG has libgomp, python:3.11-slim-bookworm does not"
fi
# FORCE=1: drop the previous image unless something still uses it (a tag, a child, a container).
NEW_ID="$(docker image inspect -f '{{.Id}}' "$TAG")"
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$NEW_ID" ]; then
    docker image rm "$OLD_ID" >/dev/null 2>&1 || true
fi
size="$(docker image inspect -f '{{.Size}}' "$TAG")"
log "built $TAG: $(awk -v s="$size" 'BEGIN {printf "%.0f MB (%d bytes)", s/1e6, s}')"
