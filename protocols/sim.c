/* SPDX-License-Identifier: MIT */
/*
 * The `sim` BMS driver: a simulated LFP pack on a solar day.
 *
 * Model, per 1 s step of simulated time:
 *   - a 24 h day: household load all day (a random walk between 5 and 45 A
 *     with occasional steps), solar from 07:00 to 17:00 as a half sine
 *     peaking at 90 A at noon; battery current = solar - load, limited by
 *     the BMS's own charge limit (taper above 95 % SOC) and zero at 0/100 %;
 *   - charge is integrated in microampere-seconds (no drift in integers);
 *   - cell voltage = LFP open-circuit curve at the SOC + current * 0.6 mOhm
 *     + a fixed per-cell spread (+-6 mV) that widens above 90 % SOC, where
 *     one cell runs ahead as real packs do;
 *   - four temperature sensors and a MOSFET sensor follow ambient (20 degC)
 *     plus I^2 heating with a time constant of ~20 min.
 * Everything derives from the seed through xorshift64*, so a seed gives the
 * same trajectory on every machine.
 */
#include <stdlib.h>
#include <string.h>

#include "battery.h"
#include "bms.h"
#include "macro.h"
#include "sim.h"

#define SIM_STEP_USEC USEC_PER_SEC
#define SIM_DAY_USEC (UINT64_C(24) * 3600 * USEC_PER_SEC)
#define SIM_CELL_FULL_MV 3450	/* CVL per cell: 55.2 V for 16s, a common LFP choice */
#define SIM_CELL_EMPTY_MV 2900	/* DVL per cell: 46.4 V for 16s */
#define SIM_CCL_MA 100000	/* the pack's own charge limit, 100 A */
#define SIM_DCL_MA 150000	/* discharge limit, 150 A */
#define SIM_R_CELL_UOHM 600	/* 0.6 mOhm per cell */

static uint64_t rng_next(uint64_t *x)
{
	/* xorshift64* (Vigna 2014) */
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * UINT64_C(0x2545F4914F6CDD1D);
}

/* uniform integer in [lo, hi] */
static int32_t rng_range(uint64_t *x, int32_t lo, int32_t hi)
{
	return lo + (int32_t)(rng_next(x) % (uint64_t)(hi - lo + 1));
}

void sim_init(struct sim *s, uint32_t seed, unsigned cells, uint32_t capacity_mah)
{
	memset(s, 0, sizeof(*s));
	/* a zero state would stay zero: mix the seed into a fixed odd constant */
	s->rng = UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)seed << 17 | seed);
	s->cells = (uint8_t)(cells < 4 ? 4 : cells > BATTERY_CELLS_MAX ? BATTERY_CELLS_MAX : cells);
	s->capacity_mah = capacity_mah ? capacity_mah : 280000;
	s->time_usec = UINT64_C(6) * 3600 * USEC_PER_SEC; /* 06:00 */
	s->charge_uas = (int64_t)s->capacity_mah * 3600 * 1000 * 60 / 100; /* 60 % */
	s->load_ma = rng_range(&s->rng, 8000, 20000);
	for (unsigned i = 0; i < s->cells; i++) {
		s->cell_offset_mv[i] = (int16_t)rng_range(&s->rng, -6, 6);
	}
	for (unsigned i = 0; i < ARRAY_SIZE(s->temp_mdc); i++) {
		s->temp_mdc[i] = 200000 + rng_range(&s->rng, -5000, 5000); /* 20 degC +- 0.5 */
	}
	s->mosfet_mdc = 220000;
}

static unsigned soc_permille(const struct sim *s)
{
	int64_t full = (int64_t)s->capacity_mah * 3600 * 1000;
	int64_t pm = s->charge_uas * 1000 / full;

	return (unsigned)(pm < 0 ? 0 : pm > 1000 ? 1000 : pm);
}

unsigned sim_soc_pct(const struct sim *s)
{
	return (soc_permille(s) + 5) / 10;
}

