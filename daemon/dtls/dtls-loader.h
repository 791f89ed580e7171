/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's dtls.h: the functions of DtlsModule (dtls-module.h), forwarded to
 * coapclientd-dtls.so, which is dlopen()ed (RTLD_NOW | RTLD_LOCAL) on first use and never
 * unloaded. GnuTLS and the libraries under it cost about 2.5 MiB of RSS from start-up on; a
 * daemon that does no DTLS never maps them.
 *
 * Where from: coapclientd-dtls.so in the directory of the running executable if it is there (the
 * build tree), else the path compiled in (DTLS_MODULE_PATH, the installed module). Never from
 * the environment: a system service must not run code its environment chooses. */

#include "dtls.h"

/* Loads the module unless done: 0, or -ELIBACC when it cannot be loaded. The first failure is
 * logged at warning level with dlerror()'s text and is final; the dtls_credentials_new_*() and
 * dtls_sha256() wrappers then return -ELIBACC too. The other wrappers take an object that only
 * a loaded module can have made. */
int dtls_loader_load(void);
