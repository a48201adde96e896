/* SPDX-License-Identifier: MIT */
/*
 * jk-pb-server: simulated JK-PB packs on one RS485 bus, for the
 * integration test (test-jk-pb.py) and bench/modbus-stall.
 *
 * It opens a pty pair, keeps the slave raw and open, and points LINK (a
 * symlink) at the slave: the daemon opens LINK as its serial port. On the
 * master side it answers, for each simulated address:
 *   - the 0x10 trigger writes (0x161E, 0x1620, 0x161C) with the 300-byte
 *     frame of the real JK-PB2A16S20P capture in tests/data/jk-pb-v19.hex,
 *     then the 8-byte write echo, as jkbms_pb.py describes the real pack;
 *   - 0x03 reads of 0x1000 / 0x1200 (JK byte addressing: register A is
 *     byte A - base), with the same values in the register byte order.
 * Requests are framed by their CRC (a bad CRC drops one byte and
 * resynchronises); requests to unknown or unplugged addresses get no answer.
 *
 * Not libmodbus's server: modbus_receive() drops requests for any unit id
 * but the context's one (we are up to 15 packs), and modbus_reply() maps
 * registers word by word where JK addresses bytes.
 *
 * Commands on stdin, one a line, each answered "ok" (or "error") on stdout:
 *   pack ADDR [VOLTAGE_MV]   add a pack (pack voltage in its status)
 *   unplug ADDR | plug ADDR  the pack stops / resumes answering
 *   crc ADDR N               corrupt the next N answers of ADDR
 *   cells ADDR MV            every cell at MV, the pack voltage their sum
 *   spike ADDR CELL MV N     cell CELL (0-based) reads MV in the next N status
 *                            answers, then its old value again
 *   garbage N                put N bytes of noise on the line now
 *   vanish | return          the tty disappears / comes back (new pty)
 *   delay MS                 every answer leaves MS ms after its request
 *                            (a buffering serial-over-TCP link), in order
 *   v10 ADDR                 the pack's settings as JK Modbus V1.0 has them:
 *                            no VolCellRCV / VolCellRFV (0x1020 / 0x1024 read 0)
 *   master on [GAP TIMEOUT]  play a JK pack at DIP address 0, the bus master
 *   collide ADDR             master on: the next status answer of ADDR carries
 *                            the write echo of ADDR + 1 (two talkers at once)
 *   master off               (bms-docs/JKBMS-PB.md): every cycle it polls
 *                            1-15 with 0x1620, a pack that answers also with
 *                            0x161E (its answer ~38 ms, GAP ms after it,
 *                            default 180; an absent address TIMEOUT ms,
 *                            default 220), then broadcasts its own status
 *                            and settings unasked (the frames of "pack 0")
 *   stats                    "stats ADDR:requests:answers ... rx BYTES", BYTES
 *                            what the daemon put on the line
 *   quit
 * Usage: jk-pb-server LINK DATA_HEX    (prints "ready PTY" first)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "byteorder.h"
#include "jk_pb.h"

#define MAX_ADDR 16

struct sim_pack {
	bool present, unplugged;
	unsigned corrupt;
	unsigned requests, answers;
	uint8_t frames[3][JK_PB_FRAME_LEN]; /* settings, about, status */
	uint8_t data[JK_PB_DATA_LEN];	     /* register images */
	uint8_t settings[JK_PB_SETTINGS_LEN];
	uint8_t saved[JK_PB_FRAME_LEN]; /* the status frame before a spike */
	unsigned spike_left;		/* status answers still spiked */
};

static struct sim_pack packs[MAX_ADDR];
static unsigned long rx_bytes; /* from the daemon, all told */
static unsigned delay_ms;      /* answers wait this long */

/* bytes to put on the line at a time: delayed answers, the master's cycle */
#define OUT_MAX 512
struct out_item {
	uint64_t due_usec;
	size_t len;
	uint8_t bytes[JK_PB_FRAME_LEN + 16];
};
static struct out_item outq[OUT_MAX];
static size_t outq_head, outq_len;

/* the DIP-0 master being played */
static bool master_on;
static unsigned master_gap_ms = 180, master_timeout_ms = 220;
static uint64_t master_next_usec; /* the next cycle starts then */
static int collide_addr = -1;	  /* its next status answer has another's echo */
static uint8_t base_frames[3][JK_PB_FRAME_LEN];
static int master = -1, slave = -1;
static const char *link_path;

