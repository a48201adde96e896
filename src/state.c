/* SPDX-License-Identifier: MIT */
/*
 * Helpers around struct battery_state: initialisation, freshness, extremes
 * and the stable names of the protocol-neutral bits (used in JSON, logs and
 * the man page).
 */
#include <string.h>

#include "battery.h"
#include "macro.h"

static void pack_reset(struct battery_pack *p)
{
	memset(p, 0, sizeof(*p));
	p->cell_min_idx = p->cell_max_idx = BATTERY_INDEX_NONE;
	p->temp_min_idx = p->temp_max_idx = BATTERY_INDEX_NONE;
	p->cell_min_pack = p->cell_max_pack = BATTERY_INDEX_NONE;
	p->temp_min_pack = p->temp_max_pack = BATTERY_INDEX_NONE;
	p->mosfet_temp_dc = BATTERY_TEMP_NONE;
}

void battery_pack_init(struct battery_pack *p)
{
	pack_reset(p);
}

void battery_state_init(struct battery_state *bs, unsigned pack_count)
{
	memset(bs, 0, sizeof(*bs));
	for (size_t i = 0; i < ARRAY_SIZE(bs->packs); i++) {
		pack_reset(&bs->packs[i]);
	}
	pack_reset(&bs->bank);
	bs->pack_count = (uint8_t)(pack_count < 1 ? 1 : pack_count > BATTERY_PACKS_MAX ? BATTERY_PACKS_MAX : pack_count);
}

uint64_t battery_pack_oldest_usec(const struct battery_pack *p, unsigned mask)
{
	uint64_t oldest = UINT64_MAX;

	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		if (!(mask & (1u << g))) {
			continue;
		}
		if (p->updated_usec[g] == BATTERY_NEVER) {
			return BATTERY_NEVER;
		}
		if (p->updated_usec[g] < oldest) {
			oldest = p->updated_usec[g];
		}
	}
	return oldest == UINT64_MAX ? BATTERY_NEVER : oldest;
}

void battery_pack_update_cell_extremes(struct battery_pack *p)
{
	unsigned n = p->cell_count > BATTERY_CELLS_MAX ? BATTERY_CELLS_MAX : p->cell_count;

	if (n == 0) {
		return;
	}
	p->cell_min_idx = p->cell_max_idx = 0;
	for (unsigned i = 1; i < n; i++) {
		if (p->cell_mv[i] < p->cell_mv[p->cell_min_idx]) {
			p->cell_min_idx = (uint8_t)i;
		}
		if (p->cell_mv[i] > p->cell_mv[p->cell_max_idx]) {
			p->cell_max_idx = (uint8_t)i;
		}
	}
	p->cell_min_mv = p->cell_mv[p->cell_min_idx];
	p->cell_max_mv = p->cell_mv[p->cell_max_idx];
}

void battery_pack_update_temp_extremes(struct battery_pack *p)
{
	unsigned n = p->temp_count > BATTERY_TEMPS_MAX ? BATTERY_TEMPS_MAX : p->temp_count;

	if (n == 0) {
		return;
	}
	p->temp_min_idx = p->temp_max_idx = 0;
	for (unsigned i = 1; i < n; i++) {
		if (p->temp_dc[i] < p->temp_dc[p->temp_min_idx]) {
			p->temp_min_idx = (uint8_t)i;
		}
		if (p->temp_dc[i] > p->temp_dc[p->temp_max_idx]) {
			p->temp_max_idx = (uint8_t)i;
		}
	}
	p->temp_min_dc = p->temp_dc[p->temp_min_idx];
	p->temp_max_dc = p->temp_dc[p->temp_max_idx];
}

/* Index = bit number. These names are stable: JSON, logs and man pages use them. */
static const char *const alarm_names[BATTERY_ALARM__COUNT] = {
	"cell_overvoltage",   "cell_undervoltage",     "pack_overvoltage",
	"pack_undervoltage",  "charge_overtemp",       "charge_undertemp",
	"discharge_overtemp", "discharge_undertemp",   "charge_overcurrent",
	"discharge_overcurrent", "short_circuit",      "mosfet_overtemp",
	"cell_imbalance",     "bms_internal",	       "bms_link_lost",
	"low_soc",	      "pack_offline",
};

static const char *const request_names[BATTERY_REQUEST__COUNT] = {
	"charge_enable", "discharge_enable", "force_charge", "force_charge_2", "full_charge",
};

static const char *const group_names[BATTERY_GROUP__COUNT] = {
	[BATTERY_GROUP_ELECTRICAL] = "electrical", [BATTERY_GROUP_CAPACITY] = "capacity",
	[BATTERY_GROUP_CELLS] = "cells",	   [BATTERY_GROUP_TEMPS] = "temps",
	[BATTERY_GROUP_LIMITS] = "limits",	   [BATTERY_GROUP_STATUS] = "status",
};

static const char *bit_name(const char *const *names, unsigned count, uint32_t bit)
{
	if (bit == 0 || (bit & (bit - 1)) != 0) {
		return NULL;
	}
	for (unsigned i = 0; i < count; i++) {
		if (bit == 1u << i) {
			return names[i];
		}
	}
	return NULL;
}

static uint32_t bit_from_name(const char *const *names, unsigned count, const char *name)
{
	for (unsigned i = 0; i < count; i++) {
		if (strcmp(names[i], name) == 0) {
			return 1u << i;
		}
	}
	return 0;
}

const char *battery_alarm_name(uint32_t bit)
{
	return bit_name(alarm_names, BATTERY_ALARM__COUNT, bit);
}

uint32_t battery_alarm_from_name(const char *name)
{
	return bit_from_name(alarm_names, BATTERY_ALARM__COUNT, name);
}

const char *battery_request_name(uint32_t bit)
{
	return bit_name(request_names, BATTERY_REQUEST__COUNT, bit);
}

uint32_t battery_request_from_name(const char *name)
{
	return bit_from_name(request_names, BATTERY_REQUEST__COUNT, name);
}

const char *battery_group_name(enum battery_group group)
{
	return (unsigned)group < BATTERY_GROUP__COUNT ? group_names[group] : NULL;
}
