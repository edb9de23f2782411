#!/bin/bash
# Install mlship bundle @NAME@ v@VERSION@ (runtime @RUNTIME@) on this machine, offline.
#
#   sudo ./install.sh              # install beside any other version; `current` is not moved
#   sudo ./install.sh --activate   # ... and switch `current` to it, (re)start the service
#
# Creates @PREFIX@/@NAME@/@VERSION@/ (a venv built from ./wheelhouse with --no-index, the model,
# the env file), the systemd unit @UNIT_DIR@/@UNIT@, and an `activate` script in the version
# dir that points @PREFIX@/@NAME@/current at it. Rollback: sudo @PREFIX@/@NAME@/previous/activate
#
# Overrides (for tests and unusual hosts): MLSHIP_PREFIX, MLSHIP_UNIT_DIR, MLSHIP_PYTHON.
set -euo pipefail

NAME='@NAME@'
VERSION='@VERSION@'
PYTHON_VERSION='@PYTHON@'
UNIT='@UNIT@'
PREFIX=${MLSHIP_PREFIX:-@PREFIX@}
UNIT_DIR=${MLSHIP_UNIT_DIR:-@UNIT_DIR@}
PYTHON=${MLSHIP_PYTHON:-python3}

activate=0
for arg in "$@"; do
    case "$arg" in
        --activate) activate=1 ;;
        -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf 'mlship-bundle: %s\n' "$*"; }
die() { printf 'mlship-bundle: error: %s\n' "$*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd -P)
root=$PREFIX/$NAME
dest=$root/$VERSION

command -v "$PYTHON" >/dev/null || die "$PYTHON not found: this bundle needs CPython $PYTHON_VERSION"
have=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$have" = "$PYTHON_VERSION" ] || die "$PYTHON is Python $have; this bundle's wheels are for $PYTHON_VERSION"

say "checking the bundle's files (SHA256SUMS)"
(cd "$here" && sha256sum --check --quiet --strict SHA256SUMS) || die "a file does not match SHA256SUMS"

if [ -f "$dest/.installed" ]; then
    say "$NAME v$VERSION is already installed in $dest"
else
    say "installing $NAME v$VERSION into $dest"
    rm -rf "$dest"   # a previous attempt that did not finish
    mkdir -p "$root"
    # The venv is made without pip (Debian's python3 may lack ensurepip); pip comes from the
    # wheelhouse, run straight from its wheel.
    "$PYTHON" -m venv --without-pip "$dest/venv"
    pip_wheel=$(find "$here/wheelhouse" -maxdepth 1 -name 'pip-*.whl' | head -n 1)
    [ -n "$pip_wheel" ] || die "no pip wheel in the wheelhouse"
    "$dest/venv/bin/python" "$pip_wheel/pip" install --quiet --no-index --no-cache-dir \
        --disable-pip-version-check "$pip_wheel"
    "$dest/venv/bin/python" -m pip install --quiet --no-index --no-cache-dir \
        --disable-pip-version-check --find-links "$here/wheelhouse" \
        --require-hashes --only-binary=:all: -r "$here/requirements.txt"
    cp -R "$here/model" "$dest/model"
    cp "$here/mlship.env" "$here/bundle.json" "$here/README.md" "$dest/"
    install -m 0755 "$here/activate" "$dest/activate"
    # Root owns everything; the service (DynamicUser) only reads.
    chmod -R u+rwX,go+rX,go-w "$dest"
    touch "$dest/.installed"
fi

mkdir -p "$UNIT_DIR"
if ! cmp -s "$here/$UNIT" "$UNIT_DIR/$UNIT"; then
    install -m 0644 "$here/$UNIT" "$UNIT_DIR/$UNIT"
    say "wrote $UNIT_DIR/$UNIT"
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi

if [ "$activate" = 1 ]; then
    "$dest/activate"
else
    say "installed; switch to it with: sudo $dest/activate"
fi
