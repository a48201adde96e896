/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the Daly UART serial ops (protocols/daly.c) on outside bytes, the way
 * the generic serial engine drives them (fuzz-serial-binary.h), 0x95 / 0x96 as several-frame
 * answers: up to 32 cells and 8 sensors.
 */
#include <stddef.h>
#include <stdint.h>

#include "bms_serial.h"
#include "fuzz-serial-binary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return serial_fuzz_one(&daly_serial, BATTERY_CELLS_MAX, BATTERY_TEMPS_MAX, data, size);
}
