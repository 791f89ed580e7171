/* SPDX-License-Identifier: MIT */

/* DTLS credentials: Zephyr's tls_credential_add() store, process-wide and guarded by lib.lock,
 * and the SetCredentials() call that hands a client's credentials to coapclientd. Secrets go
 * into a sealed memfd, never into a D-Bus message; copies in memory are wiped when freed. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client-private.h"
#include "internal/macro.h"

#define CREDENTIAL_MAX_LEN (1024U * 1024U)
#define PEM_BEGIN          "-----BEGIN "

typedef struct Credential Credential;
struct Credential {
        int tag;
        enum coap_client_tls_credential_type type;
        uint8_t *data;
        size_t len;
        Credential *next;
};

static Credential *credentials = NULL; /* newest first */

static Credential *credential_free(Credential *c) {
        if (!c)
                return NULL;
        explicit_bzero(c->data, c->len);
        free(c->data);
        free(c);
        return NULL;
}

static Credential **credential_find_locked(int tag, enum coap_client_tls_credential_type type) {
        Credential **p;

        for (p = &credentials; *p; p = &(*p)->next)
                if ((*p)->tag == tag && (*p)->type == type)
                        break;
        return p;
}

static bool credential_type_valid(enum coap_client_tls_credential_type type) {
        return type >= COAP_CLIENT_TLS_CREDENTIAL_CA_CERTIFICATE &&
               type <= COAP_CLIENT_TLS_CREDENTIAL_RAW_PUBLIC_KEY;
}

/* What of cred to keep: PEM from its "-----BEGIN" on (certtool puts text before it) without the
 * trailing NUL Zephyr's mbedTLS wants; an identity without its NUL; a PSK as it is. */
static void credential_span(enum coap_client_tls_credential_type type, const uint8_t **data,
                            size_t *len) {
        const uint8_t *pem;

        if (type == COAP_CLIENT_TLS_CREDENTIAL_PSK)
                return;
        if (type != COAP_CLIENT_TLS_CREDENTIAL_PSK_ID) {
                pem = memmem(*data, *len, PEM_BEGIN, strlen(PEM_BEGIN));
                if (!pem)
                        return; /* DER */
                *len -= (size_t) (pem - *data);
                *data = pem;
        }
        while (*len > 0 && (*data)[*len - 1] == '\0')
                (*len)--;
}

_public_ int coap_client_tls_credential_add(int sec_tag, enum coap_client_tls_credential_type type,
                                            const void *cred, size_t credlen) {
        const uint8_t *data = cred;
        size_t len = credlen;
        Credential *c;
        int r = 0;

        if (sec_tag < 0 || !credential_type_valid(type) || !cred || credlen == 0 ||
            credlen > CREDENTIAL_MAX_LEN)
                return -EINVAL;
        credential_span(type, &data, &len);
        if (len == 0)
                return -EINVAL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->data = malloc(len);
        if (!c->data) {
                free(c);
                return -ENOMEM;
        }
        memcpy(c->data, data, len);
        c->len = len;
        c->tag = sec_tag;
        c->type = type;

        LIB_LOCK();
        if (*credential_find_locked(sec_tag, type))
                r = -EEXIST;
        else {
                c->next = credentials;
                credentials = TAKE_PTR(c);
        }
        LIB_UNLOCK();
        credential_free(c);
        return r;
}

_public_ int coap_client_tls_credential_delete(int sec_tag,
                                               enum coap_client_tls_credential_type type) {
        Credential **p, *c = NULL;

        if (sec_tag < 0 || !credential_type_valid(type))
                return -EINVAL;
        LIB_LOCK();
        p = credential_find_locked(sec_tag, type);
        if (*p) {
                c = *p;
                *p = c->next;
        }
        LIB_UNLOCK();
        if (!c)
                return -ENOENT;
        credential_free(c);
        return 0;
}

/* At exit (or dlclose()): no copy of a key outlives the process image. */
__attribute__((destructor)) static void credentials_wipe(void) {
        LIB_LOCK();
        while (credentials) {
                Credential *c = credentials;

                credentials = c->next;
                credential_free(c);
        }
        LIB_UNLOCK();
}