/* Field widths of the data domain (esp32-jk-pb-modbus-example.yaml). */
static const struct {
	uint16_t off, width, count;
} data_fields[] = {
	{ 0, 2, 32 },  { 64, 4, 1 },  { 68, 2, 2 },  { 74, 2, 32 }, { 138, 2, 1 },
	{ 140, 4, 4 }, { 156, 2, 2 }, { 160, 4, 1 }, { 164, 2, 1 }, { 168, 4, 4 },
	{ 186, 2, 1 }, { 188, 4, 1 }, { 250, 2, 2 },
};

static void fix_sum(uint8_t *f)
{
	uint8_t s = 0;

	for (size_t i = 0; i < JK_PB_FRAME_LEN - 1; i++) {
		s = (uint8_t)(s + f[i]);
	}
	f[JK_PB_FRAME_LEN - 1] = s;
}

static void build_images(struct sim_pack *p)
{
	const uint8_t *st = p->frames[2] + 6, *se = p->frames[0] + 6;

	memcpy(p->data, st, JK_PB_DATA_LEN);
	for (size_t i = 0; i < sizeof(data_fields) / sizeof(data_fields[0]); i++) {
		for (unsigned k = 0; k < data_fields[i].count; k++) {
			size_t o = data_fields[i].off + (size_t)k * data_fields[i].width;

			if (data_fields[i].width == 2) {
				put_be16(p->data + o, get_le16(st + o));
			} else {
				put_be32(p->data + o, get_le32(st + o));
			}
		}
	}
	for (size_t o = 0; o < JK_PB_SETTINGS_LEN; o += 4) {
		put_be32(p->settings + o, get_le32(se + o));
	}
}

/* a status answer went out: the spike is over after the last spiked one */
static void spike_answered(struct sim_pack *p)
{
	if (p->spike_left > 0 && --p->spike_left == 0) {
		memcpy(p->frames[2], p->saved, JK_PB_FRAME_LEN);
		build_images(p);
	}
}

/* the status frame's cells: u16 mV each at data offset 0, mask at 64 */
static void set_cell(struct sim_pack *p, unsigned cell, unsigned mv)
{
	put_le16(p->frames[2] + 6 + 2 * cell, (uint16_t)mv);
}

static unsigned cell_count(const struct sim_pack *p)
{
	uint32_t mask = get_le32(p->frames[2] + 6 + 64);
	unsigned n = 0;

	while (n < 32 && (mask & (UINT32_C(1) << n))) {
		n++;
	}
	return n;
}

static int load_frames(const char *path)
{
	FILE *f = fopen(path, "r");
	int c, hi = -1;
	size_t n = 0;
	bool comment = false;

	if (!f) {
		return -errno;
	}
	while ((c = fgetc(f)) != EOF && n < sizeof(base_frames)) {
		int h;

		if (c == '#') {
			comment = true;
		} else if (c == '\n') {
			comment = false;
		}
		if (comment) {
			continue;
		}
		h = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
		if (h < 0) {
			continue;
		}
		if (hi < 0) {
			hi = h;
		} else {
			((uint8_t *)base_frames)[n++] = (uint8_t)(hi << 4 | h);
			hi = -1;
		}
	}
	fclose(f);
	return n == sizeof(base_frames) ? 0 : -EBADMSG;
}

static int open_pty(void)
{
	struct termios t;
	char *name;

	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
		return -errno;
	}
	name = ptsname(master);
	/* our own slave fd: the pty stays up while the daemon reopens it */
	slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0 || tcgetattr(slave, &t) < 0) {
		return -errno;
	}
	cfmakeraw(&t);
	tcsetattr(slave, TCSANOW, &t);
	unlink(link_path);
	if (symlink(name, link_path) < 0) {
		return -errno;
	}
	printf("ready %s\n", name);
	fflush(stdout);
	return 0;
}

static void close_pty(void)
{
	unlink(link_path);
	if (slave >= 0) {
		close(slave);
	}
	if (master >= 0) {
		close(master);
	}
	slave = master = -1;
}

