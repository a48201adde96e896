/* SPDX-License-Identifier: MIT */
/*
 * The BMS driver registry (protocols/bms_registry.c): sorted, every name
 * found, every serial driver either the JK-PB block decoder or a polled
 * family on the generic engine (never both), and the six families with
 * the baud and address range of their documents (cited in each file).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "bms.h"
#include "bms_serial.h"

static void test_sorted_and_found(void **state)
{
	const struct bms_driver *d, *prev = NULL;

	(void)state;
	for (size_t i = 0; (d = bms_driver_get(i)); i++) {
		assert_ptr_equal(bms_driver_find(d->name), d);
		if (prev) {
			assert_true(strcmp(prev->name, d->name) < 0);
		}
		prev = d;
		if (d->transport == BMS_TRANSPORT_SERIAL) {
			/* one of the two serial paths, never both */
			assert_true((d->decode_block != NULL) != (d->serial != NULL));
			if (d->serial) {
				assert_int_equal(d->baud, d->serial->baud);
				assert_true(d->serial->address_min <= d->serial->address_max);
				assert_true(d->serial->n_steps > 0);
				assert_non_null(d->serial->request);
				assert_non_null(d->serial->frame);
				assert_non_null(d->serial->decode);
			}
			/* several read methods (JK-PB): each polled one a complete round */
			for (int m = 0; d->serial_method && m < 3; m++) {
				const struct bms_serial_ops *o = d->serial_method(m);

				assert_null(d->serial);
				if (!o) {
					continue; /* a method that never sends (listen) */
				}
				assert_int_equal(o->baud, d->baud);
				assert_true(o->n_steps > 0);
				assert_non_null(o->request);
				assert_non_null(o->identify); /* JK-PB's answers may come late */
				assert_true(o->decode != NULL || o->decode_part != NULL);
				assert_true(!o->decode_part || o->part_size > 0);
				assert_non_null(o->step_names);
				for (unsigned st = 0; st < o->n_steps; st++) {
					assert_non_null(o->step_names[st]);
				}
			}
		} else {
			assert_null(d->serial);
			assert_null(d->serial_method);
		}
	}
	assert_null(bms_driver_find("jkbms"));
}

static const struct family {
	const char *name;
	const struct bms_serial_ops *ops;
	uint32_t baud;
	unsigned lo, hi;
} families[] = {
	{ "daly", &daly_serial, 9600, 1, 15 },
	{ "eg4-lifepower4", &eg4_lifepower4_serial, 9600, 1, 15 },
	{ "eg4-ll", &eg4_ll_serial, 9600, 1, 16 },
	{ "jbd", &jbd_serial, 9600, 1, 1 },
	{ "pace", &pace_serial, 9600, 0, 15 },
	{ "pace-modbus", &pace_modbus_serial, 9600, 1, 15 },
	{ "pylontech-rs485", &pylontech_rs485_bms_serial, 9600, 2, 16 },
	{ "seplos-v2", &seplos_v2_serial, 9600, 0, 15 },
	{ "seplos-v3", &seplos_v3_serial, 19200, 0, 127 },
};

static void test_families(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		const struct family *f = &families[i];
		const struct bms_driver *d = bms_driver_find(f->name);

		assert_non_null(d);
		assert_int_equal(d->transport, BMS_TRANSPORT_SERIAL);
		assert_ptr_equal(d->serial, f->ops);
		assert_int_equal(d->baud, f->baud);
		assert_int_equal(d->serial->address_min, f->lo);
		assert_int_equal(d->serial->address_max, f->hi);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sorted_and_found),
		cmocka_unit_test(test_families),
	};

	return cmocka_run_group_tests_name("bms-registry", tests, NULL, NULL);
}
