/* SPDX-License-Identifier: MIT */
#include "stats-file.h"

void stats_file_write(const char *path, void (*format)(const void *userdata, FILE *f),
                      const void *userdata) {
        char tmp[4096];
        FILE *f;

        if (!path)
                return;
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        f = fopen(tmp, "we");
        if (!f)
                return;
        format(userdata, f);
        if (fclose(f) == 0)
                (void) rename(tmp, path);
}
