/* SPDX-License-Identifier: MIT */
/*
 * JK-PB text dumps (`bmsbridgectl decode --jk-pb`, tests/data/jk-pb-*.hex):
 * register lines "1200: 0D35 0D31 ..." and raw bus bytes "55 AA EB 90 ...",
 * as the BMS's own tools and a serial sniffer write them. Pure: the blocks
 * and frames found are decoded by protocols/jk_pb.c (jk_pb_decode_block(),
 * the listen-only attribution of jk_pb_listen()), into a copy of the pack
 * that replaces the caller's only when the whole dump is valid.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "battery.h"
#include "byteorder.h"
#include "hex.h"
#include "jk_pb.h"
#include "macro.h"

/* ---- the text dump ---------------------------------------------------------- */

#define JK_DUMP_BYTES_MAX (4 * JK_PB_FRAME_LEN)

struct jk_image {
	uint8_t bytes[JK_PB_DATA_LEN];
	bool covered[JK_PB_DATA_LEN];
	bool used;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == ',';
}

/* "1200: 0D35 0D31 ..." into the image of its block */
static int dump_register_line(const char *s, size_t n, struct jk_image *data,
			      struct jk_image *settings)
{
	size_t i = 0;
	unsigned addr = 0, digits = 0;
	struct jk_image *img;
	unsigned off;

	while (i < n && hex_value(s[i]) >= 0 && digits < 4) {
		addr = addr << 4 | (unsigned)hex_value(s[i++]);
		digits++;
	}
	if (digits == 0 || i >= n || s[i] != ':') {
		return -EBADMSG;
	}
	i++;
	if (addr >= JK_PB_REG_DATA && addr < JK_PB_REG_DATA + JK_PB_DATA_LEN) {
		img = data;
		off = addr - JK_PB_REG_DATA;
	} else if (addr >= JK_PB_REG_SETTINGS && addr < JK_PB_REG_SETTINGS + JK_PB_SETTINGS_LEN) {
		img = settings;
		off = addr - JK_PB_REG_SETTINGS;
	} else {
		return -EBADMSG;
	}
	for (;;) {
		unsigned w = 0;

		while (i < n && is_blank(s[i])) {
			i++;
		}
		if (i >= n) {
			break;
		}
		for (unsigned k = 0; k < 4; k++, i++) {
			if (i >= n || hex_value(s[i]) < 0) {
				return -EBADMSG;
			}
			w = w << 4 | (unsigned)hex_value(s[i]);
		}
		if (i < n && !is_blank(s[i])) {
			return -EBADMSG;
		}
		if (off + 2 > JK_PB_DATA_LEN) {
			return -EBADMSG;
		}
		put_be16(&img->bytes[off], (uint16_t)w); /* the word as on the wire */
		img->covered[off] = img->covered[off + 1] = true;
		off += 2;
		img->used = true;
	}
	return 0;
}

/* "55 AA EB 90 ..." appended to the byte stream */
static int dump_hex_line(const char *s, size_t n, uint8_t *bytes, size_t *n_bytes)
{
	int hi = -1;

	for (size_t i = 0; i < n; i++) {
		int h;

		if (is_blank(s[i])) {
			if (hi >= 0) {
				return -EBADMSG; /* odd digit count in a group */
			}
			continue;
		}
		h = hex_value(s[i]);
		if (h < 0) {
			return -EBADMSG;
		}
		if (hi < 0) {
			hi = h;
			continue;
		}
		if (*n_bytes >= JK_DUMP_BYTES_MAX) {
			return -EBADMSG;
		}
		bytes[(*n_bytes)++] = (uint8_t)(hi << 4 | h);
		hi = -1;
	}
	return hi >= 0 ? -EBADMSG : 0;
}

static bool image_covers(const struct jk_image *img, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!img->covered[i]) {
			return false;
		}
	}
	return true;
}

/* one heard frame of the dump, if it is of the address asked for */
static int dump_frame(const struct jk_pb_heard *h, int addr, int *seen, unsigned pack,
		      uint64_t now_usec, struct battery_state *scratch)
{
	uint8_t from = 0;
	uint64_t t;

	/* a frame nobody asked for and no echo names: a DIP-0 master's own */
	if (jk_pb_heard_attribute(h, 0, &from, &t) < 0) {
		return -EBADMSG; /* the poll and the echo disagree */
	}
	if (addr >= 0 && from != addr) {
		return 0;
	}
	if (addr < 0 && *seen >= 0 && *seen != from) {
		return -EBADMSG; /* several packs: the caller must say which */
	}
	*seen = from;
	if (jk_pb_decode_block(JK_PB_BLOCK_FRAME, h->frame, JK_PB_FRAME_LEN, pack, now_usec,
			       scratch) < 0) {
		return -EBADMSG;
	}
	return 1;
}

