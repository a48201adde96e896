/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A simulated BMS: a believable LFP pack (16s by default) on a solar day,
 * deterministic from a seed. Pure: the caller advances simulated time with
 * sim_step() and copies the pack into a battery_state with sim_fill().
 * The daemon's sim input (src/input_sim.c) drives it from a timer; the tests
 * drive it with a simulated clock.
 */
#include <stdint.h>

#include "battery.h"

struct sim {
	uint64_t rng;		/* xorshift64* state */
	uint64_t time_usec;	/* simulated time since start */
	uint8_t cells;
	uint32_t capacity_mah;
	int64_t charge_uas;	/* remaining charge, microampere-seconds */
	int32_t current_ma;	/* + charging */
	int32_t load_ma;	/* current household load (slowly varying) */
	int16_t cell_offset_mv[BATTERY_CELLS_MAX]; /* per-cell spread */
	int32_t temp_mdc[4];	/* four cell sensors, milli-deci-degC */
	int32_t mosfet_mdc;
	uint64_t charged_uas;	/* throughput, for the cycle count */
	uint32_t cycles;
};

/**
 * sim_init() - a pack at 60 % SOC and 20 degC, morning of day 0.
 * @seed: any value; the same seed gives the same pack and trajectory
 * @cells: cells in series, 4..BATTERY_CELLS_MAX (clamped)
 * @capacity_mah: nominal capacity, > 0
 */
void sim_init(struct sim *s, uint32_t seed, unsigned cells, uint32_t capacity_mah);

/**
 * sim_step() - advance simulated time by @dt_usec (any size; large steps are
 * split internally into 1 s steps).
 */
void sim_step(struct sim *s, uint64_t dt_usec);

/**
 * sim_fill() - write the simulated BMS's view into bs->packs[@pack] and
 * mark every group at @now_usec.
 */
void sim_fill(const struct sim *s, unsigned pack, uint64_t now_usec, struct battery_state *bs);

/**
 * sim_soc_pct() - the current state of charge, for tests and logs.
 */
unsigned sim_soc_pct(const struct sim *s);
