/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the Pace V2.5 BMS input (protocols/pace.c), its ->frame() and ->decode() on any bytes
 * (the checks: fuzz/fuzz-ydt1363.h).
 */
#include <stddef.h>
#include <stdint.h>

#include "bms_serial.h"
#include "fuzz-ydt1363.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return ydt_fuzz_one(&pace_serial, data, size);
}
