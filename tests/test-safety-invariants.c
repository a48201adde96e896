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
 *   - transitions: only the documented ones, each reported exactly once,
 *     recovery only after recovery_reads reads.
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
};

struct run_stats {
	uint64_t evaluations;
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
	if (chance(5)) {
		static const uint16_t absurd[] = { 0, 4500, 65535, 1, 3999, 2001 };

		r.spike_cell = (int)rnd_range(0, 15);
		r.spike_mv = absurd[rnd_range(0, ARRAY_SIZE(absurd) - 1)];
	}
	if (chance(3)) {
		r.voltage_delta_mv = (int32_t)rnd_range(0, 20000) - 10000;
	}
	if (chance(3)) {
		r.soc_pct = (uint8_t)rnd_range(0, 255);
	}
	if (chance(3)) {
		r.temp_dc = chance(50) ? INT16_MIN : (int16_t)rnd_range(0, 3000);
	}
	sim_write(p, &r, now);
	/* partial reads: some groups not written this time (undo their marks) */
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		if (chance(5)) {
			p->updated_usec[g] = t->written_usec[g];
		}
	}
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		if (p->updated_usec[g] == now) {
			t->written_usec[g] = now;
		}
	}
	if (p->updated_usec[BATTERY_GROUP_LIMITS] == now) {
		t->ccl_ma = r.ccl_ma;
		t->dcl_ma = r.dcl_ma;
	}
	if (p->updated_usec[BATTERY_GROUP_STATUS] == now) {
		t->requests = r.requests;
		t->status_seen = true;
	}
}

static bool truth_fresh(const struct truth *t, unsigned g, uint64_t now, uint64_t stale)
{
	return t->written_usec[g] != 0 && now - t->written_usec[g] <= stale;
}

