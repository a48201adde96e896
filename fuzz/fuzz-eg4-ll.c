/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the EG4-LL serial ops (protocols/eg4_ll.c) on outside bytes, the way
 * the generic serial engine drives them (fuzz-serial-binary.h): 16 cells, 6 sensors.
 */
#include <stddef.h>
#include <stdint.h>

#include "bms_serial.h"
#include "fuzz-serial-binary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return serial_fuzz_one(&eg4_ll_serial, 16, 6, data, size);
}
