#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# coapclientctl over coaps:// (run by tls-env.sh inside test-env.sh): PSK, X.509 and raw public
# keys against coap-server-gnutls, a 1 MiB block-wise body both ways, the failures and their
# exit codes, and the usage errors of the DTLS options. TAP output.
set -u
CTL=${COAPCLIENTCTL:?}
PSK_URI="coaps://$COAP_PEER_HOST:$((COAP_PEER_PORT + 1))"
X509_URI="coaps://127.0.0.1:$COAPS_X509_PORT"
RPK_URI="coaps://127.0.0.1:$COAPS_RPK_PORT"
PSK=(--psk-identity CoAP --psk-key secretPSK)
P=$TLS_PKI_DIR
T=$TEST_TMPDIR
# shellcheck source=tests/helpers/test-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../helpers/test-lib.sh"



TIME='^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}$'

check "PSK get /time" 0 "$CTL" get "$PSK_URI/time" "${PSK[@]}"
check_grep "PSK /time body" "$T/out" "$TIME"
printf '0x%s\n' "$(printf secretPSK | od -An -tx1 | tr -d ' \n')" >"$T/psk.hex"
check "PSK from a file in hex" 0 "$CTL" get "$PSK_URI/time" --psk-identity CoAP \
    --psk-key-file "$T/psk.hex"
check_grep "PSK file /time body" "$T/out" "$TIME"

# 1 MiB block-wise both ways over DTLS, byte-exact, through files.
head -c 1048576 /dev/urandom >"$T/big.in"
check "1 MiB block-wise put over coaps" 0 "$CTL" put "$PSK_URI/example_data" "${PSK[@]}" \
    -f "$T/big.in" -c octet
check "1 MiB block-wise get over coaps" 0 "$CTL" get "$PSK_URI/example_data" "${PSK[@]}" \
    -o "$T/big.out"
if cmp -s "$T/big.in" "$T/big.out"; then ok "1 MiB body identical"; else
    not_ok "1 MiB body differs ($(stat -c %s "$T/big.out") bytes)"
fi

check "observe over coaps" 0 "$CTL" observe "$PSK_URI/time" "${PSK[@]}" --count 2
check "wrong PSK key exits 4" 4 "$CTL" get "$PSK_URI/time" --psk-identity CoAP \
    --psk-key wrongPSK --timeout 3

check "X.509 get /time" 0 "$CTL" get "$X509_URI/time" --ca "$P/ca.pem" --cert "$P/client.pem" \
    --key "$P/client.key"
check_grep "X.509 /time body" "$T/out" "$TIME"
check "X.509 with a DER CA and a server name" 0 "$CTL" get "$X509_URI/time" --ca "$P/ca.der" \
    --cert "$P/client.pem" --key "$P/client.key" --server-name localhost
check "wrong CA exits 5" 5 "$CTL" get "$X509_URI/time" --ca "$P/other-ca.pem" \
    --cert "$P/client.pem" --key "$P/client.key"
check_grep "wrong CA is explained" "$T/err" "DTLS authentication failed: the server's certificate"
check_grep "wrong CA: GnuTLS' reason in the error line" "$T/err" \
    "^coapclientctl: Request failed: Permission denied: DTLS session failed: The certificate is NOT trusted. The certificate issuer is unknown.$"
check "wrong server name exits 5" 5 "$CTL" get "$X509_URI/time" --ca "$P/ca.pem" \
    --cert "$P/client.pem" --key "$P/client.key" --server-name example.com
check "no client certificate exits 5" 5 "$CTL" get "$X509_URI/time" --ca "$P/ca.pem"
check_grep "no client certificate: the peer's alert in the error line" "$T/err" \
    "^coapclientctl: Request failed: [A-Za-z ]+: DTLS session failed: the peer sent the alert"
# The daemon logs GnuTLS' reason at notice.
check_grep "notice: the wrong CA's verification result" "$TEST_TMPDIR/daemon.log" \
    "DTLS session failed: Permission denied: The certificate is NOT trusted. The certificate issuer is unknown.$"
