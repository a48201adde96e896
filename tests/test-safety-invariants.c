/* SPDX-License-Identifier: MIT */
/*
 * Randomised invariants of the safety layer. Each run draws a config
 * (policy, timeouts, caps, 1-4 packs) and a BMS trace from a fixed seed:
 * reads at random intervals, dropouts of single packs and of the whole
 * bus, groups written alone, single-read spikes and absurd values (0 V,
 * 65.5 V cells, SOC 255 %, -3276.8 degC). After every evaluation the test
 * checks, against its OWN record of what the BMS wrote (not the layer's
 * internal state), that:
 *
 *   - NORMAL: CVL/CCL/DCL are never above a user cap, DVL never below the
 *     floor; CCL/DCL never above packs_online x any pack's own fresh limit
 *     (0 if a pack with a closed path says 0); every group of the bank is
 *     younger than stale_timeout; at least packs_online packs really wrote
 *     all required groups within stale_timeout; increases are ramped;
 *   - HOLD: never longer than hold_max, currents never above the last
 *     NORMAL ones; ZERO/STOP: CCL = DCL = 0 and the link-lost alarm;
 *     NOT_READY: the bank carries no group at all;
 *   - every mode that sends (NORMAL, HOLD, ZERO): the caps in force (a
 *     random reload may lower them at any step) bind CVL, CCL and DCL,
 *     and DVL < CVL, with DVL at or above the floor unless nothing may
 *     flow (CCL = DCL = 0, no enable);
 *   - transitions: only the documented ones, each reported exactly once,
 *     recovery only after at least min_packs_online packs have each made
 *     recovery_reads reads since the loss began;
 *   - never stuck: when min_packs_online packs have each made enough
 *     plausible, complete, fresh reads in a row, the layer is in NORMAL.
 *
 * Traces include same-timestamp batches (a pack written twice at one loop
 * time, evaluated after each write, as one recvmmsg() batch is), single
 * packs dropping out and flaky packs that read garbage half of the time.
 *
 * SAFETY_INVARIANT_RUNS (environment) changes the number of runs (default
 * 5000, about 0.4 s); SAFETY_INVARIANT_SEED the first seed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "protocol.h"
#include "safety-helpers.h"

#define REQUIRED ((1u << BATTERY_GROUP_ELECTRICAL) | (1u << BATTERY_GROUP_CAPACITY) | \
		  (1u << BATTERY_GROUP_LIMITS))

static uint64_t rng_state;

/* splitmix64: small, good enough, the same on every machine */
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint32_t rnd_range(uint32_t lo, uint32_t hi)
{
	return lo + (uint32_t)(rnd() % ((uint64_t)hi - lo + 1));
}

static bool chance(unsigned pct)
{
	return rnd() % 100 < pct;
}

/* what the test knows the BMS wrote, per pack */
struct truth {
	uint64_t written_usec[BATTERY_GROUP__COUNT];
	uint32_t ccl_ma, dcl_ma;
	uint32_t requests;
	bool status_seen;
	/* the pack's random walk */
	uint16_t cell_mv;
	uint8_t soc;
	int16_t temp_dc;
	unsigned silent_until_step;
	bool flaky;	     /* reads garbage cells half of the time */
	unsigned reads;	     /* writes since the last mode change */
	unsigned good_run;   /* complete, plausible reads in a row */
};

struct run_stats {
	uint64_t evaluations;
	uint64_t batches;
	uint64_t reloads;
	uint64_t conflicts;
	uint64_t transitions[5][5];
	uint64_t rejected;
};

static bool transition_allowed(enum safety_mode from, enum safety_mode to)
{
	switch (from) {
	case SAFETY_MODE_NOT_READY:
		return to == SAFETY_MODE_NORMAL;
	case SAFETY_MODE_NORMAL:
		return to == SAFETY_MODE_HOLD || to == SAFETY_MODE_ZERO || to == SAFETY_MODE_STOP;
	case SAFETY_MODE_HOLD:
		return to == SAFETY_MODE_ZERO || to == SAFETY_MODE_NORMAL;
	case SAFETY_MODE_ZERO:
		return to == SAFETY_MODE_STOP || to == SAFETY_MODE_NORMAL;
	case SAFETY_MODE_STOP:
		return to == SAFETY_MODE_NORMAL;
	}
	return false;
}

