/* SPDX-License-Identifier: MIT */
/*
 * bmsbridgectl: the protocols by hand, without a daemon or a bus.
 *
 *   list                     what this build speaks, both sides
 *   encode PROTOCOL [FILE]   a battery state (JSON) -> the frames the
 *                            inverter would get (candump log lines); for
 *                            pylontech-rs485, requests on stdin -> answers
 *   decode FORMAT [FILE]     frames (candump log) or a JK-PB dump (hex)
 *                            -> the battery state they carry (JSON)
 *
 * It runs the daemon's own pure encoders and decoders (lib_core), so what
 * it prints is byte for byte what bmsbridged would send or understand.
 * Exit status: 0, 1 bad input (one line naming where), 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "battery.h"
#include "bms.h"
#include "bms_serial.h"
#include "build-config.h"
#include "candump.h"
#include "ctl.h"
#include "macro.h"
#include "protocol.h"
#include "jk_pb.h"
#include "sim.h"
#include "state_json.h"

#define INPUT_MAX (1024 * 1024) /* no real input comes near this */
/* the time stamps written by encode: fixed, so outputs compare */
#define ENCODE_TIME_USEC (UINT64_C(1700000000) * USEC_PER_SEC)

static const char *arg_ifname = "can0";
static const char *arg_state;
static long arg_sim = -1;
static unsigned arg_seed = 1;
static unsigned arg_address = 1;
static bool arg_address_set;
static const char *arg_block = "auto";
static bool arg_follow;
static bool arg_json;

static int usage_error(const char *fmt, const char *what)
{
	fprintf(stderr, "bmsbridgectl: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\nTry 'bmsbridgectl --help'.\n");
	return 2;
}

static void help(void)
{
	printf("Usage: bmsbridgectl [OPTIONS] COMMAND ...\n"
	       "\n"
	       "  list                    inverter protocols, aliases and BMS drivers\n"
	       "  encode PROTOCOL [FILE]  state JSON (FILE, --sim or stdin) -> candump frames;\n"
	       "                          pylontech-rs485: requests on stdin -> answers\n"
	       "  decode FORMAT [FILE]    candump log (an inverter protocol or pylontech-can)\n"
	       "                          or a capture of a serial BMS bus (pylontech-rs485,\n"
	       "                          seplos-v2, pace, jbd, daly, seplos-v3,\n"
	       "                          pace-modbus, eg4-lifepower4, eg4-ll): one frame a line\n"
	       "                          or a JK-PB hex dump (jk-pb-modbus) -> state JSON;\n"
	       "                          from a pipe (candump -L can0 | ...) or with --follow:\n"
	       "                          one JSON line per change, as frames arrive\n"
	       "  status [--json]         the running daemon: BMS, packs, safety, limits, inverter\n"
	       "  watch                   the same, one line per change (a live view on a tty)\n"
	       "  diagnose                the comm-loss checklist, each check a verdict and a hint\n"
	       "\n"
	       "  --state FILE            encode: the state (for pylontech-rs485)\n"
	       "  --sim SECONDS           encode: the sim pack after SECONDS simulated seconds\n"
	       "  --seed N                the sim's seed (default 1)\n"
	       "  --ifname NAME           interface written in candump lines (default can0)\n"
	       "  --address N             pylontech-rs485: pack address answered as (default 1);\n"
	       "                          jk-pb-modbus: decode the frames of this DIP address\n"
	       "  --block KIND            jk-pb-modbus: frame, data or settings (default: auto)\n"
	       "  -f, --follow            decode: print as frames arrive\n"
	       "  --json                  status: JSON for scripts\n"
	       "  -h, --help, -V, --version\n"
	       "\n"
	       "See bmsbridgectl(1), bmsbridge-protocols(7).\n");
}

