/* SPDX-License-Identifier: MIT */
/* What this machine charges for the two things a request through coapclientd does more often
 * than an in-process CoAP client: a system call, and handing work to another thread (a wake-up
 * and a context switch each way). Read beside the ratios: on a VM both can cost several times
 * their bare-metal price, and differently from day to day.
 *
 * usage: machine-floor
 * Prints "machine-floor syscall_ns=N thread_rt_us=N": a getppid() system call, and a round trip
 * of one byte between two threads over two pipes (two context switches, four system calls) on
 * whatever CPU the caller pins it to. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define N_SYSCALLS   1000000
#define N_ROUNDTRIPS 100000

static int ping[2], pong[2];

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void *echo(void *arg) {
        char c;

        while (read(ping[0], &c, 1) == 1)
                if (write(pong[1], &c, 1) != 1)
                        break;
        return arg;
}

int main(void) {
        uint64_t t0, t1, t2;
        pthread_t thread;
        char c = 'x';

        t0 = now_ns();
        for (unsigned i = 0; i < N_SYSCALLS; i++)
                (void) syscall(SYS_getppid);
        t1 = now_ns();

        if (pipe(ping) < 0 || pipe(pong) < 0 || pthread_create(&thread, NULL, echo, NULL) != 0) {
                perror("machine-floor");
                return 1;
        }
        t2 = now_ns();
        for (unsigned i = 0; i < N_ROUNDTRIPS; i++)
                if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1) {
                        perror("machine-floor");
                        return 1;
                }
        printf("machine-floor syscall_ns=%.0f thread_rt_us=%.2f\n", (double) (t1 - t0) / N_SYSCALLS,
               (double) (now_ns() - t2) / N_ROUNDTRIPS / 1e3);
        close(ping[1]);
        pthread_join(thread, NULL);
        return 0;
}
