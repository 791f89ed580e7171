/* SPDX-License-Identifier: MIT */

/* The seed's API from C++: coap_client_req() with each kind of fifth argument (the C header
 * uses _Generic, which C++ lacks), against coap-server-gnutls through coapclientd. */

#include "coapclient/coap_client.h"
#include "cxx-test.h"

static CxxWaiter waiter;

static void response_cb(int16_t code, size_t, const uint8_t *, size_t, bool last_block, void *) {
        if (last_block)
                waiter.last(code);
}

int main() {
        struct coap_client client = {};
        struct coap_client_request req = {};
        struct coap_transmission_parameters params = coap_get_transmission_parameters();
        const struct coap_transmission_parameters *const_params = &params;
        int sock = cxx_peer_socket();

        std::printf("1..6\n");
        cxx_check(sock >= 0 && coap_client_init(&client, "c++") == 0, "init");
        req.method = COAP_METHOD_GET;
        req.confirmable = true;
        req.path = "time";
        req.cb = response_cb;

        cxx_check(coap_client_req(&client, sock, nullptr, &req, nullptr) == 0 && waiter.wait(1) &&
                          waiter.code == COAP_RESPONSE_CODE_CONTENT,
                  "parameters nullptr");
        cxx_check(coap_client_req(&client, sock, nullptr, &req, &params) == 0 && waiter.wait(2) &&
                          waiter.code == COAP_RESPONSE_CODE_CONTENT,
                  "parameters pointer");
        cxx_check(coap_client_req(&client, sock, nullptr, &req, const_params) == 0 &&
                          waiter.wait(3) && waiter.code == COAP_RESPONSE_CODE_CONTENT,
                  "parameters const pointer");
        cxx_check(coap_client_req(&client, sock, nullptr, &req, -1) == 0 && waiter.wait(4) &&
                          waiter.code == COAP_RESPONSE_CODE_CONTENT,
                  "retries -1");
        cxx_check(coap_client_req(&client, sock, nullptr, &req, 2) == 0 && waiter.wait(5) &&
                          waiter.code == COAP_RESPONSE_CODE_CONTENT,
                  "retries 2");
        coap_client_deinit(&client);
        close(sock);
        return cxx_test_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
