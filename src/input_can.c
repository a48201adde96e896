/* SPDX-License-Identifier: MIT */
/*
 * A BMS on a SocketCAN port (pylontech-can): frames in, keep-alives out.
 *
 * Each frame the driver asked for (->rx_ids) goes through its pure
 * ->decode_frame() into br->state.packs[]; a frame that changed the state
 * runs the bridge (safety layer, urgent frames). A BMS that talks to an
 * inverter expects to hear one: ->keepalive() frames (Pylontech 0x305)
 * go out every keepalive_period_usec while the port is open.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "bms_can"
#include "bms.h"
#include "bridge.h"
#include "can_bus.h"
#include "log.h"
#include "macro.h"

struct input {
	struct bridge *br;
	struct can_bus *bus;
	sd_event_source *keepalive;
	uint64_t bad_frames;
	struct ratelimit bad_rl;
};

static void on_rx(struct can_bus *bus, const struct can_frame *f, uint64_t now, void *userdata)
{
	struct input *in = userdata;
	struct bridge *br = in->br;
	int r;

	r = br->driver->decode_frame(f, now, &br->state);
	if (r < 0) {
		in->bad_frames++;
		log_ratelimit(&in->bad_rl, now, LOG_WARNING,
			      "BMS frame 0x%03x (%u bytes) rejected: %s (%llu so far)",
			      (unsigned)(f->can_id & CAN_EFF_MASK), f->len, strerror(-r),
			      (unsigned long long)in->bad_frames);
		return;
	}
	if (r > 0) {
		bridge_bms_updated(br);
	}
}

static int on_keepalive(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct input *in = userdata;
	uint64_t period = in->br->driver->keepalive_period_usec;
	uint64_t next = usec + period, now = bridge_now(in->br);
	struct can_frame frames[4];
	int n;

	if (can_bus_is_open(in->bus)) {
		n = in->br->driver->keepalive(frames, ARRAY_SIZE(frames));
		if (n > 0) {
			can_bus_send(in->bus, frames, (size_t)n);
		}
	}
	/* after a stall (SIGSTOP, a slow system) one keep-alive, not the missed ones */
	return sd_event_source_set_time(s, next > now ? next : now + period);
}

static void on_state(struct can_bus *bus, bool open, void *userdata)
{
	struct input *in = userdata;

	in->br->input_open = open;
	if (open) {
		bridge_port_ready(in->br);
	}
}

static struct input *bms_can_free(struct input *in)
{
	if (!in) {
		return NULL;
	}
	sd_event_source_disable_unref(in->keepalive);
	can_bus_free(in->bus);
	in->br->input_open = false;
	free(in);
	return NULL;
}

static int bms_can_open(struct bridge *br, struct input **ret)
{
	const struct bms_config *c = &br->cfg.bms;
	struct can_bus_config bc = {
		.ifname = c->port,
		.user = br->driver->name,
		.rx_ids = br->driver->rx_ids,
		.n_rx_ids = br->driver->n_rx_ids,
		.bitrate = c->bitrate ? c->bitrate : br->driver->bitrate,
		.manage_link = c->manage_link,
		/* a keep-alive parked longer than its period is worth nothing */
		.pending_max_age_usec = br->driver->keepalive_period_usec,
	};
	struct input *in;
	int r;

	in = calloc(1, sizeof(*in));
	if (!in) {
		return -ENOMEM;
	}
	in->br = br;
	in->bad_rl = (struct ratelimit)RATELIMIT_INIT(60 * USEC_PER_SEC, 5);
	br->state.pack_count = 1; /* one BMS speaks for the bank on a CAN port */
	r = can_bus_new(br->event, &bc, on_rx, on_state, in, &in->bus);
	if (r < 0) {
		free(in);
		return log_error_errno(r, "BMS port '%s': %s", c->port, strerror(-r));
	}
	if (br->driver->keepalive && br->driver->keepalive_period_usec) {
		r = sd_event_add_time_relative(br->event, &in->keepalive, CLOCK_MONOTONIC,
					       br->driver->keepalive_period_usec, 0, on_keepalive,
					       in);
		if (r < 0) {
			bms_can_free(in);
			return log_error_errno(r, "keep-alive timer: %s", strerror(-r));
		}
		sd_event_source_set_enabled(in->keepalive, SD_EVENT_ON);
	}
	*ret = in;
	return 0;
}

static void bms_can_status(struct input *in, char *buf, size_t n)
{
	char bus[96];

	can_bus_status(in->bus, bus, sizeof(bus));
	snprintf(buf, n, "%s on %s, %llu bad frames", in->br->driver->name, bus,
		 (unsigned long long)in->bad_frames);
}

const struct input_ops input_can_ops = {
	.name = "can",
	.open = bms_can_open,
	.free = bms_can_free,
	.status = bms_can_status,
};
