/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the JBD / LLT serial ops (protocols/jbd.c) on outside bytes, the way
 * the generic serial engine drives them (fuzz-serial-binary.h).
 */
#include <stddef.h>
#include <stdint.h>

#include "bms_serial.h"
#include "fuzz-serial-binary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return serial_fuzz_one(&jbd_serial, BATTERY_CELLS_MAX, BATTERY_TEMPS_MAX, data, size);
}