/* LFP open-circuit voltage per cell (mV) against SOC (per mille), piecewise linear */
static int32_t ocv_mv(unsigned pm)
{
	static const struct {
		uint16_t pm;
		uint16_t mv;
	} curve[] = {
		{ 0, 2800 },   { 50, 3100 },  { 100, 3200 }, { 200, 3250 }, { 300, 3270 },
		{ 400, 3280 }, { 500, 3290 }, { 600, 3300 }, { 700, 3310 }, { 800, 3320 },
		{ 900, 3335 }, { 950, 3360 }, { 1000, 3400 },
	};

	for (size_t i = 1; i < ARRAY_SIZE(curve); i++) {
		if (pm <= curve[i].pm) {
			int32_t span = curve[i].pm - curve[i - 1].pm;

			return curve[i - 1].mv +
			       (int32_t)(curve[i].mv - curve[i - 1].mv) * (int32_t)(pm - curve[i - 1].pm) / span;
		}
	}
	return curve[ARRAY_SIZE(curve) - 1].mv;
}

/* the pack's own charge current limit: full below 95 %, tapering to 5 A at 100 % */
static int32_t own_ccl_ma(unsigned pm)
{
	if (pm < 950) {
		return SIM_CCL_MA;
	}
	return SIM_CCL_MA - (int32_t)(pm - 950) * (SIM_CCL_MA - 5000) / 50;
}

/* discharge limit: full above 10 %, down to 20 A at 0 % */
static int32_t own_dcl_ma(unsigned pm)
{
	if (pm > 100) {
		return SIM_DCL_MA;
	}
	return 20000 + (int32_t)pm * (SIM_DCL_MA - 20000) / 100;
}

static int32_t solar_ma(uint64_t time_usec)
{
	uint64_t t = time_usec % SIM_DAY_USEC;
	uint64_t start = UINT64_C(7) * 3600 * USEC_PER_SEC, end = UINT64_C(17) * 3600 * USEC_PER_SEC;
	/* half sine over the day, as a parabola: 4x(1-x), peak 90 A */
	int64_t x_pm;

	if (t < start || t >= end) {
		return 0;
	}
	x_pm = (int64_t)((t - start) * 1000 / (end - start));
	return (int32_t)(90000 * 4 * x_pm * (1000 - x_pm) / 1000000);
}

static void step_one(struct sim *s)
{
	unsigned pm = soc_permille(s);
	int32_t current, ccl = own_ccl_ma(pm), dcl = own_dcl_ma(pm);

	/* load: random walk, now and then a step (kettle, pump) */
	s->load_ma += rng_range(&s->rng, -300, 300);
	if (rng_range(&s->rng, 0, 599) == 0) {
		s->load_ma += rng_range(&s->rng, -10000, 15000);
	}
	s->load_ma = s->load_ma < 5000 ? 5000 : s->load_ma > 45000 ? 45000 : s->load_ma;

	current = solar_ma(s->time_usec) - s->load_ma;
	if (current > ccl) {
		current = ccl;
	}
	if (current < -dcl) {
		current = -dcl;
	}
	if (pm >= 1000 && current > 0) {
		current = 0;
	}
	if (pm <= 30 && current < 0) {
		current = 0; /* the BMS cuts the load at 3 % */
	}
	s->current_ma = current;
	s->charge_uas += (int64_t)current * 1000; /* one second */
	if (current > 0) {
		s->charged_uas += (uint64_t)current * 1000;
		s->cycles = (uint32_t)(s->charged_uas / ((uint64_t)s->capacity_mah * 3600 * 1000));
	}

	/* temperatures: first-order towards ambient + I^2 heating, tau ~ 20 min */
	for (unsigned i = 0; i < ARRAY_SIZE(s->temp_mdc); i++) {
		int64_t a = (int64_t)current / 1000;
		int32_t target = 200000 + (int32_t)(a * a * 12) + (int32_t)i * 1500;

		s->temp_mdc[i] += (target - s->temp_mdc[i]) / 1200;
	}
	{
		int64_t a = (int64_t)current / 1000;
		int32_t target = 220000 + (int32_t)(a * a * 25);

		s->mosfet_mdc += (target - s->mosfet_mdc) / 600;
	}
	s->time_usec += SIM_STEP_USEC;
}

