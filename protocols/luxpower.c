/* SPDX-License-Identifier: MIT */
/*
 * `luxpower`: Luxpower (and the JK app's "Deye or Luxpower" choice), the
 * Pylontech family with Luxpower's extras.
 *
 * Primary document: Luxpower "Battery CANBUS Protocol" V04 (V04.2,
 * 2023-09-05; "V04.2" below). All frames are 8 bytes; the common frames
 * carry, on top of the Pylontech V1.2 layout:
 *   0x351  6-7 "Discharge cut voltage" u16 0.1 V (the DVL)
 *   0x355  4-5 "Max Cell voltage" u16 1 mV, 6-7 "Min cell voltage"
 *   0x356  0-1 pack voltage 0.01 V for low-voltage batteries, 4-5 "Max
 *          Cell temperature" s16 0.1 degC, 6-7 "Min Cell temperature"
 *          (YamBMS adds 0.1 degC to the highest when both are equal so
 *          that they never are: kept, a Luxpower quirk)
 *   0x359  4 module number, 5-6 "Capacity" u16 Ah (instead of "PN"), 7 0;
 *          the bits as Pylon V1.2 (V04.2 Table 1 agrees bit for bit)
 *   0x35C  0 request flags (V04.2 Table 2, as Pylon V1.2), 2-3 "Cycle
 *          cnt" u16
 * and one extra frame not in V04.2:
 *   0x379  0-1 installed capacity u16 Ah (ArminJo/JK-BMSToPylontechCAN
 *          Pylontech_CAN.h, "Capacity for Luxpower SNA inverters"; also
 *          Sol-Ark v1.3's 0x379), kept for the SNA models.
 *
 * Inverter to battery: 0x305 (zeros) every second, the family's ack, and
 * 0x300 "Remote command from storage inverter": byte 0 bit 0 "RSD
 * battery", 0x01 = shut the battery down (V04.2, added in V03). We cannot
 * switch a BMS off and never loosen or tighten a limit for it: the request
 * is reported (PROTOCOL_RX_SHUTDOWN_ASKED / _CLEARED), logged once per
 * change and shown in STATUS by the CAN output.
 */
#include <errno.h>

#include "battery.h"
#include "byteorder.h"
#include "macro.h"
#include "protocol.h"
#include "pylon_family.h"

#define LUX_ID_CAPACITY 0x379
#define LUX_ID_REMOTE 0x300	 /* inverter -> battery remote command (V04.2) */
#define LUX_REMOTE_SHUTDOWN 0x01 /* byte 0 bit 0 "RSD battery" */

static const struct pylon_layout luxpower_layout = {
	.pad_to_8 = true,
	.dvl = true,
	.temp = PYLON_TEMP_MAX,
	.soc_follows = false,
	.default_name = "PYLON",
};

static uint16_t capacity_ah(const struct battery_pack *b)
{
	/* u16 Ah, truncated: full capacity of the bank */
	return clamp_u16(b->full_mah / 1000);
}

/* write Luxpower's extra bytes into one common frame */
static void luxpower_fixup(const struct battery_state *bs, struct can_frame *f)
{
	const struct battery_pack *b = &bs->bank;
	bool cells = battery_pack_has(b, BATTERY_GROUP_CELLS);
	bool temps = battery_pack_has(b, BATTERY_GROUP_TEMPS);
	int16_t tmax;

	switch (f->can_id) {
	case PYLON_ID_SOC:
		/* V04.2 0x355: max / min cell voltage u16 LE 1 mV (0 until cells are known) */
		put_le16(&f->data[4], cells ? b->cell_max_mv : 0);
		put_le16(&f->data[6], cells ? b->cell_min_mv : 0);
		break;
	case PYLON_ID_MEASURED:
		if (!temps) {
			break; /* 0 in bytes 4-7, as the family writes it */
		}
		/*
		 * V04.2 0x356 bytes 4-5 "Max Cell temperature" s16 LE 0.1 degC,
		 * +0.1 degC while equal to the lowest (YamBMS)
		 */
		tmax = b->temp_max_dc;
		if (tmax == b->temp_min_dc) {
			tmax = clamp_s16((int32_t)tmax + 1);
		}
		put_le16(&f->data[4], (uint16_t)tmax);
		put_le16(&f->data[6], (uint16_t)b->temp_min_dc); /* V04.2 "Min Cell temperature" */
		break;
	case PYLON_ID_ALARMS:
		/* V04.2 0x359 "Capacity" u16 LE Ah, not "PN" */
		put_le16(&f->data[5], capacity_ah(b));
		f->data[7] = 0;
		break;
	case PYLON_ID_REQUESTS:
		put_le16(&f->data[2], clamp_u16(b->cycles)); /* V04.2 0x35C "Cycle cnt" u16 LE */
		break;
	default:
		break;
	}
}

