/* SPDX-License-Identifier: MIT */
/*
 * `daly-can`: a Daly "smart BMS" read on its CAN port. Pure requests
 * (->keepalive()) and decoding (->decode_frame()) for src/input_can.c.
 *
 * Primary document: Dongguan Daly Electronics "Daly CAN Communications
 * Protocol" V1.0, 2019-06-11, cited as "CAN V1.0 §n" (its PDF is
 * mirrored by robu.in; read here in its transcription in
 * jblance/powermon docs/protocol_docs/daly_can.md): §1 250 kbit/s, §2.1
 * every message is started by the host and only the addressed BMS
 * answers, §2.2 addresses (BMS master 0x01, upper computer 0x40), §2.3
 * the 29-bit identifier "priority + data ID + destination + source",
 * 0x18 <ID> 01 40 from the host and 0x18 <ID> 40 01 back, 8 data bytes,
 * §3 the data IDs 0x90-0x98. The data bytes are those of the UART
 * protocol (Daly UART/485 V1.2 §3, same IDs, same fields), so the
 * decoding is protocols/daly.c's own (daly_decode_data(), include/daly.h)
 * and every choice documented there holds here too, the sign of the
 * current (raw below 30000 = charging) and the cycle count in 0x94
 * bytes 5-6 among them.
 *
 * Checked against real traffic: dbus-serialbattery's CAN receiver logs
 * (mr-manuel/venus-os_dbus-serialbattery issues #212, #215 and #249,
 * 2025, 8S and 16S packs at addresses 1, 2, 3, 0x0B), which show the
 * identifiers above on the wire, a whole set of answers within about
 * 30 ms, and 0x91 / 0x92 with leftover bytes in their reserved bytes 6-7 (not
 * read). The golden cases are in tests/data/daly-can-*.log. One of them
 * (#249, address 2) says "charge" in 0x93's state byte with raw current
 * 30054, the opposite of our sign (and of the UART capture daly.c
 * follows): boards seem to differ, see bmsbridge-protocols(7).
 *
 * What it reads: 0x90 (voltage, current, SOC), 0x91 (cell extremes),
 * 0x92 (temperature extremes), 0x93 (MOS state, remaining capacity),
 * 0x94 (cycles), 0x98 (failure bits), requested all together every
 * second as dbus-serialbattery bms/daly_can.py does (its answers come
 * back within 30 ms). Not read: 0x95 / 0x96 (one answer is several
 * frames numbered 0.. or 1.. whose count only 0x94 tells; a per-frame
 * decoder has nowhere to gather them, so cells and sensors are known by
 * their extremes, cell_count = temp_count = 0, as the UART driver's first
 * round) and 0x97 (balancing: no field).
 *
 * Several boards on one bus (CAN V1.0 §2.1: "all slaves receive ...
 * respond only if the slave address matches"): each listed board number
 * (bms.addresses, default board 1, the §2.2 "BMS master" address) is
 * asked the same six IDs with its number as the destination, and its
 * answers (its number as the source) go into its own pack, pack i = the
 * i-th number; answers of boards not listed are not ours (0). Which
 * numbers: §2.2 names 0x01 (BMS master) and gives 0x20 (GPRS), 0x40
 * (upper computer) and 0x80 (Bluetooth app) to the other modules, and
 * lists no further BMS numbers; we take 0x01-0x1F, below the first of
 * those modules, so that a board number never names one of them (0x00 is
 * no address the document gives). Real buses use 2, 3 and 0x0B (#215).
 * Daly sends no charge or discharge limits, so
 * each 0x90 also says "no limit from this pack" (LIMITS: CVL, CCL, DCL
 * the largest value, DVL 0), as the serial engine does for its
 * no_limits families: the safety layer's caps and cell rules decide.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "battery.h"
#include "bms.h"
#include "daly.h"
#include "macro.h"

#define DALY_CAN_PRIORITY 0x18	/* CAN V1.0 §2.3 */
#define DALY_CAN_HOST 0x40	/* CAN V1.0 §2.2 upper computer */
#define DALY_CAN_BMS 0x01	/* CAN V1.0 §2.2 BMS master */
#define DALY_CAN_BOARD_MAX 0x1F /* below 0x20, CAN V1.0 §2.2 GPRS (header) */
#define DALY_CAN_DLEN 8		/* CAN V1.0 §2.3: 8 data bytes */

/* CAN V1.0 §2.3: priority, data ID, destination, source */
#define DALY_CAN_ID(cmd, dst, src)                                                                 \
	((canid_t)DALY_CAN_PRIORITY << 24 | (canid_t)(cmd) << 16 | (canid_t)(dst) << 8 |           \
	 (canid_t)(src) | CAN_EFF_FLAG)
#define DALY_CAN_REQUEST(cmd, board) DALY_CAN_ID(cmd, board, DALY_CAN_HOST)
#define DALY_CAN_ANSWER(cmd) DALY_CAN_ID(cmd, DALY_CAN_HOST, DALY_CAN_BMS)
/* the id bits that name the answer, not its sender (the board, bits 0-7) */
#define DALY_CAN_ANSWER_MASK (CAN_EFF_MASK & ~(canid_t)0xFF)

/* what we ask for every period, CAN V1.0 §3 (header) */
static const uint8_t daly_can_cmd[] = { 0x90, 0x91, 0x92, 0x93, 0x94, 0x98 };

