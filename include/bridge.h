/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's one object: the event loop, the active config, the BMS
 * input, the safety layer and the inverter output, wired together.
 *
 *   BMS port --(input)--> state.packs[] --(safety)--> state.bank
 *            --(protocol encoder)--> output --> inverter
 *
 * Inputs and outputs are small ops structs chosen by transport
 * (bms_driver.transport, inverter.output); each lives in its own src/ file
 * and talks to the bridge only through the functions below.
 */
#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "battery.h"
#include "config.h"
#include "log.h"
#include "safety.h"

struct bridge;
struct observer;
struct bms_driver;
struct inverter_protocol;

/* The BMS side of the daemon (one per transport). */
struct input;
struct input_ops {
	const char *name;
	/* open the port and register event sources; may start "not connected" and retry */
	int (*open)(struct bridge *br, struct input **ret);
	struct input *(*free)(struct input *in);
	/* one short phrase for STATUS= ("jk-pb-modbus 2/2 packs, 0 errors") */
	void (*status)(struct input *in, char *buf, size_t n);
};

/* The inverter side of the daemon (one per enum output_kind). */
struct output;
struct output_ops {
	const char *name;
	int (*open)(struct bridge *br, struct output **ret);
	struct output *(*free)(struct output *out);
	/* put frames on the wire now; never blocks; NULL for polled outputs */
	int (*send)(struct output *out, const struct can_frame *frames, size_t n, uint64_t now_usec);
	void (*status)(struct output *out, char *buf, size_t n);
};

/* src/input_sim.c, input_can.c, input_serial.c, input_replay.c */
extern const struct input_ops input_sim_ops;
extern const struct input_ops input_can_ops;
extern const struct input_ops input_serial_ops;
extern const struct input_ops input_replay_ops;
/* src/output_candump.c, output_can.c, output_rs485.c */
extern const struct output_ops output_candump_ops;
extern const struct output_ops output_can_ops;
extern const struct output_ops output_rs485_ops;

struct bridge {
	sd_event *event;
	struct config cfg;
	const struct inverter_protocol *proto;
	const struct bms_driver *driver;

	struct battery_state state; /* packs[] from the BMS, bank from safety */
	struct battery_state sent;  /* what the last full set carried */
	struct safety safety;
	enum safety_mode mode;

	const struct input_ops *input_ops;
	struct input *input;
	const struct output_ops *output_ops;
	struct output *output;

	sd_event_source *tick_timer; /* protocol period (1 s for polled protocols) */
	uint64_t tick_usec;

	/* inverter presence (CAN keep-alives, RS485 polls) */
	bool inverter_present;
	uint64_t inverter_seen_usec;
	uint64_t inverter_timeout_usec;

	/* counters, for STATUS= and the benchmarks */
	uint64_t bms_updates;
	uint64_t sets_sent;
	uint64_t frames_sent;
	uint64_t urgent_frames_sent;
	uint64_t last_tx_usec;
	bool input_open;  /* set by the input when its port is open */
	bool output_open; /* set by the output when its port is open */
	bool ready_sent;
	bool input_link_up, output_link_up; /* as last told to the observers */

	struct observer *observers; /* include/observer.h; the first added first */
};

/**
 * bridge_now() - the loop's CLOCK_MONOTONIC time of this iteration.
 */
uint64_t bridge_now(struct bridge *br);

/**
 * bridge_bms_updated() - an input wrote new data into br->state.packs[].
 * Runs the safety layer and sends urgent frames (a lowered limit, a new
 * alarm) at once.
 */
void bridge_bms_updated(struct bridge *br);

/**
 * bridge_inverter_heard() - the inverter just spoke (keep-alive, request, poll).
 */
void bridge_inverter_heard(struct bridge *br, uint64_t now_usec);

/**
 * bridge_inverter_request() - a request-driven protocol (Growatt 0x301)
 * asks for the whole set: encode and send it now.
 */
void bridge_inverter_request(struct bridge *br, uint64_t now_usec);

/**
 * bridge_output_state() - the state an RS485 responder may answer from now.
 * Return: the state (bank shaped by the safety layer), or NULL when the
 * safety layer says nothing may be sent (not ready, or comm-loss "stop").
 */
const struct battery_state *bridge_output_state(struct bridge *br, uint64_t now_usec);

/**
 * bridge_next_tick_usec() - when the tick that was due at @due_usec and
 * runs at @now_usec fires next: @due_usec + @period_usec, or one period
 * after @now_usec if that is already past (no burst after a stall).
 */
uint64_t bridge_next_tick_usec(uint64_t due_usec, uint64_t period_usec, uint64_t now_usec);

/**
 * bridge_init() - open both sides with @cfg and start the timers.
 * Return: 0, or a negative errno (logged).
 */
int bridge_init(struct bridge *br, sd_event *e, const struct config *cfg);

/**
 * bridge_reload() - switch to @cfg (already validated). Same ports: applied
 * in place. Other ports: both sides reopened; if that fails the old
 * configuration is restored. Return: 0, -EINVAL if the old one was kept.
 */
int bridge_reload(struct bridge *br, const struct config *cfg);

/**
 * bridge_done() - close both sides and the timers.
 */
void bridge_done(struct bridge *br);

/**
 * bridge_status() - the one-line status for STATUS= and the log.
 */
void bridge_status(struct bridge *br, char *buf, size_t n);

/**
 * bridge_port_ready() - an input or output reports its port open (or
 * closed); READY=1 goes out once both sides have been open.
 */
void bridge_port_ready(struct bridge *br);
