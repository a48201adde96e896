/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the Seplos V2 BMS input (protocols/seplos_v2.c), its ->frame() and ->decode() on any bytes
 * (the checks: fuzz/fuzz-ydt1363.h).
 */
#include <stddef.h>
#include <stdint.h>

#include "bms_serial.h"
#include "fuzz-ydt1363.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return ydt_fuzz_one(&seplos_v2_serial, data, size);
}
