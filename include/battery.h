/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The normalised battery state: what every BMS decoder writes and every
 * inverter encoder reads.
 *
 * Integers only, the unit in the field name:
 *   _mv millivolt, _ma milliampere, _mah milliampere-hour, _dc 0.1 degC,
 *   _pct percent, _usec CLOCK_MONOTONIC microseconds.
 *
 * Sign convention: current_ma is positive while the battery is CHARGING and
 * negative while it is discharging (the Pylontech/Victron convention).
 * Limits are magnitudes: discharge_current_limit_ma = 100000 means the
 * battery may deliver up to 100 A.
 *
 * Fields come in groups (enum battery_group); each group carries the
 * monotonic time it was last written in updated_usec[group]. 0 means "never
 * received": a decoder that fills a group must call battery_pack_mark(), and
 * nothing may be evaluated on a group whose time is 0. Index fields are
 * 0-based (cell 0 is the first cell); encoders add 1 where a protocol counts
 * from 1.
 *
 * struct battery_state holds what the BMS side said, one struct
 * battery_pack per pack (packs[]), and what the inverter is told (bank),
 * which the safety layer computes from the packs. Encoders read only bank,
 * pack_count and packs_online.
 */
#include <stdbool.h>
#include <stdint.h>

#define BATTERY_CELLS_MAX 32 /* JK-PB: up to 24 cells, JK02 layout: 32 */
#define BATTERY_TEMPS_MAX 8
#define BATTERY_PACKS_MAX 15 /* JK-PB DIP addresses 1-15 */

/* 0 in updated_usec[]: the group was never received */
#define BATTERY_NEVER UINT64_C(0)
/* index fields: no such cell/sensor */
#define BATTERY_INDEX_NONE UINT8_MAX
/* mosfet_temp_dc when the BMS has no MOSFET sensor */
#define BATTERY_TEMP_NONE INT16_MIN

enum battery_group {
	BATTERY_GROUP_ELECTRICAL, /* voltage_mv, current_ma */
	BATTERY_GROUP_CAPACITY,	  /* soc, soh, remaining/full capacity, cycles */
	BATTERY_GROUP_CELLS,	  /* cell_count, cell_mv[], cell extremes */
	BATTERY_GROUP_TEMPS,	  /* temp_count, temp_dc[], extremes, mosfet */
	BATTERY_GROUP_LIMITS,	  /* CVL, DVL, CCL, DCL */
	BATTERY_GROUP_STATUS,	  /* alarms, warnings, requests */
	BATTERY_GROUP__COUNT,
};

/*
 * Protocol-neutral alarm and warning bits. The same enum serves both sets:
 * an alarm (protection active) in battery_pack.alarms, a warning (approaching
 * a limit) in battery_pack.warnings. Each encoder maps these to its own bits;
 * the mapping tables are in bmsbridge-protocols(7).
 */
enum battery_alarm {
	BATTERY_ALARM_CELL_OVERVOLTAGE = 1u << 0,
	BATTERY_ALARM_CELL_UNDERVOLTAGE = 1u << 1,
	BATTERY_ALARM_PACK_OVERVOLTAGE = 1u << 2,
	BATTERY_ALARM_PACK_UNDERVOLTAGE = 1u << 3,
	BATTERY_ALARM_CHARGE_OVERTEMP = 1u << 4,
	BATTERY_ALARM_CHARGE_UNDERTEMP = 1u << 5,
	BATTERY_ALARM_DISCHARGE_OVERTEMP = 1u << 6,
	BATTERY_ALARM_DISCHARGE_UNDERTEMP = 1u << 7,
	BATTERY_ALARM_CHARGE_OVERCURRENT = 1u << 8,
	BATTERY_ALARM_DISCHARGE_OVERCURRENT = 1u << 9,
	BATTERY_ALARM_SHORT_CIRCUIT = 1u << 10,
	BATTERY_ALARM_MOSFET_OVERTEMP = 1u << 11,
	BATTERY_ALARM_CELL_IMBALANCE = 1u << 12,
	BATTERY_ALARM_BMS_INTERNAL = 1u << 13,	/* BMS reports its own fault */
	BATTERY_ALARM_BMS_LINK_LOST = 1u << 14, /* set by the safety layer only */
	BATTERY_ALARM_LOW_SOC = 1u << 15,
	BATTERY_ALARM_PACK_OFFLINE = 1u << 16, /* one pack of a bank is silent */
};
#define BATTERY_ALARM__COUNT 17
#define BATTERY_ALARM__ALL ((1u << BATTERY_ALARM__COUNT) - 1)

