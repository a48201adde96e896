/* SPDX-License-Identifier: MIT */
/*
 * The RS485 Modbus input (BMS_TRANSPORT_SERIAL): polls JK-PB packs at
 * bms.addresses on one bus and feeds the driver's ->decode_block().
 *
 * Model: libmodbus opens and configures the port (RTU, 8N1, bms.baud or
 * the driver's 115200) and puts each request on the wire
 * (modbus_send_raw_request(), which adds the CRC); the ANSWER is read by
 * our own non-blocking reader on the tty fd, driven by sd-event, because
 *   - the trigger answer (a 300-byte 55 AA EB 90 frame, then the write
 *     echo) is not a Modbus response libmodbus could read, and
 *   - libmodbus reads block: with one pack absent every round would stall
 *     the loop for a full response timeout (house style: replace the
 *     blocking reads when the stall can exceed ~100 ms).
 * So no callback here ever waits: the measured worst stall is in
 * bench/modbus-stall.
 *
 * One exchange at a time, a small state machine:
 *
 *   IDLE --poll timer--> GAP --bus quiet for request_gap--> WAIT (request
 *   sent, timer = response_timeout) --answer complete--> decode, next
 *   request (GAP) ... --last request of the last pack--> IDLE
 *
 * Per request: stale bytes are drained before sending (a USB adapter's
 * FIFO keeps late answers, jkbms_pb.py); a failure (timeout, bad CRC or
 * checksum, exception, undecodable block) is retried once, then the pack
 * is skipped for this round and counted offline; an absent pack costs at
 * most two response timeouts per round and the other packs are still
 * read. After REOPEN_AFTER failed exchanges in a row (a vanished USB
 * adapter leaves an fd that looks open) or a hang-up on the fd, the port
 * is closed and reopened every REOPEN_DELAY until it is back.
 *
 * Errors are negative errno at this boundary: -ETIMEDOUT (no answer),
 * -EBADMSG (CRC, checksum, framing), -EIO (a Modbus exception or a dead
 * line); libmodbus's own errors are logged with modbus_strerror().
 * Repeating conditions are logged through rate limiters.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <modbus/modbus.h>

#define LOG_MODULE "bms_modbus"
#include "bms.h"
#include "bridge.h"
#include "byteorder.h"
#include "log.h"
#include "macro.h"
#include "protocols/jk_pb.h"

#define MODBUS_DEFAULT_POLL_USEC (2 * USEC_PER_SEC)
#define MODBUS_DEFAULT_TIMEOUT_USEC (200 * USEC_PER_MSEC)
#define MODBUS_DEFAULT_GAP_USEC (100 * USEC_PER_MSEC)
#define REOPEN_AFTER 8 /* failed exchanges in a row (jkbms_pb.py _RECYCLE_THRESHOLD) */
#define REOPEN_DELAY_USEC (2 * USEC_PER_SEC)
#define RX_MAX 1024 /* a frame, its echo, an echo of ours and some noise */

enum modbus_phase {
	PHASE_CLOSED, /* port not open; the timer retries */
	PHASE_IDLE,   /* between rounds */
	PHASE_GAP,    /* waiting for the bus to be quiet before sending */
	PHASE_WAIT,   /* request sent, collecting the answer */
};

/* One exchange of a pack's round. */
struct modbus_step {
	bool trigger;	 /* 0x10 trigger, else a 0x03 read */
	uint16_t reg;	 /* trigger register or first register read */
	uint16_t count;	 /* registers read (0x03) */
	uint16_t offset; /* where the bytes go in the image (0x03) */
	int kind;	 /* block decoded after this step, -1: none yet */
};

/* trigger: settings (LIMITS) then status; both are 300-byte frames */
static const struct modbus_step trigger_steps[] = {
	{ .trigger = true, .reg = JK_PB_TRIGGER_SETTINGS, .kind = JK_PB_BLOCK_FRAME },
	{ .trigger = true, .reg = JK_PB_TRIGGER_STATUS, .kind = JK_PB_BLOCK_FRAME },
};
/* registers: 0x1000 (144 bytes), then 0x1200 in two reads (160 + 96 bytes) */
static const struct modbus_step register_steps[] = {
	{ .reg = JK_PB_REG_SETTINGS, .count = JK_PB_SETTINGS_LEN / 2, .offset = 0,
	  .kind = JK_PB_BLOCK_SETTINGS_REGS },
	{ .reg = JK_PB_REG_DATA, .count = 80, .offset = 0, .kind = -1 },
	{ .reg = JK_PB_REG_DATA + 160, .count = 48, .offset = 160, .kind = JK_PB_BLOCK_DATA_REGS },
};

