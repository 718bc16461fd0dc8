#!/usr/bin/env bash
# File: clientlib/tests/completion_test.sh
#
# modelpoolctl's bash completion: its commands and options are the ones
# `modelpoolctl --help` lists (so the two cannot drift apart), and it
# completes a command from its first letters and an option from "--".
#   completion_test.sh MODELPOOLCTL COMPLETION_SCRIPT
set -euo pipefail
ctl=${1:?usage: completion_test.sh MODELPOOLCTL SCRIPT}
script=${2:?usage: completion_test.sh MODELPOOLCTL SCRIPT}
# shellcheck source=/dev/null
source "$script"
fail=0
complete_words() {  # complete_words WORD... : COMPREPLY for the last word
  COMP_WORDS=(modelpoolctl "$@")
  COMP_CWORD=$#
  COMPREPLY=()
  _modelpoolctl
  echo "${COMPREPLY[*]}"
}
expect() {  # expect WANT GOT WHAT
  if [[ "$1" == "$2" ]]; then echo "ok: $3"; else echo "FAIL: $3: want '$1', got '$2'"; fail=1; fi
}
help=$("$ctl" --help)
listed=$(sed -n '/^commands:/,/^$/p' <<<"$help" | awk 'NR > 1 && NF { print $1 }' | sort | xargs)
expect "$listed" "$(complete_words "" | tr ' ' '\n' | sort | xargs)" "every command of --help"
opts=$(grep -oE -- '--[a-z][a-z-]*' <<<"$help" | sort -u | xargs)
expect "$opts" "$(complete_words "--" | tr ' ' '\n' | sort -u | xargs)" "every option of --help"
expect "list load" "$(complete_words "l")" "a command from its first letters"
expect "--watch" "$(complete_words stats --wa)" "an option after the command"
expect "" "$(complete_words --pool "")" "nothing to offer for a pool name"
exit "$fail"
