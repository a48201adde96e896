/* SPDX-License-Identifier: MIT */
/*
 * A capture of a polled serial BMS bus, read back through the family's own
 * pure half (struct bms_serial_ops): `bmsbridgectl decode <family>`, the
 * golden tests of tests/data/bms-serial-*.txt, fuzz-bms-serial-dump.
 *
 * The text: one frame per line, requests and answers in the order they
 * were on the bus, as hex bytes (separated by blanks, '.', ':', ',' or '-',
 * or not at all) or, for the "~...\r" families, as the ASCII frame itself
 * (the '\r' may be left out). '#' starts a comment. If any line starts
 * with "->" or "<-" (a logged exchange, e.g. Tomcat42/pylontech-python's
 * output.txt), only those lines are read and the rest is the log's text.
 *
 * A line is a request if it is the family's own request for a (step,
 * address), byte for byte, or, for a "~" frame, if its YDT1363 header
 * (SOI, VER, ADR, CID1, CID2: the first 9 characters) is (real masters send
 * other LENGTH / INFO for the same command, e.g. the US2000B Plus
 * capture's 0x42 with INFO 0x02 0x02). Every other line is bytes on the
 * bus after the last request, scanned as the engine scans them
 * (src/serial_engine.c): ->frame() for that (step, address), -ENOMSG
 * frames skipped (another pack's answer, an echo), ->answer_frames()
 * frames gathered and decoded whole by ->decode() / ->decode_memo(), with
 * one word per address. Steps the engine would skip with the words known
 * so far (->answer_frames() 0) are framed but not decoded, as are frames
 * beyond an answer's count. Frames of commands the family does not
 * send (and their answers) are counted and passed over.
 *
 * Packs are numbered by the order their addresses first appear. Pure:
 * the text and the ops in, a battery_state and counts out; the state is
 * written only when the whole capture is valid. Not reentrant (its
 * buffers are static).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "battery.h"
#include "bms_serial.h"
#include "hex.h"

#define DUMP_LINE_MAX 4096 /* bytes of one line (a Daly 0x95 answer on one line is 208) */
#define DUMP_RX_MAX 8192   /* bytes of one answer being gathered */
#define DUMP_REQUEST_MAX 64
#define YDT_HEADER_CHARS 9 /* SOI, VER, ADR, CID1, CID2 (YDT1363 §2.3) */

struct dump_scan {
	const struct bms_serial_ops *ops;
	struct battery_state *bs;
	struct bms_serial_dump *st;
	uint64_t now_usec;
	bool pending;  /* a request is open */
	bool decoding; /* ... and its answer is still to be decoded */
	unsigned step;
	unsigned pack;
	unsigned want, got;
	uint32_t memo[BATTERY_PACKS_MAX];
	uint8_t rx[DUMP_RX_MAX];
	size_t rx_len, ans_len;
};

static int dump_fail(struct bms_serial_dump *st, unsigned line, const char *why)
{
	st->bad_line = line ? line : 1; /* an empty capture: its first line */
	st->why = why;
	return -EBADMSG;
}

static bool is_sep(char c)
{
	return c == ' ' || c == '\t' || c == '.' || c == ':' || c == ',' || c == '-';
}

/* one line's frame into @out; Return: its length, 0 for none, -EBADMSG */
static ssize_t dump_line_bytes(const char *s, size_t n, uint8_t *out, size_t cap)
{
	size_t len = 0;
	int hi = -1;

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) {
		n--;
	}
	while (n > 0 && (s[0] == ' ' || s[0] == '\t')) {
		s++;
		n--;
	}
	if (n == 0) {
		return 0;
	}
	if (s[0] == '~') {
		/* the ASCII frame itself, its EOI '\r' added */
		if (n + 1 > cap) {
			return -EBADMSG;
		}
		for (size_t i = 0; i < n; i++) {
			if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7E) {
				return -EBADMSG;
			}
			out[len++] = (uint8_t)s[i];
		}
		out[len++] = '\r';
		return (ssize_t)len;
	}
	for (size_t i = 0; i < n; i++) {
		int h;

		if (is_sep(s[i])) {
			if (hi >= 0) {
				return -EBADMSG; /* an odd digit in a group */
			}
			continue;
		}
		h = hex_value(s[i]);
		if (h < 0 || (hi < 0 && len >= cap)) {
			return -EBADMSG;
		}
		if (hi < 0) {
			hi = h;
		} else {
			out[len++] = (uint8_t)(hi << 4 | h);
			hi = -1;
		}
	}
	return hi >= 0 ? -EBADMSG : (ssize_t)len;
}

