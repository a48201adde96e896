/* SPDX-License-Identifier: MIT */
/*
 * The one static registry of BMS drivers, sorted by name.
 */
#include <string.h>

#include "bms.h"
#include "macro.h"

extern const struct bms_driver jk_pb_modbus_bms_driver;
extern const struct bms_driver pylontech_can_bms_driver;
extern const struct bms_driver replay_bms_driver;
extern const struct bms_driver sim_bms_driver;

/* Keep sorted by name. */
static const struct bms_driver *const drivers[] = {
	&jk_pb_modbus_bms_driver,
	&pylontech_can_bms_driver,
	&replay_bms_driver,
	&sim_bms_driver,
};

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
