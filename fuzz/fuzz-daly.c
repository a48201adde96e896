/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the Daly UART serial ops (protocols/daly.c) on outside bytes, the way
 * the generic serial engine drives them (fuzz-serial-binary.h). Daly: extremes only, no lists.
 */
#include <stddef.h>
#include <stdint.h>

#include "bms_serial.h"
#include "fuzz-serial-binary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return serial_fuzz_one(&daly_serial, 0, 0, data, size);
}
