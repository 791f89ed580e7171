/* SPDX-License-Identifier: MIT */

/* The current Zephyr API (403) from C++: a GET whose response is read through data->packet,
 * against coap-server-gnutls through coapclientd. */

#define COAPCLIENT_ZEPHYR_API 403

#include <cstring>

#include "coapclient/coap_client.h"
#include "cxx-test.h"

static CxxWaiter waiter;
static bool packet_ok;

static void response_cb(const struct coap_client_response_data *data, void *) {
        uint8_t token[COAP_TOKEN_MAX_LEN];

        uint16_t len;

        if (data->packet)
                packet_ok = coap_header_get_code(data->packet) == data->result_code &&
                            coap_header_get_token(data->packet, token) > 0 &&
                            coap_packet_get_payload(data->packet, &len) == data->payload &&
                            len == data->payload_len && data->payload_len > 0;
        if (data->last_block)
                waiter.last(data->result_code);
}

int main() {
        struct coap_client client = {};
        struct coap_client_request req = {};
        int sock = cxx_peer_socket();

        std::printf("1..3\n");
        cxx_check(sock >= 0 && coap_client_init(&client, "c++") == 0, "init");
        req.method = COAP_METHOD_GET;
        req.confirmable = true;
        std::strcpy(req.path, "time");
        req.cb = response_cb;
        req.options[0] = coap_client_option_initial_block2();
        req.num_options = 1;
        cxx_check(coap_client_req(&client, sock, nullptr, &req, nullptr) == 0 && waiter.wait(1) &&
                          waiter.code == COAP_RESPONSE_CODE_CONTENT,
                  "GET");
        cxx_check(packet_ok, "data->packet");
        coap_client_deinit(&client);
        close(sock);
        return cxx_test_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
