#!/usr/bin/env bash
# Install uv without touching the system Python's packages (stock Debian 12 has no pip, and
# PEP 668 forbids installing into it): a throwaway venv under ~/.local/share/uv-venv, with a
# link at ~/.local/bin/uv. Debian's python3-venv provides the venv module (apt, as root).
#
#   scripts/install-uv.sh            # no-op when uv is already on PATH
set -euo pipefail
UV_VERSION="${UV_VERSION:-0.13.9}"
if command -v uv >/dev/null 2>&1; then
    exit 0
fi
if "$HOME/.local/bin/uv" --version >/dev/null 2>&1; then
    echo "uv is at $HOME/.local/bin/uv; put it on PATH: export PATH=\"\$PATH:\$HOME/.local/bin\"" >&2
    exit 0
fi
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "install python3-venv (apt-get install python3-venv)" >&2; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
venv="$HOME/.local/share/uv-venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
mkdir -p "$HOME/.local/bin"
ln -sf "$venv/bin/uv" "$HOME/.local/bin/uv"
echo "uv $("$HOME/.local/bin/uv" --version | cut -d' ' -f2) at $HOME/.local/bin/uv" >&2
