/* SPDX-License-Identifier: MIT */
/*
 * The `rs485` output: the inverter polls, we answer as the battery.
 *
 * Bytes from the serial port (src/serial.c) are cut into requests: a
 * request starts at '~' and ends at '\r'; a '~' in the middle starts over,
 * anything longer than PROTOCOL_RS485_MAX is dropped, bytes outside a
 * request are noise. Each complete request goes to the protocol's pure
 * ->respond() with the state the safety layer allows now
 * (ctx->up->answer_state(); NULL means "say nothing", and the inverter then
 * sees a silent battery, which it treats as communication loss).
 *
 * The inverter's polling is the link monitor: every valid poll for our
 * address calls ctx->up->heard(); we log when polls start and stop
 * (the one log line for RS485 silence: bridge.c leaves it to us), each
 * request at debug and a summary of commands and addresses at info, count
 * malformed requests, and when the line looks like a baud mismatch (bytes
 * with the high bit set, bytes outside any frame, checksum errors in a row)
 * say so, rate-limited: "check baud rate: 9600 or 19200".
 *
 * An answer is only "answered" when its RTN is 0x00 (V3.3 §2.5.2). An
 * inverter that polls but only ever gets error answers is a link that does
 * not work, however busy it looks (issue 10: a Voltronic repeated 0x4F VER
 * 0x00 for ever, answered RTN 0x01, while the log said "polls answered").
 * After RS485_STUCK_AFTER error answers in a row we say which command it
 * is stuck on and why, e.g. "inverter polls 0x4F VER 0x00 at ADR 0x02,
 * answered RTN 0x01 VER error 37 times", once and then at most every
 * RS485_STUCK_EVERY_USEC, and in STATUS=; a notice says when a normal
 * answer goes out again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "rs485"
#include "adapter.h"
#include "log.h"
#include "macro.h"
#include "protocol.h"
#include "pylontech_rs485.h"
#include "serial.h"

#define RS485_WATCH_USEC USEC_PER_SEC
#define RS485_SUMMARY_FIRST_USEC (30 * USEC_PER_SEC) /* after polls start */
#define RS485_SUMMARY_EVERY_USEC (3600 * USEC_PER_SEC)
#define RS485_NOISE_THRESHOLD 8 /* noise events since the last good poll */
#define RS485_CHKSUM_IN_A_ROW 3
#define RS485_STUCK_AFTER 3 /* error answers in a row, none normal */
#define RS485_STUCK_EVERY_USEC (600 * USEC_PER_SEC)
#define RS485_OTHER_ADR_AFTER 3 /* polls for another address, none for us, before we say so */

struct rs485_output {
	struct output base; /* ops, ctx */
	struct serial *port;
	uint32_t baud;
	sd_event_source *watch;

	/* framing */
	uint8_t rx[PROTOCOL_RS485_MAX];
	size_t rx_len;
	bool in_frame;

	/* link monitor */
	bool polling;
	uint64_t first_poll_usec;
	uint64_t last_poll_usec;
	uint64_t next_summary_usec;
	uint32_t cid2_count[256];   /* requests for us, by command */
	uint32_t adr_count[256];    /* valid requests by address (ours or not) */

	/* counters */
	uint64_t polls;		/* valid requests for our address */
	uint64_t answered;	/* normal responses (RTN 0x00) queued */
	uint64_t errors;	/* error responses (RTN != 0x00) queued */
	uint64_t unanswered;	/* for us, but nothing may be sent (NULL state / no data) */
	uint64_t other_adr;	/* valid requests for other addresses */
	uint64_t malformed;	/* not a frame, checksum or length wrong, over-long */
	uint64_t high_bit;	/* bytes with bit 7 set */
	uint64_t outside;	/* bytes outside any frame */
	uint64_t tx_dropped;	/* responses the queue refused */
	uint64_t responses_seen; /* answers on the line: an echoing adapter, another pack */
	unsigned chksum_in_row;

	/* error answers in a row, and the last one's request and RTN */
	uint64_t err_in_row;
	struct pylon_rs485_head err_req;
	uint8_t err_rtn;
	bool stuck;		/* said so in the log; a notice when it clears */
	struct ratelimit stuck_rl;
	unsigned noise;		/* noise events since the last good poll */
	struct ratelimit baud_rl;
	struct ratelimit tx_rl;

