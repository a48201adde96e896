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
 * and sees only its context (include/adapter.h), never this struct.
 */
#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "adapter.h"
#include "battery.h"
#include "config.h"
#include "log.h"
#include "safety.h"

struct bridge;
struct observer;
struct bms_driver;
struct inverter_protocol;

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
	struct input_ctx in_ctx; /* what the input sees of the bridge (adapter.h) */
	const struct output_ops *output_ops;
	struct output *output;
	struct output_ctx out_ctx; /* what the output sees */

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
	bool ready_sent;
	bool input_link_up, output_link_up; /* as last told to the observers */

	struct observer *observers; /* include/observer.h; the first added first */
	/* the MQTT client, its phrase in the status line; set by main.c, NULL: MQTT off */
	const struct mqtt_client *mqtt;
};

/**
 * bridge_now() - the loop's CLOCK_MONOTONIC time of this iteration.
 */
uint64_t bridge_now(struct bridge *br);

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

