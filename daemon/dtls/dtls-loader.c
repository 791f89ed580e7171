/* SPDX-License-Identifier: MIT */
#include "dtls-loader.h"

#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "dtls-module.h"
#include "util/log.h"

static const DtlsModule *module;
static bool module_failed;

/* The build tree's module next to the executable, else the installed one. */
static const char *module_path(char buf[static PATH_MAX]) {
        ssize_t n;
        char *slash;

        n = readlink("/proc/self/exe", buf, PATH_MAX - 1);
        if (n <= 0)
                return DTLS_MODULE_PATH;
        buf[n] = '\0';
        slash = strrchr(buf, '/');
        if (!slash || (size_t) (slash + 1 - buf) + strlen(DTLS_MODULE_FILE) >= PATH_MAX)
                return DTLS_MODULE_PATH;
        strcpy(slash + 1, DTLS_MODULE_FILE);
        return access(buf, F_OK) >= 0 ? buf : DTLS_MODULE_PATH;
}

/* The failure is final: logged once. */
#define module_fail(...)                                                                       \
        (log_warning("DTLS unavailable, plain CoAP only: " __VA_ARGS__), module_failed = true, \
         -ELIBACC)

typedef const DtlsModule *(*DtlsModuleGet)(void);

int dtls_loader_load(void) {
        DtlsModuleGet get;
        const DtlsModule *m;
        char buf[PATH_MAX];
        const char *path;
        void *handle;

        if (module)
                return 0;
        if (module_failed)
                return -ELIBACC;

        path = module_path(buf);
        /* Never dlclose()d: GnuTLS cannot be unloaded safely. */
        handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!handle)
                return module_fail("%s", dlerror()); /* it names the file */
        get = (DtlsModuleGet) dlsym(handle, DTLS_MODULE_SYMBOL);
        if (!get)
                return module_fail("%s", dlerror());
        m = get();
        if (m->size != sizeof(DtlsModule) || strcmp(m->version, PACKAGE_VERSION) != 0)
                return module_fail("%s is from another version of coapclientd", path);
        log_debug("Loaded %s", path);
        module = m;
        return 0;
}

int dtls_sha256(const struct iovec *iov, size_t n_iov, uint8_t ret[DTLS_SHA256_SIZE]) {
        int r = dtls_loader_load();

        return r < 0 ? r : module->sha256(iov, n_iov, ret);
}

int dtls_credentials_new_psk(const char *identity, const void *key, size_t key_len,
                             DtlsCredentials **ret) {
        int r = dtls_loader_load();

        return r < 0 ? r : module->credentials_new_psk(identity, key, key_len, ret);
}

int dtls_credentials_new_x509(const void *ca, size_t ca_len, const char *server_name,
                              DtlsCredentialsFlags flags, DtlsCredentials **ret) {
        int r = dtls_loader_load();

        return r < 0 ? r : module->credentials_new_x509(ca, ca_len, server_name, flags, ret);
}

int dtls_credentials_new_rpk(const void *key, size_t key_len, const void *server_pubkey,
                             size_t server_pubkey_len, DtlsCredentialsFlags flags,
                             DtlsCredentials **ret) {
        int r = dtls_loader_load();

        return r < 0 ? r
                     : module->credentials_new_rpk(key, key_len, server_pubkey, server_pubkey_len,
                                                   flags, ret);
}

/* Below: the argument was made by the module, so it is loaded (NULL-safe frees excepted). */

int dtls_credentials_set_client_cert(DtlsCredentials *c, const void *cert, size_t cert_len,
                                     const void *key, size_t key_len) {
        assert(module);
        return module->credentials_set_client_cert(c, cert, cert_len, key, key_len);
}

DtlsCredentials *dtls_credentials_unref(DtlsCredentials *c) {
        return c ? module->credentials_unref(c) : NULL;
}

const char *dtls_state_to_string(DtlsState s) {
        assert(module);
        return module->state_to_string(s);
}

int dtls_new(DtlsCredentials *c, const DtlsIo *io, Dtls **ret) {
        assert(module);
        return module->new (c, io, ret);
}

Dtls *dtls_free(Dtls *d) {
        return d ? module->free(d) : NULL;
}

size_t dtls_get_max_payload(Dtls *d) {
        assert(module);
        return module->get_max_payload(d);
}

int dtls_set_timeouts(Dtls *d, uint64_t retransmit_usec, uint64_t total_usec) {
        assert(module);
        return module->set_timeouts(d, retransmit_usec, total_usec);
}

int dtls_start(Dtls *d, uint64_t now) {
        assert(module);
        return module->start(d, now);
}

int dtls_feed(Dtls *d, const uint8_t *buf, size_t len, uint64_t now) {
        assert(module);
        return module->feed(d, buf, len, now);
}

int dtls_send(Dtls *d, const uint8_t *buf, size_t len) {
        assert(module);
        return module->send(d, buf, len);
}

uint64_t dtls_next_timeout(Dtls *d) {
        assert(module);
        return module->next_timeout(d);
}

int dtls_on_timeout(Dtls *d, uint64_t now) {
        assert(module);
        return module->on_timeout(d, now);
}

int dtls_close(Dtls *d) {
        assert(module);
        return module->close(d);
}

DtlsState dtls_get_state(Dtls *d) {
        assert(module);
        return module->get_state(d);
}

bool dtls_is_resumed(Dtls *d) {
        assert(module);
        return module->is_resumed(d);
}

int dtls_describe(Dtls *d, char **ret) {
        assert(module);
        return module->describe(d, ret);
}

const char *dtls_get_error_reason(Dtls *d) {
        assert(module);
        return module->get_error_reason(d);
}