int client_tls_new(const int *sec_tags, size_t n, const char *hostname, int flags,
                   ClientTls **ret) {
        ClientTls *t;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->flags = flags;
        t->sec_tags = n > 0 ? malloc(n * sizeof(int)) : NULL;
        t->hostname = hostname ? strdup(hostname) : NULL;
        if ((n > 0 && !t->sec_tags) || (hostname && !t->hostname)) {
                client_tls_free(t);
                return -ENOMEM;
        }
        /* A tag listed twice counts once. */
        for (size_t i = 0; i < n; i++) {
                bool seen = false;

                for (size_t j = 0; j < t->n_sec_tags; j++)
                        seen = seen || t->sec_tags[j] == sec_tags[i];
                if (!seen)
                        t->sec_tags[t->n_sec_tags++] = sec_tags[i];
        }
        *ret = t;
        return 0;
}

ClientTls *client_tls_free(ClientTls *t) {
        if (!t)
                return NULL;
        free(t->sec_tags);
        free(t->hostname);
        free(t);
        return NULL;
}

/* The credentials of t's tags, and the mode they make. */
typedef struct TlsSet {
        const char *type; /* "psk", "x509", "rpk" */
        const Credential *cert, *key, *psk, *psk_id, *rpk;
        size_t n_ca;
} TlsSet;

static int tls_resolve_locked(const ClientTls *t, TlsSet *ret) {
        const Credential *found[COAP_CLIENT_TLS_CREDENTIAL_RAW_PUBLIC_KEY + 1] = {};
        TlsSet s = {};

        for (size_t i = 0; i < t->n_sec_tags; i++) {
                bool any = false;

                for (const Credential *c = credentials; c; c = c->next) {
                        if (c->tag != t->sec_tags[i])
                                continue;
                        any = true;
                        if (c->type == COAP_CLIENT_TLS_CREDENTIAL_CA_CERTIFICATE)
                                s.n_ca++;
                        else if (!found[c->type])
                                found[c->type] = c;
                }
                if (!any)
                        return -ENOENT;
        }
        s.cert = found[COAP_CLIENT_TLS_CREDENTIAL_SERVER_CERTIFICATE];
        s.key = found[COAP_CLIENT_TLS_CREDENTIAL_PRIVATE_KEY];
        s.psk = found[COAP_CLIENT_TLS_CREDENTIAL_PSK];
        s.psk_id = found[COAP_CLIENT_TLS_CREDENTIAL_PSK_ID];
        s.rpk = found[COAP_CLIENT_TLS_CREDENTIAL_RAW_PUBLIC_KEY];

        if (s.psk || s.psk_id) {
                if (!s.psk || !s.psk_id)
                        return -EINVAL;
                s.type = "psk";
        } else if (s.rpk || (s.key && !s.cert && s.n_ca == 0)) {
                if (!s.key || (!s.rpk && !(t->flags & COAP_CLIENT_TLS_INSECURE)))
                        return -EINVAL;
                s.type = "rpk";
        } else {
                if (!s.cert != !s.key)
                        return -EINVAL;
                s.type = "x509";
        }
        *ret = s;
        return 0;
}

int client_tls_check_locked(const ClientTls *t) {
        TlsSet s;

        return tls_resolve_locked(t, &s);
}

static bool is_pem(const Credential *c) {
        return c->len >= strlen(PEM_BEGIN) && memcmp(c->data, PEM_BEGIN, strlen(PEM_BEGIN)) == 0;
}

/* A DER certificate as PEM, so that several CAs can travel as one PEM list. */
static size_t der_to_pem(const uint8_t *der, size_t len, char *out) {
        static const char b64[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        static const char begin[] = "-----BEGIN CERTIFICATE-----\n",
                          end[] = "-----END CERTIFICATE-----\n";
        size_t o = 0, line = 0;

        memcpy(out, begin, strlen(begin));
        o += strlen(begin);
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) der[i] << 16;

                if (i + 1 < len)
                        v |= (uint32_t) der[i + 1] << 8;
                if (i + 2 < len)
                        v |= der[i + 2];
                out[o++] = b64[(v >> 18) & 0x3f];
                out[o++] = b64[(v >> 12) & 0x3f];
                out[o++] = i + 1 < len ? b64[(v >> 6) & 0x3f] : '=';
                out[o++] = i + 2 < len ? b64[v & 0x3f] : '=';
                line += 4;
                if (line == 64 || i + 3 >= len) {
                        out[o++] = '\n';
                        line = 0;
                }
        }
        memcpy(out + o, end, strlen(end));
        return o + strlen(end);
}

