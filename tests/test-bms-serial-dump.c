/* SPDX-License-Identifier: MIT */
/*
 * Captures of the six polled serial BMS families read back through their
 * own ops (protocols/bms_serial_dump.c, `bmsbridgectl decode <family>`):
 * tests/data/bms-serial-*.txt and pylontech-rs485-us2000bplus.txt, each
 * with its source in its header. The values are the published ones the
 * families' own unit tests hold (each named there); the capture path must
 * give the same, through requests, framing, several-frame answers and the
 * frames of other commands. Then malformed captures, each with its line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "battery.h"
#include "bms_serial.h"

#define T_NOW UINT64_C(7000000)

static struct battery_state bs;
static struct bms_serial_dump st;

static char *slurp(const char *name)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", TESTS_DATA_DIR, name);
	f = fopen(path, "re");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static int decode_file(const struct bms_serial_ops *ops, const char *name)
{
	char *text = slurp(name);
	int r;

	battery_state_init(&bs, 1);
	r = bms_serial_dump_decode(ops, text, strlen(text), T_NOW, &bs, &st);
	free(text);
	return r;
}

static void assert_cells(const struct battery_pack *p, const uint16_t *mv, unsigned n)
{
	assert_int_equal(p->cell_count, n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(p->cell_mv[i], mv[i]);
	}
	assert_int_equal(p->updated_usec[BATTERY_GROUP_CELLS], T_NOW);
}

/* test-pylontech-rs485-bms.c test_us2000bplus_analog: the same answers */
static void test_pylontech_us2000bplus(void **state)
{
	static const uint16_t cells[15] = { 3359, 3360, 3360, 3360, 3360, 3360, 3361, 3360,
					    3360, 3361, 3362, 3360, 3362, 3362, 3361 };
	const struct battery_pack *p = &bs.packs[0];

	(void)state;
	assert_int_equal(
		decode_file(&pylontech_rs485_bms_serial, "pylontech-rs485-us2000bplus.txt"), 0);
	/* the capture's 0x42 carries INFO 02 02 / 02 01: requests by their header */
	assert_int_equal(st.n_packs, 1);
	assert_int_equal(st.address[0], 2);
	assert_int_equal(st.requests, 6);
	assert_int_equal(st.answers, 6);
	assert_true(st.foreign > 0); /* 0x4F, 0x51, 0x47 ... */
	assert_cells(p, cells, 15);
	assert_int_equal(p->voltage_mv, 50408);
	assert_int_equal(p->current_ma, 2100);
	assert_int_equal(p->remaining_mah, 35500);
	assert_int_equal(p->full_mah, 50000);
	assert_int_equal(p->cycles, 79);
	assert_int_equal(p->temp_count, 4);
	assert_int_equal(p->temp_dc[3], 260);
	assert_int_equal(p->mosfet_temp_dc, 290);
	assert_int_equal(bs.pack_count, 1);
}

/* test-seplos-v2.c test_readme_telemetry (pack 0) and test_fw1606_* (pack 1) */
static void test_seplos_v2_two_packs(void **state)
{
	static const uint16_t cells0[4] = { 3287, 3305, 3316, 3286 };
	static const uint16_t cells1[4] = { 3333, 3333, 3334, 3333 };

	(void)state;
	assert_int_equal(decode_file(&seplos_v2_serial, "bms-serial-seplos-v2.txt"), 0);
	assert_int_equal(st.n_packs, 2);
	assert_int_equal(st.address[0], 0);
	assert_int_equal(st.address[1], 1);
	assert_int_equal(bs.pack_count, 2);
	assert_int_equal(bs.packs[0].voltage_mv, 52800);
	assert_int_equal(bs.packs[0].current_ma, -6760);
	assert_int_equal(bs.packs[0].cycles, 70);
	assert_int_equal(bs.packs[0].cell_count, 16);
	assert_memory_equal(bs.packs[0].cell_mv, cells0, sizeof(cells0));
	assert_int_equal(bs.packs[1].voltage_mv, 53340);
	assert_int_equal(bs.packs[1].remaining_mah, 221700);
	assert_int_equal(bs.packs[1].cycles, 7);
	assert_memory_equal(bs.packs[1].cell_mv, cells1, sizeof(cells1));
	assert_int_equal(bs.packs[1].temp_dc[1], 117);
	/* 0x44 was asked of pack 1 only */
	assert_true(battery_pack_has(&bs.packs[1], BATTERY_GROUP_STATUS));
	assert_false(battery_pack_has(&bs.packs[0], BATTERY_GROUP_STATUS));
}

