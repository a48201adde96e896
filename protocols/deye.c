/* SPDX-License-Identifier: MIT */
/*
 * `deye`: Deye and Sol-Ark hybrids, the Pylontech family with Deye's
 * differences.
 *
 * Primary documents: Deye's "CANBUS Protocol" V1.2 (the Pylontech V1.2
 * tables under Deye's name) and Sol-Ark's "CAN Bus Protocol for LV
 * Battery-Inverter Communications" v1.3 (2023-01-20). Where they differ:
 *   - 0x356 bytes 0-1: Deye V1.2 says 0.01 V, Sol-Ark v1.3 says 0.1 V
 *     ("Battery Terminal Voltage 0.1V"). We follow Deye: a JK-PB offers
 *     no Sol-Ark setting, and Sol-Ark owners pick JK's own "Deye" setting,
 *     which sends 0.01 V and runs on their inverters; YamBMS
 *     (yambms_canbus.yaml, 0x356) sends 0.01 V for its Deye choice too.
 *     0x356 is a measurement: no limit hangs on it.
 *   - Sol-Ark v1.3: "only recognize[s] standard CAN Bus frames containing
 *     8 bytes of data": every frame is padded to 8 bytes, unused bytes 00.
 *   - 0x351 bytes 6-7: the discharge voltage limit (Sol-Ark v1.3; empty in
 *     Deye V1.2), always sent.
 *   - 0x356 bytes 4-5: "Average cell temperature" (Deye V1.2), "Battery
 *     Temperature" (Sol-Ark v1.3): pylon_family_mean_temp_dc().
 *   - 0x379 bytes 0-1: "Battery [Bank] Capacity" u16 1 Ah, bytes 2-7 00
 *     (Sol-Ark v1.3 p. 5), sent after the common six.
 * The name defaults to "PYLON", which Deye recognises (Sleeper85/esphome-
 * yambms yambms_canbus.yaml); Deye V1.2's table shows "DEYE".
 *
 * Quirks, each a named option or a default:
 *   - Deye acknowledges with 0x305, but every ~2 h and at midnight that
 *     ack comes seconds late (Sleeper85/esphome-jk-bms-can#48): the
 *     inverter counts as gone only after 60 s of silence.
 *   - soc_follows_limits: off-grid a Deye follows SOC rather than the
 *     current limits (dalathegreat/Battery-Emulator#873); with the option
 *     0x355 says 100 % while charge is blocked and 0 % while discharge is
 *     blocked (pylon_family_soc()).
 */
#include <errno.h>

#include "battery.h"
#include "byteorder.h"
#include "macro.h"
#include "protocol.h"
#include "pylon_family.h"

#define DEYE_ID_CAPACITY 0x379 /* Sol-Ark v1.3: bank capacity */

static const struct pylon_layout deye_layout = {
	.pad_to_8 = true,
	.dvl = true,
	.temp = PYLON_TEMP_AVERAGE,
	.soc_follows = true,
	.default_name = "PYLON",
};

static int deye_encode(const struct protocol_options *opt, const struct battery_state *bs,
		       uint64_t now_usec, struct can_frame *frames, size_t n_frames)
{
	int n = pylon_family_encode(&deye_layout, opt, bs, frames, n_frames);

	if (n < 0) {
		return n;
	}
	if ((size_t)n >= n_frames) {
		return -ENOBUFS;
	}
	frames[n] = (struct can_frame){ .can_id = DEYE_ID_CAPACITY, .len = 8 };
	/* bank capacity u16 LE 1 Ah, truncated; bytes 2-7 00 (Sol-Ark v1.3 0x379) */
	put_le16(&frames[n].data[0], clamp_u16(bs->bank.full_mah / 1000));
	return n + 1;
}

static int deye_encode_urgent(const struct protocol_options *opt, const struct battery_state *prev,
			      const struct battery_state *bs, uint64_t now_usec,
			      struct can_frame *frames, size_t n_frames)
{
	return pylon_family_encode_urgent(&deye_layout, opt, prev, bs, frames, n_frames);
}

static int deye_decode(const struct can_frame *f, uint64_t now_usec, struct battery_state *bs)
{
	if (f->can_id == DEYE_ID_CAPACITY) {
		if (f->len < 2) {
			return -EBADMSG;
		}
		bs->bank.full_mah = (uint32_t)get_le16(&f->data[0]) * 1000; /* u16 Ah */
		battery_pack_mark(&bs->bank, BATTERY_GROUP_CAPACITY, now_usec);
		return 1;
	}
	return pylon_family_decode(f, now_usec, bs);
}

static const canid_t deye_rx_ids[] = { PYLON_ID_INV_ACK, PYLON_ID_INV_IDENT };

const struct inverter_protocol deye_protocol = {
	.name = "deye",
	.description = "Deye / Sol-Ark: Pylontech CAN, 8-byte frames, late-ack tolerant",
	.transport = PROTOCOL_TRANSPORT_CAN,
	.schedule = PROTOCOL_SCHEDULE_PERIODIC,
	.period_usec = USEC_PER_SEC,
	.bitrate = 500000,
	.inverter_timeout_usec = 60 * USEC_PER_SEC,
	.rx_ids = deye_rx_ids,
	.n_rx_ids = ARRAY_SIZE(deye_rx_ids),
	.encode = deye_encode,
	.encode_urgent = deye_encode_urgent,
	.inverter_rx = pylon_family_inverter_rx,
	.decode = deye_decode,
};
