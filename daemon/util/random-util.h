/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/* Kernel randomness (getrandom), buffered. Falls back to a time-seeded generator only if the
 * kernel refuses, so the daemon never blocks or dies for want of tokens. */
uint64_t random_u64(void);