static void random_config(struct safety_config *cfg, unsigned packs, const char **proto)
{
	static const char *const protos[] = { "pylontech", "victron", "deye", "luxpower",
					      "growatt", "pylontech-rs485", "goodwe" };

	safety_config_defaults(cfg);
	cfg->comm_loss = (int)rnd_range(0, 3);
	*proto = protos[rnd_range(0, ARRAY_SIZE(protos) - 1)];
	cfg->stale_timeout_usec = rnd_range(2, 15) * USEC_PER_SEC;
	cfg->hold_max_usec = rnd_range(0, 60) * USEC_PER_SEC;
	cfg->zero_to_stop_usec = chance(50) ? 0 : rnd_range(1, 60) * USEC_PER_SEC;
	cfg->recovery_reads = rnd_range(1, 5);
	cfg->spike_confirm_reads = rnd_range(1, 4);
	cfg->min_packs_online = (uint8_t)rnd_range(1, packs);
	cfg->max_charge_current_ma = rnd_range(0, 300) * 1000;
	cfg->max_discharge_current_ma = rnd_range(0, 300) * 1000;
	cfg->max_charge_voltage_mv = rnd_range(50000, 58400);
	cfg->min_discharge_voltage_mv = rnd_range(40000, 50000);
	cfg->ramp_up_ma_per_sec = rnd_range(1, 100) * 1000;
	cfg->hold_current_pct = (uint8_t)rnd_range(0, 100);
}

/* one read of pack @i: mostly plausible, sometimes absurd, sometimes partial */
static void random_read(struct battery_pack *p, struct truth *t, uint64_t now)
{
	struct sim_read r = sim_read_default();
	unsigned mask = (1u << BATTERY_GROUP__COUNT) - 1;
	bool plausible = true;

	/* the random walk */
	t->cell_mv = (uint16_t)rnd_range(t->cell_mv > 2850 ? t->cell_mv - 50 : 2800,
					 t->cell_mv < 3600 ? t->cell_mv + 50 : 3650);
	t->soc = (uint8_t)(chance(50) ? (t->soc < 100 ? t->soc + 1 : 100)
				      : (t->soc > 0 ? t->soc - 1 : 0));
	t->temp_dc = (int16_t)(t->temp_dc + (int)rnd_range(0, 20) - 10);
	t->temp_dc = t->temp_dc < -200 ? -200 : t->temp_dc > 650 ? 650 : t->temp_dc;
	r.cell_mv = t->cell_mv;
	r.soc_pct = t->soc;
	r.temp_dc = t->temp_dc;
	r.full_mah = rnd_range(0, 3) * 100000;
	r.cvl_mv = rnd_range(52000, 60000);
	r.dvl_mv = rnd_range(40000, 52000);
	r.ccl_ma = chance(10) ? 0 : rnd_range(0, 400) * 1000;
	r.dcl_ma = chance(10) ? 0 : rnd_range(0, 400) * 1000;
	r.requests = (chance(90) ? BATTERY_REQUEST_CHARGE_ENABLE : 0) |
		     (chance(90) ? BATTERY_REQUEST_DISCHARGE_ENABLE : 0) |
		     (chance(2) ? BATTERY_REQUEST_FORCE_CHARGE : 0);
	r.alarms = chance(3) ? (uint32_t)rnd_range(0, BATTERY_ALARM__ALL) : 0;
	/* spikes and absurd values */
	if (chance(5) || (t->flaky && chance(50))) {
		static const uint16_t absurd[] = { 0, 4500, 65535, 1, 3999, 2001 };

		r.spike_cell = (int)rnd_range(0, 15);
		r.spike_mv = absurd[rnd_range(0, ARRAY_SIZE(absurd) - 1)];
		plausible = false;
	}
	if (chance(3)) {
		r.voltage_delta_mv = (int32_t)rnd_range(0, 20000) - 10000;
		plausible = false;
	}
	if (chance(3)) {
		r.soc_pct = (uint8_t)rnd_range(0, 255);
		plausible = false;
	}
	if (chance(3)) {
		r.temp_dc = chance(50) ? INT16_MIN : (int16_t)rnd_range(0, 3000);
		plausible = false;
	}
	/* partial reads: some groups not written this time */
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		if (chance(5)) {
			mask &= ~(1u << g);
			plausible = false;
		}
	}
	sim_write_groups(p, &r, now, mask);
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		if (mask & (1u << g)) {
			t->written_usec[g] = now;
		}
	}
	if (mask & (1u << BATTERY_GROUP_LIMITS)) {
		t->ccl_ma = r.ccl_ma;
		t->dcl_ma = r.dcl_ma;
	}
	if (mask & (1u << BATTERY_GROUP_STATUS)) {
		t->requests = r.requests;
		t->status_seen = true;
	}
	t->reads++;
	t->good_run = plausible ? t->good_run + 1 : 0;
}

