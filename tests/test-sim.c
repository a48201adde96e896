/* SPDX-License-Identifier: MIT */
/* The sim BMS: determinism from the seed, plausibility over days of simulated time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "battery.h"
#include "sim.h"

#define HOUR_USEC (UINT64_C(3600) * 1000000)

static void run(uint32_t seed, unsigned hours, struct battery_state *bs)
{
	struct sim s;

	battery_state_init(bs, 1);
	sim_init(&s, seed, 16, 280000);
	for (unsigned h = 0; h < hours; h++) {
		sim_step(&s, HOUR_USEC);
	}
	sim_fill(&s, 0, 1000000, bs);
}

static void test_deterministic(void **state)
{
	struct battery_state a, b, c;

	run(42, 30, &a);
	run(42, 30, &b);
	run(43, 30, &c);
	assert_memory_equal(&a.packs[0], &b.packs[0], sizeof(a.packs[0]));
	/* another seed gives another pack (cell spread differs at least) */
	assert_true(memcmp(a.packs[0].cell_mv, c.packs[0].cell_mv, sizeof(a.packs[0].cell_mv)) != 0 ||
		    a.packs[0].current_ma != c.packs[0].current_ma);
}

static void test_fill_marks_every_group(void **state)
{
	struct battery_state bs;

	run(1, 0, &bs);
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		assert_true(battery_pack_has(&bs.packs[0], g));
	}
	assert_false(battery_pack_has(&bs.packs[1], BATTERY_GROUP_ELECTRICAL));
	assert_int_equal(bs.packs[0].soc_pct, 60);
	assert_int_equal(bs.packs[0].cell_count, 16);
	assert_int_equal(bs.packs[0].charge_voltage_limit_mv, 55200);
}

/* Over three simulated days, at every simulated minute, the pack stays believable. */
static void test_plausible_over_days(void **state)
{
	struct battery_state bs;
	struct sim s;
	unsigned soc_min = 100, soc_max = 0;
	int32_t cur_min = 0, cur_max = 0;

	battery_state_init(&bs, 1);
	sim_init(&s, 7, 16, 280000);
	for (unsigned m = 0; m < 3 * 24 * 60; m++) {
		const struct battery_pack *p = &bs.packs[0];
		uint32_t sum = 0;

		sim_step(&s, 60 * UINT64_C(1000000));
		sim_fill(&s, 0, 1 + m, &bs);
		for (unsigned i = 0; i < p->cell_count; i++) {
			assert_in_range(p->cell_mv[i], 2500, 3650);
			sum += p->cell_mv[i];
		}
		assert_int_equal(sum, p->voltage_mv);
		assert_in_range(p->voltage_mv, 16 * 2500, 16 * 3650);
		assert_in_range(p->soc_pct, 0, 100);
		assert_true(p->current_ma <= (int32_t)p->charge_current_limit_ma);
		assert_true(-p->current_ma <= (int32_t)p->discharge_current_limit_ma);
		assert_true(p->cell_min_mv <= p->cell_max_mv);
		assert_in_range(p->temp_min_dc, 100, 600);
		assert_in_range(p->temp_max_dc, 100, 600);
		soc_min = p->soc_pct < soc_min ? p->soc_pct : soc_min;
		soc_max = p->soc_pct > soc_max ? p->soc_pct : soc_max;
		cur_min = p->current_ma < cur_min ? p->current_ma : cur_min;
		cur_max = p->current_ma > cur_max ? p->current_ma : cur_max;
	}
	/* it really is a day cycle: charges and discharges, SOC moves */
	assert_true(cur_max > 20000);
	assert_true(cur_min < -5000);
	assert_true(soc_max - soc_min >= 20);
}

static void test_step_granularity(void **state)
{
	struct sim a, b;

	/* one 10 s step equals ten 1 s steps */
	sim_init(&a, 9, 16, 100000);
	sim_init(&b, 9, 16, 100000);
	sim_step(&a, 10 * UINT64_C(1000000));
	for (int i = 0; i < 10; i++) {
		sim_step(&b, UINT64_C(1000000));
	}
	assert_memory_equal(&a, &b, sizeof(a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_fill_marks_every_group),
		cmocka_unit_test(test_plausible_over_days),
		cmocka_unit_test(test_step_granularity),
	};

	return cmocka_run_group_tests_name("sim", tests, NULL, NULL);
}