	/* comm-loss causes said once, with a notice when they clear (bmsbridge-troubleshooting(7)) */
	bool noise_said;     /* rs485-framing */
	bool other_adr_said; /* rs485-other-address */
	bool never_said;     /* inverter-silent: no poll since the port opened */
	uint64_t other_adr_in_row; /* polls for other addresses since the last one for us */
	uint8_t other_adr_last;	   /* the address they were for */
	uint64_t open_usec;	   /* when the port last opened */
};

/* a name for the log: what the inverter asked for */
static const char *cid2_name(uint8_t cid2)
{
	switch (cid2) {
	case 0x42:
		return "analog values";
	case 0x44:
		return "alarm info";
	case 0x47:
		return "system parameters";
	case 0x4F:
		return "protocol version";
	case 0x51:
		return "manufacturer info";
	case 0x60:
		return "system basic info";
	case 0x61:
		return "system analog";
	case 0x62:
		return "system alarms";
	case 0x63:
		return "system charge/discharge";
	case 0x92:
		return "charge/discharge management";
	case 0x93:
		return "serial number";
	case 0x94:
		return "set charge/discharge management";
	case 0x95:
		return "turn off";
	case 0x96:
		return "software version";
	default:
		return "unknown";
	}
}

static const char *rtn_name(uint8_t rtn)
{
	switch (rtn) {
	case PYLON_RS485_RTN_OK:
		return "normal";
	case PYLON_RS485_RTN_VER:
		return "VER error";
	case PYLON_RS485_RTN_CHKSUM:
		return "CHKSUM error";
	case PYLON_RS485_RTN_LCHKSUM:
		return "LCHKSUM error";
	case PYLON_RS485_RTN_CID2:
		return "CID2 invalid";
	case PYLON_RS485_RTN_FORMAT:
		return "command format error";
	case PYLON_RS485_RTN_DATA:
		return "invalid data";
	case PYLON_RS485_RTN_ADR:
		return "ADR error";
	case PYLON_RS485_RTN_INTERNAL:
		return "internal communication error";
	default:
		return "unknown RTN";
	}
}

/*
 * What the inverter is stuck on, for the log and STATUS=:
 * "0x4F VER 0x00 at ADR 0x02, answered RTN 0x01 VER error 37 times".
 */
static void stuck_text(const struct rs485_output *out, char *buf, size_t n)
{
	snprintf(buf, n, "0x%02X VER 0x%02X at ADR 0x%02X, answered RTN 0x%02X %s %llu times",
		 out->err_req.cid2, out->err_req.ver, out->err_req.adr, out->err_rtn,
		 rtn_name(out->err_rtn), (unsigned long long)out->err_in_row);
}

/* the link monitor's view of one answer that went out */
static void answer_sent(struct rs485_output *out, const struct pylon_rs485_head *req, uint8_t rtn,
			uint64_t now)
{
	char what[128];

	if (rtn == PYLON_RS485_RTN_OK) {
		out->answered++;
		if (out->stuck) {
			stuck_text(out, what, sizeof(what));
			log_notice("Inverter link works again: 0x%02X (%s) answered normally, after "
				   "polls %s",
				   req->cid2, cid2_name(req->cid2), what);
		}
		out->stuck = false;
		out->err_in_row = 0;
		return;
	}
	out->errors++;
	out->err_in_row++;
	out->err_req = *req;
	out->err_rtn = rtn;
	if (out->err_in_row < RS485_STUCK_AFTER) {
		return;
	}
	if (!out->stuck) {
		/* the first time always, then through the rate limiter */
		out->stuck = true;
		out->stuck_rl = (struct ratelimit)RATELIMIT_INIT(RS485_STUCK_EVERY_USEC, 1);
	}
	stuck_text(out, what, sizeof(what));
	log_ratelimit(&out->stuck_rl, now, LOG_WARNING,
		      "Inverter link stuck: inverter polls %s (%s), %s",
		      what, cid2_name(req->cid2),
		      out->answered ? "none answered normally in between"
				    : "no poll answered normally yet");
}

/*
 * One info line: how many polls, for whom, which commands. Tells at a
 * glance which dialect an inverter speaks (2.x pack commands or the 3.5
 * system ones) and which address it expects pack #1 at.
 */