static bool truth_fresh(const struct truth *t, unsigned g, uint64_t now, uint64_t stale)
{
	return t->written_usec[g] != 0 && now - t->written_usec[g] <= stale;
}

/* what one run carries from one evaluation to the next */
struct run {
	uint64_t seed;
	struct safety_config cfg;
	struct safety s;
	struct battery_state bs;
	struct truth truth[4];
	unsigned packs;
	uint64_t prev_now;
	uint32_t prev_ccl, prev_dcl, normal_ccl, normal_dcl;
	enum safety_mode prev;
};

/* one evaluation at @now and every invariant on its result */
static void evaluate_and_check(struct run *rn, uint64_t now, struct run_stats *st)
{
	const struct safety_config *cfg = &rn->cfg;
	const struct battery_pack *b = &rn->bs.bank;
	unsigned need = cfg->min_packs_online < rn->packs ? cfg->min_packs_online : rn->packs;
	unsigned fresh_complete = 0, ready = 0;
	struct safety_event ev;
	enum safety_mode mode;

	mode = safety_evaluate(&rn->s, &rn->bs, now, &ev);
	st->evaluations++;

	/* transitions: documented ones only, reported exactly once */
	assert_int_equal(ev.changed, mode != rn->prev);
	if (ev.changed) {
		assert_int_equal(ev.from, rn->prev);
		assert_int_equal(ev.to, mode);
		assert_true(ev.reason[0] != '\0');
		if (!transition_allowed(rn->prev, mode)) {
			fail_msg("seed %llu: %s -> %s", (unsigned long long)rn->seed,
				 safety_mode_name(rn->prev), safety_mode_name(mode));
		}
		if (mode == SAFETY_MODE_NORMAL && rn->prev != SAFETY_MODE_NOT_READY) {
			unsigned enough = 0;

			for (unsigned i = 0; i < rn->packs; i++) {
				enough += rn->truth[i].reads >= cfg->recovery_reads;
			}
			if (enough < need) {
				fail_msg("seed %llu: back to normal with %u/%u packs read %u times",
					 (unsigned long long)rn->seed, enough, need,
					 cfg->recovery_reads);
			}
		}
		st->transitions[rn->prev][mode]++;
		for (unsigned i = 0; i < rn->packs; i++) {
			rn->truth[i].reads = 0;
			if (mode != SAFETY_MODE_NORMAL) {
				rn->truth[i].good_run = 0; /* recovery counts from the loss */
			}
		}
	}

	for (unsigned i = 0; i < rn->packs; i++) {
		struct truth *t = &rn->truth[i];
		bool all = true;
		unsigned g;

		for (g = 0; g < BATTERY_GROUP__COUNT; g++) {
			if ((REQUIRED & (1u << g)) &&
			    !truth_fresh(t, g, now, cfg->stale_timeout_usec)) {
				break;
			}
		}
		fresh_complete += g == BATTERY_GROUP__COUNT;
		for (g = 0; g < BATTERY_GROUP__COUNT; g++) {
			all &= truth_fresh(t, g, now, cfg->stale_timeout_usec);
		}
		if (!all) {
			t->good_run = 0;
		}
		/* margin: a confirmed absurd value takes confirm reads to undo */
		ready += t->good_run >= cfg->recovery_reads + 2 * cfg->spike_confirm_reads + 2;
	}

	/* every mode that sends: the caps in force, and DVL below CVL */
	if (mode == SAFETY_MODE_NORMAL || mode == SAFETY_MODE_HOLD || mode == SAFETY_MODE_ZERO) {
		bool nothing_flows = b->charge_current_limit_ma == 0 &&
				     b->discharge_current_limit_ma == 0 &&
				     !(b->requests & (BATTERY_REQUEST_CHARGE_ENABLE |
						      BATTERY_REQUEST_DISCHARGE_ENABLE));

		assert_true(b->charge_voltage_limit_mv <= cfg->max_charge_voltage_mv);
		assert_true(b->charge_current_limit_ma <= cfg->max_charge_current_ma);
		assert_true(b->discharge_current_limit_ma <= cfg->max_discharge_current_ma);
		assert_true(b->discharge_voltage_limit_mv < b->charge_voltage_limit_mv);
		assert_true(b->discharge_voltage_limit_mv >= cfg->min_discharge_voltage_mv ||
			    nothing_flows);
		st->conflicts += rn->s.conflict[0] != '\0';
	}

	switch (mode) {
	case SAFETY_MODE_NOT_READY:
		for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
			assert_false(battery_pack_has(b, g));
		}
		break;
	case SAFETY_MODE_NORMAL: {
		uint64_t dt = rn->prev_now ? now - rn->prev_now : 0;

		assert_true(rn->bs.packs_online >= 1);
		assert_true(fresh_complete >= rn->bs.packs_online);
		for (unsigned i = 0; i < rn->packs; i++) {
			const struct truth *t = &rn->truth[i];

			if (!truth_fresh(t, BATTERY_GROUP_LIMITS, now, cfg->stale_timeout_usec)) {
				continue;
			}
			if (!(t->status_seen && !(t->requests & BATTERY_REQUEST_CHARGE_ENABLE))) {
				assert_true(b->charge_current_limit_ma <=
					    (uint64_t)rn->bs.packs_online * t->ccl_ma);
			}
			if (!(t->status_seen &&
			      !(t->requests & BATTERY_REQUEST_DISCHARGE_ENABLE))) {
				assert_true(b->discharge_current_limit_ma <=
					    (uint64_t)rn->bs.packs_online * t->dcl_ma);
			}
		}
		/* one pack that withdrew its charge enable: no charging at all */
		if (rn->packs == 1 && rn->truth[0].status_seen &&
		    !(rn->truth[0].requests & BATTERY_REQUEST_CHARGE_ENABLE)) {
			assert_int_equal(b->charge_current_limit_ma, 0);
			assert_false(b->requests & BATTERY_REQUEST_CHARGE_ENABLE);
		}
		for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
			if (battery_pack_has(b, g)) {
				assert_true(now - b->updated_usec[g] <= cfg->stale_timeout_usec);
			}
		}
		assert_true(battery_pack_has(b, BATTERY_GROUP_LIMITS));
		/* increases ramped (prev_ccl is 0 after a loss) */
		if (rn->prev == SAFETY_MODE_NORMAL || rn->prev == SAFETY_MODE_NOT_READY) {
			assert_true(b->charge_current_limit_ma <=
				    rn->prev_ccl + cfg->ramp_up_ma_per_sec * dt / USEC_PER_SEC);
			assert_true(b->discharge_current_limit_ma <=
				    rn->prev_dcl + cfg->ramp_up_ma_per_sec * dt / USEC_PER_SEC);
		}
		rn->normal_ccl = b->charge_current_limit_ma;
		rn->normal_dcl = b->discharge_current_limit_ma;
		break;
	}
	case SAFETY_MODE_HOLD:
		assert_true(now - rn->s.mode_since_usec < cfg->hold_max_usec);
		assert_true(b->charge_current_limit_ma <= rn->normal_ccl);
		assert_true(b->discharge_current_limit_ma <= rn->normal_dcl);
		assert_true(b->warnings & BATTERY_ALARM_BMS_LINK_LOST);
		break;
	case SAFETY_MODE_ZERO:
	case SAFETY_MODE_STOP:
		assert_int_equal(b->charge_current_limit_ma, 0);
		assert_int_equal(b->discharge_current_limit_ma, 0);
		assert_true(b->alarms & BATTERY_ALARM_BMS_LINK_LOST);
		assert_false(b->requests & (BATTERY_REQUEST_CHARGE_ENABLE |
					    BATTERY_REQUEST_DISCHARGE_ENABLE));
		break;
	}
	/* never stuck: enough packs reading well bring the bank back */
	if ((mode == SAFETY_MODE_HOLD || mode == SAFETY_MODE_ZERO || mode == SAFETY_MODE_STOP) &&
	    ready >= need) {
		fail_msg("seed %llu: stuck in %s with %u/%u packs reading well",
			 (unsigned long long)rn->seed, safety_mode_name(mode), ready, need);
	}
	rn->prev_ccl = mode == SAFETY_MODE_NOT_READY ? 0 : b->charge_current_limit_ma;
	rn->prev_dcl = mode == SAFETY_MODE_NOT_READY ? 0 : b->discharge_current_limit_ma;
	rn->prev_now = now;
	rn->prev = mode;
}

