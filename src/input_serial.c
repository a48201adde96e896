/* SPDX-License-Identifier: MIT */
/*
 * The serial BMS input (BMS_TRANSPORT_SERIAL). A driver with ->serial
 * (Pylontech RS485, Seplos V2/V3, Pace, JBD, Daly) is handed to the
 * generic exchange engine, src/serial_engine.c. What follows is the
 * JK-PB path (jk-pb-modbus, ->decode_block()), not moved onto that engine's
 * exchange logic yet: its late-answer matching below (per pack and step
 * FIFOs of send times, the probe) and its listen-only method are tied to
 * the JK stream parser, and they are what its tests and benchmarks prove.
 * It shares the engine's port (src/serial.c) and its packs-online
 * bookkeeping (src/pack_watch.c); neither uses libmodbus any more.
 * It reads JK-PB packs on one bus, two ways:
 *
 *   polling (read_method "trigger" or "registers"): we are the bus master
 *     and ask the packs at bms.addresses in turn;
 *   listening (read_method "listen"): a JK pack at DIP address 0 is the
 *     master; we never transmit (a second master collides with it) and
 *     take the frames its polls draw from the packs, and the frames it
 *     broadcasts of its own (bms-docs/JKBMS-PB.md in
 *     mr-manuel/venus-os_dbus-serialbattery; txubelaxu/esphome-jk-bms
 *     jk_rs485_sniffer reads the same bus the same way).
 *
 * Model: src/serial.c opens and configures the port (raw 8N1, bms.baud or
 * the driver's 115200, exclusive, kernel RS485 direction control where the
 * UART has it) and queues each request, built whole with its CRC by
 * jk_pb_build_trigger() / jk_pb_build_read(). Everything that comes back
 * is handed to on_bytes() at any time the port is open (and read at once
 * with serial_read_now() when a timer fires), and cut into items by the
 * pure stream parser of
 * protocols/jk_pb.c (jk_pb_bus_next(): polls, 55 AA EB 90 frames, write
 * echoes, 0x03 answers, each checked by CRC or sum8); jk_pb_listen()
 * pairs each frame with the poll before it and the echo after it. No
 * callback here ever waits: the measured worst stall is in
 * bench/modbus-stall.
 *
 * Polling, one exchange at a time:
 *
 *   IDLE --poll timer--> GAP --bus really quiet for request_gap--> WAIT
 *   (request sent, timer = response_timeout) --its answer--> decode, next
 *   request (GAP) ... --last request of the last pack--> IDLE
 *
 * Late answers (issue 11). A link that buffers (serial over TCP, some USB
 * adapters) can hand an answer over seconds after its request, into the
 * wait window of a later one. So:
 *   - "quiet" is the bus's, not ours: every byte received restarts the
 *     gap before the next request, and after a failed exchange the gap is
 *     at least a response timeout (the flush);
 *   - every request's send time is kept, per pack and step, in order
 *     (struct inflight); an answer, whenever it comes, is matched to the
 *     OLDEST request of its pack and kind still unanswered, and its data
 *     is stamped with THAT request's time: data is as old as the question
 *     it answers, never younger. A late answer therefore goes stale in
 *     the safety layer by itself instead of passing as fresh;
 *   - an answer that comes inside its window while older requests of the
 *     same kind are unanswered is ambiguous: either those were lost (a
 *     pack that was away and is back) or they are still coming (a late
 *     link). We then send nothing for a probe time (the spacing of the
 *     next unanswered request after the one matched, two response
 *     timeouts and a gap more: on a late link its answer comes then): if
 *     nothing more arrives, the older requests were lost and are
 *     forgotten; if their answers arrive, they are taken in order and the
 *     link is reported late. Limit: a link later than LATE_FIFO_MAX
 *     requests of one kind (about 32 s at the defaults) loses the oldest
 *     and could stamp its answers too young.
 *
 * Per request a failure (timeout, bad CRC or checksum, exception,
 * undecodable block) is retried once, then the pack is skipped for this
 * round and counted offline; an absent pack costs at most two response
 * timeouts per round. After REOPEN_AFTER failed exchanges in a row (a
 * vanished USB adapter leaves an fd that looks open) the port is closed
 * and opened again REOPEN_DELAY later; a hang-up or read error is
 * src/serial.c's, which closes it and reopens it with its back-off (1 s
 * doubling to 30 s) until the device is back.
 *
 * Logging (issue 11: a silent pack gave ~70 lines a minute): a pack going
 * silent and coming back are said once each; a silent pack's failed
 * exchanges are debug only, with a reminder every PACK_WATCH_REMIND_USEC
 * (src/pack_watch.c, shared with the generic engine); the
 * counts are in STATUS.
 *
 * Errors are negative errno at this boundary: -ETIMEDOUT (no answer),
 * -EBADMSG (CRC, checksum, framing), -EIO (a Modbus exception); a dead
 * line is src/serial.c's (->state(false)).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_MODULE "bms_modbus"
#include "bms.h"
#include "adapter.h"
#include "byteorder.h"
#include "log.h"
#include "macro.h"
#include "jk_pb.h"
#include "pack_watch.h"
#include "serial.h"
#include "serial_engine.h"

#define MODBUS_DEFAULT_POLL_USEC (2 * USEC_PER_SEC)
#define MODBUS_DEFAULT_TIMEOUT_USEC (200 * USEC_PER_MSEC)
#define MODBUS_DEFAULT_GAP_USEC (100 * USEC_PER_MSEC)
#define REOPEN_AFTER 8 /* failed exchanges in a row (jkbms_pb.py _RECYCLE_THRESHOLD) */
#define REOPEN_DELAY_USEC (2 * USEC_PER_SEC)
#define RX_MAX 1024 /* a frame, its echo, an echo of ours and some noise */
#define LATE_FIFO_MAX 32 /* unanswered requests remembered per pack and step */
/* listening: a DIP-0 master's cycle is ~4.4 s (JKBMS-PB.md); three of them */
#define LISTEN_SILENT_USEC (15 * USEC_PER_SEC)
#define LISTEN_TICK_USEC (100 * USEC_PER_MSEC)
#define STEPS_MAX 3

