/* SPDX-License-Identifier: MIT */
/*
 * The safety layer, rule by rule, on a simulated clock: freshness and
 * NOT_READY, the comm-loss modes and their transitions (a table), the
 * plausibility filter, every charge-control rule, multi-pack aggregation,
 * the inverter profiles and the config key table. Expected values are
 * worked out from the defaults documented in bmsbridge.conf(5).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "config.h"
#include "protocol.h"
#include "safety-helpers.h"
#include "sim.h"

struct ctx {
	struct safety s;
	struct safety_config cfg;
	struct battery_state bs;
	struct safety_event ev;
	uint64_t now;
};

/* defaults, but with an instant ramp unless a test is about the ramp */
static void ctx_init(struct ctx *c, unsigned packs, const char *proto)
{
	memset(c, 0, sizeof(*c));
	safety_config_defaults(&c->cfg);
	c->cfg.ramp_up_ma_per_sec = UINT32_MAX;
	battery_state_init(&c->bs, packs);
	c->now = SEC(1000);
	safety_init(&c->s, &c->cfg, proto ? protocol_find(proto) : NULL);
	/* one evaluation a second before the first read: the ramp has a start */
	safety_evaluate(&c->s, &c->bs, c->now, NULL);
	c->now += SEC(1);
}

static void ctx_restart(struct ctx *c, const char *proto)
{
	safety_init(&c->s, &c->cfg, proto ? protocol_find(proto) : NULL);
	safety_evaluate(&c->s, &c->bs, c->now, NULL);
	c->now += SEC(1);
}

static enum safety_mode eval(struct ctx *c)
{
	return safety_evaluate(&c->s, &c->bs, c->now, &c->ev);
}

/* @dt_ms later, every pack reads @r */
static enum safety_mode read_all(struct ctx *c, const struct sim_read *r, uint64_t dt_ms)
{
	c->now += dt_ms * USEC_PER_MSEC;
	for (unsigned i = 0; i < c->bs.pack_count; i++) {
		sim_write(&c->bs.packs[i], r, c->now);
	}
	return eval(c);
}

static enum safety_mode read_pack(struct ctx *c, unsigned i, const struct sim_read *r,
				  uint64_t dt_ms)
{
	c->now += dt_ms * USEC_PER_MSEC;
	sim_write(&c->bs.packs[i], r, c->now);
	return eval(c);
}

static enum safety_mode tick(struct ctx *c, uint64_t dt_ms)
{
	c->now += dt_ms * USEC_PER_MSEC;
	return eval(c);
}

/* ---- freshness ------------------------------------------------------------ */

static void test_not_ready_until_complete(void **state)
{
	struct ctx c;
	struct battery_pack *p = &c.bs.packs[0];

	ctx_init(&c, 1, "pylontech");
	assert_int_equal(tick(&c, 1000), SAFETY_MODE_NOT_READY);
	assert_false(c.ev.changed);
	/* electrical and capacity, no limits: still nothing to say */
	p->voltage_mv = 52800;
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, c.now);
	p->soc_pct = 50;
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, c.now);
	assert_int_equal(tick(&c, 100), SAFETY_MODE_NOT_READY);
	assert_non_null(strstr(c.s.reason, "limits"));
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		assert_false(battery_pack_has(&c.bs.bank, g));
	}
	/* a full read: NORMAL, said once */
	struct sim_read r = sim_read_default();
	assert_int_equal(read_all(&c, &r, 100), SAFETY_MODE_NORMAL);
	assert_true(c.ev.changed);
	assert_int_equal(c.ev.from, SAFETY_MODE_NOT_READY);
	assert_int_equal(c.ev.to, SAFETY_MODE_NORMAL);
	assert_non_null(strstr(c.ev.reason, "first complete read"));
	assert_int_equal(tick(&c, 100), SAFETY_MODE_NORMAL);
	assert_false(c.ev.changed);
	assert_true(battery_pack_has(&c.bs.bank, BATTERY_GROUP_LIMITS));
	assert_int_equal(c.bs.packs_online, 1);
}

/* a group the pack has sent once must stay fresh: stale cells are no cells */
static void test_seen_group_must_stay_fresh(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();
	struct battery_pack *p = &c.bs.packs[0];

	ctx_init(&c, 1, "pylontech");
	assert_int_equal(read_all(&c, &r, 0), SAFETY_MODE_NORMAL);
	/* only the electrical/capacity/limits groups keep coming */
	for (int i = 0; i < 10; i++) {
		c.now += SEC(1);
		battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, c.now);
		battery_pack_mark(p, BATTERY_GROUP_CAPACITY, c.now);
		battery_pack_mark(p, BATTERY_GROUP_LIMITS, c.now);
		battery_pack_mark(p, BATTERY_GROUP_STATUS, c.now);
		battery_pack_mark(p, BATTERY_GROUP_TEMPS, c.now);
		eval(&c);
	}
	/* 10 s after the last cells, stale_timeout 10 s: still fine at exactly 10 s */
	assert_int_equal(c.s.mode, SAFETY_MODE_NORMAL);
	c.now += SEC(1);
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, c.now);
	assert_int_equal(eval(&c), SAFETY_MODE_ZERO);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 0);
}

/* a BMS that never sends a group (Pylontech: no cell list) is not held back */
static void test_groups_never_sent_are_optional(void **state)
{
	struct ctx c;
	struct battery_pack *p = &c.bs.packs[0];

	ctx_init(&c, 1, "pylontech");
	c.now += SEC(1);
	p->voltage_mv = 52000;
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, c.now);
	p->soc_pct = 60;
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, c.now);
	p->charge_voltage_limit_mv = 53250;
	p->charge_current_limit_ma = 50000;
	p->discharge_current_limit_ma = 60000;
	battery_pack_mark(p, BATTERY_GROUP_LIMITS, c.now);
	assert_int_equal(eval(&c), SAFETY_MODE_NORMAL);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 50000);
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, 60000);
	assert_int_equal(c.bs.bank.charge_voltage_limit_mv, 53250);
	assert_false(battery_pack_has(&c.bs.bank, BATTERY_GROUP_CELLS));
}

/* ---- comm-loss policy ------------------------------------------------------ */

/*
 * Table of transitions: a read at t = 0, silence after. Times are in
 * seconds after the read; stale_timeout 10 s, hold_max 60 s, zero_to_stop
 * as given. cells_mv decides whether hold may be used (window 3100-3400).
 */
struct transition_case {
	const char *name;
	int policy;
	uint16_t cells_mv;
	unsigned zero_to_stop_s;
	struct {
		unsigned t_s;
		enum safety_mode mode;
	} steps[5];
};

