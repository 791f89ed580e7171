/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-main.h"
#include "config.h"

/* Field by field: the padding of a Config is unspecified, so memcmp() is no good. */
static void assert_config_eq(const Config *a, const Config *b) {
        ck_assert_uint_eq(a->max_clients_per_caller, b->max_clients_per_caller);
        ck_assert_uint_eq(a->max_clients, b->max_clients);
        ck_assert_uint_eq(a->max_requests_per_client, b->max_requests_per_client);
        ck_assert_uint_eq(a->max_requests, b->max_requests);
        ck_assert_uint_eq(a->max_payload_bytes, b->max_payload_bytes);
        ck_assert_uint_eq(a->max_payload_bytes_total, b->max_payload_bytes_total);
        ck_assert_uint_eq(a->max_queued_bytes_per_caller, b->max_queued_bytes_per_caller);
        ck_assert_uint_eq(a->ack_timeout_ms, b->ack_timeout_ms);
        ck_assert_uint_eq(a->ack_random_percent, b->ack_random_percent);
        ck_assert_uint_eq(a->backoff_percent, b->backoff_percent);
        ck_assert_uint_eq(a->max_retransmit, b->max_retransmit);
        ck_assert_uint_eq(a->block_size, b->block_size);
}

static int parse(Config *c, const char *text, ConfigError *e) {
        return config_parse_buffer(c, "test.conf", text, strlen(text), e);
}

/* Expects text to fail on line with a message containing needle, leaving the config alone. */
static void expect_error(const char *text, unsigned line, const char *needle) {
        Config c, orig;
        ConfigError e = {0};

        config_init_defaults(&c);
        orig = c;
        ck_assert_int_eq(parse(&c, text, &e), -EINVAL);
        ck_assert_str_eq(e.file, "test.conf");
        ck_assert_uint_eq(e.line, line);
        ck_assert_msg(strstr(e.message, needle), "message '%s' lacks '%s'", e.message, needle);
        assert_config_eq(&c, &orig);
}

/* Parses "[section]\nkey=value" and returns the errno; the parsed Config goes to *ret. */
static int parse_one(const char *section, const char *key, const char *value, Config *ret) {
        char text[256];

        config_init_defaults(ret);
        snprintf(text, sizeof(text), "[%s]\n%s=%s\n", section, key, value);
        return parse(ret, text, NULL);
}

START_TEST(test_defaults) {
        Config c;

        config_init_defaults(&c);
        ck_assert_uint_eq(c.max_clients_per_caller, 32);
        ck_assert_uint_eq(c.max_clients, 1024);
        ck_assert_uint_eq(c.max_requests_per_client, 32);
        ck_assert_uint_eq(c.max_requests, 2048);
        ck_assert_uint_eq(c.max_payload_bytes, 1024 * 1024);
        ck_assert_uint_eq(c.max_payload_bytes_total, 8 * 1024 * 1024);
        ck_assert_uint_eq(c.ack_timeout_ms, 2000);
        ck_assert_uint_eq(c.ack_random_percent, 150);
        ck_assert_uint_eq(c.backoff_percent, 200);
        ck_assert_uint_eq(c.max_retransmit, 4);
        ck_assert_uint_eq(c.block_size, 1024);
}
END_TEST

START_TEST(test_all_keys) {
        static const char text[] = "# comment\n"
                                   "; another comment\n"
                                   "\n"
                                   "[Limits]\n"
                                   "MaxClientsPerCaller=8\n"
                                   "  MaxClients = 100  \n"
                                   "MaxRequestsPerClient=3\n"
                                   "MaxRequests=1000\n"
                                   "MaxPayloadBytes=64K\n"
                                   "MaxPayloadBytesTotal=2M\n"
                                   "[Defaults]\n"
                                   "AckTimeoutSec=500ms\n"
                                   "AckRandomPercent=100\n"
                                   "BackoffPercent=300\n"
                                   "MaxRetransmit=0\n"
                                   "BlockSize=64";
        Config c;

        config_init_defaults(&c);
        ck_assert_int_eq(parse(&c, text, NULL), 0);
        ck_assert_uint_eq(c.max_clients_per_caller, 8);
        ck_assert_uint_eq(c.max_clients, 100);
        ck_assert_uint_eq(c.max_requests_per_client, 3);
        ck_assert_uint_eq(c.max_requests, 1000);
        ck_assert_uint_eq(c.max_payload_bytes, 65536);
        ck_assert_uint_eq(c.max_payload_bytes_total, 2 * 1024 * 1024);
        ck_assert_uint_eq(c.ack_timeout_ms, 500);
        ck_assert_uint_eq(c.ack_random_percent, 100);
        ck_assert_uint_eq(c.backoff_percent, 300);
        ck_assert_uint_eq(c.max_retransmit, 0);
        ck_assert_uint_eq(c.block_size, 64);
}
END_TEST