static void send_bytes(const uint8_t *b, size_t n)
{
	while (n > 0 && master >= 0) {
		ssize_t k = write(master, b, n);

		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			return;
		}
		b += k;
		n -= (size_t)k;
	}
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* queue @n bytes for @due; the queue is kept in time order */
static void enqueue(uint64_t due, const uint8_t *b, size_t n)
{
	size_t i, at;

	if (outq_len == OUT_MAX || n > sizeof(outq[0].bytes)) {
		return;
	}
	/* insert sorted (the queue is short) */
	at = outq_len;
	while (at > 0 && outq[(outq_head + at - 1) % OUT_MAX].due_usec > due) {
		at--;
	}
	for (i = outq_len; i > at; i--) {
		outq[(outq_head + i) % OUT_MAX] = outq[(outq_head + i - 1) % OUT_MAX];
	}
	outq[(outq_head + at) % OUT_MAX].due_usec = due;
	outq[(outq_head + at) % OUT_MAX].len = n;
	memcpy(outq[(outq_head + at) % OUT_MAX].bytes, b, n);
	outq_len++;
}

/* what a pack at @addr puts on the line for the trigger @reg: frame, 00, echo, 00 */
static size_t trigger_answer(struct sim_pack *p, uint8_t addr, uint16_t reg, uint8_t *out)
{
	const uint8_t *fr = reg == JK_PB_TRIGGER_SETTINGS ? p->frames[0]
			    : reg == JK_PB_TRIGGER_ABOUT  ? p->frames[1]
			    : reg == JK_PB_TRIGGER_STATUS ? p->frames[2]
							  : NULL;
	size_t n = 0;

	if (!fr) {
		return 0;
	}
	memcpy(out, fr, JK_PB_FRAME_LEN);
	n = JK_PB_FRAME_LEN;
	out[n++] = 0x00; /* padding (bms-docs/JKBMS-PB.md) */
	out[n++] = addr;
	out[n++] = 0x10;
	put_be16(out + n, reg);
	put_be16(out + n + 2, 1);
	put_le16(out + n + 4, jk_pb_crc16(out + n - 2, 6));
	n += 6;
	out[n++] = 0x00;
	return n;
}

/*
 * One cycle of a DIP-0 master from @t0: 1-15 polled, the packs there read
 * twice, its own frames at the end. Everything is queued at once.
 */
static void master_cycle(uint64_t t0)
{
	uint8_t buf[JK_PB_FRAME_LEN + 16];
	uint64_t t = t0;

	for (unsigned a = 1; a < MAX_ADDR; a++) {
		static const uint16_t regs[2] = { JK_PB_TRIGGER_STATUS, JK_PB_TRIGGER_SETTINGS };
		struct sim_pack *p = &packs[a];
		bool answers = p->present && !p->unplugged;

		for (unsigned k = 0; k < (answers ? 2u : 1u); k++) {
			size_t n = jk_pb_build_trigger((uint8_t)a, regs[k], buf);

			enqueue(t, buf, n);
			if (!answers) {
				t += master_timeout_ms * 1000u;
				continue;
			}
			n = trigger_answer(p, (uint8_t)a, regs[k], buf);
			if ((int)a == collide_addr && regs[k] == JK_PB_TRIGGER_STATUS) {
				/* the echo of another pack: ADDR + 1, CRC made right */
				collide_addr = -1;
				buf[JK_PB_FRAME_LEN + 1] = (uint8_t)(a + 1);
				put_le16(buf + JK_PB_FRAME_LEN + 7,
					 jk_pb_crc16(buf + JK_PB_FRAME_LEN + 1, 6));
			}
			enqueue(t + 3000, buf, n); /* ~38 ms to the end of the echo */
			if (regs[k] == JK_PB_TRIGGER_STATUS) {
				spike_answered(p);
			}
			p->answers++;
			t += 38000 + master_gap_ms * 1000u;
		}
	}
	/* its own status and settings, no request before them, no echo */
	if (packs[0].present) {
		enqueue(t, packs[0].frames[2], JK_PB_FRAME_LEN);
		t += 40000;
		enqueue(t, packs[0].frames[0], JK_PB_FRAME_LEN);
		t += 400000;
	}
	master_next_usec = t;
}