/* the whole of FILE ("-" or NULL: stdin), NUL-terminated */
static char *slurp(const char *path, size_t *ret_len)
{
	FILE *f = (!path || streq(path, "-")) ? stdin : fopen(path, "re");
	char *buf;
	size_t n = 0, cap = 4096;

	if (!f) {
		fprintf(stderr, "bmsbridgectl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = malloc(cap);
	while (buf) {
		size_t k = fread(buf + n, 1, cap - n - 1, f);

		n += k;
		if (k == 0) {
			break;
		}
		if (n + 1 == cap) {
			char *b2 = cap >= INPUT_MAX ? NULL : realloc(buf, cap * 2);

			if (!b2) {
				fprintf(stderr, "bmsbridgectl: %s: input larger than %d bytes\n",
					path ? path : "stdin", INPUT_MAX);
				free(buf);
				buf = NULL;
				break;
			}
			buf = b2;
			cap *= 2;
		}
	}
	if (f != stdin) {
		fclose(f);
	}
	if (buf) {
		buf[n] = '\0';
		*ret_len = n;
	}
	return buf;
}

static int cmd_list(void)
{
	const struct inverter_protocol *p;
	const struct protocol_alias *a;
	const struct bms_driver *d;

	printf("Inverter protocols (inverter { protocol = ...; }):\n");
	for (size_t i = 0; (p = protocol_get(i)); i++) {
		if (p->transport == PROTOCOL_TRANSPORT_CAN) {
			printf("  %-16s CAN   %4u kbit/s, %s  %s\n", p->name, p->bitrate / 1000,
			       p->schedule == PROTOCOL_SCHEDULE_PERIODIC ? "every 1 s  "
									 : "on request ",
			       p->description);
		} else {
			printf("  %-16s RS485 %5u baud, polled       %s\n", p->name, p->baud,
			       p->description);
		}
	}
	printf("Aliases:\n");
	for (size_t i = 0; (a = protocol_alias_get(i)); i++) {
		printf("  %-16s -> %s (%s)\n", a->name, a->target, a->note);
	}
	printf("BMS drivers (bms { driver = ...; }):\n");
	for (size_t i = 0; (d = bms_driver_get(i)); i++) {
		printf("  %-16s %s\n", d->name, d->description);
	}
	return 0;
}

/* the state encode works from: --sim, or JSON from --state / FILE / stdin */
static int load_state(const char *file, struct battery_state *bs)
{
	char err[256];
	char *text;
	size_t len;
	int r;

	if (arg_sim >= 0) {
		static struct sim s;

		battery_state_init(bs, 1);
		sim_init(&s, arg_seed, 16, 280000);
		sim_step(&s, (uint64_t)arg_sim * USEC_PER_SEC);
		sim_fill(&s, 0, 1, bs);
		bs->bank = bs->packs[0];
		bs->packs_online = 1;
		return 0;
	}
	text = slurp(file, &len);
	if (!text) {
		return 1;
	}
	r = battery_state_from_json(text, 1, bs, err, sizeof(err));
	free(text);
	if (r < 0) {
		fprintf(stderr, "bmsbridgectl: %s: %s\n", file && !streq(file, "-") ? file : "stdin",
			err);
		return 1;
	}
	return 0;
}

/* pylontech-rs485: each line of stdin a request, each answer a line of stdout */
static int encode_rs485(const struct inverter_protocol *p, const struct battery_state *bs)
{
	struct protocol_options opt = { .rs485_address = (uint8_t)arg_address };
	char line[PROTOCOL_RS485_MAX + 2];
	uint8_t rsp[PROTOCOL_RS485_MAX];
	unsigned lineno = 0;
	int status = 0;

	while (fgets(line, sizeof(line), stdin)) {
		size_t n = strcspn(line, "\r\n");
		ssize_t k;

		lineno++;
		if (n == 0) {
			continue;
		}
		line[n++] = '\r'; /* the frame ends in CR; a terminal line may not have it */
		k = p->respond(&opt, bs, (const uint8_t *)line, n, rsp, sizeof(rsp));
		if (k < 0) {
			fprintf(stderr, "bmsbridgectl: stdin:%u: not a valid %s request: %s\n", lineno,
				p->name, strerror((int)-k));
			status = 1;
			continue;
		}
		if (k == 0) {
			fprintf(stderr, "bmsbridgectl: stdin:%u: for another address: no answer\n",
				lineno);
			continue;
		}
		/* the answer ends in CR: print it as a line */
		fwrite(rsp, 1, (size_t)k - (rsp[k - 1] == '\r'), stdout);
		putchar('\n');
	}
	return status;
}

static int cmd_encode(const char *name, const char *file)
{
	const struct inverter_protocol *p = protocol_find(name);
	struct protocol_options opt = { .rs485_address = (uint8_t)arg_address };
	struct can_frame frames[PROTOCOL_FRAMES_MAX];
	static struct battery_state bs;
	int n, r;

	if (arg_address == 0) {
		return usage_error("%s", "--address 0 is a JK DIP-0 master, for decode only");
	}

	if (!p) {
		return usage_error("unknown protocol '%s' (bmsbridgectl list)", name);
	}
	if (p->transport == PROTOCOL_TRANSPORT_RS485) {
		if (arg_sim < 0 && !arg_state) {
			arg_sim = 0;
		}
		r = load_state(arg_state, &bs);
		return r ? r : encode_rs485(p, &bs);
	}
	r = load_state(arg_state ? arg_state : file, &bs);
	if (r) {
		return r;
	}
	n = p->encode(&opt, &bs, ENCODE_TIME_USEC, frames, ARRAY_SIZE(frames));
	if (n == -ENODATA) {
		fprintf(stderr, "bmsbridgectl: the state lacks what %s needs (limits, SOC, "
				"voltage): nothing to send\n",
			p->name);
		return 1;
	}
	if (n < 0) {
		fprintf(stderr, "bmsbridgectl: %s: %s\n", p->name, strerror(-n));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char line[CANDUMP_LINE_MAX];

		if (candump_format(ENCODE_TIME_USEC + (uint64_t)i * 1000, arg_ifname, &frames[i], line,
				   sizeof(line)) > 0) {
			fputs(line, stdout);
		}
	}
	return 0;
}

static int print_state(const struct battery_state *bs)
{
	struct json_object *o = battery_state_to_json(bs);

	if (!o) {
		fprintf(stderr, "bmsbridgectl: out of memory\n");
		return 1;
	}
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return 0;
}

/*
 * One line of a candump log through an inverter protocol's ->decode or a
 * CAN BMS driver. Return: 1 a frame used, 0 nothing to use (blank,
 * comment, another frame), -1 an error (said).
 */
static int decode_line(const char *name, const struct inverter_protocol *p,
		       const struct bms_driver *d, char *line, unsigned lineno,
		       struct battery_state *bs)
{
	struct can_frame f;
	size_t len;
	int r;

	while (*line == ' ' || *line == '\t') {
		line++;
	}
	len = strcspn(line, "\r\n");
	line[len] = '\0';
	if (len == 0 || line[0] == '#') {
		return 0;
	}
	if (candump_parse(line, len, NULL, NULL, &f) < 0) {
		fprintf(stderr, "bmsbridgectl: line %u: not a candump log line: %.60s\n", lineno,
			line);
		return -1;
	}
	r = p ? p->decode(&f, lineno, bs) : d->decode_frame(&f, lineno, bs);
	if (r < 0) {
		fprintf(stderr, "bmsbridgectl: line %u: %s frame 0x%03X is malformed (%u bytes)\n",
			lineno, name, (unsigned)(f.can_id & CAN_EFF_MASK), f.len);
		return -1;
	}
	return r > 0;
}

/* what decode shows: one BMS on a CAN port speaks for the bank; an inverter's frames are the bank */
static void decoded_view(const struct bms_driver *d, struct battery_state *bs)
{
	if (d) {
		bs->bank = bs->packs[0];
	} else {
		bs->packs[0] = bs->bank;
	}
	bs->packs_online = 1;
}

/* a whole candump log: the state at its end */
static int decode_candump(const char *name, const struct inverter_protocol *p,
			  const struct bms_driver *d, char *text)
{
	static struct battery_state bs;
	unsigned lineno = 0, used = 0;
	char *save = NULL;

	battery_state_init(&bs, 1);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int r = decode_line(name, p, d, line, ++lineno, &bs);

		if (r < 0) {
			return 1;
		}
		used += (unsigned)r;
	}
	if (used == 0) {
		fprintf(stderr, "bmsbridgectl: no %s frame in the input\n", name);
		return 1;
	}
	decoded_view(d, &bs);
	return print_state(&bs);
}

/*
 * A live candump log (candump -L can0 | bmsbridgectl decode ...): read a
 * line at a time and print the state, one compact JSON line, after every
 * frame that changed it, flushed at once; a bad line is said and skipped.
 */
static int decode_follow(const char *name, const struct inverter_protocol *p,
			 const struct bms_driver *d, FILE *in)
{
	static struct battery_state bs, shown;
	unsigned lineno = 0, used = 0, bad = 0;
	char line[512];

	battery_state_init(&bs, 1);
	battery_state_init(&shown, 1);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), in)) {
		struct json_object *o;
		int r;

		r = decode_line(name, p, d, line, ++lineno, &bs);
		if (r < 0) {
			bad++;
			continue;
		}
		if (r == 0) {
			continue;
		}
		used++;
		decoded_view(d, &bs);
		/* the group times move with every frame; print when a value moved */
		memcpy(shown.bank.updated_usec, bs.bank.updated_usec, sizeof(shown.bank.updated_usec));
		if (memcmp(&shown.bank, &bs.bank, sizeof(bs.bank)) == 0 && used > 1) {
			continue;
		}
		shown = bs;
		o = battery_state_to_json(&bs);
		if (!o) {
			fprintf(stderr, "bmsbridgectl: out of memory\n");
			return 1;
		}
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	}
	if (used == 0) {
		fprintf(stderr, "bmsbridgectl: no %s frame in the input\n", name);
		return 1;
	}
	return bad ? 1 : 0;
}