static void log_summary(struct rs485_output *out)
{
	char cmds[256] = "", adrs[128] = "";
	size_t c = 0, a = 0;

	for (unsigned i = 0; i < 256; i++) {
		if (out->cid2_count[i] && c < sizeof(cmds)) {
			c += (size_t)snprintf(cmds + c, sizeof(cmds) - c, "%s0x%02X x%u", c ? ", " : "",
					      i, out->cid2_count[i]);
		}
		if (out->adr_count[i] && a < sizeof(adrs)) {
			a += (size_t)snprintf(adrs + a, sizeof(adrs) - a, "%s0x%02X x%u", a ? ", " : "",
					      i, out->adr_count[i]);
		}
	}
	log_info("Inverter polls so far: %llu for us (ADR 0x%02X), %llu answered normally, "
		 "%llu with an error, %llu for other addresses or families, "
		 "%llu malformed, %llu answers seen on the line (echo?); commands: %s; "
		 "addresses: %s",
		 (unsigned long long)out->polls, pylon_rs485_adr(&out->base.ctx->cfg->options),
		 (unsigned long long)out->answered, (unsigned long long)out->errors,
		 (unsigned long long)out->other_adr, (unsigned long long)out->malformed,
		 (unsigned long long)out->responses_seen, cmds[0] ? cmds : "none",
		 adrs[0] ? adrs : "none");
}

/* the line looks like the wrong baud rate: say so, rate-limited */
static void noise_event(struct rs485_output *out, uint64_t now)
{
	out->noise++;
	if (out->noise < RS485_NOISE_THRESHOLD && out->chksum_in_row < RS485_CHKSUM_IN_A_ROW) {
		return;
	}
	/* the first time always (and a notice when it clears), then rate-limited */
	if (ratelimit_below(&out->baud_rl, now) || !out->noise_said) {
		log_fault("rs485-framing",
			  "check baud rate: 9600 or 19200 (the inverter's setting and baud = in "
			  "bmsbridge.conf), and A/B",
			  "Framing noise on %s (%llu bytes with the high bit set, %llu outside frames, "
			  "%u checksum errors in a row) at %u baud",
			  serial_path(out->port), (unsigned long long)out->high_bit,
			  (unsigned long long)out->outside, out->chksum_in_row, out->baud);
		out->noise_said = true;
	}
	out->noise = 0;
}

/*
 * Polls for another address and none for us: a Voltronic / PIP inverter
 * asks for pack #1 at the address its DIP switch / setting says, and a
 * master battery set to another one is never asked. Said once (a valid
 * poll for us clears it); a bank of real packs beside us is fine as long
 * as we are polled too.
 */
static void other_adr_check(struct rs485_output *out)
{
	uint8_t ours = pylon_rs485_adr(&out->base.ctx->cfg->options);
	char hint[160];

	if (out->other_adr_said || out->polling || out->other_adr_in_row < RS485_OTHER_ADR_AFTER) {
		return;
	}
	/* rs485_address is the pack number: ADR = rs485_address + 1 (bmsbridge-rs485(7)) */
	if (out->other_adr_last >= 2 && out->other_adr_last <= 0x10) {
		snprintf(hint, sizeof(hint),
			 "set rs485_address = %u in bmsbridge.conf (answers ADR 0x%02X), or the "
			 "inverter's battery address (DIP switch / setting) to pack #1",
			 out->other_adr_last - 1u, out->other_adr_last);
	} else {
		snprintf(hint, sizeof(hint),
			 "set the inverter's battery address (DIP switch / setting) to pack #1 "
			 "(ADR 0x%02X)",
			 ours);
	}
	log_fault("rs485-other-address", hint,
		  "Inverter polls ADR 0x%02X (%llu polls), we answer as ADR 0x%02X and none came "
		  "for us",
		  out->other_adr_last, (unsigned long long)out->other_adr_in_row, ours);
	out->other_adr_said = true;
}

/*
 * One complete request ("~...\r"): classify it for the link monitor, then
 * answer it if it is for us and the safety layer lets us say anything.
 * A request with a bad checksum for our address still reaches the
 * responder, which answers the protocol's RTN error.
 */
