/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The safety and charge-control layer: one PURE module between the BMS
 * state (bs->packs[]) and the encoders (bs->bank). It decides what the
 * inverter is told. No I/O, no clock reads, no logging: the caller passes
 * the time in and logs the transitions it reports.
 *
 * Invariants (checked by tests/test-safety-invariants.c):
 *   - bank limits are never above a user cap or any pack's own limit;
 *   - nothing on the wire is derived from data older than stale_timeout;
 *   - until the first complete read, the output mode is NOT_READY.
 */
#include <stdbool.h>
#include <stdint.h>

#include "battery.h"

struct battery_state;
struct conf_key;
struct inverter_protocol;

enum safety_mode {
	SAFETY_MODE_NOT_READY, /* no complete read yet: send nothing */
	SAFETY_MODE_NORMAL,    /* fresh data, limits shaped */
	SAFETY_MODE_HOLD,      /* BMS silent: conservative limits for a while */
	SAFETY_MODE_ZERO,      /* BMS lost: CCL = DCL = 0, link-lost alarm, keep sending */
	SAFETY_MODE_STOP,      /* BMS lost: stop transmitting */
};

enum safety_comm_loss {
	SAFETY_COMM_LOSS_AUTO, /* the inverter profile's choice */
	SAFETY_COMM_LOSS_ZERO,
	SAFETY_COMM_LOSS_STOP,
	SAFETY_COMM_LOSS_HOLD,
};

struct safety_config {
	int comm_loss;			/* enum safety_comm_loss */
	uint64_t stale_timeout_usec;	/* data older than this is not used */
	uint64_t hold_max_usec;		/* hold: at most this long, then zero */
	uint64_t zero_to_stop_usec;	/* zero: after this long, stop (0 = never) */
	uint32_t recovery_reads;	/* good reads needed to leave zero/stop */
	uint32_t max_charge_voltage_mv; /* user cap on CVL */
	uint32_t max_charge_current_ma; /* user cap on CCL */
	uint32_t max_discharge_current_ma; /* user cap on DCL */
	uint32_t min_discharge_voltage_mv; /* DVL floor sent */
	/* further rules (taper, derating, plausibility...) are added by safety.c */
};

/*
 * The keys of the config's safety { } group are defined in src/safety.c
 * (safety_conf_keys[], safety_conf_n_keys) and declared in config.h, where
 * struct conf_key is complete.
 */

/* A mode transition, reported by safety_evaluate() for the caller to log once. */
struct safety_event {
	bool changed;
	enum safety_mode from, to;
	char reason[96]; /* "BMS silent for 10.0 s (stale_timeout 10 s)" */
};

/*
 * The layer's state. Embedded in the daemon; owned by src/safety.c (fields
 * may grow, callers use only the functions below).
 */
struct safety {
	struct safety_config cfg;
	enum safety_mode mode;
	int comm_loss; /* effective enum safety_comm_loss (profile applied) */
	uint64_t mode_since_usec;
	uint32_t good_reads;
	uint64_t last_read_usec[BATTERY_PACKS_MAX];
	uint64_t rejected; /* implausible values rejected so far */
};

/**
 * safety_init() - start in NOT_READY with @cfg and the profile of @proto.
 */
void safety_init(struct safety *s, const struct safety_config *cfg,
		 const struct inverter_protocol *proto);

/**
 * safety_evaluate() - decide what the inverter is told at @now_usec.
 * @s: the layer
 * @bs: reads bs->packs[], writes bs->bank, bs->packs_online
 * @ret_event: may be NULL; a transition is reported there
 * Return: the mode now in force (enum safety_mode).
 */
enum safety_mode safety_evaluate(struct safety *s, struct battery_state *bs, uint64_t now_usec,
				 struct safety_event *ret_event);

/**
 * safety_mode_name() - "not-ready", "normal", "hold", "zero", "stop".
 */
const char *safety_mode_name(enum safety_mode mode);