enum modbus_phase {
	PHASE_CLOSED, /* port not open; the timer retries */
	PHASE_IDLE,   /* between rounds */
	PHASE_GAP,    /* waiting for the bus to be quiet before sending */
	PHASE_WAIT,   /* request sent, collecting the answer */
	PHASE_PROBE,  /* an ambiguous answer: listening for older ones */
	PHASE_LISTEN, /* read_method "listen": never sending */
};

/* One exchange of a pack's round. */
struct modbus_step {
	bool trigger;	    /* 0x10 trigger, else a 0x03 read */
	uint16_t reg;	    /* trigger register or first register read */
	uint16_t count;	    /* registers read (0x03) */
	uint16_t offset;    /* where the bytes go in the image (0x03) */
	int kind;	    /* block decoded after this step, -1: none yet */
	uint8_t frame_type; /* trigger: the 55 AA EB 90 type that answers it */
};

/* trigger: settings (LIMITS) then status; both are 300-byte frames */
static const struct modbus_step trigger_steps[] = {
	{ .trigger = true, .reg = JK_PB_TRIGGER_SETTINGS, .kind = JK_PB_BLOCK_FRAME,
	  .frame_type = JK_PB_FRAME_SETTINGS },
	{ .trigger = true, .reg = JK_PB_TRIGGER_STATUS, .kind = JK_PB_BLOCK_FRAME,
	  .frame_type = JK_PB_FRAME_STATUS },
};
/* registers: 0x1000 (144 bytes), then 0x1200 in two reads (160 + 96 bytes) */
static const struct modbus_step register_steps[] = {
	{ .reg = JK_PB_REG_SETTINGS, .count = JK_PB_SETTINGS_LEN / 2, .offset = 0,
	  .kind = JK_PB_BLOCK_SETTINGS_REGS },
	{ .reg = JK_PB_REG_DATA, .count = 80, .offset = 0, .kind = -1 },
	{ .reg = JK_PB_REG_DATA + 160, .count = 48, .offset = 160, .kind = JK_PB_BLOCK_DATA_REGS },
};

/* send times of the requests of one pack and step not answered yet, oldest first */
struct inflight {
	uint64_t usec[LATE_FIFO_MAX];
	unsigned head, len;
};

struct modbus_pack {
	/* address, online (polling: last round read it; listening: heard lately), silence */
	struct pack_watch w;
	bool heard_ever;
	uint64_t failures;	    /* rounds it was skipped */
	uint64_t heard_usec;	    /* listening: its last frame */
	uint64_t frames;	    /* frames decoded */
	uint64_t image_usec;	    /* registers: oldest request behind the image */
	struct inflight fifo[STEPS_MAX];
};

struct serial_input {
	struct input base; /* ops, ctx */
	struct serial *port;  /* src/serial.c: raw 8N1, reopened with back-off when lost */
	bool port_stale;      /* closed by schedule_reopen(), freed from the timer */
	uint64_t reopen_usec; /* ... and a new one opened then */
	uint32_t baud;
	sd_event_source *timer; /* gap, response timeout, probe, reopen, listen tick */
	sd_event_source *poll;	/* one round every poll_interval (polling only) */

	enum modbus_phase phase;
	bool listen;
	const struct modbus_step *steps;
	size_t n_steps;
	unsigned pack, step, attempt;
	bool round_pending; /* the poll timer fired during a round */
	bool flush;	    /* the last exchange failed: a longer quiet before the next */

	uint8_t rx[RX_MAX];
	size_t rx_len;
	size_t window_bytes; /* bytes of the current wait window that made no item */
	struct jk_pb_listener lis;
	uint8_t image[JK_PB_DATA_LEN]; /* register blocks assembled here */
	uint64_t quiet_since_usec;     /* the bus was last active then */
	uint64_t open_usec;	       /* the port was opened then */
	uint64_t late_events;	       /* late answers and stray bytes, all told */
	uint64_t late_at_probe;
	uint64_t answer_stamp; /* the request time the last answer took */
	unsigned probe_pack, probe_step;
	bool no_master_said;   /* listening: "no poll heard" said once */

	uint64_t poll_usec, timeout_usec, gap_usec;
	unsigned n_packs;
	struct modbus_pack packs[BATTERY_PACKS_MAX];

	unsigned consecutive_failures;
	uint64_t exchanges, errors, timeouts, bad_messages, reopens, overruns;
	uint64_t late_answers, stray_bytes, forgotten, fifo_overflows;
	uint64_t collisions, strangers, sent_bytes;
	uint16_t stranger_seen; /* addresses already reported */
	struct ratelimit rl_timeout, rl_bad, rl_late, rl_collision;
};

static void start_exchange(struct serial_input *in, uint64_t now);
static void advance(struct serial_input *in, uint64_t now, bool pack_failed);
static void exchange_failed(struct serial_input *in, uint64_t now, int err);

