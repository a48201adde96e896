/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The pure halves (struct bms_serial_ops, include/bms.h) of the polled
 * serial BMS families, for the generic serial engine, the tests and the
 * fuzzers. One line per family.
 */
#include "bms.h"

extern const struct bms_serial_ops pylontech_rs485_bms_serial; /* protocols/pylontech_rs485.c */
extern const struct bms_serial_ops seplos_v2_serial;	       /* protocols/seplos_v2.c */
extern const struct bms_serial_ops pace_serial;		       /* protocols/pace.c */
extern const struct bms_serial_ops jbd_serial;		       /* protocols/jbd.c */
extern const struct bms_serial_ops daly_serial;		       /* protocols/daly.c */
extern const struct bms_serial_ops seplos_v3_serial;	       /* protocols/seplos_v3.c */