/*
 * Over 80 lines: two passes that must share their state: the text lines into images and
 * bytes, then the bytes as the bus carried them.
 */
int jk_pb_decode_dump_addr(const char *text, size_t len, int addr, unsigned pack, uint64_t now_usec,
			   struct battery_state *bs, int *ret_addr)
{
	struct jk_image data = { 0 }, settings = { 0 };
	uint8_t bytes[JK_DUMP_BYTES_MAX];
	size_t n_bytes = 0, pos = 0;
	struct jk_pb_listener l;
	struct jk_pb_heard h;
	struct battery_state scratch; /* only packs[pack] is used */
	int blocks = 0, seen = -1, r;

	if (!text || pack >= BATTERY_PACKS_MAX || addr > 255) {
		return -EBADMSG;
	}
	while (pos < len) {
		const char *line = text + pos;
		const char *end = memchr(line, '\n', len - pos);
		size_t n = end ? (size_t)(end - line) : len - pos;
		size_t k;

		pos += n + (end ? 1 : 0);
		/* strip a comment and the blanks around what is left */
		for (k = 0; k < n && line[k] != '#'; k++) {
		}
		n = k;
		while (n > 0 && is_blank(line[0])) {
			line++;
			n--;
		}
		while (n > 0 && is_blank(line[n - 1])) {
			n--;
		}
		if (n == 0) {
			continue;
		}
		if (memchr(line, ':', n)) {
			r = dump_register_line(line, n, &data, &settings);
		} else {
			r = dump_hex_line(line, n, bytes, &n_bytes);
		}
		if (r < 0) {
			return r;
		}
	}

	/* decode into a copy: the state changes only if everything is valid */
	scratch.packs[pack] = bs->packs[pack];
	if (settings.used) {
		if (!image_covers(&settings, JK_PB_SETTINGS_LEN) ||
		    jk_pb_decode_block(JK_PB_BLOCK_SETTINGS_REGS, settings.bytes,
				       JK_PB_SETTINGS_LEN, pack, now_usec, &scratch) < 0) {
			return -EBADMSG;
		}
		blocks++;
	}
	if (data.used) {
		if (!image_covers(&data, JK_PB_DATA_LEN) ||
		    jk_pb_decode_block(JK_PB_BLOCK_DATA_REGS, data.bytes, JK_PB_DATA_LEN, pack,
				       now_usec, &scratch) < 0) {
			return -EBADMSG;
		}
		blocks++;
	}
	/*
	 * The bytes as they were on the bus: polls, frames, write echoes,
	 * 0x00 padding, in any order a capture shows them; every frame is
	 * attributed as the listen-only input attributes it. Anything that
	 * is none of these (a cut or corrupted frame) is an error here: a
	 * dump is read to be checked.
	 */
	jk_pb_listener_init(&l, UINT64_MAX);
	for (size_t i = 0; i < n_bytes;) {
		struct jk_pb_bus_item it;
		int k = jk_pb_bus_next(&bytes[i], n_bytes - i, true, &it);

		if (it.kind == JK_PB_BUS_NOISE && bytes[i] != 0x00) {
			return -EBADMSG;
		}
		if (jk_pb_listen(&l, &it, 0, &h) > 0) {
			r = dump_frame(&h, addr, &seen, pack, now_usec, &scratch);
			if (r < 0) {
				return r;
			}
			blocks += r;
		}
		i += (size_t)k;
	}
	if (jk_pb_listen_flush(&l, 0, true, &h) > 0) {
		r = dump_frame(&h, addr, &seen, pack, now_usec, &scratch);
		if (r < 0) {
			return r;
		}
		blocks += r;
	}
	if (blocks == 0) {
		return -EBADMSG;
	}
	bs->packs[pack] = scratch.packs[pack];
	if (ret_addr) {
		*ret_addr = seen;
	}
	return blocks;
}

int jk_pb_decode_dump(const char *text, size_t len, unsigned pack, uint64_t now_usec,
		      struct battery_state *bs)
{
	return jk_pb_decode_dump_addr(text, len, -1, pack, now_usec, bs, NULL);
}