/* Every CA certificate of t's tags, in tag order. One is passed as it is (PEM or DER); several
 * become one PEM list. */
static int tls_ca_locked(const ClientTls *t, const TlsSet *s, uint8_t **ret, size_t *ret_len) {
        size_t size = 0, len = 0;
        uint8_t *buf;

        *ret = NULL;
        *ret_len = 0;
        for (size_t i = 0; i < t->n_sec_tags; i++) {
                const Credential *c = *credential_find_locked(
                        t->sec_tags[i], COAP_CLIENT_TLS_CREDENTIAL_CA_CERTIFICATE);

                /* base64 with line breaks, the armour lines and a newline */
                if (c)
                        size += c->len / 3 * 4 + c->len / 48 + 128;
        }
        if (s->n_ca == 0)
                return 0;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_sec_tags; i++) {
                const Credential *c = *credential_find_locked(
                        t->sec_tags[i], COAP_CLIENT_TLS_CREDENTIAL_CA_CERTIFICATE);

                if (!c)
                        continue;
                if (s->n_ca == 1 || is_pem(c)) {
                        memcpy(buf + len, c->data, c->len);
                        len += c->len;
                        /* PEM blocks on lines of their own; DER is alone. */
                        if (is_pem(c) && c->data[c->len - 1] != '\n')
                                buf[len++] = '\n';
                } else
                        len += der_to_pem(c->data, c->len, (char *) buf + len);
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

/* A sealed memfd holding the secret: coapclientd can trust that nobody changes it afterwards,
 * and the key never sits in a bus message. */
static int secret_memfd(const Credential *c) {
        _cleanup_close_ int fd = -EBADF;
        size_t done = 0;

        fd = memfd_create("coapclient-secret", MFD_ALLOW_SEALING | MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        while (c && done < c->len) {
                ssize_t n = write(fd, c->data + done, c->len - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                done += (size_t) n;
        }
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static int append_bytes(sd_bus_message *m, const char *key, const void *data, size_t len) {
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", key);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'v', "ay");
        if (r < 0)
                return r;
        r = sd_bus_message_append_array(m, 'y', data, len);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static int append_credential(sd_bus_message *m, const char *key, const Credential *c) {
        return c ? append_bytes(m, key, c->data, c->len) : 0;
}

int client_tls_append_locked(sd_bus_message *m, const ClientTls *t) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *ca = NULL;
        size_t ca_len;
        TlsSet s;
        int r;

        r = tls_resolve_locked(t, &s);
        if (r < 0)
                return r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "{sv}", "type", "s", s.type);
        if (r < 0)
                return r;
        if (strcmp(s.type, "psk") == 0) {
                r = append_credential(m, "psk-identity", s.psk_id);
                if (r < 0)
                        return r;
        } else if (strcmp(s.type, "rpk") == 0) {
                r = append_credential(m, "server-public-key", s.rpk);
                if (r < 0)
                        return r;
        } else {
                r = tls_ca_locked(t, &s, &ca, &ca_len);
                if (r < 0)
                        return r;
                if (ca) {
                        r = append_bytes(m, "ca", ca, ca_len);
                        if (r < 0)
                                return r;
                }
                r = append_credential(m, "certificate", s.cert);
                if (r < 0)
                        return r;
                if (t->hostname) {
                        r = sd_bus_message_append(m, "{sv}", "server-name", "s", t->hostname);
                        if (r < 0)
                                return r;
                }
        }
        /* A PSK authenticates both sides: there is nothing to skip. */
        if ((t->flags & COAP_CLIENT_TLS_INSECURE) && strcmp(s.type, "psk") != 0) {
                r = sd_bus_message_append(m, "{sv}", "insecure", "b", 1);
                if (r < 0)
                        return r;
        }
        if (t->handshake_timeout_ms > 0) {
                r = sd_bus_message_append(m, "{sv}", "handshake-timeout", "u",
                                          t->handshake_timeout_ms);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;

        fd = secret_memfd(strcmp(s.type, "psk") == 0 ? s.psk : s.key);
        if (fd < 0)
                return fd;
        /* sd-bus duplicates the fd. */
        return sd_bus_message_append(m, "h", fd);
}