static const struct transition_case transition_cases[] = {
	{ "zero", SAFETY_COMM_LOSS_ZERO, 3300, 0,
	  { { 10, SAFETY_MODE_NORMAL }, { 11, SAFETY_MODE_ZERO }, { 5000, SAFETY_MODE_ZERO } } },
	{ "zero then stop", SAFETY_COMM_LOSS_ZERO, 3300, 30,
	  { { 11, SAFETY_MODE_ZERO }, { 40, SAFETY_MODE_ZERO }, { 41, SAFETY_MODE_STOP },
	    { 5000, SAFETY_MODE_STOP } } },
	{ "stop", SAFETY_COMM_LOSS_STOP, 3300, 0,
	  { { 10, SAFETY_MODE_NORMAL }, { 11, SAFETY_MODE_STOP }, { 5000, SAFETY_MODE_STOP } } },
	{ "hold then zero", SAFETY_COMM_LOSS_HOLD, 3300, 0,
	  { { 11, SAFETY_MODE_HOLD }, { 70, SAFETY_MODE_HOLD }, { 71, SAFETY_MODE_ZERO },
	    { 5000, SAFETY_MODE_ZERO } } },
	{ "hold, zero, stop", SAFETY_COMM_LOSS_HOLD, 3300, 20,
	  { { 11, SAFETY_MODE_HOLD }, { 71, SAFETY_MODE_ZERO }, { 91, SAFETY_MODE_STOP } } },
	{ "hold refused: cells high", SAFETY_COMM_LOSS_HOLD, 3420, 0,
	  { { 11, SAFETY_MODE_ZERO }, { 200, SAFETY_MODE_ZERO } } },
	{ "hold refused: cells low", SAFETY_COMM_LOSS_HOLD, 3050, 0,
	  { { 11, SAFETY_MODE_ZERO } } },
};

static void test_transition_table(void **state)
{
	for (size_t k = 0; k < ARRAY_SIZE(transition_cases); k++) {
		const struct transition_case *tc = &transition_cases[k];
		struct sim_read r = sim_read_default();
		uint64_t t0;
		struct ctx c;

		ctx_init(&c, 1, NULL);
		c.cfg.comm_loss = tc->policy;
		c.cfg.hold_max_usec = SEC(60);
		c.cfg.zero_to_stop_usec = SEC(tc->zero_to_stop_s);
		ctx_restart(&c, NULL);
		r.cell_mv = tc->cells_mv;
		assert_int_equal(read_all(&c, &r, 0), SAFETY_MODE_NORMAL);
		t0 = c.now;
		for (size_t i = 0; i < ARRAY_SIZE(tc->steps) && tc->steps[i].t_s; i++) {
			/* evaluate every second up to the step, as the tick timer does */
			while (c.now < t0 + SEC(tc->steps[i].t_s)) {
				c.now += SEC(1);
				eval(&c);
			}
			print_message("# %s: t=%u s: %s\n", tc->name, tc->steps[i].t_s,
				      safety_mode_name(c.s.mode));
			assert_int_equal(c.s.mode, tc->steps[i].mode);
		}
	}
}

static void test_zero_output(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	read_all(&c, &r, 0);
	assert_true(c.bs.bank.charge_current_limit_ma > 0);
	assert_int_equal(tick(&c, 11000), SAFETY_MODE_ZERO);
	assert_true(c.ev.changed);
	assert_int_equal(c.ev.from, SAFETY_MODE_NORMAL);
	assert_non_null(strstr(c.ev.reason, "BMS silent for 11.0 s"));
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 0);
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, 0);
	assert_true(c.bs.bank.alarms & BATTERY_ALARM_BMS_LINK_LOST);
	assert_int_equal(c.bs.bank.requests & (BATTERY_REQUEST_CHARGE_ENABLE |
					       BATTERY_REQUEST_DISCHARGE_ENABLE), 0);
	/* limits decided now: fresh, even though the data is old */
	assert_int_equal(c.bs.bank.updated_usec[BATTERY_GROUP_LIMITS], c.now);
	assert_int_equal(c.bs.packs_online, 0);
	/* the transition is reported once */
	assert_int_equal(tick(&c, 1000), SAFETY_MODE_ZERO);
	assert_false(c.ev.changed);
}

static void test_hold_output(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "victron"); /* auto: the Victron profile holds */
	assert_int_equal(c.s.comm_loss, SAFETY_COMM_LOSS_HOLD);
	read_all(&c, &r, 0);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 100000); /* the 100 A cap */
	assert_int_equal(tick(&c, 10500), SAFETY_MODE_HOLD);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 50000); /* hold_current_pct 50 */
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, 50000);
	assert_int_equal(c.bs.bank.charge_voltage_limit_mv, 55200);
	assert_true(c.bs.bank.warnings & BATTERY_ALARM_BMS_LINK_LOST);
	assert_false(c.bs.bank.alarms & BATTERY_ALARM_BMS_LINK_LOST);
	/* hold_max 300 s by default, then zero */
	assert_int_equal(tick(&c, 299000), SAFETY_MODE_HOLD);
	assert_int_equal(tick(&c, 1000), SAFETY_MODE_ZERO);
	assert_non_null(strstr(c.ev.reason, "hold_max"));
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, 0);
}

/* back from hold: after recovery_reads reads, ramping up from the held current */
static void test_hold_recovers(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "victron");
	c.cfg.ramp_up_ma_per_sec = 10000; /* 10 A/s */
	ctx_restart(&c, "victron");
	for (int i = 0; i < 12; i++) {
		read_all(&c, &r, 1000);
	}
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 100000);
	assert_int_equal(tick(&c, 11000), SAFETY_MODE_HOLD);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 50000);
	assert_int_equal(read_all(&c, &r, 1000), SAFETY_MODE_HOLD);
	assert_int_equal(read_all(&c, &r, 1000), SAFETY_MODE_HOLD);
	assert_int_equal(read_all(&c, &r, 1000), SAFETY_MODE_NORMAL);
	assert_int_equal(c.ev.from, SAFETY_MODE_HOLD);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 60000);
	assert_false(c.bs.bank.warnings & BATTERY_ALARM_BMS_LINK_LOST);
}

static void test_recovery_needs_good_reads(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();
	struct sim_read spike = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	c.cfg.recovery_reads = 3;
	ctx_restart(&c, "pylontech");
	read_all(&c, &r, 0);
	assert_int_equal(tick(&c, 20000), SAFETY_MODE_ZERO);
	assert_int_equal(read_all(&c, &r, 1000), SAFETY_MODE_ZERO);
	assert_int_equal(read_all(&c, &r, 1000), SAFETY_MODE_ZERO);
	/* ticks in between are not reads */
	assert_int_equal(tick(&c, 100), SAFETY_MODE_ZERO);
	assert_int_equal(tick(&c, 100), SAFETY_MODE_ZERO);
	/* a read with a rejected spike breaks the run */
	spike.spike_cell = 3;
	spike.spike_mv = 4500;
	assert_int_equal(read_all(&c, &spike, 1000), SAFETY_MODE_ZERO);
	assert_int_equal(c.s.good_reads, 0);
	assert_int_equal(read_all(&c, &r, 1000), SAFETY_MODE_ZERO);
	assert_int_equal(read_all(&c, &r, 1000), SAFETY_MODE_ZERO);
	assert_int_equal(read_all(&c, &r, 1000), SAFETY_MODE_NORMAL);
	assert_true(c.ev.changed);
	assert_int_equal(c.ev.from, SAFETY_MODE_ZERO);
	assert_non_null(strstr(c.ev.reason, "3 good reads"));
	assert_false(c.bs.bank.alarms & BATTERY_ALARM_BMS_LINK_LOST);
}

