/* SPDX-License-Identifier: MIT */
/*
 * `jk-pb-modbus`: the JK-PB "inverter BMS" on RS485, pure decoders.
 *
 * Sources (read, not copied):
 *   - mr-manuel/venus-os_dbus-serialbattery dbus-serialbattery/bms/jkbms_pb.py
 *     (the trigger method, proven on multi-pack installs: offsets of the
 *     status, settings and about frames, the sum8 checksum at byte 299,
 *     the 8-byte write echo after the frame, the alarm bit list);
 *   - syssi/esphome-jk-bms esp32-jk-pb-modbus-example.yaml (the register
 *     method on real PB firmware: the 0x1000 / 0x1200 / 0x1400 maps, JK's
 *     byte addressing, big-endian U_WORD / U_DWORD / S_DWORD fields) and
 *     components/jk_bms_ble/jk_bms_ble.cpp (the same JK02_32S layout over
 *     BLE: signed 0.1 degC temperatures, MOS temperature at 144);
 *   - golden frames: syssi/esphome-jk-bms
 *     tests/components/jk_bms_ble/frames_jk02_32s_v19.h, a JK-PB2A16S20P
 *     hw 19A sw 19.27 (tests/data/jk-pb-v19.hex), and a real RS485
 *     trigger exchange, request, frame and write echo, posted in
 *     shining-man/bsc_fw#118 (tests/data/jk-pb-rs485-bsc118.hex), and a
 *     logic-analyser capture of a pack at address 3 (poll, status and
 *     settings frames, 0x00 padding, write echoes) in
 *     mr-manuel/venus-os_dbus-serialbattery tests/bms/test_jkbms_pb.py
 *     (tests/data/jk-pb-rs485-la1010.hex);
 *   - JK "BMS RS485 Modbus" V1.1 and V1.0 (syssi/esphome-jk-bms
 *     docs/pb2a16s20p/): the register maps every field below cites;
 *   - the bus master's behaviour: mr-manuel bms-docs/JKBMS-PB.md,
 *     txubelaxu/esphome-jk-bms components/jk_rs485_sniffer/.
 *
 * Which method real PB firmware answers: BOTH exist in the field.
 * jkbms_pb.py reads PB packs (fw 15.x-19.x, up to 4+ packs on one bus)
 * with the 0x10 trigger and gets the 300-byte frames; the syssi Modbus
 * example reads the same packs with plain 0x03 reads of 0x1200 (issue
 * syssi/esphome-jk-bms#390: "cell voltages and resistances match the
 * app"; PR #699 fixed the 32-bit word order to big endian). What the
 * public facts do NOT settle for the register method is the order of the
 * byte pairs (u8 + u8 "registers"): the example reads SOH as the first
 * byte of 0x12B8 and SOC as the low byte of 0x12A6 (bytes in memory
 * order, as decoded here) but its charge/discharge bitmasks at 0x12C0
 * assume the opposite order. The switch states feed the request flags,
 * so "trigger" is the method we recommend (and the config default); the
 * register method is selectable (bms.read_method = "registers").
 *
 * Offsets below are of the "data domain": register address minus the
 * block base, or frame offset minus 6 (the 55 AA EB 90 type counter
 * header). Status (0x1200 / frame type 0x02):
 *
 *     0 u16 x32 cell voltages mV        64 u32 cells present bitmask
 *    68 u16 average cell mV             70 u16 delta mV
 *    72 u8 max cell idx, 73 u8 min      74 u16 x32 wire resistances mOhm
 *   138 s16 MOSFET 0.1 degC            144 u32 pack voltage mV
 *   152 s32 current mA (+ charging)    156 s16 T1, 158 s16 T2 0.1 degC
 *   160 u32 alarm bits                 166 u8 balancing, 167 u8 SOC %
 *   168 s32 remaining mAh              172 u32 full charge capacity mAh
 *   176 u32 cycles                     184 u8 SOH %, 185 u8 precharge
 *   192 u8 charge MOS on, 193 u8 discharge MOS on
 *   208 u8 temperature sensors present (bit 0 MOSFET, 1 T1, 2 T2, 4 T3,
 *       5 T4; V1.1 "1: normal, 0: absent" per bit, jkbms_pb.py likewise;
 *       the real frames all have 0xFF)
 *   250 s16 T3, 252 s16 T4 0.1 degC (jkbms_pb.py frame 256 / 258; V1.1
 *       TempBat 4 / 5: its TempBat 3 at 248 mirrors the MOSFET in real
 *       frames)
 *
 * Settings (0x1000 / frame type 0x01), 32-bit fields:
 *     4 cell UVP mV, 8 UVPR, 12 OVP, 16 OVPR, 32 RCV (request charge
 *     voltage per cell; V1.1 only, V1.0 has nothing at 32-39 and reads 0:
 *     no charge voltage from the pack), 36 RFV (V1.1 only), 44 continuous
 *     charge current mA (CurBatCOC),
 *    56 continuous discharge current mA (CurBatDcOC), 108 cell count,
 *   112 charge switch, 116 discharge switch, 124 nominal capacity mAh.
 *
 * The pack's own limits (LIMITS group) come from the settings: CVL = RCV
 * x cells, DVL = UVPR x cells (the voltage at which the BMS would let a
 * tripped pack recover: the inverter stops above the trip), CCL =
 * CurBatCOC (0 while the charge switch is off), DCL = CurBatDcOC (0 while
 * the discharge switch is off).
 *
 * DevAddr (V1.1 0x1108, settings 264) is the DIP address (3 in the LA1010
 * capture of "bat3"); not decoded, the bus says who answers.
 *
 * Text dump for `bmsbridgectl decode` (jk_pb_decode_dump()), one item a
 * line, '#' starts a comment:
 *
 *     1200: 0D35 0D31 0D2F ...   registers as read with function 0x03:
 *                                the start register in hex, a colon, then
 *                                16-bit register values in hex (big
 *                                endian words as on the wire); JK byte
 *                                addressing: the next word is at 0x1202
 *     55 AA EB 90 02 17 35 0D ...  bytes as they were on the bus, hex,
 *                                spaces optional, an item may span lines:
 *                                trigger polls, frames, write echoes, 0x00
 *                                padding (jk_pb_bus_next(), jk_pb_listen())
 *
 * Register lines fill an image of the 0x1000 settings and the 0x1200 data
 * domain; an image is decoded when its whole decoded range is covered.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "battery.h"
#include "bms.h"
#include "byteorder.h"
#include "jk_pb.h"
#include "macro.h"
#include "modbus_rtu.h"

/*
 * Data domain offsets (status): JK Modbus V1.1 and V1.0, the 0x1200 map;
 * the register is 0x1200 + the offset (JK addresses bytes), the frame
 * byte the offset + 6. Same offsets in both versions.
 */
