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
 *   - nothing on the wire is derived from data older than stale_timeout
 *     (HOLD excepted: by policy it keeps a share of the last limits, for
 *     at most hold_max and only inside the hold cell window);
 *   - until the first complete read, the output mode is NOT_READY.
 *
 * Silence is noticed only when safety_evaluate() runs: the caller must run
 * it periodically (every transmit tick), not only when the BMS writes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "battery.h"
#include "conf_key.h"

struct battery_state;
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

/* The rules that can lower a limit below the BMS's (struct safety, *_by). */
enum safety_by {
	SAFETY_BY_TAPER = 1u << 0,  /* charge taper near full, discharge taper near empty */
	SAFETY_BY_CELL = 1u << 1,   /* the cell rules: cell ahead, cells x cell_max_mv, a cell too high */
	SAFETY_BY_DERATE = 1u << 2, /* the temperature tables */
};

struct safety_config {
	/* comm loss (bmsbridge.conf(5), "Comm-loss policy") */
	int comm_loss;			/* enum safety_comm_loss */
	uint64_t stale_timeout_usec;	/* data older than this is not used */
	uint64_t hold_max_usec;		/* hold: at most this long, then zero */
	uint64_t zero_to_stop_usec;	/* zero: after this long, stop (0 = never) */
	uint32_t recovery_reads;	/* good reads needed to leave hold/zero/stop */
	uint16_t hold_cell_min_mv;	/* hold only while the last cells were inside */
	uint16_t hold_cell_max_mv;	/*   [hold_cell_min_mv, hold_cell_max_mv] */
	uint8_t hold_current_pct;	/* hold: CCL/DCL = this share of the last ones */
	uint8_t min_packs_online;	/* fewer fresh packs than this: comm loss */

	/* user caps: the final clamp */
	uint32_t max_charge_voltage_mv; /* user cap on CVL */
	uint32_t max_charge_current_ma; /* user cap on CCL */
	uint32_t max_discharge_current_ma; /* user cap on DCL */
	uint32_t min_discharge_voltage_mv; /* DVL floor sent */

	/* charge control by cell voltage */
	uint16_t cell_max_mv;		 /* CVL never pushes a cell above this */
	uint16_t cell_full_mv;		 /* highest cell here: CCL 0 */
	uint16_t charge_taper_start_mv;	 /* highest cell here: taper (and CVL rule) starts */
	uint16_t cell_empty_mv;		 /* lowest cell here: DCL 0 */
	uint16_t discharge_taper_mv;	 /* DCL tapers over this band above cell_empty_mv */
	uint32_t ramp_up_ma_per_sec;	 /* increases of CCL/DCL at most this fast */

	/* temperature derating, 0.1 degC; see derate() in src/safety.c */
	int16_t charge_temp_min_dc, charge_cold_full_dc, charge_hot_start_dc, charge_temp_max_dc;
	uint8_t charge_cold_pct, charge_hot_pct;
	int16_t discharge_temp_min_dc, discharge_cold_full_dc, discharge_hot_start_dc,
		discharge_temp_max_dc;
	uint8_t discharge_cold_pct, discharge_hot_pct;

	/* force-charge request, with hysteresis (0 disables a trigger) */
	uint8_t force_charge_soc_pct, force_charge_release_soc_pct;
	uint16_t force_charge_cell_mv, force_charge_release_cell_mv;

	/* plausibility */
	uint16_t cell_valid_min_mv, cell_valid_max_mv; /* chemistry bounds */
	uint16_t cell_jump_mv;			       /* largest believable step per read */
	uint32_t pack_sum_tolerance_mv;		       /* |sum of cells - pack voltage| */
	uint32_t soc_rate_pct_per_min;		       /* largest believable SOC change */
	int16_t temp_valid_min_dc, temp_valid_max_dc;
	uint16_t temp_jump_dc;	     /* largest believable temperature step per read */
	uint32_t spike_confirm_reads; /* an implausible value is taken after this many reads */
};