static void test_stop_recovers(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "deye"); /* auto: the Deye profile stops */
	assert_int_equal(c.s.comm_loss, SAFETY_COMM_LOSS_STOP);
	read_all(&c, &r, 0);
	assert_int_equal(tick(&c, 30000), SAFETY_MODE_STOP);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(read_all(&c, &r, 1000), SAFETY_MODE_STOP);
	}
	assert_int_equal(read_all(&c, &r, 1000), SAFETY_MODE_NORMAL);
}

/* after a loss, limits come back ramped from 0, not at once */
static void test_recovery_ramps(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	c.cfg.ramp_up_ma_per_sec = 10000; /* 10 A/s */
	ctx_restart(&c, "pylontech");
	for (int i = 0; i < 20; i++) {
		read_all(&c, &r, 1000);
	}
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 100000);
	tick(&c, 15000);
	assert_int_equal(c.s.mode, SAFETY_MODE_ZERO);
	read_all(&c, &r, 1000);
	read_all(&c, &r, 1000);
	assert_int_equal(read_all(&c, &r, 1000), SAFETY_MODE_NORMAL);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 10000);
	assert_int_equal(read_all(&c, &r, 1000), SAFETY_MODE_NORMAL);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 20000);
}

/* ---- profiles ----------------------------------------------------------------- */

static void test_profiles(void **state)
{
	static const struct {
		const char *proto;
		int comm_loss;
	} cases[] = {
		{ "pylontech", SAFETY_COMM_LOSS_ZERO }, { "goodwe", SAFETY_COMM_LOSS_ZERO },
		{ "sofar", SAFETY_COMM_LOSS_ZERO },	{ "victron", SAFETY_COMM_LOSS_HOLD },
		{ "deye", SAFETY_COMM_LOSS_STOP },	{ "luxpower", SAFETY_COMM_LOSS_ZERO },
		{ "growatt", SAFETY_COMM_LOSS_ZERO },
		{ "pylontech-rs485", SAFETY_COMM_LOSS_ZERO },
	};
	struct safety_config cfg;
	struct safety s;

	safety_config_defaults(&cfg);
	assert_int_equal(cfg.comm_loss, SAFETY_COMM_LOSS_AUTO);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct inverter_protocol *p = protocol_find(cases[i].proto);

		assert_non_null(p);
		safety_init(&s, &cfg, p);
		assert_int_equal(s.comm_loss, cases[i].comm_loss);
	}
	/* every registered protocol has a profile of its own */
	for (size_t i = 0; protocol_get(i); i++) {
		bool found = false;

		for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
			found |= strcmp(cases[k].proto, protocol_get(i)->name) == 0;
		}
		assert_true(found);
	}
	/* no protocol: the explicit answer */
	safety_init(&s, &cfg, NULL);
	assert_int_equal(s.comm_loss, SAFETY_COMM_LOSS_ZERO);
	/* the config overrides the profile */
	cfg.comm_loss = SAFETY_COMM_LOSS_ZERO;
	safety_init(&s, &cfg, protocol_find("victron"));
	assert_int_equal(s.comm_loss, SAFETY_COMM_LOSS_ZERO);
	assert_string_equal(safety_comm_loss_name(SAFETY_COMM_LOSS_HOLD), "hold");
	assert_string_equal(safety_mode_name(SAFETY_MODE_NOT_READY), "not-ready");
}

/* ---- plausibility ------------------------------------------------------------ */

/*
 * One read of a cell at 4.5 V: rejected as a value (not shown, not believed),
 * and it loosens nothing. A cell that high is on the charge side of every
 * rule: charging stops for that read (it may be the first read of a real
 * overvoltage), and comes back with the next plausible read.
 */
static void test_single_spike_never_loosens(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();
	struct sim_read spike;
	struct battery_pack before;

	ctx_init(&c, 1, "pylontech");
	r.cell_mv = 3420; /* in the taper: CCL depends on the highest cell */
	read_all(&c, &r, 0);
	read_all(&c, &r, 1000);
	before = c.bs.bank;
	spike = r;
	spike.spike_cell = 5;
	spike.spike_mv = 4500;
	read_all(&c, &spike, 1000);
	assert_int_equal(c.s.rejected, 1);
	assert_int_equal(c.s.rejected_cells, 1);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 0);
	assert_true(c.bs.bank.charge_voltage_limit_mv <= before.charge_voltage_limit_mv);
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, before.discharge_current_limit_ma);
	assert_int_equal(c.bs.bank.discharge_voltage_limit_mv, before.discharge_voltage_limit_mv);
	assert_int_equal(c.bs.bank.cell_max_mv, 3420);
	assert_string_equal(c.s.last_rejected, "pack 1 cell 6: 4500 mV rejected (kept 3420 mV)");
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, before.charge_current_limit_ma);
	assert_int_equal(c.s.rejected, 1);
}

/* a value seen spike_confirm_reads times in a row is real: it is taken */
static void test_confirmed_value_is_taken(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	read_all(&c, &r, 0);
	r.spike_cell = 0;
	r.spike_mv = 4500;
	read_all(&c, &r, 1000);
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.cell_max_mv, 3300);
	/* not believed yet, but no charging while a cell reads 4.5 V */
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 0);
	assert_true(c.bs.bank.discharge_current_limit_ma > 0);
	read_all(&c, &r, 1000); /* the third: confirmed, a real overvoltage */
	assert_int_equal(c.bs.bank.cell_max_mv, 4500);
	assert_int_equal(c.bs.bank.cell_max_idx, 0);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 0);
	assert_int_equal(c.s.rejected_cells, 2);
}

/* inside the chemistry bounds but too far in one read */
static void test_cell_jump(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	read_all(&c, &r, 0);
	r.spike_cell = 2;
	r.spike_mv = 3700; /* +400 mV, cell_jump_mv 300 */
	read_all(&c, &r, 1000);
	assert_int_equal(c.s.rejected_cells, 1);
	assert_int_equal(c.bs.bank.cell_max_mv, 3300);
	r.spike_mv = 3550; /* +250 mV: believable */
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.cell_max_mv, 3550);
}

static void test_pack_voltage_vs_cells(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	read_all(&c, &r, 0);
	assert_int_equal(c.bs.bank.voltage_mv, 16 * 3300);
	r.voltage_delta_mv = 5000; /* 5 V off the sum, tolerance 1.5 V */
	read_all(&c, &r, 1000);
	assert_int_equal(c.s.rejected_voltage, 1);
	assert_int_equal(c.bs.bank.voltage_mv, 16 * 3300);
	r.voltage_delta_mv = 400; /* wiring drop: fine */
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.voltage_mv, 16 * 3300 + 400);
}

static void test_soc_rate(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	read_all(&c, &r, 0);
	r.soc_pct = 90; /* +40 % in 1 s */
	read_all(&c, &r, 1000);
	assert_int_equal(c.s.rejected_soc, 1);
	assert_int_equal(c.bs.bank.soc_pct, 50);
	/* 5 %/min: after 2 minutes +11 % is believable */
	r.soc_pct = 61;
	read_all(&c, &r, 120000);
	assert_int_equal(c.bs.bank.soc_pct, 61);
	/* a BMS recalibration (61 -> 100) is taken once confirmed */
	r.soc_pct = 100;
	read_all(&c, &r, 1000);
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.soc_pct, 61);
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.soc_pct, 100);
}

