#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The shell completions of coapclientctl: every command and option of --help is in both, and
# the bash one completes commands, options, their values and URIs. TAP output.
#   test-completion.sh COAPCLIENTCTL BASH_COMPLETION ZSH_COMPLETION
set -u
CTL=$1 BASH_COMP=$2 ZSH_COMP=$3
n=0 failed=0

ok() { # description condition-status
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=$((failed + 1)); fi
}

help=$("$CTL" --help)
verbs=$(sed -n '/^Commands:/,/^$/s/^  \([a-z]\+\) .*/\1/p' <<<"$help")
options=$(grep -oE -- '--[a-z0-9-]+' <<<"$help" | sort -u)
[ "$(wc -w <<<"$verbs")" -ge 11 ]
ok "--help lists the commands" $?
for w in $verbs $options; do
    grep -qE -- "(^|[^a-z-])$w([^a-z-]|$)" "$BASH_COMP"
    ok "bash completes $w" $?
    grep -qE -- "(^|[^a-z-])$w([^a-z-]|$)" "$ZSH_COMP"
    ok "zsh completes $w" $?
done

# bash-completion's helpers, reduced to what the function uses.
# shellcheck disable=SC2034 # words, cword, cur and prev are the completion function's
_init_completion() {
    words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
    cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
}
_filedir() { COMPREPLY=(FILES); }
compopt() { :; }
# shellcheck source=/dev/null
source "$BASH_COMP"

complete_line() { # words...: what completing the last word offers, sorted, on one line
    COMP_WORDS=("$@") COMP_CWORD=$(($# - 1)) COMPREPLY=()
    _coapclientctl
    printf '%s\n' "${COMPREPLY[@]}" | sort | paste -sd' '
}
expect() { # description expected words...
    local desc=$1 want=$2 got
    shift 2
    got=$(complete_line "$@")
    n=$((n + 1))
    if [ "$got" = "$want" ]; then echo "ok $n - $desc"; else
        echo "not ok $n - $desc: got '$got', expected '$want'"; failed=$((failed + 1)); fi
}
expect "commands" "$(tr ' ' '\n' <<<"$verbs" | sort | paste -sd' ')" coapclientctl ""
expect "a command by its start" "delete discover" coapclientctl d
expect "the command after options" "get" coapclientctl -v -o out g
expect "URI schemes after the command" "coap:// coaps://" coapclientctl get ""
expect "URI schemes after an option's argument" "coap:// coaps://" coapclientctl -b 64 observe co
expect "no URI after status" "" coapclientctl status ""
expect "option names" "--psk-identity --psk-key --psk-key-file" coapclientctl get --psk
expect "content formats" "json" coapclientctl put -c j
expect "accept formats" "cbor" coapclientctl get --accept cb
expect "block sizes" "256" coapclientctl get -b 2
expect "files for -o" "FILES" coapclientctl get -o ""
expect "nothing for a payload" "" coapclientctl put -p ""

echo "1..$n"
[ "$failed" -eq 0 ]
