/* SPDX-License-Identifier: MIT */
#pragma once

/* The libFuzzer entry point every fuzz-<name>.c defines; fuzz-main.c replays files through it. */

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
