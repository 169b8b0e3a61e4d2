#!/usr/bin/env bash
# colakg-ml-1m: its own train/test split; item text = title + genres + the LLM-written
# description. The first run encodes 3,260 descriptions (cached afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/lgrec evaluate --dataset colakg-ml-1m --split fixed \
  --models popularity,lightgcn,graphfilter,lmgcn \
  --out runs/bench-colakg "$@"