START_TEST(test_sizes) {
        Config c;

        ck_assert_int_eq(parse_one("Limits", "MaxPayloadBytes", "1", &c), 0);
        ck_assert_uint_eq(c.max_payload_bytes, 1);
        ck_assert_int_eq(parse_one("Limits", "MaxPayloadBytes", "512B", &c), 0);
        ck_assert_uint_eq(c.max_payload_bytes, 512);
        ck_assert_int_eq(parse_one("Limits", "MaxPayloadBytes", "3K", &c), 0);
        ck_assert_uint_eq(c.max_payload_bytes, 3072);
        ck_assert_int_eq(parse_one("Limits", "MaxPayloadBytes", "16M", &c), 0);
        ck_assert_uint_eq(c.max_payload_bytes, 16 << 20);
        ck_assert_int_eq(parse_one("Limits", "MaxPayloadBytes", "1G", &c), 0);
        ck_assert_uint_eq(c.max_payload_bytes, 1 << 30);

        ck_assert_int_eq(parse_one("Limits", "MaxPayloadBytes", "2G", &c), -EINVAL);
        ck_assert_int_eq(parse_one("Limits", "MaxPayloadBytes", "0", &c), -EINVAL);
        ck_assert_int_eq(parse_one("Limits", "MaxPayloadBytes", "4k", &c), -EINVAL);
        ck_assert_int_eq(parse_one("Limits", "MaxPayloadBytes", "4 M", &c), -EINVAL);
        ck_assert_int_eq(parse_one("Limits", "MaxPayloadBytes", "1.5M", &c), -EINVAL);
        ck_assert_int_eq(parse_one("Limits", "MaxPayloadBytes", "-1", &c), -EINVAL);
        ck_assert_int_eq(parse_one("Limits", "MaxPayloadBytes", "99999999999999999999G", &c),
                         -EINVAL);
}
END_TEST

