#!/usr/bin/env bash
# The main job end to end on embedded defaults:
#   set up the venv -> train the OJ model (SQLite tracking) -> build the scoring image
#   -> run it on :8888 -> POST two records -> print the reply -> stop the container.
#
# Base image: python:3.11-slim-bookworm when it can be pulled; otherwise (no registry, as on
# our CI machines) a local Debian base is built with scripts/build-base-image.sh.
# Set BASE_IMAGE to choose one yourself, PORT to use another host port.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8888}"
NAME="mlship-demo-$$"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "setting up .venv (uv sync)"
# scripts/install-uv.sh puts uv in ~/.local/bin (stock Debian 12 has no pip, and PEP 668
# forbids installing into the system Python). After the PATH: a uv already there comes first.
export PATH="$PATH:$HOME/.local/bin"
command -v uv >/dev/null || scripts/install-uv.sh
uv sync --frozen --all-extras

step "training the default model"
uv run mlship train

step "checking the Docker engine"
if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then scripts/start-dockerd.sh; else
    echo "error: no Docker engine answers; start Docker and re-run" >&2; exit 1; fi
fi
if [ -z "${BASE_IMAGE:-}" ]; then
  BASE_IMAGE=python:3.11-slim-bookworm
  if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && ! docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
    echo "cannot pull $BASE_IMAGE; building a local Debian base instead"
    scripts/build-base-image.sh mlship-base:bookworm
    BASE_IMAGE=mlship-base:bookworm
  fi
fi

step "building the scoring image (base: $BASE_IMAGE)"
BUILD_LOG=$(mktemp)
trap 'rm -f "$BUILD_LOG"' EXIT
uv run mlship image build --model models/oj-purchase --base-image "$BASE_IMAGE" | tee "$BUILD_LOG"
TAG=$(sed -n 's/^built \([^ ]*\) .*/\1/p' "$BUILD_LOG")
[ -n "$TAG" ] || { echo "error: mlship image build printed no 'built <tag>' line" >&2; exit 1; }
docker image ls "$TAG"

step "running $TAG on http://localhost:$PORT"
docker run -d --rm --name "$NAME" -p "$PORT:8888" "$TAG" >/dev/null
trap 'docker rm -f "$NAME" >/dev/null 2>&1 || true; rm -f "$BUILD_LOG"' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://localhost:$PORT/ready" >/dev/null && break
  sleep 0.5
done
curl -sf "http://localhost:$PORT/ready" >/dev/null || { docker logs "$NAME"; exit 1; }

step "POST /score with two records"
PAYLOAD='[{"WeekofPurchase": 237, "StoreID": 1, "PriceCH": 1.75, "PriceMM": 1.99, "DiscCH": 0.0, "DiscMM": 0.0, "SpecialCH": 0, "SpecialMM": 0, "LoyalCH": 0.5, "SalePriceMM": 1.99, "SalePriceCH": 1.75, "PriceDiff": 0.24, "Store7": "No", "PctDiscMM": 0.0, "PctDiscCH": 0.0, "ListPriceDiff": 0.24},
          {"WeekofPurchase": 227, "StoreID": 7, "PriceCH": 1.69, "PriceMM": 1.69, "DiscCH": 0.0, "DiscMM": 0.0, "SpecialCH": 0, "SpecialMM": 0, "LoyalCH": 0.1, "SalePriceMM": 1.69, "SalePriceCH": 1.69, "PriceDiff": 0.0, "Store7": "Yes", "PctDiscMM": 0.0, "PctDiscCH": 0.0, "ListPriceDiff": 0.0}]'
echo "curl -X POST http://localhost:$PORT/score -H 'Content-Type: application/json' -d '<2 records>'"
curl -sS -X POST "http://localhost:$PORT/score" -H 'Content-Type: application/json' -d "$PAYLOAD"
echo
step "done: runs are in mlruns.db (make mlflow-ui), the model in models/oj-purchase, the image is $TAG"
