/* SPDX-License-Identifier: MIT */
#include "link-format.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct Cursor {
        const char *p, *end;
} Cursor;

static void skip_space(Cursor *c) {
        while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
                c->p++;
}

static bool eat(Cursor *c, char ch) {
        if (c->p < c->end && *c->p == ch) {
                c->p++;
                return true;
        }
        return false;
}

/* RFC 5988 parmname and ptoken, as far as link-format needs: no separators, quotes or space. */
static bool is_token_char(char ch) {
        return ch > 0x20 && ch < 0x7f && !strchr(",;=\"<>", ch);
}

/* A quoted-string with quoted-pairs resolved. */
static int parse_quoted(Cursor *c, char **ret) {
        char *out, *o;

        c->p++; /* '"' */
        out = o = malloc((size_t) (c->end - c->p) + 1);
        if (!out)
                return -ENOMEM;
        while (c->p < c->end && *c->p != '"') {
                if (*c->p == '\0')
                        break;
                if (*c->p == '\\' && c->p + 1 < c->end)
                        c->p++;
                *o++ = *c->p++;
        }
        if (!eat(c, '"') || memchr(out, '\0', (size_t) (o - out))) {
                free(out);
                return -EBADMSG;
        }
        *o = '\0';
        *ret = out;
        return 0;
}

static int parse_param(Cursor *c, CtlLinkParam *ret) {
        const char *start = c->p;
        CtlLinkParam p = {};
        int r;

        while (c->p < c->end && is_token_char(*c->p))
                c->p++;
        if (c->p == start)
                return -EBADMSG;
        p.name = strndup(start, (size_t) (c->p - start));
        if (!p.name)
                return -ENOMEM;
        skip_space(c);
        if (eat(c, '=')) {
                skip_space(c);
                if (c->p < c->end && *c->p == '"')
                        r = parse_quoted(c, &p.value);
                else {
                        start = c->p;
                        while (c->p < c->end && is_token_char(*c->p))
                                c->p++;
                        /* RFC 6690 allows an empty ptoken only quoted. */
                        p.value = c->p > start ? strndup(start, (size_t) (c->p - start)) : NULL;
                        r = c->p > start ? (p.value ? 0 : -ENOMEM) : -EBADMSG;
                }
                if (r < 0) {
                        free(p.name);
                        return r;
                }
        }
        *ret = p;
        return 0;
}

static void link_done(CtlLink *l) {
        for (size_t i = 0; i < l->n_params; i++) {
                free(l->params[i].name);
                free(l->params[i].value);
        }
        free(l->params);
        free(l->target);
}

static int parse_link(Cursor *c, CtlLink *ret) {
        const char *start;
        CtlLink l = {};
        int r;

        if (!eat(c, '<'))
                return -EBADMSG;
        start = c->p;
        while (c->p < c->end && *c->p != '>')
                c->p++;
        if (c->p == c->end)
                return -EBADMSG;
        if (memchr(start, '\0', (size_t) (c->p - start)))
                return -EBADMSG;
        l.target = strndup(start, (size_t) (c->p - start));
        if (!l.target)
                return -ENOMEM;
        c->p++;
        for (;;) {
                CtlLinkParam *params;

                skip_space(c);
                if (!eat(c, ';'))
                        break;
                skip_space(c);
                params = reallocarray(l.params, l.n_params + 1, sizeof(*params));
                if (!params) {
                        link_done(&l);
                        return -ENOMEM;
                }
                l.params = params;
                r = parse_param(c, &l.params[l.n_params]);
                if (r < 0) {
                        link_done(&l);
                        return r;
                }
                l.n_params++;
        }
        *ret = l;
        return 0;
}

int ctl_link_format_parse(const char *s, size_t len, CtlLinkList *ret) {
        Cursor c = {s, s + len};
        CtlLinkList list = {};
        int r;

        skip_space(&c);
        while (c.p < c.end) {
                CtlLink *links = reallocarray(list.links, list.n_links + 1, sizeof(*links));

                if (!links) {
                        ctl_link_list_done(&list);
                        return -ENOMEM;
                }
                list.links = links;
                r = parse_link(&c, &list.links[list.n_links]);
                if (r < 0) {
                        ctl_link_list_done(&list);
                        return r;
                }
                list.n_links++;
                skip_space(&c);
                if (c.p == c.end)
                        break;
                if (!eat(&c, ',')) {
                        ctl_link_list_done(&list);
                        return -EBADMSG;
                }
                skip_space(&c);
                if (c.p == c.end) { /* a trailing ',' */
                        ctl_link_list_done(&list);
                        return -EBADMSG;
                }
        }
        *ret = list;
        return 0;
}

void ctl_link_list_done(CtlLinkList *l) {
        for (size_t i = 0; i < l->n_links; i++)
                link_done(&l->links[i]);
        free(l->links);
        *l = (CtlLinkList){};
}