/*
 * the answers to them, of board 1; 29-bit ids (CAN_EFF_FLAG: the receive
 * filter takes them as such), compared without the board (rx_mask)
 */
static const canid_t daly_can_rx_ids[] = {
	DALY_CAN_ANSWER(0x90), DALY_CAN_ANSWER(0x91), DALY_CAN_ANSWER(0x92),
	DALY_CAN_ANSWER(0x93), DALY_CAN_ANSWER(0x94), DALY_CAN_ANSWER(0x98),
};

/* board 1 alone: ->decode_frame() and ->keepalive() */
static const uint8_t daly_can_default_board[] = { DALY_CAN_BMS };

/* "no limit from this pack": Daly sends none (header) */
static void daly_can_no_limits(struct battery_pack *p, uint64_t now_usec)
{
	p->charge_voltage_limit_mv = UINT32_MAX;
	p->discharge_voltage_limit_mv = 0;
	p->charge_current_limit_ma = UINT32_MAX;
	p->discharge_current_limit_ma = UINT32_MAX;
	battery_pack_mark(p, BATTERY_GROUP_LIMITS, now_usec);
}

static int daly_can_decode_frame_at(const struct can_frame *f, uint64_t now_usec,
				    const uint8_t *boards, size_t n_boards,
				    struct battery_state *bs)
{
	uint8_t cmd, board;
	size_t i, pack;
	int r;

	if (!f || !bs || (!boards && n_boards)) {
		return -EINVAL;
	}
	/* an answer to one of our IDs, as a 29-bit data frame, or not ours */
	if ((f->can_id & (CAN_EFF_FLAG | CAN_RTR_FLAG | CAN_ERR_FLAG)) != CAN_EFF_FLAG) {
		return 0;
	}
	for (i = 0; i < ARRAY_SIZE(daly_can_rx_ids); i++) {
		if ((f->can_id & DALY_CAN_ANSWER_MASK) ==
		    (daly_can_rx_ids[i] & DALY_CAN_ANSWER_MASK)) {
			break;
		}
	}
	if (i == ARRAY_SIZE(daly_can_rx_ids)) {
		return 0;
	}
	/* from a board we read: its pack; another board's (or another module's) is not ours */
	board = (uint8_t)(f->can_id & 0xFF);
	for (pack = 0; pack < n_boards && pack < BATTERY_PACKS_MAX; pack++) {
		if (boards[pack] == board) {
			break;
		}
	}
	if (pack == n_boards || pack == BATTERY_PACKS_MAX) {
		return 0;
	}
	if (f->len != DALY_CAN_DLEN) {
		return -EBADMSG;
	}
	cmd = daly_can_cmd[i];
	r = daly_decode_data(cmd, f->data, &bs->packs[pack], now_usec);
	if (r < 0) {
		return -EBADMSG; /* daly.c left the pack untouched */
	}
	if (cmd == 0x90) {
		daly_can_no_limits(&bs->packs[pack], now_usec);
	}
	return 1;
}

static int daly_can_decode_frame(const struct can_frame *f, uint64_t now_usec,
				 struct battery_state *bs)
{
	return daly_can_decode_frame_at(f, now_usec, daly_can_default_board,
					ARRAY_SIZE(daly_can_default_board), bs);
}

/*
 * the requests: CAN V1.0 §2.3.1 0x18 <ID> <board> 40, §3 "Send:
 * Byte0~Byte7 reserved" (zero); board by board, in the list's order
 */
static int daly_can_keepalive_at(const uint8_t *boards, size_t n_boards, struct can_frame *frames,
				 size_t n_frames)
{
	size_t n = 0;

	if (!frames || (!boards && n_boards) || n_boards > n_frames / ARRAY_SIZE(daly_can_cmd)) {
		return -ENOBUFS;
	}
	for (size_t b = 0; b < n_boards; b++) {
		for (size_t i = 0; i < ARRAY_SIZE(daly_can_cmd); i++, n++) {
			memset(&frames[n], 0, sizeof(frames[n]));
			frames[n].can_id = DALY_CAN_REQUEST(daly_can_cmd[i], boards[b]);
			frames[n].len = DALY_CAN_DLEN;
		}
	}
	return (int)n;
}

static int daly_can_keepalive(struct can_frame *frames, size_t n_frames)
{
	return daly_can_keepalive_at(daly_can_default_board, ARRAY_SIZE(daly_can_default_board),
				     frames, n_frames);
}

const struct bms_driver daly_can_bms_driver = {
	.name = "daly-can",
	.description = "Daly BMS on its CAN port (250 kbit/s, 29-bit ids, boards 1-31)",
	.transport = BMS_TRANSPORT_CAN,
	.bitrate = 250000, /* CAN V1.0 §1 */
	.rx_ids = daly_can_rx_ids,
	.n_rx_ids = ARRAY_SIZE(daly_can_rx_ids),
	.decode_frame = daly_can_decode_frame,
	.keepalive = daly_can_keepalive,
	.keepalive_period_usec = USEC_PER_SEC,
	.can_address_min = DALY_CAN_BMS,
	.can_address_max = DALY_CAN_BOARD_MAX,
	.rx_mask = DALY_CAN_ANSWER_MASK,
	.decode_frame_at = daly_can_decode_frame_at,
	.keepalive_at = daly_can_keepalive_at,
};
