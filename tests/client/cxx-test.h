/* SPDX-License-Identifier: MIT */
#pragma once

/* What the C++ tests share: TAP lines, the peer's socket, and waiting for callbacks. */

#include <arpa/inet.h>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static unsigned cxx_test_number;
static bool cxx_test_failed;

static void cxx_check(bool ok, const char *what) {
        std::printf("%s %u - %s\n", ok ? "ok" : "not ok", ++cxx_test_number, what);
        cxx_test_failed = cxx_test_failed || !ok;
}

/* A UDP socket connect()ed to the peer that tests/helpers/test-env.sh started. */
static int cxx_peer_socket() {
        const char *host = std::getenv("COAP_PEER_HOST"), *port = std::getenv("COAP_PEER_PORT");
        struct sockaddr_in sin = {};
        int fd;

        if (!host || !port)
                return -1;
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t) std::atoi(port));
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
                return -1;
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *) &sin, sizeof(sin)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/* Counts final callbacks. */
struct CxxWaiter {
        std::mutex lock;
        std::condition_variable cond;
        unsigned n_last = 0;
        int code = 0;

        void last(int result) {
                std::lock_guard<std::mutex> g(lock);
                n_last++;
                code = result;
                cond.notify_all();
        }

        bool wait(unsigned n) {
                std::unique_lock<std::mutex> g(lock);
                return cond.wait_for(g, std::chrono::seconds(30), [&] { return n_last >= n; });
        }
};