START_TEST(test_times) {
        static const struct {
                const char *value;
                uint32_t ms;
        } good[] = {
                {"2", 2000},           {"2s", 2000},    {"2sec", 2000},    {"1.5s", 1500},
                {"1.5", 1500},         {"0.001s", 1},   {"500ms", 500},    {"500 ms", 500},
                {"250msec", 250},      {"1min", 60000}, {"0.5min", 30000}, {"600s", 600000},
                {"1.25000000s", 1250},
        };
        static const char *const bad[] = {
                "0",  "0ms", "601s", "11min", "0.0005s", "1.0000001s", "1.5ms", "abc",
                "-1", "1.",  ".5",   "1h",    "2 s s",   "1e3",        "s",
        };
        Config c;

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                ck_assert_msg(parse_one("Defaults", "AckTimeoutSec", good[i].value, &c) == 0,
                              "'%s' rejected", good[i].value);
                ck_assert_uint_eq(c.ack_timeout_ms, good[i].ms);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ck_assert_msg(parse_one("Defaults", "AckTimeoutSec", bad[i], &c) == -EINVAL,
                              "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_ranges) {
        Config c;

        ck_assert_int_eq(parse_one("Limits", "MaxClients", "1000000", &c), 0);
        ck_assert_uint_eq(c.max_clients, 1000000);
        ck_assert_int_eq(parse_one("Limits", "MaxClients", "1000001", &c), -EINVAL);
        ck_assert_int_eq(parse_one("Limits", "MaxClientsPerCaller", "0", &c), -EINVAL);
        ck_assert_int_eq(parse_one("Limits", "MaxRequests", "+5", &c), -EINVAL);
        ck_assert_int_eq(parse_one("Limits", "MaxRequests", "5x", &c), -EINVAL);
        ck_assert_int_eq(parse_one("Limits", "MaxRequests", "0x10", &c), -EINVAL);
        ck_assert_int_eq(parse_one("Limits", "MaxRequests", "99999999999999999999999", &c),
                         -EINVAL);
        ck_assert_int_eq(parse_one("Defaults", "AckRandomPercent", "99", &c), -EINVAL);
        ck_assert_int_eq(parse_one("Defaults", "AckRandomPercent", "1000", &c), 0);
        ck_assert_uint_eq(c.ack_random_percent, 1000);
        ck_assert_int_eq(parse_one("Defaults", "BackoffPercent", "401", &c), -EINVAL);
        ck_assert_int_eq(parse_one("Defaults", "MaxRetransmit", "10", &c), 0);
        ck_assert_uint_eq(c.max_retransmit, 10);
        ck_assert_int_eq(parse_one("Defaults", "MaxRetransmit", "11", &c), -EINVAL);
        /* 256 would wrap to 0 in the uint8_t field if the range were not checked first. */
        ck_assert_int_eq(parse_one("Defaults", "MaxRetransmit", "256", &c), -EINVAL);
}
END_TEST

START_TEST(test_block_size) {
        static const unsigned good[] = {16, 32, 64, 128, 256, 512, 1024};
        static const char *const bad[] = {"8", "2048", "100", "0", "1K"};
        Config c;

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                char v[16];

                snprintf(v, sizeof(v), "%u", good[i]);
                ck_assert_int_eq(parse_one("Defaults", "BlockSize", v, &c), 0);
                ck_assert_uint_eq(c.block_size, good[i]);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ck_assert_msg(parse_one("Defaults", "BlockSize", bad[i], &c) == -EINVAL,
                              "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_reset_and_later_wins) {
        Config c;

        config_init_defaults(&c);
        ck_assert_int_eq(parse(&c,
                               "[Limits]\nMaxClients=5\nMaxClients=7\nMaxRequests=9\n"
                               "[Limits]\nMaxRequests=\n",
                               NULL),
                         0);
        ck_assert_uint_eq(c.max_clients, 7);
        ck_assert_uint_eq(c.max_requests, 2048);

        /* A reset restores the built-in default, not the value before this file. */
        c.ack_timeout_ms = 100;
        ck_assert_int_eq(parse(&c, "[Defaults]\nAckTimeoutSec=", NULL), 0);
        ck_assert_uint_eq(c.ack_timeout_ms, 2000);
}
END_TEST

START_TEST(test_whitespace_crlf_bom) {
        static const char text[] = "\xef\xbb\xbf[Defaults]\r\n"
                                   "\t MaxRetransmit\t=\t7 \r\n"
                                   "   # indented comment\r\n"
                                   "\r\n";
        Config c;

        config_init_defaults(&c);
        ck_assert_int_eq(parse(&c, text, NULL), 0);
        ck_assert_uint_eq(c.max_retransmit, 7);
        /* Empty input is a valid (empty) file. */
        ck_assert_int_eq(config_parse_buffer(&c, "empty", "", 0, NULL), 0);
}
END_TEST

START_TEST(test_errors) {
        expect_error("[Limits]\nMaxClients=1\n[Bogus]\n", 3, "Unknown section [Bogus]");
        expect_error("\n\n[Limits]\nMaxClient=4\n", 4, "Unknown key MaxClient=");
        expect_error("[Defaults]\nMaxClients=4\n", 2, "Unknown key MaxClients= in section");
        expect_error("MaxClients=4\n[Limits]\n", 1, "outside of a section");
        expect_error("[Limits]\nMaxClients 4\n", 2, "Missing '='");
        expect_error("[Limits\n", 1, "Invalid section header");
        expect_error("[]\n", 1, "Unknown section");
        expect_error("[Limits]\n=4\n", 2, "Unknown key");
        expect_error("[Limits]\nMaxClients=0\n", 2, "Invalid value for MaxClients=: '0'");
        expect_error("[Defaults]\nAckTimeoutSec=1h\n", 2, "Invalid value for AckTimeoutSec=");
        /* Keys are case-sensitive, as in systemd. */
        expect_error("[limits]\n", 1, "Unknown section");
        /* Good lines before the bad one are not applied either (checked in expect_error). */
        expect_error("[Limits]\nMaxClients=3\nMaxRequests=x\n", 3, "MaxRequests=");
}
END_TEST

START_TEST(test_nul_byte) {
        static const char text[] = "[Limits]\nMaxClients=3\0\n";
        ConfigError e = {0};
        Config c;

        config_init_defaults(&c);
        ck_assert_int_eq(config_parse_buffer(&c, "nul.conf", text, sizeof(text) - 1, &e), -EINVAL);
        ck_assert_str_eq(e.file, "nul.conf");
        ck_assert_str_eq(e.message, "File contains a NUL byte");
        ck_assert_uint_eq(c.max_clients, 1024);
}
END_TEST

/* A scratch directory for the file tests. */
static char tmpdir[] = "/tmp/test-config.XXXXXX";

static void tmp_setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) st;
        (void) type;
        (void) ftw;
        return remove(path);
}

