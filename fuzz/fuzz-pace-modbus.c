/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the Pace Modbus serial ops (protocols/pace_modbus.c) on outside bytes,
 * the way the generic serial engine drives them (fuzz-serial-binary.h): 16 cells, 4 sensors.
 */
#include <stddef.h>
#include <stdint.h>

#include "bms_serial.h"
#include "fuzz-serial-binary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return serial_fuzz_one(&pace_modbus_serial, 16, 4, data, size);
}
