/* SPDX-License-Identifier: MIT */
/*
 * state_json: a full state survives JSON and back; "never received" stays
 * apart from zero; every kind of bad input is one error with its path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <json-c/json.h>

#include "battery.h"
#include "macro.h"
#include "state_json.h"

static void full_pack(struct battery_pack *p, unsigned k)
{
	battery_pack_init(p);
	p->voltage_mv = 53000 + k;
	p->current_ma = -12345; /* discharging */
	p->soc_pct = 77;
	p->soh_pct = 96;
	p->remaining_mah = 215000;
	p->full_mah = 280000;
	p->cycles = 321;
	p->cell_count = 16;
	for (unsigned i = 0; i < 16; i++) {
		p->cell_mv[i] = (uint16_t)(3300 + i + k);
	}
	battery_pack_update_cell_extremes(p);
	p->temp_count = 3;
	p->temp_dc[0] = -55; /* -5.5 degC */
	p->temp_dc[1] = 120;
	p->temp_dc[2] = 301;
	battery_pack_update_temp_extremes(p);
	p->mosfet_temp_dc = 250;
	p->charge_voltage_limit_mv = 55200;
	p->discharge_voltage_limit_mv = 48000;
	p->charge_current_limit_ma = 0;
	p->discharge_current_limit_ma = 150000;
	p->alarms = BATTERY_ALARM_CELL_OVERVOLTAGE | BATTERY_ALARM_PACK_OFFLINE;
	p->warnings = BATTERY_ALARM_CHARGE_UNDERTEMP;
	p->requests = BATTERY_REQUEST_DISCHARGE_ENABLE | BATTERY_REQUEST_FULL_CHARGE;
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		battery_pack_mark(p, g, 42);
	}
}

static void test_round_trip(void **state)
{
	static struct battery_state a, b;
	struct json_object *o;
	char err[160];

	battery_state_init(&a, 3);
	for (unsigned i = 0; i < 3; i++) {
		full_pack(&a.packs[i], i);
	}
	full_pack(&a.bank, 9);
	a.bank.cell_min_pack = 2;
	a.bank.temp_max_pack = 1;
	a.packs_online = 2;
	/* a group never received stays null, not zero */
	a.packs[2].updated_usec[BATTERY_GROUP_LIMITS] = BATTERY_NEVER;
	o = battery_state_to_json(&a);
	assert_non_null(o);
	assert_int_equal(battery_state_from_json(json_object_to_json_string(o), 42, &b, err,
						 sizeof(err)),
			 0);
	json_object_put(o);
	assert_int_equal(b.pack_count, 3);
	assert_int_equal(b.packs_online, 2);
	assert_memory_equal(&b.bank, &a.bank, sizeof(a.bank));
	for (unsigned i = 0; i < 3; i++) {
		if (i == 2) {
			/* the fields of a group never received are not carried */
			assert_false(battery_pack_has(&b.packs[2], BATTERY_GROUP_LIMITS));
			assert_int_equal(b.packs[2].charge_voltage_limit_mv, 0);
			b.packs[2].charge_voltage_limit_mv = a.packs[2].charge_voltage_limit_mv;
			b.packs[2].discharge_voltage_limit_mv = a.packs[2].discharge_voltage_limit_mv;
			b.packs[2].discharge_current_limit_ma = a.packs[2].discharge_current_limit_ma;
		}
		assert_memory_equal(&b.packs[i], &a.packs[i], sizeof(a.packs[i]));
	}
}

static void test_short_forms(void **state)
{
	static struct battery_state bs;
	char err[160];

	/* a bank alone: one pack, the same */
	assert_int_equal(battery_state_from_json("{\"bank\": {\"capacity\": {\"soc_pct\": 0}}}", 5,
						 &bs, err, sizeof(err)),
			 0);
	assert_int_equal(bs.pack_count, 1);
	assert_true(battery_pack_has(&bs.bank, BATTERY_GROUP_CAPACITY));
	assert_int_equal(bs.bank.soc_pct, 0); /* zero, received */
	assert_false(battery_pack_has(&bs.bank, BATTERY_GROUP_ELECTRICAL));
	assert_int_equal(bs.packs[0].updated_usec[BATTERY_GROUP_CAPACITY], 5);

	/* packs alone: the bank is pack 0; extremes computed from the cells */
	assert_int_equal(battery_state_from_json(
				 "{\"packs\": [{\"cells\": {\"cell_mv\": [3400, 3390, 3410]}}]}", 5, &bs,
				 err, sizeof(err)),
			 0);
	assert_int_equal(bs.bank.cell_count, 3);
	assert_int_equal(bs.bank.cell_min_mv, 3390);
	assert_int_equal(bs.bank.cell_min_idx, 1);
	assert_int_equal(bs.bank.cell_max_mv, 3410);
	assert_int_equal(bs.bank.cell_max_idx, 2);
}

static const struct {
	const char *json;
	const char *says;
} bad[] = {
	{ "", "not JSON: the input ends early" },
	{ "{\"bank\": {}", "not JSON" },
	{ "{\"bank\": {}} x", "trailing" },
	{ "[1]", "$: expected an object" },
	{ "{}", "needs \"bank\" or \"packs\"" },
	{ "{\"colour\": 1}", "colour: unknown key" },
	{ "{\"bank\": {\"volts\": {}}}", "bank.volts: unknown group" },
	{ "{\"bank\": {\"electrical\": {\"voltage\": 1}}}", "bank.electrical.voltage: unknown key" },
	{ "{\"bank\": {\"electrical\": {\"voltage_mv\": \"53\"}}}",
	  "bank.electrical.voltage_mv: expected an integer" },
	{ "{\"bank\": {\"electrical\": {\"voltage_mv\": 1.5}}}", "expected an integer" },
	{ "{\"bank\": {\"capacity\": {\"soc_pct\": 101}}}",
	  "bank.capacity.soc_pct: 101 is out of range [0, 100]" },
	{ "{\"bank\": {\"electrical\": {\"current_ma\": 3000000000}}}", "out of range" },
	{ "{\"packs\": [{\"cells\": {\"cell_mv\": [3300, 70000]}}]}",
	  "packs[0].cells.cell_mv[1]: 70000 is out of range [0, 65535]" },
	{ "{\"packs\": [{\"cells\": {\"cell_mv\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
	  "1,1,1,1,1,1,1,1]}}]}",
	  "33 entries, at most 32" },
	{ "{\"packs\": []}", "packs: 0 packs, 1 to 15" },
	{ "{\"packs\": [1]}", "packs[0]: expected an object" },
	{ "{\"bank\": {\"status\": {\"alarms\": [\"on_fire\"]}}}",
	  "bank.status.alarms[0]: unknown name \"on_fire\"" },
	{ "{\"bank\": {\"status\": {\"requests\": \"charge_enable\"}}}", "expected an array" },
	{ "{\"bank\": {\"temps\": {\"temp_max_idx\": 8}}}", "temp_max_idx: 8 is out of range" },
	{ "{\"pack_count\": 0, \"bank\": {}}", "pack_count: 0 is out of range" },
};

static void test_bad_input(void **state)
{
	static struct battery_state bs;
	char err[160];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(err, 0, sizeof(err));
		assert_int_equal(battery_state_from_json(bad[i].json, 1, &bs, err, sizeof(err)),
				 -EINVAL);
		print_message("# %s -> %s\n", bad[i].json, err);
		assert_non_null(strstr(err, bad[i].says));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_short_forms),
		cmocka_unit_test(test_bad_input),
	};

	return cmocka_run_group_tests_name("state-json", tests, NULL, NULL);
}
