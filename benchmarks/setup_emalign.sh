#!/usr/bin/env bash
# Create benchmarks/.emalign-venv with EMalign 1.0.5 (the speed and accuracy peer).
# EMalign needs numpy < 2, so it lives in its own venv, separate from the project's .venv.
# Idempotent: re-running only checks the pins and reinstalls when they do not match.
#
#   bash benchmarks/setup_emalign.sh            # uses python3 from PATH
#   PYTHON=python3.11 bash benchmarks/setup_emalign.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.emalign-venv"
python="${PYTHON:-python3}"
emalign_version="1.0.5"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating $venv"
    "$python" -m venv "$venv"
fi

installed="$("$venv/bin/python" - <<'PY' 2>/dev/null || true
from importlib.metadata import version
try:
    import numpy
    print(version("EMalign"), numpy.__version__)
except Exception:
    print("none")
PY
)"

if [[ "$installed" == "$emalign_version 1."* ]]; then
    echo "EMalign $emalign_version already installed in $venv (numpy ${installed#* })"
else
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "EMalign==$emalign_version" "numpy<2" mrcfile scipy
fi

"$venv/bin/python" - <<'PY'
from importlib.metadata import version
import numpy
print(f"EMalign {version('EMalign')}, numpy {numpy.__version__}")
assert numpy.__version__.startswith("1."), "EMalign needs numpy < 2"
PY
