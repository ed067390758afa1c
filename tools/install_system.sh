#!/usr/bin/env bash
# Installs the system programs ttsrl needs from Debian packages when missing: espeak-ng, sox, and
# chromium (headless, for the test of the HTML report exp/report/index.html).
# Usage: bash tools/install_system.sh   (called by tools/Makefile)
set -euo pipefail
need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need+=(sox)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  echo "system packages present: espeak-ng sox chromium"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "$0: please install ${need[*]} (not root, no sudo)" >&2; exit 1; }
  sudo=sudo
fi
command -v apt-get >/dev/null 2>&1 || { echo "$0: no apt-get; please install ${need[*]} with your package manager" >&2; exit 1; }
echo "installing from Debian packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