/* the pack index of @address, a new one on first sight; -ENOSPC past the maximum */
static int dump_pack(struct bms_serial_dump *st, uint8_t address)
{
	for (unsigned i = 0; i < st->n_packs; i++) {
		if (st->address[i] == address) {
			return (int)i;
		}
	}
	if (st->n_packs >= BATTERY_PACKS_MAX) {
		return -ENOSPC;
	}
	st->address[st->n_packs] = address;
	return (int)st->n_packs++;
}

/* whether @b is the request of some (step, address): exact, or the same YDT1363 header */
static bool dump_request(const struct bms_serial_ops *ops, const uint8_t *b, size_t n,
			 unsigned *ret_step, uint8_t *ret_address)
{
	for (int loose = 0; loose < 2; loose++) {
		for (unsigned a = ops->address_min; a <= ops->address_max; a++) {
			for (unsigned s = 0; s < ops->n_steps; s++) {
				uint8_t req[DUMP_REQUEST_MAX];
				ssize_t k = ops->request(s, (uint8_t)a, req, sizeof(req));
				bool match;

				if (k <= 0) {
					continue;
				}
				if (!loose) {
					match = (size_t)k == n && memcmp(req, b, n) == 0;
				} else {
					match = req[0] == '~' && k > YDT_HEADER_CHARS &&
						n > YDT_HEADER_CHARS &&
						memcmp(req, b, YDT_HEADER_CHARS) == 0;
				}
				if (match) {
					*ret_step = s;
					*ret_address = (uint8_t)a;
					return true;
				}
			}
		}
	}
	return false;
}

/* the bytes after the open request: find, gather and decode its answer */
static int dump_scan_answer(struct dump_scan *sc, unsigned line)
{
	const struct bms_serial_ops *ops = sc->ops;
	uint8_t address = sc->st->address[sc->pack];

	while (sc->rx_len > sc->ans_len) {
		uint8_t *at = sc->rx + sc->ans_len;
		size_t left = sc->rx_len - sc->ans_len, skip = 0;
		ssize_t k = ops->frame(sc->step, address, at, left, &skip);
		int r;

		if (k == 0) {
			return 0; /* the rest on the next line */
		}
		if (k == -ENOMSG && skip > 0 && skip <= left) {
			memmove(at, at + skip, left - skip);
			sc->rx_len -= skip;
			sc->st->skipped++;
			continue;
		}
		if (k < 0 || (size_t)k > left) {
			return dump_fail(sc->st, line,
					 "bytes that are no answer to the request before them");
		}
		if (!sc->decoding) {
			/* a step the engine skips now, or frames beyond the count */
			memmove(at, at + k, left - (size_t)k);
			sc->rx_len -= (size_t)k;
			sc->st->unread++;
			continue;
		}
		sc->ans_len += (size_t)k;
		if (++sc->got < sc->want) {
			continue;
		}
		if (ops->decode_memo) {
			r = ops->decode_memo(sc->step, sc->rx, sc->ans_len, sc->pack, sc->now_usec,
					     sc->bs, &sc->memo[sc->pack]);
		} else {
			r = ops->decode(sc->step, sc->rx, sc->ans_len, sc->pack, sc->now_usec,
					sc->bs);
		}
		if (r == -EPROTO) {
			sc->st->error_answers++;
		} else if (r < 0) {
			return dump_fail(
				sc->st, line,
				"an answer whose content is impossible (the decoder refused it)");
		} else {
			sc->st->answers++;
		}
		memmove(sc->rx, sc->rx + sc->ans_len, sc->rx_len - sc->ans_len);
		sc->rx_len -= sc->ans_len;
		sc->ans_len = 0;
		sc->got = 0;
		sc->decoding = false;
	}
	return 0;
}

/* the open request is over (a new one, or the end): was its answer whole? */
static int dump_close(struct dump_scan *sc, unsigned line)
{
	if (!sc->pending) {
		return 0;
	}
	if (sc->rx_len > 0) {
		return dump_fail(sc->st, line,
				 "an incomplete answer before this request or the end");
	}
	if (sc->decoding) {
		sc->st->unanswered++;
	}
	sc->pending = false;
	return 0;
}

/* the length of a direction marker at @s ("->", "<-", ">>>", "<<<"), or 0 */
static size_t dump_marker(const char *s, size_t n)
{
	if (n >= 3 && ((s[0] == '>' && s[1] == '>' && s[2] == '>') ||
		       (s[0] == '<' && s[1] == '<' && s[2] == '<'))) {
		return 3;
	}
	if (n >= 2 && ((s[0] == '-' && s[1] == '>') || (s[0] == '<' && s[1] == '-'))) {
		return 2;
	}
	return 0;
}

/* the offset of the first marker in @s, or @n */
static size_t dump_find_marker(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (dump_marker(s + i, n - i)) {
			return i;
		}
	}
	return n;
}

