# Sourced by every recipe script: puts the ttsrl venv and utils/ on PATH.
# MAIN_ROOT is the repository root (recipes live at egs/<corpus>/<task>).
MAIN_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
export MAIN_ROOT
if [ -f "${MAIN_ROOT}/tools/venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "${MAIN_ROOT}/tools/venv/bin/activate"
elif ! python3 -c 'import ttsrl' 2>/dev/null; then
  echo "path.sh: ttsrl is not installed: run 'cd ${MAIN_ROOT}/tools && make' (or 'make demo' at the top)" >&2
  return 1 2>/dev/null || exit 1
fi
export PATH="${MAIN_ROOT}/utils:${PATH}"
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
export PYTHONUNBUFFERED=1