static int arm_timer(struct serial_input *in, uint64_t when)
{
	int r = sd_event_source_set_time(in->timer, when);

	if (r >= 0) {
		r = sd_event_source_set_enabled(in->timer, SD_EVENT_ONESHOT);
	}
	return r;
}

static void fifo_push(struct serial_input *in, struct inflight *f, uint64_t t)
{
	if (f->len == LATE_FIFO_MAX) {
		/* the oldest goes: see the limit in the model above */
		f->head = (f->head + 1) % LATE_FIFO_MAX;
		f->len--;
		in->fifo_overflows++;
	}
	f->usec[(f->head + f->len) % LATE_FIFO_MAX] = t;
	f->len++;
}

/* Return: the oldest send time, 0 if nothing is in flight. */
static uint64_t fifo_pop(struct inflight *f)
{
	uint64_t t;

	if (f->len == 0) {
		return 0;
	}
	t = f->usec[f->head];
	f->head = (f->head + 1) % LATE_FIFO_MAX;
	f->len--;
	return t ? t : 1;
}

/*
 * The port is closed (lost, or being replaced): nothing is in progress,
 * what was received is dropped, the bridge is told.
 */
static void port_closed(struct serial_input *in)
{
	sd_event_source_set_enabled(in->timer, SD_EVENT_OFF);
	in->phase = PHASE_CLOSED;
	in->round_pending = false;
	in->rx_len = 0;
	jk_pb_listener_init(&in->lis, in->timeout_usec);
	for (unsigned i = 0; i < in->n_packs; i++) {
		in->packs[i].w.online = false;
	}
	if (in->base.ctx->open) {
		in->base.ctx->open = false;
		input_port_changed(in->base.ctx);
	}
}

/* the port (src/serial.c) is open: start listening, or wait for the poll timer */
static void port_opened(struct serial_input *in, uint64_t now)
{
	in->consecutive_failures = 0;
	in->quiet_since_usec = in->open_usec = now;
	if (in->listen) {
		in->phase = PHASE_LISTEN;
		arm_timer(in, now + LISTEN_TICK_USEC);
	} else {
		in->phase = PHASE_IDLE;
	}
	log_info("BMS port %s open, %" PRIu32 " 8N1, %u pack%s, %s", in->base.ctx->cfg->port,
		 in->baud, in->n_packs, in->n_packs == 1 ? "" : "s",
		 in->listen		      ? "listening only (a DIP-0 JK master drives the bus)"
		 : in->steps == trigger_steps ? "trigger method"
					      : "register method");
	in->base.ctx->open = true;
	input_port_changed(in->base.ctx);
}

static void on_bytes(struct serial *s, const uint8_t *buf, size_t n, uint64_t now_usec,
		     void *userdata);

/* src/serial.c opened the port, or lost it (it then reopens with back-off) */
static void on_port(struct serial *s, bool open, void *userdata)
{
	struct serial_input *in = userdata;
	uint64_t now = input_now(in->base.ctx);

	(void)s;
	if (in->port_stale) {
		return; /* the port we are replacing: schedule_reopen() said it */
	}
	if (open) {
		port_opened(in, now);
		return;
	}
	log_warning("Reopening BMS port %s: %s", in->base.ctx->cfg->port, "the line is gone");
	in->reopens++;
	port_closed(in);
}

static int port_new(struct serial_input *in, uint64_t now)
{
	const struct serial_config sc = {
		.path = in->base.ctx->cfg->port,
		.baud = in->baud,
		.rs485 = true,
	};
	int r = serial_new(in->base.ctx->event, &sc, on_bytes, on_port, in, &in->port);

	if (r < 0) {
		return r;
	}
	/* not open yet: src/serial.c retries with back-off and calls on_port() */
	if (serial_is_open(in->port)) {
		port_opened(in, now);
	}
	return 0;
}

/*
 * The line looks open but nothing answers (or a write failed): close it and
 * open it again REOPEN_DELAY later. This may run inside the port's own read
 * callback, so the port is freed from the timer, never here.
 */
static void schedule_reopen(struct serial_input *in, uint64_t now, const char *why)
{
	log_warning("Reopening BMS port %s: %s", in->base.ctx->cfg->port, why);
	port_closed(in);
	in->reopens++;
	in->port_stale = true;
	in->reopen_usec = now + REOPEN_DELAY_USEC;
	arm_timer(in, now);
}

/* the timer while closed: free a port being replaced, open a new one when due */
static void closed_tick(struct serial_input *in, uint64_t now)
{
	if (in->port_stale) {
		in->port = serial_free(in->port);
		in->port_stale = false;
	}
	if (now < in->reopen_usec) {
		arm_timer(in, in->reopen_usec);
		return;
	}
	if (!in->port && port_new(in, now) < 0) {
		in->reopen_usec = now + REOPEN_DELAY_USEC;
		arm_timer(in, in->reopen_usec);
	}
}

/* ---- polling --------------------------------------------------------------- */

/*
 * The round is over: back to idle until the poll timer starts the next,
 * or at once if the timer fired meanwhile (a round longer than
 * poll_interval: the bus is then polled back to back, never less often).
 */
static void end_round(struct serial_input *in, uint64_t now)
{
	in->phase = PHASE_IDLE;
	in->pack = in->step = in->attempt = 0;
	sd_event_source_set_enabled(in->timer, SD_EVENT_OFF);
	if (in->round_pending) {
		in->round_pending = false;
		start_exchange(in, now);
	}
}

