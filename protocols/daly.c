/* SPDX-License-Identifier: MIT */
/*
 * Daly "smart BMS" on its UART or RS485 port: the 0xA5 protocol. Pure
 * request, framing and decoding for the generic serial engine.
 *
 * Primary document: Dongguan Daly Electronics "Daly UART/485
 * Communications Protocol" V1.2, 2020-12-22 (in maland16/daly-bms-uart
 * docs/), cited as "V1.2 §n" by its section numbers: §1.1 UART (9600 8N1),
 * §2.2 address assignment, §2.3 frame format, §3 the data IDs 0x90-0x98.
 *
 * Secondary sources (read, not copied), and where they settle what V1.2
 * leaves open:
 *   - the sign of the current. V1.2 §3 0x90 gives "30000 offset, 0.1 A"
 *     and no direction. mr-manuel/venus-os_dbus-serialbattery
 *     dbus-serialbattery/bms/daly.py and dreadnought/python-daly-bms
 *     dalybms/daly_bms.py ("negative=charging") both read a raw value
 *     below 30000 as charging, and the real capture in tomatensaus/bms
 *     test_daly.py agrees with V1.2's own 0x93 state byte: raw 30526 with
 *     state 2, "discharge". Followed: current_ma = (30000 - raw) x 100.
 *     daly.py has a switch to invert it for boards wired the other way
 *     round; we have none yet (see bmsbridge-protocols(7));
 *   - several packs on one RS485 bus: daly.py (multi-BMS support, its
 *     CHANGELOG) sends host address 0x3F + n to board n and accepts only
 *     answers whose address byte is n; V1.2 §2.2 names the pair of board
 *     1, 0x40 (upper computer) and 0x01 (BMS master);
 *   - 0x94 bytes 5-6: V1.2 marks them reserved, daly_bms.py and daly.py
 *     read them as the charge cycle count (u16), as does the real
 *     capture (5 cycles). Followed.
 *
 * 0x95 (cell voltages) and 0x96 (temperatures) answer with several
 * frames (V1.2 §3: 3 cells or 7 sensors a frame, "according to the actual
 * number"), ceil(cells / 3) and ceil(sensors / 7) of them over UART
 * (dreadnought/python-daly-bms daly_bms.py: "via UART/USB the BMS returns
 * only frames that have data"; dbus-serialbattery daly.py reads
 * ceil(cells / 3) "sentences"), a count only 0x94 tells. The engine keeps
 * it for us (->answer_frames(), ->decode_memo(): memo = cells | sensors
 * << 8, from 0x94) and hands us the whole answer. Once the counts are
 * known and fit battery_state (32 cells, 8 sensors), 0x95 / 0x96 replace
 * the extremes of 0x91 / 0x92, which are then skipped; before (the first
 * round, or after the pack went silent) and for larger packs, 0x91 / 0x92
 * fill the groups (cell_count = temp_count = 0: extremes only).
 *   - Frame numbers: V1.2 §3 says "starting from 0"; every real answer
 *     we have starts at 1 (20233332choi/DJY_EvTLMT tests/test_daly_bms.py,
 *     a live R24TS capture; maland16/daly-bms-uart example-output.txt
 *     "Frame No.: 1"; daly.py computes cell (frame - 1) x 3). Both are
 *     taken: frames 0..n-1 or 1..n, in order (a board built to the
 *     document would otherwise never be read: the independent pack
 *     reader, written from V1.2 alone, numbers from 0).
 *   - Some boards send more 0x96 frames than their sensors need (a
 *     second, all-zero frame with one sensor, in more than one published
 *     log); the engine lets frames beyond the count go by.
 * 0x97 (balancing) has no field in battery_state.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "battery.h"
#include "bms_serial.h"
#include "byteorder.h"
#include "daly.h"
#include "macro.h"

#define DALY_START 0xA5		/* V1.2 §2.3 start flag */
#define DALY_DATA_LEN 8		/* V1.2 §2.3 data length, fixed */
#define DALY_FRAME_LEN 13	/* start, address, ID, length, 8 data, checksum */
#define DALY_HOST_BASE 0x3F	/* host address of board n: 0x3F + n (daly.py) */
#define DALY_REQUEST_MIN 0x20	/* V1.2 §2.2: 0x20 GPRS, 0x40 PC, 0x80 Bluetooth */
#define DALY_CURRENT_ZERO 30000 /* V1.2 §3 0x90: offset, 0.1 A */
#define DALY_TEMP_ZERO 40	/* V1.2 §3 0x92: offset, degC */
#define DALY_CELLS_MAX 48	/* V1.2 §3 0x95: cells 1-48 */
#define DALY_TEMPS_MAX 16	/* V1.2 §3 0x96: temperatures 1-16 */
#define DALY_FRAMES_MAX 16	/* V1.2 §3 0x95: "sent in 16 frames" at most */
#define DALY_CELLS_A_FRAME 3	/* V1.2 §3 0x95: byte 0 frame number, bytes 1-6 cells */
#define DALY_TEMPS_A_FRAME 7	/* V1.2 §3 0x96: byte 0 frame number, bytes 1-7 */

