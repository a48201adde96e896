/* SPDX-License-Identifier: MIT */
/*
 * The safety and charge-control layer: what the inverter is told.
 *
 * Model. safety_evaluate() runs on every BMS update and every transmit
 * tick, with the time passed in. Each run:
 *
 *   1. filters every group a pack wrote since the last run (a "read"):
 *      cell voltages, pack voltage, SOC and temperatures pass only if they
 *      are within chemistry bounds and move no further than believable from
 *      the last good value; an implausible value is counted (s->rejected)
 *      and the last good one kept until the same new value has been seen on
 *      spike_confirm_reads consecutive reads. The rules below read only the
 *      filtered copy (struct safety_pack.good), never bs->packs[] directly;
 *   2. decides which packs are online: every group the inverter needs
 *      (electrical, capacity, limits) plus every group the pack has ever
 *      sent, all younger than stale_timeout;
 *   3. steps the mode machine (the only transitions there are):
 *
 *        NOT_READY -> NORMAL   all packs complete (or, after one more
 *                              stale_timeout, at least min_packs_online)
 *        NORMAL -> HOLD|ZERO|STOP  fewer than min_packs_online online:
 *                              the comm-loss policy (HOLD only while the
 *                              last cells were inside the hold window,
 *                              else ZERO)
 *        HOLD -> ZERO          after hold_max
 *        ZERO -> STOP          after zero_to_stop (0: never)
 *        HOLD|ZERO|STOP -> NORMAL  after recovery_reads consecutive good reads
 *
 *      each reported once through struct safety_event with its reason;
 *   4. writes bs->bank: in NORMAL the minimum of every rule (the BMS's own
 *      limits, taper, cell-ahead CVL, temperature tables, discharge floor),
 *      aggregated over the online packs, clamped by the user caps last and
 *      slew limited (decreases at once, increases ramped); in HOLD a share
 *      of the last NORMAL limits; in ZERO and STOP CCL = DCL = 0 with
 *      BATTERY_ALARM_BMS_LINK_LOST; in NOT_READY a bank with no groups, so
 *      encoders refuse to send (-ENODATA).
 *
 * Pure: no I/O, no clock, no logging, no allocation.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "battery.h"
#include "conf_key.h"
#include "macro.h"
#include "protocol.h"
#include "safety.h"
#include "safety_internal.h"

static const char *const comm_loss_names[] = { "auto", "zero", "stop", "hold", NULL };

#define U(field) offsetof(struct safety_config, field), sizeof(((struct safety_config *)0)->field)

/*
 * The safety { } group of bmsbridge.conf. File units in the key names;
 * each default is explained in bmsbridge.conf(5). Defaults are for 16s LFP.
 */