static void tmp_teardown(void) {
        ck_assert_int_eq(nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
        strcpy(tmpdir, "/tmp/test-config.XXXXXX");
}

static const char *tmp_path(char *buf, size_t size, const char *name) {
        snprintf(buf, size, "%s/%s", tmpdir, name);
        return buf;
}

static void write_file(const char *name, const char *text) {
        char path[PATH_MAX];
        FILE *f = fopen(tmp_path(path, sizeof(path), name), "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fputs(text, f) >= 0, 1);
        ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_load_file) {
        char path[PATH_MAX];
        ConfigError e = {0};
        Config c;
        FILE *f;

        config_init_defaults(&c);
        write_file("a.conf", "[Limits]\nMaxClients=12\n");
        ck_assert_int_eq(config_load_file(&c, tmp_path(path, sizeof(path), "a.conf"), &e), 0);
        ck_assert_uint_eq(c.max_clients, 12);

        ck_assert_int_eq(config_load_file(&c, tmp_path(path, sizeof(path), "none.conf"), &e),
                         -ENOENT);
        ck_assert_str_eq(e.file, path);
        ck_assert_uint_eq(e.line, 0);

        ck_assert_int_eq(config_load_file(&c, tmpdir, &e), -EISDIR);

        write_file("bad.conf", "[Limits]\n\nMaxClients=many\n");
        ck_assert_int_eq(config_load_file(&c, tmp_path(path, sizeof(path), "bad.conf"), &e),
                         -EINVAL);
        ck_assert_str_eq(e.file, path);
        ck_assert_uint_eq(e.line, 3);
        ck_assert_uint_eq(c.max_clients, 12);

        /* 1 MiB of comment lines plus one byte is refused before parsing. */
        f = fopen(tmp_path(path, sizeof(path), "big.conf"), "we");
        ck_assert_ptr_nonnull(f);
        for (int i = 0; i < 65536; i++)
                ck_assert_int_eq(fputs("#23456789abcdef\n", f) >= 0, 1);
        ck_assert_int_eq(fputc('#', f), '#');
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(config_load_file(&c, path, &e), -EFBIG);
        ck_assert_int_eq(truncate(path, 1 << 20), 0);
        ck_assert_int_eq(config_load_file(&c, path, &e), 0);
}
END_TEST

START_TEST(test_load_missing) {
        char main_path[PATH_MAX], dir[PATH_MAX];
        ConfigError e = {0};
        Config c, d;

        config_init_defaults(&c);
        config_init_defaults(&d);
        ck_assert_int_eq(config_load(&c, tmp_path(main_path, sizeof(main_path), "x.conf"),
                                     tmp_path(dir, sizeof(dir), "x.conf.d"), &e),
                         0);
        assert_config_eq(&c, &d);
        ck_assert_int_eq(config_load(&c, NULL, NULL, &e), 0);
        assert_config_eq(&c, &d);
}
END_TEST

START_TEST(test_load_dropins) {
        char main_path[PATH_MAX], dir[PATH_MAX], p[PATH_MAX];
        ConfigError e = {0};
        Config c;

        tmp_path(main_path, sizeof(main_path), "coapclientd.conf");
        tmp_path(dir, sizeof(dir), "coapclientd.conf.d");
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        write_file("coapclientd.conf",
                   "[Limits]\nMaxClients=10\nMaxRequests=20\n[Defaults]\nMaxRetransmit=1\n");
        /* Listed in reverse so that readdir order is unlikely to be name order by chance. */
        write_file("coapclientd.conf.d/30-last.conf", "[Limits]\nMaxClients=30\n");
        write_file("coapclientd.conf.d/20-mid.conf", "[Limits]\nMaxClients=20\nMaxRequests=\n");
        write_file("coapclientd.conf.d/10-first.conf", "[Defaults]\nMaxRetransmit=2\n");
        write_file("coapclientd.conf.d/99-ignored.txt", "garbage\n");
        write_file("coapclientd.conf.d/.hidden.conf", "garbage\n");
        ck_assert_int_eq(mkdir(tmp_path(p, sizeof(p), "coapclientd.conf.d/dir.conf"), 0755), 0);
        ck_assert_int_eq(symlink("/dev/null", tmp_path(p, sizeof(p), "coapclientd.conf.d/m.conf")),
                         0);
        ck_assert_int_eq(symlink("nowhere", tmp_path(p, sizeof(p), "coapclientd.conf.d/n.conf")),
                         0);

        config_init_defaults(&c);
        ck_assert_int_eq(config_load(&c, main_path, dir, &e), 0);
        ck_assert_uint_eq(c.max_clients, 30);
        ck_assert_uint_eq(c.max_requests, 2048);
        ck_assert_uint_eq(c.max_retransmit, 2);

        /* Drop-ins apply even without the main file. */
        ck_assert_int_eq(unlink(main_path), 0);
        config_init_defaults(&c);
        ck_assert_int_eq(config_load(&c, main_path, dir, &e), 0);
        ck_assert_uint_eq(c.max_clients, 30);
        ck_assert_uint_eq(c.max_retransmit, 2);
}
END_TEST

START_TEST(test_load_bad_dropin) {
        char main_path[PATH_MAX], dir[PATH_MAX], bad[PATH_MAX];
        ConfigError e = {0};
        Config c, orig;

        tmp_path(main_path, sizeof(main_path), "main.conf");
        tmp_path(dir, sizeof(dir), "main.conf.d");
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        write_file("main.conf", "[Limits]\nMaxClients=10\n");
        write_file("main.conf.d/10-ok.conf", "[Limits]\nMaxRequests=20\n");
        write_file("main.conf.d/20-bad.conf", "[Limits]\n# typo below\nMaxRequest=5\n");

        config_init_defaults(&c);
        orig = c;
        ck_assert_int_eq(config_load(&c, main_path, dir, &e), -EINVAL);
        ck_assert_str_eq(e.file, tmp_path(bad, sizeof(bad), "main.conf.d/20-bad.conf"));
        ck_assert_uint_eq(e.line, 3);
        assert_config_eq(&c, &orig);

        /* A bad main file stops loading too. */
        write_file("main.conf", "[Limits]\nMaxClients=-1\n");
        ck_assert_int_eq(config_load(&c, main_path, NULL, &e), -EINVAL);
        ck_assert_str_eq(e.file, main_path);
        ck_assert_uint_eq(e.line, 2);

        /* A drop-in path that is not a directory is an error, not silently ignored. */
        ck_assert_int_eq(config_load(&c, NULL, main_path, &e), -ENOTDIR);
        ck_assert_str_eq(e.file, main_path);
}
END_TEST

/* The shipped sample lists every key, commented out, with its default value. */
START_TEST(test_sample_file) {
        const char *sample = getenv("SAMPLE_CONF");
        char line[256], text[4096] = "";
        unsigned keys = 0;
        Config c, d;
        FILE *f;

        ck_assert_ptr_nonnull(sample);
        config_init_defaults(&d);
        config_init_defaults(&c);
        c.max_clients = 1;
        ck_assert_int_eq(config_load_file(&c, sample, NULL), 0);
        ck_assert_uint_eq(c.max_clients, 1);

        f = fopen(sample, "re");
        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof(line), f)) {
                bool is_key =
                        line[0] == '#' && line[1] >= 'A' && line[1] <= 'Z' && strchr(line, '=');

                keys += is_key;
                ck_assert_uint_lt(strlen(text) + strlen(line), sizeof(text));
                strcat(text, is_key ? line + 1 : line);
        }
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_uint_eq(keys, 18);
        ck_assert_int_eq(parse(&c, text, NULL), 0);
        assert_config_eq(&c, &d);
}
END_TEST

static Suite *config_suite(void) {
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("parse");
        TCase *tf = tcase_create("files");

        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_all_keys);
        tcase_add_test(tc, test_sizes);
        tcase_add_test(tc, test_times);
        tcase_add_test(tc, test_ranges);
        tcase_add_test(tc, test_block_size);
        tcase_add_test(tc, test_reset_and_later_wins);
        tcase_add_test(tc, test_whitespace_crlf_bom);
        tcase_add_test(tc, test_errors);
        tcase_add_test(tc, test_nul_byte);
        suite_add_tcase(s, tc);

        tcase_add_checked_fixture(tf, tmp_setup, tmp_teardown);
        tcase_add_test(tf, test_load_file);
        tcase_add_test(tf, test_load_missing);
        tcase_add_test(tf, test_load_dropins);
        tcase_add_test(tf, test_load_bad_dropin);
        tcase_add_test(tf, test_sample_file);
        suite_add_tcase(s, tf);
        return s;
}

DEFINE_CHECK_MAIN(config_suite)