#define JK_D_CELLS 0		/* 0x1200 CellVol0..31, u16 mV each */
#define JK_D_CELL_MASK 64	/* 0x1240 CellSta, u32 bit per cell present */
#define JK_D_MOSFET_TEMP 138	/* 0x128A TempMos, s16 0.1 degC */
#define JK_D_VOLTAGE 144	/* 0x1290 BatVol, u32 mV */
#define JK_D_CURRENT 152	/* 0x1298 BatCurrent, s32 mA */
#define JK_D_T1 156		/* 0x129C TempBat1, s16 0.1 degC */
#define JK_D_T2 158		/* 0x129E TempBat2, s16 0.1 degC */
#define JK_D_ALARMS 160		/* 0x12A0 alarm bits, u32 (jk_alarm_map) */
#define JK_D_SOC 167		/* 0x12A7 SOCStateOfcharge, u8 % (0x12A6 is BalanSta) */
#define JK_D_REMAINING 168	/* 0x12A8 SOCCapRemain, s32 mAh */
#define JK_D_FULL 172		/* 0x12AC SOCFullChargeCap, u32 mAh */
#define JK_D_CYCLES 176		/* 0x12B0 SOCCycleCount, u32 */
#define JK_D_SOH 184		/* 0x12B8 SOCSOH, u8 % (0x12B9 Precharge) */
#define JK_D_CHARGE_ON 192	/* 0x12C0 Charge, u8 1 on */
#define JK_D_DISCHARGE_ON 193	/* 0x12C1 Discharge, u8 1 on */
#define JK_D_TEMP_PRESENT 208	/* 0x12D0 sensor presence bits, u8 */
/*
 * V1.1 names 0x12F8/0x12FA/0x12FC TempBat 3/4/5 with presence bits 3/4/5;
 * in all three real frames (v19, bsc_fw#118, LA1010) 0x12F8 holds the
 * MOSFET temperature (128, 215, 203 = TempMos), so it is not read as a
 * cell sensor; jkbms_pb.py calls the other two T3 and T4, as we do.
 */
#define JK_D_T3 250		/* V1.1 0x12FA "TempBat 4", presence bit 4, s16 0.1 degC */
#define JK_D_T4 252		/* V1.1 0x12FC "TempBat 5", presence bit 5, s16 0.1 degC */

/* Settings offsets: JK Modbus V1.1 / V1.0, the 0x1000 map, u32 each. */
#define JK_S_CELL_UVPR 8	/* 0x1008 VolCellUVPR, mV */
#define JK_S_CELL_RCV 32	/* V1.1 only: 0x1020 VolCellRCV, mV (V1.0: absent, reads 0) */
#define JK_S_CHARGE_OC 44	/* 0x102C CurBatCOC, mA */
#define JK_S_DISCHARGE_OC 56	/* 0x1038 CurBatDcOC, mA */
#define JK_S_CELL_COUNT 108	/* 0x106C CellCount */
#define JK_S_CHARGE_EN 112	/* 0x1070 BatChargeEN, 1 on */
#define JK_S_DISCHARGE_EN 116	/* 0x1074 BatDisChargeEN, 1 on */
#define JK_S_CAPACITY 124	/* 0x107C CapBatCell, mAh */

/* the frame header before the data domain */
#define JK_FRAME_HDR 6
#define JK_FRAME_TYPE 4

/*
 * JK alarm bits: u32 at data offset 160 (register 0x12A0), JK "BMS RS485
 * Modbus" V1.1 and V1.0, 0x1200 map, field "AlarmWireRes ... " BIT0-BIT23;
 * names as in jkbms_pb.py to_protection_bits() and the syssi Modbus
 * example. What each one means for the inverter, in enum battery_alarm:
 * a protection the BMS has tripped goes to the ALARMS (jk_alarm_map), a
 * threshold the user set in the app that only warns goes to the WARNINGS
 * (jk_warning_map). Bits 18 (GPS heartbeat lost) and 19 ("modify the
 * password in time") say nothing about the cells: not reported.
 */