struct modbus_pack {
	uint8_t addr;
	bool online;	    /* last round read it */
	uint64_t failures;  /* rounds it was skipped */
};

struct bms_input {
	struct bridge *br;
	modbus_t *ctx;
	int fd;
	sd_event_source *io;	/* readable tty */
	sd_event_source *timer; /* gap, response timeout, reopen */
	sd_event_source *poll;	/* one round every poll_interval */

	enum modbus_phase phase;
	const struct modbus_step *steps;
	size_t n_steps;
	unsigned pack, step, attempt;
	bool round_pending; /* the poll timer fired during a round */

	uint8_t rx[RX_MAX];
	size_t rx_len;
	uint8_t image[JK_PB_DATA_LEN]; /* register blocks assembled here */
	uint64_t quiet_since_usec;     /* the bus was last active then */

	uint64_t poll_usec, timeout_usec, gap_usec;
	unsigned n_packs;
	struct modbus_pack packs[BATTERY_PACKS_MAX];

	unsigned consecutive_failures;
	uint64_t exchanges, errors, timeouts, bad_messages, reopens, overruns;
	struct ratelimit rl_timeout, rl_bad, rl_stale, rl_open;
};

static void start_exchange(struct bms_input *in, uint64_t now);

static int arm_timer(struct bms_input *in, uint64_t when)
{
	int r = sd_event_source_set_time(in->timer, when);

	if (r >= 0) {
		r = sd_event_source_set_enabled(in->timer, SD_EVENT_ONESHOT);
	}
	return r;
}

/*
 * Read whatever is pending. Return: bytes read, or -EIO on a dead line
 * (a hang-up also shows as EPOLLHUP on the io source).
 */
static ssize_t read_pending(struct bms_input *in, uint8_t *buf, size_t n)
{
	ssize_t total = 0;

	while ((size_t)total < n) {
		ssize_t k = read(in->fd, buf + total, n - (size_t)total);

		if (k > 0) {
			total += k;
			continue;
		}
		if (k < 0 && errno == EINTR) {
			continue;
		}
		/* a raw tty (VMIN 0, VTIME 0, as libmodbus sets it) says "nothing" with 0 */
		if (k == 0 || errno == EAGAIN) {
			break;
		}
		/* EIO, ENODEV...: the other end is gone (USB unplugged, pty closed) */
		return -EIO;
	}
	return total;
}

static void port_close(struct bms_input *in)
{
	in->io = sd_event_source_disable_unref(in->io);
	if (in->ctx) {
		modbus_close(in->ctx);
		modbus_free(in->ctx);
		in->ctx = NULL;
	}
	in->fd = -1;
	in->phase = PHASE_CLOSED;
	in->round_pending = false;
	if (in->br->input_open) {
		in->br->input_open = false;
		bridge_port_ready(in->br);
	}
}

