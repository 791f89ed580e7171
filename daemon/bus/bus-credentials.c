/* SPDX-License-Identifier: MIT */
#include "bus/bus-credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus/bus-util.h"
#include "dtls/dtls-loader.h"
#include "internal/bus-api.h"

#define CREDENTIALS_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)

_Static_assert(PEER_FINGERPRINT_SIZE == DTLS_SHA256_SIZE, "fingerprints are SHA-256");

typedef struct Blob {
        const uint8_t *data; /* into the message */
        size_t len;
} Blob;

typedef struct CredentialsArgs {
        const char *type;
        char *psk_identity; /* owned: it may come as bytes */
        Blob ca, certificate, server_public_key;
        const char *server_name;
        bool insecure;
        uint32_t handshake_timeout_ms;
} CredentialsArgs;

/* The secret, wiped before it is freed. */
typedef struct Secret {
        uint8_t *data;
        size_t len;
} Secret;

static void secret_done(Secret *s) {
        if (s->data) {
                explicit_bzero(s->data, s->len);
                free(s->data);
        }
        *s = (Secret){};
}

static void credentials_args_done(CredentialsArgs *a) {
        free(a->psk_identity);
}

static int invalid(sd_bus_error *error, const char *message) {
        return sd_bus_error_set(error, COAPCLIENTD_ERROR_INVALID_CREDENTIALS, message);
}

/* A sealed memfd: nobody can change the bytes while, or after, we read them. */
static int read_secret(int fd, Secret *ret, sd_bus_error *error) {
        Secret s = {};
        struct stat st;
        int seals;

        seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0 || (seals & CREDENTIALS_SEALS) != CREDENTIALS_SEALS)
                return invalid(error, "The secret must be a memfd sealed with F_SEAL_WRITE, "
                                      "F_SEAL_SHRINK and F_SEAL_GROW.");
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_size < 0 || st.st_size > CREDENTIALS_SECRET_MAX)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_CREDENTIALS,
                                         "The secret must be at most %d bytes.",
                                         CREDENTIALS_SECRET_MAX);
        s.len = (size_t) st.st_size;
        s.data = malloc(s.len > 0 ? s.len : 1);
        if (!s.data)
                return -ENOMEM;
        for (size_t off = 0; off < s.len;) {
                ssize_t n = pread(fd, s.data + off, s.len - off, (off_t) off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int r = n < 0 ? -errno : -EIO;

                        secret_done(&s);
                        return r;
                }
                off += (size_t) n;
        }
        *ret = s;
        return 0;
}

static int read_blob(sd_bus_message *m, const char *key, Blob *ret, sd_bus_error *error) {
        const void *p;
        size_t len;
        int r;

        r = sd_bus_message_read_array(m, 'y', &p, &len);
        if (r < 0)
                return r;
        if (len == 0 || len > CREDENTIALS_PUBLIC_MAX)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_CREDENTIALS,
                                         "Credentials key '%s' must have 1..%d bytes.", key,
                                         CREDENTIALS_PUBLIC_MAX);
        *ret = (Blob){.data = p, .len = len};
        return 0;
}

/* "psk-identity" as a string or as bytes (without NUL). */
static int read_identity(sd_bus_message *m, CredentialsArgs *a, sd_bus_error *error) {
        const char *contents;
        const void *p;
        size_t len;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (type == SD_BUS_TYPE_VARIANT && contents && strcmp(contents, "ay") == 0) {
                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_VARIANT, "ay");
                if (r < 0)
                        return r;
                r = sd_bus_message_read_array(m, 'y', &p, &len);
        } else {
                r = bus_message_enter_variant_of(m, "psk-identity", "s",
                                                 COAPCLIENTD_ERROR_INVALID_CREDENTIALS,
                                                 "credentials", error);
                if (r < 0)
                        return r;
                r = sd_bus_message_read(m, "s", &p);
                len = r >= 0 ? strlen(p) : 0;
        }
        if (r < 0)
                return r;
        if (len == 0 || len > CREDENTIALS_PSK_IDENTITY_MAX || memchr(p, 0, len))
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_CREDENTIALS,
                                         "'psk-identity' must have 1..%d bytes, none of them 0.",
                                         CREDENTIALS_PSK_IDENTITY_MAX);
        a->psk_identity = strndup(p, len);
        if (!a->psk_identity)
                return -ENOMEM;
        return sd_bus_message_exit_container(m);
}

