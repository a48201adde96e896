/* SPDX-License-Identifier: MIT */
/* battery_state helpers: "never received" vs zero, ages, extremes, names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "battery.h"

static void test_init_is_never_received(void **state)
{
	struct battery_state bs;

	battery_state_init(&bs, 3);
	assert_int_equal(bs.pack_count, 3);
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		assert_false(battery_pack_has(&bs.packs[0], g));
		assert_false(battery_pack_has(&bs.bank, g));
		assert_int_equal(battery_pack_age_usec(&bs.packs[2], g, 1000), UINT64_MAX);
		assert_false(battery_pack_is_fresh(&bs.packs[2], g, 1000, UINT64_MAX - 1));
	}
	assert_int_equal(bs.packs[0].cell_min_idx, BATTERY_INDEX_NONE);
	assert_int_equal(bs.packs[0].mosfet_temp_dc, BATTERY_TEMP_NONE);

	battery_state_init(&bs, 0);
	assert_int_equal(bs.pack_count, 1);
	battery_state_init(&bs, 99);
	assert_int_equal(bs.pack_count, BATTERY_PACKS_MAX);
}

static void test_zero_values_are_received(void **state)
{
	struct battery_pack p;

	battery_pack_init(&p);
	p.current_ma = 0;
	p.voltage_mv = 0;
	battery_pack_mark(&p, BATTERY_GROUP_ELECTRICAL, 5000000);
	assert_true(battery_pack_has(&p, BATTERY_GROUP_ELECTRICAL));
	assert_int_equal(battery_pack_age_usec(&p, BATTERY_GROUP_ELECTRICAL, 7000000), 2000000);
	assert_true(battery_pack_is_fresh(&p, BATTERY_GROUP_ELECTRICAL, 7000000, 2000000));
	assert_false(battery_pack_is_fresh(&p, BATTERY_GROUP_ELECTRICAL, 7000001, 2000000));
	/* a clock that reads 0 still marks the group as received */
	battery_pack_mark(&p, BATTERY_GROUP_CELLS, 0);
	assert_true(battery_pack_has(&p, BATTERY_GROUP_CELLS));
}

static void test_oldest(void **state)
{
	struct battery_pack p;
	unsigned mask = 1u << BATTERY_GROUP_ELECTRICAL | 1u << BATTERY_GROUP_LIMITS;

	battery_pack_init(&p);
	battery_pack_mark(&p, BATTERY_GROUP_ELECTRICAL, 300);
	assert_int_equal(battery_pack_oldest_usec(&p, mask), BATTERY_NEVER);
	battery_pack_mark(&p, BATTERY_GROUP_LIMITS, 200);
	assert_int_equal(battery_pack_oldest_usec(&p, mask), 200);
	/* the age is never negative, even with a time before the update */
	assert_int_equal(battery_pack_age_usec(&p, BATTERY_GROUP_ELECTRICAL, 100), 0);
}

static void test_cell_extremes(void **state)
{
	struct battery_pack p;
	static const uint16_t cells[] = { 3300, 3310, 3290, 3450, 3290, 3301 };

	battery_pack_init(&p);
	battery_pack_update_cell_extremes(&p); /* no cells: untouched */
	assert_int_equal(p.cell_min_idx, BATTERY_INDEX_NONE);

	p.cell_count = sizeof(cells) / sizeof(cells[0]);
	memcpy(p.cell_mv, cells, sizeof(cells));
	battery_pack_update_cell_extremes(&p);
	assert_int_equal(p.cell_max_mv, 3450);
	assert_int_equal(p.cell_max_idx, 3);
	assert_int_equal(p.cell_min_mv, 3290);
	assert_int_equal(p.cell_min_idx, 2); /* the first of equal minima */
}

static void test_temp_extremes(void **state)
{
	struct battery_pack p;

	battery_pack_init(&p);
	p.temp_count = 3;
	p.temp_dc[0] = -52; /* -5.2 degC */
	p.temp_dc[1] = 251;
	p.temp_dc[2] = -100;
	battery_pack_update_temp_extremes(&p);
	assert_int_equal(p.temp_min_dc, -100);
	assert_int_equal(p.temp_min_idx, 2);
	assert_int_equal(p.temp_max_dc, 251);
	assert_int_equal(p.temp_max_idx, 1);
}

static void test_names_round_trip(void **state)
{
	for (unsigned i = 0; i < BATTERY_ALARM__COUNT; i++) {
		const char *n = battery_alarm_name(1u << i);

		assert_non_null(n);
		assert_int_equal(battery_alarm_from_name(n), 1u << i);
	}
	for (unsigned i = 0; i < BATTERY_REQUEST__COUNT; i++) {
		const char *n = battery_request_name(1u << i);

		assert_non_null(n);
		assert_int_equal(battery_request_from_name(n), 1u << i);
	}
	assert_string_equal(battery_alarm_name(BATTERY_ALARM_BMS_LINK_LOST), "bms_link_lost");
	assert_null(battery_alarm_name(0));
	assert_null(battery_alarm_name(3)); /* two bits */
	assert_null(battery_alarm_name(1u << BATTERY_ALARM__COUNT));
	assert_int_equal(battery_alarm_from_name("no_such_alarm"), 0);
	assert_string_equal(battery_group_name(BATTERY_GROUP_LIMITS), "limits");
	assert_null(battery_group_name(BATTERY_GROUP__COUNT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_is_never_received),
		cmocka_unit_test(test_zero_values_are_received),
		cmocka_unit_test(test_oldest),
		cmocka_unit_test(test_cell_extremes),
		cmocka_unit_test(test_temp_extremes),
		cmocka_unit_test(test_names_round_trip),
	};

	return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