static const uint32_t jk_alarm_map[32] = {
	[1] = BATTERY_ALARM_MOSFET_OVERTEMP,	   /* V1.1/V1.0 BIT1 AlarmMosOTP */
	[2] = BATTERY_ALARM_BMS_INTERNAL,	   /* BIT2 AlarmCellQuantity (!= setting) */
	[3] = BATTERY_ALARM_BMS_INTERNAL,	   /* BIT3 AlarmCurSensorErr */
	[4] = BATTERY_ALARM_CELL_OVERVOLTAGE,	   /* BIT4 AlarmCellOVP */
	[5] = BATTERY_ALARM_PACK_OVERVOLTAGE,	   /* BIT5 AlarmBatOVP */
	[6] = BATTERY_ALARM_CHARGE_OVERCURRENT,	   /* BIT6 AlarmChOCP */
	[7] = BATTERY_ALARM_SHORT_CIRCUIT,	   /* BIT7 AlarmChSCP */
	[8] = BATTERY_ALARM_CHARGE_OVERTEMP,	   /* BIT8 AlarmChOTP */
	[9] = BATTERY_ALARM_CHARGE_UNDERTEMP,	   /* BIT9 AlarmChUTP */
	[10] = BATTERY_ALARM_BMS_INTERNAL,	   /* BIT10 AlarmCPUAuxCommuErr */
	[11] = BATTERY_ALARM_CELL_UNDERVOLTAGE,	   /* BIT11 AlarmCellUVP */
	[12] = BATTERY_ALARM_PACK_UNDERVOLTAGE,	   /* BIT12 AlarmBatUVP */
	[13] = BATTERY_ALARM_DISCHARGE_OVERCURRENT, /* BIT13 AlarmDchOCP */
	[14] = BATTERY_ALARM_SHORT_CIRCUIT,	   /* BIT14 AlarmDchSCP */
	[15] = BATTERY_ALARM_DISCHARGE_OVERTEMP,   /* BIT15 AlarmDchOTP */
	[16] = BATTERY_ALARM_BMS_INTERNAL,	   /* BIT16 AlarmChargeMOS */
	[17] = BATTERY_ALARM_BMS_INTERNAL,	   /* BIT17 AlarmDischargeMOS */
	[20] = BATTERY_ALARM_BMS_INTERNAL,	   /* BIT20 Discharge On Failed */
	/*
	 * V1.1 only (after BIT21): "Temperature sensor anomaly". A pack
	 * that cannot measure its cells' temperature cannot protect them
	 * from heat or cold: an internal fault, an alarm (the safety layer's
	 * temperature rules may be reading a dead sensor).
	 */
	[22] = BATTERY_ALARM_BMS_INTERNAL,
	/*
	 * V1.1 only: "PLCModule anomaly", the parallel current-limiting
	 * module (the 0x1200 map's PCLModuleSta at 268, the setting
	 * DisablePCLModule): packs in parallel are no longer current
	 * limited against each other: an internal fault, an alarm.
	 */
	[23] = BATTERY_ALARM_BMS_INTERNAL,
};

static const uint32_t jk_warning_map[32] = {
	/* V1.1/V1.0 BIT0 AlarmWireRes: a balance wire's resistance is high,
	 * "1 warning only" (jkbms_pb.py); the BMS keeps working */
	[0] = BATTERY_ALARM_BMS_INTERNAL,
	/*
	 * V1.1/V1.0 BIT21 "Battery Over Temp Alarm" (电池超温报警: an alarm
	 * 报警, where every protection above is a 保护): the battery
	 * temperature passed the alarm threshold the user sets in the app
	 * (TMPBatOTA; mr-manuel's JKBMS-PB.md puts it at settings byte 278,
	 * a row the V1.1 table prints without a name). The BMS has NOT switched
	 * anything off; the inverter is warned of heat on both sides. The
	 * safety layer's own temperature tables derate from the measured
	 * temperatures regardless. Until this commit it was taken as
	 * charge AND discharge over-temperature protection (an alarm).
	 */
	[21] = BATTERY_ALARM_CHARGE_OVERTEMP | BATTERY_ALARM_DISCHARGE_OVERTEMP,
};

/* Field reader: little endian in frames, big endian in register reads. */
struct jk_view {
	const uint8_t *d; /* data domain byte 0 */
	bool be;
};

static uint16_t jk_u16(const struct jk_view *v, size_t off)
{
	return v->be ? get_be16(v->d + off) : get_le16(v->d + off);
}

static uint32_t jk_u32(const struct jk_view *v, size_t off)
{
	return v->be ? get_be32(v->d + off) : get_le32(v->d + off);
}

uint16_t jk_pb_crc16(const uint8_t *buf, size_t len)
{
	return modbus_crc16(buf, len);
}

size_t jk_pb_build_trigger(uint8_t addr, uint16_t reg, uint8_t *buf)
{
	buf[0] = addr;
	buf[1] = 0x10;		/* write multiple registers */
	put_be16(&buf[2], reg); /* 0x1620 status, 0x161E settings, 0x161C about */
	put_be16(&buf[4], 1);	/* one register */
	buf[6] = 2;		/* two bytes */
	put_be16(&buf[7], 0);	/* value 0x0000 */
	put_le16(&buf[9], jk_pb_crc16(buf, 9));
	return 11;
}

size_t jk_pb_build_read(uint8_t addr, uint16_t reg, uint16_t count, uint8_t *buf)
{
	buf[0] = addr;
	buf[1] = 0x03; /* read holding registers */
	put_be16(&buf[2], reg);
	put_be16(&buf[4], count);
	put_le16(&buf[6], jk_pb_crc16(buf, 6));
	return 8;
}

int jk_pb_check_read_response(uint8_t addr, const uint8_t *buf, size_t len,
			      const uint8_t **ret_data, size_t *ret_n)
{
	size_t n;

	if (len < 2) {
		return -EAGAIN;
	}
	if (buf[0] != addr) {
		return -EBADMSG;
	}
	if (buf[1] == (0x03 | 0x80)) {
		/* exception: addr, 0x83, code, CRC */
		if (len < 5) {
			return -EAGAIN;
		}
		return jk_pb_crc16(buf, 3) == get_le16(&buf[3]) ? -EIO : -EBADMSG;
	}
	if (buf[1] != 0x03) {
		return -EBADMSG;
	}
	if (len < 3) {
		return -EAGAIN;
	}
	n = buf[2];
	if (len < 3 + n + 2) {
		return -EAGAIN;
	}
	if (jk_pb_crc16(buf, 3 + n) != get_le16(&buf[3 + n])) {
		return -EBADMSG;
	}
	*ret_data = &buf[3];
	*ret_n = n;
	return 0;
}

static bool frame_checksum_ok(const uint8_t *f)
{
	uint8_t sum = 0;

	/* sum8 of bytes 0-298 in byte 299 (jkbms_pb.py _verify_checksum) */
	for (size_t i = 0; i < JK_PB_FRAME_LEN - 1; i++) {
		sum = (uint8_t)(sum + f[i]);
	}
	return sum == f[JK_PB_FRAME_LEN - 1];
}

static bool frame_header_ok(const uint8_t *f)
{
	return f[0] == 0x55 && f[1] == 0xAA && f[2] == 0xEB && f[3] == 0x90;
}

