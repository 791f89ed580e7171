#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Dependencies point one way: the CoAP layer and the channel codec are libc only, DTLS has no
# sd-*, the client library and the CLI know nothing of the daemon.
set -u
cd "$(dirname "$0")/.."
bad=0
if grep -nE '#include *[<"](systemd/|gnutls/|\.\./|util/|internal/bus-api)' daemon/coap/*.[ch]; then
    echo "daemon/coap/ must include libc headers only" >&2; bad=1
fi
if grep -nE '#include *[<"](systemd/|gnutls/|\.\./|util/|internal/)' wire/*.[ch]; then
    echo "wire/ (the data channel codec) must include libc headers only" >&2; bad=1
fi
# dtls.[ch] and dtls-module.[ch] make coapclientd-dtls.so.
if [ -e daemon/dtls.c ] && grep -nE '#include *<systemd/' daemon/dtls.[ch] daemon/dtls-module.[ch]
then
    echo "daemon/dtls.[ch] and daemon/dtls-module.[ch] must not use sd-*" >&2; bad=1
fi
# The daemon maps GnuTLS only when it loads coapclientd-dtls.so (dtls-loader.c).
if grep -lE '#include *<gnutls/' daemon/*.[ch] | grep -vx daemon/dtls.c; then
    echo "only daemon/dtls.c may use GnuTLS; the daemon reaches it through the module" >&2; bad=1
fi
if grep -rnE '#include *"(\.\./)*daemon/' client-lib ctl 2>/dev/null; then
    echo "client-lib/ and ctl/ must not include daemon headers" >&2; bad=1
fi
exit $bad