static void one_run(uint64_t seed, struct run_stats *st)
{
	struct safety_config cfg;
	struct safety s;
	struct battery_state bs;
	struct truth truth[4] = { 0 };
	const char *proto;
	unsigned packs, steps;
	uint64_t now = SEC(100) + rnd_range(0, 1000000);
	uint64_t prev_now = 0, reads_since_mode = 0;
	uint32_t prev_ccl = 0, prev_dcl = 0, normal_ccl = 0, normal_dcl = 0;
	enum safety_mode prev = SAFETY_MODE_NOT_READY;
	bool bus_down = false;
	unsigned bus_down_until = 0;

	rng_state = seed;
	packs = rnd_range(1, 4);
	random_config(&cfg, packs, &proto);
	battery_state_init(&bs, packs);
	safety_init(&s, &cfg, protocol_find(proto));
	for (unsigned i = 0; i < packs; i++) {
		truth[i].cell_mv = (uint16_t)rnd_range(2900, 3500);
		truth[i].soc = (uint8_t)rnd_range(0, 100);
		truth[i].temp_dc = (int16_t)rnd_range(0, 400);
	}
	steps = rnd_range(100, 400);

	for (unsigned step = 0; step < steps; step++) {
		struct safety_event ev;
		enum safety_mode mode;
		unsigned n_read = 0;
		unsigned fresh_complete = 0;

		now += rnd_range(50, 3000) * USEC_PER_MSEC;
		/* whole-bus dropouts, sometimes longer than every timeout */
		if (!bus_down && chance(2)) {
			bus_down = true;
			bus_down_until = step + rnd_range(1, 120);
		} else if (bus_down && step >= bus_down_until) {
			bus_down = false;
		}
		for (unsigned i = 0; i < packs && !bus_down; i++) {
			if (step < truth[i].silent_until_step) {
				continue;
			}
			if (chance(2)) {
				truth[i].silent_until_step = step + rnd_range(1, 40);
				continue;
			}
			if (chance(70)) {
				random_read(&bs.packs[i], &truth[i], now);
				n_read++;
			}
		}
		reads_since_mode += n_read; /* the layer counts reads per pack */

		mode = safety_evaluate(&s, &bs, now, &ev);
		st->evaluations++;

		/* transitions: documented ones only, reported exactly once */
		assert_int_equal(ev.changed, mode != prev);
		if (ev.changed) {
			assert_int_equal(ev.from, prev);
			assert_int_equal(ev.to, mode);
			assert_true(ev.reason[0] != '\0');
			if (!transition_allowed(prev, mode)) {
				fail_msg("seed %llu: %s -> %s", (unsigned long long)seed,
					 safety_mode_name(prev), safety_mode_name(mode));
			}
			if (mode == SAFETY_MODE_NORMAL && prev != SAFETY_MODE_NOT_READY) {
				assert_true(reads_since_mode >= cfg.recovery_reads);
			}
			st->transitions[prev][mode]++;
			reads_since_mode = 0;
		}

		for (unsigned i = 0; i < packs; i++) {
			unsigned g;

			for (g = 0; g < BATTERY_GROUP__COUNT; g++) {
				if ((REQUIRED & (1u << g)) &&
				    !truth_fresh(&truth[i], g, now, cfg.stale_timeout_usec)) {
					break;
				}
			}
			fresh_complete += g == BATTERY_GROUP__COUNT;
		}

		switch (mode) {
		case SAFETY_MODE_NOT_READY:
			for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
				assert_false(battery_pack_has(&bs.bank, g));
			}
			break;
		case SAFETY_MODE_NORMAL: {
			const struct battery_pack *b = &bs.bank;
			uint64_t dt = prev_now ? now - prev_now : 0;

			assert_true(b->charge_voltage_limit_mv <= cfg.max_charge_voltage_mv);
			assert_true(b->charge_current_limit_ma <= cfg.max_charge_current_ma);
			assert_true(b->discharge_current_limit_ma <= cfg.max_discharge_current_ma);
			assert_true(b->discharge_voltage_limit_mv >= cfg.min_discharge_voltage_mv);
			assert_true(bs.packs_online >= 1);
			assert_true(fresh_complete >= bs.packs_online);
			for (unsigned i = 0; i < packs; i++) {
				const struct truth *t = &truth[i];

				if (!truth_fresh(t, BATTERY_GROUP_LIMITS, now,
						 cfg.stale_timeout_usec)) {
					continue;
				}
				if (!(t->status_seen &&
				      !(t->requests & BATTERY_REQUEST_CHARGE_ENABLE))) {
					assert_true(b->charge_current_limit_ma <=
						    (uint64_t)bs.packs_online * t->ccl_ma);
				}
				if (!(t->status_seen &&
				      !(t->requests & BATTERY_REQUEST_DISCHARGE_ENABLE))) {
					assert_true(b->discharge_current_limit_ma <=
						    (uint64_t)bs.packs_online * t->dcl_ma);
				}
			}
			for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
				if (battery_pack_has(b, g)) {
					assert_true(now - b->updated_usec[g] <=
						    cfg.stale_timeout_usec);
				}
			}
			assert_true(battery_pack_has(b, BATTERY_GROUP_LIMITS));
			/* increases ramped (prev_ccl is 0 after a loss) */
			if (prev == SAFETY_MODE_NORMAL || prev == SAFETY_MODE_NOT_READY) {
				assert_true(b->charge_current_limit_ma <=
					    prev_ccl + cfg.ramp_up_ma_per_sec * dt / USEC_PER_SEC);
				assert_true(b->discharge_current_limit_ma <=
					    prev_dcl + cfg.ramp_up_ma_per_sec * dt / USEC_PER_SEC);
			}
			normal_ccl = b->charge_current_limit_ma;
			normal_dcl = b->discharge_current_limit_ma;
			break;
		}
		case SAFETY_MODE_HOLD:
			assert_true(now - s.mode_since_usec < cfg.hold_max_usec);
			assert_true(bs.bank.charge_current_limit_ma <= normal_ccl);
			assert_true(bs.bank.discharge_current_limit_ma <= normal_dcl);
			assert_true(bs.bank.warnings & BATTERY_ALARM_BMS_LINK_LOST);
			break;
		case SAFETY_MODE_ZERO:
		case SAFETY_MODE_STOP:
			assert_int_equal(bs.bank.charge_current_limit_ma, 0);
			assert_int_equal(bs.bank.discharge_current_limit_ma, 0);
			assert_true(bs.bank.alarms & BATTERY_ALARM_BMS_LINK_LOST);
			assert_false(bs.bank.requests & (BATTERY_REQUEST_CHARGE_ENABLE |
							 BATTERY_REQUEST_DISCHARGE_ENABLE));
			break;
		}
		prev_ccl = mode == SAFETY_MODE_NOT_READY ? 0 : bs.bank.charge_current_limit_ma;
		prev_dcl = mode == SAFETY_MODE_NOT_READY ? 0 : bs.bank.discharge_current_limit_ma;
		prev_now = now;
		prev = mode;
	}
	st->rejected += s.rejected;
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
	print_message("# %lu runs, %llu evaluations, %llu values rejected\n", runs,
		      (unsigned long long)st.evaluations, (unsigned long long)st.rejected);
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
