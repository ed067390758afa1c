#!/usr/bin/env bash
# Kaldi-style option parsing: source this from a script after declaring its options.
#
#   stage=1          # declare every option with its default first
#   use_gpu=false
#   . utils/parse_options.sh || exit 1
#
# Then `script.sh --stage 3 --use-gpu true` (or --use_gpu) sets the variables. Rules (as Kaldi):
# - only declared options are accepted; `--foo-bar` and `--foo_bar` both set `foo_bar`;
# - an option whose default is true/false is boolean and only takes true or false;
# - `--config FILE` sources FILE (shell assignments) before the remaining options, which win;
# - `--help` / `-h` prints $help_message if the script set one, else the script's header
#   comment, and exits 0;
# - `--option=value` is the same as `--option value`;
# - option parsing stops at the first argument that does not start with `--`; the rest stays in "$@".

__po_script=${BASH_SOURCE[1]:-$0}

__po_usage() {
  if [ -n "${help_message:-}" ]; then
    printf '%s\n' "$help_message"
  else
    # the header: comment lines after the shebang, up to the first line that is not a comment
    awk 'NR == 1 && /^#!/ { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$__po_script"
  fi
}

# --config goes first so that the other command-line options override the file.
for ((__po_i = 1; __po_i <= $#; __po_i++)); do
  __po_cfg=""
  if [ "${!__po_i}" = "--config" ]; then
    __po_j=$((__po_i + 1))
    __po_cfg=${!__po_j:-}
    [ -n "$__po_cfg" ] || { echo "$0: --config needs a file" >&2; exit 1; }
  elif [[ ${!__po_i} == --config=* ]]; then
    __po_cfg=${!__po_i#--config=}
  fi
  if [ -n "$__po_cfg" ]; then
    [ -r "$__po_cfg" ] || { echo "$0: cannot read config file $__po_cfg" >&2; exit 1; }
    # shellcheck disable=SC1090
    . "$__po_cfg" || { echo "$0: error in config file $__po_cfg" >&2; exit 1; }
  fi
done

while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h)
      __po_usage
      exit 0
      ;;
    --config)
      shift 2 || { echo "$0: --config needs a file" >&2; exit 1; }
      ;;
    --?*=*)
      # --option=value is split into --option value
      __po_opt=${1%%=*}
      __po_val=${1#*=}
      shift
      set -- "$__po_opt" "$__po_val" "$@"
      ;;
    --*)
      __po_name=${1#--}
      __po_name=${__po_name//-/_}
      if ! [[ $__po_name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        echo "$0: invalid option $1" >&2
        exit 1
      fi
      if [ -z "${!__po_name+set}" ]; then
        echo "$0: invalid option $1" >&2
        __po_usage >&2
        exit 1
      fi
      if [ $# -lt 2 ]; then
        echo "$0: option $1 needs a value" >&2
        exit 1
      fi
      __po_old=${!__po_name}
      if [ "$__po_old" = true ] || [ "$__po_old" = false ]; then
        if [ "$2" != true ] && [ "$2" != false ]; then
          echo "$0: option $1 is boolean and takes true or false, not '$2'" >&2
          exit 1
        fi
      fi
      printf -v "$__po_name" '%s' "$2"
      shift 2
      ;;
    *)
      break
      ;;
  esac
done

unset __po_i __po_j __po_cfg __po_name __po_old __po_opt __po_val
true # so that `. parse_options.sh || exit 1` sees success