static void one_run(uint64_t seed, struct run_stats *st)
{
	static struct run rn;
	const char *proto;
	unsigned steps;
	uint64_t now = SEC(100) + rnd_range(0, 1000000);
	bool bus_down = false;
	unsigned bus_down_until = 0;

	memset(&rn, 0, sizeof(rn));
	rng_state = seed;
	rn.seed = seed;
	rn.prev = SAFETY_MODE_NOT_READY;
	rn.packs = rnd_range(1, 4);
	random_config(&rn.cfg, rn.packs, &proto);
	battery_state_init(&rn.bs, rn.packs);
	safety_init(&rn.s, &rn.cfg, protocol_find(proto));
	for (unsigned i = 0; i < rn.packs; i++) {
		rn.truth[i].cell_mv = (uint16_t)rnd_range(2900, 3500);
		rn.truth[i].soc = (uint8_t)rnd_range(0, 100);
		rn.truth[i].temp_dc = (int16_t)rnd_range(0, 400);
		rn.truth[i].flaky = rn.packs > 1 && chance(20);
	}
	steps = rnd_range(100, 400);

	for (unsigned step = 0; step < steps; step++) {
		now += rnd_range(50, 3000) * USEC_PER_MSEC;
		/* whole-bus dropouts, sometimes longer than every timeout */
		if (!bus_down && chance(2)) {
			bus_down = true;
			bus_down_until = step + rnd_range(1, 120);
		} else if (bus_down && step >= bus_down_until) {
			bus_down = false;
		}
		for (unsigned i = 0; i < rn.packs && !bus_down; i++) {
			if (step < rn.truth[i].silent_until_step) {
				continue;
			}
			if (chance(2)) {
				rn.truth[i].silent_until_step = step + rnd_range(1, 40);
				continue;
			}
			if (chance(70)) {
				random_read(&rn.bs.packs[i], &rn.truth[i], now);
			}
		}
		/* a reload: new caps and policy, the same packs and protocol */
		if (chance(3)) {
			const char *ignored;

			random_config(&rn.cfg, rn.packs, &ignored);
			safety_reconfigure(&rn.s, &rn.cfg, protocol_find(proto));
			st->reloads++;
		}
		evaluate_and_check(&rn, now, st);
		/* one receive batch: the same loop time, evaluated after each frame */
		if (!bus_down && chance(25)) {
			unsigned i = rnd_range(0, rn.packs - 1);

			random_read(&rn.bs.packs[i], &rn.truth[i], now);
			evaluate_and_check(&rn, now, st);
			st->batches++;
		}
	}
	st->rejected += rn.s.rejected;
}