/* Move on to the next step, the next pack, or end the round. */
static void advance(struct serial_input *in, uint64_t now, bool pack_failed)
{
	in->attempt = 0;
	if (!pack_failed && in->step + 1 < in->n_steps) {
		in->step++;
	} else {
		if (pack_failed) {
			in->packs[in->pack].failures++;
			pack_watch_silent(&in->packs[in->pack].w, LOG_MODULE, in->pack, now,
					  "not answering");
		} else {
			pack_watch_answered(&in->packs[in->pack].w, LOG_MODULE, in->pack, now);
		}
		in->step = 0;
		in->pack++;
		if (in->pack >= in->n_packs) {
			end_round(in, now);
			return;
		}
	}
	start_exchange(in, now);
}

static void exchange_failed(struct serial_input *in, uint64_t now, int err)
{
	const struct modbus_step *st = &in->steps[in->step];
	const struct modbus_pack *p = &in->packs[in->pack];

	sd_event_source_set_enabled(in->timer, SD_EVENT_OFF);
	in->quiet_since_usec = now;
	in->flush = true;
	in->errors++;
	if (err == -ETIMEDOUT) {
		in->timeouts++;
	} else {
		in->bad_messages++;
	}
	/*
	 * A pack answering until now: say what went wrong (an absent pack's
	 * timeouts must not hide a bad answer of another one). A pack known
	 * silent: its failures are counted in STATUS, not logged again.
	 */
	if (p->w.silent_since_usec && err == -ETIMEDOUT) {
		log_debug("Pack address %u, %s 0x%04X: still silent", p->w.addr,
			  st->trigger ? "trigger" : "read", st->reg);
	} else {
		log_ratelimit(err == -ETIMEDOUT ? &in->rl_timeout : &in->rl_bad, now, LOG_WARNING,
			      "Pack address %u, %s 0x%04X: %s (%zu bytes)%s", p->w.addr,
			      st->trigger ? "trigger" : "read", st->reg, strerror(-err),
			      in->window_bytes, in->attempt == 0 ? ", retrying" : "");
	}
	if (++in->consecutive_failures >= REOPEN_AFTER) {
		schedule_reopen(in, now, "too many failed exchanges in a row");
		return;
	}
	if (in->attempt == 0) {
		in->attempt = 1;
		start_exchange(in, now);
		return;
	}
	advance(in, now, true);
}

/* The current exchange got its answer (decoded already). */
static void exchange_done(struct serial_input *in, uint64_t now)
{
	struct inflight *f = &in->packs[in->pack].fifo[in->step];

	sd_event_source_set_enabled(in->timer, SD_EVENT_OFF);
	in->quiet_since_usec = now;
	in->consecutive_failures = 0;
	in->flush = false;
	if (f->len > 0) {
		/*
		 * Older requests of this kind are unanswered: lost, or still
		 * on their way. Listen before asking anything else.
		 */
		uint64_t next = f->usec[f->head];
		uint64_t spacing = next > in->answer_stamp ? next - in->answer_stamp : 0;

		/*
		 * On a late link the next one's answer follows this one's as
		 * far apart as the two requests were: wait that long, and two
		 * response timeouts and a gap more for jitter.
		 */
		in->phase = PHASE_PROBE;
		in->probe_pack = in->pack;
		in->probe_step = in->step;
		in->late_at_probe = in->late_events;
		arm_timer(in, now + spacing + 2 * in->timeout_usec + in->gap_usec);
		return;
	}
	advance(in, now, false);
}

static void probe_over(struct serial_input *in, uint64_t now)
{
	struct inflight *f = &in->packs[in->probe_pack].fifo[in->probe_step];

	if (in->late_events == in->late_at_probe) {
		/* nothing came: those requests were never answered */
		in->forgotten += f->len;
		f->len = 0;
	}
	advance(in, now, false);
}

static void mark_late(struct serial_input *in, uint64_t now, unsigned pack, uint64_t stamp,
		      const char *what)
{
	in->late_events++;
	log_ratelimit(&in->rl_late, now, LOG_WARNING,
		      "Late answer on the bus: %s of pack address %u, %.1f s after its request "
		      "(a buffering link?); its data is dated by the request",
		      what, in->packs[pack].w.addr,
		      stamp ? (double)(now - stamp) / USEC_PER_SEC : 0.0);
}

static int pack_index(const struct serial_input *in, uint8_t addr)
{
	for (unsigned i = 0; i < in->n_packs; i++) {
		if (in->packs[i].w.addr == addr) {
			return (int)i;
		}
	}
	return -1;
}

/* decode one block into pack @pi dated @stamp and tell the bridge */
static int deliver(struct serial_input *in, unsigned kind, const uint8_t *buf, size_t n,
		   unsigned pi, uint64_t stamp)
{
	struct input_ctx *ctx = in->base.ctx;
	int r = ctx->driver->decode_block(kind, buf, n, pi, stamp, ctx->state);

	if (r < 0) {
		return r;
	}
	in->packs[pi].frames++;
	input_updated(ctx);
	return 0;
}

