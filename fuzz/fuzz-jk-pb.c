/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: every JK-PB decoder on outside bytes. The first input
 * byte picks the entry point (block kinds, the trigger-answer finder, the
 * 0x03 response check, the text dump, the bus stream parser with the
 * listener as the listen-only input runs them, and through the serial
 * engine's ->identify() and decoders of both polled rounds, the dump of
 * one address of a bus), the rest is the input. Invariants: no crash; a rejected input
 * leaves the state byte for byte as it was; an accepted status never
 * claims more cells or sensors than it may; the stream parser always
 * moves on and every item it reports lies inside the input.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "battery.h"
#include "bms.h"
#include "jk_pb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The bytes as a bus: cut into items in chunks (the byte values pick the
 * chunk sizes and times), paired by the listener, attributed, decoded.
 * A frame heard that fails to decode must write nothing. Return: 0.
 */
static int fuzz_bus(const uint8_t *b, size_t n, struct battery_state *bs)
{
	static struct jk_pb_listener l;
	static struct battery_state snap;
	struct jk_pb_heard h;
	uint64_t now = 1;
	size_t off = 0, avail = 0;
	int r = 0;

	jk_pb_listener_init(&l, 200000);
	while (off < n) {
		struct jk_pb_bus_item it;
		bool final;
		int k;

		/* bytes arrive in chunks, as reads of a tty return them */
		if (avail <= off) {
			avail = off + 1 + b[off] % 64;
			avail = avail > n ? n : avail;
		}
		final = avail == n;
		k = jk_pb_bus_next(b + off, avail - off, final, &it);
		if (k == -EAGAIN) {
			if (final) {
				__builtin_trap(); /* the end must always resolve */
			}
			avail = avail + 64 > n ? n : avail + 64;
			now += 20000;
			continue;
		}
		if (k < 1 || (size_t)k > avail - off) {
			__builtin_trap();
		}
		if ((it.kind == JK_PB_BUS_FRAME || it.kind == JK_PB_BUS_READ_ANSWER) &&
		    (it.data < b + off || it.data + it.len > b + off + (size_t)k)) {
			__builtin_trap();
		}
		off += (size_t)k;
		if (jk_pb_listen(&l, &it, now, &h) > 0 ||
		    (b[off - 1] == 0x7F && jk_pb_listen_flush(&l, now, false, &h) > 0)) {
			uint8_t addr;
			uint64_t t;

			if (jk_pb_heard_attribute(&h, 0, &addr, &t) == 0) {
				snap = *bs;
				if (jk_pb_decode_block(JK_PB_BLOCK_FRAME, h.frame, JK_PB_FRAME_LEN,
						       addr % BATTERY_PACKS_MAX, t, bs) < 0 &&
				    memcmp(&snap, bs, sizeof(snap)) != 0) {
					__builtin_trap();
				}
			}
		}
		now += 1000;
	}
	if (jk_pb_listen_flush(&l, now, true, &h) > 0 && h.frame[0] != 0x55) {
		__builtin_trap(); /* only frames are ever held */
	}
	return r;
}

/*
 * The bytes as the serial engine reads them for a polled round
 * (jk_pb_serial_method()): ->identify() in chunks, every answer decoded
 * as the engine would. Invariants: an item lies inside what was given, 0
 * ("more") only while more can come, a failed decode writes nothing.
 */
static void fuzz_identify(int method, const uint8_t *b, size_t n, struct battery_state *bs)
{
	const struct bms_serial_ops *ops = jk_pb_serial_method(method);
	static uint8_t part_bytes[JK_PB_DATA_LEN];
	static struct battery_state snap;
	struct bms_serial_part part = { .bytes = part_bytes };
	size_t off = 0, avail = 0;

	while (off < n) {
		struct bms_serial_item it;
		bool final;
		ssize_t k;
		int r;

		if (avail <= off) {
			avail = off + 1 + b[off] % 64;
			avail = avail > n ? n : avail;
		}
		final = avail == n;
		k = ops->identify(b + off, avail - off, final, &it);
		if (k == 0) {
			if (final) {
				__builtin_trap();
			}
			avail = avail + 64 > n ? n : avail + 64;
			continue;
		}
		if (k < 0) {
			off++;
			continue;
		}
		if ((size_t)k > avail - off) {
			__builtin_trap();
		}
		if (!it.other && !it.error && it.step >= 0) {
			if ((unsigned)it.step >= ops->n_steps) {
				__builtin_trap();
			}
			snap = *bs;
			r = ops->decode_part ? ops->decode_part((unsigned)it.step, b + off, (size_t)k,
								0, 1000, bs, &part)
					     : ops->decode((unsigned)it.step, b + off, (size_t)k, 0,
							   1000, bs);
			if (r < 0 && memcmp(&snap, bs, sizeof(snap)) != 0) {
				__builtin_trap();
			}
		}
		off += (size_t)k;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct battery_state bs, before;
	const uint8_t *p = NULL;
	size_t n = 0;
	int r;

	if (size < 2) {
		return 0;
	}
	battery_state_init(&bs, 2);
	before = bs;
	switch (data[0] % 8) {
	case 0:
	case 1:
	case 2:
		r = jk_pb_decode_block(data[0] % 3, data + 1, size - 1, data[0] >> 7, 1000, &bs);
		break;
	case 3:
		r = jk_pb_decode_dump((const char *)data + 1, size - 1, 0, 1000, &bs);
		break;
	case 4:
		r = jk_pb_find_frame(data[1], JK_PB_TRIGGER_STATUS, data + 1, size - 1, data[1] & 1,
				     &p);
		if (r == 0 && (p < data + 1 || p + JK_PB_FRAME_LEN > data + size)) {
			__builtin_trap();
		}
		r = r == 0 ? jk_pb_decode_block(JK_PB_BLOCK_FRAME, p, JK_PB_FRAME_LEN, 0, 1000, &bs)
			   : r;
		break;
	case 6:
		r = fuzz_bus(data + 1, size - 1, &bs);
		fuzz_identify(data[0] & 0x80 ? JK_PB_READ_REGISTERS : JK_PB_READ_TRIGGER, data + 1,
			      size - 1, &bs);
		break;
	case 7:
		r = jk_pb_decode_dump_addr((const char *)data + 2, size - 2, (int)(data[1] % 17) - 1,
					   data[1] % BATTERY_PACKS_MAX, 1000, &bs, NULL);
		break;
	default:
		r = jk_pb_check_read_response(data[1], data + 1, size - 1, &p, &n);
		if (r == 0 && (p < data + 1 || p + n > data + size)) {
			__builtin_trap();
		}
		return 0;
	}
	if (r < 0 && memcmp(&bs, &before, sizeof(bs)) != 0) {
		__builtin_trap();
	}
	for (unsigned i = 0; i < BATTERY_PACKS_MAX; i++) {
		if (bs.packs[i].cell_count > BATTERY_CELLS_MAX ||
		    bs.packs[i].temp_count > BATTERY_TEMPS_MAX || bs.packs[i].soc_pct > 100) {
			__builtin_trap();
		}
	}
	return 0;
}
