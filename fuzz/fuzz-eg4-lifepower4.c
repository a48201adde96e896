/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the EG4 LifePower4 BMS input (protocols/eg4_lifepower4.c),
 * its ->frame() and ->decode() on any bytes (the checks: fuzz/fuzz-ydt1363.h).
 */
#include <stddef.h>
#include <stdint.h>

#include "bms_serial.h"
#include "fuzz-ydt1363.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return ydt_fuzz_one(&eg4_lifepower4_serial, data, size);
}