/* polling: a frame heard (with or without its echo) */
static void poll_heard(struct serial_input *in, const struct jk_pb_heard *h, uint64_t now)
{
	uint8_t type = h->frame[4];
	const struct modbus_step *cur = &in->steps[in->step];
	bool in_window = in->phase == PHASE_WAIT && cur->trigger && cur->frame_type == type;
	int pi = -1;
	unsigned s;
	uint64_t stamp;
	bool current;

	for (s = 0; s < in->n_steps; s++) {
		if (in->steps[s].trigger && in->steps[s].frame_type == type) {
			break;
		}
	}
	if (s == in->n_steps) {
		return; /* an about frame, nothing we asked for */
	}
	/* the echo names the pack; without one, the pack asked now */
	if (h->ack_addr >= 0) {
		pi = pack_index(in, (uint8_t)h->ack_addr);
	} else if (in_window) {
		pi = (int)in->pack;
	}
	if (pi < 0) {
		in->late_events++;
		in->stray_bytes += JK_PB_FRAME_LEN;
		return;
	}
	current = in_window && (unsigned)pi == in->pack;
	stamp = fifo_pop(&in->packs[pi].fifo[s]);
	if (stamp == 0) {
		/* older than anything we remember asking: not to be used */
		in->late_answers++;
		mark_late(in, now, (unsigned)pi, 0, "a frame answering no request in flight");
		return;
	}
	if (!current) {
		in->late_answers++;
		mark_late(in, now, (unsigned)pi, stamp, "a frame");
	}
	if (deliver(in, JK_PB_BLOCK_FRAME, h->frame, JK_PB_FRAME_LEN, (unsigned)pi, stamp) < 0) {
		if (current) {
			exchange_failed(in, now, -EBADMSG);
		}
		return;
	}
	if (current) {
		in->answer_stamp = stamp;
		exchange_done(in, now);
	}
}

/* polling, register method: one 0x03 answer */
static void poll_read_answer(struct serial_input *in, const struct jk_pb_bus_item *it,
			     uint64_t now)
{
	const struct modbus_step *st = NULL;
	int pi = pack_index(in, it->addr);
	unsigned s;
	uint64_t stamp;
	struct modbus_pack *p;

	for (s = 0; s < in->n_steps; s++) {
		if (!in->steps[s].trigger && it->len == (size_t)in->steps[s].count * 2) {
			st = &in->steps[s];
			break;
		}
	}
	if (!st || pi < 0) {
		in->late_events++;
		in->stray_bytes += it->len + 5;
		return;
	}
	p = &in->packs[pi];
	stamp = fifo_pop(&p->fifo[s]);
	if (!(in->phase == PHASE_WAIT && (unsigned)pi == in->pack && s == in->step) ||
	    stamp == 0) {
		/* late: its data would sit in an image of newer reads, dropped */
		in->late_answers++;
		mark_late(in, now, (unsigned)pi, stamp, "a register answer");
		return;
	}
	memcpy(in->image + st->offset, it->data, it->len);
	p->image_usec = st->offset == 0 || p->image_usec == 0 || stamp < p->image_usec
				? stamp
				: p->image_usec;
	if (st->kind >= 0) {
		size_t n = st->kind == JK_PB_BLOCK_SETTINGS_REGS ? JK_PB_SETTINGS_LEN
								  : JK_PB_DATA_LEN;
		uint64_t t = st->kind == JK_PB_BLOCK_SETTINGS_REGS ? stamp : p->image_usec;

		if (deliver(in, (unsigned)st->kind, in->image, n, (unsigned)pi, t) < 0) {
			exchange_failed(in, now, -EBADMSG);
			return;
		}
	}
	in->answer_stamp = stamp;
	exchange_done(in, now);
}

/* ---- listening --------------------------------------------------------------- */

/*
 * Listening: the packs are the master (DIP 0, pack 1) and bms.addresses
 * (packs 2...). A frame is attributed by jk_pb_heard_attribute(): the poll
 * it answered in time, checked against its write echo; unasked and with
 * no echo it is the master's own. It is dated by its poll.
 */
static void listen_heard(struct serial_input *in, const struct jk_pb_heard *h, uint64_t now)
{
	uint8_t addr;
	uint64_t stamp;
	int pi;

	if (jk_pb_heard_attribute(h, 0, &addr, &stamp) < 0) {
		in->collisions++;
		log_ratelimit(&in->rl_collision, now, LOG_WARNING,
			      "A frame for address %u came with the write echo of address %d "
			      "(a collision, a second master?), dropped",
			      h->poll_addr, h->ack_addr);
		return;
	}
	pi = pack_index(in, addr);
	if (pi < 0) {
		in->strangers++;
		if (addr < 16 && !(in->stranger_seen & (1u << addr))) {
			in->stranger_seen |= (uint16_t)(1u << addr);
			log_info("A pack at address %u is on the bus but not in bms.addresses, "
				 "ignored",
				 addr);
		}
		return;
	}
	if (h->frame[4] == JK_PB_FRAME_ABOUT) {
		return;
	}
	if (deliver(in, JK_PB_BLOCK_FRAME, h->frame, JK_PB_FRAME_LEN, (unsigned)pi, stamp) < 0) {
		in->bad_messages++;
		return;
	}
	in->packs[pi].heard_usec = now;
	in->packs[pi].heard_ever = true;
	pack_watch_answered(&in->packs[(unsigned)pi].w, LOG_MODULE, (unsigned)pi, now);
}

