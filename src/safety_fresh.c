/* SPDX-License-Identifier: MIT */
/*
 * The safety layer, step 2: freshness (src/safety_internal.h).
 * Pure: no I/O, no clock, no logging, no allocation.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "battery.h"
#include "macro.h"
#include "safety.h"
#include "safety_internal.h"

/* ---- 2. freshness -------------------------------------------------------- */

/*
 * A pack is online when every group the inverter needs, and every group
 * it has ever sent, is younger than stale_timeout and holds a good value.
 * Groups a BMS never sends (a Pylontech BMS has no cell list) do not hold
 * a pack back; a group that stops arriving does.
 */
bool safety_pack_online(const struct safety *s, const struct safety_pack *pk, uint64_t now,
			const char **ret_missing)
{
	unsigned mask = REQUIRED_GROUPS | pk->seen_mask;

	for (unsigned grp = 0; grp < BATTERY_GROUP__COUNT; grp++) {
		uint64_t age = battery_pack_age_usec(&pk->good, (enum battery_group)grp, now);

		if (!(mask & (1u << grp))) {
			continue;
		}
		if (age > s->cfg.stale_timeout_usec) {
			*ret_missing = battery_group_name((enum battery_group)grp);
			return false;
		}
	}
	if (((pk->seen_mask & (1u << BATTERY_GROUP_CELLS)) && !pk->have_cells) ||
	    !pk->have_voltage || !pk->have_soc ||
	    ((pk->seen_mask & (1u << BATTERY_GROUP_TEMPS)) && !pk->have_temps)) {
		*ret_missing = "a plausible value";
		return false;
	}
	return true;
}