/* Over 80 lines: one request from bytes to answer, each step logged with the same context. */
static void handle_request(struct rs485_output *out, const uint8_t *req, size_t n, uint64_t now)
{
	struct output_ctx *ctx = out->base.ctx;
	const struct protocol_options *opt = &ctx->cfg->options;
	const struct battery_state *bs;
	struct pylon_rs485_head h, a;
	uint8_t rsp[PROTOCOL_RS485_MAX];
	bool for_us;
	ssize_t r;

	if (pylon_rs485_peek(req, n, &h) < 0) {
		out->malformed++;
		noise_event(out, now);
		return;
	}
	if (pylon_rs485_is_response(&h)) {
		/* our own answer echoed by the adapter, or another pack talking */
		out->responses_seen++;
		log_debug("an answer on the line (ADR 0x%02X RTN 0x%02X): ignored", h.adr, h.cid2);
		return;
	}
	if (!h.chksum_ok || !h.length_ok) {
		out->malformed++;
		if (!h.chksum_ok) {
			out->chksum_in_row++;
		}
		log_debug("request with a bad %s: ADR 0x%02X CID2 0x%02X",
			  h.chksum_ok ? "LENGTH" : "CHKSUM", h.adr, h.cid2);
		noise_event(out, now);
	} else {
		out->chksum_in_row = 0;
		out->noise = 0;
		out->adr_count[h.adr]++;
		if (out->noise_said) {
			out->noise_said = false;
			log_fault_cleared("rs485-framing", "RS485 framing clean again at %u baud: a "
					  "valid request for ADR 0x%02X", out->baud, h.adr);
		}
	}

	for_us = pylon_rs485_addressed(&h, pylon_rs485_adr(opt));
	if (!for_us) {
		if (h.chksum_ok) {
			out->other_adr++;
			out->other_adr_in_row++;
			out->other_adr_last = h.adr;
			log_debug("poll for ADR 0x%02X CID1 0x%02X (not ours), CID2 0x%02X: silent",
				  h.adr, h.cid1, h.cid2);
			other_adr_check(out);
		}
		return;
	}
	if (h.chksum_ok && h.length_ok) {
		out->other_adr_in_row = 0;
		if (out->other_adr_said) {
			out->other_adr_said = false;
			log_fault_cleared("rs485-other-address",
					  "Inverter polls our address ADR 0x%02X now", h.adr);
		}
		out->polls++;
		out->cid2_count[h.cid2]++;
		out->last_poll_usec = now;
		if (!out->polling) {
			out->polling = true;
			out->first_poll_usec = now;
			out->next_summary_usec = now + RS485_SUMMARY_FIRST_USEC;
			log_info("Inverter polls started: ADR 0x%02X, CID2 0x%02X (%s), VER 0x%02X",
				 h.adr, h.cid2, cid2_name(h.cid2), h.ver);
			if (out->never_said) {
				out->never_said = false;
				log_fault_cleared("inverter-silent",
						  "Inverter polls heard on %s at %u baud",
						  serial_path(out->port), out->baud);
			}
		}
		ctx->up->heard(ctx, now);
		log_debug("poll ADR 0x%02X CID2 0x%02X (%s)", h.adr, h.cid2, cid2_name(h.cid2));
	}

	bs = ctx->up->answer_state(ctx, now);
	if (!bs) {
		out->unanswered++;
		log_debug("nothing may be sent now: no answer to CID2 0x%02X", h.cid2);
		return;
	}
	r = ctx->proto->respond(opt, bs, req, n, rsp, sizeof(rsp));
	if (r <= 0) {
		out->unanswered++;
		log_debug("no answer to CID2 0x%02X: %s", h.cid2, r < 0 ? strerror((int)-r) : "silent");
		return;
	}
	if (serial_write(out->port, rsp, (size_t)r) < 0) {
		out->tx_dropped++;
		log_ratelimit(&out->tx_rl, now, LOG_WARNING,
			      "%s: cannot queue an answer (%llu dropped so far)",
			      serial_path(out->port), (unsigned long long)out->tx_dropped);
		return;
	}
	/* the answer's RTN, from our own frame: only 0x00 counts as answered */
	if (pylon_rs485_peek(rsp, (size_t)r, &a) == 0) {
		answer_sent(out, &h, a.cid2, now);
	}
	ctx->up->answered(ctx, 1, now);
}

/*
 * The framer: '~' always starts a request (resync after garbage), '\r'
 * ends it, a request longer than PROTOCOL_RS485_MAX is dropped. Bytes
 * outside a request and bytes with bit 7 set are what a wrong baud rate
 * looks like on this ASCII protocol.
 */