const struct conf_key safety_conf_keys[] = {
	/* comm loss: what the inverter is told when the BMS goes silent */
	{ "comm_loss", CONF_ENUM, U(comm_loss), 0, 3, SAFETY_COMM_LOSS_AUTO,
	  .enum_names = comm_loss_names },
	{ "stale_timeout_ms", CONF_UINT, U(stale_timeout_usec), 500, 600000, 10000, .scale = 1000,
	  .unit = "ms" },
	{ "hold_max_s", CONF_UINT, U(hold_max_usec), 0, 3600, 300, .scale = 1000000, .unit = "s" },
	{ "hold_cell_min_mv", CONF_UINT, U(hold_cell_min_mv), 0, 5000, 3100, .unit = "mV" },
	{ "hold_cell_max_mv", CONF_UINT, U(hold_cell_max_mv), 0, 5000, 3400, .unit = "mV" },
	{ "hold_current_pct", CONF_UINT, U(hold_current_pct), 0, 100, 50, .unit = "%" },
	{ "zero_to_stop_s", CONF_UINT, U(zero_to_stop_usec), 0, 86400, 0, .scale = 1000000,
	  .unit = "s" },
	{ "recovery_reads", CONF_UINT, U(recovery_reads), 1, 100, 3, .unit = "reads" },
	{ "min_packs_online", CONF_UINT, U(min_packs_online), 1, BATTERY_PACKS_MAX, 1,
	  .unit = "packs" },
	/* user caps: 3.45 V per cell, 0.5 C of 200 Ah, 3.0 V per cell */
	{ "max_charge_voltage_mv", CONF_UINT, U(max_charge_voltage_mv), 1000, 1000000, 55200,
	  .unit = "mV" },
	{ "max_charge_current_a", CONF_UINT, U(max_charge_current_ma), 0, 2000, 100, .scale = 1000,
	  .unit = "A" },
	{ "max_discharge_current_a", CONF_UINT, U(max_discharge_current_ma), 0, 2000, 100,
	  .scale = 1000, .unit = "A" },
	{ "min_discharge_voltage_mv", CONF_UINT, U(min_discharge_voltage_mv), 0, 1000000, 48000,
	  .unit = "mV" },
	/* charge control by cell voltage (LFP: the knee starts near 3.40 V) */
	{ "cell_max_mv", CONF_UINT, U(cell_max_mv), 1000, 5000, 3550, .unit = "mV" },
	{ "cell_full_mv", CONF_UINT, U(cell_full_mv), 1000, 5000, 3500, .unit = "mV" },
	{ "charge_taper_start_mv", CONF_UINT, U(charge_taper_start_mv), 1000, 5000, 3400,
	  .unit = "mV" },
	{ "cell_empty_mv", CONF_UINT, U(cell_empty_mv), 0, 5000, 2900, .unit = "mV" },
	{ "discharge_taper_mv", CONF_UINT, U(discharge_taper_mv), 0, 2000, 150, .unit = "mV" },
	{ "ramp_up_a_per_s", CONF_UINT, U(ramp_up_ma_per_sec), 1, 10000, 10, .scale = 1000,
	  .unit = "A/s" },
	/* temperature tables: no charge near 0 degC (plating), derate when hot */
	{ "charge_temp_min_c", CONF_INT, U(charge_temp_min_dc), -40, 100, 2, .scale = 10,
	  .unit = "degC" },
	{ "charge_cold_full_c", CONF_INT, U(charge_cold_full_dc), -40, 100, 15, .scale = 10,
	  .unit = "degC" },
	{ "charge_cold_pct", CONF_UINT, U(charge_cold_pct), 0, 100, 20, .unit = "%" },
	{ "charge_hot_start_c", CONF_INT, U(charge_hot_start_dc), -40, 100, 40, .scale = 10,
	  .unit = "degC" },
	{ "charge_temp_max_c", CONF_INT, U(charge_temp_max_dc), -40, 100, 50, .scale = 10,
	  .unit = "degC" },
	{ "charge_hot_pct", CONF_UINT, U(charge_hot_pct), 0, 100, 25, .unit = "%" },
	{ "discharge_temp_min_c", CONF_INT, U(discharge_temp_min_dc), -40, 100, -15, .scale = 10,
	  .unit = "degC" },
	{ "discharge_cold_full_c", CONF_INT, U(discharge_cold_full_dc), -40, 100, 0, .scale = 10,
	  .unit = "degC" },
	{ "discharge_cold_pct", CONF_UINT, U(discharge_cold_pct), 0, 100, 30, .unit = "%" },
	{ "discharge_hot_start_c", CONF_INT, U(discharge_hot_start_dc), -40, 100, 50, .scale = 10,
	  .unit = "degC" },
	{ "discharge_temp_max_c", CONF_INT, U(discharge_temp_max_dc), -40, 100, 60, .scale = 10,
	  .unit = "degC" },
	{ "discharge_hot_pct", CONF_UINT, U(discharge_hot_pct), 0, 100, 30, .unit = "%" },
	/* force charge, with hysteresis */
	{ "force_charge_soc_pct", CONF_UINT, U(force_charge_soc_pct), 0, 100, 5, .unit = "%" },
	{ "force_charge_release_soc_pct", CONF_UINT, U(force_charge_release_soc_pct), 0, 100, 10,
	  .unit = "%" },
	{ "force_charge_cell_mv", CONF_UINT, U(force_charge_cell_mv), 0, 5000, 2950, .unit = "mV" },
	{ "force_charge_release_cell_mv", CONF_UINT, U(force_charge_release_cell_mv), 0, 5000,
	  3150, .unit = "mV" },
	/* plausibility: bounds, believable steps per read, debounce */
	{ "cell_valid_min_mv", CONF_UINT, U(cell_valid_min_mv), 0, 5000, 2000, .unit = "mV" },
	{ "cell_valid_max_mv", CONF_UINT, U(cell_valid_max_mv), 0, 5000, 4000, .unit = "mV" },
	{ "cell_jump_mv", CONF_UINT, U(cell_jump_mv), 1, 5000, 300, .unit = "mV" },
	{ "pack_sum_tolerance_mv", CONF_UINT, U(pack_sum_tolerance_mv), 1, 100000, 1500,
	  .unit = "mV" },
	{ "soc_rate_pct_per_min", CONF_UINT, U(soc_rate_pct_per_min), 1, 100, 5, .unit = "%/min" },
	{ "temp_valid_min_c", CONF_INT, U(temp_valid_min_dc), -100, 200, -40, .scale = 10,
	  .unit = "degC" },
	{ "temp_valid_max_c", CONF_INT, U(temp_valid_max_dc), -100, 200, 100, .scale = 10,
	  .unit = "degC" },
	{ "temp_jump_c", CONF_UINT, U(temp_jump_dc), 1, 200, 10, .scale = 10, .unit = "degC" },
	{ "spike_confirm_reads", CONF_UINT, U(spike_confirm_reads), 1, 100, 3, .unit = "reads" },
};
const size_t safety_conf_n_keys = ARRAY_SIZE(safety_conf_keys);