static void listen_tick(struct serial_input *in, uint64_t now)
{
	struct jk_pb_heard h;

	if (jk_pb_listen_flush(&in->lis, now, false, &h) > 0) {
		listen_heard(in, &h, now);
	}
	if (in->lis.polls == 0 && !in->no_master_said && now - in->open_usec > LISTEN_SILENT_USEC) {
		in->no_master_said = true;
		log_warning("No poll heard on %s in %.0f s: is a JK pack set to DIP address 0 "
			    "(the master) on this bus?",
			    in->base.ctx->cfg->port, (double)LISTEN_SILENT_USEC / USEC_PER_SEC);
	}
	for (unsigned i = 0; i < in->n_packs; i++) {
		struct modbus_pack *p = &in->packs[i];
		uint64_t since = p->heard_ever ? p->heard_usec : in->open_usec;

		if ((p->w.online || !p->w.silent_since_usec) && now - since > LISTEN_SILENT_USEC) {
			pack_watch_silent(&in->packs[i].w, LOG_MODULE, i, now,
					  i == 0 ? "(the DIP-0 master) not heard"
						 : "not heard on the bus");
		}
	}
}

/* ---- the byte stream ---------------------------------------------------------- */

static void handle_item(struct serial_input *in, const struct jk_pb_bus_item *it, uint64_t now)
{
	struct jk_pb_heard h;
	bool held = in->lis.held;

	if (it->kind == JK_PB_BUS_NOISE) {
		/* outside a window, anything but padding is a late (part of an) answer */
		if (it->addr != 0x00 && !in->listen && in->phase != PHASE_WAIT) {
			in->stray_bytes++;
			in->late_events++;
		}
		/* inside, bytes that make no answer: a bad one */
		if (it->addr != 0x00 && in->phase == PHASE_WAIT) {
			in->window_bytes++;
		}
		jk_pb_listen(&in->lis, it, now, &h);
		return;
	}
	if (in->listen) {
		if (jk_pb_listen(&in->lis, it, now, &h) > 0) {
			listen_heard(in, &h, now);
		}
		return;
	}
	switch (it->kind) {
	case JK_PB_BUS_READ_ANSWER:
		poll_read_answer(in, it, now);
		return;
	case JK_PB_BUS_EXCEPTION:
		if (in->phase == PHASE_WAIT && it->addr == in->packs[in->pack].w.addr) {
			fifo_pop(&in->packs[in->pack].fifo[in->step]);
			exchange_failed(in, now, -EIO);
		}
		return;
	case JK_PB_BUS_ACK:
		/* an echo with no frame before it: the frame was broken */
		if (!held && in->phase == PHASE_WAIT && it->addr == in->packs[in->pack].w.addr &&
		    it->reg == in->steps[in->step].reg) {
			jk_pb_listen(&in->lis, it, now, &h);
			fifo_pop(&in->packs[in->pack].fifo[in->step]);
			exchange_failed(in, now, -EBADMSG);
			return;
		}
		break;
	case JK_PB_BUS_WRITE:
	case JK_PB_BUS_READ:
		/* our own request, echoed by the adapter */
		return;
	case JK_PB_BUS_NOISE:
	case JK_PB_BUS_FRAME:
		break;
	}
	if (jk_pb_listen(&in->lis, it, now, &h) > 0) {
		poll_heard(in, &h, now);
	}
}

/* cut what has arrived into items; @final: nothing more will complete them */
static void consume(struct serial_input *in, uint64_t now, bool final)
{
	size_t off = 0;

	while (off < in->rx_len && in->phase != PHASE_CLOSED) {
		struct jk_pb_bus_item it;
		int k = jk_pb_bus_next(in->rx + off, in->rx_len - off, final, &it);

		if (k < 0) {
			break;
		}
		off += (size_t)k;
		handle_item(in, &it, now);
	}
	if (in->phase == PHASE_CLOSED) {
		return;
	}
	memmove(in->rx, in->rx + off, in->rx_len - off);
	in->rx_len -= off;
}

/*
 * Bytes from the port (src/serial.c), whenever they come: a late answer
 * must be seen at any time the port is open. They are cut into items at
 * once; every byte restarts the quiet before our next request.
 */
static void on_bytes(struct serial *s, const uint8_t *buf, size_t n, uint64_t now_usec,
		     void *userdata)
{
	struct serial_input *in = userdata;
	uint64_t now = input_now(in->base.ctx);

	(void)s;
	(void)now_usec;
	while (n > 0 && in->phase != PHASE_CLOSED) {
		size_t room, k;

		if (in->rx_len == sizeof(in->rx)) {
			consume(in, now, true);
		}
		room = sizeof(in->rx) - in->rx_len;
		k = n < room ? n : room;
		memcpy(in->rx + in->rx_len, buf, k);
		in->rx_len += k;
		buf += k;
		n -= k;
		/* real bus activity: the quiet before our next request starts again */
		in->quiet_since_usec = now;
		consume(in, now, false);
	}
	/* a gap under way waits for the bus to be quiet again */
	if (in->phase == PHASE_GAP) {
		start_exchange(in, now);
	}
}

/*
 * Read what the tty holds now (a timer may fire with the answer already
 * there). Return: bytes (through on_bytes()), or <0 when the port is closed
 * or was lost meanwhile.
 */
static ssize_t take_input(struct serial_input *in)
{
	if (!in->port || in->port_stale) {
		return -ENOTCONN;
	}
	return serial_read_now(in->port);
}

