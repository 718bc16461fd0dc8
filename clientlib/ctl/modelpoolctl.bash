# bash completion for modelpoolctl (installed to
# share/bash-completion/completions/modelpoolctl). Completes commands,
# options, and for evict, pin and unpin the names the pool holds now (asked
# of the broker with `modelpoolctl list --json`, with the --run-dir, --pool
# or --socket already typed).
_modelpoolctl() {
  local cur prev words cword
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  local commands="stats list load evict pin unpin clear health config selfcheck"
  local options="--run-dir --pool --socket --json --timeout --timeout-ms --watch --count --pin --version --help"
  case $prev in
    --run-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --pool|--timeout|--timeout-ms|--watch|--count) COMPREPLY=(); return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$options" -- "$cur"))
    return
  fi
  local i command="" where=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      --run-dir|--pool|--socket) where+=("${COMP_WORDS[i]}" "${COMP_WORDS[i+1]}"); ((i++)) ;;
      --timeout|--timeout-ms|--watch|--count) ((i++)) ;;
      -*) ;;
      *) [[ -z $command ]] && command=${COMP_WORDS[i]} ;;
    esac
  done
  if [[ -z $command ]]; then
    COMPREPLY=($(compgen -W "$commands" -- "$cur"))
  elif [[ $command == evict || $command == pin || $command == unpin ]]; then
    local names
    names=$(modelpoolctl "${where[@]}" --timeout 1 list --json 2>/dev/null |
            sed -n 's/^ *"name": "\(.*\)",\{0,1\}$/\1/p')
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$names" -- "$cur"))
  fi
}
complete -F _modelpoolctl modelpoolctl