/* Request flags, battery_pack.requests. */
enum battery_request {
	BATTERY_REQUEST_CHARGE_ENABLE = 1u << 0,
	BATTERY_REQUEST_DISCHARGE_ENABLE = 1u << 1,
	BATTERY_REQUEST_FORCE_CHARGE = 1u << 2,	  /* "force charge I" */
	BATTERY_REQUEST_FORCE_CHARGE_2 = 1u << 3, /* "force charge II" */
	BATTERY_REQUEST_FULL_CHARGE = 1u << 4,
};
#define BATTERY_REQUEST__COUNT 5
#define BATTERY_REQUEST__ALL ((1u << BATTERY_REQUEST__COUNT) - 1)

struct battery_pack {
	uint64_t updated_usec[BATTERY_GROUP__COUNT]; /* 0 = never */

	/* BATTERY_GROUP_ELECTRICAL */
	uint32_t voltage_mv;
	int32_t current_ma; /* + charging, - discharging */

	/* BATTERY_GROUP_CAPACITY */
	uint8_t soc_pct;
	uint16_t soc_cpct; /* 0.01 % where the BMS says more: read it with battery_soc_cpct() */
	uint8_t soh_pct;
	uint32_t remaining_mah;
	uint32_t full_mah;
	uint32_t cycles;
	/*
	 * Cells in series as the BMS counts them, where it says so apart from
	 * a cell list (Daly 0x94): 0 unknown. Never a cell list: cell_count
	 * says how many cell_mv[] hold.
	 */
	uint8_t cell_series;

	/* BATTERY_GROUP_CELLS */
	uint8_t cell_count; /* entries valid in cell_mv[]; 0 if only extremes are known */
	uint16_t cell_mv[BATTERY_CELLS_MAX];
	uint16_t cell_min_mv;
	uint16_t cell_max_mv;
	uint8_t cell_min_idx; /* 0-based, BATTERY_INDEX_NONE if unknown */
	uint8_t cell_max_idx;
	uint8_t cell_min_pack; /* bank only: 0-based pack index of the extreme */
	uint8_t cell_max_pack;

	/* BATTERY_GROUP_TEMPS */
	uint8_t temp_count; /* entries valid in temp_dc[] */
	int16_t temp_dc[BATTERY_TEMPS_MAX];
	int16_t temp_min_dc;
	int16_t temp_max_dc;
	uint8_t temp_min_idx; /* 0-based sensor, BATTERY_INDEX_NONE if unknown */
	uint8_t temp_max_idx;
	uint8_t temp_min_pack; /* bank only */
	uint8_t temp_max_pack;
	int16_t mosfet_temp_dc; /* BATTERY_TEMP_NONE if the BMS has none */

	/* BATTERY_GROUP_LIMITS */
	uint32_t charge_voltage_limit_mv;    /* CVL */
	uint32_t discharge_voltage_limit_mv; /* DVL */
	uint32_t charge_current_limit_ma;    /* CCL */
	uint32_t discharge_current_limit_ma; /* DCL, a magnitude */

	/* BATTERY_GROUP_STATUS */
	uint32_t alarms;   /* enum battery_alarm bits */
	uint32_t warnings; /* enum battery_alarm bits */
	uint32_t requests; /* enum battery_request bits */
};

struct battery_state {
	uint8_t pack_count;   /* packs the BMS input reads (>= 1) */
	uint8_t packs_online; /* bank: packs whose data is fresh */
	struct battery_pack packs[BATTERY_PACKS_MAX];
	struct battery_pack bank; /* what the inverter is told */
};

/**
 * battery_pack_init() - reset a pack to "never received".
 * @p: the pack
 */
void battery_pack_init(struct battery_pack *p);

/**
 * battery_state_init() - reset the whole state to "never received".
 * @bs: the state
 * @pack_count: packs the input reads, 1..BATTERY_PACKS_MAX (clamped)
 */
void battery_state_init(struct battery_state *bs, unsigned pack_count);

