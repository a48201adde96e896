/* SPDX-License-Identifier: MIT */
/*
 * JBD / LLT (protocols/jbd.c): golden decodes of real answers with the
 * values their publishers decoded, the worked examples of the Jiabaida
 * "General Protocol V4" (syssi/esphome-jbd-bms
 * docs/Jiabaida.communication.protocol.pdf), and malformed answers derived
 * from the real ones by changing one field (and the checksum where the
 * field, not the checksum, is under test). Each case names its source.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "battery.h"
#include "bms_serial.h"

#define T_NOW UINT64_C(7000000)

enum { STEP_BASIC, STEP_CELLS, STEP_NAME };

/* hex digits of @s (separators of any kind skipped) into @out */
static size_t hex(const char *s, uint8_t *out, size_t n)
{
	size_t len = 0;
	int hi = -1;

	for (; *s; s++) {
		int h = (*s >= '0' && *s <= '9')   ? *s - '0'
			: (*s >= 'A' && *s <= 'F') ? *s - 'A' + 10
			: (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10
						   : -1;

		if (h < 0) {
			continue;
		}
		if (hi < 0) {
			hi = h;
		} else {
			assert_true(len < n);
			out[len++] = (uint8_t)(hi << 4 | h);
			hi = -1;
		}
	}
	assert_int_equal(hi, -1);
	return len;
}

/* an independent checksum (V4 §2: two's complement of the byte sum from index 2) */
static void fix_checksum(uint8_t *f, size_t len)
{
	unsigned sum = 0;

	for (size_t i = 2; i < len - 3; i++) {
		sum += f[i];
	}
	sum = (0x10000 - (sum & 0xFFFF)) & 0xFFFF;
	f[len - 3] = (uint8_t)(sum >> 8);
	f[len - 2] = (uint8_t)sum;
}

/* frame then decode, as the engine will; returns decode's result */
static int run(unsigned step, const uint8_t *f, size_t len, struct battery_state *bs)
{
	size_t skip = 0;
	ssize_t r = jbd_serial.frame(step, 1, f, len, &skip);

	if (r < 0) {
		return (int)r;
	}
	assert_int_equal(r, (ssize_t)len);
	return jbd_serial.decode(step, f, len, 0, T_NOW, bs);
}

static void assert_unchanged(const struct battery_state *bs)
{
	struct battery_state fresh;

	battery_state_init(&fresh, 1);
	assert_memory_equal(bs, &fresh, sizeof(fresh));
}

/* V4 §3 requests, and the polls in esphome-jbd-bms docs/pdus/JBD-SP04S034-L4S-200A-B-U.txt */
static void test_requests(void **state)
{
	static const char *want[] = {
		"DD A5 03 00 FF FD 77",
		"DD A5 04 00 FF FC 77",
		"DD A5 05 00 FF FB 77",
	};
	uint8_t buf[16], exp[16];

	(void)state;
	assert_int_equal(jbd_serial.n_steps, 3);
	assert_int_equal(jbd_serial.baud, 9600);
	for (unsigned s = 0; s < 3; s++) {
		size_t n = hex(want[s], exp, sizeof(exp));

		assert_int_equal(jbd_serial.request(s, 1, buf, sizeof(buf)), (ssize_t)n);
		assert_memory_equal(buf, exp, n);
	}
	assert_int_equal(jbd_serial.request(0, 1, buf, 6), -ENOBUFS);
}

/*
 * JBD-SP04S034-L4S-200A-B-U, sw 8.0, real UART capture:
 * esphome-jbd-bms docs/pdus/JBD-SP04S034-L4S-200A-B-U.txt, line 1; values
 * as decoded in tests/components/jbd_bms/frames.h BASICINFO_FRAME.
 */
static void test_sp04s034_basic(void **state)
{
	struct battery_state bs;
	uint8_t f[64];
	size_t n = hex("DD:03:00:1D:06:18:00:00:01:F2:01:F4:00:00:2C:7C:00:00:00:00:00:00:80:64:"
		       "03:04:03:0B:8B:0B:8A:0B:84:FA:8D:77",
		       f, sizeof(f));
	struct battery_pack *p = &bs.packs[0];

	(void)state;
	battery_state_init(&bs, 1);
	assert_int_equal(run(STEP_BASIC, f, n, &bs), 0);
	assert_int_equal(p->voltage_mv, 15600);	  /* 15.60 V */
	assert_int_equal(p->current_ma, 0);	  /* 0.00 A */
	assert_int_equal(p->remaining_mah, 4980); /* 4.98 Ah */
	assert_int_equal(p->full_mah, 5000);	  /* 5.00 Ah nominal */
	assert_int_equal(p->cycles, 0);
	assert_int_equal(p->soc_pct, 100);
	assert_int_equal(p->alarms, 0); /* errors_bitmask 0 */
	/* operation status 0x03 "Charging, Discharging" */
	assert_int_equal(p->requests,
			 BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE);
	assert_int_equal(p->temp_count, 3);
	assert_int_equal(p->temp_dc[0], 224); /* 22.4 degC */
	assert_int_equal(p->temp_dc[1], 223);
	assert_int_equal(p->temp_dc[2], 217);
	assert_int_equal(p->temp_max_dc, 224);
	assert_int_equal(p->temp_min_dc, 217);
	assert_int_equal(p->temp_min_idx, 2);
	assert_int_equal(p->mosfet_temp_dc, BATTERY_TEMP_NONE);
	assert_true(battery_pack_has(p, BATTERY_GROUP_ELECTRICAL));
	assert_true(battery_pack_has(p, BATTERY_GROUP_CAPACITY));
	assert_true(battery_pack_has(p, BATTERY_GROUP_TEMPS));
	assert_true(battery_pack_has(p, BATTERY_GROUP_STATUS));
	assert_false(battery_pack_has(p, BATTERY_GROUP_CELLS));
	assert_false(battery_pack_has(p, BATTERY_GROUP_LIMITS));
	assert_int_equal(p->updated_usec[BATTERY_GROUP_ELECTRICAL], T_NOW);
}

/* same capture, line 3; frames.h CELLINFO_FRAME */
static void test_sp04s034_cells(void **state)
{
	struct battery_state bs;
	uint8_t f[64];
	size_t n = hex("DD:04:00:08:0F:45:0F:3D:0F:37:0F:3D:FE:C6:77", f, sizeof(f));
	struct battery_pack *p = &bs.packs[0];

	(void)state;
	battery_state_init(&bs, 1);
	assert_int_equal(run(STEP_CELLS, f, n, &bs), 0);
	assert_int_equal(p->cell_count, 4);
	assert_int_equal(p->cell_mv[0], 3909);
	assert_int_equal(p->cell_mv[1], 3901);
	assert_int_equal(p->cell_mv[2], 3895);
	assert_int_equal(p->cell_mv[3], 3901);
	assert_int_equal(p->cell_max_mv, 3909);
	assert_int_equal(p->cell_max_idx, 0); /* max_cell 1 (1-based) */
	assert_int_equal(p->cell_min_mv, 3895);
	assert_int_equal(p->cell_min_idx, 2); /* min_cell 3 (1-based) */
	assert_true(battery_pack_has(p, BATTERY_GROUP_CELLS));
	assert_false(battery_pack_has(p, BATTERY_GROUP_ELECTRICAL));
}

/* same capture, line 5: "JBD-SP04S034-L4S-200A-B-U"; writes nothing */
static void test_sp04s034_name(void **state)
{
	struct battery_state bs;
	uint8_t f[64];
	size_t n = hex("DD:05:00:19:4A:42:44:2D:53:50:30:34:53:30:33:34:2D:4C:34:53:2D:32:30:30:"
		       "41:2D:42:2D:55:FA:08:77",
		       f, sizeof(f));

	(void)state;
	battery_state_init(&bs, 1);
	assert_int_equal(run(STEP_NAME, f, n, &bs), 0);
	assert_unchanged(&bs);
}

/*
 * JBD 4S 5 Ah, sw 8.0, MOS software lock active, real UART capture in
 * esphome-jbd-bms README.md "Example response all sensors enabled",
 * with the values ESPHome published there.
 */
static void test_readme_software_lock(void **state)
{
	struct battery_state bs;
	uint8_t f[64];
	size_t n = hex("DD:03:00:1D:06:0B:00:00:01:ED:01:F4:00:00:2C:7C:00:00:00:00:10:00:80:63:"
		       "02:04:03:0B:A0:0B:9D:0B:98:FA:55:77",
		       f, sizeof(f));
	struct battery_pack *p = &bs.packs[0];

	(void)state;
	battery_state_init(&bs, 1);
	assert_int_equal(run(STEP_BASIC, f, n, &bs), 0);
	assert_int_equal(p->voltage_mv, 15470);
	assert_int_equal(p->current_ma, 0);
	assert_int_equal(p->remaining_mah, 4930);
	assert_int_equal(p->full_mah, 5000);
	assert_int_equal(p->soc_pct, 99);
	/* errors bitmask 4096 "Mosfet Software Lock": the owner's switch, no alarm */
	assert_int_equal(p->alarms, 0);
	/* operation status 2: discharging only */
	assert_int_equal(p->requests, BATTERY_REQUEST_DISCHARGE_ENABLE);
	assert_int_equal(p->temp_dc[0], 245);
	assert_int_equal(p->temp_dc[1], 242);
	assert_int_equal(p->temp_dc[2], 237);

	n = hex("DD:04:00:08:0F:23:0F:1C:0F:12:0F:1D:FF:4E:77", f, sizeof(f));
	assert_int_equal(run(STEP_CELLS, f, n, &bs), 0);
	assert_int_equal(p->cell_mv[0], 3875);
	assert_int_equal(p->cell_mv[1], 3868);
	assert_int_equal(p->cell_mv[2], 3858);
	assert_int_equal(p->cell_mv[3], 3869);
	assert_int_equal(p->cell_max_idx, 0);		       /* max voltage cell 1 */
	assert_int_equal(p->cell_min_idx, 2);		       /* min voltage cell 3 */
	assert_int_equal(p->cell_max_mv - p->cell_min_mv, 17); /* delta 0.017 V */
}

/*
 * Overkill JBD-SP25S003-L16S-100A-100A-B, sw 2.0, on a bench without
 * cells (real UART capture, esphome-jbd-bms
 * docs/pdus/JBD-SP25S003-L16S-100A-100A-B.txt, values as logged there):
 * no NTC, so no temperature group; cell 16 reads 0 V.
 */
static void test_sp25s003_bench(void **state)
{
	struct battery_state bs;
	uint8_t f[64];
	size_t n = hex("DD:03:00:17:00:00:00:00:00:00:27:10:00:00:2C:50:00:00:00:00:00:00:20:00:"
		       "01:10:00:FF:05:77",
		       f, sizeof(f));
	struct battery_pack *p = &bs.packs[0];

	(void)state;
	battery_state_init(&bs, 1);
	assert_int_equal(run(STEP_BASIC, f, n, &bs), 0);
	assert_int_equal(p->voltage_mv, 0);
	assert_int_equal(p->full_mah, 100000); /* nominal 100.00 Ah */
	assert_int_equal(p->soc_pct, 0);
	assert_int_equal(p->requests, BATTERY_REQUEST_CHARGE_ENABLE); /* operation status 1 */
	assert_false(battery_pack_has(p, BATTERY_GROUP_TEMPS));
	assert_int_equal(p->temp_count, 0);

	n = hex("DD:04:00:20:0E:10:0E:10:0E:10:0E:10:0E:10:0E:10:0E:10:0E:10:0E:10:0E:10:0E:10:"
		"0E:10:0E:10:0E:10:0E:10:00:00:FE:1E:77",
		f, sizeof(f));
	assert_int_equal(run(STEP_CELLS, f, n, &bs), 0);
	assert_int_equal(p->cell_count, 16);
	for (unsigned i = 0; i < 15; i++) {
		assert_int_equal(p->cell_mv[i], 3600);
	}
	assert_int_equal(p->cell_mv[15], 0);
	assert_int_equal(p->cell_min_idx, 15); /* min voltage cell 16 */
	assert_int_equal(p->cell_max_idx, 0);  /* max voltage cell 1 */
	assert_int_equal(p->cell_max_mv, 3600);
}

/*
 * JBD-DP04S007 (ECO-WORTHY 12 V 100 Ah), sw 2.3, real answer (read over
 * BLE, the same 0xDD frame) with 11 bytes after the NTC list that V4
 * does not describe: esphome-jbd-bms docs/pdus/JBD-DP04S007L4S100A-BLE.txt
 * line 1. The capture carries no decoded values; these follow V4 §3.
 */
static void test_dp04s007_extended(void **state)
{
	struct battery_state bs;
	uint8_t f[64];
	size_t n = hex("DD.03.00.22.05.5F.00.00.4A.DF.4E.20.00.02.2D.14.00.00.00.00.00.00.23.60."
		       "03.04.01.0B.B1.00.00.00.4E.20.4A.DF.00.00.FA.C2.77",
		       f, sizeof(f));
	struct battery_pack *p = &bs.packs[0];

	(void)state;
	battery_state_init(&bs, 1);
	assert_int_equal(run(STEP_BASIC, f, n, &bs), 0);
	assert_int_equal(p->voltage_mv, 13750);
	assert_int_equal(p->current_ma, 0);
	assert_int_equal(p->remaining_mah, 191670);
	assert_int_equal(p->full_mah, 200000);
	assert_int_equal(p->cycles, 2);
	assert_int_equal(p->soc_pct, 96);
	assert_int_equal(p->temp_count, 1);
	assert_int_equal(p->temp_dc[0], 262); /* 2993 - 2731 */
}

/*
 * V4 §5, the worked 0x03 answer (document, not a capture): 66.23 V,
 * -20.12 A discharging, 34930 mAh of 40000 mAh, 2 cycles, 87 %, 17 cells,
 * first probe 0x0B98. V4 writes "2968 - 2731 = 247 ... 24.7 degC"; the
 * subtraction gives 237 (23.7 degC): the document's arithmetic slips, its
 * rule (0.1 K, 2731 = 0 degC) is followed. The only published answer with
 * a current.
 */
static void test_v4_discharging(void **state)
{
	struct battery_state bs;
	uint8_t f[64];
	size_t n = hex("DD 03 00 1F 19 DF F8 24 0D A5 0F A0 00 02 24 91 00 00 00 00 00 00 12 57 "
		       "03 11 04 0B 98 0B A9 0B 96 0B 97 F8 9A 77",
		       f, sizeof(f));
	struct battery_pack *p = &bs.packs[0];

	(void)state;
	battery_state_init(&bs, 1);
	assert_int_equal(run(STEP_BASIC, f, n, &bs), 0);
	assert_int_equal(p->voltage_mv, 66230);
	assert_int_equal(p->current_ma, -20120); /* discharging: negative, as ours */
	assert_int_equal(p->remaining_mah, 34930);
	assert_int_equal(p->full_mah, 40000);
	assert_int_equal(p->cycles, 2);
	assert_int_equal(p->soc_pct, 87);
	assert_int_equal(p->temp_count, 4);
	assert_int_equal(p->temp_dc[0], 237);
	assert_int_equal(p->temp_dc[1], 254);
	assert_int_equal(p->temp_dc[3], 236);
}

/* V4 §3, the example 0x03 / 0x04 / 0x05 answers (document) */
static void test_v4_examples(void **state)
{
	struct battery_state bs;
	uint8_t f[64];
	size_t n = hex("DD 03 00 1B 17 00 00 00 02 D0 03 E8 00 00 20 78 00 00 00 00 00 00 10 48 "
		       "03 0F 02 0B 76 0B 82 FB FF 77",
		       f, sizeof(f));
	struct battery_pack *p = &bs.packs[0];

	(void)state;
	battery_state_init(&bs, 1);
	assert_int_equal(run(STEP_BASIC, f, n, &bs), 0);
	assert_int_equal(p->voltage_mv, 58880);
	assert_int_equal(p->remaining_mah, 7200);
	assert_int_equal(p->full_mah, 10000);
	assert_int_equal(p->soc_pct, 72);
	assert_int_equal(p->temp_dc[0], 203);
	assert_int_equal(p->temp_dc[1], 215);

	n = hex("DD 04 00 1E 0F 66 0F 63 0F 63 0F 64 0F 3E 0F 63 0F 37 0F 5B 0F 65 0F 3B 0F 63 "
		"0F 63 0F 3C 0F 66 0F 3D F9 F9 77",
		f, sizeof(f));
	assert_int_equal(run(STEP_CELLS, f, n, &bs), 0);
	assert_int_equal(p->cell_count, 15);
	assert_int_equal(p->cell_mv[0], 3942);
	assert_int_equal(p->cell_mv[14], 3901);
	assert_int_equal(p->cell_min_mv, 3895); /* cell 7, 0x0F37 */
	assert_int_equal(p->cell_min_idx, 6);

	n = hex("DD 05 00 0A 30 31 32 33 34 35 36 37 38 39 FD E9 77", f, sizeof(f));
	assert_int_equal(run(STEP_NAME, f, n, &bs), 0);
}

/*
 * Real payload, with the frame around it rebuilt: a 4S 280 Ah pack in
 * cell overvoltage protection (esphome-jbd-bms
 * tests/components/jbd_bms/frames.h BASICINFO_FRAME_CELL_OVERVOLTAGE,
 * "real hardware capture (BLE log)"): errors bitmask 0x0001.
 */
static void test_cell_overvoltage(void **state)
{
	struct battery_state bs;
	uint8_t f[64];
	size_t n = hex("DD 03 00 1D 05 94 00 00 6D 60 6D 60 00 08 2C 7C 00 00 00 00 00 01 80 64 "
		       "02 04 03 0B 82 0B 7C 0B 77 00 00 77",
		       f, sizeof(f));
	struct battery_pack *p = &bs.packs[0];

	(void)state;
	fix_checksum(f, n);
	battery_state_init(&bs, 1);
	assert_int_equal(run(STEP_BASIC, f, n, &bs), 0);
	assert_int_equal(p->voltage_mv, 14280);
	assert_int_equal(p->remaining_mah, 280000);
	assert_int_equal(p->cycles, 8);
	assert_int_equal(p->alarms, BATTERY_ALARM_CELL_OVERVOLTAGE);
	assert_int_equal(p->requests, BATTERY_REQUEST_DISCHARGE_ENABLE);
	assert_int_equal(p->temp_dc[0], 215);
	assert_int_equal(p->temp_dc[1], 209);
	assert_int_equal(p->temp_dc[2], 204);
}

/* V4 §3 Note 1: each protection bit on the SP04S034 answer */
static void test_protection_bits(void **state)
{
	static const uint32_t want[16] = {
		BATTERY_ALARM_CELL_OVERVOLTAGE,
		BATTERY_ALARM_CELL_UNDERVOLTAGE,
		BATTERY_ALARM_PACK_OVERVOLTAGE,
		BATTERY_ALARM_PACK_UNDERVOLTAGE,
		BATTERY_ALARM_CHARGE_OVERTEMP,
		BATTERY_ALARM_CHARGE_UNDERTEMP,
		BATTERY_ALARM_DISCHARGE_OVERTEMP,
		BATTERY_ALARM_DISCHARGE_UNDERTEMP,
		BATTERY_ALARM_CHARGE_OVERCURRENT,
		BATTERY_ALARM_DISCHARGE_OVERCURRENT,
		BATTERY_ALARM_SHORT_CIRCUIT,
		BATTERY_ALARM_BMS_INTERNAL,
		0,
		0,
		0,
		0,
	};
	struct battery_state bs;
	uint8_t f[64];
	size_t n = hex("DD:03:00:1D:06:18:00:00:01:F2:01:F4:00:00:2C:7C:00:00:00:00:00:00:80:64:"
		       "03:04:03:0B:8B:0B:8A:0B:84:FA:8D:77",
		       f, sizeof(f));

	(void)state;
	for (unsigned b = 0; b < 16; b++) {
		f[4 + 16] = (uint8_t)((1u << b) >> 8);
		f[4 + 17] = (uint8_t)(1u << b);
		fix_checksum(f, n);
		battery_state_init(&bs, 1);
		assert_int_equal(run(STEP_BASIC, f, n, &bs), 0);
		assert_int_equal(bs.packs[0].alarms, want[b]);
	}
}

/* framing: every prefix of a real answer asks for more; bad bytes are refused */
static void test_frame_edges(void **state)
{
	uint8_t f[64], echo[8];
	size_t n = hex("DD:04:00:08:0F:45:0F:3D:0F:37:0F:3D:FE:C6:77", f, sizeof(f));
	size_t skip = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(jbd_serial.frame(STEP_CELLS, 1, f, i, &skip), 0);
	}
	/* the cell answer while waiting for the basic one: well formed, not ours */
	assert_int_equal(jbd_serial.frame(STEP_BASIC, 1, f, n, &skip), -ENOMSG);
	assert_int_equal(skip, n);
	/* our own request echoed by a two-wire adapter */
	assert_int_equal(jbd_serial.request(STEP_CELLS, 1, echo, sizeof(echo)), 7);
	skip = 0;
	assert_int_equal(jbd_serial.frame(STEP_CELLS, 1, echo, 7, &skip), -ENOMSG);
	assert_int_equal(skip, 7);
	/* not a start byte */
	assert_int_equal(jbd_serial.frame(STEP_CELLS, 1, f + 1, n - 1, &skip), -EBADMSG);
	/* checksum */
	f[5] ^= 0x01;
	assert_int_equal(jbd_serial.frame(STEP_CELLS, 1, f, n, &skip), -EBADMSG);
	f[5] ^= 0x01;
	/* stop byte */
	f[n - 1] = 0x78;
	assert_int_equal(jbd_serial.frame(STEP_CELLS, 1, f, n, &skip), -EBADMSG);
}

