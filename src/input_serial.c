/* SPDX-License-Identifier: MIT */
/*
 * The serial BMS input (BMS_TRANSPORT_SERIAL). Every polled family is
 * handed to the generic exchange engine, src/serial_engine.c: a driver
 * with ->serial (Pylontech RS485, Seplos V2/V3, Pace, JBD, Daly, EG4 ...),
 * and JK-PB's two polled read methods ("trigger", "registers": the round
 * ->serial_method() gives, protocols/jk_pb.c). What is left here is the
 * one method that is no exchange:
 *
 *   listening (JK-PB read_method "listen"): a JK pack at DIP address 0 is
 *     the master; we never transmit (a second master collides with it)
 *     and take the frames its polls draw from the packs, and the frames
 *     it broadcasts of its own (bms-docs/JKBMS-PB.md in
 *     mr-manuel/venus-os_dbus-serialbattery; txubelaxu/esphome-jk-bms
 *     jk_rs485_sniffer reads the same bus the same way).
 *
 * It has no requests, no rounds, no response timeouts, no retries: none
 * of the engine's exchange logic applies, so it stays its own small path
 * over the same port (src/serial.c: raw 8N1, bms.baud or 115200,
 * exclusive, reopened with back-off when the device goes away), the same
 * pure stream parser as the engine's JK-PB round (protocols/jk_pb.c
 * jk_pb_bus_next(): polls, 55 AA EB 90 frames, write echoes, each checked
 * by CRC or sum8; jk_pb_listen() pairs each frame with the poll before it
 * and the echo after it) and the same pack bookkeeping
 * (src/pack_watch.c: a pack not heard for LISTEN_SILENT is said once).
 * Nothing here ever waits.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "bms_modbus"
#include "adapter.h"
#include "bms.h"
#include "jk_pb.h"
#include "log.h"
#include "macro.h"
#include "pack_watch.h"
#include "serial.h"
#include "serial_engine.h"

#define RX_MAX 1024 /* a frame, its echo and some noise */
/* a DIP-0 master's cycle is ~4.4 s (JKBMS-PB.md); three of them */
#define LISTEN_SILENT_USEC (15 * USEC_PER_SEC)
#define LISTEN_TICK_USEC (100 * USEC_PER_MSEC)
#define LISTEN_WINDOW_USEC (200 * USEC_PER_MSEC) /* a frame answers a poll this recent */

struct listen_pack {
	struct pack_watch w; /* address, online (heard lately), silence */
	bool heard_ever;
	uint64_t heard_usec; /* its last frame */
	uint64_t frames;     /* frames decoded */
};

struct listen_input {
	struct input base; /* ops, ctx */
	struct serial *port;
	sd_event_source *timer; /* the listen tick */
	bool open;

	uint8_t rx[RX_MAX];
	size_t rx_len;
	struct jk_pb_listener lis;
	uint64_t window_usec;
	uint64_t quiet_since_usec; /* the bus was last active then */
	uint64_t open_usec;	   /* the port was opened then */
	bool no_master_said;	   /* "no poll heard" said once */

	unsigned n_packs;
	struct listen_pack packs[BATTERY_PACKS_MAX];

	uint64_t bad_messages, collisions, strangers;
	uint16_t stranger_seen; /* addresses already reported */
	struct ratelimit rl_collision;
};

static int arm_timer(struct listen_input *in, uint64_t when)
{
	int r = sd_event_source_set_time(in->timer, when);

	if (r >= 0) {
		r = sd_event_source_set_enabled(in->timer, SD_EVENT_ONESHOT);
	}
	return r;
}

static int pack_index(const struct listen_input *in, uint8_t addr)
{
	for (unsigned i = 0; i < in->n_packs; i++) {
		if (in->packs[i].w.addr == addr) {
			return (int)i;
		}
	}
	return -1;
}

/*
 * The packs are the master (DIP 0, pack 1) and bms.addresses (packs 2...).
 * A frame is attributed by jk_pb_heard_attribute(): the poll it answered
 * in time, checked against its write echo; unasked and with no echo it is
 * the master's own. It is dated by its poll.
 */
