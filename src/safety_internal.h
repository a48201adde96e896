/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Inside the safety layer (src/safety*.c), nothing else: the steps of one
 * safety_evaluate() (safety_mode.c), each in its own file:
 *
 *   safety_filter.c  1. plausibility: take each new write, filter it
 *   safety_fresh.c   2. freshness: which packs are online
 *   safety_rules.c   3. charge control per pack: the rules that set a limit
 *   safety_bank.c    4. the bank: packs aggregated, caps, ramp; HOLD, ZERO
 *   safety_mode.c    5. the mode machine, and safety_evaluate() itself
 *   safety.c         the settings (keys, defaults, checks), names, init
 *
 * Small helpers are static inline here: they run several times per pack
 * and frame (bench/pipeline).
 */
#include <stdbool.h>
#include <stdint.h>

#include "battery.h"
#include "safety.h"

/* what every encoder needs before it may send anything */
#define REQUIRED_GROUPS                                                                            \
	((1u << BATTERY_GROUP_ELECTRICAL) | (1u << BATTERY_GROUP_CAPACITY) |                       \
	 (1u << BATTERY_GROUP_LIMITS))

static inline uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static inline int32_t abs_diff(int32_t a, int32_t b)
{
	return a > b ? a - b : b - a;
}

static inline bool has_group(const struct safety_pack *pk, enum battery_group grp)
{
	return pk->seen_mask & (1u << grp);
}

/* sum of the good cells, or 0 when the BMS gives only extremes */
static inline uint32_t cell_sum_mv(const struct battery_pack *g)
{
	uint32_t sum = 0;

	for (unsigned i = 0; i < g->cell_count; i++) {
		sum += g->cell_mv[i];
	}
	return sum;
}

/* @v scaled by @num / @den, no overflow */
static inline uint32_t scale(uint32_t v, uint64_t num, uint64_t den)
{
	return den ? (uint32_t)((uint64_t)v * num / den) : v;
}

/* what the rules allow one pack */
struct limits {
	uint32_t cvl_mv, dvl_mv, ccl_ma, dcl_ma;
	/* which rules lowered CVL, CCL, DCL below the BMS's own (SAFETY_BY_*) */
	uint8_t cvl_by, ccl_by, dcl_by;
};

/* 1. take the groups @raw wrote since the last run into pk->good (filtered) */
bool safety_pack_read(struct safety *s, struct safety_pack *pk, const struct battery_pack *raw,
		      uint64_t now, bool *ret_complete, bool *ret_clean);

/* 2. whether @pk is online at @now; if not, *ret_missing says what it lacks */
bool safety_pack_online(const struct safety *s, const struct safety_pack *pk, uint64_t now,
			const char **ret_missing);

/* 3. the limits every rule allows @pk */
void safety_pack_limits(const struct safety_config *c, const struct safety_pack *pk,
			struct limits *l);

/* 4. bs->bank in NORMAL, HOLD, ZERO and STOP */
void safety_bank_normal(struct safety *s, struct battery_state *bs, uint64_t now, uint64_t dt);
void safety_bank_hold(struct safety *s, struct battery_state *bs);
void safety_bank_zero(struct safety *s, struct battery_state *bs, uint64_t now);