static uint8_t trigger_frame_type(uint16_t reg)
{
	switch (reg) {
	case JK_PB_TRIGGER_STATUS:
		return JK_PB_FRAME_STATUS;
	case JK_PB_TRIGGER_SETTINGS:
		return JK_PB_FRAME_SETTINGS;
	case JK_PB_TRIGGER_ABOUT:
		return JK_PB_FRAME_ABOUT;
	default:
		return 0;
	}
}

int jk_pb_find_frame(uint8_t addr, uint16_t reg, const uint8_t *buf, size_t len, bool final,
		     const uint8_t **ret_frame)
{
	const uint8_t *f = NULL;
	const uint8_t *ack;
	size_t rest;

	/* the header may follow a local echo of our request or line noise */
	for (size_t i = 0; i + 4 <= len; i++) {
		if (frame_header_ok(&buf[i])) {
			f = &buf[i];
			break;
		}
	}
	if (!f) {
		return -EAGAIN;
	}
	rest = len - (size_t)(f - buf);
	if (rest < JK_PB_FRAME_LEN) {
		return -EAGAIN;
	}
	if (!frame_checksum_ok(f) || f[JK_FRAME_TYPE] != trigger_frame_type(reg)) {
		return -EBADMSG;
	}
	/*
	 * The write echo ADDR 10 REG 00 01 CRC follows (some adapters put
	 * 0x00 padding first). Wait for it to settle the bus: the caller's
	 * timeout ends the wait if the BMS never sends it.
	 */
	ack = f + JK_PB_FRAME_LEN;
	rest -= JK_PB_FRAME_LEN;
	while (rest > 0 && ack[0] == 0x00 && addr != 0x00) {
		ack++;
		rest--;
	}
	if (rest < JK_PB_FRAME_ACK_LEN) {
		if (!final) {
			return -EAGAIN;
		}
		/* no echo by the deadline: the frame alone is the answer */
		*ret_frame = f;
		return 0;
	}
	if (ack[0] != addr || ack[1] != 0x10 || get_be16(&ack[2]) != reg ||
	    get_be16(&ack[4]) != 1 || jk_pb_crc16(ack, 6) != get_le16(&ack[6])) {
		return -EBADMSG;
	}
	*ret_frame = f;
	return 0;
}

/* ---- decoders into one pack ---------------------------------------------- */

static int16_t jk_temp_dc(const struct jk_view *v, size_t off)
{
	/* s16 0.1 degC (jk_bms_ble.cpp JK02_32S; the "100 - t" fold of
	 * jkbms_pb.py is for values >= 99 degC, which we keep as they are:
	 * a hot pack must stay hot) */
	return (int16_t)jk_u16(v, off);
}

/* Over 80 lines: one line per field of the JK data-domain table, in offset order. */
static void decode_status(const struct jk_view *v, uint64_t now, struct battery_pack *p)
{
	uint32_t mask = jk_u32(v, JK_D_CELL_MASK);
	uint32_t raw_alarms = jk_u32(v, JK_D_ALARMS);
	uint8_t present = v->d[JK_D_TEMP_PRESENT];
	unsigned n = 0;
	int32_t rem;

	/* CELLS: the cells present are the low bits of the mask (0xFFFF: 16) */
	while (n < BATTERY_CELLS_MAX && (mask & (UINT32_C(1) << n))) {
		n++;
	}
	if (n == 0) {
		/* no mask (older firmware): up to the last non-zero voltage */
		for (unsigned i = 0; i < BATTERY_CELLS_MAX; i++) {
			if (jk_u16(v, JK_D_CELLS + 2 * i) != 0) {
				n = i + 1;
			}
		}
	}
	p->cell_count = (uint8_t)n;
	for (unsigned i = 0; i < BATTERY_CELLS_MAX; i++) {
		p->cell_mv[i] = i < n ? jk_u16(v, JK_D_CELLS + 2 * i) : 0; /* u16 mV */
	}
	p->cell_min_pack = p->cell_max_pack = 0;
	if (n > 0) {
		battery_pack_update_cell_extremes(p);
		battery_pack_mark(p, BATTERY_GROUP_CELLS, now);
	}

	/* ELECTRICAL */
	p->voltage_mv = jk_u32(v, JK_D_VOLTAGE);	       /* u32 mV */
	p->current_ma = (int32_t)jk_u32(v, JK_D_CURRENT); /* s32 mA, + charging */
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, now);

	/* CAPACITY */
	p->soc_pct = v->d[JK_D_SOC] > 100 ? 100 : v->d[JK_D_SOC]; /* u8 % */
	p->soh_pct = v->d[JK_D_SOH] > 100 ? 100 : v->d[JK_D_SOH]; /* u8 % */
	rem = (int32_t)jk_u32(v, JK_D_REMAINING);		   /* s32 mAh */
	p->remaining_mah = rem > 0 ? (uint32_t)rem : 0;
	p->full_mah = jk_u32(v, JK_D_FULL); /* u32 mAh */
	p->cycles = jk_u32(v, JK_D_CYCLES); /* u32 */
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now);

	/*
	 * TEMPS: the sensors the present byte names; a frame with none named
	 * (older firmware leaves it 0) still has T1 and T2.
	 */
	if (present == 0) {
		present = 0x07;
	}
	p->temp_count = 0;
	if (present & 0x02) {
		p->temp_dc[p->temp_count++] = jk_temp_dc(v, JK_D_T1);
	}
	if (present & 0x04) {
		p->temp_dc[p->temp_count++] = jk_temp_dc(v, JK_D_T2);
	}
	if (present & 0x10) {
		p->temp_dc[p->temp_count++] = jk_temp_dc(v, JK_D_T3);
	}
	if (present & 0x20) {
		p->temp_dc[p->temp_count++] = jk_temp_dc(v, JK_D_T4);
	}
	p->mosfet_temp_dc = (present & 0x01) ? jk_temp_dc(v, JK_D_MOSFET_TEMP) : BATTERY_TEMP_NONE;
	p->temp_min_pack = p->temp_max_pack = 0;
	if (p->temp_count > 0) {
		battery_pack_update_temp_extremes(p);
	} else {
		p->temp_min_dc = p->temp_max_dc = p->mosfet_temp_dc;
		p->temp_min_idx = p->temp_max_idx = BATTERY_INDEX_NONE;
	}
	battery_pack_mark(p, BATTERY_GROUP_TEMPS, now);

	/* STATUS: alarms, the wire-resistance warning, MOSFET switch states */
	p->alarms = p->warnings = 0;
	for (unsigned b = 0; b < 32; b++) {
		if (raw_alarms & (UINT32_C(1) << b)) {
			p->alarms |= jk_alarm_map[b];
			p->warnings |= jk_warning_map[b];
		}
	}
	p->requests = 0;
	if (v->d[JK_D_CHARGE_ON]) {
		p->requests |= BATTERY_REQUEST_CHARGE_ENABLE; /* u8 charge MOS on */
	}
	if (v->d[JK_D_DISCHARGE_ON]) {
		p->requests |= BATTERY_REQUEST_DISCHARGE_ENABLE; /* u8 discharge MOS on */
	}
	battery_pack_mark(p, BATTERY_GROUP_STATUS, now);
}

