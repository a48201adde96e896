/* SPDX-License-Identifier: MIT */
/*
 * `pylontech`: Pylontech low-voltage CAN, the universal choice (Goodwe
 * and Sofar select it through aliases).
 *
 * 500 kbit/s, 11-bit ids, one set a second: 0x351 limits, 0x355 SOC/SOH,
 * 0x356 voltage/current/temperature, 0x359 protection/warnings/module
 * count/"PN", 0x35C request flags, 0x35E manufacturer; the frames and bits
 * are built in pylon_family.c. Frame lengths are those of the open
 * encoders and of real packs (Battery-Emulator PYLON-LV-CAN.cpp; real
 * US5000 frames from setfirelabs.com): 0x351 6 bytes, or 8 with the
 * discharge voltage limit when `send_dvl` is set (real packs send it),
 * 0x355 4, 0x356 6, 0x359 7, 0x35C 2, 0x35E 8. 0x356 bytes 4-5 carry the
 * "Average cell temperature" of Pylontech's CANBUS Protocol V1.2 (and of
 * Deye V1.2), pylon_family_mean_temp_dc(): not the highest, which
 * Battery-Emulator, ArminJo/JK-BMSToPylontechCAN and diyBMS send against
 * the document (the highest and lowest are in no Pylontech frame).
 *
 * The inverter answers 0x305 about once a second (content zero) and some
 * send 0x307; either proves it is there. Battery-Emulator gives up after
 * 3 s, too short for real inverters that pause: we wait 10 s.
 */
#include "macro.h"
#include "protocol.h"
#include "pylon_family.h"

static const struct pylon_layout pylontech_layout = {
	.pad_to_8 = false,
	.dvl = false, /* only with options.send_dvl */
	.temp = PYLON_TEMP_AVERAGE, /* V1.2 0x356 bytes 4-5 */
	.soc_follows = false,
	.default_name = "PYLON",
};

static int pylontech_encode(const struct protocol_options *opt, const struct battery_state *bs,
			    uint64_t now_usec, struct can_frame *frames, size_t n_frames)
{
	return pylon_family_encode(&pylontech_layout, opt, bs, frames, n_frames);
}

static int pylontech_encode_urgent(const struct protocol_options *opt,
				   const struct battery_state *prev,
				   const struct battery_state *bs, uint64_t now_usec,
				   struct can_frame *frames, size_t n_frames)
{
	return pylon_family_encode_urgent(&pylontech_layout, opt, prev, bs, frames, n_frames);
}

static const canid_t pylontech_rx_ids[] = { PYLON_ID_INV_ACK, PYLON_ID_INV_IDENT };

const struct inverter_protocol pylontech_protocol = {
	.name = "pylontech",
	.description = "Pylontech LV CAN (0x351-0x35E), the universal choice",
	.transport = PROTOCOL_TRANSPORT_CAN,
	.schedule = PROTOCOL_SCHEDULE_PERIODIC,
	.period_usec = USEC_PER_SEC,
	.bitrate = 500000,
	.inverter_timeout_usec = 10 * USEC_PER_SEC,
	.rx_ids = pylontech_rx_ids,
	.n_rx_ids = ARRAY_SIZE(pylontech_rx_ids),
	.encode = pylontech_encode,
	.encode_urgent = pylontech_encode_urgent,
	.inverter_rx = pylon_family_inverter_rx,
	.decode = pylon_family_decode,
};