static const BusDictKey credentials_keys[] = {
        /* signature NULL: read_identity() */
        {"type", "s"},        {"psk-identity", NULL},     {"ca", "ay"},
        {"server-name", "s"}, {"certificate", "ay"},      {"server-public-key", "ay"},
        {"insecure", "b"},    {"handshake-timeout", "u"},
};

static int read_key(sd_bus_message *m, const char *key, CredentialsArgs *a, sd_bus_error *error) {
        int b, r;

        if (strcmp(key, "type") == 0)
                r = sd_bus_message_read(m, "s", &a->type);
        else if (strcmp(key, "ca") == 0)
                r = read_blob(m, key, &a->ca, error);
        else if (strcmp(key, "server-name") == 0) {
                r = sd_bus_message_read(m, "s", &a->server_name);
                if (r >= 0 && (a->server_name[0] == '\0' ||
                               strlen(a->server_name) > CREDENTIALS_SERVER_NAME_MAX))
                        return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_CREDENTIALS,
                                                 "'server-name' must have 1..%d bytes.",
                                                 CREDENTIALS_SERVER_NAME_MAX);
        } else if (strcmp(key, "certificate") == 0)
                r = read_blob(m, key, &a->certificate, error);
        else if (strcmp(key, "server-public-key") == 0)
                r = read_blob(m, key, &a->server_public_key, error);
        else if (strcmp(key, "insecure") == 0) {
                r = sd_bus_message_read(m, "b", &b);
                a->insecure = b;
        } else {
                r = sd_bus_message_read(m, "u", &a->handshake_timeout_ms);
                if (r >= 0 && (a->handshake_timeout_ms < 100 || a->handshake_timeout_ms > 600000))
                        return invalid(error, "'handshake-timeout' must be within 100..600000 ms.");
        }
        return r;
}

static int read_dict(sd_bus_message *m, CredentialsArgs *a, sd_bus_error *error) {
        uint32_t seen = 0;
        int r;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv")) > 0) {
                const char *key;
                int i;

                i = bus_dict_entry_read_key(m, credentials_keys, ELEMENTSOF(credentials_keys),
                                            &seen, COAPCLIENTD_ERROR_INVALID_CREDENTIALS,
                                            "credentials", error);
                if (i < 0)
                        return i;
                key = credentials_keys[i].key;

                if (!credentials_keys[i].signature)
                        r = read_identity(m, a, error);
                else {
                        r = read_key(m, key, a, error);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(m);
                }
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* Keys that make sense for the type; anything else is refused rather than ignored. */
static int check_keys(const CredentialsArgs *a, size_t secret_len, sd_bus_error *error) {
        if (!a->type)
                return invalid(error, "Credentials key 'type' is required.");
        if (strcmp(a->type, "psk") == 0) {
                if (!a->psk_identity)
                        return invalid(error, "PSK credentials need 'psk-identity'.");
                if (a->ca.data || a->server_name || a->certificate.data ||
                    a->server_public_key.data || a->insecure)
                        return invalid(error, "PSK credentials take only 'psk-identity' and "
                                              "'handshake-timeout'.");
                if (secret_len < 1 || secret_len > 64)
                        return invalid(error, "A PSK must have 1..64 bytes.");
                return 0;
        }
        if (strcmp(a->type, "x509") == 0) {
                if (a->psk_identity || a->server_public_key.data)
                        return invalid(error, "X.509 credentials take no 'psk-identity' or "
                                              "'server-public-key'.");
                if (a->certificate.data && secret_len == 0)
                        return invalid(error, "A client 'certificate' needs its private key as "
                                              "the secret.");
                if (!a->certificate.data && secret_len > 0)
                        return invalid(error, "A private key was given without a client "
                                              "'certificate'.");
                return 0;
        }
        if (strcmp(a->type, "rpk") == 0) {
                if (a->psk_identity || a->ca.data || a->server_name || a->certificate.data)
                        return invalid(error, "Raw public key credentials take only "
                                              "'server-public-key', 'insecure' and "
                                              "'handshake-timeout'.");
                if (secret_len == 0)
                        return invalid(error, "Raw public key credentials need the private key "
                                              "as the secret.");
                if (!a->server_public_key.data && !a->insecure)
                        return invalid(error, "Raw public key credentials need "
                                              "'server-public-key' (or 'insecure').");
                return 0;
        }
        return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_CREDENTIALS,
                                 "Unknown credentials type '%s' (psk, x509, rpk).", a->type);
}