static void test_temperature_jump(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	read_all(&c, &r, 0);
	r.temp_dc = -400 + 250; /* a 40 degC drop in one read: a loose sensor? */
	read_all(&c, &r, 1000);
	assert_int_equal(c.s.rejected_temps, 2); /* both sensors */
	assert_int_equal(c.bs.bank.temp_min_dc, 250);
	/* not believed, but -15 degC is possible: no charging while it reads so */
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 0);
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, 100000 * 30 / 100 * 150 / 100);
	r.temp_dc = 1500; /* 150 degC: outside the valid range, not physical */
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.temp_max_dc, 250);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 100000); /* nothing follows */
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, 100000);
}

/* ---- charge control -------------------------------------------------------------- */

static void test_user_caps(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	r.cvl_mv = 58400;
	r.ccl_ma = 200000;
	r.dcl_ma = 250000;
	r.dvl_mv = 40000;
	read_all(&c, &r, 0);
	assert_int_equal(c.bs.bank.charge_voltage_limit_mv, 55200);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 100000);
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, 100000);
	assert_int_equal(c.bs.bank.discharge_voltage_limit_mv, 48000); /* the floor */
	/* the BMS below the caps: the BMS wins */
	r.ccl_ma = 30000;
	r.cvl_mv = 54000;
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 30000);
	assert_int_equal(c.bs.bank.charge_voltage_limit_mv, 54000);
}

/* a reload: new caps bind at the next evaluation, the mode and the ramp stay */
static void test_reconfigure(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	c.cfg.ramp_up_ma_per_sec = 10000; /* 10 A/s */
	safety_init(&c.s, &c.cfg, protocol_find("pylontech"));
	read_all(&c, &r, 0);
	for (int i = 0; i < 15; i++) {
		read_all(&c, &r, 1000);
	}
	assert_int_equal(c.s.mode, SAFETY_MODE_NORMAL);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 100000);

	c.cfg.max_charge_current_ma = 40000;
	safety_reconfigure(&c.s, &c.cfg, protocol_find("pylontech"));
	assert_int_equal(tick(&c, 10), SAFETY_MODE_NORMAL); /* not back to not-ready */
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 40000); /* a decrease: at once */

	c.cfg.max_charge_current_ma = 100000;
	safety_reconfigure(&c.s, &c.cfg, protocol_find("pylontech"));
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 50000); /* an increase: ramped */

	/* the policy follows the new settings too */
	c.cfg.comm_loss = SAFETY_COMM_LOSS_STOP;
	safety_reconfigure(&c.s, &c.cfg, protocol_find("pylontech"));
	assert_int_equal(tick(&c, c.cfg.stale_timeout_usec / USEC_PER_MSEC + 1000),
			 SAFETY_MODE_STOP);
}

static void test_slew(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	c.cfg.ramp_up_ma_per_sec = 10000; /* 10 A/s */
	safety_init(&c.s, &c.cfg, protocol_find("pylontech"));
	read_all(&c, &r, 0);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 0); /* the first output: 0 */
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 10000);
	assert_true(c.s.ccl_ramped); /* recorded for observers: the ramp holds it back */
	tick(&c, 500);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 15000);
	for (int i = 0; i < 20; i++) {
		read_all(&c, &r, 1000);
	}
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 100000);
	assert_false(c.s.ccl_ramped);
	/* a decrease goes out at once */
	r.ccl_ma = 20000;
	read_all(&c, &r, 100);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 20000);
	/* and the increase after it is ramped again */
	r.ccl_ma = 150000;
	read_all(&c, &r, 2000);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 40000);
}

static void test_taper(void **state)
{
	static const struct {
		uint16_t max_mv;
		uint32_t ccl_ma;
	} cases[] = {
		/* taper 3400 -> 3500 mV, BMS 150 A, cap 100 A after */
		{ 3300, 100000 }, { 3400, 100000 }, { 3450, 75000 },
		{ 3475, 37500 },  { 3499, 1500 },   { 3500, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ctx c;
		struct sim_read r = sim_read_default();

		ctx_init(&c, 1, "pylontech");
		r.cell_mv = 3300;
		r.spike_cell = 7;
		r.spike_mv = cases[i].max_mv;
		/* spike_confirm_reads 3: a steady value from the start is no spike */
		read_all(&c, &r, 0);
		assert_int_equal(c.bs.bank.cell_max_mv, cases[i].max_mv);
		assert_int_equal(c.bs.bank.charge_current_limit_ma, cases[i].ccl_ma);
		assert_int_equal(!!(c.bs.bank.requests & BATTERY_REQUEST_CHARGE_ENABLE),
				 cases[i].ccl_ma > 0);
		/* recorded for observers: the taper lowered CCL (not the cell or temperature rules) */
		assert_int_equal(c.s.ccl_by, cases[i].max_mv > 3400 ? SAFETY_BY_TAPER : 0);
		assert_false(c.s.ccl_ramped);
	}
}

static void test_cell_ahead_lowers_cvl(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();
	uint32_t sum;

	ctx_init(&c, 1, "pylontech");
	c.cfg.max_charge_voltage_mv = 57600; /* so that the rule shows */
	ctx_restart(&c, "pylontech");
	r.cell_mv = 3380;
	r.spike_cell = 9;
	r.spike_mv = 3480;
	read_all(&c, &r, 0);
	sum = 15 * 3380 + 3480;
	/* the 3480 mV cell may rise 70 mV at most: CVL = sum + 70 */
	assert_int_equal(c.bs.bank.charge_voltage_limit_mv, sum - 3480 + 3550);
	/* below charge_taper_start_mv the rule stays out of the way */
	r = sim_read_default();
	read_all(&c, &r, 10000);
	read_all(&c, &r, 1000);
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.charge_voltage_limit_mv, 16 * 3550); /* cells x cell_max */
}

