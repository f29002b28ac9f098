#!/usr/bin/env bash
# The whole test command: lint, format check, types, then every test tier.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export MPLBACKEND=Agg HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
$BIN/ruff check mesainterp tests benchmarks notebooks
$BIN/ruff format --check mesainterp tests benchmarks notebooks
$BIN/mypy
# The browser tier (tests/browser, marker `browser`) drives Debian's chromium.
if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq && apt-get install -y -qq chromium
fi
$BIN/pytest "$@"
