#!/usr/bin/env bash
# Make a Docker engine answer on this machine (idempotent).
#
#   scripts/start-dockerd.sh
#
# - If `docker info` already answers, does nothing.
# - Otherwise installs Debian's docker.io (dockerd + containerd + runc) when dockerd is
#   missing, plus debootstrap for scripts/build-base-image.sh, then starts dockerd in the
#   background (detached, log in $DOCKERD_LOG) and waits until `docker info` answers.
#
# Machines here have no systemd and no container registry; a pre-installed docker CLI
# (e.g. /usr/local/bin/docker, 28.x) talks to Debian's dockerd 20.10 through API version
# negotiation. Needs root (apt-get, dockerd).
#
# Env: DOCKERD_LOG (default /var/log/dockerd.log), DOCKERD_WAIT (seconds, default 60).
set -euo pipefail

DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
DOCKERD_WAIT="${DOCKERD_WAIT:-60}"

log() { echo "[start-dockerd] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

docker_answers() { docker info >/dev/null 2>&1; }

apt_updated=0
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ "$apt_updated" = 0 ]; then
        log "apt-get update"
        apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    # policy-rc.d / no systemd: the package's service start may be refused; we start
    # dockerd ourselves below.
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >/dev/null
}

[ "$(id -u)" = 0 ] || die "must run as root (apt-get, dockerd)"

# debootstrap is needed by scripts/build-base-image.sh; install it whatever the engine state.
missing=()
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ! command -v dockerd >/dev/null 2>&1; then
    # docker.io depends on containerd, runc, tini and iptables (pulled in); of its
    # recommends only ca-certificates and xz-utils are worth having. Only name packages
    # that are absent, so an install never upgrades what the machine already has.
    missing+=(docker.io)
    for p in ca-certificates xz-utils; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
fi
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi

if ! command -v docker >/dev/null 2>&1; then
    # docker.io ships /usr/bin/docker; only reached if no client existed at all.
    die "no docker client on PATH after installing docker.io"
fi

if docker_answers; then
    log "docker engine already answers"
    docker version --format 'client {{.Client.Version}} (API {{.Client.APIVersion}}), server {{.Server.Version}} (API {{.Server.APIVersion}})' >&2 || true
    exit 0
fi

# A stale pid file from a dead daemon makes dockerd refuse to start.
if [ -f /var/run/docker.pid ]; then
    pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        log "dockerd (pid $pid) is running but does not answer yet; waiting for it"
    else
        log "removing stale /var/run/docker.pid"
        rm -f /var/run/docker.pid
        pid=""
    fi
else
    pid=""
fi

if [ -z "$pid" ]; then
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    log "starting dockerd (log: $DOCKERD_LOG)"
    # setsid + nohup + closed stdin: fully detached, survives this shell and CI step.
    setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    pid=$!
fi

for _ in $(seq 1 "$DOCKERD_WAIT"); do
    if docker_answers; then
        break
    fi
    if ! kill -0 "$pid" 2>/dev/null && [ ! -S /var/run/docker.sock ]; then
        log "dockerd exited; last lines of $DOCKERD_LOG:"
        tail -n 30 "$DOCKERD_LOG" >&2 || true
        die "dockerd failed to start"
    fi
    sleep 1
done

if ! docker_answers; then
    log "last lines of $DOCKERD_LOG:"
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    die "docker info did not answer within ${DOCKERD_WAIT}s"
fi

# Check that the client and the server actually talk (client/server API negotiation).
if ! ver="$(docker version --format 'client {{.Client.Version}} (API {{.Client.APIVersion}}), server {{.Server.Version}} (API {{.Server.APIVersion}})' 2>&1)"; then
    log "$ver"
    die "docker client ($(command -v docker)) cannot talk to the started dockerd"
fi
log "docker engine ready: $ver"