/* Answer one request (CRC already checked). */
static void answer(const uint8_t *req, size_t len)
{
	uint8_t out[JK_PB_FRAME_LEN + 16];
	struct sim_pack *p;
	size_t n = 0;
	uint8_t addr = req[0];

	/* address 0 is the master: it polls, it never answers */
	if (addr == 0 || addr >= MAX_ADDR || !packs[addr].present) {
		return;
	}
	p = &packs[addr];
	p->requests++;
	if (p->unplugged) {
		return;
	}
	if (req[1] == 0x10 && len == 11) {
		uint16_t reg = get_be16(req + 2);

		n = trigger_answer(p, addr, reg, out);
		if (n == 0) {
			return;
		}
		if (reg == JK_PB_TRIGGER_STATUS) {
			spike_answered(p);
		}
		if (p->corrupt > 0) {
			p->corrupt--;
			out[100] ^= 0x5A; /* the frame's checksum no longer holds */
		}
	} else if (req[1] == 0x03 && len == 8) {
		uint16_t reg = get_be16(req + 2), count = get_be16(req + 4);
		const uint8_t *img;
		size_t off, bytes = (size_t)count * 2;

		if (reg >= JK_PB_REG_DATA && reg < JK_PB_REG_DATA + JK_PB_DATA_LEN) {
			img = p->data;
			off = reg - JK_PB_REG_DATA;
			if (off + bytes > JK_PB_DATA_LEN) {
				return;
			}
		} else if (reg >= JK_PB_REG_SETTINGS &&
			   reg < JK_PB_REG_SETTINGS + JK_PB_SETTINGS_LEN) {
			img = p->settings;
			off = reg - JK_PB_REG_SETTINGS;
			if (off + bytes > JK_PB_SETTINGS_LEN) {
				return;
			}
		} else {
			return;
		}
		out[0] = addr;
		out[1] = 0x03;
		out[2] = (uint8_t)bytes;
		memcpy(out + 3, img + off, bytes);
		if (img == p->data) {
			spike_answered(p);
		}
		put_le16(out + 3 + bytes, jk_pb_crc16(out, 3 + bytes));
		n = 5 + bytes;
		if (p->corrupt > 0) {
			p->corrupt--;
			out[n - 1] ^= 0xFF;
		}
	} else {
		return;
	}
	p->answers++;
	if (delay_ms > 0) {
		enqueue(now_usec() + delay_ms * 1000u, out, n);
		return;
	}
	send_bytes(out, n);
}

/* Frame requests out of the byte stream by their CRC. */
static void on_master(uint8_t *buf, size_t *len)
{
	for (;;) {
		size_t want;

		if (*len < 2) {
			return;
		}
		want = buf[1] == 0x10 ? 11 : 8;
		if (*len < want) {
			return;
		}
		if ((buf[1] == 0x03 || buf[1] == 0x10) && jk_pb_crc16(buf, want) == 0) {
			answer(buf, want);
			memmove(buf, buf + want, *len - want);
			*len -= want;
			continue;
		}
		memmove(buf, buf + 1, *len - 1);
		(*len)--;
	}
}

