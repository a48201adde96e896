/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * struct battery_state as JSON (json-c), both ways, for bmsbridgectl and
 * the tests. One object per pack, one sub-object per field group; a group
 * never received is null, so "never" and "zero" stay apart:
 *
 *   { "pack_count": 1, "packs_online": 1,
 *     "bank": { "electrical": { "voltage_mv": 53200, "current_ma": -2700 },
 *               "capacity": null, ... },
 *     "packs": [ { ... } ] }
 *
 * Groups and keys (units in the names, as in include/battery.h):
 *   electrical: voltage_mv, current_ma (+ charging)
 *   capacity:   soc_pct, soh_pct, remaining_mah, full_mah, cycles
 *   cells:      cell_mv [...], cell_min_mv, cell_max_mv, cell_min_idx, cell_max_idx,
 *               cell_min_pack, cell_max_pack (the bank: which pack has the extreme)
 *   temps:      temp_dc [...], temp_min_dc, temp_max_dc, temp_min_idx, temp_max_idx,
 *               temp_min_pack, temp_max_pack, mosfet_temp_dc (null: no sensor)
 *   limits:     charge_voltage_limit_mv, discharge_voltage_limit_mv,
 *               charge_current_limit_ma, discharge_current_limit_ma
 *   status:     alarms [names], warnings [names], requests [names]
 * Indexes are 0-based; alarm and request names are battery_alarm_name()'s.
 */
#include <stddef.h>
#include <stdint.h>

#include "battery.h"

struct json_object;

/**
 * battery_pack_to_json() - one pack as a new JSON object (NULL: no memory).
 */
struct json_object *battery_pack_to_json(const struct battery_pack *p);

/**
 * battery_state_to_json() - the whole state; packs[0..pack_count-1].
 */
struct json_object *battery_state_to_json(const struct battery_state *bs);

/**
 * battery_state_from_json() - read a state written in the format above.
 * Strict: unknown keys, wrong types and out-of-range values are errors.
 * Groups present are marked received at @now_usec; absent or null ones
 * stay "never". A state with "packs" but no "bank" gets packs[0] as its
 * bank (single-pack states stay short); one with only "bank" has one pack,
 * a copy of it. Cell and temperature extremes left out are computed.
 * @err: "packs[0].cells.cell_mv[3]: 70000 is out of range [0, 65535]"
 * Return: 0, or -EINVAL (@err says why).
 */
int battery_state_from_json(const char *text, uint64_t now_usec, struct battery_state *bs,
			    char *err, size_t n);