void sim_step(struct sim *s, uint64_t dt_usec)
{
	for (uint64_t t = 0; t + SIM_STEP_USEC <= dt_usec; t += SIM_STEP_USEC) {
		step_one(s);
	}
}

void sim_fill(const struct sim *s, unsigned pack, uint64_t now_usec, struct battery_state *bs)
{
	struct battery_pack *p;
	unsigned pm = soc_permille(s);
	uint32_t sum = 0;
	int64_t rem_mah;

	if (pack >= BATTERY_PACKS_MAX) {
		return;
	}
	p = &bs->packs[pack];

	p->cell_count = s->cells;
	for (unsigned i = 0; i < s->cells; i++) {
		int32_t spread = s->cell_offset_mv[i];
		int32_t mv;

		/* above 90 % the spread grows; cell 5 runs ahead (a real pack's habit) */
		if (pm > 900) {
			spread = spread * (int32_t)(1 + (pm - 900) / 25);
			if (i == 5) {
				spread += (int32_t)(pm - 900) / 2;
			}
		}
		mv = ocv_mv(pm) + s->current_ma * SIM_R_CELL_UOHM / 1000000 + spread;
		p->cell_mv[i] = (uint16_t)(mv < 2500 ? 2500 : mv > 3650 ? 3650 : mv);
		sum += p->cell_mv[i];
	}
	battery_pack_update_cell_extremes(p);
	battery_pack_mark(p, BATTERY_GROUP_CELLS, now_usec);

	p->voltage_mv = sum;
	p->current_ma = s->current_ma;
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, now_usec);

	rem_mah = s->charge_uas / (3600 * 1000);
	battery_pack_set_soc_cpct(p, (uint32_t)pm * 10u);
	p->soh_pct = 98;
	p->remaining_mah = (uint32_t)(rem_mah < 0 ? 0 : rem_mah);
	p->full_mah = s->capacity_mah;
	p->cycles = s->cycles;
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now_usec);

	p->temp_count = ARRAY_SIZE(s->temp_mdc);
	for (unsigned i = 0; i < ARRAY_SIZE(s->temp_mdc); i++) {
		p->temp_dc[i] = (int16_t)(s->temp_mdc[i] / 1000);
	}
	battery_pack_update_temp_extremes(p);
	p->mosfet_temp_dc = (int16_t)(s->mosfet_mdc / 1000);
	battery_pack_mark(p, BATTERY_GROUP_TEMPS, now_usec);

	p->charge_voltage_limit_mv = (uint32_t)s->cells * SIM_CELL_FULL_MV;
	p->discharge_voltage_limit_mv = (uint32_t)s->cells * SIM_CELL_EMPTY_MV;
	p->charge_current_limit_ma = (uint32_t)own_ccl_ma(pm);
	p->discharge_current_limit_ma = (uint32_t)own_dcl_ma(pm);
	battery_pack_mark(p, BATTERY_GROUP_LIMITS, now_usec);

	p->alarms = 0;
	p->warnings = 0;
	if (p->cell_max_mv >= 3550) {
		p->warnings |= BATTERY_ALARM_CELL_OVERVOLTAGE;
	}
	if (p->cell_min_mv <= 3000) {
		p->warnings |= BATTERY_ALARM_CELL_UNDERVOLTAGE;
	}
	if (p->soc_pct <= 10) {
		p->warnings |= BATTERY_ALARM_LOW_SOC;
	}
	p->requests = BATTERY_REQUEST_CHARGE_ENABLE;
	if (pm > 30) {
		p->requests |= BATTERY_REQUEST_DISCHARGE_ENABLE;
	}
	if (pm < 50) {
		p->requests |= BATTERY_REQUEST_FORCE_CHARGE;
	}
	battery_pack_mark(p, BATTERY_GROUP_STATUS, now_usec);
}

const struct bms_driver sim_bms_driver = {
	.name = "sim",
	.description = "simulated 16s LFP pack on a solar day (demo, tests)",
	.transport = BMS_TRANSPORT_SIM,
};