static int check_settings(const struct jk_view *v)
{
	uint32_t cells = jk_u32(v, JK_S_CELL_COUNT);

	/* a BMS that counts no cells, or more than any PB has, is not valid */
	if (cells == 0 || cells > BATTERY_CELLS_MAX) {
		return -EBADMSG;
	}
	return 0;
}

static void decode_settings(const struct jk_view *v, uint64_t now, struct battery_pack *p)
{
	uint32_t cells = jk_u32(v, JK_S_CELL_COUNT);	     /* V1.1/V1.0 0x106C CellCount */
	uint32_t rcv = jk_u32(v, JK_S_CELL_RCV);	     /* V1.1 0x1020 VolCellRCV, mV */
	uint64_t dvl = (uint64_t)jk_u32(v, JK_S_CELL_UVPR) * cells; /* 0x1008 VolCellUVPR */
	int32_t ccl = (int32_t)jk_u32(v, JK_S_CHARGE_OC);	     /* 0x102C CurBatCOC, mA */
	int32_t dcl = (int32_t)jk_u32(v, JK_S_DISCHARGE_OC);	     /* 0x1038 CurBatDcOC, mA */

	/*
	 * RCV exists in V1.1 only: the V1.0 map goes from VolSOC0% (0x101C)
	 * straight to VolSysPwrOff (0x1028), so an older PB reads 0 there.
	 * 0 is "this pack sets no charge voltage", never "charge to 0 V": the
	 * pack's CVL is then JK_PB_CVL_NONE, which the safety layer's minimum
	 * over cell_count x cell_max_mv and max_charge_voltage_mv replaces.
	 */
	if (rcv == 0) {
		p->charge_voltage_limit_mv = JK_PB_CVL_NONE;
	} else {
		uint64_t cvl = (uint64_t)rcv * cells;

		p->charge_voltage_limit_mv = (uint32_t)(cvl >= JK_PB_CVL_NONE ? JK_PB_CVL_NONE - 1
									 : cvl);
	}
	p->discharge_voltage_limit_mv = (uint32_t)(dvl > UINT32_MAX ? UINT32_MAX : dvl);
	/* a switched-off direction allows nothing: 0x1070 BatChargeEN, 0x1074 BatDisChargeEN */
	p->charge_current_limit_ma = jk_u32(v, JK_S_CHARGE_EN) && ccl > 0 ? (uint32_t)ccl : 0;
	p->discharge_current_limit_ma =
		jk_u32(v, JK_S_DISCHARGE_EN) && dcl > 0 ? (uint32_t)dcl : 0;
	battery_pack_mark(p, BATTERY_GROUP_LIMITS, now);
	/* the nominal capacity (0x107C CapBatCell, mAh), where no status has said the real one */
	if (p->full_mah == 0) {
		p->full_mah = jk_u32(v, JK_S_CAPACITY); /* u32 mAh */
	}
}

static int decode_frame_into(const uint8_t *buf, size_t len, uint64_t now, struct battery_pack *p)
{
	struct jk_view v = { .d = buf + JK_FRAME_HDR, .be = false };

	if (len < JK_PB_FRAME_LEN || !frame_header_ok(buf) || !frame_checksum_ok(buf)) {
		return -EBADMSG;
	}
	switch (buf[JK_FRAME_TYPE]) {
	case JK_PB_FRAME_STATUS:
		decode_status(&v, now, p);
		return 0;
	case JK_PB_FRAME_SETTINGS:
		if (check_settings(&v) < 0) {
			return -EBADMSG;
		}
		decode_settings(&v, now, p);
		return 0;
	case JK_PB_FRAME_ABOUT:
		/* vendor, versions, serial number: nothing the state carries */
		return 0;
	default:
		return -EBADMSG;
	}
}

static int decode_into(unsigned kind, const uint8_t *buf, size_t len, uint64_t now,
		       struct battery_pack *p)
{
	struct jk_view v = { .d = buf, .be = true };

	switch (kind) {
	case JK_PB_BLOCK_FRAME:
		return decode_frame_into(buf, len, now, p);
	case JK_PB_BLOCK_DATA_REGS:
		if (len < JK_PB_DATA_LEN) {
			return -EBADMSG;
		}
		decode_status(&v, now, p);
		return 0;
	case JK_PB_BLOCK_SETTINGS_REGS:
		if (len < JK_PB_SETTINGS_LEN || check_settings(&v) < 0) {
			return -EBADMSG;
		}
		decode_settings(&v, now, p);
		return 0;
	default:
		return -EBADMSG;
	}
}

int jk_pb_decode_block(unsigned kind, const uint8_t *buf, size_t len, unsigned pack,
		       uint64_t now_usec, struct battery_state *bs)
{
	if (!buf || pack >= BATTERY_PACKS_MAX) {
		return -EBADMSG;
	}
	/* every check happens before the first write: bad input writes nothing */
	return decode_into(kind, buf, len, now_usec, &bs->packs[pack]);
}

