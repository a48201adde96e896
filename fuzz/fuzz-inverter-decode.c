/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: every CAN protocol's ->decode() and ->inverter_rx() on
 * arbitrary frames (what `bmsbridgectl decode` and the inverter port feed
 * them), then ->encode() and ->encode_urgent() on whatever state the
 * decoders built, so the encoders also meet states no BMS would send.
 *
 * Input: records of 11 bytes, id (2 bytes little endian: 11-bit id, bit 15
 * sets CAN_EFF_FLAG, bit 14 CAN_RTR_FLAG, bit 13 CAN_ERR_FLAG), len (any
 * value 0-255: decoders must not trust it), 8 data bytes.
 *
 * Corpus: real sets (fuzz/corpus/inverter-decode/, one file per source),
 * Luxpower's 0x300 remote command, the extended 0x305 of a Schneider XW
 * Pro, a Growatt SPH6000's 0x301 polls among a GBLI6532 bank's frames.
 *
 * Traps on: a return value outside the documented set, a shutdown request
 * from anything but a standard 0x300, an extended frame taken for anything
 * but the 0x305 ack, a frame count
 * above PROTOCOL_FRAMES_MAX, an encoded frame longer than 8 bytes or with
 * an id beyond 11 bits.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "battery.h"
#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_encode(const struct inverter_protocol *p, const struct battery_state *prev,
			 const struct battery_state *bs)
{
	struct can_frame out[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { .soc_follows_limits = true, .send_dvl = true };
	int n = p->encode(&opt, bs, 1, out, PROTOCOL_FRAMES_MAX);

	if (n != -ENODATA && (n < 1 || n > PROTOCOL_FRAMES_MAX)) {
		__builtin_trap();
	}
	for (int i = 0; i < n; i++) {
		if (out[i].len > CAN_MAX_DLEN || out[i].can_id > CAN_SFF_MASK) {
			__builtin_trap();
		}
	}
	if (p->encode_urgent) {
		n = p->encode_urgent(&opt, prev, bs, 1, out, PROTOCOL_FRAMES_MAX);
		if (n < 0 || n > PROTOCOL_FRAMES_MAX) {
			__builtin_trap();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct battery_state bs[16], prev[16];
	const struct inverter_protocol *p;
	size_t np = 0;

	for (size_t i = 0; (p = protocol_get(i)) && np < 16; i++, np++) {
		battery_state_init(&bs[np], 1);
		prev[np] = bs[np];
	}
	for (size_t off = 0; off + 11 <= size; off += 11) {
		struct can_frame f;
		uint16_t id = (uint16_t)(data[off] | data[off + 1] << 8);

		memset(&f, 0, sizeof(f));
		f.can_id = id & CAN_SFF_MASK;
		f.can_id |= id & 0x8000 ? CAN_EFF_FLAG : 0;
		f.can_id |= id & 0x4000 ? CAN_RTR_FLAG : 0;
		f.can_id |= id & 0x2000 ? CAN_ERR_FLAG : 0;
		f.len = data[off + 2];
		memcpy(f.data, &data[off + 3], 8);

		for (size_t i = 0; i < np; i++) {
			int r;

			p = protocol_get(i);
			if (p->transport != PROTOCOL_TRANSPORT_CAN) {
				continue;
			}
			r = p->inverter_rx(&f);
			if (r != PROTOCOL_RX_IGNORED && r != PROTOCOL_RX_KEEPALIVE &&
			    r != PROTOCOL_RX_REQUEST && r != PROTOCOL_RX_SHUTDOWN_ASKED &&
			    r != PROTOCOL_RX_SHUTDOWN_CLEARED) {
				__builtin_trap();
			}
			/* a shutdown request only from a standard 0x300 (Luxpower V04.2) */
			if ((r == PROTOCOL_RX_SHUTDOWN_ASKED ||
			     r == PROTOCOL_RX_SHUTDOWN_CLEARED) && f.can_id != 0x300) {
				__builtin_trap();
			}
			/* an extended frame is only ever the 0x305 ack (Schneider XW Pro) */
			if ((f.can_id & CAN_EFF_FLAG) && r != PROTOCOL_RX_IGNORED &&
			    (r != PROTOCOL_RX_KEEPALIVE || (f.can_id & CAN_EFF_MASK) != 0x305)) {
				__builtin_trap();
			}
			prev[i] = bs[i];
			r = p->decode(&f, 1 + off, &bs[i]);
			if (r != 0 && r != 1 && r != -EBADMSG) {
				__builtin_trap();
			}
			if (bs[i].pack_count < 1 || bs[i].pack_count > BATTERY_PACKS_MAX ||
			    bs[i].packs_online > BATTERY_PACKS_MAX) {
				__builtin_trap();
			}
			check_encode(p, &prev[i], &bs[i]);
		}
	}
	return 0;
}