/* the poll round: V1.2 §3 data IDs */
static const uint8_t daly_cmd[] = {
	0x90, /* total voltage, current, SOC */
	0x91, /* highest and lowest cell voltage */
	0x92, /* highest and lowest temperature */
	0x93, /* charge / discharge MOS state, remaining capacity */
	0x94, /* status information 1: counts, cycles */
	0x95, /* cell voltages, ceil(cells / 3) frames (once 0x94 told the count) */
	0x96, /* temperatures, ceil(sensors / 7) frames (idem) */
	0x98, /* battery failure status */
};

/* the engine's word per pack (->answer_frames()): 0x94's counts */
#define DALY_MEMO_CELLS(m) ((unsigned)(m)&0xFFu)
#define DALY_MEMO_TEMPS(m) ((unsigned)((m) >> 8) & 0xFFu)

/*
 * V1.2 §3 0x98, bytes 0-6, bit by bit: level 1 is a warning, level 2 an
 * alarm (protection); the faults of bytes 4-6 are alarms.
 */
struct daly_bit {
	uint32_t warning;
	uint32_t alarm;
};

static const struct daly_bit daly_fault_map[7][8] = {
	[0] = {
		{ BATTERY_ALARM_CELL_OVERVOLTAGE, 0 },	/* cell volt high level 1 */
		{ 0, BATTERY_ALARM_CELL_OVERVOLTAGE },	/* cell volt high level 2 */
		{ BATTERY_ALARM_CELL_UNDERVOLTAGE, 0 }, /* cell volt low level 1 */
		{ 0, BATTERY_ALARM_CELL_UNDERVOLTAGE }, /* cell volt low level 2 */
		{ BATTERY_ALARM_PACK_OVERVOLTAGE, 0 },	/* sum volt high level 1 */
		{ 0, BATTERY_ALARM_PACK_OVERVOLTAGE },	/* sum volt high level 2 */
		{ BATTERY_ALARM_PACK_UNDERVOLTAGE, 0 }, /* sum volt low level 1 */
		{ 0, BATTERY_ALARM_PACK_UNDERVOLTAGE }, /* sum volt low level 2 */
	},
	[1] = {
		{ BATTERY_ALARM_CHARGE_OVERTEMP, 0 },	    /* chg temp high level 1 */
		{ 0, BATTERY_ALARM_CHARGE_OVERTEMP },	    /* chg temp high level 2 */
		{ BATTERY_ALARM_CHARGE_UNDERTEMP, 0 },	    /* chg temp low level 1 */
		{ 0, BATTERY_ALARM_CHARGE_UNDERTEMP },	    /* chg temp low level 2 */
		{ BATTERY_ALARM_DISCHARGE_OVERTEMP, 0 },    /* dischg temp high level 1 */
		{ 0, BATTERY_ALARM_DISCHARGE_OVERTEMP },    /* dischg temp high level 2 */
		{ BATTERY_ALARM_DISCHARGE_UNDERTEMP, 0 },   /* dischg temp low level 1 */
		{ 0, BATTERY_ALARM_DISCHARGE_UNDERTEMP },   /* dischg temp low level 2 */
	},
	[2] = {
		{ BATTERY_ALARM_CHARGE_OVERCURRENT, 0 },    /* chg overcurrent level 1 */
		{ 0, BATTERY_ALARM_CHARGE_OVERCURRENT },    /* chg overcurrent level 2 */
		{ BATTERY_ALARM_DISCHARGE_OVERCURRENT, 0 }, /* dischg overcurrent level 1 */
		{ 0, BATTERY_ALARM_DISCHARGE_OVERCURRENT }, /* dischg overcurrent level 2 */
		{ 0, 0 },				    /* SOC high level 1 */
		{ 0, 0 },				    /* SOC high level 2 */
		{ BATTERY_ALARM_LOW_SOC, 0 },		    /* SOC low level 1 */
		{ 0, BATTERY_ALARM_LOW_SOC },		    /* SOC low level 2 */
	},
	[3] = {
		{ BATTERY_ALARM_CELL_IMBALANCE, 0 }, /* diff volt level 1 */
		{ 0, BATTERY_ALARM_CELL_IMBALANCE }, /* diff volt level 2 */
		/* diff temp levels 1 and 2, bits 4-7 reserved: no such bit */
	},
	[4] = {
		{ 0, BATTERY_ALARM_MOSFET_OVERTEMP }, /* chg MOS temp high */
		{ 0, BATTERY_ALARM_MOSFET_OVERTEMP }, /* dischg MOS temp high */
		{ 0, BATTERY_ALARM_BMS_INTERNAL },    /* chg MOS temp sensor err */
		{ 0, BATTERY_ALARM_BMS_INTERNAL },    /* dischg MOS temp sensor err */
		{ 0, BATTERY_ALARM_BMS_INTERNAL },    /* chg MOS adhesion err */
		{ 0, BATTERY_ALARM_BMS_INTERNAL },    /* dischg MOS adhesion err */
		{ 0, BATTERY_ALARM_BMS_INTERNAL },    /* chg MOS open circuit err */
		{ 0, BATTERY_ALARM_BMS_INTERNAL },    /* dischg MOS open circuit err */
	},
	[5] = {
		/* AFE, voltage collection, temperature sensor, EEPROM, RTC,
		 * precharge, communication, internal communication */
		{ 0, BATTERY_ALARM_BMS_INTERNAL }, { 0, BATTERY_ALARM_BMS_INTERNAL },
		{ 0, BATTERY_ALARM_BMS_INTERNAL }, { 0, BATTERY_ALARM_BMS_INTERNAL },
		{ 0, BATTERY_ALARM_BMS_INTERNAL }, { 0, BATTERY_ALARM_BMS_INTERNAL },
		{ 0, BATTERY_ALARM_BMS_INTERNAL }, { 0, BATTERY_ALARM_BMS_INTERNAL },
	},
	[6] = {
		{ 0, BATTERY_ALARM_BMS_INTERNAL },	/* current module fault */
		{ 0, BATTERY_ALARM_BMS_INTERNAL },	/* sum voltage detect fault */
		{ 0, BATTERY_ALARM_SHORT_CIRCUIT },	/* short circuit protect fault */
		{ 0, BATTERY_ALARM_CELL_UNDERVOLTAGE }, /* low volt forbidden chg fault */
		/* bits 4-7 reserved */
	},
};