static void test_invariants(void **state)
{
	const char *e = getenv("SAFETY_INVARIANT_RUNS");
	const char *e_seed = getenv("SAFETY_INVARIANT_SEED");
	unsigned long runs = e ? strtoul(e, NULL, 10) : 5000;
	uint64_t first = e_seed ? strtoull(e_seed, NULL, 10) : 1;
	struct run_stats st = { 0 };

	for (uint64_t seed = first; seed < first + runs; seed++) {
		one_run(seed, &st);
	}
	print_message("# %lu runs, %llu evaluations, %llu same-time batches, %llu reloads, "
		      "%llu evaluations with DVL >= CVL, %llu values rejected\n",
		      runs, (unsigned long long)st.evaluations, (unsigned long long)st.batches,
		      (unsigned long long)st.reloads, (unsigned long long)st.conflicts,
		      (unsigned long long)st.rejected);
	for (unsigned f = 0; f < 5; f++) {
		for (unsigned t = 0; t < 5; t++) {
			if (st.transitions[f][t]) {
				print_message("#   %s -> %s: %llu\n", safety_mode_name(f),
					      safety_mode_name(t),
					      (unsigned long long)st.transitions[f][t]);
			}
		}
	}
	/* the traces must actually reach every documented transition */
	if (runs >= 500) {
		assert_true(st.transitions[SAFETY_MODE_NOT_READY][SAFETY_MODE_NORMAL] > 0);
		assert_true(st.transitions[SAFETY_MODE_NORMAL][SAFETY_MODE_HOLD] > 0);
		assert_true(st.transitions[SAFETY_MODE_NORMAL][SAFETY_MODE_ZERO] > 0);
		assert_true(st.transitions[SAFETY_MODE_NORMAL][SAFETY_MODE_STOP] > 0);
		assert_true(st.transitions[SAFETY_MODE_HOLD][SAFETY_MODE_ZERO] > 0);
		assert_true(st.transitions[SAFETY_MODE_HOLD][SAFETY_MODE_NORMAL] > 0);
		assert_true(st.transitions[SAFETY_MODE_ZERO][SAFETY_MODE_STOP] > 0);
		assert_true(st.transitions[SAFETY_MODE_ZERO][SAFETY_MODE_NORMAL] > 0);
		assert_true(st.transitions[SAFETY_MODE_STOP][SAFETY_MODE_NORMAL] > 0);
		assert_true(st.rejected > 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invariants),
	};

	return cmocka_run_group_tests_name("safety-invariants", tests, NULL, NULL);
}