static bool command(char *line)
{
	unsigned a = 0, v = 0, c = 0;
	int n;

	if (sscanf(line, "pack %u %u", &a, &v) >= 1 && a < MAX_ADDR) {
		struct sim_pack *p = &packs[a];

		memset(p, 0, sizeof(*p));
		memcpy(p->frames, base_frames, sizeof(base_frames));
		if (v > 0) {
			put_le32(p->frames[2] + 150, v); /* pack voltage, u32 mV */
			fix_sum(p->frames[2]);
		}
		build_images(p);
		p->present = true;
	} else if (sscanf(line, "unplug %u", &a) == 1 && a < MAX_ADDR) {
		packs[a].unplugged = true;
	} else if (sscanf(line, "plug %u", &a) == 1 && a < MAX_ADDR) {
		packs[a].unplugged = false;
	} else if (sscanf(line, "cells %u %u", &a, &v) == 2 && a < MAX_ADDR && packs[a].present) {
		struct sim_pack *p = &packs[a];
		unsigned cells = cell_count(p);

		for (unsigned i = 0; i < cells; i++) {
			set_cell(p, i, v);
		}
		put_le32(p->frames[2] + 150, v * cells); /* pack voltage, u32 mV */
		fix_sum(p->frames[2]);
		build_images(p);
	} else if (sscanf(line, "spike %u %u %u %d", &a, &c, &v, &n) == 4 && a < MAX_ADDR &&
		   packs[a].present && c < cell_count(&packs[a]) && n > 0) {
		struct sim_pack *p = &packs[a];

		if (p->spike_left == 0) {
			memcpy(p->saved, p->frames[2], JK_PB_FRAME_LEN);
		}
		set_cell(p, c, v);
		fix_sum(p->frames[2]);
		build_images(p);
		p->spike_left = (unsigned)n;
	} else if (sscanf(line, "crc %u %u", &a, &v) == 2 && a < MAX_ADDR) {
		packs[a].corrupt = v;
	} else if (sscanf(line, "garbage %d", &n) == 1 && n > 0) {
		uint8_t g[256];
		uint32_t x = 0x12345678;

		for (int i = 0; i < n && i < (int)sizeof(g); i++) {
			x = x * 1103515245u + 12345u;
			g[i] = (uint8_t)(x >> 16);
		}
		send_bytes(g, (size_t)(n < (int)sizeof(g) ? n : (int)sizeof(g)));
	} else if (sscanf(line, "delay %u", &v) == 1) {
		delay_ms = v;
	} else if (sscanf(line, "v10 %u", &a) == 1 && a < MAX_ADDR && packs[a].present) {
		struct sim_pack *p = &packs[a];

		put_le32(p->frames[0] + 6 + 32, 0); /* V1.1 0x1020 VolCellRCV */
		put_le32(p->frames[0] + 6 + 36, 0); /* V1.1 0x1024 VolCellRFV */
		fix_sum(p->frames[0]);
		build_images(p);
	} else if (strncmp(line, "master on", 9) == 0) {
		unsigned g = 0, t = 0;

		if (sscanf(line, "master on %u %u", &g, &t) == 2) {
			master_gap_ms = g;
			master_timeout_ms = t;
		}
		master_on = true;
		master_next_usec = now_usec();
	} else if (sscanf(line, "collide %u", &a) == 1 && a > 0 && a + 1 < MAX_ADDR) {
		collide_addr = (int)a;
	} else if (strncmp(line, "master off", 10) == 0) {
		master_on = false;
	} else if (strncmp(line, "vanish", 6) == 0) {
		close_pty();
	} else if (strncmp(line, "return", 6) == 0) {
		if (master < 0 && open_pty() < 0) {
			return false;
		}
	} else if (strncmp(line, "stats", 5) == 0) {
		printf("stats");
		for (unsigned i = 1; i < MAX_ADDR; i++) {
			if (packs[i].present) {
				printf(" %u:%u:%u", i, packs[i].requests, packs[i].answers);
			}
		}
		printf(" rx %lu\n", rx_bytes);
	} else if (strncmp(line, "quit", 4) == 0) {
		close_pty();
		exit(0);
	} else {
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	uint8_t rx[4096];
	size_t rx_len = 0;
	char line[256];
	size_t line_len = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: %s LINK DATA_HEX\n", argv[0]);
		return 2;
	}
	link_path = argv[1];
	if (load_frames(argv[2]) < 0) {
		fprintf(stderr, "cannot read frames from %s\n", argv[2]);
		return 1;
	}
	if (open_pty() < 0) {
		perror("pty");
		return 1;
	}
	for (;;) {
		struct pollfd fds[2] = {
			{ .fd = STDIN_FILENO, .events = POLLIN },
			{ .fd = master, .events = POLLIN },
		};

		uint64_t now = now_usec(), due = UINT64_MAX;
		int timeout_ms;

		if (master_on && outq_len == 0 && now >= master_next_usec) {
			master_cycle(now);
		}
		if (outq_len > 0) {
			due = outq[outq_head].due_usec;
		}
		if (master_on && outq_len == 0) {
			due = master_next_usec;
		}
		timeout_ms = due == UINT64_MAX ? -1 : due <= now ? 0 : (int)((due - now) / 1000 + 1);
		if (poll(fds, master >= 0 ? 2 : 1, timeout_ms) < 0) {
			if (errno == EINTR) {
				continue;
			}
			return 1;
		}
		now = now_usec();
		while (outq_len > 0 && outq[outq_head].due_usec <= now) {
			send_bytes(outq[outq_head].bytes, outq[outq_head].len);
			outq_head = (outq_head + 1) % OUT_MAX;
			outq_len--;
		}
		if (fds[0].revents & (POLLIN | POLLHUP)) {
			char c;
			ssize_t k = read(STDIN_FILENO, &c, 1);

			if (k <= 0) {
				close_pty();
				return 0;
			}
			if (c == '\n') {
				line[line_len] = '\0';
				printf("%s\n", command(line) ? "ok" : "error");
				fflush(stdout);
				line_len = 0;
			} else if (line_len + 1 < sizeof(line)) {
				line[line_len++] = c;
			}
		}
		if (master >= 0 && (fds[1].revents & POLLIN)) {
			ssize_t k = read(master, rx + rx_len, sizeof(rx) - rx_len);

			if (k > 0) {
				rx_bytes += (unsigned long)k;
				rx_len += (size_t)k;
				on_master(rx, &rx_len);
				if (rx_len == sizeof(rx)) {
					rx_len = 0;
				}
			}
		}
	}
}
