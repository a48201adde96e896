/* SPDX-License-Identifier: MIT */
/*
 * `pylontech-can`: a BMS that speaks Pylontech CAN as the battery (a JK-PB
 * with "Pylontech" chosen in the JK app, or any pack of that family) is
 * read as our BMS input.
 *
 * The frames are the ones our own Pylontech encoder writes, so the decoding
 * is pylon_can_decode_pack() of the family (pylon_family.c, checked against
 * the real US5000 capture in tests/data/pylontech-us5000-v12.log), written
 * into packs[0]: the BMS presents the whole bank as one pack. The module
 * count in 0x359 byte 4 is the BMS's own business and not used here: the
 * number of packs we read is ours (one).
 *
 * The BMS expects an inverter: the 0x305 ack/keep-alive, eight zero bytes
 * about once a second (protocols.md; what our integration test's inverter
 * sends too). Some packs stop or limit their broadcasts without it.
 */
#include <errno.h>
#include <string.h>

#include "battery.h"
#include "bms.h"
#include "macro.h"
#include "pylon_family.h"

static const canid_t pylontech_can_rx_ids[] = {
	PYLON_ID_LIMITS, PYLON_ID_SOC,	    PYLON_ID_MEASURED,
	PYLON_ID_ALARMS, PYLON_ID_REQUESTS, PYLON_ID_NAME,
};

static int pylontech_can_decode_frame(const struct can_frame *f, uint64_t now_usec,
				      struct battery_state *bs)
{
	/* -EBADMSG from the family decoder leaves the pack untouched */
	return pylon_can_decode_pack(f, now_usec, &bs->packs[0]);
}

static int pylontech_can_keepalive(struct can_frame *frames, size_t n_frames)
{
	if (n_frames < 1) {
		return -ENOBUFS;
	}
	memset(&frames[0], 0, sizeof(frames[0]));
	frames[0].can_id = PYLON_ID_INV_ACK; /* 0x305, standard id */
	frames[0].len = 8;		     /* all zero: "inverter here" */
	return 1;
}

const struct bms_driver pylontech_can_bms_driver = {
	.name = "pylontech-can",
	.description = "a BMS speaking Pylontech CAN (JK-PB set to Pylontech, ...)",
	.transport = BMS_TRANSPORT_CAN,
	.bitrate = 500000,
	.rx_ids = pylontech_can_rx_ids,
	.n_rx_ids = ARRAY_SIZE(pylontech_can_rx_ids),
	.decode_frame = pylontech_can_decode_frame,
	.keepalive = pylontech_can_keepalive,
	.keepalive_period_usec = USEC_PER_SEC,
};
