/* SPDX-License-Identifier: MIT */
/* The running daemon's introspection data must match the contract in dbus/ (the XML files): the
 * same members with the same signatures, property types and access, and (strictly) the same
 * argument names and annotations. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-helper.h"
#include "check-main.h"
#include "internal/bus-api.h"

#define LINE_MAX_LEN 1024
#define MEMBERS_MAX  64

typedef struct Members {
        char *lines[MEMBERS_MAX];
        size_t n;
} Members;

static void members_done(Members *m) {
        for (size_t i = 0; i < m->n; i++)
                free(m->lines[i]);
        m->n = 0;
}

/* Copies the value of attribute key from one tag's text into buf; false when absent. */
static bool tag_attr(const char *tag, size_t tag_len, const char *key, char *buf, size_t size) {
        char pattern[64];
        const char *p, *q, *end = tag + tag_len;
        size_t len;

        snprintf(pattern, sizeof(pattern), " %s=\"", key);
        p = strstr(tag, pattern);
        if (!p || p >= end)
                return false;
        p += strlen(pattern);
        q = memchr(p, '"', (size_t) (end - p));
        if (!q)
                return false;
        len = MIN((size_t) (q - p), size - 1);
        memcpy(buf, p, len);
        buf[len] = 0;
        return true;
}

static bool tag_is(const char *tag, const char *name) {
        size_t len = strlen(name);

        return strncmp(tag, name, len) == 0 && strchr(" />", tag[len]);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Turns the <interface name="iface"> block of xml into one sorted line per member:
 * "method Name(in:s:name,out:o:client)", "property Name u read", ... With strict, argument names
 * and annotations are part of the line. */
static int parse_interface(const char *xml, const char *iface, bool strict, Members *ret) {
        char start[256], line[LINE_MAX_LEN] = "";
        const char *p, *end;
        bool open = false, in_signal = false;

        snprintf(start, sizeof(start), "<interface name=\"%s\">", iface);
        p = strstr(xml, start);
        if (!p)
                return -ENOENT;
        end = strstr(p, "</interface>");
        if (!end)
                return -EBADMSG;
        p += strlen(start);
        ret->n = 0;

        while ((p = memchr(p, '<', (size_t) (end - p)))) {
                const char *close = memchr(p, '>', (size_t) (end - p));
                size_t tag_len;
                const char *tag = p + 1;
                bool self_closing;
                char name[128] = "", type[128] = "", dir[16] = "", access[16] = "", value[64] = "";

                if (!close)
                        return -EBADMSG;
                tag_len = (size_t) (close - tag);
                self_closing = tag_len > 0 && tag[tag_len - 1] == '/';
                p = close + 1;
                if (tag[0] == '!' || tag[0] == '?')
                        continue;
                if (tag[0] == '/') {
                        if (tag_is(tag + 1, "method") || tag_is(tag + 1, "signal") ||
                            tag_is(tag + 1, "property")) {
                                if (!open)
                                        return -EBADMSG;
                                if (ret->n == MEMBERS_MAX)
                                        return -E2BIG;
                                ret->lines[ret->n++] = strdup(line);
                                open = false;
                        }
                        continue;
                }
                (void) tag_attr(tag, tag_len, "name", name, sizeof(name));
                (void) tag_attr(tag, tag_len, "type", type, sizeof(type));
                if (tag_is(tag, "method") || tag_is(tag, "signal")) {
                        if (open)
                                return -EBADMSG;
                        in_signal = tag_is(tag, "signal");
                        snprintf(line, sizeof(line), "%s %s:", in_signal ? "signal" : "method",
                                 name);
                        open = true;
                } else if (tag_is(tag, "property")) {
                        if (open)
                                return -EBADMSG;
                        (void) tag_attr(tag, tag_len, "access", access, sizeof(access));
                        snprintf(line, sizeof(line), "property %s %s %s", name, type, access);
                        open = true;
                } else if (tag_is(tag, "arg") && open) {
                        if (!tag_attr(tag, tag_len, "direction", dir, sizeof(dir)))
                                snprintf(dir, sizeof(dir), "%s", in_signal ? "out" : "in");
                        snprintf(line + strlen(line), sizeof(line) - strlen(line), " %s:%s%s%s",
                                 dir, type, strict ? ":" : "", strict ? name : "");
                } else if (tag_is(tag, "annotation") && open && strict) {
                        (void) tag_attr(tag, tag_len, "value", value, sizeof(value));
                        snprintf(line + strlen(line), sizeof(line) - strlen(line), " @%s=%s", name,
                                 value);
                } else if (!tag_is(tag, "arg") && !tag_is(tag, "annotation"))
                        return -EBADMSG;
                if (self_closing && open && !tag_is(tag, "arg") && !tag_is(tag, "annotation")) {
                        if (ret->n == MEMBERS_MAX)
                                return -E2BIG;
                        ret->lines[ret->n++] = strdup(line);
                        open = false;
                }
        }
        if (open)
                return -EBADMSG;
        qsort(ret->lines, ret->n, sizeof(ret->lines[0]), cmp_str);
        return 0;
}

static char *read_file(const char *env) {
        const char *path = getenv(env);
        char *buf = NULL;
        size_t size = 0;
        FILE *f, *out;

        ck_assert_msg(path, "$%s not set", env);
        f = fopen(path, "re");
        ck_assert_msg(f, "cannot open %s", path);
        out = open_memstream(&buf, &size);
        ck_assert_ptr_nonnull(out);
        for (int c; (c = fgetc(f)) != EOF;)
                fputc(c, out);
        fclose(f);
        fclose(out);
        return buf;
}

static void compare(const char *live_xml, const char *env, const char *iface, bool strict) {
        _cleanup_free_ char *file_xml = read_file(env);
        Members want = {}, got = {};

        ck_assert_int_eq(parse_interface(file_xml, iface, strict, &want), 0);
        ck_assert_msg(parse_interface(live_xml, iface, strict, &got) == 0,
                      "%s missing or unparsable in:\n%s", iface, live_xml);
        ck_assert_uint_gt(want.n, 0);
        for (size_t i = 0, j = 0; i < want.n || j < got.n;) {
                int c = i == want.n ? 1 : j == got.n ? -1 : strcmp(want.lines[i], got.lines[j]);

                ck_assert_msg(c == 0, "%s: %s '%s'", iface,
                              c < 0 ? "daemon lacks" : "daemon has extra",
                              c < 0 ? want.lines[i] : got.lines[j]);
                i++;
                j++;
        }
        members_done(&want);
        members_done(&got);
}

static char *introspect_root(TestBus *b) {
        char *xml = NULL;

        ck_assert_int_ge(test_bus_introspect(b, COAPCLIENTD_ROOT_PATH, &xml, NULL), 0);
        return xml;
}

static char *introspect_client(TestBus *b) {
        _cleanup_free_ char *path = NULL;
        char *xml = NULL;

        ck_assert_int_eq(test_bus_create_client(b, "introspect", &path, NULL), 0);
        ck_assert_int_ge(test_bus_introspect(b, path, &xml, NULL), 0);
        return xml;
}

START_TEST(test_parser_sees_differences) {
        static const char a[] = "<node><interface name=\"x.Y\"><method name=\"M\">"
                                "<arg type=\"s\" name=\"n\" direction=\"in\"/></method>"
                                "<property name=\"P\" type=\"u\" access=\"read\"/></interface>";
        static const char b[] = "<node><interface name=\"x.Y\"><method name=\"M\">"
                                "<arg type=\"t\" name=\"n\" direction=\"in\"/></method>"
                                "<property name=\"P\" type=\"u\" access=\"read\"/></interface>";
        Members ma = {}, mb = {};

        ck_assert_int_eq(parse_interface(a, "x.Y", true, &ma), 0);
        ck_assert_int_eq(parse_interface(b, "x.Y", true, &mb), 0);
        ck_assert_uint_eq(ma.n, 2);
        ck_assert_str_eq(ma.lines[0], "method M: in:s:n");
        ck_assert_str_eq(ma.lines[1], "property P u read");
        ck_assert_str_ne(ma.lines[0], mb.lines[0]);
        members_done(&ma);
        members_done(&mb);
}
END_TEST

START_TEST(test_manager_signatures) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *xml = NULL;

        ck_assert_int_eq(test_bus_new(&b), 0);
        xml = introspect_root(b);
        compare(xml, "MANAGER_XML", COAPCLIENTD_MANAGER_IFACE, false);
        ck_assert_ptr_nonnull(strstr(xml, "<interface name=\"org.freedesktop.DBus.Properties\">"));
        ck_assert_ptr_null(strstr(xml, "<interface name=\"" COAPCLIENTD_CLIENT_IFACE "\">"));
}
END_TEST

