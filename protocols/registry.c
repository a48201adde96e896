/* SPDX-License-Identifier: MIT */
/*
 * The one static registry of inverter protocols (house style H7): a sorted
 * array of const ops structs, looked up by the config's `protocol =` value,
 * and the brand aliases that select one of them.
 */
#include <string.h>

#include "macro.h"
#include "protocol.h"

extern const struct inverter_protocol deye_protocol;
extern const struct inverter_protocol growatt_protocol;
extern const struct inverter_protocol luxpower_protocol;
extern const struct inverter_protocol pylontech_protocol;
extern const struct inverter_protocol pylontech_rs485_protocol;
extern const struct inverter_protocol victron_protocol;

/* Keep sorted by name. One line per protocol file in protocols/. */
static const struct inverter_protocol *const protocols[] = {
	&deye_protocol,
	&growatt_protocol,
	&luxpower_protocol,
	&pylontech_protocol,
	&pylontech_rs485_protocol,
	&victron_protocol,
};

/* Brands that use another brand's protocol unchanged. */
static const struct protocol_alias aliases[] = {
	{ .name = "goodwe", .target = "pylontech", .note = "Goodwe speaks Pylontech CAN" },
	{ .name = "sofar", .target = "pylontech", .note = "Sofar speaks Pylontech CAN" },
};

const struct inverter_protocol *protocol_get(size_t i)
{
	return i < ARRAY_SIZE(protocols) ? protocols[i] : NULL;
}

const struct protocol_alias *protocol_alias_get(size_t i)
{
	return i < ARRAY_SIZE(aliases) ? &aliases[i] : NULL;
}

const struct inverter_protocol *protocol_find(const char *name)
{
	const struct inverter_protocol *p;

	for (size_t i = 0; i < ARRAY_SIZE(aliases); i++) {
		if (strcmp(aliases[i].name, name) == 0) {
			name = aliases[i].target;
			break;
		}
	}
	for (size_t i = 0; (p = protocol_get(i)); i++) {
		if (strcmp(p->name, name) == 0) {
			return p;
		}
	}
	return NULL;
}
