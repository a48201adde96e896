/* SPDX-License-Identifier: MIT */
/*
 * Shared by test-safety.c and test-safety-invariants.c: a simulated 16s
 * LFP pack written the way a BMS decoder writes it (values, then
 * battery_pack_mark() per group at the simulated time).
 */
#pragma once

#include <string.h>

#include "battery.h"
#include "macro.h"
#include "safety.h"

#define SEC(x) ((uint64_t)(x) * USEC_PER_SEC)

/* what one BMS read says */
struct sim_read {
	unsigned cells;	     /* 0: 16 */
	uint16_t cell_mv;    /* every cell */
	int spike_cell;	     /* -1: none */
	uint16_t spike_mv;   /* that cell's value */
	int32_t voltage_delta_mv; /* pack voltage minus the sum of cells */
	uint8_t soc_pct;
	uint16_t soc_cpct; /* 0.01 %; 0: whole percents only */
	uint32_t full_mah;
	int16_t temp_dc;     /* all sensors */
	uint32_t cvl_mv, dvl_mv, ccl_ma, dcl_ma;
	uint32_t requests;
	uint32_t alarms;
};

static inline struct sim_read sim_read_default(void)
{
	return (struct sim_read){
		.cell_mv = 3300,
		.spike_cell = -1,
		.soc_pct = 50,
		.full_mah = 280000,
		.temp_dc = 250,
		.cvl_mv = 56800,
		.dvl_mv = 46400,
		.ccl_ma = 150000,
		.dcl_ma = 150000,
		.requests = BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE,
	};
}

/* write one complete read into @p at @now */
static inline void sim_write(struct battery_pack *p, const struct sim_read *r, uint64_t now)
{
	unsigned n = r->cells ? r->cells : 16;
	uint32_t sum = 0;

	p->cell_count = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		p->cell_mv[i] = (int)i == r->spike_cell ? r->spike_mv : r->cell_mv;
		sum += p->cell_mv[i];
	}
	battery_pack_update_cell_extremes(p);
	battery_pack_mark(p, BATTERY_GROUP_CELLS, now);
	p->voltage_mv = (uint32_t)((int32_t)sum + r->voltage_delta_mv);
	if (r->spike_cell >= 0) {
		/* the BMS measures the pack itself: a cell spike leaves it alone */
		p->voltage_mv = (uint32_t)((int32_t)(n * r->cell_mv) + r->voltage_delta_mv);
	}
	p->current_ma = 0;
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, now);
	p->soc_pct = r->soc_pct;
	if (r->soc_cpct) {
		battery_pack_set_soc_cpct(p, r->soc_cpct);
	}
	p->soh_pct = 100;
	p->full_mah = r->full_mah;
	p->remaining_mah = r->full_mah / 100 * r->soc_pct;
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now);
	p->temp_count = 2;
	p->temp_dc[0] = p->temp_dc[1] = r->temp_dc;
	battery_pack_update_temp_extremes(p);
	battery_pack_mark(p, BATTERY_GROUP_TEMPS, now);
	p->charge_voltage_limit_mv = r->cvl_mv;
	p->discharge_voltage_limit_mv = r->dvl_mv;
	p->charge_current_limit_ma = r->ccl_ma;
	p->discharge_current_limit_ma = r->dcl_ma;
	battery_pack_mark(p, BATTERY_GROUP_LIMITS, now);
	p->alarms = r->alarms;
	p->warnings = 0;
	p->requests = r->requests;
	battery_pack_mark(p, BATTERY_GROUP_STATUS, now);
}

/*
 * write only the groups in @mask of the read @r into @p at @now, the way a
 * BMS that answers part of a poll (or one CAN frame of a set) does: the
 * other groups keep their values and their times
 */
static inline void sim_write_groups(struct battery_pack *p, const struct sim_read *r,
				    uint64_t now, unsigned mask)
{
	struct battery_pack n = *p;

	sim_write(&n, r, now);
	if (mask & (1u << BATTERY_GROUP_ELECTRICAL)) {
		p->voltage_mv = n.voltage_mv;
		p->current_ma = n.current_ma;
	}
	if (mask & (1u << BATTERY_GROUP_CAPACITY)) {
		p->soc_pct = n.soc_pct;
		p->soh_pct = n.soh_pct;
		p->full_mah = n.full_mah;
		p->remaining_mah = n.remaining_mah;
	}
	if (mask & (1u << BATTERY_GROUP_CELLS)) {
		p->cell_count = n.cell_count;
		memcpy(p->cell_mv, n.cell_mv, sizeof(p->cell_mv));
		battery_pack_update_cell_extremes(p);
	}
	if (mask & (1u << BATTERY_GROUP_TEMPS)) {
		p->temp_count = n.temp_count;
		memcpy(p->temp_dc, n.temp_dc, sizeof(p->temp_dc));
		battery_pack_update_temp_extremes(p);
	}
	if (mask & (1u << BATTERY_GROUP_LIMITS)) {
		p->charge_voltage_limit_mv = n.charge_voltage_limit_mv;
		p->discharge_voltage_limit_mv = n.discharge_voltage_limit_mv;
		p->charge_current_limit_ma = n.charge_current_limit_ma;
		p->discharge_current_limit_ma = n.discharge_current_limit_ma;
	}
	if (mask & (1u << BATTERY_GROUP_STATUS)) {
		p->alarms = n.alarms;
		p->warnings = n.warnings;
		p->requests = n.requests;
	}
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		if (mask & (1u << g)) {
			battery_pack_mark(p, (enum battery_group)g, now);
		}
	}
}
