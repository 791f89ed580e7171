/* SPDX-License-Identifier: MIT */
#include "random-util.h"

#include <errno.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal/macro.h"

static uint64_t pool[64];
static size_t pool_left = 0;

static uint64_t fallback_u64(void) {
        static uint64_t state = 0;
        struct timespec ts;
        uint64_t z;

        if (state == 0) {
                (void) clock_gettime(CLOCK_MONOTONIC, &ts);
                state = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 32) ^ (uint64_t) getpid();
        }
        z = (state += UINT64_C(0x9e3779b97f4a7c15)); /* splitmix64 */
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

uint64_t random_u64(void) {
        if (pool_left == 0) {
                ssize_t n;

                do
                        n = getrandom(pool, sizeof pool, GRND_NONBLOCK);
                while (n < 0 && errno == EINTR);
                if (n != (ssize_t) sizeof pool)
                        return fallback_u64();
                pool_left = ELEMENTSOF(pool);
        }
        return pool[--pool_left];
}
