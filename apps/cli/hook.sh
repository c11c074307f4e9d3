# Loominal's Claude Code hook, the command `loominal mcp-config --hooks` writes when bash is there:
#   bash "<cli>/dist/hook.sh" <event> "<node>"
# It asks the Warp MCP server of this Claude Code session for the answer over loopback TCP, with bash
# builtins only, so that a hook starts no Node process in the common case. The server lists itself in
# `<lock dir>/<agentId>.hook` (mode 0600): `<pid> <ppid> <port> <token>`; the session's server is the one
# whose parent is the nearest ancestor of this hook. Whenever anything is not as expected (no such file, two
# equally near, a server gone, refused, no answer in time, an answer not understood, input bash cannot
# pass on) this runs the Node hook instead, `<node> <cli>/dist/hook.cjs <event>`, on the same input.

event=${1-}
node=${2:-node}
here=${BASH_SOURCE[0]%/*}
[[ $here == "${BASH_SOURCE[0]}" ]] && here=.
input=
read_input=

# The Node hook on the input read so far (none read: the hook's own stdin).
fallback() {
  exec 3>&-
  if [[ -z $read_input ]]; then
    exec "$node" "$here/hook.cjs" "$event"
  elif [[ -z $input ]]; then
    exec "$node" "$here/hook.cjs" "$event" </dev/null
  else
    exec "$node" "$here/hook.cjs" "$event" <<<"$input"
  fi
}

# $1 as the inside of a JSON string in REPLY; fails on control characters other than tab, CR and LF.
json_string() {
  local s=$1
  [[ $s == *[$'\001'-$'\010'$'\013'$'\014'$'\016'-$'\037']* ]] && return 1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  REPLY=$s
}

ask() {
  local LC_ALL=C
  case $event in
  SessionStart | UserPromptSubmit | PostToolUse | Stop) ;;
  *) return 1 ;; # the Node hook says why
  esac

  # Where Warp servers keep their lock files: LOOMINAL_LOCK_DIR, else <tmp>/loominal-agents (as Node's tmpdir).
  local dir=${LOOMINAL_LOCK_DIR-}
  dir=${dir#"${dir%%[![:space:]]*}"}
  dir=${dir%"${dir##*[![:space:]]}"}
  if [[ -z $dir ]]; then
    local tmp=${TMPDIR:-${TMP:-${TEMP:-/tmp}}}
    [[ ${#tmp} -gt 1 ]] && tmp=${tmp%/}
    dir=$tmp/loominal-agents
  fi

  # This hook's ancestors, nearest first, from /proc (the command name in field 2 may hold spaces and
  # parentheses: the fields after it follow the last ") ").
  local -a ancestors=()
  local pid=$PPID stat rest
  while ((pid > 1 && ${#ancestors[@]} < 16)); do
    ancestors+=("$pid")
    IFS= read -r stat <"/proc/$pid/stat" 2>/dev/null || break
    rest=${stat##*) }
    rest=${rest#* }
    rest=${rest%% *}
    [[ $rest =~ ^[0-9]+$ && $rest != "$pid" ]] || break
    pid=$rest
  done

  # The server whose parent is the nearest ancestor; two equally near: none.
  local f spid sppid sport stoken extra i best=-1 tied= port token
  for f in "$dir"/*.hook; do
    [[ -f $f && -O $f ]] || continue
    spid= sppid= sport= stoken=
    read -r spid sppid sport stoken extra <"$f" 2>/dev/null
    [[ $spid =~ ^[0-9]+$ && $sppid =~ ^[0-9]+$ && $sport =~ ^[0-9]+$ && $stoken =~ ^[0-9a-f]{64}$ ]] || continue
    for i in "${!ancestors[@]}"; do
      [[ ${ancestors[i]} == "$sppid" ]] || continue
      ((best >= 0 && i > best)) && break
      # Still running, not a zombie, and still the child of that ancestor (not a pid reused since).
      IFS= read -r stat <"/proc/$spid/stat" 2>/dev/null || break
      rest=${stat##*) }
      [[ ${rest%% *} != Z ]] || break
      rest=${rest#* }
      [[ ${rest%% *} == "$sppid" ]] || break
      if ((i == best)); then
        tied=1
      else
        best=$i tied= port=$sport token=$stoken
      fi
      break
    done
  done
  ((best >= 0)) && [[ -z $tied ]] || return 1

  json_string "$input" || return 1
  local in=$REPLY
  json_string "$PWD" || return 1
  local cwd=$REPLY

  # A server that closes early makes a write fail (then the Node hook runs) rather than end this shell.
  trap '' PIPE
  # Loopback: a port nobody listens on is refused at once.
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  printf '%s\n{"v":1,"event":"%s","input":"%s","cwd":"%s","reply":"shell"}\n' \
    "$token" "$event" "$in" "$cwd" >&3 2>/dev/null || return 1
  local line
  read -r -t 1 -u 3 line && [[ $line == accepted ]] || return 1
  local word code count
  read -r -t 4 -u 3 word code count || return 1
  [[ $word == exit && $code =~ ^[0-9]+$ && $count =~ ^[0-9]+$ ]] || return 1
  # The server has answered (and recorded the reminders as shown): from here on, print what it sent.
  local -a notes=()
  for ((i = 0; i < count; i++)); do
    IFS= read -r -t 4 -u 3 line || break
    notes+=("$line")
  done
  local out=
  IFS= read -r -d '' -t 4 -u 3 out
  exec 3>&-
  ((${#notes[@]})) && printf '%s\n' "${notes[@]}" >&2
  printf '%s' "$out"
  exit "$code"
}

if [[ ! -t 0 ]]; then
  # All of stdin (hook input is JSON: no NUL byte ends it early).
  IFS= read -r -d '' input
  read_input=1
fi
ask
fallback
