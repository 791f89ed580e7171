#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Dependencies point one way: the CoAP layer is libc only, DTLS has no sd-*, the client
# library and the CLI know nothing of the daemon.
set -u
cd "$(dirname "$0")/.."
bad=0
if grep -nE '#include *[<"](systemd/|gnutls/|\.\./|util/|internal/bus-api)' daemon/coap/*.[ch]; then
    echo "daemon/coap/ must include libc headers only" >&2; bad=1
fi
if [ -e daemon/dtls.c ] && grep -nE '#include *<systemd/' daemon/dtls.[ch]; then
    echo "daemon/dtls.[ch] must not use sd-*" >&2; bad=1
fi
if grep -rnE '#include *"(\.\./)*daemon/' client-lib ctl 2>/dev/null; then
    echo "client-lib/ and ctl/ must not include daemon headers" >&2; bad=1
fi
exit $bad
