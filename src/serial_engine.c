/* SPDX-License-Identifier: MIT */
/*
 * The generic serial exchange engine: one poller for every request/answer
 * BMS family (struct bms_serial_ops, the pure half in protocols/: JK-PB,
 * Pylontech RS485, Seplos V2 and V3, Pace ASCII and Modbus, JBD, Daly,
 * EG4 LifePower4 and EG4-LL). The tty is a port of src/serial.c (raw 8N1,
 * non-blocking, reopened with back-off when the device goes away); this
 * file owns the timing. Nothing here ever waits: the measured worst
 * stalls are in bench/serial-stall and bench/modbus-stall.
 *
 * One exchange at a time, per round every configured pack address and
 * every step of the driver:
 *
 *   IDLE --poll timer--> GAP --bus really quiet for request_gap--> WAIT
 *   (->request() written, timer = response_timeout) --its answer-->
 *   decode at the REQUEST's time, next step (GAP) ... --last step of the
 *   last pack--> IDLE
 *
 *   - The answer is looked for on every byte that arrives (and once more,
 *     with what the tty holds, when a timer fires): ->frame() for the
 *     exchange under way (-EBADMSG drops one byte: resynchronisation;
 *     -ENOMSG drops the well-formed answer of another address or step, or
 *     the echo of our own request on a two-wire bus), or ->identify() for
 *     families whose answers may come late (below).
 *   - "Quiet" is the bus's: every byte received restarts the gap before the
 *     next request; after a failed exchange the gap is a whole response
 *     timeout (a late answer has time to go by).
 *   - A failed exchange (timeout, bytes that make no answer, an answer whose
 *     content is impossible, the BMS's own error answer) is retried once;
 *     then the rest of that pack's steps are skipped for this round. An
 *     absent pack costs two response timeouts (and their gaps) per round.
 *   - REOPEN_AFTER failed exchanges in a row (a USB adapter that vanished
 *     leaves an fd that looks open), or a write the port refuses, close
 *     the port; it is reopened REOPEN_DELAY later. A hang-up or read error
 *     is src/serial.c's: it closes and reopens with its own back-off and
 *     tells us.
 *   - An answer of several frames (->answer_frames(), Daly 0x95 / 0x96)
 *     is complete when that many frames have been found; it is decoded
 *     whole (->decode_memo(), with the pack's word), within one response
 *     timeout. Frames beyond the count go by as stray bytes.
 *   - Data is dated by its request (->decode() gets the send time): it is
 *     never younger than the question it answers.
 *   - A pack going silent and coming back are logged once each (a reminder
 *     every PACK_WATCH_REMIND_USEC, src/pack_watch.c); its counters
 *     (answers, timeouts, bad answers) are in STATUS.
 *
 * Late answers (issue 11; families with ->identify(), JK-PB). A link that
 * buffers (serial over TCP, some USB adapters) can hand an answer over
 * seconds after its request, into the wait window of a later one. So the
 * bus is read at all times, and:
 *   - every request's send time is kept, per pack and step, in order
 *     (struct inflight); an answer, whenever it comes, is matched to the
 *     OLDEST request of its pack and step still unanswered, and its data
 *     is stamped with THAT request's time: a late answer goes stale in
 *     the safety layer by itself instead of passing as fresh. A part of a
 *     block read in pieces (->decode_part()) is dropped when late;
 *   - an answer that comes inside its window while older requests of the
 *     same pack and step are unanswered is ambiguous: either those were
 *     lost (a pack that was away and is back) or they are still coming (a
 *     late link). We then send nothing for a probe time (the spacing of
 *     the next unanswered request after the one matched, two response
 *     timeouts and a gap more: on a late link its answer comes then): if
 *     nothing more arrives, the older requests were lost and are
 *     forgotten; if their answers arrive, they are taken in order and the
 *     link is reported late. Limit: a link later than LATE_FIFO_MAX
 *     requests of one step (about 32 s at JK-PB's defaults) loses the
 *     oldest and could stamp its answers too young.
 *
 * JK-PB's listen-only method (it never sends) is not an exchange: it stays
 * in src/input_serial.c. No serial path uses libmodbus (its calls wait; a
 * single-threaded loop cannot): the engine frames RTU itself.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* every function below has its engine as `en`; the family names its module */
#define LOG_MODULE (en->module)
#include "adapter.h"
#include "bms.h"
#include "log.h"
#include "macro.h"
#include "pack_watch.h"
#include "serial.h"
#include "serial_engine.h"