static void listen_heard(struct listen_input *in, const struct jk_pb_heard *h, uint64_t now)
{
	struct input_ctx *ctx = in->base.ctx;
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
	if (ctx->driver->decode_block(JK_PB_BLOCK_FRAME, h->frame, JK_PB_FRAME_LEN, (unsigned)pi,
				      stamp, ctx->state) < 0) {
		in->bad_messages++;
		return;
	}
	in->packs[pi].frames++;
	input_updated(ctx);
	in->packs[pi].heard_usec = now;
	in->packs[pi].heard_ever = true;
	pack_watch_answered(&in->packs[pi].w, LOG_MODULE, (unsigned)pi, now);
}

/* cut what has arrived into items; @final: nothing more will complete them */
static void consume(struct listen_input *in, uint64_t now, bool final)
{
	size_t off = 0;

	while (off < in->rx_len) {
		struct jk_pb_bus_item it;
		struct jk_pb_heard h;
		int k = jk_pb_bus_next(in->rx + off, in->rx_len - off, final, &it);

		if (k < 0) {
			break;
		}
		off += (size_t)k;
		if (jk_pb_listen(&in->lis, &it, now, &h) > 0) {
			listen_heard(in, &h, now);
		}
	}
	memmove(in->rx, in->rx + off, in->rx_len - off);
	in->rx_len -= off;
}

static void on_bytes(struct serial *s, const uint8_t *buf, size_t n, uint64_t now_usec,
		     void *userdata)
{
	struct listen_input *in = userdata;
	uint64_t now = input_now(in->base.ctx);

	(void)s;
	(void)now_usec;
	while (n > 0 && in->open) {
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
		in->quiet_since_usec = now;
		consume(in, now, false);
	}
}

static void listen_tick(struct listen_input *in, uint64_t now)
{
	struct jk_pb_heard h;

	/* a quiet bus completes nothing more: what is left is noise */
	if (now - in->quiet_since_usec > in->window_usec) {
		consume(in, now, true);
	}
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
		struct listen_pack *p = &in->packs[i];
		uint64_t since = p->heard_ever ? p->heard_usec : in->open_usec;

		if ((p->w.online || !p->w.silent_since_usec) && now - since > LISTEN_SILENT_USEC) {
			pack_watch_silent(&p->w, LOG_MODULE, i, now,
					  i == 0 ? "(the DIP-0 master) not heard"
						 : "not heard on the bus");
		}
	}
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct listen_input *in = userdata;
	uint64_t now = input_now(in->base.ctx);

	(void)s;
	(void)usec;
	/* what the tty holds first; a lost port stops the tick (on_port) */
	if (serial_read_now(in->port) >= 0 && in->open) {
		listen_tick(in, now);
		arm_timer(in, now + LISTEN_TICK_USEC);
	}
	return 0;
}

/* src/serial.c opened the port, or lost it (it then reopens with back-off) */
static void on_port(struct serial *s, bool open, void *userdata)
{
	struct listen_input *in = userdata;
	struct input_ctx *ctx = in->base.ctx;
	uint64_t now = input_now(ctx);

	(void)s;
	in->open = open;
	in->rx_len = 0;
	jk_pb_listener_init(&in->lis, in->window_usec);
	if (open) {
		in->quiet_since_usec = in->open_usec = now;
		log_info("BMS port %s open, %" PRIu32 " 8N1, %u pack%s, %s", ctx->cfg->port,
			 ctx->cfg->baud ? ctx->cfg->baud : ctx->driver->baud, in->n_packs,
			 in->n_packs == 1 ? "" : "s",
			 "listening only (a DIP-0 JK master drives the bus)");
		arm_timer(in, now + LISTEN_TICK_USEC);
	} else {
		log_warning("Reopening BMS port %s: %s", ctx->cfg->port, "the line is gone");
		sd_event_source_set_enabled(in->timer, SD_EVENT_OFF);
		for (unsigned i = 0; i < in->n_packs; i++) {
			in->packs[i].w.online = false;
		}
	}
	if (ctx->open != open) {
		ctx->open = open;
		input_port_changed(ctx);
	}
}

static struct input *serial_input_free(struct input *base)
{
	struct listen_input *in;

