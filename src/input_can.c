/* SPDX-License-Identifier: MIT */
/*
 * A BMS on a SocketCAN port (pylontech-can, daly-can): frames in,
 * keep-alives (or requests) out.
 *
 * Each frame the driver asked for (->rx_ids) goes through its pure
 * ->decode_frame() into ctx->state->packs[]; a frame that changed the state
 * runs the bridge (safety layer, urgent frames). A BMS that talks to an
 * inverter expects to hear one: ->keepalive() frames (Pylontech 0x305)
 * go out every keepalive_period_usec while the port is open.
 *
 * A driver with addresses (->decode_frame_at(): Daly boards sharing one
 * bus) reads one pack per configured bms.addresses entry, pack i = the
 * i-th address: all of them asked at once each period (->keepalive_at()),
 * each answer decoded into its board's pack. Other drivers read one pack:
 * one BMS speaks for the bank.
 *
 * A BMS never heard BMS_CAN_NEVER_HEARD_USEC after the port opened is a
 * comm-loss cause of its own (bmsbridge-troubleshooting(7)): said once,
 * with its hint, and cleared by the first good frame.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "bms_can"
#include "bms.h"
#include "adapter.h"
#include "can_bus.h"
#include "log.h"
#include "macro.h"

#define BMS_CAN_NEVER_HEARD_USEC (10 * USEC_PER_SEC)
/*
 * Frames one keep-alive may send: Daly CAN asks six IDs of each board, up
 * to BATTERY_PACKS_MAX boards (90; src/can_bus.c parks up to 96 distinct
 * ids when the kernel's queue refuses a burst, so none is dropped)
 */
#define BMS_CAN_KEEPALIVE_MAX (6 * BATTERY_PACKS_MAX)

struct can_input {
	struct input base; /* ops, ctx */
	struct can_bus *bus;
	sd_event_source *keepalive;
	sd_event_source *never_heard; /* one-shot, armed when the port opens */
	uint64_t bad_frames;
	uint64_t good_frames; /* decoded since the port last opened */
	bool never_said;      /* bms-never-heard raised, not yet cleared */
	struct ratelimit bad_rl;
};

static void on_rx(struct can_bus *bus, const struct can_frame *f, uint64_t now, void *userdata)
{
	struct can_input *in = userdata;
	struct input_ctx *ctx = in->base.ctx;
	int r;

	if (ctx->driver->decode_frame_at) {
		r = ctx->driver->decode_frame_at(f, now, ctx->cfg->addresses, ctx->cfg->n_addresses,
						 ctx->state);
	} else {
		r = ctx->driver->decode_frame(f, now, ctx->state);
	}
	if (r < 0) {
		in->bad_frames++;
		log_ratelimit(&in->bad_rl, now, LOG_WARNING,
			      "BMS frame 0x%03x (%u bytes) rejected: %s (%llu so far)",
			      (unsigned)(f->can_id & CAN_EFF_MASK), f->len, strerror(-r),
			      (unsigned long long)in->bad_frames);
		return;
	}
	if (in->good_frames++ == 0 && in->never_said) {
		in->never_said = false;
		log_fault_cleared("bms-never-heard", "BMS heard on %s: frame 0x%03x",
				  ctx->cfg->port, (unsigned)(f->can_id & CAN_EFF_MASK));
	}
	if (r > 0) {
		input_updated(ctx);
	}
}

static int on_never_heard(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct can_input *in = userdata;
	const struct input_ctx *ctx = in->base.ctx;

	if (in->good_frames > 0 || in->never_said || !can_bus_is_open(in->bus)) {
		return 0;
	}
	in->never_said = true;
	log_fault(
		"bms-never-heard",
		"check the BMS's CAN setting (protocol Pylontech / inverter CAN on; Daly: its CAN "
		"port enabled, the board numbers listed), the bit rate (the driver's on both: 500 kbit/s, Daly "
		"250), and the wiring: CAN-H/CAN-L, termination, the cable's pinout",
		"No frame from the BMS on %s in %.0f s (%s, %llu malformed)", ctx->cfg->port,
		(double)BMS_CAN_NEVER_HEARD_USEC / USEC_PER_SEC, ctx->driver->name,
		(unsigned long long)in->bad_frames);
	return 0;
}

