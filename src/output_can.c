/* SPDX-License-Identifier: MIT */
/*
 * The inverter on a SocketCAN port: frames out, keep-alives in.
 *
 * The port (src/can_bus.c) receives only the ids the protocol lists in
 * ->rx_ids; each goes through ->inverter_rx(), which says whether it was a
 * keep-alive (the inverter is there) or a request for the whole set
 * (Growatt 0x301-style protocols). The bridge keeps the presence
 * bookkeeping and its log lines; this file only connects the two, and
 * keeps two small things of its own:
 *   - a request that comes sooner than ->request_min_interval_usec after
 *     the last one answered proves presence but is not answered (a
 *     Growatt SPH6000 asks every 500 ms, its GBLI6532 pack answers once a
 *     second: see protocols/growatt.c);
 *   - an inverter's shutdown request (Luxpower 0x300): logged once per
 *     change and shown in STATUS. The gateway cannot switch a BMS off and
 *     changes no limit because of it.
 *
 * The socket also passes those ids as 29-bit frames (a Schneider XW Pro
 * acks with an extended-id 0x305); ->inverter_rx() decides what they mean.
 *
 * Frames the bus refuses are parked by the port for at most one protocol
 * period (a newer set is due by then; far below any stale timeout), and
 * only while the safety mode still sends: from STOP or NOT_READY on, the
 * parked set is dropped, never released late (issue 11: a queue held for
 * 12 s used to release the last NORMAL set 10.4 s past its stale deadline).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "output_can"
#include "adapter.h"
#include "macro.h"
#include "can_bus.h"
#include "log.h"
#include "protocol.h"

struct can_output {
	struct output base; /* ops, ctx */
	struct can_bus *bus;
	uint64_t answered_usec; /* last request answered, 0: none yet */
	bool shutdown_asked;	/* the inverter's last 0x300 asked for a shutdown */
};

static void on_shutdown(struct can_output *out, bool asked, uint64_t now)
{
	out->base.ctx->up->heard(out->base.ctx, now);
	if (asked == out->shutdown_asked) {
		return; /* once per change */
	}
	out->shutdown_asked = asked;
	if (asked) {
		log_notice("Inverter asks the battery to shut down (%s remote command); "
			   "the gateway cannot switch the BMS off, limits unchanged",
			   out->base.ctx->proto->name);
	} else {
		log_notice("Inverter no longer asks the battery to shut down");
	}
}

static void on_rx(struct can_bus *bus, const struct can_frame *f, uint64_t now, void *userdata)
{
	struct can_output *out = userdata;
	const struct inverter_protocol *proto = out->base.ctx->proto;
	bool ext = (f->can_id & CAN_EFF_FLAG) != 0;
	int what;

	if (!proto->inverter_rx) {
		return;
	}
	what = proto->inverter_rx(f);
	log_debug(ext ? "inverter frame 0x%08x (29-bit): %s" : "inverter frame 0x%03x (11-bit): %s",
		  (unsigned)(f->can_id & (ext ? CAN_EFF_MASK : CAN_SFF_MASK)),
		  what == PROTOCOL_RX_KEEPALIVE ? "keep-alive"
		  : what == PROTOCOL_RX_REQUEST ? "request"
						: "ignored");
	switch (what) {
	case PROTOCOL_RX_KEEPALIVE:
		out->base.ctx->up->heard(out->base.ctx, now);
		break;
	case PROTOCOL_RX_REQUEST:
		if (out->answered_usec &&
		    now - out->answered_usec < proto->request_min_interval_usec) {
			out->base.ctx->up->heard(out->base.ctx, now); /* asked again too soon */
			break;
		}
		out->answered_usec = now;
		out->base.ctx->up->request(out->base.ctx, now);
		break;
	case PROTOCOL_RX_SHUTDOWN_ASKED:
		on_shutdown(out, true, now);
		break;
	case PROTOCOL_RX_SHUTDOWN_CLEARED:
		on_shutdown(out, false, now);
		break;
	default:
		break;
	}
}

/* parked frames may still go out only in a mode that sends */
static bool may_send(struct can_bus *bus, uint64_t now_usec, void *userdata)
{
	const struct can_output *out = userdata;

	return out->base.ctx->up->may_send(out->base.ctx);
}

static void on_state(struct can_bus *bus, bool open, void *userdata)
{
	struct can_output *out = userdata;

	out->base.ctx->open = open;
	if (open) {
		output_port_changed(out->base.ctx);
	}
}

static struct output *can_out_free(struct output *base)
{
	struct can_output *out = base ? container_of(base, struct can_output, base) : NULL;

	if (!out) {
		return NULL;
	}
	can_bus_free(out->bus);
	out->base.ctx->open = false;
	free(out);
	return NULL;
}

static int can_out_open(struct output_ctx *ctx, struct output **ret)
{
	const struct inverter_config *c = ctx->cfg;
	struct can_bus_config bc = {
		.ifname = c->port,
		.user = ctx->proto->name,
		.rx_ids = ctx->proto->rx_ids,
		.n_rx_ids = ctx->proto->n_rx_ids,
		.rx_extended = true,
		.bitrate = c->bitrate ? c->bitrate : ctx->proto->bitrate,
		.manage_link = c->manage_link,
		/* one period: the next set replaces a parked one before it is old */
		.pending_max_age_usec = ctx->proto->period_usec ? ctx->proto->period_usec
								: CAN_BUS_PENDING_AGE_DEFAULT_USEC,
		.may_send = may_send,
	};
	struct can_output *out;
	int r;

	out = calloc(1, sizeof(*out));
	if (!out) {
		return -ENOMEM;
	}
	out->base.ctx = ctx;
	r = can_bus_new(ctx->event, &bc, on_rx, on_state, out, &out->bus);
	if (r < 0) {
		free(out);
		return log_error_errno(r, "inverter port '%s': %s", c->port, strerror(-r));
	}
	out->base.ops = &output_can_ops;
	*ret = &out->base;
	return 0;
}

static int can_out_send(struct output *base, const struct can_frame *frames, size_t n,
			uint64_t now_usec)
{
	struct can_output *out = container_of(base, struct can_output, base);

	return can_bus_send(out->bus, frames, n);
}

static void can_out_status(struct output *base, char *buf, size_t n)
{
	struct can_output *out = container_of(base, struct can_output, base);
	size_t len;

	can_bus_status(out->bus, buf, n);
	len = strnlen(buf, n);
	if (out->shutdown_asked && len < n) {
		snprintf(buf + len, n - len, ", inverter asks battery shutdown");
	}
}

static void can_out_stats(struct output *base, struct inverter_link_stats *ret)
{
	struct can_output *out = container_of(base, struct can_output, base);
	const struct can_bus_stats *st = can_bus_get_stats(out->bus);

	*ret = (struct inverter_link_stats){
		.bus_state = !can_bus_is_open(out->bus)
				     ? "down"
				     : can_bus_state_name(can_bus_get_state(out->bus)),
		.tx_frames = st->tx_frames,
		.rx_frames = st->rx_frames,
		.tx_dropped = st->tx_dropped + st->tx_stale,
		.rx_overflows = st->rx_overflows,
		.error_frames = st->error_frames,
		.bus_off = st->bus_off,
		.top_other_adr = LINK_STATS_NONE,
		.top_cid2 = LINK_STATS_NONE,
		.err_cid2 = LINK_STATS_NONE,
	};
}

const struct output_ops output_can_ops = {
	.name = "can",
	.open = can_out_open,
	.free = can_out_free,
	.send = can_out_send,
	.status = can_out_status,
	.stats = can_out_stats,
};