check_grep "notice: the wrong server name" "$TEST_TMPDIR/daemon.log" \
    "DTLS session failed: Permission denied: .*The name in the certificate does not match"
check_grep "notice: the peer's alert" "$TEST_TMPDIR/daemon.log" \
    "DTLS session failed: [A-Za-z ]+: the peer sent the alert"

# coapclientctl monitor shows the reason too (RequestEndedDetails), in text and JSON.
"$CTL" monitor --count 1 --timeout 60 >"$T/mon.out" 2>"$T/mon.err" &
mon_pid=$!
"$CTL" monitor --json --count 1 --timeout 60 >"$T/monj.out" 2>"$T/monj.err" &
monj_pid=$!
# Subscribed once status counts both.
wait_for sh -c "'$CTL' status 2>/dev/null | grep -q '^ *Monitors: 2\$'"
check "wrong CA while monitored exits 5" 5 "$CTL" get "$X509_URI/time" --ca "$P/other-ca.pem" \
    --cert "$P/client.pem" --key "$P/client.key"
wait "$mon_pid"
wait "$monj_pid"
check_grep "monitor: GnuTLS' reason at the end" "$T/mon.out" \
    "^end +[0-9]+ .* GET $X509_URI/time -> Permission denied in [0-9.]+ ms: DTLS session failed: The certificate is NOT trusted\. The certificate issuer is unknown\.$"
check_grep "monitor --json: GnuTLS' reason" "$T/monj.out" \
    "^\{\"event\":\"end\",.*\"uri\":\"$X509_URI/time\",\"result\":\"Permission denied\",\"duration_usec\":[0-9]+,\"error_message\":\"DTLS session failed: The certificate is NOT trusted\. The certificate issuer is unknown\.\"\}$"
check_grep "debug: the request's end with the reason" "$TEST_TMPDIR/daemon.log" \
    "GET $X509_URI/time: Permission denied: DTLS session failed: The certificate is NOT trusted\. The certificate issuer is unknown\. after [0-9]+ ms$"

check "X.509 --insecure" 0 "$CTL" get "$X509_URI/time" --cert "$P/client.pem" \
    --key "$P/client.key" --insecure
check_grep "--insecure warns" "$T/err" "Warning: --insecure"

check "RPK get /time" 0 "$CTL" get "$RPK_URI/time" --rpk "$P/rpk-client.key" \
    --rpk-server "$P/rpk-server.pub"
check_grep "RPK /time body" "$T/out" "$TIME"
check "RPK, another server key, exits 5" 5 "$CTL" get "$RPK_URI/time" \
    --rpk "$P/rpk-client.key" --rpk-server "$P/rpk-other.pub"
check "RPK --insecure" 0 "$CTL" get "$RPK_URI/time" --rpk "$P/rpk-client.key" --insecure

check "a key coapclientd cannot load exits 2" 2 "$CTL" get "$X509_URI/time" \
    --cert "$P/client.pem" --key "$P/ca.pem"
check "usage: coaps without credentials" 2 "$CTL" get "$PSK_URI/time"
check "usage: DTLS options with coap://" 2 "$CTL" get "coap://127.0.0.1/time" "${PSK[@]}"
check "usage: PSK without a key" 2 "$CTL" get "$PSK_URI/time" --psk-identity CoAP
check "usage: bad hex PSK" 2 "$CTL" get "$PSK_URI/time" --psk-identity CoAP --psk-key 0xzz
check "usage: PSK and X.509" 2 "$CTL" get "$PSK_URI/time" "${PSK[@]}" --ca "$P/ca.pem"
check "usage: --cert without --key" 2 "$CTL" get "$X509_URI/time" --cert "$P/client.pem"
check "usage: --rpk without the server key" 2 "$CTL" get "$RPK_URI/time" \
    --rpk "$P/rpk-client.key"
check "missing CA file exits 8" 8 "$CTL" get "$X509_URI/time" --ca "$T/nonexistent.pem"
check "--help documents DTLS" 0 "$CTL" --help
check_grep "help lists --psk-identity" "$T/out" "--psk-identity"

tap_end