/* test-pace.c: exampleReadAnalogInformationResponseV25 / StatusInformation */
static void test_pace_v25(void **state)
{
	const struct battery_pack *p = &bs.packs[0];

	(void)state;
	assert_int_equal(decode_file(&pace_serial, "bms-serial-pace-v25.txt"), 0);
	assert_int_equal(st.address[0], 1);
	assert_int_equal(st.answers, 2);
	assert_int_equal(p->voltage_mv, 52429);
	assert_int_equal(p->current_ma, -2250);
	assert_int_equal(p->remaining_mah, 48190);
	assert_int_equal(p->cycles, 140);
	assert_int_equal(p->soc_pct, 47);
	assert_int_equal(p->cell_count, 16);
	assert_int_equal(p->cell_mv[0], 3271);
	assert_int_equal(p->cell_mv[1], 3272);
	assert_true(battery_pack_has(p, BATTERY_GROUP_STATUS));
}

/* test-eg4-lifepower4.c: exampleRead{Analog,Status}InformationResponseV20 (EG4 variant) */
static void test_eg4_lifepower4(void **state)
{
	const struct battery_pack *p = &bs.packs[0];

	(void)state;
	assert_int_equal(decode_file(&eg4_lifepower4_serial, "bms-serial-eg4-lifepower4.txt"), 0);
	assert_int_equal(st.n_packs, 1);
	assert_int_equal(st.address[0], 1);
	assert_int_equal(st.requests, 2);
	assert_int_equal(st.answers, 2);
	assert_int_equal(p->voltage_mv, 53970);
	assert_int_equal(p->current_ma, 6690);
	assert_int_equal(p->remaining_mah, 86170);
	assert_int_equal(p->full_mah, 98600);
	assert_int_equal(p->cycles, 84);
	assert_int_equal(p->soc_pct, 87);
	assert_int_equal(p->soh_pct, 98);
	assert_int_equal(p->cell_count, 16);
	assert_int_equal(p->cell_mv[0], 3375);
	assert_int_equal(p->cell_mv[12], 3376);
	assert_int_equal(p->temp_dc[1], 250);
	assert_int_equal(p->requests,
			 BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE);
	assert_true(battery_pack_has(p, BATTERY_GROUP_STATUS));
}

/* test-jbd.c (the same capture): 15.60 V, 4.98 Ah; the last 0x04 of the two */
static void test_jbd_sp04s034(void **state)
{
	static const uint16_t cells[4] = { 3909, 3902, 3895, 3901 };
	const struct battery_pack *p = &bs.packs[0];

	(void)state;
	assert_int_equal(decode_file(&jbd_serial, "bms-serial-jbd-sp04s034.txt"), 0);
	assert_int_equal(st.requests, 5);
	assert_int_equal(st.answers, 5);
	assert_int_equal(p->voltage_mv, 15600);
	assert_int_equal(p->current_ma, 0);
	assert_int_equal(p->remaining_mah, 4980);
	assert_int_equal(p->soc_pct, 100);
	assert_cells(p, cells, 4);
}

/* test-daly.c test_r24ts_round: the same answers, 0x95 in five frames */
static void test_daly_r24ts(void **state)
{
	static const uint16_t cells[14] = { 3790, 3794, 3793, 3791, 3793, 3793, 3793,
					    3793, 3794, 3794, 3794, 3791, 3793, 3791 };
	const struct battery_pack *p = &bs.packs[0];

	(void)state;
	assert_int_equal(decode_file(&daly_serial, "bms-serial-daly-r24ts.txt"), 0);
	assert_int_equal(st.requests, 8); /* 0x97 is not ours */
	assert_int_equal(st.answers, 8);
	assert_int_equal(p->voltage_mv, 53000);
	assert_int_equal(p->soc_pct, 51);
	assert_int_equal(p->remaining_mah, 40960);
	assert_cells(p, cells, 14);
	assert_int_equal(p->cell_max_mv - p->cell_min_mv, 4);
	assert_int_equal(p->temp_count, 2);
	assert_int_equal(p->temp_dc[0], 160);
	assert_int_equal(p->temp_dc[1], 160);
	assert_int_equal(p->alarms | p->warnings, 0);
}

/*
 * The SP57B all-frames capture: pack 1's PIA and PIB (twice), among the
 * master's traffic with address 0x00 and 0xE0 and other registers. The
 * last round's values (the capture has none published; these follow the
 * Seplos V3 document as test-seplos-v3.c does).
 */
static void test_seplos_v3_sp57b(void **state)
{
	const struct battery_pack *p = &bs.packs[0];

	(void)state;
	assert_int_equal(decode_file(&seplos_v3_serial, "bms-serial-seplos-v3-sp57b.txt"), 0);
	assert_int_equal(st.n_packs, 1);
	assert_int_equal(st.address[0], 1);
	assert_int_equal(st.answers, 4);
	assert_true(st.foreign + st.skipped > 20);
	assert_int_equal(p->voltage_mv, 53240);
	assert_int_equal(p->current_ma, -1370);
	assert_int_equal(p->remaining_mah, 274560);
	assert_int_equal(p->full_mah, 330000);
	assert_int_equal(p->cycles, 10);
	assert_int_equal(p->cell_count, 16);
	assert_int_equal(p->cell_mv[0], 3327);
	assert_int_equal(p->cell_mv[3], 3328);
}