/* Send the current step's request now (the bus has been quiet long enough). */
static void send_request(struct serial_input *in, uint64_t now)
{
	const struct modbus_step *st = &in->steps[in->step];
	struct modbus_pack *p = &in->packs[in->pack];
	uint8_t req[JK_PB_REQUEST_MAX];
	struct jk_pb_heard h;
	size_t n;
	int r;

	/* anything that came in the meantime is taken first; then quiet again? */
	if (take_input(in) != 0) {
		if (in->phase == PHASE_GAP) {
			start_exchange(in, now);
		}
		return;
	}
	/* the bus is quiet: an incomplete item left is noise, a held frame no answer */
	consume(in, now, true);
	if (jk_pb_listen_flush(&in->lis, now, true, &h) > 0) {
		poll_heard(in, &h, now);
	}
	n = st->trigger ? jk_pb_build_trigger(p->w.addr, st->reg, req)
			: jk_pb_build_read(p->w.addr, st->reg, st->count, req);
	/* the request with its CRC (jk_pb_crc16()), queued whole or not at all */
	r = serial_write(in->port, req, n);
	if (r < 0) {
		log_ratelimit(&in->rl_bad, now, LOG_WARNING, "Cannot send to %s: %s",
			      in->base.ctx->cfg->port, strerror(-r));
		schedule_reopen(in, now, "write failed");
		return;
	}
	in->exchanges++;
	in->sent_bytes += n;
	/* the data this request brings back is as old as this moment */
	fifo_push(in, &p->fifo[in->step], now);
	in->window_bytes = 0;
	in->phase = PHASE_WAIT;
	arm_timer(in, now + in->timeout_usec);
}

static void start_exchange(struct serial_input *in, uint64_t now)
{
	uint64_t quiet = in->gap_usec;
	uint64_t due;

	/* after a failure: flush, a full response timeout of real quiet */
	if (in->flush && in->timeout_usec > quiet) {
		quiet = in->timeout_usec;
	}
	due = in->quiet_since_usec + quiet;
	in->phase = PHASE_GAP;
	/*
	 * Always through the timer, even when the gap is over: this may run
	 * inside consume(), whose buffer send_request() would read into.
	 */
	arm_timer(in, due > now ? due : now);
}

static void wait_over(struct serial_input *in, uint64_t now)
{
	struct jk_pb_heard h;

	/* last look: the answer may have come with the timer */
	if (take_input(in) < 0 || in->phase != PHASE_WAIT) {
		return;
	}
	/* the window is over: what is still incomplete will not complete in it */
	consume(in, now, true);
	if (in->phase != PHASE_WAIT) {
		return;
	}
	/* a frame whose echo never came is the answer (jkbms_pb.py only warns) */
	if (jk_pb_listen_flush(&in->lis, now, true, &h) > 0) {
		poll_heard(in, &h, now);
		if (in->phase != PHASE_WAIT) {
			return;
		}
	}
	/* nothing at all is a timeout; a part of an answer is a bad one */
	exchange_failed(in, now, in->window_bytes == 0 ? -ETIMEDOUT : -EBADMSG);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct serial_input *in = userdata;
	uint64_t now = input_now(in->base.ctx);

	switch (in->phase) {
	case PHASE_CLOSED:
		closed_tick(in, now);
		return 0;
	case PHASE_GAP:
		send_request(in, now);
		return 0;
	case PHASE_WAIT:
		wait_over(in, now);
		return 0;
	case PHASE_PROBE:
		if (take_input(in) >= 0 && in->phase == PHASE_PROBE) {
			probe_over(in, now);
		}
		return 0;
	case PHASE_LISTEN:
		if (take_input(in) >= 0 && in->phase == PHASE_LISTEN) {
			/* a quiet bus completes nothing more: what is left is noise */
			if (now - in->quiet_since_usec > in->timeout_usec) {
				consume(in, now, true);
			}
			listen_tick(in, now);
			arm_timer(in, now + LISTEN_TICK_USEC);
		}
		return 0;
	case PHASE_IDLE:
		return 0;
	}
	return 0;
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct serial_input *in = userdata;
	uint64_t now = input_now(in->base.ctx);

	if (in->phase == PHASE_IDLE) {
		in->pack = in->step = in->attempt = 0;
		start_exchange(in, now);
	} else if (in->phase != PHASE_CLOSED) {
		/* a round takes longer than poll_interval: the next starts when it ends */
		in->overruns++;
		in->round_pending = true;
	}
	return sd_event_source_set_time(s, usec + in->poll_usec);
}

static struct input *modbus_input_free(struct input *base)
{
	struct serial_input *in = base ? container_of(base, struct serial_input, base) : NULL;

	if (!in) {
		return NULL;
	}
	if (base->ctx->driver->serial) {
		return serial_engine_free(base);
	}
	in->poll = sd_event_source_disable_unref(in->poll);
	in->timer = sd_event_source_disable_unref(in->timer);
	in->port = serial_free(in->port);
	free(in);
	return NULL;
}