static int luxpower_encode(const struct protocol_options *opt, const struct battery_state *bs,
			   uint64_t now_usec, struct can_frame *frames, size_t n_frames)
{
	int n = pylon_family_encode(&luxpower_layout, opt, bs, frames, n_frames);

	if (n < 0) {
		return n;
	}
	if ((size_t)n >= n_frames) {
		return -ENOBUFS;
	}
	for (int i = 0; i < n; i++) {
		luxpower_fixup(bs, &frames[i]);
	}
	frames[n] = (struct can_frame){ .can_id = LUX_ID_CAPACITY, .len = 8 };
	/* 0x379 installed capacity u16 LE Ah: not in V04.2 (ArminJo, Sol-Ark v1.3 0x379) */
	put_le16(&frames[n].data[0], capacity_ah(&bs->bank));
	return n + 1;
}

static int luxpower_encode_urgent(const struct protocol_options *opt,
				  const struct battery_state *prev, const struct battery_state *bs,
				  uint64_t now_usec, struct can_frame *frames, size_t n_frames)
{
	int n = pylon_family_encode_urgent(&luxpower_layout, opt, prev, bs, frames, n_frames);

	for (int i = 0; i < n; i++) {
		luxpower_fixup(bs, &frames[i]);
	}
	return n;
}

static int luxpower_decode(const struct can_frame *f, uint64_t now_usec, struct battery_state *bs)
{
	struct battery_pack *b = &bs->bank;
	int r;

	if (f->can_id == LUX_ID_CAPACITY) {
		if (f->len < 2) {
			return -EBADMSG;
		}
		b->full_mah = (uint32_t)get_le16(&f->data[0]) * 1000; /* u16 Ah */
		battery_pack_mark(b, BATTERY_GROUP_CAPACITY, now_usec);
		return 1;
	}
	r = pylon_can_decode_pack(f, now_usec, b);
	if (r != 1 || f->len < 8) {
		return r;
	}
	switch (f->can_id) {
	case PYLON_ID_SOC:
		b->cell_max_mv = get_le16(&f->data[4]); /* u16 mV */
		b->cell_min_mv = get_le16(&f->data[6]);
		b->cell_count = 0; /* extremes only */
		b->cell_min_idx = b->cell_max_idx = BATTERY_INDEX_NONE;
		battery_pack_mark(b, BATTERY_GROUP_CELLS, now_usec);
		break;
	case PYLON_ID_MEASURED:
		b->temp_min_dc = (int16_t)get_le16(&f->data[6]); /* s16 0.1 degC */
		break;
	case PYLON_ID_ALARMS:
		/* byte 4 modules, bytes 5-6 capacity Ah */
		bs->packs_online = f->data[4] > BATTERY_PACKS_MAX ? BATTERY_PACKS_MAX : f->data[4];
		bs->pack_count = bs->packs_online ? bs->packs_online : 1;
		b->full_mah = (uint32_t)get_le16(&f->data[5]) * 1000;
		break;
	case PYLON_ID_REQUESTS:
		b->cycles = get_le16(&f->data[2]);
		break;
	default:
		break;
	}
	return r;
}

static int luxpower_inverter_rx(const struct can_frame *f)
{
	if (f->can_id == LUX_ID_REMOTE) { /* standard frame only: no flag may be set */
		if (f->len < 1) {
			return PROTOCOL_RX_KEEPALIVE; /* no byte 0: presence, no command */
		}
		/* byte 0 bit 0 "RSD battery": 0x01 shut the battery down (V04.2 0x300) */
		return f->data[0] & LUX_REMOTE_SHUTDOWN ? PROTOCOL_RX_SHUTDOWN_ASKED
							 : PROTOCOL_RX_SHUTDOWN_CLEARED;
	}
	return pylon_family_inverter_rx(f);
}

static const canid_t luxpower_rx_ids[] = { LUX_ID_REMOTE, PYLON_ID_INV_ACK, PYLON_ID_INV_IDENT };

const struct inverter_protocol luxpower_protocol = {
	.name = "luxpower",
	.description = "Luxpower: Pylontech CAN with cell extremes, capacity, cycles, 0x379",
	.transport = PROTOCOL_TRANSPORT_CAN,
	.schedule = PROTOCOL_SCHEDULE_PERIODIC,
	.period_usec = USEC_PER_SEC,
	.bitrate = 500000,
	.inverter_timeout_usec = 10 * USEC_PER_SEC,
	.rx_ids = luxpower_rx_ids,
	.n_rx_ids = ARRAY_SIZE(luxpower_rx_ids),
	.encode = luxpower_encode,
	.encode_urgent = luxpower_encode_urgent,
	.inverter_rx = luxpower_inverter_rx,
	.decode = luxpower_decode,
};