static int expect_error(const struct bms_serial_ops *ops, const char *text, unsigned line)
{
	struct battery_state fresh;
	int r;

	battery_state_init(&bs, 1);
	battery_state_init(&fresh, 1);
	r = bms_serial_dump_decode(ops, text, strlen(text), T_NOW, &bs, &st);
	assert_int_equal(r, -EBADMSG);
	assert_int_equal(st.bad_line, line);
	assert_non_null(st.why);
	assert_memory_equal(&bs, &fresh, sizeof(bs));
	return r;
}

/* malformed captures, derived from the real ones above */
static void test_malformed(void **state)
{
	(void)state;
	/* an answer with no request before it */
	expect_error(&daly_serial, "A5 01 90 08 02 12 00 00 75 30 02 00 F9\n", 1);
	/* a broken checksum in the answer */
	expect_error(&daly_serial,
		     "A5 40 90 08 00 00 00 00 00 00 00 00 7D\n"
		     "A5 01 90 08 02 12 00 00 75 30 02 00 F8\n",
		     2);
	/* four of 0x95's five frames, then the next request */
	expect_error(&daly_serial,
		     "A5 40 94 08 00 00 00 00 00 00 00 00 81\n"
		     "A5 01 94 08 0E 02 00 00 00 00 00 3A 8C\n"
		     "A5 40 95 08 00 00 00 00 00 00 00 00 82\n"
		     "A5 01 95 08 01 0E CE 0E D2 0E D1 00 DF\n"
		     "A5 01 95 08 02 0E CF 0E D1 0E D1 00 E0\n"
		     "A5 01 95 08 03 0E D1 0E D1 0E D2 00 E4\n"
		     "A5 01 95 08 04 0E D2 0E D2 0E CF 00 E4\n"
		     "A5 01 95 08\n"
		     "A5 40 98 08 00 00 00 00 00 00 00 00 85\n",
		     9);
	/* not hex, an odd digit */
	expect_error(&jbd_serial, "DD A5 03 00 FF FD 7G\n", 1);
	expect_error(&jbd_serial, "# poll\nDD A5 03 00 FF FD 7\n", 2);
	/* a "~" frame with a control character in it */
	expect_error(&pace_serial, "~25014642E00201FD30\n~2501\t4600\n", 2);
	/* only requests: nothing to decode */
	expect_error(&pace_serial, "~25014642E00201FD30\n~25014644E00201FD2E\n", 2);
	/* an empty capture */
	expect_error(&seplos_v3_serial, "# nothing\n\n", 2);
	/* a NUL byte */
	{
		static const char nul[] = "01.04.10.00\0.00.11.34.C6\n";

		assert_int_equal(bms_serial_dump_decode(&seplos_v3_serial, nul, sizeof(nul) - 1,
							T_NOW, &bs, &st),
				 -EBADMSG);
		assert_int_equal(st.bad_line, 1);
	}
	assert_int_equal(bms_serial_dump_decode(&daly_serial, "", 0, 0, &bs, &st), -EINVAL);
}

/* a request nobody answered is counted, not an error; the next one is read */
static void test_unanswered(void **state)
{
	(void)state;
	const char *text = "A5 41 90 08 00 00 00 00 00 00 00 00 7E\n" /* board 2: silent */
			   "A5 40 90 08 00 00 00 00 00 00 00 00 7D\n"
			   "A5 01 90 08 02 12 00 00 75 30 02 00 F9\n";

	battery_state_init(&bs, 1);
	assert_int_equal(bms_serial_dump_decode(&daly_serial, text, strlen(text), T_NOW, &bs, &st),
			 0);
	assert_int_equal(st.unanswered, 1);
	assert_int_equal(st.answers, 1);
	assert_int_equal(st.n_packs, 2);
	assert_int_equal(st.address[0], 2);
	assert_int_equal(bs.packs[1].voltage_mv, 53000);
	assert_false(battery_pack_has(&bs.packs[0], BATTERY_GROUP_ELECTRICAL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pylontech_us2000bplus),
		cmocka_unit_test(test_seplos_v2_two_packs),
		cmocka_unit_test(test_pace_v25),
		cmocka_unit_test(test_eg4_lifepower4),
		cmocka_unit_test(test_jbd_sp04s034),
		cmocka_unit_test(test_daly_r24ts),
		cmocka_unit_test(test_seplos_v3_sp57b),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_unanswered),
	};

	return cmocka_run_group_tests_name("bms-serial-dump", tests, NULL, NULL);
}
