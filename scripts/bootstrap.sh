#!/usr/bin/env bash
# Creates .venv and installs the pinned requirements; does nothing when they
# are already installed. torch goes first, on its own: any other spec for it
# pulls gigabytes of CUDA wheels (see the README).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
wanted=$(cat requirements/base.txt requirements/dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet "torch==2.13.0"
    .venv/bin/python -m pip install --quiet -r requirements/dev.txt
    echo "$wanted" > "$stamp"
fi
