/* SPDX-License-Identifier: MIT */
/*
 * bench/pipeline [FRAMES]: what one received BMS frame costs the daemon in
 * user space, on this machine's real CPU, without the kernel.
 *
 * The CAN flood benchmark (bench/can-flood) can only run inside
 * user-mode Linux here, where every system call is a ptrace round trip;
 * this one times the work the daemon does per frame once it has it, the
 * same calls in the same order as src/input_can.c and src/bridge.c: the
 * driver's pure decoder (pylontech-can), the safety layer, and the
 * protocol's urgent-frame check (pylontech), plus one full set encode per
 * 1000 frames as the 1 s period at 1000 frames/s would add. The frames
 * are the real US5000 set (tests/data/pylontech-us5000-v12.log) with the
 * voltage and the CCL moving, so the urgent path sends now and then; they
 * come four to a receive batch, sharing one loop time as the frames of one
 * recvmmsg() do, so new writes are told apart by their values there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "battery.h"
#include "bms.h"
#include "byteorder.h"
#include "macro.h"
#include "protocol.h"
#include "safety.h"

static uint64_t now_nsec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* the US5000 set of setfirelabs.com (tests/data/pylontech-us5000-v12.log) */
static const struct {
	canid_t id;
	uint8_t len;
	uint8_t data[8];
} us5000[] = {
	{ 0x351, 8, { 0x14, 0x02, 0xC0, 0x12, 0xC0, 0x12, 0xC2, 0x01 } },
	{ 0x355, 4, { 0x58, 0x00, 0x5E, 0x00 } },
	{ 0x356, 6, { 0x7A, 0x13, 0xF2, 0xFE, 0x6B, 0x01 } },
	{ 0x359, 7, { 0x00, 0x00, 0x00, 0x00, 0x06, 0x50, 0x4E } },
	{ 0x35C, 2, { 0xC0, 0x00 } },
	{ 0x35E, 8, { 'P', 'Y', 'L', 'O', 'N', ' ', ' ', ' ' } },
};

int main(int argc, char **argv)
{
	const struct bms_driver *drv = bms_driver_find("pylontech-can");
	const struct inverter_protocol *proto = protocol_find("pylontech");
	unsigned long frames = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000;
	struct protocol_options opt = { 0 };
	struct can_frame out[PROTOCOL_FRAMES_MAX];
	static struct battery_state bs, sent;
	static struct safety sf;
	struct safety_config cfg;
	uint64_t t = USEC_PER_SEC, t0, t1, urgent = 0;

	if (!drv || !proto) {
		fprintf(stderr, "pipeline: pylontech-can or pylontech not built in\n");
		return 1;
	}
	safety_config_defaults(&cfg);
	battery_state_init(&bs, 1);
	safety_init(&sf, &cfg, proto);
	/* a complete first read, as the daemon needs before it sends */
	for (size_t i = 0; i < ARRAY_SIZE(us5000); i++) {
		struct can_frame f = { .can_id = us5000[i].id, .len = us5000[i].len };

		memcpy(f.data, us5000[i].data, f.len);
		drv->decode_frame(&f, t, &bs);
	}
	safety_evaluate(&sf, &bs, t, NULL);
	sent = bs;

	t0 = now_nsec();
	for (unsigned long k = 0; k < frames; k++) {
		struct can_frame f = { .can_id = us5000[k % ARRAY_SIZE(us5000)].id,
				       .len = us5000[k % ARRAY_SIZE(us5000)].len };
		int n;

		memcpy(f.data, us5000[k % ARRAY_SIZE(us5000)].data, f.len);
		if (f.can_id == 0x356) {
			put_le16(f.data, (uint16_t)(4980 + k % 13)); /* 49.80-49.92 V */
		} else if (f.can_id == 0x351) {
			put_le16(f.data + 2, (uint16_t)(900 + k % 200)); /* CCL 90-110 A */
		}
		if (k % 4 == 0) {
			t += 1000; /* 4000 frames/s, 4 per recvmmsg() batch: one loop time */
		}
		if (drv->decode_frame(&f, t, &bs) <= 0) {
			continue;
		}
		safety_evaluate(&sf, &bs, t, NULL);
		n = proto->encode_urgent(&opt, &sent, &bs, t, out, ARRAY_SIZE(out));
		if (n > 0) {
			urgent += (uint64_t)n;
			sent.bank = bs.bank;
		}
		if (k % 1000 == 0) {
			proto->encode(&opt, &bs, t, out, ARRAY_SIZE(out));
			sent = bs;
		}
	}
	t1 = now_nsec();
	printf("pipeline: %lu BMS frames (pylontech-can -> safety -> pylontech), %llu urgent frames\n",
	       frames, (unsigned long long)urgent);
	printf("  %.0f ns per frame, %.1f us per 1000 frames: %.3f %% of one core at 4000 frames/s\n",
	       (double)(t1 - t0) / (double)frames, (double)(t1 - t0) / (double)frames,
	       (double)(t1 - t0) / (double)frames * 4000 / 1e9 * 100);
	return 0;
}