/* hex digits with white space and # comments; Return: bytes, or -1 */
static ssize_t parse_hex(const char *text, uint8_t *out, size_t cap, unsigned *ret_line)
{
	size_t n = 0;
	int hi = -1;
	unsigned line = 1;

	for (const char *c = text; *c; c++) {
		int h;

		if (*c == '#') {
			c += strcspn(c, "\n");
			if (!*c) {
				break;
			}
		}
		if (*c == '\n') {
			line++;
			continue;
		}
		if (*c == ' ' || *c == '\t' || *c == '\r' || *c == ',') {
			continue;
		}
		h = (*c >= '0' && *c <= '9')   ? *c - '0'
		    : (*c >= 'a' && *c <= 'f') ? *c - 'a' + 10
		    : (*c >= 'A' && *c <= 'F') ? *c - 'A' + 10
					       : -1;
		if (h < 0 || (hi < 0 && n == cap)) {
			*ret_line = line;
			return -1;
		}
		if (hi < 0) {
			hi = h;
		} else {
			out[n++] = (uint8_t)(hi << 4 | h);
			hi = -1;
		}
	}
	if (hi >= 0) {
		*ret_line = line;
		return -1;
	}
	return (ssize_t)n;
}

/* whether the bytes start the way a capture of the bus does (a frame, a poll, an echo) */
static bool looks_like_bus(const uint8_t *buf, size_t n)
{
	struct jk_pb_bus_item it;

	return n > 0 && jk_pb_bus_next(buf, n, true, &it) > 0 && it.kind != JK_PB_BUS_NOISE;
}