static void test_temperature_derating(void **state)
{
	static const struct {
		int16_t temp_dc;
		uint32_t ccl_ma, dcl_ma;
	} cases[] = {
		/* BMS 150 A, cap 100 A; charge: 0 below 2, 20 % at 2 -> 100 % at 15,
		 * 100 % at 40 -> 25 % at 50, 0 above; discharge: 0 below -15,
		 * 30 % at -15 -> 100 % at 0, 100 % at 50 -> 30 % at 60 */
		{ -200, 0, 0 },		{ -150, 0, 45000 },	{ 10, 0, 100000 },
		{ 20, 30000, 100000 },	{ 85, 90000, 100000 },	{ 250, 100000, 100000 },
		{ 450, 94500, 100000 }, { 500, 37500, 100000 }, { 510, 0, 100000 },
		{ 550, 0, 97500 },	{ 610, 0, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ctx c;
		struct sim_read r = sim_read_default();

		ctx_init(&c, 1, "pylontech");
		r.temp_dc = cases[i].temp_dc;
		read_all(&c, &r, 0);
		print_message("# %d dC: CCL %u DCL %u\n", cases[i].temp_dc,
			      c.bs.bank.charge_current_limit_ma,
			      c.bs.bank.discharge_current_limit_ma);
		assert_int_equal(c.bs.bank.charge_current_limit_ma, cases[i].ccl_ma);
		assert_int_equal(c.bs.bank.discharge_current_limit_ma, cases[i].dcl_ma);
	}
}

static void test_discharge_floor(void **state)
{
	static const struct {
		uint16_t min_mv;
		uint32_t dcl_ma;
	} cases[] = {
		/* DCL 0 at 2900 mV, full 150 mV above; BMS 150 A, cap 100 A */
		{ 3300, 100000 }, { 3050, 100000 }, { 3000, 100000 },
		{ 2975, 75000 },  { 2950, 50000 },  { 2900, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ctx c;
		struct sim_read r = sim_read_default();

		ctx_init(&c, 1, "pylontech");
		r.spike_cell = 11;
		r.spike_mv = cases[i].min_mv;
		read_all(&c, &r, 0);
		assert_int_equal(c.bs.bank.cell_min_mv, cases[i].min_mv);
		assert_int_equal(c.bs.bank.discharge_current_limit_ma, cases[i].dcl_ma);
	}
}

static void test_force_charge(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	r.soc_pct = 6;
	read_all(&c, &r, 0);
	assert_false(c.bs.bank.requests & BATTERY_REQUEST_FORCE_CHARGE);
	r.soc_pct = 5;
	read_all(&c, &r, 1000);
	assert_true(c.bs.bank.requests & BATTERY_REQUEST_FORCE_CHARGE);
	assert_true(c.bs.bank.warnings & BATTERY_ALARM_LOW_SOC);
	/* hysteresis: held until force_charge_release_soc_pct (10 %) */
	r.soc_pct = 6;
	read_all(&c, &r, 60000);
	assert_true(c.bs.bank.requests & BATTERY_REQUEST_FORCE_CHARGE);
	r.soc_pct = 10;
	read_all(&c, &r, 60000);
	assert_false(c.bs.bank.requests & BATTERY_REQUEST_FORCE_CHARGE);
	/* a low cell alone triggers it too */
	r.spike_cell = 4;
	r.spike_mv = 2950;
	read_all(&c, &r, 1000);
	read_all(&c, &r, 1000); /* 350 mV below the rest: confirmed on the third read */
	assert_false(c.bs.bank.requests & BATTERY_REQUEST_FORCE_CHARGE);
	read_all(&c, &r, 1000);
	assert_true(c.bs.bank.requests & BATTERY_REQUEST_FORCE_CHARGE);
}

/* ---- the caps in force, in every mode that sends ------------------------------------ */

/* a reload lowers the caps while HOLD keeps a share of the last limits */
static void test_reload_caps_in_hold(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "victron");
	c.cfg.comm_loss = SAFETY_COMM_LOSS_HOLD;
	c.cfg.max_charge_current_ma = 50000;
	c.cfg.max_charge_voltage_mv = 55000;
	c.cfg.hold_current_pct = 100; /* hold exactly the last limits */
	ctx_restart(&c, "victron");
	read_all(&c, &r, 0);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 50000);
	assert_int_equal(tick(&c, 10500), SAFETY_MODE_HOLD);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 50000);
	assert_int_equal(c.bs.bank.charge_voltage_limit_mv, 55000);
	c.cfg.max_charge_current_ma = 20000;
	c.cfg.max_charge_voltage_mv = 52000;
	c.cfg.max_discharge_current_ma = 30000;
	safety_reconfigure(&c.s, &c.cfg, protocol_find("victron"));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(tick(&c, 1000), SAFETY_MODE_HOLD);
		assert_int_equal(c.bs.bank.charge_current_limit_ma, 20000);
		assert_int_equal(c.bs.bank.charge_voltage_limit_mv, 52000);
		assert_int_equal(c.bs.bank.discharge_current_limit_ma, 30000);
	}
	/* raising the floor binds too */
	c.cfg.min_discharge_voltage_mv = 50000;
	safety_reconfigure(&c.s, &c.cfg, protocol_find("victron"));
	tick(&c, 1000);
	assert_int_equal(c.bs.bank.discharge_voltage_limit_mv, 50000);
}

/* ZERO keeps the last CVL: a lowered cap binds there too */
static void test_reload_caps_in_zero(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	c.cfg.max_charge_voltage_mv = 55000;
	ctx_restart(&c, "pylontech");
	read_all(&c, &r, 0);
	assert_int_equal(tick(&c, 11000), SAFETY_MODE_ZERO);
	assert_int_equal(c.bs.bank.charge_voltage_limit_mv, 55000);
	c.cfg.max_charge_voltage_mv = 52000;
	c.cfg.min_discharge_voltage_mv = 49000;
	safety_reconfigure(&c.s, &c.cfg, protocol_find("pylontech"));
	assert_int_equal(tick(&c, 1000), SAFETY_MODE_ZERO);
	assert_int_equal(c.bs.bank.charge_voltage_limit_mv, 52000);
	assert_int_equal(c.bs.bank.discharge_voltage_limit_mv, 49000);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 0);
}

/* DVL at or above CVL is never sent: nothing may flow either way */
static void test_dvl_not_below_cvl(void **state)
{
	static const struct {
		const char *name;
		uint32_t cap_cvl_mv;
		unsigned cells;
	} cases[] = {
		{ "14.2 V cap, 48 V floor", 14200, 16 },
		{ "4 cells: CVL 4 x cell_max", 55200, 4 },
		{ "32 cells: the BMS's DVL above the cap", 55200, 32 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ctx c;
		struct sim_read r = sim_read_default();
		const struct battery_pack *b = &c.bs.bank;

		ctx_init(&c, 1, "deye");
		c.cfg.max_charge_voltage_mv = cases[i].cap_cvl_mv;
		c.cfg.pack_sum_tolerance_mv = 100000;
		ctx_restart(&c, "deye");
		r.cells = cases[i].cells;
		r.dvl_mv = cases[i].cells * 2900;
		r.cvl_mv = cases[i].cells * 3450;
		for (int k = 0; k < 3; k++) {
			read_all(&c, &r, 1000);
			print_message("# %s: CVL %u DVL %u CCL %u DCL %u\n", cases[i].name,
				      b->charge_voltage_limit_mv, b->discharge_voltage_limit_mv,
				      b->charge_current_limit_ma, b->discharge_current_limit_ma);
			assert_int_equal(c.s.mode, SAFETY_MODE_NORMAL);
			assert_true(b->discharge_voltage_limit_mv < b->charge_voltage_limit_mv);
			assert_int_equal(b->charge_current_limit_ma, 0);
			assert_int_equal(b->discharge_current_limit_ma, 0);
			assert_false(b->requests & (BATTERY_REQUEST_CHARGE_ENABLE |
						    BATTERY_REQUEST_DISCHARGE_ENABLE));
			assert_true(b->charge_voltage_limit_mv <= c.cfg.max_charge_voltage_mv);
			assert_non_null(strstr(c.s.conflict, "DVL"));
		}
	}
}

/* ---- writes that share a timestamp (one receive batch) ----------------------------- */

/* 0x359 and 0x35C of one batch both write STATUS at the same loop time */
static void test_same_timestamp_status(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();
	struct battery_pack *p = &c.bs.packs[0];

	ctx_init(&c, 1, "pylontech");
	read_all(&c, &r, 0);
	read_all(&c, &r, 1000);
	assert_true(c.bs.bank.requests & BATTERY_REQUEST_CHARGE_ENABLE);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 100000);
	/* one batch: the alarms frame, evaluated, then the requests frame */
	c.now += SEC(1);
	p->alarms = BATTERY_ALARM_CELL_IMBALANCE;
	battery_pack_mark(p, BATTERY_GROUP_STATUS, c.now);
	eval(&c);
	assert_true(c.bs.bank.alarms & BATTERY_ALARM_CELL_IMBALANCE);
	p->requests = BATTERY_REQUEST_DISCHARGE_ENABLE; /* charge enable withdrawn */
	battery_pack_mark(p, BATTERY_GROUP_STATUS, c.now);
	eval(&c);
	assert_false(c.bs.bank.requests & BATTERY_REQUEST_CHARGE_ENABLE);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 0);
	assert_true(c.bs.bank.requests & BATTERY_REQUEST_DISCHARGE_ENABLE);
}