#undef U

/* store @v (file units) into the field @k describes, scaled */
static void key_store(const struct conf_key *k, void *base, int64_t v)
{
	char *p = (char *)base + k->offset;

	v *= k->scale ? k->scale : 1;
	switch (k->size) {
	case 1: {
		uint8_t x = (uint8_t)v;
		memcpy(p, &x, 1);
		break;
	}
	case 2: {
		uint16_t x = (uint16_t)v;
		memcpy(p, &x, 2);
		break;
	}
	case 4: {
		uint32_t x = (uint32_t)v;
		memcpy(p, &x, 4);
		break;
	}
	case 8: {
		uint64_t x = (uint64_t)v;
		memcpy(p, &x, 8);
		break;
	}
	default:
		break;
	}
}

void safety_config_defaults(struct safety_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < safety_conf_n_keys; i++) {
		const struct conf_key *k = &safety_conf_keys[i];

		if (k->type == CONF_ENUM) {
			*(int *)(void *)((char *)cfg + k->offset) = (int)k->def;
		} else {
			key_store(k, cfg, k->def);
		}
	}
}

int safety_config_check(const struct safety_config *c, char *err, size_t n)
{
	const char *why = NULL;

	if (c->charge_taper_start_mv >= c->cell_full_mv) {
		why = "charge_taper_start_mv must be below cell_full_mv";
	} else if (c->cell_full_mv > c->cell_max_mv) {
		why = "cell_full_mv must not be above cell_max_mv";
	} else if (c->cell_valid_min_mv >= c->cell_valid_max_mv) {
		why = "cell_valid_min_mv must be below cell_valid_max_mv";
	} else if (c->hold_cell_min_mv > c->hold_cell_max_mv) {
		why = "hold_cell_min_mv must not be above hold_cell_max_mv";
	} else if (c->charge_temp_min_dc > c->charge_cold_full_dc ||
		   c->charge_cold_full_dc > c->charge_hot_start_dc ||
		   c->charge_hot_start_dc > c->charge_temp_max_dc) {
		why = "charge temperatures must rise: min <= cold_full <= hot_start <= max";
	} else if (c->discharge_temp_min_dc > c->discharge_cold_full_dc ||
		   c->discharge_cold_full_dc > c->discharge_hot_start_dc ||
		   c->discharge_hot_start_dc > c->discharge_temp_max_dc) {
		why = "discharge temperatures must rise: min <= cold_full <= hot_start <= max";
	} else if (c->force_charge_release_soc_pct < c->force_charge_soc_pct ||
		   c->force_charge_release_cell_mv < c->force_charge_cell_mv) {
		why = "force_charge release thresholds must not be below the triggers";
	} else if (c->temp_valid_min_dc >= c->temp_valid_max_dc) {
		why = "temp_valid_min_c must be below temp_valid_max_c";
	}
	if (why) {
		if (err && n) {
			snprintf(err, n, "%s", why);
		}
		return -EINVAL;
	}
	return 0;
}

