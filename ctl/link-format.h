/* SPDX-License-Identifier: MIT */
#pragma once

/* CoRE Link Format (RFC 6690), as /.well-known/core answers: a pure parser. */

#include <stddef.h>

typedef struct CtlLinkParam {
        char *name;
        char *value; /* unquoted, escapes resolved; NULL for a bare name such as "obs" */
} CtlLinkParam;

typedef struct CtlLink {
        char *target; /* the URI-Reference between '<' and '>' */
        CtlLinkParam *params;
        size_t n_params;
} CtlLink;

typedef struct CtlLinkList {
        CtlLink *links;
        size_t n_links;
} CtlLinkList;

/* Parses link-value *("," link-value). Whitespace around the separators is tolerated (some
 * servers break lines), NUL bytes are not. -EBADMSG malformed, -ENOMEM. */
int ctl_link_format_parse(const char *s, size_t len, CtlLinkList *ret);
void ctl_link_list_done(CtlLinkList *l);
