/* SPDX-License-Identifier: MIT */
/* Replays files through a fuzz target without libFuzzer: each argument is a file or a directory
 * (its regular files, sorted, not recursive). Prints TAP, one line per input. A failing input
 * aborts, which fails the test; unreadable inputs and an empty run are failures too. */

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static unsigned n_tests, n_failed;

static void report(bool ok, const char *path, int error) {
        n_tests++;
        if (ok) {
                printf("ok %u - %s\n", n_tests, path);
        } else {
                n_failed++;
                printf("not ok %u - %s: %s\n", n_tests, path, strerror(error));
        }
        fflush(stdout);
}

/* Reads the whole file into a buffer of exactly its size, so ASan sees any overread. */
static int read_file(const char *path, uint8_t **ret, size_t *ret_size) {
        FILE *f = fopen(path, "rbe");
        struct stat st;
        uint8_t *buf;
        size_t size = 0;

        if (!f)
                return -errno;
        if (fstat(fileno(f), &st) < 0) {
                int r = -errno;
                fclose(f);
                return r;
        }
        size = (size_t) st.st_size;
        buf = malloc(size > 0 ? size : 1);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        if (fread(buf, 1, size, f) != size) {
                free(buf);
                fclose(f);
                return -EIO;
        }
        fclose(f);
        *ret = buf;
        *ret_size = size;
        return 0;
}

static void run_file(const char *path) {
        uint8_t *data = NULL;
        size_t size = 0;
        int r;

        r = read_file(path, &data, &size);
        if (r < 0) {
                report(false, path, -r);
                return;
        }
        LLVMFuzzerTestOneInput(data, size);
        free(data);
        report(true, path, 0);
}

static int filter_visible(const struct dirent *de) {
        return de->d_name[0] != '.';
}

static void run_dir(const char *dir) {
        struct dirent **entries;
        int n;

        n = scandir(dir, &entries, filter_visible, alphasort);
        if (n < 0) {
                report(false, dir, errno);
                return;
        }
        for (int i = 0; i < n; i++) {
                char *path;
                struct stat st;

                if (asprintf(&path, "%s/%s", dir, entries[i]->d_name) < 0) {
                        report(false, entries[i]->d_name, ENOMEM);
                } else {
                        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
                                run_file(path);
                        free(path);
                }
                free(entries[i]);
        }
        free(entries);
}

int main(int argc, char *argv[]) {
        for (int i = 1; i < argc; i++) {
                struct stat st;

                if (stat(argv[i], &st) < 0)
                        report(false, argv[i], errno);
                else if (S_ISDIR(st.st_mode))
                        run_dir(argv[i]);
                else
                        run_file(argv[i]);
        }
        printf("1..%u\n", n_tests);
        return n_failed == 0 && n_tests > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