/*
 * JK-PB. Two inputs, both read by the daemon's own parser
 * (jk_pb_decode_dump_addr(), the same stream parser and listener as the
 * listen-only input):
 *   - what was on the bus, hex: trigger polls, 55 AA EB 90 frames, write
 *     echoes, 0x00 padding (a logic analyser or sniffer capture);
 *   - the documented register dump, "1200: 0D35 0D31 ..." lines.
 * --block data / settings: a bare 0x1200 / 0x1000 register image in hex
 * (auto picks data for hex that is neither).
 */
static int decode_jk(const struct bms_driver *d, const char *text)
{
	static uint8_t buf[16 * JK_PB_FRAME_LEN];
	static struct battery_state bs;
	unsigned line = 0;
	bool registers = strchr(text, ':') != NULL;
	ssize_t n = registers ? 0 : parse_hex(text, buf, sizeof(buf), &line);
	int r = 0, addr = -1;

	if (n < 0) {
		fprintf(stderr, "bmsbridgectl: line %u: not hex bytes (or more than %zu)\n", line,
			sizeof(buf));
		return 1;
	}
	battery_state_init(&bs, 1);
	if (streq(arg_block, "frame") ||
	    (streq(arg_block, "auto") && (registers || looks_like_bus(buf, (size_t)n)))) {
		int want = arg_address_set ? (int)arg_address : -1;

		r = jk_pb_decode_dump_addr(text, strlen(text), want, 0, 1, &bs, &addr);
		if (r < 0) {
			fprintf(stderr, "bmsbridgectl: %s\n",
				want >= 0 ? "no complete, valid frame of that address (--address), "
					    "or a broken frame, poll or register line"
					  : "not a valid JK-PB dump: a broken frame, poll or register "
					    "line, an incomplete register block, or frames of "
					    "several packs (choose one with --address)");
			return 1;
		}
		if (addr >= 0) {
			fprintf(stderr, "bmsbridgectl: %d block%s of the pack at address %d%s\n", r,
				r == 1 ? "" : "s", addr, addr == 0 ? " (no poll or echo names a pack: a DIP-0 master's own frames, "
						 "or frames captured alone)"
					      : "");
		}
	} else if (streq(arg_block, "data") || streq(arg_block, "auto")) {
		r = d->decode_block(JK_PB_BLOCK_DATA_REGS, buf, (size_t)n, 0, 1, &bs);
		if (r < 0) {
			fprintf(stderr, "bmsbridgectl: %zd bytes of 0x1200 registers (need %d): %s\n",
				n, JK_PB_DATA_LEN, strerror(-r));
		}
	} else if (streq(arg_block, "settings")) {
		r = d->decode_block(JK_PB_BLOCK_SETTINGS_REGS, buf, (size_t)n, 0, 1, &bs);
		if (r < 0) {
			fprintf(stderr, "bmsbridgectl: %zd bytes of 0x1000 registers (need %d): %s\n",
				n, JK_PB_SETTINGS_LEN, strerror(-r));
		}
	} else {
		return usage_error("--block must be frame, data or settings, not '%s'", arg_block);
	}
	if (r < 0) {
		return 1;
	}
	bs.bank = bs.packs[0];
	/*
	 * RCV 0 (a V1.0 pack) is "no charge voltage from this pack"
	 * (JK_PB_CVL_NONE, printed for the pack as it is): the bank has no
	 * limits then, so `encode` refuses this state instead of sending a
	 * CVL nobody set. The daemon's safety layer puts its caps there.
	 */
	if (bs.bank.charge_voltage_limit_mv == JK_PB_CVL_NONE) {
		bs.bank.updated_usec[BATTERY_GROUP_LIMITS] = BATTERY_NEVER;
	}
	bs.packs_online = 1;
	return print_state(&bs);
}