static void on_read(struct serial *s, const uint8_t *buf, size_t n, uint64_t now, void *userdata)
{
	struct rs485_output *out = userdata;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = buf[i];

		if (c & 0x80) {
			out->high_bit++; /* never part of an ASCII frame: wrong baud rate */
			noise_event(out, now);
		}
		if (c == PYLON_RS485_SOI) {
			if (out->in_frame && out->rx_len > 1) {
				out->malformed++; /* a request cut short by a new one */
			}
			out->in_frame = true;
			out->rx_len = 0;
		} else if (!out->in_frame) {
			if (c != '\r' && c != '\n' && c != 0) {
				out->outside++;
				noise_event(out, now);
			}
			continue;
		}
		if (out->rx_len >= sizeof(out->rx)) {
			/* over-long: drop it, resync on the next '~' */
			out->malformed++;
			out->in_frame = false;
			out->rx_len = 0;
			noise_event(out, now);
			continue;
		}
		out->rx[out->rx_len++] = c;
		if (c == PYLON_RS485_EOI) {
			out->in_frame = false;
			handle_request(out, out->rx, out->rx_len, now);
			out->rx_len = 0;
			if (!out->port || !serial_is_open(s)) {
				return;
			}
		}
	}
}

/* the port opened or was lost: a half-read request is void; READY waits for the port */
static void on_state(struct serial *s, bool open, void *userdata)
{
	struct rs485_output *out = userdata;

	out->in_frame = false;
	out->rx_len = 0;
	out->base.ctx->open = open;
	if (open) {
		out->open_usec = output_now(out->base.ctx);
		output_port_changed(out->base.ctx);
	}
}

/* once a second: did the inverter stop polling? time for a summary? */
static int on_watch(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct rs485_output *out = userdata;
	uint64_t now = output_now(out->base.ctx);

	if (out->polling && now - out->last_poll_usec > out->base.ctx->inverter_timeout_usec) {
		out->polling = false;
		log_fault("inverter-silent", "check the inverter is on and the RS485 cable",
			  "Inverter polls stopped: none for %.1f s (%llu polls in %.0f s)",
			  (double)(now - out->last_poll_usec) / USEC_PER_SEC,
			  (unsigned long long)out->polls,
			  (double)(out->last_poll_usec - out->first_poll_usec) / USEC_PER_SEC);
		log_summary(out);
	} else if (out->polling && now >= out->next_summary_usec) {
		log_summary(out);
		out->next_summary_usec = now + RS485_SUMMARY_EVERY_USEC;
	} else if (!out->polling && out->polls == 0 && !out->never_said && out->open_usec &&
		   out->base.ctx->open &&
		   now - out->open_usec > out->base.ctx->inverter_timeout_usec) {
		/* never polled since the port opened: not the same as polls that stopped */
		out->never_said = true;
		log_fault("inverter-silent",
			  out->other_adr || out->malformed
				  ? "see the warnings above (address, baud)"
				  : "nothing at all on the line: check A/B (swap them), GND, the "
				    "inverter's battery type (PYL / Pylontech) and that it polls",
			  "No inverter poll for ADR 0x%02X on %s in %.0f s at %u baud",
			  pylon_rs485_adr(&out->base.ctx->cfg->options), serial_path(out->port),
			  (double)(now - out->open_usec) / USEC_PER_SEC, out->baud);
	}
	return sd_event_source_set_time(es, usec + RS485_WATCH_USEC);
}

static struct output *rs485_free(struct output *base)
{
	struct rs485_output *out = base ? container_of(base, struct rs485_output, base) : NULL;

	if (!out) {
		return NULL;
	}
	if (out->polls || out->malformed) {
		log_summary(out);
	}
	out->watch = sd_event_source_disable_unref(out->watch);
	out->port = serial_free(out->port);
	out->base.ctx->open = false;
	free(out);
	return NULL;
}

