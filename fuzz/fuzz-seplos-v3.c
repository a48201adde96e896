/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the Seplos V3 serial ops (protocols/seplos_v3.c) on outside bytes, the way
 * the generic serial engine drives them (fuzz-serial-binary.h).
 */
#include <stddef.h>
#include <stdint.h>

#include "bms_serial.h"
#include "fuzz-serial-binary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return serial_fuzz_one(&seplos_v3_serial, 16, 4, data, size);
}