/* V1.2 §2.3 note 2: the low byte of the sum of all previous bytes */
static uint8_t daly_checksum(const uint8_t *p, size_t n)
{
	unsigned sum = 0;

	for (size_t i = 0; i < n; i++) {
		sum += p[i];
	}
	return (uint8_t)sum;
}

static ssize_t daly_request(unsigned step, uint8_t address, uint8_t *buf, size_t n)
{
	if (step >= ARRAY_SIZE(daly_cmd) || address < daly_serial.address_min ||
	    address > daly_serial.address_max) {
		return -EINVAL;
	}
	if (!buf || n < DALY_FRAME_LEN) {
		return -ENOBUFS;
	}
	/* V1.2 §2.3.1: A5 <host address> <ID> 08, 8 reserved bytes, checksum */
	memset(buf, 0, DALY_FRAME_LEN);
	buf[0] = DALY_START;
	buf[1] = (uint8_t)(DALY_HOST_BASE + address);
	buf[2] = daly_cmd[step];
	buf[3] = DALY_DATA_LEN;
	buf[12] = daly_checksum(buf, 12);
	return DALY_FRAME_LEN;
}

static ssize_t daly_frame(unsigned step, uint8_t address, const uint8_t *buf, size_t len,
			  size_t *skip)
{
	if (!buf || step >= ARRAY_SIZE(daly_cmd)) {
		return -EINVAL;
	}
	if (len < 1) {
		return 0;
	}
	if (buf[0] != DALY_START || (len >= 4 && buf[3] != DALY_DATA_LEN)) {
		return -EBADMSG;
	}
	if (len < DALY_FRAME_LEN) {
		return 0;
	}
	if (buf[12] != daly_checksum(buf, 12)) {
		return -EBADMSG;
	}
	/* a request (ours echoed, another master's), another board, another ID */
	if (buf[1] >= DALY_REQUEST_MIN || buf[1] != address || buf[2] != daly_cmd[step]) {
		if (skip) {
			*skip = DALY_FRAME_LEN;
		}
		return -ENOMSG;
	}
	return DALY_FRAME_LEN;
}