START_TEST(test_client_signatures) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *xml = NULL;

        ck_assert_int_eq(test_bus_new(&b), 0);
        xml = introspect_client(b);
        compare(xml, "CLIENT_XML", COAPCLIENTD_CLIENT_IFACE, false);
        ck_assert_ptr_nonnull(strstr(xml, "<interface name=\"org.freedesktop.DBus.Properties\">"));
        ck_assert_ptr_null(strstr(xml, "<interface name=\"" COAPCLIENTD_MANAGER_IFACE "\">"));
}
END_TEST

/* Argument names and annotations too: EmitsChangedSignal, and no sd-bus "Privileged" mark (a
 * method without SD_BUS_VTABLE_UNPRIVILEGED would refuse unprivileged callers). */
START_TEST(test_manager_strict) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *xml = NULL;

        ck_assert_int_eq(test_bus_new(&b), 0);
        xml = introspect_root(b);
        compare(xml, "MANAGER_XML", COAPCLIENTD_MANAGER_IFACE, true);
}
END_TEST

START_TEST(test_client_strict) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *xml = NULL;

        ck_assert_int_eq(test_bus_new(&b), 0);
        xml = introspect_client(b);
        compare(xml, "CLIENT_XML", COAPCLIENTD_CLIENT_IFACE, true);
}
END_TEST

static Suite *introspect_suite(void) {
        Suite *s = suite_create("introspect");
        TCase *tc = tcase_create("introspect");

        tcase_set_timeout(tc, 5);
        tcase_add_test(tc, test_parser_sees_differences);
        tcase_add_test(tc, test_manager_signatures);
        tcase_add_test(tc, test_client_signatures);
        tcase_add_test(tc, test_manager_strict);
        tcase_add_test(tc, test_client_strict);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(introspect_suite)
