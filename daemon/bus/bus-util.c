/* SPDX-License-Identifier: MIT */
#include "bus/bus-util.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "internal/bus-api.h"

int bus_message_enter_variant_of(sd_bus_message *m, const char *key, const char *signature,
                                 const char *error_name, const char *what, sd_bus_error *error) {
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (type != SD_BUS_TYPE_VARIANT || !contents || strcmp(contents, signature) != 0)
                return sd_bus_error_setf(
                        error, error_name, "%c%s key '%s' must be of type '%s', got '%s'.",
                        toupper((unsigned char) what[0]), what + 1, key, signature, contents ?: "");
        return sd_bus_message_enter_container(m, SD_BUS_TYPE_VARIANT, signature);
}

int bus_dict_entry_read_key(sd_bus_message *m, const BusDictKey *keys, size_t n_keys,
                            uint32_t *seen, const char *error_name, const char *what,
                            sd_bus_error *error) {
        const char *key;
        size_t i;
        int r;

        assert(n_keys <= 32);
        r = sd_bus_message_read(m, "s", &key);
        if (r < 0)
                return r;
        for (i = 0; i < n_keys; i++)
                if (strcmp(key, keys[i].key) == 0)
                        break;
        if (i == n_keys)
                return sd_bus_error_setf(error, error_name, "Unknown %s key '%s'.", what, key);
        if (*seen & (UINT32_C(1) << i))
                return sd_bus_error_setf(error, error_name, "%c%s key '%s' given twice.",
                                         toupper((unsigned char) what[0]), what + 1, key);
        *seen |= UINT32_C(1) << i;
        if (keys[i].signature) {
                r = bus_message_enter_variant_of(m, key, keys[i].signature, error_name, what,
                                                 error);
                if (r < 0)
                        return r;
        }
        return (int) i;
}