/* two 0x351 in one batch: the second, lower one is what binds */
static void test_same_timestamp_limits(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();
	struct battery_pack *p = &c.bs.packs[0];

	ctx_init(&c, 1, "pylontech");
	c.cfg.max_charge_current_ma = 1000000;
	ctx_restart(&c, "pylontech");
	read_all(&c, &r, 0);
	c.now += SEC(1);
	p->charge_current_limit_ma = 100000;
	battery_pack_mark(p, BATTERY_GROUP_LIMITS, c.now);
	eval(&c);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 100000);
	p->charge_current_limit_ma = 99500;
	battery_pack_mark(p, BATTERY_GROUP_LIMITS, c.now);
	eval(&c);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 99500);
	/* a cell group written twice: the second reading is the one judged */
	r.ccl_ma = 99500;
	c.now += SEC(1);
	sim_write(p, &r, c.now);
	eval(&c);
	r.cell_mv = 3420; /* in the taper */
	sim_write(p, &r, c.now);
	eval(&c);
	assert_int_equal(c.bs.bank.cell_max_mv, 3420);
	assert_true(c.bs.bank.charge_current_limit_ma < 99500);
}

/* ---- the strict direction at once ------------------------------------------------- */

/* a real cell past cell_full_mv by more than cell_jump_mv in one read */
static void test_cell_jump_past_full_acts_at_once(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	r.cell_mv = 3400;
	read_all(&c, &r, 0);
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 100000);
	r.spike_cell = 3;
	r.spike_mv = 3750; /* +350 mV, cell_jump_mv 300, past cell_full_mv 3500 */
	read_all(&c, &r, 1000);
	assert_int_equal(c.s.rejected_cells, 1);
	assert_int_equal(c.bs.bank.cell_max_mv, 3400); /* not yet believed ... */
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 0); /* ... but charging stops */
	assert_false(c.bs.bank.requests & BATTERY_REQUEST_CHARGE_ENABLE);
	assert_true(c.bs.bank.discharge_current_limit_ma > 0);
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 0);
	read_all(&c, &r, 1000); /* confirmed */
	assert_int_equal(c.bs.bank.cell_max_mv, 3750);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 0);
}

/* a real 10 degC jump past charge_temp_max_c */
static void test_temp_jump_acts_at_once(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	r.ccl_ma = r.dcl_ma = 100000;
	r.temp_dc = 420; /* charge: 100 % at 40 -> 25 % at 50 degC: 85 % */
	read_all(&c, &r, 0);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 85000);
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, 100000);
	r.temp_dc = 540; /* +12 degC, temp_jump_c 10, past charge_temp_max_c 50 */
	read_all(&c, &r, 1000);
	assert_int_equal(c.s.rejected_temps, 2);
	assert_int_equal(c.bs.bank.temp_max_dc, 420);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 0);
	/* discharge: 100 % at 50 -> 30 % at 60 degC: 72 % at 54 */
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, 72000);
	/* back where it was: a one-read glitch, the limits come back */
	r.temp_dc = 420;
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 85000);
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, 100000);
}

/* an implausible step that would LOOSEN a limit does nothing until confirmed */
static void test_spike_never_loosens(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 1, "pylontech");
	r.spike_cell = 2;
	r.spike_mv = 2950; /* the lowest cell: DCL at 50 % */
	read_all(&c, &r, 0);
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, 50000);
	r.spike_mv = 3300; /* +350 mV in one read: would lift the DCL taper */
	read_all(&c, &r, 1000);
	assert_int_equal(c.s.rejected_cells, 1);
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, 50000);
	read_all(&c, &r, 1000);
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, 50000);
	read_all(&c, &r, 1000); /* confirmed: taken */
	assert_int_equal(c.bs.bank.discharge_current_limit_ma, 100000);
}

/* ---- recovery, per pack ----------------------------------------------------------- */

/* two packs, one flaky: the good one alone brings the bank back */
static void test_flaky_pack_does_not_block_recovery(void **state)
{
	struct ctx c;
	struct sim_read a = sim_read_default(), b = sim_read_default();
	int t;

	ctx_init(&c, 2, "pylontech");
	c.cfg.spike_confirm_reads = 100;
	ctx_restart(&c, "pylontech");
	read_all(&c, &a, 0);
	b.spike_cell = 1;
	/* pack 2 reads garbage on one cell (never confirmed): offline, but still reading */
	for (t = 0; t < 30; t++) {
		b.spike_mv = t % 2 ? 0 : 65535;
		read_pack(&c, 0, &a, 500);
		read_pack(&c, 1, &b, 500);
		assert_int_equal(c.s.mode, SAFETY_MODE_NORMAL);
	}
	assert_int_equal(c.bs.packs_online, 1);
	/* a 20 s dropout of the whole bus */
	assert_int_equal(tick(&c, 20000), SAFETY_MODE_ZERO);
	for (t = 0; t < 600 && c.s.mode != SAFETY_MODE_NORMAL; t++) {
		b.spike_mv = t % 2 ? 0 : 65535;
		read_pack(&c, 0, &a, 500);
		read_pack(&c, 1, &b, 500);
	}
	print_message("# back to normal after %d s\n", t);
	assert_int_equal(c.s.mode, SAFETY_MODE_NORMAL);
	assert_true(t <= 3); /* recovery_reads 3 reads of pack 1 */
}