	if (!base) {
		return NULL;
	}
	if (base->ops != &input_serial_ops) {
		return base->ops->free(base); /* the engine's */
	}
	in = container_of(base, struct listen_input, base);
	in->timer = sd_event_source_disable_unref(in->timer);
	in->port = serial_free(in->port);
	free(in);
	return NULL;
}

static int listen_open(struct input_ctx *ctx, struct input **ret)
{
	const struct bms_config *c = ctx->cfg;
	const struct serial_config sc = {
		.path = c->port,
		.baud = c->baud ? c->baud : ctx->driver->baud,
		.rs485 = true,
	};
	struct listen_input *in;
	int r;

	if (!ctx->driver->decode_block) {
		return log_error_errno(-EINVAL, "BMS driver %s decodes no frames",
				       ctx->driver->name);
	}
	in = calloc(1, sizeof(*in));
	if (!in) {
		return -ENOMEM;
	}
	in->base.ctx = ctx;
	in->base.ops = &input_serial_ops;
	in->rl_collision = (struct ratelimit)RATELIMIT_INIT(60 * USEC_PER_SEC, 3);
	in->window_usec = c->response_timeout_usec ? c->response_timeout_usec : LISTEN_WINDOW_USEC;
	jk_pb_listener_init(&in->lis, in->window_usec);
	/* the DIP-0 master first, then the addresses given */
	in->packs[0].w.addr = 0;
	in->n_packs = 1 + c->n_addresses;
	if (in->n_packs > BATTERY_PACKS_MAX) {
		log_warning("Listening reads the master and %u more packs at most, ignoring "
			    "address %u",
			    BATTERY_PACKS_MAX - 1, c->addresses[BATTERY_PACKS_MAX - 1]);
		in->n_packs = BATTERY_PACKS_MAX;
	}
	for (unsigned i = 1; i < in->n_packs; i++) {
		in->packs[i].w.addr = c->addresses[i - 1];
	}
	ctx->state->pack_count = (uint8_t)in->n_packs;

	r = sd_event_add_time(ctx->event, &in->timer, CLOCK_MONOTONIC, 0, 1, on_timer, in);
	if (r >= 0) {
		sd_event_source_set_enabled(in->timer, SD_EVENT_OFF);
		sd_event_source_set_exit_on_failure(in->timer, true);
		/* a missing port is not fatal: src/serial.c retries until it appears */
		r = serial_new(ctx->event, &sc, on_bytes, on_port, in, &in->port);
	}
	if (r >= 0 && serial_is_open(in->port)) {
		on_port(in->port, true, in);
	}
	if (r < 0) {
		serial_input_free(&in->base);
		return log_error_errno(r, "Cannot set up the BMS port %s: %s", c->port,
				       strerror(-r));
	}
	*ret = &in->base;
	return 0;
}

static int serial_input_open(struct input_ctx *ctx, struct input **ret)
{
	const struct bms_driver *d = ctx->driver;
	const struct bms_serial_ops *ops = d->serial;

	if (!ops && d->serial_method) {
		ops = d->serial_method(ctx->cfg->read_method);
	}
	if (ops) {
		return serial_engine_open(ctx, ops, ret);
	}
	return listen_open(ctx, ret);
}

static void serial_input_status(struct input *base, char *buf, size_t n)
{
	struct listen_input *in;
	unsigned online;
	char extra[64];

	if (base->ops != &input_serial_ops) {
		base->ops->status(base, buf, n); /* the engine's */
		return;
	}
	in = container_of(base, struct listen_input, base);
	online = pack_watch_summary(&in->packs[0].w, sizeof(in->packs[0]), in->n_packs,
				    input_now(base->ctx), extra, sizeof(extra));
	snprintf(buf, n, "%s listening %u/%u packs%s%s, %" PRIu64 " polls, %" PRIu64 " collisions",
		 base->ctx->driver->name, online, in->n_packs, in->open ? "" : " (port closed)",
		 extra, in->lis.polls, in->collisions);
}

const struct input_ops input_serial_ops = {
	.name = "modbus",
	.open = serial_input_open,
	.free = serial_input_free,
	.status = serial_input_status,
};