/* one answer frame of @cmd: V1.2 §2.3 */
static bool daly_answer_ok(const uint8_t *f, uint8_t cmd)
{
	return f[0] == DALY_START && f[1] < DALY_REQUEST_MIN && f[2] == cmd &&
	       f[3] == DALY_DATA_LEN && f[12] == daly_checksum(f, 12);
}

/* V1.2 §3 0x90 */
static int daly_decode_soc(const uint8_t *d, struct battery_pack *p, uint64_t now)
{
	uint16_t soc_pm = get_be16(d + 6); /* 0.1 % */

	if (soc_pm > 1000) {
		return -EBADMSG;
	}
	p->voltage_mv = (uint32_t)get_be16(d) * 100; /* cumulative total, 0.1 V */
	/* 30000 offset, 0.1 A; below the offset is charging (header) */
	p->current_ma = ((int32_t)DALY_CURRENT_ZERO - (int32_t)get_be16(d + 4)) * 100;
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, now);

	battery_pack_set_soc_cpct(p, soc_pm * 10u); /* V1.2 §3 0x90 SOC, 0.1 % */
	p->soh_pct = 100;			    /* V1.2 has no state of health */
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now);
	return 0;
}

/* V1.2 §3: a 1-based cell or sensor number, 0 for "none" */
static uint8_t daly_index(uint8_t no)
{
	return no == 0 ? BATTERY_INDEX_NONE : (uint8_t)(no - 1);
}

/* V1.2 §3 0x91: the extremes only (cell_count 0) */
static int daly_decode_cell_range(const uint8_t *d, struct battery_pack *p, uint64_t now)
{
	uint16_t max_mv = get_be16(d), min_mv = get_be16(d + 3);

	if (min_mv > max_mv || d[2] > DALY_CELLS_MAX || d[5] > DALY_CELLS_MAX) {
		return -EBADMSG;
	}
	p->cell_count = 0;
	p->cell_max_mv = max_mv;
	p->cell_max_idx = daly_index(d[2]);
	p->cell_min_mv = min_mv;
	p->cell_min_idx = daly_index(d[5]);
	p->cell_min_pack = p->cell_max_pack = 0;
	battery_pack_mark(p, BATTERY_GROUP_CELLS, now);
	return 0;
}

/* V1.2 §3 0x92: the extremes only (temp_count 0), 40 offset, 1 degC */
static int daly_decode_temp_range(const uint8_t *d, struct battery_pack *p, uint64_t now)
{
	if (d[2] > d[0]) {
		return -EBADMSG;
	}
	p->temp_count = 0;
	p->temp_max_dc = (int16_t)(((int)d[0] - DALY_TEMP_ZERO) * 10);
	p->temp_max_idx = daly_index(d[1]);
	p->temp_min_dc = (int16_t)(((int)d[2] - DALY_TEMP_ZERO) * 10);
	p->temp_min_idx = daly_index(d[3]);
	p->temp_min_pack = p->temp_max_pack = 0;
	p->mosfet_temp_dc = BATTERY_TEMP_NONE;
	battery_pack_mark(p, BATTERY_GROUP_TEMPS, now);
	return 0;
}

/* V1.2 §3 0x93 */
static int daly_decode_mos(const uint8_t *d, struct battery_pack *p, uint64_t now)
{
	if (d[0] > 2) { /* 0 stationary, 1 charge, 2 discharge */
		return -EBADMSG;
	}
	p->requests = 0;
	if (d[1]) {
		p->requests |= BATTERY_REQUEST_CHARGE_ENABLE; /* charge MOS state */
	}
	if (d[2]) {
		p->requests |= BATTERY_REQUEST_DISCHARGE_ENABLE; /* discharge MOS state */
	}
	battery_pack_mark(p, BATTERY_GROUP_STATUS, now);

	p->remaining_mah = get_be32(d + 4); /* u32 mAh */
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now);
	return 0;
}

/* V1.2 §3 0x94; cycles in bytes 5-6 as the readers (header) */
static int daly_decode_status(const uint8_t *d, struct battery_pack *p, uint64_t now)
{
	if (d[0] == 0 || d[0] > DALY_CELLS_MAX) {
		return -EBADMSG;
	}
	p->cycles = get_be16(d + 5);
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now);
	/* byte 0 "No of battery string": cells in series, known before (or without) 0x95 */
	p->cell_series = d[0];
	return 0;
}