/* ---- the bus as a byte stream ------------------------------------------------ */

/*
 * What travels on a JK-PB RS485 bus (JK Modbus V1.0/V1.1 "功能码" 03H and
 * 10H framing; mr-manuel bms-docs/JKBMS-PB.md for the trigger exchange):
 *
 *   ADDR 10 REG QTY N DATA CRC   a write; the trigger polls are QTY 1, N 2,
 *                                DATA 0000 to 0x1620 / 0x161E / 0x161C
 *   55 AA EB 90 ... sum8         the 300-byte answer frame (no address)
 *   [00] ADDR 10 REG QTY CRC [00]  the write echo, 0x00 padding around it
 *   ADDR 03 REG COUNT CRC        a read; ADDR 03 N DATA CRC its answer
 *   ADDR 83|90 CODE CRC          an exception (V1.0 "三、错误反馈")
 *
 * CRC-16/Modbus low byte first (V1.0 "CRC校验"). Each form is tried only
 * once its CRC holds, so noise costs one byte and never a frame.
 */
static bool crc_at(const uint8_t *buf, size_t n)
{
	return jk_pb_crc16(buf, n) == get_le16(&buf[n]);
}

/*
 * Over 80 lines: one scanner over the byte stream: each frame kind is tried at the same
 * position, in one order.
 */
int jk_pb_bus_next(const uint8_t *buf, size_t len, bool final, struct jk_pb_bus_item *ret)
{
	static const uint8_t hdr[4] = { 0x55, 0xAA, 0xEB, 0x90 };
	int more = final ? 1 : -EAGAIN; /* "incomplete": noise at the end */

	if (len == 0) {
		return -EAGAIN;
	}
	*ret = (struct jk_pb_bus_item){ .kind = JK_PB_BUS_NOISE, .addr = buf[0] };
	if (buf[0] == hdr[0]) {
		size_t k = len < 4 ? len : 4;

		if (memcmp(buf, hdr, k) == 0) {
			if (len < JK_PB_FRAME_LEN) {
				return more;
			}
			if (frame_checksum_ok(buf)) {
				ret->kind = JK_PB_BUS_FRAME;
				ret->data = buf;
				ret->len = JK_PB_FRAME_LEN;
				return JK_PB_FRAME_LEN;
			}
			return 1;
		}
	}
	if (len < 2) {
		return more;
	}
	switch (buf[1]) {
	case 0x10:
		/* the echo first: it is a prefix of the request it answers */
		if (len < 8) {
			return more;
		}
		ret->reg = get_be16(&buf[2]);
		ret->count = get_be16(&buf[4]);
		if (crc_at(buf, 6)) {
			ret->kind = JK_PB_BUS_ACK;
			return 8;
		}
		if (len < 7 || buf[6] == 0 || buf[6] != 2 * ret->count) {
			return 1;
		}
		if (len < 9u + buf[6]) {
			return more;
		}
		if (!crc_at(buf, 7u + buf[6])) {
			return 1;
		}
		ret->kind = JK_PB_BUS_WRITE;
		ret->data = &buf[7];
		ret->len = buf[6];
		ret->value = get_be16(&buf[7]);
		return 9 + buf[6];
	case 0x03:
		if (len < 8) {
			return more;
		}
		if (crc_at(buf, 6)) {
			ret->kind = JK_PB_BUS_READ;
			ret->reg = get_be16(&buf[2]);
			ret->count = get_be16(&buf[4]);
			return 8;
		}
		if (buf[2] == 0 || (buf[2] & 1)) {
			return 1;
		}
		if (len < 5u + buf[2]) {
			return more;
		}
		if (!crc_at(buf, 3u + buf[2])) {
			return 1;
		}
		ret->kind = JK_PB_BUS_READ_ANSWER;
		ret->data = &buf[3];
		ret->len = buf[2];
		return 5 + buf[2];
	case 0x83:
	case 0x90:
		if (len < 5) {
			return more;
		}
		if (!crc_at(buf, 3)) {
			return 1;
		}
		ret->kind = JK_PB_BUS_EXCEPTION;
		return 5;
	default:
		return 1;
	}
}

bool jk_pb_bus_is_trigger(const struct jk_pb_bus_item *it)
{
	return it->kind == JK_PB_BUS_WRITE && it->count == 1 && it->value == 0 &&
	       trigger_frame_type(it->reg) != 0;
}

void jk_pb_listener_init(struct jk_pb_listener *l, uint64_t window_usec)
{
	*l = (struct jk_pb_listener){ .window_usec = window_usec };
}

/* hand the held frame out */
static int listen_release(struct jk_pb_listener *l, int ack_addr, struct jk_pb_heard *ret)
{
	memcpy(l->out, l->held_frame, JK_PB_FRAME_LEN);
	*ret = (struct jk_pb_heard){
		.frame = l->out,
		.ack_addr = ack_addr,
		.polled = l->held_polled,
		.poll_addr = l->held_poll_addr,
		.poll_usec = l->held_poll_usec,
		.frame_usec = l->held_usec,
	};
	l->held = false;
	return 1;
}

int jk_pb_listen(struct jk_pb_listener *l, const struct jk_pb_bus_item *it, uint64_t now_usec,
		 struct jk_pb_heard *ret)
{
	int r = 0;