/*
 * A polled serial family (driver ->serial: Pylontech RS485, Seplos V2,
 * Pace, JBD, Daly, Seplos V3): a capture of the bus, one frame per line,
 * read back through the family's own request, framing and decoders
 * (bms_serial_dump_decode(), the engine's way). One pack per address
 * seen; with one pack it is the bank too.
 */
static int decode_serial(const struct bms_driver *d, const char *text)
{
	static struct battery_state bs;
	struct bms_serial_dump st;
	int r = bms_serial_dump_decode(d->serial, text, strlen(text), 1, &bs, &st);

	if (r < 0) {
		fprintf(stderr, "bmsbridgectl: line %u: %s\n", st.bad_line,
			st.why ? st.why : strerror(-r));
		return 1;
	}
	fprintf(stderr,
		"bmsbridgectl: %s: %u frames, %u requests, %u answers decoded, %u error answers, "
		"%u unanswered, %u not decoded (skipped steps, beyond a count), %u of other "
		"addresses or echoes, %u of other commands; %u pack%s (address",
		d->name, st.frames, st.requests, st.answers, st.error_answers, st.unanswered,
		st.unread, st.skipped, st.foreign, st.n_packs, st.n_packs == 1 ? "" : "s");
	for (unsigned i = 0; i < st.n_packs; i++) {
		fprintf(stderr, "%s%u", i ? ", " : " ", st.address[i]);
	}
	fprintf(stderr, ")\n");
	if (st.n_packs == 1) {
		bs.bank = bs.packs[0];
	}
	return print_state(&bs);
}

/* a pipe, a FIFO, a socket or a terminal: input that arrives over time */
static bool stdin_is_live(void)
{
	struct stat st;

	if (fstat(STDIN_FILENO, &st) < 0) {
		return false;
	}
	return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode);
}