/**
 * battery_pack_mark() - record that @group was written at @now_usec.
 * @p: the pack
 * @group: the group the caller just filled
 * @now_usec: CLOCK_MONOTONIC time, never 0
 */
static inline void battery_pack_mark(struct battery_pack *p, enum battery_group group,
				     uint64_t now_usec)
{
	p->updated_usec[group] = now_usec ? now_usec : 1;
}

/**
 * battery_pack_set_soc_cpct() - the SOC in 0.01 % (0-10000), for a BMS that
 * says more than whole percents; soc_pct becomes it rounded to the percent.
 */
static inline void battery_pack_set_soc_cpct(struct battery_pack *p, uint32_t cpct)
{
	if (cpct > 10000) {
		cpct = 10000;
	}
	p->soc_cpct = (uint16_t)cpct;
	p->soc_pct = (uint8_t)((cpct + 50) / 100);
}

/**
 * battery_soc_cpct() - the SOC in 0.01 %: soc_cpct where it agrees with
 * soc_pct (set together by battery_pack_set_soc_cpct()), else soc_pct x 100.
 * soc_pct stays the authority: a state that set only soc_pct never shows a
 * finer value that contradicts it.
 */
static inline uint16_t battery_soc_cpct(const struct battery_pack *p)
{
	uint8_t pct = p->soc_pct > 100 ? 100 : p->soc_pct;

	if (p->soc_cpct <= 10000 && (p->soc_cpct + 50u) / 100u == pct) {
		return p->soc_cpct;
	}
	return (uint16_t)(pct * 100u);
}

/**
 * battery_pack_has() - whether @group was ever received.
 * Return: true if it was.
 */
static inline bool battery_pack_has(const struct battery_pack *p, enum battery_group group)
{
	return p->updated_usec[group] != BATTERY_NEVER;
}

/**
 * battery_pack_age_usec() - age of @group at @now_usec.
 * Return: the age, or UINT64_MAX if the group was never received.
 */
static inline uint64_t battery_pack_age_usec(const struct battery_pack *p,
					     enum battery_group group, uint64_t now_usec)
{
	uint64_t t = p->updated_usec[group];

	if (t == BATTERY_NEVER) {
		return UINT64_MAX;
	}
	return now_usec > t ? now_usec - t : 0;
}

/**
 * battery_pack_is_fresh() - whether @group was received within @max_age_usec.
 * Return: false for a group never received.
 */
static inline bool battery_pack_is_fresh(const struct battery_pack *p, enum battery_group group,
					 uint64_t now_usec, uint64_t max_age_usec)
{
	return battery_pack_age_usec(p, group, now_usec) <= max_age_usec;
}

/**
 * battery_pack_oldest_usec() - the oldest update time over @mask groups.
 * @mask: bit (1 << group) per group to consider
 * Return: the oldest time, or BATTERY_NEVER if any of them was never received.
 */
uint64_t battery_pack_oldest_usec(const struct battery_pack *p, unsigned mask);

/**
 * battery_pack_update_cell_extremes() - fill cell_min/max from cell_mv[].
 * Does nothing when cell_count is 0 (extremes come from the BMS then).
 */
void battery_pack_update_cell_extremes(struct battery_pack *p);

/**
 * battery_pack_update_temp_extremes() - fill temp_min/max from temp_dc[].
 * Does nothing when temp_count is 0.
 */
void battery_pack_update_temp_extremes(struct battery_pack *p);

/**
 * battery_alarm_name() - stable short name of one alarm bit ("cell_overvoltage").
 * Return: the name, or NULL if @bit is not exactly one known bit.
 */
const char *battery_alarm_name(uint32_t bit);

/**
 * battery_alarm_from_name() - inverse of battery_alarm_name().
 * Return: the bit, or 0 if the name is unknown.
 */
uint32_t battery_alarm_from_name(const char *name);

/**
 * battery_request_name() - stable short name of one request bit ("charge_enable").
 * Return: the name, or NULL if @bit is not exactly one known bit.
 */
const char *battery_request_name(uint32_t bit);

/**
 * battery_request_from_name() - inverse of battery_request_name().
 * Return: the bit, or 0 if the name is unknown.
 */
uint32_t battery_request_from_name(const char *name);

/**
 * battery_group_name() - short name of a group ("cells").
 */
const char *battery_group_name(enum battery_group group);