	switch (it->kind) {
	case JK_PB_BUS_NOISE:
		/* 0x00 padding sits between a frame and its echo: keep holding */
		l->noise_bytes++;
		return 0;
	case JK_PB_BUS_ACK:
		l->acks++;
		if (l->held && trigger_frame_type(it->reg) == l->held_frame[JK_FRAME_TYPE]) {
			return listen_release(l, it->addr, ret);
		}
		l->orphan_acks++;
		return 0;
	case JK_PB_BUS_FRAME:
		if (l->held) {
			r = listen_release(l, -1, ret); /* no echo came for it */
		}
		l->frames++;
		memcpy(l->held_frame, it->data, JK_PB_FRAME_LEN);
		l->held = true;
		l->held_usec = now_usec;
		/* the answer to the last poll if it is the frame type asked, in time */
		l->held_polled = l->poll &&
				 trigger_frame_type(l->poll_reg) == it->data[JK_FRAME_TYPE] &&
				 now_usec - l->poll_usec <= l->window_usec;
		l->held_poll_addr = l->poll_addr;
		l->held_poll_usec = l->poll_usec;
		if (l->poll && !l->held_polled) {
			l->unanswered++;
		}
		l->poll = false;
		return r;
	case JK_PB_BUS_WRITE:
	case JK_PB_BUS_READ:
	case JK_PB_BUS_READ_ANSWER:
	case JK_PB_BUS_EXCEPTION:
		/* a new request: whatever was held has had its chance of an echo */
		if (l->held) {
			r = listen_release(l, -1, ret);
		}
		if (l->poll) {
			l->unanswered++;
		}
		l->poll = jk_pb_bus_is_trigger(it);
		if (l->poll) {
			l->polls++;
			l->poll_addr = it->addr;
			l->poll_reg = it->reg;
			l->poll_usec = now_usec;
		}
		return r;
	}
	return 0;
}

int jk_pb_listen_flush(struct jk_pb_listener *l, uint64_t now_usec, bool force,
		       struct jk_pb_heard *ret)
{
	if (l->poll && (force || now_usec - l->poll_usec > l->window_usec)) {
		l->poll = false;
		l->unanswered++;
	}
	if (l->held && (force || now_usec - l->held_usec > l->window_usec)) {
		return listen_release(l, -1, ret);
	}
	return 0;
}

int jk_pb_heard_attribute(const struct jk_pb_heard *h, int unasked_addr, uint8_t *ret_addr,
			  uint64_t *ret_usec)
{
	if (h->polled) {
		/* the echo, when it came, must name the pack that was asked */
		if (h->ack_addr >= 0 && h->ack_addr != h->poll_addr) {
			return -EBADMSG;
		}
		*ret_addr = h->poll_addr;
		*ret_usec = h->poll_usec;
		return 0;
	}
	if (h->ack_addr >= 0) {
		/* an answer to a poll we did not hear: the echo names its pack */
		*ret_addr = (uint8_t)h->ack_addr;
		*ret_usec = h->frame_usec;
		return 0;
	}
	if (unasked_addr < 0) {
		return -EBADMSG;
	}
	*ret_addr = (uint8_t)unasked_addr;
	*ret_usec = h->frame_usec;
	return 0;
}

/* ---- the polled rounds, for the generic serial engine (src/serial_engine.c) ---- */

/*
 * The request of each step (V1.1 "Communication instructions": function
 * 0x10 to the trigger registers, function 0x03 to the 0x1000 / 0x1200
 * blocks), the items the bus gives back named by jk_pb_identify(), and
 * their decoding. Which request an answer belongs to: a 300-byte frame
 * by its type (0x01 settings, 0x02 status) and the pack by the write echo
 * that follows it (address and register, after any 0x00 padding:
 * jkbms_pb.py waits for it, the logic-analyser capture shows the padding);
 * a 0x03 answer by its address and length (144, 160 or 96 bytes).
 */
static const uint16_t trigger_regs[] = { JK_PB_TRIGGER_SETTINGS, JK_PB_TRIGGER_STATUS };
static const char *const trigger_names[] = { "trigger 0x161E", "trigger 0x1620" };

/* registers: 0x1000 (144 bytes), then 0x1200 in two reads (160 + 96 bytes) */
static const struct {
	uint16_t reg, count, offset;
} register_reads[] = {
	{ JK_PB_REG_SETTINGS, JK_PB_SETTINGS_LEN / 2, 0 },
	{ JK_PB_REG_DATA, 80, 0 },
	{ JK_PB_REG_DATA + 160, 48, 160 },
};
static const char *const register_names[] = { "read 0x1000", "read 0x1200", "read 0x12A0" };

static ssize_t trigger_request(unsigned step, uint8_t address, uint8_t *buf, size_t n)
{
	if (step >= ARRAY_SIZE(trigger_regs) || n < JK_PB_REQUEST_MAX) {
		return -ENOBUFS;
	}
	return (ssize_t)jk_pb_build_trigger(address, trigger_regs[step], buf);
}

static ssize_t register_request(unsigned step, uint8_t address, uint8_t *buf, size_t n)
{
	if (step >= ARRAY_SIZE(register_reads) || n < JK_PB_REQUEST_MAX) {
		return -ENOBUFS;
	}
	return (ssize_t)jk_pb_build_read(address, register_reads[step].reg,
					 register_reads[step].count, buf);
}

/* the trigger step whose register is @reg, or whose frame type is @type */
static int trigger_step(uint16_t reg, uint8_t type)
{
	for (unsigned s = 0; s < ARRAY_SIZE(trigger_regs); s++) {
		if (trigger_regs[s] == reg || trigger_frame_type(trigger_regs[s]) == type) {
			return (int)s;
		}
	}
	return -1;
}

/*
 * A frame at the start of @buf: its write echo, after any padding or
 * noise, names the pack. Return: the bytes of frame and echo, 300 when no
 * echo came (a new request or frame began, or the bus went quiet: the
 * frame alone is the answer, jkbms_pb.py only warns), 0 to wait for more.
 */
static ssize_t frame_and_echo(const uint8_t *buf, size_t len, bool final, int *ret_addr)
{
	size_t off = JK_PB_FRAME_LEN;

	*ret_addr = -1;
	while (off < len) {
		struct jk_pb_bus_item it;
		int k = jk_pb_bus_next(buf + off, len - off, final, &it);

		if (k < 0) {
			return 0; /* an item begun, not complete */
		}
		if (it.kind == JK_PB_BUS_ACK && trigger_frame_type(it.reg) == buf[JK_FRAME_TYPE]) {
			*ret_addr = it.addr;
			return (ssize_t)(off + (size_t)k);
		}
		if (it.kind != JK_PB_BUS_NOISE && it.kind != JK_PB_BUS_ACK) {
			break; /* the next exchange began */
		}
		off += (size_t)k;
	}
	if (off >= len && !final) {
		return 0;
	}
	return JK_PB_FRAME_LEN;
}