/* V1.2 §3 0x98 */
static int daly_decode_failure(const uint8_t *d, struct battery_pack *p, uint64_t now)
{
	p->alarms = 0;
	p->warnings = 0;
	for (unsigned byte = 0; byte < ARRAY_SIZE(daly_fault_map); byte++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			if (d[byte] & (1u << bit)) {
				p->alarms |= daly_fault_map[byte][bit].alarm;
				p->warnings |= daly_fault_map[byte][bit].warning;
			}
		}
	}
	battery_pack_mark(p, BATTERY_GROUP_STATUS, now);
	return 0;
}

/*
 * The 8 data bytes of one single-frame answer (V1.2 §3), the same over
 * UART and CAN (include/daly.h): 0x95 / 0x96 take several frames and 0x97
 * has no field, so they are not decoded here.
 */
int daly_decode_data(uint8_t cmd, const uint8_t *d, struct battery_pack *p, uint64_t now_usec)
{
	if (!d || !p) {
		return -EINVAL;
	}
	switch (cmd) {
	case 0x90:
		return daly_decode_soc(d, p, now_usec);
	case 0x91:
		return daly_decode_cell_range(d, p, now_usec);
	case 0x92:
		return daly_decode_temp_range(d, p, now_usec);
	case 0x93:
		return daly_decode_mos(d, p, now_usec);
	case 0x94:
		return daly_decode_status(d, p, now_usec);
	case 0x98:
		return daly_decode_failure(d, p, now_usec);
	default:
		return -EINVAL;
	}
}

static int daly_decode(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
		       uint64_t now_usec, struct battery_state *bs)
{
	if (!ans || !bs || pack >= BATTERY_PACKS_MAX || step >= ARRAY_SIZE(daly_cmd)) {
		return -EINVAL;
	}
	if (len != DALY_FRAME_LEN || !daly_answer_ok(ans, daly_cmd[step])) {
		return -EBADMSG;
	}
	switch (daly_cmd[step]) {
	case 0x95:
	case 0x96:
		return -EBADMSG; /* several frames: only with 0x94's counts (->decode_memo()) */
	default:
		return daly_decode_data(daly_cmd[step], ans + 4, &bs->packs[pack], now_usec);
	}
}

/* frames that make an answer of @n values, @per a frame */
static unsigned daly_frames_for(unsigned n, unsigned per)
{
	return (n + per - 1) / per;
}

static unsigned daly_answer_frames(unsigned step, uint32_t memo)
{
	unsigned cells = DALY_MEMO_CELLS(memo), temps = DALY_MEMO_TEMPS(memo);
	bool cells_fit = cells >= 1 && cells <= BATTERY_CELLS_MAX;
	bool temps_fit = temps >= 1 && temps <= BATTERY_TEMPS_MAX;

	if (step >= ARRAY_SIZE(daly_cmd)) {
		return 1;
	}
	switch (daly_cmd[step]) {
	case 0x91:
		return cells_fit ? 0 : 1; /* 0x95 reads every cell */
	case 0x92:
		return temps_fit ? 0 : 1; /* 0x96 reads every sensor */
	case 0x95:
		return cells_fit ? daly_frames_for(cells, DALY_CELLS_A_FRAME) : 0;
	case 0x96:
		return temps_fit ? daly_frames_for(temps, DALY_TEMPS_A_FRAME) : 0;
	default:
		return 1;
	}
}

/*
 * The frames of a 0x95 / 0x96 answer, back to back: as many as @n values
 * need, numbered 0..k-1 or 1..k in order (header), each intact. Return: the frame
 * count, or -EBADMSG.
 */
static int daly_frames_ok(const uint8_t *ans, size_t len, uint8_t cmd, unsigned n, unsigned per)
{
	unsigned k = daly_frames_for(n, per);

	if (n == 0 || k > DALY_FRAMES_MAX || len != (size_t)k * DALY_FRAME_LEN) {
		return -EBADMSG;
	}
	/* the first frame's number: 0 (V1.2 §3) or 1 (every real board) */
	if (ans[4] > 1) {
		return -EBADMSG;
	}
	for (unsigned i = 0; i < k; i++) {
		const uint8_t *f = ans + (size_t)i * DALY_FRAME_LEN;

		if (!daly_answer_ok(f, cmd) || f[4] != ans[4] + i) {
			return -EBADMSG;
		}
	}
	return (int)k;
}

