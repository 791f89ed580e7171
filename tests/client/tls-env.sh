#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs a DTLS test program inside tests/helpers/test-env.sh's world, after making a test PKI
# with certtool and starting two more coap-server-gnutls peers:
#
#   tls-env.sh PROGRAM [ARGS...]
#
# Environment out: TLS_PKI_DIR with
#     ca.pem ca.der         the CA of server.pem and client.pem (PEM, DER)
#     other-ca.pem          an unrelated CA
#     server.pem server.key the X.509 peer's certificate (127.0.0.1 and localhost) and key
#     client.pem client.key a client certificate of ca.pem and its key
#     rpk-server.key .pub   the RPK peer's key pair (.pub: its SubjectPublicKeyInfo, PEM)
#     rpk-client.key        a client key pair for raw public keys
#     rpk-other.pub         a public key nobody uses
#   COAPS_X509_PORT  DTLS port of a peer with server.pem that requires a client certificate
#                    of ca.pem (libcoap's -C)
#   COAPS_RPK_PORT   DTLS port of a peer with the raw public key rpk-server.key
# The peer of test-env.sh serves DTLS PSK (identity "CoAP", key "secretPSK") on COAP_PEER_PORT+1.
set -u

: "${TEST_TMPDIR:?run inside tests/helpers/test-env.sh}"
TLS_PKI_DIR=$TEST_TMPDIR/pki
export TLS_PKI_DIR
# shellcheck source=tests/helpers/test-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../helpers/test-lib.sh"

mkdir -p "$TLS_PKI_DIR"
cd "$TLS_PKI_DIR" || exit 1

key() { certtool --generate-privkey --key-type=ecdsa --no-text --outfile "$1" 2>/dev/null; }
self_signed() { # name
    key "$1.key"
    printf 'cn = "%s"\nca\ncert_signing_key\nexpiration_days = 2\n' "$1" >"$1.tmpl"
    certtool --generate-self-signed --load-privkey "$1.key" --template "$1.tmpl" \
        --no-text --outfile "$1.pem" 2>/dev/null
}
signed() { # name template-lines...
    local name=$1
    shift
    key "$name.key"
    printf '%s\n' "$@" "expiration_days = 2" >"$name.tmpl"
    certtool --generate-certificate --load-privkey "$name.key" --load-ca-certificate ca.pem \
        --load-ca-privkey ca.key --template "$name.tmpl" --no-text --outfile "$name.pem" \
        2>/dev/null
}

self_signed ca
self_signed other-ca
signed server 'cn = "localhost"' 'dns_name = "localhost"' 'ip_address = "127.0.0.1"' \
    tls_www_server signing_key
signed client 'cn = "coapclientd test client"' tls_www_client signing_key
certtool --certificate-info --infile ca.pem --outder --outfile ca.der 2>/dev/null
key rpk-server.key
certtool --load-privkey rpk-server.key --pubkey-info --no-text --outfile rpk-server.pub 2>/dev/null
key rpk-client.key
key rpk-other.key
certtool --load-privkey rpk-other.key --pubkey-info --no-text --outfile rpk-other.pub 2>/dev/null
for f in ca.pem ca.der other-ca.pem server.pem client.pem rpk-server.pub rpk-client.key \
    rpk-other.pub; do
    [ -s "$f" ] || { echo "Bail out! certtool did not make $f"; exit 1; }
done

start_coap_peer dtls port pid "$TEST_TMPDIR/peer-x509.log" -c server.pem -j server.key -C ca.pem ||
    { echo "Bail out! X.509 peer did not start"; exit 1; }
# shellcheck disable=SC2154 # port is set by start_coap_peer (a nameref)
COAPS_X509_PORT=$((port + 1))
start_coap_peer dtls port pid "$TEST_TMPDIR/peer-rpk.log" -M rpk-server.key ||
    { echo "Bail out! RPK peer did not start"; exit 1; }
COAPS_RPK_PORT=$((port + 1))
export COAPS_X509_PORT COAPS_RPK_PORT

cd - >/dev/null || exit 1
"$@"
