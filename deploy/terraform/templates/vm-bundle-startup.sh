#!/bin/bash
# Debian 12 startup script (rendered by vm.tf; runs as root on every boot): install the offline
# bundle ${bundle_uri} with its own install.sh (a venv under /opt/mlship/${model}/<version>, the
# hardened systemd unit, `current` switched to it) and start the service. No package index is
# contacted: the bundle carries every wheel. Idempotent: a version already installed is kept.
set -euo pipefail

work=$(mktemp -d /var/tmp/mlship-bundle.XXXXXX)
trap 'rm -rf "$work"' EXIT

gcloud storage cp "${bundle_uri}" "$work/bundle.tar.gz"
tar -C "$work" -xzf "$work/bundle.tar.gz"
bundle_dir=$(find "$work" -mindepth 2 -maxdepth 2 -name install.sh -printf '%h\n' | head -n 1)
"$bundle_dir/install.sh" --activate