/* V1.2 §3 0x95: cell i in frame i / 3 + 1, bytes 1 + 2 (i % 3), u16 mV */
static int daly_decode_cells(const uint8_t *ans, size_t len, unsigned cells, struct battery_pack *p,
			     uint64_t now)
{
	uint16_t mv[BATTERY_CELLS_MAX];

	if (cells > BATTERY_CELLS_MAX ||
	    daly_frames_ok(ans, len, 0x95, cells, DALY_CELLS_A_FRAME) < 0) {
		return -EBADMSG;
	}
	for (unsigned i = 0; i < cells; i++) {
		const uint8_t *f = ans + (size_t)(i / DALY_CELLS_A_FRAME) * DALY_FRAME_LEN;

		mv[i] = get_be16(f + 5 + 2 * (i % DALY_CELLS_A_FRAME));
		if (mv[i] > 5000) {
			return -EBADMSG; /* no lithium cell reads above 5 V: not a voltage */
		}
	}
	p->cell_count = (uint8_t)cells;
	memcpy(p->cell_mv, mv, cells * sizeof(mv[0]));
	battery_pack_update_cell_extremes(p);
	p->cell_min_pack = p->cell_max_pack = 0;
	battery_pack_mark(p, BATTERY_GROUP_CELLS, now);
	return 0;
}

/* V1.2 §3 0x96: sensor i in frame i / 7 + 1, byte 1 + i % 7, 40 offset, 1 degC */
static int daly_decode_temps(const uint8_t *ans, size_t len, unsigned temps, struct battery_pack *p,
			     uint64_t now)
{
	if (temps > BATTERY_TEMPS_MAX ||
	    daly_frames_ok(ans, len, 0x96, temps, DALY_TEMPS_A_FRAME) < 0) {
		return -EBADMSG;
	}
	p->temp_count = (uint8_t)temps;
	for (unsigned i = 0; i < temps; i++) {
		const uint8_t *f = ans + (size_t)(i / DALY_TEMPS_A_FRAME) * DALY_FRAME_LEN;

		p->temp_dc[i] =
			(int16_t)(((int)f[5 + i % DALY_TEMPS_A_FRAME] - DALY_TEMP_ZERO) * 10);
	}
	battery_pack_update_temp_extremes(p);
	p->temp_min_pack = p->temp_max_pack = 0;
	p->mosfet_temp_dc = BATTERY_TEMP_NONE;
	battery_pack_mark(p, BATTERY_GROUP_TEMPS, now);
	return 0;
}

static int daly_decode_memo(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
			    uint64_t now_usec, struct battery_state *bs, uint32_t *memo)
{
	unsigned cells, temps;
	int r;

	if (!ans || !bs || !memo || pack >= BATTERY_PACKS_MAX || step >= ARRAY_SIZE(daly_cmd)) {
		return -EINVAL;
	}
	cells = DALY_MEMO_CELLS(*memo);
	temps = DALY_MEMO_TEMPS(*memo);
	switch (daly_cmd[step]) {
	case 0x95:
		return daly_decode_cells(ans, len, cells, &bs->packs[pack], now_usec);
	case 0x96:
		return daly_decode_temps(ans, len, temps, &bs->packs[pack], now_usec);
	case 0x94:
		r = daly_decode(step, ans, len, pack, now_usec, bs);
		if (r == 0) {
			/* V1.2 §3 0x94 byte 0 cells, byte 1 temperature sensors */
			if (ans[5] > DALY_TEMPS_MAX) {
				*memo = ans[4];
			} else {
				*memo = (uint32_t)ans[4] | (uint32_t)ans[5] << 8;
			}
		}
		return r;
	default:
		return daly_decode(step, ans, len, pack, now_usec, bs);
	}
}

const struct bms_serial_ops daly_serial = {
	.baud = 9600, /* V1.2 §1.1 */
	.address_min = 1,
	.address_max = 15, /* host address 0x40-0x4E: below Bluetooth's 0x80 */
	.n_steps = ARRAY_SIZE(daly_cmd),
	.answer_max = DALY_FRAMES_MAX * DALY_FRAME_LEN,
	.request = daly_request,
	.frame = daly_frame,
	.decode = daly_decode,
	.answer_frames = daly_answer_frames,
	.decode_memo = daly_decode_memo,
};
