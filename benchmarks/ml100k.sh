#!/usr/bin/env bash
# MovieLens-100K u1: every model on the same split, validation carved from training data.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/lgrec evaluate --dataset ml-100k --fold u1 --split fixed \
  --models popularity,textknn,bprmf,biasedmf,lightgcn,graphfilter,lmgcn \
  --out runs/bench-ml100k "$@"
