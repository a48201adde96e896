/* SPDX-License-Identifier: MIT */
/*
 * The one static registry of BMS drivers, sorted by name.
 */
#include <string.h>

#include "bms.h"
#include "bms_serial.h"
#include "macro.h"

extern const struct bms_driver daly_can_bms_driver;
extern const struct bms_driver jk_pb_modbus_bms_driver;
extern const struct bms_driver pylontech_can_bms_driver;
extern const struct bms_driver replay_bms_driver;
extern const struct bms_driver sim_bms_driver;

/*
 * The polled serial families: their pure halves live in their own files
 * (include/bms_serial.h), the generic exchange engine of src/ drives them.
 * The address range is the ops' and the baud their .baud (each cited in
 * its file; a unit test checks the two agree). Only Pylontech sends
 * limits (0x92); the others say no_limits (see each file's header).
 */
#define SERIAL_DRIVER(n, desc, ops_, baud_, no_limits_)                                            \
	{                                                                                          \
		.name = (n), .description = (desc), .transport = BMS_TRANSPORT_SERIAL,             \
		.baud = (baud_), .serial = &(ops_), .no_limits = (no_limits_),                     \
	}

static const struct bms_driver daly_bms_driver = SERIAL_DRIVER(
	"daly", "Daly BMS on UART/RS485 (0xA5 frames, boards 1-15)", daly_serial, 9600, true);
static const struct bms_driver eg4_lifepower4_bms_driver = SERIAL_DRIVER(
	"eg4-lifepower4", "EG4 LifePower4 on RS485 (~...CR ASCII, CID1 0x4A, DIP address 1-15)",
	eg4_lifepower4_serial, 9600, true);
static const struct bms_driver eg4_ll_bms_driver =
	SERIAL_DRIVER("eg4-ll", "EG4-LL rack pack on RS485 (Modbus RTU V01.06, DIP address 1-16)",
		      eg4_ll_serial, 9600, true);
static const struct bms_driver jbd_bms_driver =
	SERIAL_DRIVER("jbd", "JBD / LLT (Xiaoxiang, Overkill) on UART/RS485, one BMS per port",
		      jbd_serial, 9600, true);
static const struct bms_driver pace_bms_driver =
	SERIAL_DRIVER("pace", "Pace BMS on RS485/RS232 (~...CR ASCII, switch address 0-15)",
		      pace_serial, 9600, true);
static const struct bms_driver pace_modbus_bms_driver = SERIAL_DRIVER(
	"pace-modbus", "Pace BMS on RS485 with its Modbus firmware (DIP address 1-15)",
	pace_modbus_serial, 9600, true);
static const struct bms_driver pylontech_rs485_bms_driver = SERIAL_DRIVER(
	"pylontech-rs485", "Pylontech stack on RS485 (V3.3 ~...CR ASCII, ADR 0x02-0x10)",
	pylontech_rs485_bms_serial, 9600, false);
static const struct bms_driver seplos_v2_bms_driver =
	SERIAL_DRIVER("seplos-v2", "Seplos V2 BMS on RS485 (~...CR ASCII, DIP address 0-15)",
		      seplos_v2_serial, 9600, true);
static const struct bms_driver seplos_v3_bms_driver =
	SERIAL_DRIVER("seplos-v3", "Seplos V3 BMS on RS485 (Modbus RTU, address 0-127)",
		      seplos_v3_serial, 19200, true);

/* Keep sorted by name. One line each. */
/* clang-format off */
static const struct bms_driver *const drivers[] = {
	&daly_bms_driver,
	&daly_can_bms_driver,
	&eg4_lifepower4_bms_driver,
	&eg4_ll_bms_driver,
	&jbd_bms_driver,
	&jk_pb_modbus_bms_driver,
	&pace_bms_driver,
	&pace_modbus_bms_driver,
	&pylontech_can_bms_driver,
	&pylontech_rs485_bms_driver,
	&replay_bms_driver,
	&seplos_v2_bms_driver,
	&seplos_v3_bms_driver,
	&sim_bms_driver,
};
/* clang-format on */

const struct bms_driver *bms_driver_get(size_t i)
{
	return i < ARRAY_SIZE(drivers) ? drivers[i] : NULL;
}

const struct bms_driver *bms_driver_find(const char *name)
{
	const struct bms_driver *d;

	for (size_t i = 0; (d = bms_driver_get(i)); i++) {
		if (strcmp(d->name, name) == 0) {
			return d;
		}
	}
	return NULL;
}
