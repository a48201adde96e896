/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The pure halves (struct bms_serial_ops, bms.h) of the polled serial BMS
 * families, one per protocols/<family>.c, for the generic serial engine.
 */
#include "bms.h"

extern const struct bms_serial_ops jbd_serial;
extern const struct bms_serial_ops daly_serial;
extern const struct bms_serial_ops seplos_v3_serial;