/* The keys of the config's safety { } group (include/conf_key.h), read by src/config.c. */
extern const struct conf_key safety_conf_keys[];
extern const size_t safety_conf_n_keys;

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
/* Per-pack filter state: the last good (plausible) values, and candidates. */
struct safety_pack {
	uint64_t group_usec[BATTERY_GROUP__COUNT]; /* group times already filtered */
	unsigned seen_mask;			   /* groups ever received (1 << group) */
	bool have_cells, have_voltage, have_soc, have_temps;
	bool online;	/* fresh and complete at the last evaluation */
	/*
	 * A read is one whole set: every group the pack sends (seen_mask and
	 * the required ones) written again since the last read. A group
	 * written several times in one read counts once.
	 */
	unsigned read_mask;  /* groups written since the last complete read */
	bool read_rejected;  /* a value of the read under way was rejected */
	uint32_t good_reads; /* consecutive complete reads, online, nothing rejected */
	struct battery_pack taken; /* the raw groups as last taken, to tell a new write */
	uint8_t cell_pending[BATTERY_CELLS_MAX + 2]; /* +2: extremes-only BMS */
	int32_t cell_cand[BATTERY_CELLS_MAX + 2];
	uint8_t temp_pending[BATTERY_TEMPS_MAX + 2];
	int32_t temp_cand[BATTERY_TEMPS_MAX + 2];
	uint8_t voltage_pending, soc_pending;
	int32_t voltage_cand, soc_cand;
	uint64_t soc_usec;	 /* when the good SOC was taken */
	struct battery_pack good; /* the pack as the rules see it (filtered) */
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
	uint32_t good_reads; /* recovery: good reads of the pack that decides (see step_mode) */
	uint64_t last_read_usec[BATTERY_PACKS_MAX];
	uint64_t rejected; /* implausible values rejected so far */
	/* rejected, by kind */
	uint64_t rejected_cells, rejected_voltage, rejected_soc, rejected_temps;
	char last_rejected[96];	 /* the last rejection in words, for a rate-limited log */
	char reason[96];	   /* why the current mode is in force */
	char conflict[96];	   /* "DVL 48.0 V >= CVL 14.2 V": nothing may flow; "" if none */
	uint64_t first_complete_usec; /* NOT_READY: first pack complete, 0 = none yet */
	uint64_t last_eval_usec;
	uint32_t out_ccl_ma, out_dcl_ma; /* after slew limiting */
	/*
	 * What set the NORMAL bank's limits, for observers (recorded only,
	 * never read by the layer): SAFETY_BY_* bits of the rules that lowered
	 * CVL, CCL, DCL below a pack's own, over the packs online; and whether
	 * the ramp held CCL / DCL below what the rules and caps allowed.
	 */
	uint8_t cvl_by, ccl_by, dcl_by;
	bool ccl_ramped, dcl_ramped;
	bool force_charge;
	bool last_cells_in_window; /* at the last NORMAL evaluation */
	struct battery_pack last_bank; /* the last NORMAL output, for hold */
	unsigned packs_seen; /* slots [0, packs_seen) were ever evaluated; the rest never read */
	struct safety_pack pk[BATTERY_PACKS_MAX];
};

/**
 * safety_init() - start in NOT_READY with @cfg and the profile of @proto.
 */
void safety_init(struct safety *s, const struct safety_config *cfg,
		 const struct inverter_protocol *proto);

/**
 * safety_reconfigure() - new settings (a reload), keeping the mode, the
 * filters and the ramp; they bind at the next safety_evaluate().
 */
void safety_reconfigure(struct safety *s, const struct safety_config *cfg,
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
 * safety_config_defaults() - fill @cfg with the defaults of safety_conf_keys[].
 */
void safety_config_defaults(struct safety_config *cfg);

/**
 * safety_config_check() - cross-key checks the per-key ranges cannot make.
 * @err: a one-line explanation on failure
 * Return: 0, or -EINVAL.
 */
int safety_config_check(const struct safety_config *cfg, char *err, size_t n);

/**
 * safety_comm_loss_name() - "auto", "zero", "stop", "hold".
 */
const char *safety_comm_loss_name(int comm_loss);

/**
 * safety_profile_comm_loss() - the comm-loss policy of the inverter
 * profile for @proto_name ("auto" resolves to this).
 * Return: enum safety_comm_loss, never AUTO.
 */
int safety_profile_comm_loss(const char *proto_name);

/**
 * safety_mode_name() - "not-ready", "normal", "hold", "zero", "stop".
 */
const char *safety_mode_name(enum safety_mode mode);
