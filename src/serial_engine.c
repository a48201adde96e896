/* SPDX-License-Identifier: MIT */
/*
 * The generic serial exchange engine: one poller for every request/answer
 * BMS family whose driver has ->serial (struct bms_serial_ops, the pure
 * half in protocols/: Pylontech RS485, Seplos V2 and V3, Pace, JBD, Daly).
 * The tty is a port of src/serial.c (raw 8N1, non-blocking, reopened with
 * back-off when the device goes away); this file owns the timing.
 *
 * One exchange at a time, per round every configured pack address and
 * every step of the driver:
 *
 *   IDLE --poll timer--> GAP --bus really quiet for request_gap--> WAIT
 *   (->request() written, timer = response_timeout) --->frame() says
 *   complete--> ->decode() at the REQUEST's time, next step (GAP) ...
 *   --last step of the last pack--> IDLE
 *
 *   - The answer is looked for with ->frame() on every byte that arrives
 *     (a bounded wait: nothing here ever blocks): -EBADMSG drops one byte
 *     (resynchronisation), -ENOMSG drops the well-formed answer of another
 *     address or step, or the echo of our own request on a two-wire bus.
 *   - "Quiet" is the bus's: every byte received restarts the gap before the
 *     next request; after a failed exchange the gap is a whole response
 *     timeout (a late answer has time to go by).
 *   - A failed exchange (timeout, bytes that make no answer, an answer whose
 *     content is impossible, the BMS's own error answer) is retried once;
 *     then the rest of that pack's steps are skipped for this round. An
 *     absent pack costs two response timeouts (and their gaps) per round.
 *   - REOPEN_AFTER failed exchanges in a row (a USB adapter that vanished
 *     leaves an fd that looks open) close the port; it is reopened
 *     REOPEN_DELAY later. A hang-up or read error is src/serial.c's: it
 *     closes and reopens with its own back-off and tells us.
 *   - An answer of several frames (->answer_frames(), Daly 0x95 / 0x96)
 *     is complete when that many frames have been found; it is decoded
 *     whole (->decode_memo(), with the pack's word), within one response
 *     timeout. Frames beyond the count go by as stray bytes.
 *   - Data is dated by its request (->decode() gets the send time): it is
 *     never younger than the question it answers.
 *   - A pack going silent and coming back are logged once each (a reminder
 *     every PACK_WATCH_REMIND_USEC; src/pack_watch.c, shared with the
 *     JK-PB path); its counters (answers, timeouts, checksum errors) are
 *     in STATUS.
 *
 * The JK-PB driver (jk-pb-modbus) is not on this engine's exchange logic
 * yet: src/input_serial.c keeps its late-answer matching and its
 * listen-only method (see there), over the same port (src/serial.c) and
 * the same pack bookkeeping (src/pack_watch.c). Neither uses libmodbus.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "bms_serial"
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
#define REOPEN_AFTER 8 /* failed exchanges in a row, as the JK-PB path */
#define REOPEN_DELAY_USEC (2 * USEC_PER_SEC)
#define RX_MAX 4096    /* twice the longest answer of any family, and some noise */
#define REQUEST_MAX 64 /* longest request of any family (Pylontech ~20 bytes) */

enum engine_phase {
	ENGINE_CLOSED, /* port not open */
	ENGINE_IDLE,   /* between rounds */
	ENGINE_GAP,    /* waiting for the bus to be quiet before sending */
	ENGINE_WAIT,   /* request sent, collecting its answer */
};

struct engine_pack {
	struct pack_watch w;		 /* address, online, silence (src/pack_watch.c) */
	bool failed;			 /* this round: an exchange failed twice */
	uint64_t round_usec;		 /* this round: its first request went out then */
	uint64_t answers, timeouts, bad; /* bad: checksum, framing, content, error answer */
	uint32_t memo;			 /* the driver's word (->answer_frames()), 0 when silent */
};