/* Over 80 lines: the set-up sequence with its one cleanup path. */
static int modbus_input_open(struct input_ctx *ctx, struct input **ret)
{
	const struct bms_config *c = ctx->cfg;
	struct serial_input *in;
	uint64_t now = input_now(ctx);
	unsigned first = 0;
	int r;

	/* every family but JK-PB: the generic exchange engine */
	if (ctx->driver->serial) {
		return serial_engine_open(ctx, ret);
	}
	if (!ctx->driver->decode_block) {
		return log_error_errno(-EINVAL, "BMS driver %s decodes no Modbus blocks",
				       ctx->driver->name);
	}
	in = calloc(1, sizeof(*in));
	if (!in) {
		return -ENOMEM;
	}
	in->base.ctx = ctx;
	in->phase = PHASE_CLOSED;
	in->baud = c->baud ? c->baud : ctx->driver->baud ? ctx->driver->baud : 115200;
	in->rl_timeout = (struct ratelimit)RATELIMIT_INIT(10 * USEC_PER_SEC, 5);
	in->rl_bad = (struct ratelimit)RATELIMIT_INIT(10 * USEC_PER_SEC, 5);
	in->rl_late = (struct ratelimit)RATELIMIT_INIT(60 * USEC_PER_SEC, 3);
	in->rl_collision = (struct ratelimit)RATELIMIT_INIT(60 * USEC_PER_SEC, 3);
	in->poll_usec = c->poll_interval_usec ? c->poll_interval_usec : MODBUS_DEFAULT_POLL_USEC;
	in->timeout_usec = c->response_timeout_usec ? c->response_timeout_usec
						    : MODBUS_DEFAULT_TIMEOUT_USEC;
	in->gap_usec = c->request_gap_usec ? c->request_gap_usec : MODBUS_DEFAULT_GAP_USEC;
	jk_pb_listener_init(&in->lis, in->timeout_usec);
	switch (c->read_method) {
	case JK_PB_READ_REGISTERS:
		in->steps = register_steps;
		in->n_steps = ARRAY_SIZE(register_steps);
		break;
	case JK_PB_READ_LISTEN:
		in->listen = true;
		in->steps = trigger_steps;
		in->n_steps = ARRAY_SIZE(trigger_steps);
		break;
	default:
		in->steps = trigger_steps;
		in->n_steps = ARRAY_SIZE(trigger_steps);
		break;
	}
	/*
	 * One pack per address, in the order given; none given: address 1.
	 * Listening: the DIP-0 master first, then the addresses given.
	 */
	if (in->listen) {
		in->packs[0].w.addr = 0;
		first = 1;
	}
	in->n_packs = first + (c->n_addresses ? c->n_addresses : in->listen ? 0 : 1);
	if (in->n_packs > BATTERY_PACKS_MAX) {
		log_warning("Listening reads the master and %u more packs at most, ignoring "
			    "address %u",
			    BATTERY_PACKS_MAX - 1, c->addresses[BATTERY_PACKS_MAX - 1]);
		in->n_packs = BATTERY_PACKS_MAX;
	}
	for (unsigned i = first; i < in->n_packs; i++) {
		in->packs[i].w.addr = c->n_addresses ? c->addresses[i - first] : 1;
	}
	ctx->state->pack_count = (uint8_t)in->n_packs;

	r = sd_event_add_time(ctx->event, &in->timer, CLOCK_MONOTONIC, 0, 1, on_timer, in);
	if (r >= 0) {
		sd_event_source_set_enabled(in->timer, SD_EVENT_OFF);
		sd_event_source_set_exit_on_failure(in->timer, true);
		/* the first round at once, then every poll_interval */
		if (!in->listen) {
			r = sd_event_add_time(ctx->event, &in->poll, CLOCK_MONOTONIC, now, 1,
					      on_poll, in);
		}
	}
	if (r < 0) {
		modbus_input_free(&in->base);
		return log_error_errno(r, "Failed to add Modbus timers: %s", strerror(-r));
	}
	if (in->poll) {
		sd_event_source_set_enabled(in->poll, SD_EVENT_ON);
		sd_event_source_set_exit_on_failure(in->poll, true);
	}

	/* a missing port is not fatal: src/serial.c retries until it appears */
	r = port_new(in, now);
	if (r < 0) {
		modbus_input_free(&in->base);
		return log_error_errno(r, "Cannot set up the BMS port %s: %s", c->port,
				       strerror(-r));
	}
	in->base.ops = &input_serial_ops;
	*ret = &in->base;
	return 0;
}

static void modbus_input_status(struct input *base, char *buf, size_t n)
{
	struct serial_input *in = container_of(base, struct serial_input, base);
	uint64_t now = input_now(in->base.ctx);
	unsigned online;
	char extra[64];
	int k;

	if (base->ctx->driver->serial) {
		serial_engine_status(base, buf, n);
		return;
	}
	online = pack_watch_summary(&in->packs[0].w, sizeof(in->packs[0]), in->n_packs, now, extra,
				    sizeof(extra));
	if (in->listen) {
		snprintf(buf, n, "%s listening %u/%u packs%s%s, %" PRIu64 " polls, %" PRIu64
			 " collisions, %" PRIu64 " sent",
			 in->base.ctx->driver->name, online, in->n_packs,
			 in->phase == PHASE_CLOSED ? " (port closed)" : "", extra, in->lis.polls,
			 in->collisions, in->sent_bytes);
		return;
	}
	k = snprintf(buf, n, "%s %u/%u packs%s%s, %" PRIu64 " errors/%" PRIu64 " timeouts",
		     in->base.ctx->driver->name, online, in->n_packs,
		     in->phase == PHASE_CLOSED ? " (port closed)" : "", extra, in->errors,
		     in->timeouts);
	if (k > 0 && (size_t)k < n && in->late_answers) {
		k += snprintf(buf + k, n - (size_t)k, ", %" PRIu64 " late", in->late_answers);
	}
	if (k > 0 && (size_t)k < n && in->reopens) {
		snprintf(buf + k, n - (size_t)k, ", %" PRIu64 " reopens", in->reopens);
	}
}

const struct input_ops input_serial_ops = {
	.name = "modbus",
	.open = modbus_input_open,
	.free = modbus_input_free,
	.status = modbus_input_status,
};