static ssize_t identify(bool registers, const uint8_t *buf, size_t len, bool final,
			struct bms_serial_item *ret)
{
	struct jk_pb_bus_item it;
	int k = jk_pb_bus_next(buf, len, final, &it);

	*ret = (struct bms_serial_item){ .addr = -1, .step = -1 };
	if (k < 0) {
		return 0;
	}
	switch (it.kind) {
	case JK_PB_BUS_NOISE:
		/* 0x00 padding between frame and echo is the bus's, not noise */
		if (buf[0] == 0x00) {
			ret->other = true;
			return 1;
		}
		return -EBADMSG;
	case JK_PB_BUS_WRITE:
	case JK_PB_BUS_READ:
		ret->other = true; /* our own request, echoed by a two-wire adapter */
		return k;
	case JK_PB_BUS_EXCEPTION:
		ret->addr = it.addr;
		ret->error = -EIO;
		return k;
	case JK_PB_BUS_ACK:
		/* an echo with no frame before it: the frame was lost or broken */
		ret->addr = it.addr;
		ret->step = registers ? -1 : trigger_step(it.reg, 0);
		ret->error = -EBADMSG;
		ret->other = ret->step < 0;
		return k;
	case JK_PB_BUS_READ_ANSWER:
		ret->addr = it.addr;
		for (unsigned s = 0; registers && s < ARRAY_SIZE(register_reads); s++) {
			if (it.len == 2u * register_reads[s].count) {
				ret->step = (int)s;
			}
		}
		return k; /* step -1: an answer to nothing we ask */
	case JK_PB_BUS_FRAME:
		ret->step = registers ? -1 : trigger_step(0, buf[JK_FRAME_TYPE]);
		if (ret->step < 0) {
			ret->other = true; /* an about frame, or frames while we read registers */
			return JK_PB_FRAME_LEN;
		}
		return frame_and_echo(buf, len, final, &ret->addr);
	}
	return -EBADMSG;
}

static ssize_t trigger_identify(const uint8_t *buf, size_t len, bool final,
				struct bms_serial_item *ret)
{
	return identify(false, buf, len, final, ret);
}

static ssize_t register_identify(const uint8_t *buf, size_t len, bool final,
				 struct bms_serial_item *ret)
{
	return identify(true, buf, len, final, ret);
}

/* trigger: the frame at the start of the answer (its echo follows it) */
static int trigger_decode(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
			  uint64_t now_usec, struct battery_state *bs)
{
	if (step >= ARRAY_SIZE(trigger_regs) || len < JK_PB_FRAME_LEN ||
	    trigger_frame_type(trigger_regs[step]) != ans[JK_FRAME_TYPE]) {
		return -EBADMSG;
	}
	return jk_pb_decode_block(JK_PB_BLOCK_FRAME, ans, JK_PB_FRAME_LEN, pack, now_usec, bs);
}

/*
 * registers: 0x1000 decoded at once; 0x1200's two parts joined in @part,
 * decoded with the second, dated by the older of their requests.
 */
static int register_decode_part(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
				uint64_t now_usec, struct battery_state *bs,
				struct bms_serial_part *part)
{
	const uint8_t *data = ans + 3;
	size_t n;
	int r;

	if (step >= ARRAY_SIZE(register_reads) || len < 5 ||
	    (size_t)ans[2] != 2u * register_reads[step].count || len < 5u + ans[2]) {
		return -EBADMSG;
	}
	n = ans[2];
	if (step == 0) {
		r = jk_pb_decode_block(JK_PB_BLOCK_SETTINGS_REGS, data, n, pack, now_usec, bs);
		return r < 0 ? r : 1;
	}
	memcpy(part->bytes + register_reads[step].offset, data, n);
	if (register_reads[step].offset == 0 || part->usec == 0 || now_usec < part->usec) {
		part->usec = now_usec;
	}
	if (register_reads[step].offset + n < JK_PB_DATA_LEN) {
		return 0; /* the first part: the second completes it */
	}
	r = jk_pb_decode_block(JK_PB_BLOCK_DATA_REGS, part->bytes, JK_PB_DATA_LEN, pack,
			       part->usec, bs);
	return r < 0 ? r : 1;
}

static const struct bms_serial_ops jk_pb_trigger_serial = {
	.baud = 115200,
	.address_min = 1,
	.address_max = 15,
	.n_steps = ARRAY_SIZE(trigger_regs),
	.answer_max = JK_PB_FRAME_LEN + JK_PB_FRAME_ACK_LEN,
	.request = trigger_request,
	.decode = trigger_decode,
	.log_module = "bms_modbus",
	.step_names = trigger_names,
	.method = "trigger method",
	.identify = trigger_identify,
};

static const struct bms_serial_ops jk_pb_register_serial = {
	.baud = 115200,
	.address_min = 1,
	.address_max = 15,
	.n_steps = ARRAY_SIZE(register_reads),
	.answer_max = 5 + 2 * 80,
	.request = register_request,
	.log_module = "bms_modbus",
	.step_names = register_names,
	.method = "register method",
	.identify = register_identify,
	.part_size = JK_PB_DATA_LEN,
	.decode_part = register_decode_part,
};

const struct bms_serial_ops *jk_pb_serial_method(int read_method)
{
	switch (read_method) {
	case JK_PB_READ_REGISTERS:
		return &jk_pb_register_serial;
	case JK_PB_READ_LISTEN:
		return NULL; /* never sends: src/input_serial.c listens */
	default:
		return &jk_pb_trigger_serial;
	}
}

const struct bms_driver jk_pb_modbus_bms_driver = {
	.name = "jk-pb-modbus",
	.description = "JK-PB inverter BMS on RS485 (Modbus RTU, packs at addresses 1-15)",
	.transport = BMS_TRANSPORT_SERIAL,
	.baud = 115200,
	.decode_block = jk_pb_decode_block,
	.serial_method = jk_pb_serial_method,
};