/* (re)start the never-heard clock: the port just opened */
static void arm_never_heard(struct can_input *in)
{
	in->good_frames = 0;
	if (!in->never_heard) {
		if (sd_event_add_time_relative(in->base.ctx->event, &in->never_heard,
					       CLOCK_MONOTONIC, BMS_CAN_NEVER_HEARD_USEC,
					       100 * USEC_PER_MSEC, on_never_heard, in) < 0) {
			return; /* only a log line is lost */
		}
		sd_event_source_set_description(in->never_heard, "bms-never-heard");
		return;
	}
	sd_event_source_set_time_relative(in->never_heard, BMS_CAN_NEVER_HEARD_USEC);
	sd_event_source_set_enabled(in->never_heard, SD_EVENT_ONESHOT);
}

static int on_keepalive(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct can_input *in = userdata;
	uint64_t period = in->base.ctx->driver->keepalive_period_usec;
	uint64_t next = usec + period, now = input_now(in->base.ctx);
	const struct input_ctx *ctx = in->base.ctx;
	struct can_frame frames[BMS_CAN_KEEPALIVE_MAX];
	int n;

	if (can_bus_is_open(in->bus)) {
		if (ctx->driver->keepalive_at) {
			n = ctx->driver->keepalive_at(ctx->cfg->addresses, ctx->cfg->n_addresses,
						      frames, ARRAY_SIZE(frames));
		} else {
			n = ctx->driver->keepalive(frames, ARRAY_SIZE(frames));
		}
		if (n > 0) {
			can_bus_send(in->bus, frames, (size_t)n);
		}
	}
	/* after a stall (SIGSTOP, a slow system) one keep-alive, not the missed ones */
	return sd_event_source_set_time(s, next > now ? next : now + period);
}

static void on_state(struct can_bus *bus, bool open, void *userdata)
{
	struct can_input *in = userdata;

	in->base.ctx->open = open;
	if (open) {
		arm_never_heard(in);
		input_port_changed(in->base.ctx);
	}
}

static struct input *bms_can_free(struct input *base)
{
	struct can_input *in = base ? container_of(base, struct can_input, base) : NULL;

	if (!in) {
		return NULL;
	}
	sd_event_source_disable_unref(in->keepalive);
	sd_event_source_disable_unref(in->never_heard);
	can_bus_free(in->bus);
	in->base.ctx->open = false;
	free(in);
	return NULL;
}

static int bms_can_open(struct input_ctx *ctx, struct input **ret)
{
	const struct bms_config *c = ctx->cfg;
	struct can_bus_config bc = {
		.ifname = c->port,
		.user = ctx->driver->name,
		.rx_ids = ctx->driver->rx_ids,
		.n_rx_ids = ctx->driver->n_rx_ids,
		.bitrate = c->bitrate ? c->bitrate : ctx->driver->bitrate,
		.rx_mask = ctx->driver->rx_mask,
		.manage_link = c->manage_link,
		/* a keep-alive parked longer than its period is worth nothing */
		.pending_max_age_usec = ctx->driver->keepalive_period_usec,
	};
	struct can_input *in;
	int r;

	in = calloc(1, sizeof(*in));
	if (!in) {
		return -ENOMEM;
	}
	in->base.ctx = ctx;
	in->bad_rl = (struct ratelimit)RATELIMIT_INIT(60 * USEC_PER_SEC, 5);
	/* one pack per board listed; else one BMS speaks for the bank on a CAN port */
	ctx->state->pack_count = ctx->driver->decode_frame_at ? c->n_addresses : 1;
	r = can_bus_new(ctx->event, &bc, on_rx, on_state, in, &in->bus);
	if (r < 0) {
		free(in);
		return log_error_errno(r, "BMS port '%s': %s", c->port, strerror(-r));
	}
	if (ctx->driver->keepalive && ctx->driver->keepalive_period_usec) {
		r = sd_event_add_time_relative(ctx->event, &in->keepalive, CLOCK_MONOTONIC,
					       ctx->driver->keepalive_period_usec, 0, on_keepalive,
					       in);
		if (r < 0) {
			bms_can_free(&in->base);
			return log_error_errno(r, "keep-alive timer: %s", strerror(-r));
		}
		sd_event_source_set_enabled(in->keepalive, SD_EVENT_ON);
	}
	if (can_bus_is_open(in->bus)) {
		arm_never_heard(in);
	}
	in->base.ops = &input_can_ops;
	*ret = &in->base;
	return 0;
}

static void bms_can_status(struct input *base, char *buf, size_t n)
{
	struct can_input *in = container_of(base, struct can_input, base);
	char bus[96];

	can_bus_status(in->bus, bus, sizeof(bus));
	snprintf(buf, n, "%s on %s, %llu bad frames", in->base.ctx->driver->name, bus,
		 (unsigned long long)in->bad_frames);
}

const struct input_ops input_can_ops = {
	.name = "can",
	.open = bms_can_open,
	.free = bms_can_free,
	.status = bms_can_status,
};