static int on_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static int port_open(struct bms_input *in, uint64_t now)
{
	const struct bms_config *c = &in->br->cfg.bms;
	uint32_t baud = c->baud ? c->baud : in->br->driver->baud ? in->br->driver->baud : 115200;
	int flags, r;

	in->ctx = modbus_new_rtu(c->port, (int)baud, 'N', 8, 1);
	if (!in->ctx) {
		r = -errno;
		log_ratelimit(&in->rl_open, now, LOG_ERR, "Cannot set up %s: %s", c->port,
			      modbus_strerror(errno));
		return r ? r : -ENOMEM;
	}
	if (modbus_connect(in->ctx) < 0) {
		r = -errno;
		log_ratelimit(&in->rl_open, now, LOG_WARNING, "Cannot open %s: %s, retrying",
			      c->port, modbus_strerror(errno));
		modbus_free(in->ctx);
		in->ctx = NULL;
		return r < 0 ? r : -EIO;
	}
	in->fd = modbus_get_socket(in->ctx);
	/* our reader never waits: the fd stays non-blocking, and private */
	flags = fcntl(in->fd, F_GETFL);
	if (flags < 0 || fcntl(in->fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    fcntl(in->fd, F_SETFD, FD_CLOEXEC) < 0) {
		r = -errno;
		port_close(in);
		return r;
	}
	r = sd_event_add_io(in->br->event, &in->io, in->fd, EPOLLIN, on_readable, in);
	if (r < 0) {
		port_close(in);
		return r;
	}
	sd_event_source_set_enabled(in->io, SD_EVENT_OFF);
	in->phase = PHASE_IDLE;
	in->consecutive_failures = 0;
	in->quiet_since_usec = now;
	log_info("BMS port %s open, %" PRIu32 " 8N1, %u pack%s, %s method", c->port, baud,
		 in->n_packs, in->n_packs == 1 ? "" : "s",
		 in->steps == trigger_steps ? "trigger" : "register");
	in->br->input_open = true;
	bridge_port_ready(in->br);
	return 0;
}

static void schedule_reopen(struct bms_input *in, uint64_t now, const char *why)
{
	log_warning("Reopening BMS port %s: %s", in->br->cfg.bms.port, why);
	port_close(in);
	in->reopens++;
	for (unsigned i = 0; i < in->n_packs; i++) {
		in->packs[i].online = false;
	}
	arm_timer(in, now + REOPEN_DELAY_USEC);
}

/*
 * The round is over: back to idle until the poll timer starts the next,
 * or at once if the timer fired meanwhile (a round longer than
 * poll_interval: the bus is then polled back to back, never less often).
 */
static void end_round(struct bms_input *in, uint64_t now)
{
	in->phase = PHASE_IDLE;
	in->pack = in->step = in->attempt = 0;
	sd_event_source_set_enabled(in->io, SD_EVENT_OFF);
	sd_event_source_set_enabled(in->timer, SD_EVENT_OFF);
	if (in->round_pending) {
		in->round_pending = false;
		start_exchange(in, now);
	}
}

/* Move on to the next step, the next pack, or end the round. */
static void advance(struct bms_input *in, uint64_t now, bool pack_failed)
{
	in->attempt = 0;
	if (!pack_failed && in->step + 1 < in->n_steps) {
		in->step++;
	} else {
		struct modbus_pack *p = &in->packs[in->pack];

		if (pack_failed) {
			if (p->online) {
				log_warning("Pack %u (address %u) not answering", in->pack + 1,
					    p->addr);
			}
			p->online = false;
			p->failures++;
		} else if (!p->online) {
			log_info("Pack %u (address %u) online", in->pack + 1, p->addr);
			p->online = true;
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

static void exchange_failed(struct bms_input *in, uint64_t now, int err)
{
	const struct modbus_step *st = &in->steps[in->step];

	sd_event_source_set_enabled(in->io, SD_EVENT_OFF);
	in->quiet_since_usec = now;
	in->errors++;
	if (err == -ETIMEDOUT) {
		in->timeouts++;
	} else {
		in->bad_messages++;
	}
	/* an absent pack's timeouts must not hide a bad answer of another one */
	log_ratelimit(err == -ETIMEDOUT ? &in->rl_timeout : &in->rl_bad, now, LOG_WARNING,
		      "Pack address %u, %s 0x%04X: %s (%zu bytes)%s", in->packs[in->pack].addr,
		      st->trigger ? "trigger" : "read", st->reg, strerror(-err), in->rx_len,
		      in->attempt == 0 ? ", retrying" : "");
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

/* A complete answer: decode it (pure) and tell the bridge. */
static void exchange_done(struct bms_input *in, uint64_t now, const uint8_t *payload, size_t n)
{
	const struct modbus_step *st = &in->steps[in->step];
	struct bridge *br = in->br;
	int r = 0;

	sd_event_source_set_enabled(in->io, SD_EVENT_OFF);
	sd_event_source_set_enabled(in->timer, SD_EVENT_OFF);
	in->quiet_since_usec = now;
	if (!st->trigger) {
		size_t want = (size_t)st->count * 2;

		if (n < want || st->offset + want > sizeof(in->image)) {
			exchange_failed(in, now, -EBADMSG);
			return;
		}
		memcpy(in->image + st->offset, payload, want);
		payload = in->image;
		n = st->kind == JK_PB_BLOCK_SETTINGS_REGS ? JK_PB_SETTINGS_LEN : JK_PB_DATA_LEN;
	}
	if (st->kind >= 0) {
		r = br->driver->decode_block((unsigned)st->kind, payload, n, in->pack, now,
					     &br->state);
		if (r < 0) {
			exchange_failed(in, now, r);
			return;
		}
		bridge_bms_updated(br);
	}
	in->consecutive_failures = 0;
	advance(in, now, false);
}

/*
 * Check what has arrived. @final: the response timeout has passed.
 * Return: 0 complete, -EAGAIN more to come, <0 bad.
 */
static int check_answer(struct bms_input *in, bool final, const uint8_t **ret, size_t *ret_n)
{
	const struct modbus_step *st = &in->steps[in->step];
	uint8_t addr = in->packs[in->pack].addr;
	int r;

	if (st->trigger) {
		r = jk_pb_find_frame(addr, st->reg, in->rx, in->rx_len, final, ret);
		*ret_n = JK_PB_FRAME_LEN;
		return r;
	}
	/* an adapter echoing our own 8-byte request: skip it */
	if (in->rx_len >= 8 && in->rx[0] == addr && in->rx[1] == 0x03 &&
	    get_be16(in->rx + 2) == st->reg && get_be16(in->rx + 4) == st->count) {
		memmove(in->rx, in->rx + 8, in->rx_len - 8);
		in->rx_len -= 8;
	}
	return jk_pb_check_read_response(addr, in->rx, in->rx_len, ret, ret_n);
}

static int on_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct bms_input *in = userdata;
	uint64_t now = bridge_now(in->br);
	const uint8_t *payload = NULL;
	size_t n = 0;
	ssize_t k;
	int r;

	if (in->phase != PHASE_WAIT) {
		return 0;
	}
	k = read_pending(in, in->rx + in->rx_len, sizeof(in->rx) - in->rx_len);
	if (k < 0 || (revents & (EPOLLHUP | EPOLLERR))) {
		schedule_reopen(in, now, "the line is gone");
		return 0;
	}
	in->rx_len += (size_t)k;
	r = check_answer(in, false, &payload, &n);
	if (r == 0) {
		exchange_done(in, now, payload, n);
	} else if (r != -EAGAIN || in->rx_len >= sizeof(in->rx)) {
		exchange_failed(in, now, r == -EAGAIN ? -EBADMSG : r);
	}
	return 0;
}

/* Send the current step's request now (the bus has been quiet long enough). */
static void send_request(struct bms_input *in, uint64_t now)
{
	const struct modbus_step *st = &in->steps[in->step];
	uint8_t addr = in->packs[in->pack].addr;
	uint8_t req[JK_PB_REQUEST_MAX], stale[64];
	size_t n;
	ssize_t k, dropped = 0;

	/* late bytes from an earlier exchange would confuse this one */
	while ((k = read_pending(in, stale, sizeof(stale))) > 0) {
		dropped += k;
	}
	if (k < 0) {
		schedule_reopen(in, now, "the line is gone");
		return;
	}
	if (dropped > 0) {
		log_ratelimit(&in->rl_stale, now, LOG_DEBUG, "Dropped %zd stale bytes", dropped);
	}
	n = st->trigger ? jk_pb_build_trigger(addr, st->reg, req)
			: jk_pb_build_read(addr, st->reg, st->count, req);
	/* libmodbus appends the CRC itself: hand it the request without ours */
	if (modbus_send_raw_request(in->ctx, req, (int)n - 2) < 0) {
		int err = errno;

		log_ratelimit(&in->rl_bad, now, LOG_WARNING, "Cannot send to %s: %s",
			      in->br->cfg.bms.port, modbus_strerror(err));
		schedule_reopen(in, now, "write failed");
		return;
	}
	in->exchanges++;
	in->rx_len = 0;
	in->phase = PHASE_WAIT;
	sd_event_source_set_enabled(in->io, SD_EVENT_ON);
	arm_timer(in, now + in->timeout_usec);
}

static void start_exchange(struct bms_input *in, uint64_t now)
{
	uint64_t due = in->quiet_since_usec + in->gap_usec;

	in->phase = PHASE_GAP;
	sd_event_source_set_enabled(in->io, SD_EVENT_OFF);
	if (now >= due) {
		send_request(in, now);
		return;
	}
	arm_timer(in, due);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct bms_input *in = userdata;
	uint64_t now = bridge_now(in->br);

	switch (in->phase) {
	case PHASE_CLOSED:
		if (port_open(in, now) < 0) {
			arm_timer(in, now + REOPEN_DELAY_USEC);
		}
		return 0;
	case PHASE_GAP:
		send_request(in, now);
		return 0;
	case PHASE_WAIT: {
		const uint8_t *payload = NULL;
		size_t n = 0;
		ssize_t k = read_pending(in, in->rx + in->rx_len, sizeof(in->rx) - in->rx_len);

		/* last look: the answer may have come with the timer */
		if (k < 0) {
			schedule_reopen(in, now, "the line is gone");
			return 0;
		}
		in->rx_len += (size_t)k;
		if (check_answer(in, true, &payload, &n) == 0) {
			exchange_done(in, now, payload, n);
			return 0;
		}
		/* nothing at all is a timeout; a part of an answer is a bad one */
		exchange_failed(in, now, in->rx_len == 0 ? -ETIMEDOUT : -EBADMSG);
		return 0;
	}
	case PHASE_IDLE:
		return 0;
	}
	return 0;
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct bms_input *in = userdata;
	uint64_t now = bridge_now(in->br);

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

static struct bms_input *modbus_input_free(struct bms_input *in)
{
	if (!in) {
		return NULL;
	}
	in->poll = sd_event_source_disable_unref(in->poll);
	in->timer = sd_event_source_disable_unref(in->timer);
	in->io = sd_event_source_disable_unref(in->io);
	if (in->ctx) {
		modbus_close(in->ctx);
		modbus_free(in->ctx);
	}
	free(in);
	return NULL;
}

static int modbus_input_open(struct bridge *br, struct bms_input **ret)
{
	const struct bms_config *c = &br->cfg.bms;
	struct bms_input *in;
	uint64_t now = bridge_now(br);
	int r;

	if (!br->driver->decode_block) {
		return log_error_errno(-EINVAL, "BMS driver %s decodes no Modbus blocks",
				       br->driver->name);
	}
	in = calloc(1, sizeof(*in));
	if (!in) {
		return -ENOMEM;
	}
	in->br = br;
	in->fd = -1;
	in->phase = PHASE_CLOSED;
	in->rl_timeout = (struct ratelimit)RATELIMIT_INIT(10 * USEC_PER_SEC, 5);
	in->rl_bad = (struct ratelimit)RATELIMIT_INIT(10 * USEC_PER_SEC, 5);
	in->rl_stale = (struct ratelimit)RATELIMIT_INIT(10 * USEC_PER_SEC, 5);
	in->rl_open = (struct ratelimit)RATELIMIT_INIT(60 * USEC_PER_SEC, 3);
	in->poll_usec = c->poll_interval_usec ? c->poll_interval_usec : MODBUS_DEFAULT_POLL_USEC;
	in->timeout_usec = c->response_timeout_usec ? c->response_timeout_usec
						    : MODBUS_DEFAULT_TIMEOUT_USEC;
	in->gap_usec = c->request_gap_usec ? c->request_gap_usec : MODBUS_DEFAULT_GAP_USEC;
	if (c->read_method == JK_PB_READ_REGISTERS) {
		in->steps = register_steps;
		in->n_steps = ARRAY_SIZE(register_steps);
	} else {
		in->steps = trigger_steps;
		in->n_steps = ARRAY_SIZE(trigger_steps);
	}
	/* one pack per address, in the order given; none given: address 1 */
	in->n_packs = c->n_addresses ? c->n_addresses : 1;
	if (in->n_packs > BATTERY_PACKS_MAX) {
		in->n_packs = BATTERY_PACKS_MAX;
	}
	for (unsigned i = 0; i < in->n_packs; i++) {
		in->packs[i].addr = c->n_addresses ? c->addresses[i] : 1;
	}
	br->state.pack_count = (uint8_t)in->n_packs;

	r = sd_event_add_time(br->event, &in->timer, CLOCK_MONOTONIC, 0, 1, on_timer, in);
	if (r >= 0) {
		sd_event_source_set_enabled(in->timer, SD_EVENT_OFF);
		sd_event_source_set_exit_on_failure(in->timer, true);
		/* the first round at once, then every poll_interval */
		r = sd_event_add_time(br->event, &in->poll, CLOCK_MONOTONIC, now, 1, on_poll, in);
	}
	if (r < 0) {
		modbus_input_free(in);
		return log_error_errno(r, "Failed to add Modbus timers: %s", strerror(-r));
	}
	sd_event_source_set_enabled(in->poll, SD_EVENT_ON);
	sd_event_source_set_exit_on_failure(in->poll, true);

	/* a missing port is not fatal: the timer retries until it appears */
	if (port_open(in, now) < 0) {
		arm_timer(in, now + REOPEN_DELAY_USEC);
	}
	*ret = in;
	return 0;
}

static void modbus_input_status(struct bms_input *in, char *buf, size_t n)
{
	unsigned online = 0;

	for (unsigned i = 0; i < in->n_packs; i++) {
		online += in->packs[i].online;
	}
	snprintf(buf, n, "%s %u/%u packs%s, %" PRIu64 " errors (%" PRIu64 " timeouts), %" PRIu64
		 " reopens",
		 in->br->driver->name, online, in->n_packs,
		 in->phase == PHASE_CLOSED ? " (port closed)" : "", in->errors, in->timeouts,
		 in->reopens);
}

const struct bms_input_ops bms_modbus_input_ops = {
	.name = "modbus",
	.open = modbus_input_open,
	.free = modbus_input_free,
	.status = modbus_input_status,
};