/* a read is a whole set of the pack's groups, not one decoded frame */
static void test_recovery_counts_reads_not_frames(void **state)
{
	static const enum battery_group order[] = {
		BATTERY_GROUP_LIMITS, BATTERY_GROUP_CAPACITY, BATTERY_GROUP_ELECTRICAL,
		BATTERY_GROUP_TEMPS,  BATTERY_GROUP_STATUS,   BATTERY_GROUP_CELLS,
	};
	struct ctx c;
	struct sim_read r = sim_read_default();
	struct battery_pack *p = &c.bs.packs[0];

	ctx_init(&c, 1, "pylontech");
	read_all(&c, &r, 0);
	assert_int_equal(tick(&c, 20000), SAFETY_MODE_ZERO);
	for (int set = 1; set <= 3; set++) {
		for (size_t k = 0; k < ARRAY_SIZE(order); k++) {
			/* one frame, one group, one evaluation */
			c.now += 10 * USEC_PER_MSEC;
			battery_pack_mark(p, order[k], c.now);
			eval(&c);
			if (set < 3 || k + 1 < ARRAY_SIZE(order)) {
				assert_int_equal(c.s.mode, SAFETY_MODE_ZERO);
			}
		}
		c.now += SEC(1);
	}
	assert_int_equal(c.s.mode, SAFETY_MODE_NORMAL);
	assert_non_null(strstr(c.ev.reason, "3 good reads"));
}

/* ---- several packs ------------------------------------------------------------------- */

static void test_bank_aggregation(void **state)
{
	struct ctx c;
	struct sim_read a = sim_read_default(), b = sim_read_default();
	struct battery_pack *k = &c.bs.bank;

	ctx_init(&c, 2, "pylontech");
	c.cfg.max_charge_current_ma = 1000000;
	c.cfg.max_discharge_current_ma = 1000000;
	ctx_restart(&c, "pylontech");
	a.ccl_ma = 100000;
	a.soc_pct = 80;
	a.full_mah = 300000;
	b.ccl_ma = 50000;
	b.soc_pct = 40;
	b.full_mah = 100000;
	b.spike_cell = 6;
	b.spike_mv = 3200;
	b.temp_dc = 310;
	read_pack(&c, 0, &a, 0);
	assert_int_equal(c.s.mode, SAFETY_MODE_NOT_READY); /* pack 2 not read yet */
	assert_int_equal(read_pack(&c, 1, &b, 500), SAFETY_MODE_NORMAL);
	assert_int_equal(c.bs.packs_online, 2);
	/* 2 packs, the smaller 50 A each */
	assert_int_equal(k->charge_current_limit_ma, 100000);
	assert_int_equal(k->discharge_current_limit_ma, 300000);
	/* SOC by capacity: (80 * 300 + 40 * 100) / 400 */
	assert_int_equal(k->soc_pct, 70);
	assert_int_equal(k->full_mah, 400000);
	assert_int_equal(k->cell_min_mv, 3200);
	assert_int_equal(k->cell_min_pack, 1);
	assert_int_equal(k->cell_min_idx, 6);
	assert_int_equal(k->temp_max_dc, 310);
	assert_int_equal(k->temp_max_pack, 1);
	assert_false(k->alarms & BATTERY_ALARM_PACK_OFFLINE);

	/* pack 2 says CCL 0 with its charge path closed: no charging at all */
	b.ccl_ma = 0;
	read_pack(&c, 1, &b, 500);
	assert_int_equal(k->charge_current_limit_ma, 0);
	assert_false(k->requests & BATTERY_REQUEST_CHARGE_ENABLE);
	/* its charge MOSFET off: the other pack takes it all, up to its own */
	b.requests = BATTERY_REQUEST_DISCHARGE_ENABLE;
	read_pack(&c, 1, &b, 500);
	assert_int_equal(k->charge_current_limit_ma, 100000);

	/* pack 2 goes silent: the bank shrinks to pack 1 and says so */
	b = sim_read_default();
	b.soc_pct = 40; /* (a jump of SOC would be a spike) */
	read_pack(&c, 1, &b, 500);
	for (int i = 0; i < 12; i++) {
		read_pack(&c, 0, &a, 1000);
	}
	assert_int_equal(c.s.mode, SAFETY_MODE_NORMAL);
	assert_int_equal(c.bs.packs_online, 1);
	assert_true(k->alarms & BATTERY_ALARM_PACK_OFFLINE);
	assert_int_equal(k->charge_current_limit_ma, 100000);
	assert_int_equal(k->discharge_current_limit_ma, 150000);
	assert_int_equal(k->soc_pct, 80);
	/* back: both again */
	read_pack(&c, 1, &b, 500);
	assert_false(k->alarms & BATTERY_ALARM_PACK_OFFLINE);
	assert_int_equal(k->discharge_current_limit_ma, 300000);

	/*
	 * SOC finer than whole percents (a Seplos says 1 per mille): weighted
	 * the same way in 0.01 %, (63.40 * 300 + 63.26 * 280) / 580 = 63.332
	 * -> 63.33 %, and the whole percent is that rounded
	 */
	a.soc_cpct = 6340;
	a.soc_pct = 63;
	b.soc_cpct = 6326;
	b.soc_pct = 63;
	for (int i = 0; i < 3; i++) {
		read_pack(&c, 0, &a, 500);
		read_pack(&c, 1, &b, 500);
	}
	assert_int_equal(battery_soc_cpct(k), 6333);
	assert_int_equal(k->soc_pct, 63);
}

/* a pack offline for implausible cells but with fresh limits: its limits still bind */
static void test_offline_pack_limits_still_bind(void **state)
{
	struct ctx c;
	struct sim_read a = sim_read_default(), b = sim_read_default();

	ctx_init(&c, 2, "pylontech");
	c.cfg.max_charge_current_ma = 1000000;
	c.cfg.spike_confirm_reads = 100; /* garbage never confirms here */
	ctx_restart(&c, "pylontech");
	read_all(&c, &a, 0);
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 300000);
	/* pack 2: a cell reads garbage, alternating, but its BMS limit keeps coming */
	b.ccl_ma = 20000;
	b.spike_cell = 1;
	for (int i = 0; i < 12; i++) {
		b.spike_mv = i % 2 ? 0 : 65535;
		read_pack(&c, 0, &a, 500);
		read_pack(&c, 1, &b, 500);
	}
	assert_int_equal(c.s.mode, SAFETY_MODE_NORMAL);
	assert_int_equal(c.bs.packs_online, 1);
	assert_true(c.bs.bank.alarms & BATTERY_ALARM_PACK_OFFLINE);
	/* one pack takes current, at most what the smallest fresh limit allows */
	assert_int_equal(c.bs.bank.charge_current_limit_ma, 20000);
	assert_int_equal(c.s.rejected_cells, 12);
}

/* a pack that never answers: after one stale_timeout the others go on without it */
static void test_bank_missing_pack_at_start(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 3, "pylontech");
	read_pack(&c, 0, &r, 0);
	read_pack(&c, 1, &r, 0);
	for (int i = 0; i < 9; i++) {
		read_pack(&c, 0, &r, 1000);
		assert_int_equal(read_pack(&c, 1, &r, 0), SAFETY_MODE_NOT_READY);
	}
	/* stale_timeout after the first complete pack */
	assert_int_equal(read_pack(&c, 0, &r, 1000), SAFETY_MODE_NORMAL);
	assert_true(c.ev.changed);
	assert_non_null(strstr(c.ev.reason, "2/3 packs, pack 3: no electrical"));
	assert_true(c.bs.bank.alarms & BATTERY_ALARM_PACK_OFFLINE);
	assert_int_equal(c.bs.packs_online, 2);
}