#define ENGINE_DEFAULT_POLL_USEC (2 * USEC_PER_SEC)
#define ENGINE_DEFAULT_TIMEOUT_USEC (200 * USEC_PER_MSEC)
#define ENGINE_DEFAULT_GAP_USEC (100 * USEC_PER_MSEC)
#define REOPEN_AFTER 8 /* failed exchanges in a row (jkbms_pb.py _RECYCLE_THRESHOLD) */
#define REOPEN_DELAY_USEC (2 * USEC_PER_SEC)
#define RX_MAX 4096	 /* twice the longest answer of any family, and some noise */
#define REQUEST_MAX 64	 /* longest request of any family (Pylontech ~20 bytes) */
#define LATE_FIFO_MAX 32 /* unanswered requests remembered per pack and step */

enum engine_phase {
	ENGINE_CLOSED, /* port not open */
	ENGINE_IDLE,   /* between rounds */
	ENGINE_GAP,    /* waiting for the bus to be quiet before sending */
	ENGINE_WAIT,   /* request sent, collecting its answer */
	ENGINE_PROBE,  /* ->identify(): an ambiguous answer, listening for older ones */
};

/* send times of the requests of one pack and step not answered yet, oldest first */
struct inflight {
	uint64_t usec[LATE_FIFO_MAX];
	unsigned head, len;
};

struct engine_pack {
	struct pack_watch w;		 /* address, online, silence (src/pack_watch.c) */
	bool failed;			 /* this round: an exchange failed twice */
	uint64_t round_usec;		 /* this round: its first request went out then */
	uint64_t answers, timeouts, bad; /* bad: checksum, framing, content, error answer */
	uint32_t memo;			 /* the driver's word (->answer_frames()), 0 when silent */
	struct bms_serial_part part;	 /* ->decode_part(): the block read in parts */
};

struct serial_engine {
	struct input base;
	const struct bms_serial_ops *ops;
	const char *module; /* LOG_MODULE: ops->log_module or "bms_serial" */
	struct serial *port;
	sd_event_source *timer; /* gap, response timeout, probe, reopen */
	sd_event_source *poll;	/* one round every poll_interval */

	enum engine_phase phase;
	unsigned pack, step, attempt;
	bool round_pending;
	bool flush;

	uint8_t rx[RX_MAX];
	size_t rx_len;
	size_t ans_len;	     /* rx[0, ans_len): the frames of a several-frame answer so far */
	unsigned ans_frames; /* ... how many */
	unsigned ans_want;   /* frames that make the current answer (1 for most) */
	size_t window_bytes; /* bytes of this wait window that made no answer */
	uint64_t quiet_since_usec;
	uint64_t request_usec; /* the current request went out then */

	/* ->identify() only */
	struct inflight *fifo;	/* [pack * n_steps + step] */
	uint64_t answer_stamp;	/* the request time the last answer took */
	uint64_t late_events;	/* late answers and stray bytes, all told */
	uint64_t late_at_probe; /* ... when the probe began */
	unsigned probe_pack, probe_step;

	uint64_t poll_usec, timeout_usec, gap_usec;
	uint32_t baud;
	unsigned n_packs;
	struct engine_pack packs[BATTERY_PACKS_MAX];

	unsigned consecutive_failures;
	uint64_t exchanges, reopens, overruns, stray_bytes;
	uint64_t late_answers, forgotten, fifo_overflows;
	struct ratelimit rl_timeout, rl_bad, rl_late;
};

static const struct input_ops engine_input_ops;
static void next_exchange(struct serial_engine *en, uint64_t now);
static void reopen(struct serial_engine *en, uint64_t now, const char *why);

static int arm_timer(struct serial_engine *en, uint64_t when)
{
	int r = sd_event_source_set_time(en->timer, when);

	if (r >= 0) {
		r = sd_event_source_set_enabled(en->timer, SD_EVENT_ONESHOT);
	}
	return r;
}

static const char *step_name(const struct serial_engine *en, unsigned step, char *buf, size_t n)
{
	if (en->ops->step_names) {
		return en->ops->step_names[step];
	}
	snprintf(buf, n, "step %u", step);
	return buf;
}

/* ---- late answers (->identify()) ---------------------------------------------- */

static struct inflight *fifo_of(struct serial_engine *en, unsigned pack, unsigned step)
{
	return &en->fifo[pack * en->ops->n_steps + step];
}

