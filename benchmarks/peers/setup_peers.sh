#!/usr/bin/env bash
# Create benchmarks/peers/.venv (Python 3.11) with the peer libraries plus lgrec (editable).
#
# torch is pinned to exactly 2.13.0 (CPU), the same build lgrec uses; every other install is
# run with a constraint file holding that pin, so no peer can pull another torch. A peer that
# fails to install is logged to benchmarks/peers/install-<name>.log and skipped; run_peers.py
# then reports it as "not installed". Usage: bash benchmarks/peers/setup_peers.sh
#
# LightFM: the PyPI release (1.17, sdist only) fails to build with current setuptools
# ("AttributeError: 'dict' object has no attribute '__LIGHTFM_SETUP__'", lyst/lightfm#687).
# The fix is on LightFM's master (commit 0c9c31e, PR #685), unreleased. When the PyPI build
# fails, this script installs from a source checkout: LIGHTFM_SRC=/path/to/lightfm if set,
# otherwise it tries pip's git+https URL of that commit (needs access to GitHub).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
py="${PYTHON:-python3.11}"

if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv" || { echo "cannot create $venv with $py" >&2; exit 1; }
fi
pip=("$venv/bin/python" -m pip install -q)
pin="$(mktemp)"
trap 'rm -f "$pin"' EXIT
echo "torch==2.13.0" > "$pin"

set -e
"${pip[@]}" --upgrade pip setuptools wheel
"${pip[@]}" -c "$pin" "torch==2.13.0"
"${pip[@]}" -c "$pin" -e "$repo"
set +e

# peers; each is optional: a failure is logged and the script goes on
declare -A peers=(
  [pyg]="torch_geometric"
  [implicit]="implicit"
  [lightfm]="lightfm"
  [surprise]="scikit-surprise"
  [cornac]="cornac"
)
lightfm_commit=0c9c31e027b976beab2385e268b58010fff46096
failed=()
for name in pyg implicit lightfm surprise cornac; do
  log="$here/install-$name.log"
  if "${pip[@]}" -c "$pin" ${peers[$name]} >"$log" 2>&1; then
    rm -f "$log"
    echo "installed $name (${peers[$name]})"
    continue
  fi
  if [ "$name" = lightfm ]; then
    src="${LIGHTFM_SRC:-git+https://github.com/lyst/lightfm@$lightfm_commit}"
    echo "PyPI lightfm failed (see $log); trying $src" >&2
    if "${pip[@]}" -c "$pin" "$src" >>"$log" 2>&1; then
      echo "installed lightfm from $src"
      continue
    fi
  fi
  failed+=("$name")
  echo "FAILED $name (${peers[$name]}): see $log" >&2
done

"$venv/bin/python" - <<'PY'
import importlib

for mod in ("torch", "numpy", "scipy", "torch_geometric", "implicit", "lightfm", "surprise",
            "cornac", "lgrec"):
    try:
        m = importlib.import_module(mod)
        print(f"{mod:16s} {getattr(m, '__version__', '?')}")
    except Exception as e:  # report, do not stop: a missing peer is skipped by run_peers.py
        print(f"{mod:16s} NOT AVAILABLE: {type(e).__name__}: {e}")
PY
if [ "${#failed[@]}" -gt 0 ]; then
  echo "peers that failed to install: ${failed[*]}" >&2
fi
exit 0