struct serial_engine {
	struct input base;
	const struct bms_serial_ops *ops;
	struct serial *port;
	sd_event_source *timer; /* gap, response timeout, reopen */
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

	uint64_t poll_usec, timeout_usec, gap_usec;
	uint32_t baud;
	unsigned n_packs;
	struct engine_pack packs[BATTERY_PACKS_MAX];

	unsigned consecutive_failures;
	uint64_t exchanges, reopens, overruns, stray_bytes;
	struct ratelimit rl_fail;
};

static void next_exchange(struct serial_engine *en, uint64_t now);

static int arm_timer(struct serial_engine *en, uint64_t when)
{
	int r = sd_event_source_set_time(en->timer, when);

	if (r >= 0) {
		r = sd_event_source_set_enabled(en->timer, SD_EVENT_ONESHOT);
	}
	return r;
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
 * Always through the timer, even when the gap is over already.
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

static void reopen(struct serial_engine *en, uint64_t now);

static void exchange_failed(struct serial_engine *en, uint64_t now, int err)
{
	struct engine_pack *p = &en->packs[en->pack];

	sd_event_source_set_enabled(en->timer, SD_EVENT_OFF);
	en->quiet_since_usec = now;
	en->flush = true;
	en->rx_len = 0;
	en->ans_len = 0;
	en->ans_frames = 0;
	if (err == -ETIMEDOUT) {
		p->timeouts++;
	} else {
		p->bad++;
	}
	/* a pack answering until now says what went wrong; a silent one is counted */
	if (p->w.silent_since_usec && err == -ETIMEDOUT) {
		log_debug("Pack address %u, step %u: still silent", p->w.addr, en->step);
	} else {
		log_ratelimit(&en->rl_fail, now, LOG_WARNING,
			      "Pack address %u, step %u: %s (%zu bytes)%s", p->w.addr, en->step,
			      strerror(-err), en->window_bytes,
			      en->attempt == 0 ? ", retrying" : "");
	}
	if (++en->consecutive_failures >= REOPEN_AFTER) {
		reopen(en, now);
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
	advance(en, now);
}

/* the gap is over: send the current step's request, or skip a step the driver skips */
static void send_request(struct serial_engine *en, uint64_t now)
{
	struct engine_pack *p = &en->packs[en->pack];
	uint8_t req[REQUEST_MAX];
	ssize_t n;
	int r;

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
		log_error("BMS driver %s: no request for step %u (%s)", en->base.ctx->driver->name,
			  en->step, strerror((int)-n));
		exchange_failed(en, now, (int)n);
		return;
	}
	/* what is left of earlier answers is late or noise: not this one's */
	en->stray_bytes += en->rx_len;
	en->rx_len = 0;
	en->ans_len = 0;
	en->ans_frames = 0;
	r = serial_write(en->port, req, (size_t)n);
	if (r < 0) {
		log_ratelimit(&en->rl_fail, now, LOG_WARNING, "Cannot send to %s: %s",
			      en->base.ctx->cfg->port, strerror(-r));
		exchange_failed(en, now, r);
		return;
	}
	en->exchanges++;
	en->request_usec = now;
	if (!p->round_usec) {
		p->round_usec = now;
	}
	en->window_bytes = 0;
	en->phase = ENGINE_WAIT;
	arm_timer(en, now + en->timeout_usec);
}

/* look for the answer in what has arrived */
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
			if (en->ops->decode_memo) {
				r = en->ops->decode_memo(en->step, en->rx, (size_t)k, en->pack,
							 en->request_usec, ctx->state, &p->memo);
			} else {
				r = en->ops->decode(en->step, en->rx, (size_t)k, en->pack,
						    en->request_usec, ctx->state);
			}
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
	if (en->phase != ENGINE_WAIT) {
		en->stray_bytes += n;
		if (en->phase == ENGINE_GAP) {
			next_exchange(en, now);
		}
		return;
	}
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
	} else {
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

/* the line looks open but nothing answers: close it, reopen it a little later */
static void reopen(struct serial_engine *en, uint64_t now)
{
	log_warning("Reopening BMS port %s: too many failed exchanges in a row",
		    en->base.ctx->cfg->port);
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
		/* nothing at all is a timeout; a part of an answer a bad one */
		exchange_failed(en, now,
				en->window_bytes == 0 && en->rx_len == 0 ? -ETIMEDOUT : -EBADMSG);
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

struct input *serial_engine_free(struct input *base)
{
	struct serial_engine *en = base ? container_of(base, struct serial_engine, base) : NULL;

	if (!en) {
		return NULL;
	}
	en->poll = sd_event_source_disable_unref(en->poll);
	en->timer = sd_event_source_disable_unref(en->timer);
	en->port = serial_free(en->port);
	free(en);
	return NULL;
}

int serial_engine_open(struct input_ctx *ctx, struct input **ret)
{
	const struct bms_config *c = ctx->cfg;
	const struct bms_serial_ops *ops = ctx->driver->serial;
	struct serial_engine *en;
	uint64_t now = input_now(ctx);
	int r;

	if (!ops || ops->n_steps == 0 || ops->answer_max > RX_MAX / 2) {
		return log_error_errno(-EINVAL, "BMS driver %s has no serial round",
				       ctx->driver->name);
	}
	en = calloc(1, sizeof(*en));
	if (!en) {
		return -ENOMEM;
	}
	en->base.ctx = ctx;
	en->ops = ops;
	en->phase = ENGINE_CLOSED;
	en->rl_fail = (struct ratelimit)RATELIMIT_INIT(10 * USEC_PER_SEC, 5);
	en->poll_usec = c->poll_interval_usec ? c->poll_interval_usec : ENGINE_DEFAULT_POLL_USEC;
	en->timeout_usec = c->response_timeout_usec ? c->response_timeout_usec
						    : ENGINE_DEFAULT_TIMEOUT_USEC;
	en->gap_usec = c->request_gap_usec ? c->request_gap_usec : ENGINE_DEFAULT_GAP_USEC;
	en->baud = c->baud ? c->baud : ops->baud;
	/* one pack per address, in the order given; none given: the first valid one */
	en->n_packs = c->n_addresses ? c->n_addresses : 1;
	for (unsigned i = 0; i < en->n_packs; i++) {
		en->packs[i].w.addr = c->n_addresses ? c->addresses[i] : ops->address_min;
	}
	ctx->state->pack_count = (uint8_t)en->n_packs;

	r = sd_event_add_time(ctx->event, &en->timer, CLOCK_MONOTONIC, 0, 1, on_timer, en);
	if (r >= 0) {
		sd_event_source_set_enabled(en->timer, SD_EVENT_OFF);
		sd_event_source_set_exit_on_failure(en->timer, true);
		r = sd_event_add_time(ctx->event, &en->poll, CLOCK_MONOTONIC, now, 1, on_poll, en);
	}
	if (r >= 0) {
		sd_event_source_set_enabled(en->poll, SD_EVENT_ON);
		sd_event_source_set_exit_on_failure(en->poll, true);
		/* a missing port is not fatal: src/serial.c retries until it appears */
		r = port_new(en);
	}
	if (r < 0) {
		serial_engine_free(&en->base);
		return log_error_errno(r, "Cannot set up the BMS port %s: %s", c->port,
				       strerror(-r));
	}
	log_info("BMS %s on %s, %" PRIu32 " 8N1, %u pack%s", ctx->driver->name, c->port, en->baud,
		 en->n_packs, en->n_packs == 1 ? "" : "s");
	en->base.ops = &input_serial_ops;
	*ret = &en->base;
	return 0;
}

void serial_engine_status(struct input *base, char *buf, size_t n)
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
	if (k > 0 && (size_t)k < n && en->reopens) {
		snprintf(buf + k, n - (size_t)k, ", %" PRIu64 " reopens", en->reopens);
	}
}
