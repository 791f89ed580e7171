/* SPDX-License-Identifier: MIT */
/* Built by tools/package-smoke.sh against the installed libcoapclient-dev (pkg-config): GETs
 * coap://HOST:PORT/PATH through coapclientd and writes the body to stdout. Exits 0 on a
 * complete 2.05 response. */

#include <arpa/inet.h>
#include <coapclient/coap_client.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int16_t result;
static size_t received;
static int done;

static void on_response(int16_t code, size_t offset, const uint8_t *payload, size_t len,
                        bool last_block, void *user_data) {
        (void) user_data;
        pthread_mutex_lock(&lock);
        if (code < 0 || offset != received)
                result = code < 0 ? code : -EBADMSG;
        else {
                result = code;
                if (len > 0 && fwrite(payload, 1, len, stdout) != len)
                        result = -EIO;
                received += len;
        }
        if (last_block || result < 0) {
                done = 1;
                pthread_cond_signal(&done_cond);
        }
        pthread_mutex_unlock(&lock);
}

int main(int argc, char *argv[]) {
        static struct coap_client client;
        struct coap_client_request req = {
                .method = COAP_METHOD_GET,
                .confirmable = true,
                .cb = on_response,
        };
        struct sockaddr_in addr = {.sin_family = AF_INET};
        struct timespec deadline;
        int sock, r, ok;

        if (argc != 4 || inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
                fprintf(stderr, "usage: %s IPV4 PORT PATH\n", argv[0]);
                return EXIT_FAILURE;
        }
        addr.sin_port = htons((uint16_t) atoi(argv[2]));
        req.path = argv[3];

        sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sock < 0) {
                perror("socket");
                return EXIT_FAILURE;
        }
        r = coap_client_init(&client, "package-smoke");
        if (r < 0) {
                fprintf(stderr, "coap_client_init: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        r = coap_client_req(&client, sock, (struct sockaddr *) &addr, &req, NULL);
        if (r < 0) {
                fprintf(stderr, "coap_client_req: %s\n", strerror(-r));
                coap_client_deinit(&client);
                return EXIT_FAILURE;
        }

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 20;
        pthread_mutex_lock(&lock);
        while (!done && pthread_cond_timedwait(&done_cond, &lock, &deadline) == 0)
                ;
        ok = done && result == COAP_RESPONSE_CODE_CONTENT;
        if (!ok)
                fprintf(stderr, "no complete 2.05 response: done=%d result=%d\n", done, result);
        pthread_mutex_unlock(&lock);

        coap_client_deinit(&client);
        close(sock);
        return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
