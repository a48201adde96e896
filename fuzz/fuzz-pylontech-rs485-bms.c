/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the Pylontech RS485 BMS input (protocols/pylontech_rs485.c), its ->frame() and ->decode() on any bytes
 * (the checks: fuzz/fuzz-ydt1363.h).
 */
#include <stddef.h>
#include <stdint.h>

#include "bms_serial.h"
#include "fuzz-ydt1363.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return ydt_fuzz_one(&pylontech_rs485_bms_serial, data, size);
}
