/* SPDX-License-Identifier: MIT */
/* Parses arbitrary bytes as link format (RFC 6690, coapclientctl discover). An accepted list
 * written out again (every value quoted) must parse back to the same list. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "link-format.h"

#define check(expr)              \
        do {                     \
                if (!(expr))     \
                        abort(); \
        } while (0)

static void write_quoted(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        fputc('\\', f);
                fputc(*s, f);
        }
        fputc('"', f);
}

static char *write_links(const CtlLinkList *l, size_t *ret_len) {
        char *buf = NULL;
        FILE *f = open_memstream(&buf, ret_len);

        check(f);
        for (size_t i = 0; i < l->n_links; i++) {
                fprintf(f, "%s<%s>", i > 0 ? "," : "", l->links[i].target);
                for (size_t j = 0; j < l->links[i].n_params; j++) {
                        const CtlLinkParam *p = &l->links[i].params[j];

                        fprintf(f, ";%s", p->name);
                        if (p->value) {
                                fputc('=', f);
                                write_quoted(f, p->value);
                        }
                }
        }
        check(fclose(f) == 0);
        return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        CtlLinkList a = {}, b = {};
        size_t len;
        char *text;

        if (ctl_link_format_parse((const char *) data, size, &a) < 0) {
                check(a.n_links == 0 && !a.links);
                return 0;
        }
        text = write_links(&a, &len);
        check(ctl_link_format_parse(text, len, &b) == 0);
        check(a.n_links == b.n_links);
        for (size_t i = 0; i < a.n_links; i++) {
                check(strcmp(a.links[i].target, b.links[i].target) == 0);
                check(a.links[i].n_params == b.links[i].n_params);
                for (size_t j = 0; j < a.links[i].n_params; j++) {
                        const CtlLinkParam *p = &a.links[i].params[j], *q = &b.links[i].params[j];

                        check(strcmp(p->name, q->name) == 0);
                        check(!p->value == !q->value);
                        check(!p->value || strcmp(p->value, q->value) == 0);
                }
        }
        free(text);
        ctl_link_list_done(&a);
        ctl_link_list_done(&b);
        return 0;
}