static void test_min_packs_online(void **state)
{
	struct ctx c;
	struct sim_read r = sim_read_default();

	ctx_init(&c, 2, "pylontech");
	c.cfg.min_packs_online = 2;
	ctx_restart(&c, "pylontech");
	read_all(&c, &r, 0);
	assert_int_equal(c.s.mode, SAFETY_MODE_NORMAL);
	for (int i = 0; i < 11; i++) {
		read_pack(&c, 0, &r, 1000);
	}
	assert_int_equal(c.s.mode, SAFETY_MODE_ZERO);
	assert_non_null(strstr(c.ev.reason, "1/2 packs online"));
}

/*
 * Two days of the simulated pack (protocols/sim.c: a solar day, one cell
 * running ahead above 90 % SOC), read once a second at real speed: a
 * plausible BMS never trips the filter nor leaves NORMAL, and near full
 * the taper and the cell-ahead CVL act.
 */
static void test_sim_days(void **state)
{
	struct sim sim;
	struct ctx c;
	uint32_t min_ccl = UINT32_MAX, min_cvl = UINT32_MAX;
	uint16_t max_cell = 0;

	ctx_init(&c, 1, "pylontech");
	c.cfg.max_charge_voltage_mv = 57600; /* let the cell-ahead rule show */
	ctx_restart(&c, "pylontech");
	sim_init(&sim, 7, 16, 280000);
	for (unsigned t = 0; t < 2 * 24 * 3600; t++) {
		c.now += SEC(1);
		sim_step(&sim, SEC(1));
		sim_fill(&sim, 0, c.now, &c.bs);
		assert_int_equal(eval(&c), SAFETY_MODE_NORMAL);
		if (c.bs.bank.cell_max_mv > max_cell) {
			max_cell = c.bs.bank.cell_max_mv;
		}
		if (c.bs.bank.soc_pct > 50 && c.bs.bank.charge_current_limit_ma < min_ccl) {
			min_ccl = c.bs.bank.charge_current_limit_ma;
		}
		if (c.bs.bank.charge_voltage_limit_mv < min_cvl) {
			min_cvl = c.bs.bank.charge_voltage_limit_mv;
		}
		/* CVL never lets the highest cell go past cell_max_mv */
		if (c.bs.bank.cell_max_mv >= c.cfg.charge_taper_start_mv) {
			assert_true(c.bs.bank.charge_voltage_limit_mv <=
				    c.bs.bank.voltage_mv + c.cfg.cell_max_mv -
					    c.bs.bank.cell_max_mv + c.cfg.pack_sum_tolerance_mv);
		}
	}
	print_message("# sim: highest cell %u mV, lowest CCL above 50 %% SOC %u mA, lowest CVL %u mV, "
		      "%llu rejected\n", max_cell, min_ccl, min_cvl,
		      (unsigned long long)c.s.rejected);
	assert_int_equal(c.s.rejected, 0);
	assert_true(max_cell > c.cfg.charge_taper_start_mv); /* the sim reaches the knee */
	assert_true(min_ccl < 100000);			     /* and the taper acted */
	assert_true(min_cvl < 16 * 3550);		     /* and so did the CVL rule */
}

/* ---- config ---------------------------------------------------------------------------- */

static void test_conf_keys(void **state)
{
	static const char *const suffixes[] = { "_mv", "_a", "_ms", "_s", "_c", "_pct",
						"_reads", "_online", "_a_per_s", "_per_min" };
	struct safety_config cfg;
	char err[128];

	assert_true(safety_conf_n_keys > 30);
	for (size_t i = 0; i < safety_conf_n_keys; i++) {
		const struct conf_key *k = &safety_conf_keys[i];
		size_t len = strlen(k->name);
		bool unit = k->type == CONF_ENUM;

		for (size_t u = 0; u < ARRAY_SIZE(suffixes); u++) {
			size_t ul = strlen(suffixes[u]);

			unit |= len > ul && strcmp(k->name + len - ul, suffixes[u]) == 0;
		}
		print_message("# %s\n", k->name);
		assert_true(unit);
		assert_true(k->def >= k->min && k->def <= k->max);
		assert_true(k->offset + k->size <= sizeof(struct safety_config));
		for (size_t j = 0; j < i; j++) {
			assert_string_not_equal(k->name, safety_conf_keys[j].name);
		}
	}
	safety_config_defaults(&cfg);
	assert_int_equal(safety_config_check(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.stale_timeout_usec, SEC(10));
	assert_int_equal(cfg.max_charge_current_ma, 100000);
	assert_int_equal(cfg.charge_temp_min_dc, 20);
	assert_int_equal(cfg.discharge_temp_min_dc, -150);
	assert_int_equal(cfg.cell_max_mv, 3550);
	cfg.charge_taper_start_mv = 3600;
	assert_int_equal(safety_config_check(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "charge_taper_start_mv"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_ready_until_complete),
		cmocka_unit_test(test_seen_group_must_stay_fresh),
		cmocka_unit_test(test_groups_never_sent_are_optional),
		cmocka_unit_test(test_transition_table),
		cmocka_unit_test(test_zero_output),
		cmocka_unit_test(test_hold_output),
		cmocka_unit_test(test_hold_recovers),
		cmocka_unit_test(test_recovery_needs_good_reads),
		cmocka_unit_test(test_stop_recovers),
		cmocka_unit_test(test_recovery_ramps),
		cmocka_unit_test(test_profiles),
		cmocka_unit_test(test_single_spike_never_loosens),
		cmocka_unit_test(test_confirmed_value_is_taken),
		cmocka_unit_test(test_cell_jump),
		cmocka_unit_test(test_pack_voltage_vs_cells),
		cmocka_unit_test(test_soc_rate),
		cmocka_unit_test(test_temperature_jump),
		cmocka_unit_test(test_user_caps),
		cmocka_unit_test(test_reconfigure),
		cmocka_unit_test(test_slew),
		cmocka_unit_test(test_taper),
		cmocka_unit_test(test_cell_ahead_lowers_cvl),
		cmocka_unit_test(test_temperature_derating),
		cmocka_unit_test(test_discharge_floor),
		cmocka_unit_test(test_force_charge),
		cmocka_unit_test(test_bank_aggregation),
		cmocka_unit_test(test_offline_pack_limits_still_bind),
		cmocka_unit_test(test_bank_missing_pack_at_start),
		cmocka_unit_test(test_min_packs_online),
		cmocka_unit_test(test_reload_caps_in_hold),
		cmocka_unit_test(test_reload_caps_in_zero),
		cmocka_unit_test(test_dvl_not_below_cvl),
		cmocka_unit_test(test_same_timestamp_status),
		cmocka_unit_test(test_same_timestamp_limits),
		cmocka_unit_test(test_cell_jump_past_full_acts_at_once),
		cmocka_unit_test(test_temp_jump_acts_at_once),
		cmocka_unit_test(test_spike_never_loosens),
		cmocka_unit_test(test_flaky_pack_does_not_block_recovery),
		cmocka_unit_test(test_recovery_counts_reads_not_frames),
		cmocka_unit_test(test_sim_days),
		cmocka_unit_test(test_conf_keys),
	};

	return cmocka_run_group_tests_name("safety", tests, NULL, NULL);
}