static int cmd_decode(const char *name, const char *file)
{
	const struct inverter_protocol *p = protocol_find(name);
	const struct bms_driver *d = p ? NULL : bms_driver_find(name);
	size_t len;
	char *text;
	int r;

	/* pylontech-rs485 is both: what we answer an inverter, and a stack we read */
	if (p && p->transport != PROTOCOL_TRANSPORT_CAN && bms_driver_find(name) &&
	    bms_driver_find(name)->serial) {
		d = bms_driver_find(name);
		p = NULL;
	}
	if (p && p->transport != PROTOCOL_TRANSPORT_CAN) {
		return usage_error("%s is answered, not decoded: use 'bmsbridgectl encode' with "
				   "a request",
				   p->name);
	}
	if (!p && (!d || (d->transport != BMS_TRANSPORT_CAN && !d->decode_block && !d->serial))) {
		return usage_error("'%s' is not a format to decode (an inverter CAN protocol, "
				   "pylontech-can, jk-pb-modbus or a serial BMS family)",
				   name);
	}
	if (d && d->transport != BMS_TRANSPORT_CAN) {
		/* a JK-PB dump is decoded whole */
	} else if (arg_follow || (!file && stdin_is_live())) {
		FILE *in = file && !streq(file, "-") ? fopen(file, "re") : stdin;

		if (!in) {
			fprintf(stderr, "bmsbridgectl: %s: %s\n", file, strerror(errno));
			return 1;
		}
		r = decode_follow(name, p, d, in);
		if (in != stdin) {
			fclose(in);
		}
		return r;
	}
	if (d && d->transport != BMS_TRANSPORT_CAN) {
		/* a JK-PB dump is decoded whole */
	} else if (arg_follow || (!file && stdin_is_live())) {
		FILE *in = file && !streq(file, "-") ? fopen(file, "re") : stdin;

		if (!in) {
			fprintf(stderr, "bmsbridgectl: %s: %s\n", file, strerror(errno));
			return 1;
		}
		r = decode_follow(name, p, d, in);
		if (in != stdin) {
			fclose(in);
		}
		return r;
	}
	text = slurp(file, &len);
	if (!text) {
		return 1;
	}
	if (strlen(text) != len) {
		fprintf(stderr, "bmsbridgectl: the input contains a NUL byte: not text\n");
		free(text);
		return 1;
	}
	if (d && d->transport != BMS_TRANSPORT_CAN && d->decode_block) {
		r = decode_jk(d, text);
	} else if (d && d->transport != BMS_TRANSPORT_CAN) {
		r = decode_serial(d, text);
	} else {
		r = decode_candump(name, p, d, text);
	}
	free(text);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "sim", required_argument, NULL, 'S' },
		{ "seed", required_argument, NULL, 'e' },
		{ "ifname", required_argument, NULL, 'i' },
		{ "address", required_argument, NULL, 'a' },
		{ "block", required_argument, NULL, 'b' },
		{ "follow", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "hVf", opts, NULL)) >= 0) {
		switch (c) {
		case 's':
			arg_state = optarg;
			break;
		case 'S':
			arg_sim = strtol(optarg, &end, 10);
			if (*end || arg_sim < 0 || arg_sim > 10L * 365 * 86400) {
				return usage_error("--sim wants simulated seconds, not '%s'", optarg);
			}
			break;
		case 'e':
			arg_seed = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !*optarg) {
				return usage_error("--seed wants a number, not '%s'", optarg);
			}
			break;
		case 'i':
			if (strlen(optarg) == 0 || strlen(optarg) >= IFNAMSIZ || strchr(optarg, ' ')) {
				return usage_error("bad interface name '%s'", optarg);
			}
			arg_ifname = optarg;
			break;
		case 'a':
			arg_address = (unsigned)strtoul(optarg, &end, 10);
			/* 0: a JK DIP-0 master's own frames (decode only) */
			if (*end || !*optarg || arg_address > 15) {
				return usage_error("--address wants 0-15, not '%s'", optarg);
			}
			arg_address_set = true;
			break;
		case 'b':
			arg_block = optarg;
			break;
		case 'f':
			arg_follow = true;
			break;
		case 'j':
			arg_json = true;
			break;
		case 'h':
			help();
			return 0;
		case 'V':
			printf("bmsbridgectl %s\n", VERSION);
			return 0;
		default:
			return 2;
		}
	}
	if (optind >= argc) {
		return usage_error("%s", "no command (list, encode, decode, status, watch, diagnose)");
	}
	if (streq(argv[optind], "list") && argc - optind == 1) {
		return cmd_list();
	}
	if (streq(argv[optind], "encode") && (argc - optind == 2 || argc - optind == 3)) {
		return cmd_encode(argv[optind + 1], argv[optind + 2]);
	}
	if (streq(argv[optind], "decode") && (argc - optind == 2 || argc - optind == 3)) {
		return cmd_decode(argv[optind + 1], argv[optind + 2]);
	}
	if (streq(argv[optind], "status") && argc - optind == 1) {
		return ctl_status(arg_json);
	}
	if (streq(argv[optind], "watch") && argc - optind == 1) {
		return ctl_watch();
	}
	if (streq(argv[optind], "diagnose") && argc - optind <= 2) {
		return ctl_diagnose(argv[optind + 1]);
	}
	return usage_error("bad command line at '%s'", argv[optind]);
}
