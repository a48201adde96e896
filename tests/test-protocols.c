/* SPDX-License-Identifier: MIT */
/*
 * Invariants every registered protocol keeps, whatever its brand: the
 * registry is sorted and finds each protocol and alias; CAN encoders refuse
 * an empty state and a short buffer, write only standard 8-byte-or-less
 * frames, are deterministic, and their decoders understand every frame
 * they write back into the same values (encode -> decode round trip), reject
 * truncated frames with -EBADMSG and ignore extended, remote and error
 * frames. The brand-specific bytes are in test-proto-<brand>.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "battery.h"
#include "protocol.h"
#include "proto-helpers.h"

static void test_registry_sorted_and_found(void **state)
{
	const struct inverter_protocol *p, *prev = NULL;
	size_t n = 0;

	for (size_t i = 0; (p = protocol_get(i)); i++, n++) {
		assert_non_null(p->name);
		assert_non_null(p->description);
		assert_ptr_equal(protocol_find(p->name), p);
		if (prev) {
			assert_true(strcmp(prev->name, p->name) < 0);
		}
		prev = p;
	}
	/* the five CAN brands of issue 4 at least (RS485 ones may join) */
	assert_true(n >= 5);
	for (size_t i = 0; i < 5; i++) {
		static const char *const names[] = { "deye", "growatt", "luxpower", "pylontech",
						     "victron" };

		assert_non_null(protocol_find(names[i]));
		assert_int_equal(protocol_find(names[i])->transport, PROTOCOL_TRANSPORT_CAN);
	}
	assert_null(protocol_find("no-such-brand"));
	assert_null(protocol_find(""));
}

static void test_registry_hooks(void **state)
{
	const struct inverter_protocol *p;

	for (size_t i = 0; (p = protocol_get(i)); i++) {
		switch (p->transport) {
		case PROTOCOL_TRANSPORT_CAN:
			assert_non_null(p->encode);
			assert_non_null(p->decode);
			assert_non_null(p->inverter_rx);
			assert_null(p->respond);
			assert_true(p->period_usec > 0);
			assert_int_equal(p->bitrate, 500000);
			assert_true(p->inverter_timeout_usec >= p->period_usec);
			assert_true(p->n_rx_ids == 0 || p->rx_ids != NULL);
			/* each id the protocol listens to means something to it */
			for (size_t k = 0; k < p->n_rx_ids; k++) {
				struct can_frame f = { .can_id = p->rx_ids[k], .len = 8 };

				assert_int_not_equal(p->inverter_rx(&f), PROTOCOL_RX_IGNORED);
			}
			/* an on-request protocol never volunteers frames */
			if (p->schedule == PROTOCOL_SCHEDULE_ON_REQUEST) {
				assert_null(p->encode_urgent);
			}
			break;
		case PROTOCOL_TRANSPORT_RS485:
			assert_non_null(p->respond);
			assert_null(p->encode);
			break;
		}
	}
}

static void test_aliases(void **state)
{
	const struct protocol_alias *a;
	size_t n = 0;

	for (size_t i = 0; (a = protocol_alias_get(i)); i++, n++) {
		assert_non_null(protocol_find(a->target));
		assert_ptr_equal(protocol_find(a->name), protocol_find(a->target));
		/* an alias never shadows a real protocol */
		for (size_t k = 0; protocol_get(k); k++) {
			assert_string_not_equal(protocol_get(k)->name, a->name);
		}
	}
	assert_true(n >= 2);
	assert_string_equal(protocol_find("goodwe")->name, "pylontech");
	assert_string_equal(protocol_find("sofar")->name, "pylontech");
}

/* CAN protocols only, in registry order */
static const struct inverter_protocol *can_proto(size_t i)
{
	const struct inverter_protocol *p;

	for (size_t k = 0; (p = protocol_get(k)); k++) {
		if (p->transport == PROTOCOL_TRANSPORT_CAN && i-- == 0) {
			return p;
		}
	}
	return NULL;
}

