#!/usr/bin/env bash
# Creates a new recipe folder that shares rl.sh, path.sh, utils/ and the default configs by symlink.
# Usage: egs/TEMPLATE/rl1/setup.sh egs/<corpus>/rl1
#   then write egs/<corpus>/rl1/local/data.sh and egs/<corpus>/rl1/run.sh.
set -euo pipefail
if [ $# -ne 1 ] || [ "$1" = --help ]; then
  echo "Usage: $0 egs/<corpus>/rl1" >&2
  exit 1
fi
dir=$1
template=$(cd "$(dirname "$0")" && pwd)
mkdir -p "${dir}/local" "${dir}/conf"
dir=$(cd "${dir}" && pwd)
rel() { python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$1" "$2"; }
for f in rl.sh path.sh; do
  ln -sfn "$(rel "${template}/${f}" "${dir}")" "${dir}/${f}"
done
ln -sfn "$(rel "${template}/../../../utils" "${dir}")" "${dir}/utils"
[ -f "${dir}/cmd.sh" ] || cp "${template}/cmd.sh" "${dir}/cmd.sh"
for f in "${template}"/conf/*; do
  [ -e "${f}" ] || continue
  [ -e "${dir}/conf/$(basename "${f}")" ] || ln -s "$(rel "${f}" "${dir}/conf")" "${dir}/conf/$(basename "${f}")"
done
echo "created ${dir}: now write local/data.sh and run.sh"