static int dump_segment(struct dump_scan *sc, const char *s, size_t n, unsigned line);

/* one frame of the capture (a line, or what follows one marker) */
static int dump_segment(struct dump_scan *sc, const char *s, size_t n, unsigned line)
{
	static uint8_t b[DUMP_LINE_MAX];
	const struct bms_serial_ops *ops = sc->ops;
	struct bms_serial_dump *st = sc->st;
	ssize_t k = dump_line_bytes(s, n, b, sizeof(b));
	unsigned step;
	uint8_t address;
	int r;

	if (k < 0) {
		return dump_fail(st, line, "neither hex bytes nor a ~...\\r frame");
	}
	if (k == 0) {
		return 0;
	}
	st->frames++;
	if (dump_request(ops, b, (size_t)k, &step, &address)) {
		r = dump_close(sc, line);
		if (r < 0) {
			return r;
		}
		r = dump_pack(st, address);
		if (r < 0) {
			return dump_fail(st, line, "more pack addresses than bmsbridge reads");
		}
		st->requests++;
		sc->pending = true;
		sc->step = step;
		sc->pack = (unsigned)r;
		sc->want = ops->answer_frames ? ops->answer_frames(step, sc->memo[sc->pack]) : 1;
		sc->decoding = sc->want > 0;
		sc->got = 0;
		sc->rx_len = sc->ans_len = 0;
		return 0;
	}
	if (sc->pending && !sc->decoding && sc->rx_len == 0) {
		size_t skip = 0;
		ssize_t f = ops->frame(sc->step, st->address[sc->pack], b, (size_t)k, &skip);

		if (f <= 0 && f != -ENOMSG) {
			sc->pending = false; /* the answer is over: this starts something else */
		}
	}
	if (!sc->pending) {
		/* a command this family does not send, or its answer */
		st->foreign++;
		return 0;
	}
	if ((size_t)k > sizeof(sc->rx) - sc->rx_len) {
		return dump_fail(st, line, "an answer longer than any of this family");
	}
	memcpy(sc->rx + sc->rx_len, b, (size_t)k);
	sc->rx_len += (size_t)k;
	return dump_scan_answer(sc, line);
}

int bms_serial_dump_decode(const struct bms_serial_ops *ops, const char *text, size_t len,
			   uint64_t now_usec, struct battery_state *bs, struct bms_serial_dump *st)
{
	static struct dump_scan sc;
	static struct battery_state work;
	bool marked;
	unsigned line = 0;
	size_t pos;
	int r;

	if (!ops || !text || !bs || !st || now_usec == 0) {
		return -EINVAL;
	}
	memset(st, 0, sizeof(*st));
	memset(&sc, 0, sizeof(sc));
	battery_state_init(&work, 1);
	sc.ops = ops;
	sc.bs = &work;
	sc.st = st;
	sc.now_usec = now_usec;

	/* a logged exchange: only what follows the direction markers is read */
	marked = false;
	for (pos = 0; pos < len && !marked;) {
		const char *s = text + pos;
		size_t n = 0, c = 0;

		while (pos + n < len && s[n] != '\n') {
			n++;
		}
		pos += n + 1;
		while (c < n && s[c] != '#') {
			c++;
		}
		marked = dump_find_marker(s, c) < c;
	}

	for (pos = 0; pos < len;) {
		const char *s = text + pos;
		size_t n = 0, c;

		while (pos + n < len && s[n] != '\n') {
			n++;
		}
		pos += n + 1;
		line++;
		if (memchr(s, '\0', n)) {
			return dump_fail(st, line, "a NUL byte: not text");
		}
		c = 0;
		while (c < n && s[c] != '#') {
			c++;
		}
		n = c;
		if (!marked) {
			r = dump_segment(&sc, s, n, line);
			if (r < 0) {
				return r;
			}
			continue;
		}
		/* "->  ~2002...", ">>> DD:A5:03:00:FF:FD:77 <<< DD:03:...": one frame a marker */
		for (size_t at = dump_find_marker(s, n); at < n;) {
			size_t m = dump_marker(s + at, n - at);
			size_t next = at + m + dump_find_marker(s + at + m, n - at - m);

			r = dump_segment(&sc, s + at + m, next - at - m, line);
			if (r < 0) {
				return r;
			}
			at = next;
		}
	}
	r = dump_close(&sc, line);
	if (r < 0) {
		return r;
	}
	if (st->answers == 0) {
		return dump_fail(st, line, "no answer of this family in the capture");
	}
	work.pack_count = (uint8_t)st->n_packs;
	work.packs_online = (uint8_t)st->n_packs;
	*bs = work;
	return 0;
}