const char *safety_comm_loss_name(int comm_loss)
{
	if (comm_loss < 0 || comm_loss > SAFETY_COMM_LOSS_HOLD) {
		return "?";
	}
	return comm_loss_names[comm_loss];
}

/*
 * Inverter profiles: the comm-loss policy "auto" picks, by protocol name
 * (aliases such as goodwe and sofar resolve to pylontech before this).
 * The reasons are in bmsbridge.conf(5), "Inverter profiles".
 */
static const struct {
	const char *name;
	int comm_loss;
} profiles[] = {
	/*
	 * Deye keeps using a battery whose limits say 0 A
	 * (dalathegreat/Battery-Emulator#1534) and off-grid follows SOC
	 * (#873): silence at least raises its BMS fault F58
	 */
	{ "deye", SAFETY_COMM_LOSS_STOP },
	{ "growatt", SAFETY_COMM_LOSS_ZERO },
	{ "luxpower", SAFETY_COMM_LOSS_ZERO },
	{ "pylontech", SAFETY_COMM_LOSS_ZERO },
	/* silence makes Voltronic fall back to its own voltage settings: say 0 instead */
	{ "pylontech-rs485", SAFETY_COMM_LOSS_ZERO },
	/* DCL 0 shuts an off-grid Victron down: ride out a short hiccup first */
	{ "victron", SAFETY_COMM_LOSS_HOLD },
};

int safety_profile_comm_loss(const char *proto_name)
{
	for (size_t i = 0; proto_name && i < ARRAY_SIZE(profiles); i++) {
		if (strcmp(profiles[i].name, proto_name) == 0) {
			return profiles[i].comm_loss;
		}
	}
	return SAFETY_COMM_LOSS_ZERO; /* unknown inverter: the explicit, safe answer */
}

const char *safety_mode_name(enum safety_mode mode)
{
	switch (mode) {
	case SAFETY_MODE_NOT_READY:
		return "not-ready";
	case SAFETY_MODE_NORMAL:
		return "normal";
	case SAFETY_MODE_HOLD:
		return "hold";
	case SAFETY_MODE_ZERO:
		return "zero";
	case SAFETY_MODE_STOP:
		return "stop";
	}
	return "?";
}

void safety_init(struct safety *s, const struct safety_config *cfg,
		 const struct inverter_protocol *proto)
{
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->mode = SAFETY_MODE_NOT_READY;
	s->comm_loss = cfg->comm_loss == SAFETY_COMM_LOSS_AUTO
			       ? safety_profile_comm_loss(proto ? proto->name : NULL)
			       : cfg->comm_loss;
	battery_pack_init(&s->last_bank);
	snprintf(s->reason, sizeof(s->reason), "no complete read yet");
}

void safety_reconfigure(struct safety *s, const struct safety_config *cfg,
			const struct inverter_protocol *proto)
{
	/*
	 * Only the settings change: the mode, the filters' last good values
	 * and the slew state stay, so a reload does not send the inverter
	 * back to "not ready" or restart the ramp. New caps and thresholds
	 * bind at the next evaluation, which comes before anything is sent.
	 */
	s->cfg = *cfg;
	s->comm_loss = cfg->comm_loss == SAFETY_COMM_LOSS_AUTO
			       ? safety_profile_comm_loss(proto ? proto->name : NULL)
			       : cfg->comm_loss;
}
