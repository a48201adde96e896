/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one header an input (BMS side) or an output (inverter side) is
 * written against. An adapter never sees the bridge: it gets a context
 * with its event loop, its slice of the configuration, its driver or
 * protocol, the state it may write, and the calls up into the bridge.
 *
 * Each adapter file embeds the base struct and finds itself with
 * container_of() (as seatd's backends do):
 *
 *	struct can_input {
 *		struct input base;	// ops' handle; base.ctx is the context
 *		struct can_bus *bus;
 *	};
 *	static int can_open(struct input_ctx *ctx, struct input **ret)
 *	{
 *		struct can_input *in = calloc(1, sizeof(*in));
 *		...
 *		in->base.ctx = ctx;
 *		*ret = &in->base;
 *	}
 *
 * and is listed once in src/bridge.c (input_for() / output_for()).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/can.h>
#include <systemd/sd-event.h>

#include "battery.h"
#include "config.h"
#include "link_stats.h"

struct bms_driver;
struct inverter_protocol;

/* ---- inputs: the BMS side --------------------------------------------------- */

struct input_ctx;

/* the calls up into the bridge */
struct input_up {
	/* the loop's CLOCK_MONOTONIC time of this iteration */
	uint64_t (*now)(struct input_ctx *ctx);
	/* new data in state->packs[]: the safety layer runs, urgent frames go out */
	void (*updated)(struct input_ctx *ctx);
	/* ctx->open changed (READY=1 once both sides have been open) */
	void (*port_changed)(struct input_ctx *ctx);
};

struct input_ctx {
	sd_event *event;
	const struct bms_config *cfg; /* bms { } */
	const struct bms_driver *driver;
	struct battery_state *state; /* the input writes packs[] and pack_count */
	bool open;		     /* the input says whether its port is open */
	const struct input_up *up;
};

struct input {
	const struct input_ops *ops;
	struct input_ctx *ctx;
};

struct input_ops {
	const char *name;
	/* open the port and register event sources; may start "not connected" and retry */
	int (*open)(struct input_ctx *ctx, struct input **ret);
	struct input *(*free)(struct input *in);
	/* one short phrase for STATUS= ("jk-pb-modbus 2/2 packs, 0 errors") */
	void (*status)(struct input *in, char *buf, size_t n);
};

static inline uint64_t input_now(struct input_ctx *ctx)
{
	return ctx->up->now(ctx);
}

static inline void input_updated(struct input_ctx *ctx)
{
	ctx->up->updated(ctx);
}

static inline void input_port_changed(struct input_ctx *ctx)
{
	ctx->up->port_changed(ctx);
}

/* src/input_sim.c, input_can.c, input_serial.c, input_replay.c */
extern const struct input_ops input_sim_ops;
extern const struct input_ops input_can_ops;
extern const struct input_ops input_serial_ops;
extern const struct input_ops input_replay_ops;

/* ---- outputs: the inverter side ---------------------------------------------- */

struct output_ctx;

struct output_up {
	uint64_t (*now)(struct output_ctx *ctx);
	/* ctx->open changed */
	void (*port_changed)(struct output_ctx *ctx);
	/* the inverter just spoke (keep-alive, request, poll) */
	void (*heard)(struct output_ctx *ctx, uint64_t now_usec);
	/* a request-driven protocol (Growatt 0x301) asks for the whole set now */
	void (*request)(struct output_ctx *ctx, uint64_t now_usec);
	/*
	 * RS485: the state to answer a poll from (the bank shaped by the
	 * safety layer), or NULL when nothing may be sent (not ready, stop)
	 */
	const struct battery_state *(*answer_state)(struct output_ctx *ctx, uint64_t now_usec);
	/* RS485: an answer of @n frames went out */
	void (*answered)(struct output_ctx *ctx, size_t n, uint64_t now_usec);
	/* may parked frames still go out (no for NOT_READY and STOP)? */
	bool (*may_send)(struct output_ctx *ctx);
};

struct output_ctx {
	sd_event *event;
	const struct inverter_config *cfg; /* inverter { } */
	const struct inverter_protocol *proto;
	uint64_t inverter_timeout_usec; /* silence after which the inverter is gone */
	bool open;			/* the output says whether its port is open */
	const struct output_up *up;
};

struct output {
	const struct output_ops *ops;
	struct output_ctx *ctx;
};

struct output_ops {
	const char *name;
	int (*open)(struct output_ctx *ctx, struct output **ret);
	struct output *(*free)(struct output *out);
	/* put frames on the wire now; never blocks; NULL for polled outputs */
	int (*send)(struct output *out, const struct can_frame *frames, size_t n,
		    uint64_t now_usec);
	void (*status)(struct output *out, char *buf, size_t n);
	/* the link's counters for the observers; NULL: none */
	void (*stats)(struct output *out, struct inverter_link_stats *ret);
};

static inline uint64_t output_now(struct output_ctx *ctx)
{
	return ctx->up->now(ctx);
}

static inline void output_port_changed(struct output_ctx *ctx)
{
	ctx->up->port_changed(ctx);
}

/* src/output_candump.c, output_can.c, output_rs485.c */
extern const struct output_ops output_candump_ops;
extern const struct output_ops output_can_ops;
extern const struct output_ops output_rs485_ops;