static void test_encode_needs_data(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;
	const struct inverter_protocol *p;

	for (size_t i = 0; (p = can_proto(i)); i++) {
		battery_state_init(&bs, 1);
		assert_int_equal(p->encode(&opt, &bs, T_NOW, f, PROTOCOL_FRAMES_MAX), -ENODATA);
		/* LIMITS, ELECTRICAL and CAPACITY are each required */
		for (unsigned g = BATTERY_GROUP_ELECTRICAL; g <= BATTERY_GROUP_LIMITS; g++) {
			t_state(&bs);
			bs.bank.updated_usec[g] = BATTERY_NEVER;
			if (g == BATTERY_GROUP_CELLS || g == BATTERY_GROUP_TEMPS) {
				assert_true(p->encode(&opt, &bs, T_NOW, f, PROTOCOL_FRAMES_MAX) > 0);
			} else {
				assert_int_equal(p->encode(&opt, &bs, T_NOW, f, PROTOCOL_FRAMES_MAX),
						 -ENODATA);
			}
		}
		t_state(&bs);
		assert_int_equal(p->encode(&opt, &bs, T_NOW, f, 1), -ENOBUFS);
	}
}

static void test_encode_frames_well_formed(void **state)
{
	struct can_frame a[PROTOCOL_FRAMES_MAX], b[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;
	const struct inverter_protocol *p;

	for (size_t i = 0; (p = can_proto(i)); i++) {
		int n;

		t_state(&bs);
		n = p->encode(&opt, &bs, T_NOW, a, PROTOCOL_FRAMES_MAX);
		assert_true(n > 0 && n <= PROTOCOL_FRAMES_MAX);
		for (int k = 0; k < n; k++) {
			assert_true(a[k].can_id <= CAN_SFF_MASK);
			assert_true(a[k].len >= 1 && a[k].len <= CAN_MAX_DLEN);
			for (int j = 0; j < k; j++) {
				assert_int_not_equal(a[j].can_id, a[k].can_id); /* one of each */
			}
		}
		/* pure: the same input gives the same bytes, whatever the time */
		assert_int_equal(p->encode(&opt, &bs, T_NOW + 12345, b, PROTOCOL_FRAMES_MAX), n);
		assert_memory_equal(a, b, (size_t)n * sizeof(a[0]));
	}
}

/* encode the reference state, decode it back: what the inverter understands */
static void test_round_trip(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { .send_dvl = true };
	struct battery_state in, out;
	const struct inverter_protocol *p;

	for (size_t i = 0; (p = can_proto(i)); i++) {
		const struct battery_pack *a = &in.bank, *b = &out.bank;
		int n;

		t_state(&in);
		in.bank.current_ma = -27050; /* discharging */
		in.bank.temp_min_dc = -90; /* below zero: two's complement on the wire */
		in.bank.temp_max_dc = -75;
		in.bank.alarms = BATTERY_ALARM_CELL_OVERVOLTAGE;
		in.bank.warnings = BATTERY_ALARM_CHARGE_OVERCURRENT;
		n = p->encode(&opt, &in, T_NOW, f, PROTOCOL_FRAMES_MAX);
		assert_true(n > 0);
		battery_state_init(&out, 1);
		for (int k = 0; k < n; k++) {
			assert_int_equal(p->decode(&f[k], T_NOW, &out), 1);
		}
		print_message("# %s: %d frames round trip\n", p->name, n);
		assert_true(t_ready(&out));
		assert_int_equal(b->charge_voltage_limit_mv, a->charge_voltage_limit_mv);
		assert_int_equal(b->charge_current_limit_ma, a->charge_current_limit_ma);
		assert_int_equal(b->discharge_current_limit_ma, a->discharge_current_limit_ma);
		assert_int_equal(b->voltage_mv, a->voltage_mv);
		assert_int_equal(b->current_ma, -27000); /* 0.1 A on the wire, truncated */
		assert_int_equal(b->soc_pct, a->soc_pct);
		assert_int_equal(b->soh_pct, a->soh_pct);
		/* highest, mean (Deye) or via kelvin (Victron 0x373): within the range */
		assert_true(b->temp_max_dc >= -90 && b->temp_max_dc <= -75);
		assert_true(b->alarms & BATTERY_ALARM_CELL_OVERVOLTAGE);
		assert_true(b->warnings & BATTERY_ALARM_CHARGE_OVERCURRENT);
		if (strcmp(p->name, "victron") == 0) {
			continue; /* Victron has no request flags: DVCC reads the limits */
		}
		assert_int_equal(b->requests & (BATTERY_REQUEST_CHARGE_ENABLE |
						BATTERY_REQUEST_DISCHARGE_ENABLE),
				 BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE);
	}
}

/*
 * Each single alarm/warning bit: the frames the inverter gets from it,
 * decoded and encoded again, are the same frames (the mapping is stable),
 * and a bit every protocol has a place for is never lost.
 */
static void test_alarm_mapping_stable(void **state)
{
	struct can_frame f1[PROTOCOL_FRAMES_MAX], f2[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs, back;
	const struct inverter_protocol *p;

	for (size_t i = 0; (p = can_proto(i)); i++) {
		for (unsigned bit = 0; bit < BATTERY_ALARM__COUNT; bit++) {
			for (int warn = 0; warn < 2; warn++) {
				int n1, n2;

				if (!warn && 1u << bit == BATTERY_ALARM_LOW_SOC &&
				    strcmp(p->name, "victron") == 0) {
					/*
					 * Victron's general alarm pair decodes
					 * to the stricter "BMS internal" (a
					 * stop), by design (victron.c)
					 */
					continue;
				}
				t_state(&bs);
				*(warn ? &bs.bank.warnings : &bs.bank.alarms) = 1u << bit;
				n1 = p->encode(&opt, &bs, T_NOW, f1, PROTOCOL_FRAMES_MAX);
				back = bs;
				back.bank.alarms = back.bank.warnings = 0;
				for (int k = 0; k < n1; k++) {
					assert_int_equal(p->decode(&f1[k], T_NOW, &back), 1);
				}
				n2 = p->encode(&opt, &back, T_NOW, f2, PROTOCOL_FRAMES_MAX);
				assert_int_equal(n1, n2);
				for (int k = 0; k < n1; k++) {
					t_assert_frame(&f2[k], &f1[k]);
				}
			}
		}
	}
}

static void test_decode_rejects(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs, out;
	const struct inverter_protocol *p;

	for (size_t i = 0; (p = can_proto(i)); i++) {
		int n;

		t_state(&bs);
		n = p->encode(&opt, &bs, T_NOW, f, PROTOCOL_FRAMES_MAX);
		for (int k = 0; k < n; k++) {
			struct can_frame g = f[k];
			int r;

			/* empty: either malformed or a frame that carries nothing */
			battery_state_init(&out, 1);
			g.len = 0;
			r = p->decode(&g, T_NOW, &out);
			assert_true(r == -EBADMSG || r == 1);
			if (r == 1) {
				for (unsigned grp = 0; grp < BATTERY_GROUP__COUNT; grp++) {
					assert_false(battery_pack_has(&out.bank, grp));
				}
			}
			/* extended, remote and error frames are never ours */
			g = f[k];
			g.can_id |= CAN_EFF_FLAG;
			assert_int_equal(p->decode(&g, T_NOW, &out), 0);
			assert_int_equal(p->inverter_rx(&g), PROTOCOL_RX_IGNORED);
			g = f[k];
			g.can_id |= CAN_RTR_FLAG;
			assert_int_equal(p->decode(&g, T_NOW, &out), 0);
			g = f[k];
			g.can_id |= CAN_ERR_FLAG;
			assert_int_equal(p->decode(&g, T_NOW, &out), 0);
		}
		/* a foreign id */
		f[0] = (struct can_frame){ .can_id = 0x7FF, .len = 8 };
		assert_int_equal(p->decode(&f[0], T_NOW, &out), 0);
		assert_int_equal(p->inverter_rx(&f[0]), PROTOCOL_RX_IGNORED);
		/* our own frames are not inverter frames */
		n = p->encode(&opt, &bs, T_NOW, f, PROTOCOL_FRAMES_MAX);
		for (int k = 0; k < n; k++) {
			assert_int_equal(p->inverter_rx(&f[k]), PROTOCOL_RX_IGNORED);
		}
	}
}

/* urgent frames are frames of the full set, byte for byte */
static void test_urgent_subset_of_set(void **state)
{
	struct can_frame set[PROTOCOL_FRAMES_MAX], urg[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state prev, bs;
	const struct inverter_protocol *p;

	for (size_t i = 0; (p = can_proto(i)); i++) {
		int n, u;

		if (!p->encode_urgent) {
			continue;
		}
		t_state(&prev);
		bs = prev;
		assert_int_equal(p->encode_urgent(&opt, &prev, &bs, T_NOW, urg, PROTOCOL_FRAMES_MAX),
				 0);
		bs.bank.charge_current_limit_ma = 20000;
		bs.bank.alarms = BATTERY_ALARM_CHARGE_OVERTEMP;
		n = p->encode(&opt, &bs, T_NOW, set, PROTOCOL_FRAMES_MAX);
		u = p->encode_urgent(&opt, &prev, &bs, T_NOW, urg, PROTOCOL_FRAMES_MAX);
		assert_true(u >= 2);
		for (int k = 0; k < u; k++) {
			const struct can_frame *same = t_find(set, n, urg[k].can_id);

			assert_non_null(same);
			t_assert_frame(&urg[k], same);
		}
		/* a raised limit and a cleared alarm wait for the period */
		assert_int_equal(p->encode_urgent(&opt, &bs, &prev, T_NOW, urg, PROTOCOL_FRAMES_MAX),
				 0);
		/* never before the first full set */
		battery_state_init(&prev, 1);
		assert_int_equal(p->encode_urgent(&opt, &prev, &bs, T_NOW, urg, PROTOCOL_FRAMES_MAX),
				 0);
	}
}

/* The shared rounding helpers: upper bounds down, lower bounds up, no overflow. */
static void test_limit_rounding_helpers(void **state)
{
	static const struct {
		uint32_t milli, step, up, low;
	} cases[] = {
		{ 0, 100, 0, 0 },
		{ 1, 100, 0, 1 },
		{ 99, 100, 0, 1 },
		{ 100, 100, 1, 1 },
		{ 101, 100, 1, 2 },
		{ 48050, 100, 480, 481 }, /* DVL 48.05 V: 48.1 V, never 48.0 V */
		{ 55299, 100, 552, 553 },
		{ 7, 1, 7, 7 },
		{ 19, 10, 1, 2 },
		{ UINT32_MAX, 100, 42949672, 42949673 },
		{ UINT32_MAX, 1, UINT32_MAX, UINT32_MAX },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(protocol_upper_limit(cases[i].milli, cases[i].step), cases[i].up);
		assert_int_equal(protocol_lower_limit(cases[i].milli, cases[i].step), cases[i].low);
	}
}

/*
 * No encoder loosens a limit through rounding: what an inverter decodes
 * is never above CVL, CCL, DCL and never below DVL, for values that are not
 * whole wire steps.
 */
static void test_limits_never_loosen(void **state)
{
	static const uint32_t mv[] = { 48050, 55299, 46401, 51200, 43999 };
	static const uint32_t ma[] = { 99, 100, 101, 150049, 208399 };
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { .send_dvl = true };
	struct battery_state in, out;
	const struct inverter_protocol *p;

	for (size_t i = 0; (p = can_proto(i)); i++) {
		for (size_t k = 0; k < sizeof(mv) / sizeof(mv[0]); k++) {
			const struct battery_pack *a = &in.bank, *b = &out.bank;
			int n;

			t_state(&in);
			in.bank.charge_voltage_limit_mv = mv[k] + 4000;
			in.bank.discharge_voltage_limit_mv = mv[k];
			in.bank.charge_current_limit_ma = ma[k];
			in.bank.discharge_current_limit_ma = ma[(k + 2) % 5];
			n = p->encode(&opt, &in, T_NOW, f, PROTOCOL_FRAMES_MAX);
			assert_true(n > 0);
			battery_state_init(&out, 1);
			for (int j = 0; j < n; j++) {
				assert_true(p->decode(&f[j], T_NOW, &out) >= 0);
			}
			assert_true(b->charge_voltage_limit_mv <= a->charge_voltage_limit_mv);
			assert_true(b->charge_current_limit_ma <= a->charge_current_limit_ma);
			assert_true(b->discharge_current_limit_ma <= a->discharge_current_limit_ma);
			/* by less than one step */
			assert_true(b->charge_voltage_limit_mv + 100 > a->charge_voltage_limit_mv);
			if (b->discharge_voltage_limit_mv == 0) {
				continue; /* Growatt carries no DVL */
			}
			/* by less than one step */
			assert_true(b->discharge_voltage_limit_mv >= a->discharge_voltage_limit_mv);
			assert_true(b->discharge_voltage_limit_mv - a->discharge_voltage_limit_mv < 100);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry_sorted_and_found),
		cmocka_unit_test(test_registry_hooks),
		cmocka_unit_test(test_aliases),
		cmocka_unit_test(test_encode_needs_data),
		cmocka_unit_test(test_encode_frames_well_formed),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_alarm_mapping_stable),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_urgent_subset_of_set),
		cmocka_unit_test(test_limit_rounding_helpers),
		cmocka_unit_test(test_limits_never_loosen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
