/* SPDX-License-Identifier: MIT */
/*
 * `deye`: Deye and Sol-Ark hybrids, the Pylontech family with Deye's
 * differences.
 *
 * Sol-Ark's v1.3 battery protocol (as quoted in Battery-Emulator
 * SOL-ARK-LV-CAN.cpp/.h) says the inverter "only recognize[s] standard CAN
 * Bus frames containing 8 bytes of data": every frame is padded to 8
 * bytes, 0x351 always carries the discharge voltage limit, 0x356 the mean
 * of the lowest and highest temperature, 0x359 byte 7 is zero. The name
 * defaults to "PYLON", which Deye recognises (Sleeper85/esphome-yambms
 * yambms_canbus.yaml).
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
#include "macro.h"
#include "protocol.h"
#include "pylon_family.h"

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
	return pylon_family_encode(&deye_layout, opt, bs, frames, n_frames);
}

static int deye_encode_urgent(const struct protocol_options *opt, const struct battery_state *prev,
			      const struct battery_state *bs, uint64_t now_usec,
			      struct can_frame *frames, size_t n_frames)
{
	return pylon_family_encode_urgent(&deye_layout, opt, prev, bs, frames, n_frames);
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
	.decode = pylon_family_decode,
};