static int rs485_open(struct output_ctx *ctx, struct output **ret)
{
	struct serial_config sc = { .path = ctx->cfg->port, .rs485 = true };
	struct rs485_output *out;
	int r;

	if (!ctx->proto->respond) {
		return log_error_errno(-EINVAL, "protocol %s cannot answer polls: use a CAN output",
				       ctx->proto->name);
	}
	sc.baud = ctx->cfg->baud ? ctx->cfg->baud : ctx->proto->baud;
	if (!serial_baud_supported(sc.baud)) {
		return log_error_errno(-EINVAL, "inverter baud %u not supported: use 9600, 19200 "
					       "or 115200", sc.baud);
	}
	out = calloc(1, sizeof(*out));
	if (!out) {
		return -ENOMEM;
	}
	out->base.ctx = ctx;
	out->baud = sc.baud;
	out->baud_rl = (struct ratelimit)RATELIMIT_INIT(60 * USEC_PER_SEC, 1);
	out->tx_rl = (struct ratelimit)RATELIMIT_INIT(10 * USEC_PER_SEC, 1);

	r = sd_event_add_time_relative(ctx->event, &out->watch, CLOCK_MONOTONIC, RS485_WATCH_USEC,
				       RS485_WATCH_USEC / 20, on_watch, out);
	if (r < 0) {
		free(out);
		return log_error_errno(r, "Failed to add the RS485 watch timer: %s", strerror(-r));
	}
	/* a repeating timer: on_watch() moves its time on by a second each run */
	sd_event_source_set_enabled(out->watch, SD_EVENT_ON);
	r = serial_new(ctx->event, &sc, on_read, on_state, out, &out->port);
	if (r < 0) {
		out->watch = sd_event_source_disable_unref(out->watch);
		free(out);
		return r;
	}
	log_info("Answering %s polls as ADR 0x%02X on %s at %u baud", ctx->proto->name,
		 pylon_rs485_adr(&ctx->cfg->options), sc.path, sc.baud);
	ctx->open = serial_is_open(out->port);
	if (ctx->open && !out->open_usec) {
		out->open_usec = output_now(ctx);
	}
	out->base.ops = &output_rs485_ops;
	*ret = &out->base;
	return 0;
}

static void rs485_status(struct output *base, char *buf, size_t n)
{
	struct rs485_output *out = container_of(base, struct rs485_output, base);

	if (!serial_is_open(out->port)) {
		snprintf(buf, n, "rs485 %s closed, retrying every %llu s", serial_path(out->port),
			 (unsigned long long)(serial_retry_usec(out->port) / USEC_PER_SEC));
		return;
	}
	if (out->stuck) {
		char what[128];

		/* short: bridge_status() gives the output 96 characters */
		snprintf(what, sizeof(what), "0x%02X VER 0x%02X ADR 0x%02X -> RTN 0x%02X %s x%llu",
			 out->err_req.cid2, out->err_req.ver, out->err_req.adr, out->err_rtn,
			 rtn_name(out->err_rtn), (unsigned long long)out->err_in_row);
		snprintf(buf, n, "rs485 STUCK: %s, %llu ok, %u baud", what,
			 (unsigned long long)out->answered, out->baud);
		return;
	}
	snprintf(buf, n, "rs485 %s %u baud, %s, %llu answered, %llu errors, %llu malformed",
		 serial_path(out->port), out->baud, out->polling ? "polled" : "not polled",
		 (unsigned long long)out->answered, (unsigned long long)out->errors,
		 (unsigned long long)out->malformed);
}

/* the index of the largest count in @c[256] other than @skip; LINK_STATS_NONE if all are 0 */
static uint8_t top_of(const uint32_t *c, unsigned skip)
{
	uint32_t best = 0;
	uint8_t at = LINK_STATS_NONE;

	for (unsigned k = 0; k < 256; k++) {
		if (k != skip && c[k] > best) {
			best = c[k];
			at = (uint8_t)k;
		}
	}
	return at;
}

static void rs485_stats(struct output *base, struct inverter_link_stats *ret)
{
	struct rs485_output *out = container_of(base, struct rs485_output, base);
	uint8_t adr = pylon_rs485_adr(&out->base.ctx->cfg->options);

	*ret = (struct inverter_link_stats){
		.bus_state = "",
		.baud = out->baud,
		.address = adr,
		.polls = out->polls,
		.answered = out->answered,
		.errors = out->errors,
		.other_adr = out->other_adr,
		.top_other_adr = top_of(out->adr_count, adr),
		.top_cid2 = top_of(out->cid2_count, 256),
		.malformed = out->malformed,
		.noise = out->high_bit + out->outside,
		.err_cid2 = out->err_in_row ? out->err_req.cid2 : LINK_STATS_NONE,
		.err_rtn = out->err_rtn,
		.err_in_row = out->err_in_row,
	};
}

const struct output_ops output_rs485_ops = {
	.name = "rs485",
	.open = rs485_open,
	.free = rs485_free,
	.send = NULL, /* polled: answers go out from the read path */
	.status = rs485_status,
	.stats = rs485_stats,
};
