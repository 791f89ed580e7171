/* SPDX-License-Identifier: MIT */
#include "request-args-check.h"

#include <string.h>

#include "coap-option.h"

static bool option_is_engine_owned(uint16_t number) {
        switch (number) {
        case COAP_OPTION_URI_PATH:
        case COAP_OPTION_URI_QUERY:
        case COAP_OPTION_CONTENT_FORMAT:
        case COAP_OPTION_BLOCK1:
        case COAP_OPTION_SIZE1:
        case COAP_OPTION_ECHO:
        case COAP_OPTION_REQUEST_TAG:
                return true;
        default:
                return false;
        }
}

void request_args_check_accepted(const RequestArgs *a) {
        size_t path_len = strlen(a->path), n_path;
        CoapOption *path_opts;
        bool observe_option = false;

        check(a->method >= COAP_CODE_GET && a->method <= COAP_CODE_IPATCH);
        check(path_len <= REQUEST_PATH_MAX);
        path_opts = calloc(path_len + 1, sizeof(CoapOption));
        check(path_opts);
        check(coap_path_to_options(a->path, path_opts, path_len + 1, &n_path) == 0);
        for (size_t i = 0; i < n_path; i++)
                check(path_opts[i].len >= 1 && path_opts[i].len <= 255);
        free(path_opts);

        check(a->content_format >= -1 && a->content_format <= UINT16_MAX);
        check(a->payload_len <= FUZZ_MAX_PAYLOAD);
        check(a->payload_len == 0 || a->payload);

        check(a->n_options <= REQUEST_OPTIONS_MAX + (a->observe ? 1 : 0));
        for (size_t i = 0; i < a->n_options; i++) {
                check(a->options[i].number != 0 && !option_is_engine_owned(a->options[i].number));
                check(a->options[i].len <= REQUEST_OPTION_VALUE_MAX);
                check(a->options[i].len == 0 || a->options[i].value);
                observe_option = observe_option || a->options[i].number == COAP_OPTION_OBSERVE;
        }
        check(!a->observe || observe_option);

        check(a->params.ack_timeout_ms >= 100 && a->params.ack_timeout_ms <= 600000);
        check(a->params.ack_random_percent >= 100 && a->params.ack_random_percent <= 1000);
        check(a->params.backoff_percent >= 100 && a->params.backoff_percent <= 1000);
        check(a->params.max_retransmission <= 20);
        check(a->block_szx <= COAP_BLOCK_SZX_MAX);
}

void request_args_check_refused(int r, const sd_bus_error *error) {
        check(sd_bus_error_is_set(error));
        check(strncmp(error->name, COAPCLIENTD_ERROR(""), strlen(COAPCLIENTD_ERROR(""))) == 0);
        check(r == -sd_bus_error_get_errno(error));
}