/* Length-prefixed fields, so that no two different inputs hash alike by concatenation. */
static int fingerprint(const CredentialsArgs *a, const Secret *s,
                       uint8_t ret[PEER_FINGERPRINT_SIZE]) {
        const char *id = a->psk_identity, *name = a->server_name;
        const uint8_t insecure = a->insecure;
        const struct {
                uint8_t tag;
                const void *data;
                size_t len;
        } fields[] = {
                {'t', a->type, strlen(a->type)},
                {'i', id, id ? strlen(id) : 0},
                {'a', a->ca.data, a->ca.len},
                {'n', name, name ? strlen(name) : 0},
                {'c', a->certificate.data, a->certificate.len},
                {'p', a->server_public_key.data, a->server_public_key.len},
                {'f', &insecure, 1},
                {'s', s->data, s->len},
        };
        uint64_t lens[ELEMENTSOF(fields)];
        struct iovec iov[3 * ELEMENTSOF(fields)];

        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                lens[i] = fields[i].len;
                iov[3 * i] = (struct iovec){(void *) &fields[i].tag, 1};
                iov[3 * i + 1] = (struct iovec){&lens[i], sizeof(lens[i])};
                iov[3 * i + 2] = (struct iovec){(void *) fields[i].data, fields[i].len};
        }
        return dtls_sha256(iov, ELEMENTSOF(iov), ret);
}

static int build(const CredentialsArgs *a, const Secret *s, DtlsCredentials **ret) {
        DtlsCredentialsFlags flags = a->insecure ? DTLS_CREDENTIALS_INSECURE : 0;
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c = NULL;
        int r;

        if (strcmp(a->type, "psk") == 0)
                r = dtls_credentials_new_psk(a->psk_identity, s->data, s->len, &c);
        else if (strcmp(a->type, "rpk") == 0)
                r = dtls_credentials_new_rpk(s->data, s->len, a->server_public_key.data,
                                             a->server_public_key.len, flags, &c);
        else {
                r = dtls_credentials_new_x509(a->ca.data, a->ca.len, a->server_name, flags, &c);
                if (r >= 0 && a->certificate.data)
                        r = dtls_credentials_set_client_cert(c, a->certificate.data,
                                                             a->certificate.len, s->data, s->len);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

int bus_credentials_parse(sd_bus_message *m, PeerCredentials **ret, sd_bus_error *error) {
        _cleanup_(credentials_args_done) CredentialsArgs a = {};
        _cleanup_(peer_credentials_freep) PeerCredentials *c = NULL;
        _cleanup_(secret_done) Secret secret = {};
        static const char *const types[] = {"psk", "x509", "rpk"};
        int fd, r;

        r = read_dict(m, &a, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "h", &fd);
        if (r < 0)
                return r;
        r = read_secret(fd, &secret, error);
        if (r < 0)
                return r;
        r = check_keys(&a, secret.len, error);
        if (r < 0)
                return r;
        /* The first SetCredentials loads GnuTLS (dtls-loader.h); without it plain CoAP goes on. */
        r = dtls_loader_load();
        if (r < 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                        "DTLS is not available: coapclientd could not load its "
                                        "DTLS module.");

        c = calloc(1, sizeof(PeerCredentials));
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (strcmp(a.type, types[i]) == 0)
                        c->type = types[i];
        c->handshake_timeout_usec = a.handshake_timeout_ms > 0
                                            ? a.handshake_timeout_ms * USEC_PER_MSEC
                                            : DTLS_DEFAULT_HANDSHAKE_TIMEOUT;
        r = fingerprint(&a, &secret, c->fingerprint);
        if (r < 0)
                return r;
        r = build(&a, &secret, &c->dtls);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                /* The reason only: never any part of the inputs. */
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_CREDENTIALS,
                                         "The %s credentials could not be loaded: %s.", c->type,
                                         strerror(-r));
        *ret = TAKE_PTR(c);
        return 0;
}