static void fifo_push(struct serial_engine *en, struct inflight *f, uint64_t t)
{
	if (f->len == LATE_FIFO_MAX) {
		/* the oldest goes: see the limit at the top */
		f->head = (f->head + 1) % LATE_FIFO_MAX;
		f->len--;
		en->fifo_overflows++;
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

static void mark_late(struct serial_engine *en, uint64_t now, unsigned pack, unsigned step,
		      uint64_t stamp, bool taken)
{
	char name[32];

	en->late_answers++;
	en->late_events++;
	if (!stamp) {
		log_ratelimit(&en->rl_late, now, LOG_WARNING,
			      "Late answer on the bus: %s of pack address %u answering no request "
			      "in flight (a buffering link?), dropped",
			      step_name(en, step, name, sizeof(name)), en->packs[pack].w.addr);
		return;
	}
	log_ratelimit(&en->rl_late, now, LOG_WARNING,
		      "Late answer on the bus: %s of pack address %u, %.1f s after its request "
		      "(a buffering link?); %s",
		      step_name(en, step, name, sizeof(name)), en->packs[pack].w.addr,
		      (double)(now - stamp) / USEC_PER_SEC,
		      taken ? "its data is dated by the request" : "dropped");
}

/* ---- the round ------------------------------------------------------------------ */

static void end_round(struct serial_engine *en, uint64_t now)
{
	en->phase = ENGINE_IDLE;
	en->pack = en->step = en->attempt = 0;
	sd_event_source_set_enabled(en->timer, SD_EVENT_OFF);
	if (en->round_pending) {
		en->round_pending = false;
		en->phase = ENGINE_GAP;
		next_exchange(en, now);
	}
}

/*
 * A family that sends no limits (driver->no_limits): "no limit from this
 * pack", dated by the round that read it, so that only the configured caps
 * and the cell rules of the safety layer limit it.
 */
static void mark_no_limits(struct serial_engine *en, unsigned i, uint64_t usec)
{
	struct battery_pack *bp = &en->base.ctx->state->packs[i];

	bp->charge_voltage_limit_mv = UINT32_MAX;
	bp->discharge_voltage_limit_mv = 0;
	bp->charge_current_limit_ma = UINT32_MAX;
	bp->discharge_current_limit_ma = UINT32_MAX;
	battery_pack_mark(bp, BATTERY_GROUP_LIMITS, usec);
	input_updated(en->base.ctx);
}

/* the pack's round is over: say how it went, on to the next or end the round */
static void pack_done(struct serial_engine *en, uint64_t now)
{
	struct engine_pack *p = &en->packs[en->pack];

	if (p->failed) {
		p->memo = 0; /* a BMS put back may count its cells differently */
		pack_watch_silent(&p->w, LOG_MODULE, en->pack, now, "not answering");
	} else {
		if (en->base.ctx->driver->no_limits && p->round_usec) {
			mark_no_limits(en, en->pack, p->round_usec);
		}
		pack_watch_answered(&p->w, LOG_MODULE, en->pack, now);
	}
	p->failed = false;
	p->round_usec = 0;
	en->step = 0;
	en->attempt = 0;
	en->pack++;
	if (en->pack >= en->n_packs) {
		end_round(en, now);
		return;
	}
	next_exchange(en, now);
}

/*
 * Arm the gap before the current (pack, step) request: the bus must have
 * been quiet for request_gap (a whole response timeout after a failure).
 * Always through the timer, even when the gap is over already: this may
 * run inside a scan of the receive buffer, which send_request() reads into.
 */
static void next_exchange(struct serial_engine *en, uint64_t now)
{
	uint64_t quiet = en->gap_usec;
	uint64_t due;

	if (en->flush && en->timeout_usec > quiet) {
		quiet = en->timeout_usec;
	}
	due = en->quiet_since_usec + quiet;
	en->phase = ENGINE_GAP;
	arm_timer(en, due > now ? due : now);
}

static void advance(struct serial_engine *en, uint64_t now)
{
	en->attempt = 0;
	en->step++;
	if (en->step >= en->ops->n_steps) {
		pack_done(en, now);
		return;
	}
	next_exchange(en, now);
}

/* drop the answer being assembled; ->identify() families keep their stream */
static void forget_answer(struct serial_engine *en)
{
	if (!en->ops->identify) {
		en->rx_len = 0;
	}
	en->ans_len = 0;
	en->ans_frames = 0;
}

static void exchange_failed(struct serial_engine *en, uint64_t now, int err)
{
	struct engine_pack *p = &en->packs[en->pack];
	char name[32];

	sd_event_source_set_enabled(en->timer, SD_EVENT_OFF);
	en->quiet_since_usec = now;
	en->flush = true;
	forget_answer(en);
	if (err == -ETIMEDOUT) {
		p->timeouts++;
	} else {
		p->bad++;
	}
	/*
	 * A pack answering until now: say what went wrong (an absent pack's
	 * timeouts must not hide a bad answer of another one: two limits). A
	 * pack known silent: its failures are counted in STATUS, not logged.
	 */
	if (p->w.silent_since_usec && err == -ETIMEDOUT) {
		log_debug("Pack address %u, %s: still silent", p->w.addr,
			  step_name(en, en->step, name, sizeof(name)));
	} else {
		log_ratelimit(err == -ETIMEDOUT ? &en->rl_timeout : &en->rl_bad, now, LOG_WARNING,
			      "Pack address %u, %s: %s (%zu bytes)%s", p->w.addr,
			      step_name(en, en->step, name, sizeof(name)), strerror(-err),
			      en->window_bytes, en->attempt == 0 ? ", retrying" : "");
	}
	if (++en->consecutive_failures >= REOPEN_AFTER) {
		reopen(en, now, "too many failed exchanges in a row");
		return;
	}
	if (en->attempt == 0) {
		en->attempt = 1;
		next_exchange(en, now);
		return;
	}
	/* twice: the rest of this pack's steps wait for the next round */
	p->failed = true;
	pack_done(en, now);
}

static void exchange_done(struct serial_engine *en, uint64_t now)
{
	sd_event_source_set_enabled(en->timer, SD_EVENT_OFF);
	en->packs[en->pack].answers++;
	en->consecutive_failures = 0;
	en->quiet_since_usec = now;
	en->flush = false;
	if (en->fifo && fifo_of(en, en->pack, en->step)->len > 0) {
		/*
		 * Older requests of this pack and step are unanswered: lost, or
		 * still on their way. On a late link the next one's answer
		 * follows this one's as far apart as the two requests were:
		 * listen that long, and two response timeouts and a gap more.
		 */
		struct inflight *f = fifo_of(en, en->pack, en->step);
		uint64_t next = f->usec[f->head];
		uint64_t spacing = next > en->answer_stamp ? next - en->answer_stamp : 0;

		en->phase = ENGINE_PROBE;
		en->probe_pack = en->pack;
		en->probe_step = en->step;
		en->late_at_probe = en->late_events;
		arm_timer(en, now + spacing + 2 * en->timeout_usec + en->gap_usec);
		return;
	}
	advance(en, now);
}

static void probe_over(struct serial_engine *en, uint64_t now)
{
	struct inflight *f = fifo_of(en, en->probe_pack, en->probe_step);

	if (en->late_events == en->late_at_probe) {
		/* nothing came: those requests were never answered */
		en->forgotten += f->len;
		f->len = 0;
	}
	advance(en, now);
}

/* decode a complete answer of (@pack, @step) dated @stamp. Return: 1 the state changed, 0, <0 */
static int decode(struct serial_engine *en, unsigned pack, unsigned step, const uint8_t *ans,
		  size_t len, uint64_t stamp)
{
	struct input_ctx *ctx = en->base.ctx;
	struct engine_pack *p = &en->packs[pack];
	int r;

	if (en->ops->decode_part) {
		return en->ops->decode_part(step, ans, len, pack, stamp, ctx->state, &p->part);
	}
	if (en->ops->decode_memo) {
		r = en->ops->decode_memo(step, ans, len, pack, stamp, ctx->state, &p->memo);
	} else {
		r = en->ops->decode(step, ans, len, pack, stamp, ctx->state);
	}
	return r < 0 ? r : 1;
}

static int pack_index(const struct serial_engine *en, int addr)
{
	for (unsigned i = 0; i < en->n_packs; i++) {
		if (en->packs[i].w.addr == addr) {
			return (int)i;
		}
	}
	return -1;
}

/* ->identify(): one item of the bus, @len bytes at @ans, whenever it came */
static void take_item(struct serial_engine *en, const struct bms_serial_item *it,
		      const uint8_t *ans, size_t len, uint64_t now)
{
	bool waiting = en->phase == ENGINE_WAIT;
	bool current;
	uint64_t stamp;
	int pi, r;

	if (it->other) {
		return;
	}
	if (it->error) {
		/* an error answer names its pack, not always its step: the one asked now */
		if (waiting && (it->addr < 0 || it->addr == en->packs[en->pack].w.addr) &&
		    (it->step < 0 || (unsigned)it->step == en->step)) {
			fifo_pop(fifo_of(en, en->pack, en->step));
			exchange_failed(en, now, it->error);
		}
		return;
	}
	/* an answer naming no pack is the pack's asked now, if it is the step asked */
	if (it->addr >= 0) {
		pi = pack_index(en, it->addr);
	} else {
		pi = waiting && it->step == (int)en->step ? (int)en->pack : -1;
	}
	if (pi < 0 || it->step < 0 || (unsigned)it->step >= en->ops->n_steps) {
		en->late_events++;
		en->stray_bytes += len;
		return;
	}
	current = waiting && (unsigned)pi == en->pack && (unsigned)it->step == en->step;
	stamp = fifo_pop(fifo_of(en, (unsigned)pi, (unsigned)it->step));
	if (!current || stamp == 0) {
		/* late: dated by its own request; a part of a block is dropped */
		bool take = stamp != 0 && !en->ops->decode_part;

		mark_late(en, now, (unsigned)pi, (unsigned)it->step, stamp, take);
		if (take && decode(en, (unsigned)pi, (unsigned)it->step, ans, len, stamp) > 0) {
			input_updated(en->base.ctx);
		}
		return;
	}
	r = decode(en, (unsigned)pi, en->step, ans, len, stamp);
	if (r < 0) {
		exchange_failed(en, now, r);
		return;
	}
	if (r > 0) {
		input_updated(en->base.ctx);
	}
	en->answer_stamp = stamp;
	exchange_done(en, now);
}

/* ->identify(): cut what has arrived into items; @final: nothing more will complete them */
static void scan_items(struct serial_engine *en, uint64_t now, bool final)
{
	size_t off = 0;

	while (off < en->rx_len && en->phase != ENGINE_CLOSED) {
		struct bms_serial_item it;
		ssize_t k = en->ops->identify(en->rx + off, en->rx_len - off, final, &it);

		if (k == 0) {
			break;
		}
		if (k < 0) {
			/* a byte that begins nothing: in a window a bad answer, outside stray */
			if (en->phase == ENGINE_WAIT) {
				en->window_bytes++;
			} else {
				en->stray_bytes++;
				en->late_events++;
			}
			off++;
			continue;
		}
		if ((size_t)k > en->rx_len - off) {
			k = (ssize_t)(en->rx_len - off);
		}
		take_item(en, &it, en->rx + off, (size_t)k, now);
		off += (size_t)k;
	}
	if (en->phase == ENGINE_CLOSED) {
		return; /* the port was closed meanwhile: rx is gone */
	}
	memmove(en->rx, en->rx + off, en->rx_len - off);
	en->rx_len -= off;
}

/* ->frame(): look for the current exchange's answer in what has arrived */
static void scan(struct serial_engine *en, uint64_t now)
{
	struct input_ctx *ctx = en->base.ctx;
	struct engine_pack *p = &en->packs[en->pack];

	while (en->rx_len > en->ans_len && en->phase == ENGINE_WAIT) {
		uint8_t *at = en->rx + en->ans_len;
		size_t left = en->rx_len - en->ans_len;
		size_t skip = 0, drop;
		ssize_t k = en->ops->frame(en->step, p->w.addr, at, left, &skip);
		int r;

		if (k == 0) {
			return; /* more bytes to come */
		}
		if (k > 0) {
			/* a several-frame answer (->answer_frames()): keep its frames, wait for the rest */
			en->ans_len += (size_t)k;
			if (++en->ans_frames < en->ans_want) {
				continue;
			}
			k = (ssize_t)en->ans_len;
			r = decode(en, en->pack, en->step, en->rx, (size_t)k, en->request_usec);
			memmove(en->rx, en->rx + k, en->rx_len - (size_t)k);
			en->rx_len -= (size_t)k;
			en->ans_len = 0;
			en->ans_frames = 0;
			if (r < 0) {
				exchange_failed(en, now, r);
				return;
			}
			input_updated(ctx);
			exchange_done(en, now);
			return;
		}
		if (k == -ENOMSG && skip > 0) {
			drop = skip < left ? skip : left;
		} else {
			drop = 1; /* -EBADMSG: resynchronise byte by byte */
			en->window_bytes++;
		}
		memmove(at, at + drop, left - drop);
		en->rx_len -= drop;
	}
}

static void on_read(struct serial *s, const uint8_t *buf, size_t n, uint64_t now_usec,
		    void *userdata)
{
	struct serial_engine *en = userdata;
	uint64_t now = input_now(en->base.ctx);

	(void)s;
	(void)now_usec;
	/* real bus activity: the quiet before our next request starts again */
	en->quiet_since_usec = now;
	if (en->ops->identify) {
		/* the bus is read at all times: a late answer counts whenever it comes */
		while (n > 0 && en->phase != ENGINE_CLOSED) {
			size_t room, k;

			if (en->rx_len == sizeof(en->rx)) {
				scan_items(en, now, true);
			}
			room = sizeof(en->rx) - en->rx_len;
			k = n < room ? n : room;
			memcpy(en->rx + en->rx_len, buf, k);
			en->rx_len += k;
			buf += k;
			n -= k;
			scan_items(en, now, false);
		}
	} else if (en->phase != ENGINE_WAIT) {
		en->stray_bytes += n;
	} else {
		while (n > 0 && en->phase == ENGINE_WAIT) {
			size_t room = sizeof(en->rx) - en->rx_len;
			size_t k = n < room ? n : room;

			if (k == 0) {
				/* a babbling line fills the buffer with no answer in it */
				en->window_bytes += en->rx_len;
				en->rx_len = 0;
				en->ans_len = 0;
				en->ans_frames = 0;
				continue;
			}
			memcpy(en->rx + en->rx_len, buf, k);
			en->rx_len += k;
			buf += k;
			n -= k;
			scan(en, now);
		}
		/* what came after the answer, in the same read, belongs to no request */
		en->stray_bytes += n;
	}
	/* a gap under way waits for the bus to be quiet again */
	if (en->phase == ENGINE_GAP) {
		next_exchange(en, now);
	}
}

/*
 * Read what the tty holds now (a timer may fire with the answer already
 * there). Return: bytes (through on_read()), or <0 when the port is closed
 * or was lost meanwhile.
 */
static ssize_t take_input(struct serial_engine *en)
{
	if (!en->port) {
		return -ENOTCONN;
	}
	return serial_read_now(en->port);
}

/* the gap is over: send the current step's request, or skip a step the driver skips */
static void send_request(struct serial_engine *en, uint64_t now)
{
	struct engine_pack *p = &en->packs[en->pack];
	uint8_t req[REQUEST_MAX];
	char name[32];
	ssize_t n;
	int r;

	/* anything that came in the meantime is taken first; then quiet again? */
	if (take_input(en) != 0) {
		return;
	}
	if (en->ops->identify) {
		/* the bus is quiet: an incomplete item left is noise, a frame alone an answer */
		scan_items(en, now, true);
		if (en->phase != ENGINE_GAP) {
			return;
		}
	}
	for (;;) {
		n = en->ops->request(en->step, p->w.addr, req, sizeof(req));
		en->ans_want = 1;
		if (n > 0 && en->ops->answer_frames) {
			en->ans_want = en->ops->answer_frames(en->step, p->memo);
			if (en->ans_want == 0) {
				n = 0; /* the driver skips this step this round */
			}
		}
		if (n != 0) {
			break;
		}
		if (++en->step >= en->ops->n_steps) {
			pack_done(en, now);
			return;
		}
	}
	if (n < 0) {
		log_error("BMS driver %s: no request for %s (%s)", en->base.ctx->driver->name,
			  step_name(en, en->step, name, sizeof(name)), strerror((int)-n));
		exchange_failed(en, now, (int)n);
		return;
	}
	if (!en->ops->identify) {
		/* what is left of earlier answers is late or noise: not this one's */
		en->stray_bytes += en->rx_len;
		en->rx_len = 0;
	}
	en->ans_len = 0;
	en->ans_frames = 0;
	/* the request whole, with its checksum, or not at all */
	r = serial_write(en->port, req, (size_t)n);
	if (r < 0) {
		log_ratelimit(&en->rl_bad, now, LOG_WARNING, "Cannot send to %s: %s",
			      en->base.ctx->cfg->port, strerror(-r));
		reopen(en, now, "write failed");
		return;
	}
	en->exchanges++;
	/* the data this request brings back is as old as this moment */
	en->request_usec = now;
	if (en->fifo) {
		fifo_push(en, fifo_of(en, en->pack, en->step), now);
	}
	if (!p->round_usec) {
		p->round_usec = now;
	}
	en->window_bytes = 0;
	en->phase = ENGINE_WAIT;
	arm_timer(en, now + en->timeout_usec);
}

/* the response timeout: a last look at the tty, then the exchange failed */
static void wait_over(struct serial_engine *en, uint64_t now)
{
	if (take_input(en) < 0 || en->phase != ENGINE_WAIT) {
		return;
	}
	if (en->ops->identify) {
		/* the window is over: what is incomplete will not complete in it */
		scan_items(en, now, true);
		if (en->phase != ENGINE_WAIT) {
			return;
		}
	}
	/* nothing at all is a timeout; a part of an answer a bad one */
	exchange_failed(en, now, en->window_bytes == 0 && en->rx_len == 0 ? -ETIMEDOUT : -EBADMSG);
}

static void on_port(struct serial *s, bool open, void *userdata)
{
	struct serial_engine *en = userdata;
	struct input_ctx *ctx = en->base.ctx;
	uint64_t now = input_now(ctx);

	(void)s;
	en->rx_len = 0;
	en->ans_len = 0;
	en->ans_frames = 0;
	sd_event_source_set_enabled(en->timer, SD_EVENT_OFF);
	if (open) {
		en->phase = ENGINE_IDLE;
		en->consecutive_failures = 0;
		en->quiet_since_usec = now;
		log_info("BMS port %s open, %" PRIu32 " 8N1, %u pack%s%s%s", ctx->cfg->port,
			 en->baud, en->n_packs, en->n_packs == 1 ? "" : "s",
			 en->ops->method ? ", " : "", en->ops->method ? en->ops->method : "");
	} else {
		if (s) {
			/* src/serial.c lost the line and reopens it with its back-off */
			log_warning("Reopening BMS port %s: %s", ctx->cfg->port,
				    "the line is gone");
			en->reopens++;
		}
		en->phase = ENGINE_CLOSED;
		for (unsigned i = 0; i < en->n_packs; i++) {
			en->packs[i].w.online = false;
		}
	}
	en->pack = en->step = en->attempt = 0;
	en->round_pending = false;
	if (ctx->open != open) {
		ctx->open = open;
		input_port_changed(ctx);
	}
}

static int port_new(struct serial_engine *en)
{
	const struct serial_config sc = {
		.path = en->base.ctx->cfg->port,
		.baud = en->baud,
		.rs485 = true,
	};
	int r = serial_new(en->base.ctx->event, &sc, on_read, on_port, en, &en->port);

	if (r < 0) {
		return r;
	}
	if (serial_is_open(en->port)) {
		on_port(en->port, true, en);
	}
	return 0;
}

/*
 * The line looks open but nothing answers, or a write failed: close it,
 * reopen it a little later. src/serial.c lets its port go from inside its
 * own read callback (the memory goes when that returns).
 */
static void reopen(struct serial_engine *en, uint64_t now, const char *why)
{
	log_warning("Reopening BMS port %s: %s", en->base.ctx->cfg->port, why);
	en->port = serial_free(en->port);
	on_port(NULL, false, en);
	en->reopens++;
	arm_timer(en, now + REOPEN_DELAY_USEC);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct serial_engine *en = userdata;
	uint64_t now = input_now(en->base.ctx);

	(void)s;
	(void)usec;
	switch (en->phase) {
	case ENGINE_CLOSED:
		if (!en->port && port_new(en) < 0) {
			arm_timer(en, now + REOPEN_DELAY_USEC);
		}
		return 0;
	case ENGINE_GAP:
		send_request(en, now);
		return 0;
	case ENGINE_WAIT:
		wait_over(en, now);
		return 0;
	case ENGINE_PROBE:
		if (take_input(en) >= 0 && en->phase == ENGINE_PROBE) {
			probe_over(en, now);
		}
		return 0;
	case ENGINE_IDLE:
		return 0;
	}
	return 0;
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct serial_engine *en = userdata;
	uint64_t now = input_now(en->base.ctx);

	if (en->phase == ENGINE_IDLE) {
		en->pack = en->step = en->attempt = 0;
		next_exchange(en, now);
	} else if (en->phase != ENGINE_CLOSED) {
		/* a round longer than poll_interval: the next starts when it ends */
		en->overruns++;
		en->round_pending = true;
	}
	return sd_event_source_set_time(s, usec + en->poll_usec);
}

static struct input *engine_free(struct input *base)
{
	struct serial_engine *en = base ? container_of(base, struct serial_engine, base) : NULL;

	if (!en) {
		return NULL;
	}
	en->poll = sd_event_source_disable_unref(en->poll);
	en->timer = sd_event_source_disable_unref(en->timer);
	en->port = serial_free(en->port);
	for (unsigned i = 0; i < BATTERY_PACKS_MAX; i++) {
		free(en->packs[i].part.bytes);
	}
	free(en->fifo);
	free(en);
	return NULL;
}

/* Over 60 lines: the set-up sequence with its one cleanup path. */
int serial_engine_open(struct input_ctx *ctx, const struct bms_serial_ops *ops, struct input **ret)
{
	const struct bms_config *c = ctx->cfg;
	struct serial_engine *en;
	uint64_t now = input_now(ctx);
	int r = 0;

	if (!ops || ops->n_steps == 0 || ops->answer_max > RX_MAX / 2 ||
	    (!ops->identify && !ops->frame) || (ops->decode_part && !ops->part_size)) {
		return log_internal(LOG_ERR, -EINVAL, "bms_serial",
				    "BMS driver %s has no serial round", ctx->driver->name);
	}
	en = calloc(1, sizeof(*en));
	if (!en) {
		return -ENOMEM;
	}
	en->base.ctx = ctx;
	en->base.ops = &engine_input_ops;
	en->ops = ops;
	en->module = ops->log_module ? ops->log_module : "bms_serial";
	en->phase = ENGINE_CLOSED;
	en->rl_timeout = (struct ratelimit)RATELIMIT_INIT(10 * USEC_PER_SEC, 5);
	en->rl_bad = (struct ratelimit)RATELIMIT_INIT(10 * USEC_PER_SEC, 5);
	en->rl_late = (struct ratelimit)RATELIMIT_INIT(60 * USEC_PER_SEC, 3);
	en->poll_usec = c->poll_interval_usec ? c->poll_interval_usec : ENGINE_DEFAULT_POLL_USEC;
	en->timeout_usec = c->response_timeout_usec ? c->response_timeout_usec
						    : ENGINE_DEFAULT_TIMEOUT_USEC;
	en->gap_usec = c->request_gap_usec ? c->request_gap_usec : ENGINE_DEFAULT_GAP_USEC;
	en->baud = c->baud ? c->baud : ops->baud;
	/* one pack per address, in the order given; none given: the first valid one */
	en->n_packs = c->n_addresses ? c->n_addresses : 1;
	for (unsigned i = 0; i < en->n_packs; i++) {
		en->packs[i].w.addr = c->n_addresses ? c->addresses[i] : ops->address_min;
		if (ops->part_size) {
			en->packs[i].part.bytes = calloc(1, ops->part_size);
			r = en->packs[i].part.bytes ? 0 : -ENOMEM;
		}
	}
	if (r >= 0 && ops->identify) {
		en->fifo = calloc((size_t)en->n_packs * ops->n_steps, sizeof(*en->fifo));
		r = en->fifo ? 0 : -ENOMEM;
	}
	ctx->state->pack_count = (uint8_t)en->n_packs;

	if (r >= 0) {
		r = sd_event_add_time(ctx->event, &en->timer, CLOCK_MONOTONIC, 0, 1, on_timer, en);
	}
	if (r >= 0) {
		sd_event_source_set_enabled(en->timer, SD_EVENT_OFF);
		sd_event_source_set_exit_on_failure(en->timer, true);
		/* the first round at once, then every poll_interval */
		r = sd_event_add_time(ctx->event, &en->poll, CLOCK_MONOTONIC, now, 1, on_poll, en);
	}
	if (r >= 0) {
		sd_event_source_set_enabled(en->poll, SD_EVENT_ON);
		sd_event_source_set_exit_on_failure(en->poll, true);
		/* a missing port is not fatal: src/serial.c retries until it appears */
		r = port_new(en);
	}
	if (r < 0) {
		engine_free(&en->base);
		return log_internal(LOG_ERR, r, "bms_serial", "Cannot set up the BMS port %s: %s",
				    c->port, strerror(-r));
	}
	log_info("BMS %s on %s, %" PRIu32 " 8N1, %u pack%s", ctx->driver->name, c->port, en->baud,
		 en->n_packs, en->n_packs == 1 ? "" : "s");
	*ret = &en->base;
	return 0;
}

static void engine_status(struct input *base, char *buf, size_t n)
{
	struct serial_engine *en = container_of(base, struct serial_engine, base);
	uint64_t now = input_now(en->base.ctx);
	uint64_t answers = 0, timeouts = 0, bad = 0;
	unsigned online;
	char extra[64];
	int k;

	for (unsigned i = 0; i < en->n_packs; i++) {
		const struct engine_pack *p = &en->packs[i];

		answers += p->answers;
		timeouts += p->timeouts;
		bad += p->bad;
	}
	online = pack_watch_summary(&en->packs[0].w, sizeof(en->packs[0]), en->n_packs, now, extra,
				    sizeof(extra));
	k = snprintf(buf, n,
		     "%s %u/%u packs%s%s, %" PRIu64 " answers/%" PRIu64 " timeouts/%" PRIu64 " bad",
		     en->base.ctx->driver->name, online, en->n_packs,
		     en->phase == ENGINE_CLOSED ? " (port closed)" : "", extra, answers, timeouts,
		     bad);
	if (k > 0 && (size_t)k < n && en->late_answers) {
		k += snprintf(buf + k, n - (size_t)k, ", %" PRIu64 " late", en->late_answers);
	}
	if (k > 0 && (size_t)k < n && en->reopens) {
		snprintf(buf + k, n - (size_t)k, ", %" PRIu64 " reopens", en->reopens);
	}
}

static const struct input_ops engine_input_ops = {
	.name = "serial",
	.free = engine_free,
	.status = engine_status,
};
