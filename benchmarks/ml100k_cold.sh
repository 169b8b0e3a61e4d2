#!/usr/bin/env bash
# Cold-start items on MovieLens-100K: 20 % of items held out entirely (seeded); for each user
# rank only the held-out items (cold_*) and, harder, all items (cold_all_*).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/lgrec evaluate --dataset ml-100k --split cold \
  --models popularity,textknn,lightgcn,graphfilter,lmgcn \
  --out runs/bench-ml100k-cold "$@"