/* V4 §3: status 0x80 is the BMS's error answer (length 0) */
static void test_error_answer(void **state)
{
	struct battery_state bs;
	uint8_t f[8];
	size_t n = hex("DD 03 80 00 FF 80 77", f, sizeof(f));

	(void)state;
	battery_state_init(&bs, 1);
	assert_int_equal(run(STEP_BASIC, f, n, &bs), -EPROTO);
	assert_unchanged(&bs);
}

/* impossible contents in well-framed answers: -EBADMSG, nothing written */
static void test_malformed(void **state)
{
	static const char *basic = "DD:03:00:1D:06:18:00:00:01:F2:01:F4:00:00:2C:7C:00:00:00:00:"
				   "00:00:80:64:03:04:03:0B:8B:0B:8A:0B:84:FA:8D:77";
	struct battery_state bs;
	uint8_t f[80];
	size_t n;

	(void)state;
	battery_state_init(&bs, 1);

	/* RSOC 101 % */
	n = hex(basic, f, sizeof(f));
	f[4 + 19] = 101;
	fix_checksum(f, n);
	assert_int_equal(run(STEP_BASIC, f, n, &bs), -EBADMSG);
	/* 33 cells in series */
	n = hex(basic, f, sizeof(f));
	f[4 + 21] = 33;
	fix_checksum(f, n);
	assert_int_equal(run(STEP_BASIC, f, n, &bs), -EBADMSG);
	/* four NTCs named, three present */
	n = hex(basic, f, sizeof(f));
	f[4 + 22] = 4;
	fix_checksum(f, n);
	assert_int_equal(run(STEP_BASIC, f, n, &bs), -EBADMSG);
	/* an NTC above 200 degC (0.1 K 4732) */
	n = hex(basic, f, sizeof(f));
	f[4 + 23] = 0x12;
	f[4 + 24] = 0x7C;
	fix_checksum(f, n);
	assert_int_equal(run(STEP_BASIC, f, n, &bs), -EBADMSG);
	/* shorter than the fixed fields: length 22 */
	n = hex(basic, f, sizeof(f));
	f[3] = 22;
	f[4 + 22] = 0xAA;
	f[4 + 23] = 0xAA;
	f[4 + 24] = 0x77;
	n = 4 + 22 + 3;
	fix_checksum(f, n);
	assert_int_equal(run(STEP_BASIC, f, n, &bs), -EBADMSG);

	/* cells: odd length, empty, 33 cells */
	n = hex("DD 04 00 03 0F 45 0F 00 00 77", f, sizeof(f));
	fix_checksum(f, n);
	assert_int_equal(run(STEP_CELLS, f, n, &bs), -EBADMSG);
	n = hex("DD 04 00 00 00 00 77", f, sizeof(f));
	fix_checksum(f, n);
	assert_int_equal(run(STEP_CELLS, f, n, &bs), -EBADMSG);
	memset(f, 0x0F, sizeof(f));
	f[0] = 0xDD;
	f[1] = 0x04;
	f[2] = 0x00;
	f[3] = 66;
	n = 4 + 66 + 3;
	f[n - 1] = 0x77;
	fix_checksum(f, n);
	assert_int_equal(run(STEP_CELLS, f, n, &bs), -EBADMSG);

	/* name: a control character */
	n = hex("DD 05 00 03 41 0A 42 00 00 77", f, sizeof(f));
	fix_checksum(f, n);
	assert_int_equal(run(STEP_NAME, f, n, &bs), -EBADMSG);

	assert_unchanged(&bs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_sp04s034_basic),
		cmocka_unit_test(test_sp04s034_cells),
		cmocka_unit_test(test_sp04s034_name),
		cmocka_unit_test(test_readme_software_lock),
		cmocka_unit_test(test_sp25s003_bench),
		cmocka_unit_test(test_dp04s007_extended),
		cmocka_unit_test(test_v4_discharging),
		cmocka_unit_test(test_v4_examples),
		cmocka_unit_test(test_cell_overvoltage),
		cmocka_unit_test(test_protection_bits),
		cmocka_unit_test(test_frame_edges),
		cmocka_unit_test(test_error_answer),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests_name("jbd", tests, NULL, NULL);
}
