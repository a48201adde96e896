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

/* what every encoder needs before it may send anything */
#define REQUIRED_GROUPS                                                                      \
	((1u << BATTERY_GROUP_ELECTRICAL) | (1u << BATTERY_GROUP_CAPACITY) |                 \
	 (1u << BATTERY_GROUP_LIMITS))

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

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static int32_t abs_diff(int32_t a, int32_t b)
{
	return a > b ? a - b : b - a;
}

/* ---- 1. plausibility --------------------------------------------------- */

/*
 * Remember the last rejection in words, for the daemon's rate-limited log
 * and the status: "pack 2 cell 6: 4500 mV rejected (kept 3301 mV)".
 */
static void note_rejected(struct safety *s, const struct safety_pack *pk, const char *what,
			  int idx, int32_t v, int32_t kept, const char *unit)
{
	unsigned pack = (unsigned)(pk - s->pk) + 1;

	if (idx >= 0) {
		snprintf(s->last_rejected, sizeof(s->last_rejected),
			 "pack %u %s %d: %d %s rejected (kept %d %s)", pack, what, idx + 1, v,
			 unit, kept, unit);
	} else {
		snprintf(s->last_rejected, sizeof(s->last_rejected),
			 "pack %u %s: %d %s rejected (kept %d %s)", pack, what, v, unit, kept,
			 unit);
	}
}

/*
 * One value through the spike filter. @ok: plausible by itself (bounds) and
 * near the last good value. Returns true when *good now holds @v.
 */
static bool filter_value(int32_t v, bool ok, bool *have, int32_t *good, int32_t *cand,
			 uint8_t *pending, int32_t max_jump, uint32_t confirm)
{
	if (ok) {
		*good = v;
		*have = true;
		*pending = 0;
		return true;
	}
	/* implausible: a candidate, taken only when consecutive reads agree */
	if (*pending > 0 && abs_diff(v, *cand) <= max_jump) {
		if (*pending < UINT8_MAX) {
			(*pending)++;
		}
	} else {
		*pending = 1;
	}
	*cand = v;
	if (*pending >= confirm) {
		*good = v;
		*have = true;
		*pending = 0;
		return true;
	}
	return false;
}

/*
 * Cells: each within the chemistry bounds and at most cell_jump_mv from
 * its last good value. A BMS that gives only the extremes (cell_count 0)
 * has them filtered as two cells. Return: values rejected.
 */
static unsigned filter_cells(struct safety *s, struct safety_pack *pk,
			     const struct battery_pack *raw)
{
	const struct safety_config *c = &s->cfg;
	struct battery_pack *g = &pk->good;
	unsigned n = raw->cell_count > BATTERY_CELLS_MAX ? BATTERY_CELLS_MAX : raw->cell_count;
	unsigned nv = n ? n : 2; /* extremes-only BMS: two "cells", min and max */
	unsigned rejected = 0;
	bool all = true;

	if (n != g->cell_count) { /* a different pack layout starts over */
		pk->have_cells = false;
		memset(pk->cell_pending, 0, sizeof(pk->cell_pending));
	}
	for (unsigned i = 0; i < nv; i++) {
		int32_t v = n ? raw->cell_mv[i] : i == 0 ? raw->cell_min_mv : raw->cell_max_mv;
		int32_t good = n ? g->cell_mv[i] : i == 0 ? g->cell_min_mv : g->cell_max_mv;
		bool have = pk->have_cells;
		bool ok = v >= c->cell_valid_min_mv && v <= c->cell_valid_max_mv &&
			  (!pk->have_cells || abs_diff(v, good) <= c->cell_jump_mv);

		if (!filter_value(v, ok, &have, &good, &pk->cell_cand[i], &pk->cell_pending[i],
				  c->cell_jump_mv, c->spike_confirm_reads)) {
			note_rejected(s, pk, "cell", i, v, good, "mV");
			rejected++;
		}
		if (!have) {
			all = false;
		}
		if (n) {
			g->cell_mv[i] = (uint16_t)good;
		} else if (i == 0) {
			g->cell_min_mv = (uint16_t)good;
		} else {
			g->cell_max_mv = (uint16_t)good;
		}
	}
	pk->have_cells = all;
	g->cell_count = (uint8_t)n;
	if (n) {
		battery_pack_update_cell_extremes(g);
	} else {
		g->cell_min_idx = raw->cell_min_idx;
		g->cell_max_idx = raw->cell_max_idx;
	}
	s->rejected_cells += rejected;
	return rejected;
}

/* sum of the good cells, or 0 when the BMS gives only extremes */
static uint32_t cell_sum_mv(const struct battery_pack *g)
{
	uint32_t sum = 0;

	for (unsigned i = 0; i < g->cell_count; i++) {
		sum += g->cell_mv[i];
	}
	return sum;
}

/*
 * Pack voltage: within pack_sum_tolerance_mv of the sum of the good cells
 * (or, without cells, of the last good voltage). The current has no rule
 * of its own: it moves no limit, it is shown.
 */
static unsigned filter_voltage(struct safety *s, struct safety_pack *pk,
			       const struct battery_pack *raw)
{
	const struct safety_config *c = &s->cfg;
	struct battery_pack *g = &pk->good;
	uint32_t sum = pk->have_cells ? cell_sum_mv(g) : 0;
	int32_t good = (int32_t)g->voltage_mv;
	int32_t v = (int32_t)(raw->voltage_mv > INT32_MAX ? INT32_MAX : raw->voltage_mv);
	bool ok;

	/* sum of the (good) cells vs the pack voltage, where cells are known */
	if (sum) {
		ok = (uint32_t)abs_diff(v, (int32_t)sum) <= c->pack_sum_tolerance_mv;
	} else {
		ok = v > 0 && (!pk->have_voltage ||
			       (uint32_t)abs_diff(v, good) <= c->pack_sum_tolerance_mv);
	}
	g->current_ma = raw->current_ma;
	if (!filter_value(v, ok, &pk->have_voltage, &good, &pk->voltage_cand, &pk->voltage_pending,
			  (int32_t)c->pack_sum_tolerance_mv, c->spike_confirm_reads)) {
		s->rejected_voltage++;
		note_rejected(s, pk, "pack voltage", -1, v, good, "mV");
		g->voltage_mv = (uint32_t)good;
		return 1;
	}
	g->voltage_mv = (uint32_t)good;
	return 0;
}

/* SOC: at most 100 %, and no faster than soc_rate_pct_per_min since the last good one */
static unsigned filter_soc(struct safety *s, struct safety_pack *pk, const struct battery_pack *raw,
			   uint64_t now)
{
	const struct safety_config *c = &s->cfg;
	struct battery_pack *g = &pk->good;
	int32_t good = g->soc_pct;
	uint64_t dt = pk->have_soc && now > pk->soc_usec ? now - pk->soc_usec : 0;
	/* the rate over the time since the last good SOC, +1 % for rounding */
	uint64_t allowed = 1 + (uint64_t)c->soc_rate_pct_per_min * dt / (60 * USEC_PER_SEC);
	bool ok = raw->soc_pct <= 100 &&
		  (!pk->have_soc || (uint64_t)abs_diff(raw->soc_pct, good) <= allowed);
	unsigned r = 0;

	/* the capacity group's other fields pass as they are */
	g->soh_pct = raw->soh_pct;
	g->remaining_mah = raw->remaining_mah;
	g->full_mah = raw->full_mah;
	g->cycles = raw->cycles;
	if (filter_value(raw->soc_pct, ok, &pk->have_soc, &good, &pk->soc_cand, &pk->soc_pending,
			 (int32_t)allowed, c->spike_confirm_reads)) {
		pk->soc_usec = now;
	} else {
		s->rejected_soc++;
		note_rejected(s, pk, "SOC", -1, raw->soc_pct, good, "%");
		r = 1;
	}
	g->soc_pct = (uint8_t)(good > 100 ? 100 : good);
	return r;
}

/* Temperatures: bounds and temp_jump_c per read, sensor by sensor (or the extremes) */
static unsigned filter_temps(struct safety *s, struct safety_pack *pk,
			     const struct battery_pack *raw)
{
	const struct safety_config *c = &s->cfg;
	struct battery_pack *g = &pk->good;
	unsigned n = raw->temp_count > BATTERY_TEMPS_MAX ? BATTERY_TEMPS_MAX : raw->temp_count;
	unsigned nv = n ? n : 2;
	unsigned rejected = 0;
	bool all = true;

	if (n != g->temp_count) {
		pk->have_temps = false;
		memset(pk->temp_pending, 0, sizeof(pk->temp_pending));
	}
	for (unsigned i = 0; i < nv; i++) {
		int32_t v = n ? raw->temp_dc[i] : i == 0 ? raw->temp_min_dc : raw->temp_max_dc;
		int32_t good = n ? g->temp_dc[i] : i == 0 ? g->temp_min_dc : g->temp_max_dc;
		bool have = pk->have_temps;
		bool ok = v >= c->temp_valid_min_dc && v <= c->temp_valid_max_dc &&
			  (!pk->have_temps || abs_diff(v, good) <= c->temp_jump_dc);

		if (!filter_value(v, ok, &have, &good, &pk->temp_cand[i], &pk->temp_pending[i],
				  c->temp_jump_dc, c->spike_confirm_reads)) {
			note_rejected(s, pk, "temperature", i, v, good, "dC");
			rejected++;
		}
		if (!have) {
			all = false;
		}
		if (n) {
			g->temp_dc[i] = (int16_t)good;
		} else if (i == 0) {
			g->temp_min_dc = (int16_t)good;
		} else {
			g->temp_max_dc = (int16_t)good;
		}
	}
	pk->have_temps = all;
	g->temp_count = (uint8_t)n;
	g->mosfet_temp_dc = raw->mosfet_temp_dc;
	if (n) {
		battery_pack_update_temp_extremes(g);
	} else {
		g->temp_min_idx = raw->temp_min_idx;
		g->temp_max_idx = raw->temp_max_idx;
	}
	s->rejected_temps += rejected;
	return rejected;
}

/* whether the fields of @grp differ between @a and @b */
static bool group_differs(const struct battery_pack *a, const struct battery_pack *b,
			  enum battery_group grp)
{
	switch (grp) {
	case BATTERY_GROUP_ELECTRICAL:
		return a->voltage_mv != b->voltage_mv || a->current_ma != b->current_ma;
	case BATTERY_GROUP_CAPACITY:
		return a->soc_pct != b->soc_pct || a->soh_pct != b->soh_pct ||
		       a->remaining_mah != b->remaining_mah || a->full_mah != b->full_mah ||
		       a->cycles != b->cycles;
	case BATTERY_GROUP_CELLS:
		return a->cell_count != b->cell_count ||
		       memcmp(a->cell_mv, b->cell_mv, sizeof(a->cell_mv)) != 0 ||
		       a->cell_min_mv != b->cell_min_mv || a->cell_max_mv != b->cell_max_mv ||
		       a->cell_min_idx != b->cell_min_idx || a->cell_max_idx != b->cell_max_idx;
	case BATTERY_GROUP_TEMPS:
		return a->temp_count != b->temp_count ||
		       memcmp(a->temp_dc, b->temp_dc, sizeof(a->temp_dc)) != 0 ||
		       a->temp_min_dc != b->temp_min_dc || a->temp_max_dc != b->temp_max_dc ||
		       a->temp_min_idx != b->temp_min_idx || a->temp_max_idx != b->temp_max_idx ||
		       a->mosfet_temp_dc != b->mosfet_temp_dc;
	case BATTERY_GROUP_LIMITS:
		return a->charge_voltage_limit_mv != b->charge_voltage_limit_mv ||
		       a->discharge_voltage_limit_mv != b->discharge_voltage_limit_mv ||
		       a->charge_current_limit_ma != b->charge_current_limit_ma ||
		       a->discharge_current_limit_ma != b->discharge_current_limit_ma;
	case BATTERY_GROUP_STATUS:
		return a->alarms != b->alarms || a->warnings != b->warnings ||
		       a->requests != b->requests;
	case BATTERY_GROUP__COUNT:
		break;
	}
	return false;
}

/*
 * Whether @raw holds a write of @grp the layer has not taken yet. Its time
 * moved; or, since every frame of one receive batch carries the same loop
 * time (and a decoder may write one group from several frames), the time
 * is the one taken but the values differ. Equal values at an equal time
 * are no new information: taking them again would change nothing.
 */
static bool new_write(const struct safety_pack *pk, const struct battery_pack *raw,
		      enum battery_group grp)
{
	if (raw->updated_usec[grp] == BATTERY_NEVER) {
		return false;
	}
	if (raw->updated_usec[grp] != pk->group_usec[grp]) {
		return true;
	}
	return group_differs(raw, &pk->taken, grp);
}

/* copy the fields of @grp from @raw into @dst */
static void group_copy(struct battery_pack *dst, const struct battery_pack *raw,
		       enum battery_group grp)
{
	switch (grp) {
	case BATTERY_GROUP_ELECTRICAL:
		dst->voltage_mv = raw->voltage_mv;
		dst->current_ma = raw->current_ma;
		break;
	case BATTERY_GROUP_CAPACITY:
		dst->soc_pct = raw->soc_pct;
		dst->soh_pct = raw->soh_pct;
		dst->remaining_mah = raw->remaining_mah;
		dst->full_mah = raw->full_mah;
		dst->cycles = raw->cycles;
		break;
	case BATTERY_GROUP_CELLS:
		dst->cell_count = raw->cell_count;
		memcpy(dst->cell_mv, raw->cell_mv, sizeof(dst->cell_mv));
		dst->cell_min_mv = raw->cell_min_mv;
		dst->cell_max_mv = raw->cell_max_mv;
		dst->cell_min_idx = raw->cell_min_idx;
		dst->cell_max_idx = raw->cell_max_idx;
		break;
	case BATTERY_GROUP_TEMPS:
		dst->temp_count = raw->temp_count;
		memcpy(dst->temp_dc, raw->temp_dc, sizeof(dst->temp_dc));
		dst->temp_min_dc = raw->temp_min_dc;
		dst->temp_max_dc = raw->temp_max_dc;
		dst->temp_min_idx = raw->temp_min_idx;
		dst->temp_max_idx = raw->temp_max_idx;
		dst->mosfet_temp_dc = raw->mosfet_temp_dc;
		break;
	case BATTERY_GROUP_LIMITS:
		dst->charge_voltage_limit_mv = raw->charge_voltage_limit_mv;
		dst->discharge_voltage_limit_mv = raw->discharge_voltage_limit_mv;
		dst->charge_current_limit_ma = raw->charge_current_limit_ma;
		dst->discharge_current_limit_ma = raw->discharge_current_limit_ma;
		break;
	case BATTERY_GROUP_STATUS:
		dst->alarms = raw->alarms;
		dst->warnings = raw->warnings;
		dst->requests = raw->requests;
		break;
	case BATTERY_GROUP__COUNT:
		break;
	}
}

/*
 * Take the groups @raw wrote since the last run into pk->good.
 * Return: true if something new arrived; *ret_complete: a whole read
 * (every group the pack sends) has now arrived, *ret_clean: with nothing
 * rejected in it.
 */
static bool pack_read(struct safety *s, struct safety_pack *pk, const struct battery_pack *raw,
		      uint64_t now, bool *ret_complete, bool *ret_clean)
{
	unsigned rejected = 0, need;
	bool read = false, electrical = false;

	*ret_complete = *ret_clean = false;
	for (unsigned grp = 0; grp < BATTERY_GROUP__COUNT; grp++) {
		unsigned r = 0;

		if (!new_write(pk, raw, (enum battery_group)grp)) {
			continue;
		}
		read = true;
		pk->seen_mask |= 1u << grp;
		pk->read_mask |= 1u << grp;
		pk->group_usec[grp] = raw->updated_usec[grp];
		group_copy(&pk->taken, raw, (enum battery_group)grp);
		switch ((enum battery_group)grp) {
		case BATTERY_GROUP_CELLS:
			r = filter_cells(s, pk, raw);
			break;
		case BATTERY_GROUP_ELECTRICAL:
			electrical = true; /* after the cells: checked against their sum */
			continue;
		case BATTERY_GROUP_CAPACITY:
			r = filter_soc(s, pk, raw, now);
			break;
		case BATTERY_GROUP_TEMPS:
			r = filter_temps(s, pk, raw);
			break;
		case BATTERY_GROUP_LIMITS:
			/* the BMS's own limits: only ever lowered further below */
			pk->good.charge_voltage_limit_mv = raw->charge_voltage_limit_mv;
			pk->good.discharge_voltage_limit_mv = raw->discharge_voltage_limit_mv;
			pk->good.charge_current_limit_ma = raw->charge_current_limit_ma;
			pk->good.discharge_current_limit_ma = raw->discharge_current_limit_ma;
			break;
		case BATTERY_GROUP_STATUS:
			pk->good.alarms = raw->alarms;
			pk->good.warnings = raw->warnings;
			pk->good.requests = raw->requests;
			break;
		case BATTERY_GROUP__COUNT:
			break;
		}
		/*
		 * A group is as old as its last read with nothing rejected:
		 * values that never confirm go stale like silence does.
		 */
		if (r == 0) {
			pk->good.updated_usec[grp] = raw->updated_usec[grp];
		}
		rejected += r;
	}
	if (electrical) {
		unsigned r = filter_voltage(s, pk, raw);

		if (r == 0) {
			pk->good.updated_usec[BATTERY_GROUP_ELECTRICAL] =
				raw->updated_usec[BATTERY_GROUP_ELECTRICAL];
		}
		rejected += r;
	}
	s->rejected += rejected;
	pk->read_rejected |= rejected > 0;
	need = REQUIRED_GROUPS | pk->seen_mask;
	if (read && (pk->read_mask & need) == need) {
		*ret_complete = true;
		*ret_clean = !pk->read_rejected;
		pk->read_mask = 0;
		pk->read_rejected = false;
	}
	return read;
}

/* ---- 2. freshness -------------------------------------------------------- */

/*
 * A pack is online when every group the inverter needs, and every group
 * it has ever sent, is younger than stale_timeout and holds a good value.
 * Groups a BMS never sends (a Pylontech BMS has no cell list) do not hold
 * a pack back; a group that stops arriving does.
 */
static bool pack_online(const struct safety *s, const struct safety_pack *pk, uint64_t now,
			const char **ret_missing)
{
	unsigned mask = REQUIRED_GROUPS | pk->seen_mask;

	for (unsigned grp = 0; grp < BATTERY_GROUP__COUNT; grp++) {
		uint64_t age = battery_pack_age_usec(&pk->good, (enum battery_group)grp, now);

		if (!(mask & (1u << grp))) {
			continue;
		}
		if (age > s->cfg.stale_timeout_usec) {
			*ret_missing = battery_group_name((enum battery_group)grp);
			return false;
		}
	}
	if (((pk->seen_mask & (1u << BATTERY_GROUP_CELLS)) && !pk->have_cells) ||
	    !pk->have_voltage || !pk->have_soc ||
	    ((pk->seen_mask & (1u << BATTERY_GROUP_TEMPS)) && !pk->have_temps)) {
		*ret_missing = "a plausible value";
		return false;
	}
	return true;
}

static bool has_group(const struct safety_pack *pk, enum battery_group grp)
{
	return pk->seen_mask & (1u << grp);
}

/* ---- 3. charge control, per pack ------------------------------------------ */

struct limits {
	uint32_t cvl_mv, dvl_mv, ccl_ma, dcl_ma;
};

/* @v scaled by @num / @den, no overflow */
static uint32_t scale(uint32_t v, uint64_t num, uint64_t den)
{
	return den ? (uint32_t)((uint64_t)v * num / den) : v;
}

/*
 * The temperature table: 0 % outside [min, max]; from min to cold_full a
 * line from cold_pct to 100 %; from hot_start to max a line from 100 % to
 * hot_pct. The coldest sensor meets the cold side, the hottest the hot.
 */
static uint32_t derate_pct(int32_t tmin, int32_t tmax, int32_t min, int32_t cold_full,
			   uint32_t cold_pct, int32_t hot_start, int32_t max, uint32_t hot_pct)
{
	uint32_t pct = 100;

	if (tmin < min || tmax > max) {
		return 0;
	}
	if (tmin < cold_full) {
		pct = min_u32(pct, cold_pct + (uint32_t)((100 - cold_pct) * (uint32_t)(tmin - min) /
							 (uint32_t)(cold_full - min)));
	}
	if (tmax > hot_start) {
		pct = min_u32(pct, 100 - (uint32_t)((100 - hot_pct) * (uint32_t)(tmax - hot_start) /
						    (uint32_t)(max - hot_start)));
	}
	return pct;
}

/* The rules on the pack @g (the filtered one, or the strict view below). */
static void pack_rules(const struct safety_config *c, const struct safety_pack *pk,
		       const struct battery_pack *g, struct limits *l)
{
	l->cvl_mv = g->charge_voltage_limit_mv;
	l->dvl_mv = g->discharge_voltage_limit_mv;
	l->ccl_ma = g->charge_current_limit_ma;
	l->dcl_ma = g->discharge_current_limit_ma;

	if (has_group(pk, BATTERY_GROUP_CELLS)) {
		uint32_t hi = g->cell_max_mv, lo = g->cell_min_mv;

		/* taper: full current at charge_taper_start_mv, none at cell_full_mv */
		if (hi >= c->cell_full_mv) {
			l->ccl_ma = 0;
		} else if (hi > c->charge_taper_start_mv) {
			l->ccl_ma = scale(l->ccl_ma, c->cell_full_mv - hi,
					  c->cell_full_mv - c->charge_taper_start_mv);
		}
		/*
		 * A cell running ahead: at pack voltage CVL the highest cell
		 * is at most hi + (CVL - now), the whole rise on the cell on
		 * its knee. So CVL = now - hi + cell_max_mv keeps it below
		 * cell_max_mv. Applied once a cell nears full, where it matters.
		 */
		if (hi >= c->charge_taper_start_mv) {
			uint32_t now_mv = g->cell_count ? cell_sum_mv(g) : g->voltage_mv;
			uint32_t cvl = now_mv > hi ? now_mv - hi + c->cell_max_mv : c->cell_max_mv;

			l->cvl_mv = min_u32(l->cvl_mv, cvl);
		}
		if (g->cell_count) {
			l->cvl_mv = min_u32(l->cvl_mv, (uint32_t)g->cell_count * c->cell_max_mv);
		}
		/* discharge: none at cell_empty_mv, full discharge_taper_mv above */
		if (lo <= c->cell_empty_mv) {
			l->dcl_ma = 0;
		} else if (lo < (uint32_t)c->cell_empty_mv + c->discharge_taper_mv) {
			l->dcl_ma = scale(l->dcl_ma, lo - c->cell_empty_mv, c->discharge_taper_mv);
		}
	}
	if (has_group(pk, BATTERY_GROUP_TEMPS)) {
		l->ccl_ma = scale(l->ccl_ma,
				  derate_pct(g->temp_min_dc, g->temp_max_dc, c->charge_temp_min_dc,
					     c->charge_cold_full_dc, c->charge_cold_pct,
					     c->charge_hot_start_dc, c->charge_temp_max_dc,
					     c->charge_hot_pct),
				  100);
		uint32_t pct = derate_pct(g->temp_min_dc, g->temp_max_dc, c->discharge_temp_min_dc,
					  c->discharge_cold_full_dc, c->discharge_cold_pct,
					  c->discharge_hot_start_dc, c->discharge_temp_max_dc,
					  c->discharge_hot_pct);

		l->dcl_ma = scale(l->dcl_ma, pct, 100);
	}
}

/*
 * The strict view: the filtered pack with this read's rejected cell and
 * temperature values put back, where they are physically possible (inside
 * cell_valid_* and temp_valid_*). A value that moved further than
 * believable may be real; the rules then see both packs and the stricter
 * limit of the two wins, so such a value tightens at once and never
 * loosens anything before it is confirmed. Return: true if the view
 * differs from pk->good; *ret_cell_high: a cell read above
 * cell_valid_max_mv (charging stops for that read: see below).
 */
static bool strict_view(const struct safety_config *c, const struct safety_pack *pk,
			struct battery_pack *v, bool *ret_cell_high)
{
	const struct battery_pack *g = &pk->good;
	unsigned nc = g->cell_count ? g->cell_count : 2;
	unsigned nt = g->temp_count ? g->temp_count : 2;
	bool cells = false, temps = false;

	*ret_cell_high = false;
	for (unsigned i = 0; i < nc && has_group(pk, BATTERY_GROUP_CELLS); i++) {
		if (pk->cell_pending[i] == 0) {
			continue;
		}
		if (pk->cell_cand[i] > c->cell_valid_max_mv) {
			*ret_cell_high = true;
		} else if (pk->cell_cand[i] >= c->cell_valid_min_mv) {
			if (!cells && !temps) {
				*v = *g;
			}
			cells = true;
			if (g->cell_count) {
				v->cell_mv[i] = (uint16_t)pk->cell_cand[i];
			} else if (i == 0) {
				v->cell_min_mv = (uint16_t)pk->cell_cand[i];
			} else {
				v->cell_max_mv = (uint16_t)pk->cell_cand[i];
			}
		}
	}
	for (unsigned i = 0; i < nt && has_group(pk, BATTERY_GROUP_TEMPS); i++) {
		if (pk->temp_pending[i] == 0 || pk->temp_cand[i] < c->temp_valid_min_dc ||
		    pk->temp_cand[i] > c->temp_valid_max_dc) {
			continue;
		}
		if (!cells && !temps) {
			*v = *g;
		}
		temps = true;
		if (g->temp_count) {
			v->temp_dc[i] = (int16_t)pk->temp_cand[i];
		} else if (i == 0) {
			v->temp_min_dc = (int16_t)pk->temp_cand[i];
		} else {
			v->temp_max_dc = (int16_t)pk->temp_cand[i];
		}
	}
	if (cells) {
		if (v->cell_count) {
			battery_pack_update_cell_extremes(v);
		} else if (v->cell_min_mv > v->cell_max_mv) {
			uint16_t t = v->cell_min_mv;

			v->cell_min_mv = v->cell_max_mv;
			v->cell_max_mv = t;
		}
	}
	if (temps) {
		if (v->temp_count) {
			battery_pack_update_temp_extremes(v);
		} else if (v->temp_min_dc > v->temp_max_dc) {
			int16_t t = v->temp_min_dc;

			v->temp_min_dc = v->temp_max_dc;
			v->temp_max_dc = t;
		}
	}
	return cells || temps;
}

/*
 * One pack's limits: its BMS's own, lowered by every rule that applies,
 * on the filtered pack and on the strict view, the stricter of each.
 *
 * A cell above cell_valid_max_mv (4.5 V on LFP) is outside what the
 * chemistry allows and is not believed as a value; but it is also what
 * the first read of a real overcharge looks like, so charging stops for
 * every read it is there (CCL 0; taken as a value after
 * spike_confirm_reads). Nothing else follows from an impossible value:
 * a 0 V cell or a -3276.8 degC sensor (a loose wire, "no sensor") cuts no
 * discharge, since DCL 0 can shut an off-grid site down; a real deep
 * discharge passes through the plausible range, where the strict view acts.
 */
static void pack_limits(const struct safety_config *c, const struct safety_pack *pk,
			struct limits *l)
{
	struct battery_pack v;
	struct limits ls;
	bool cell_high;

	pack_rules(c, pk, &pk->good, l);
	if (strict_view(c, pk, &v, &cell_high)) {
		pack_rules(c, pk, &v, &ls);
		l->cvl_mv = min_u32(l->cvl_mv, ls.cvl_mv);
		l->ccl_ma = min_u32(l->ccl_ma, ls.ccl_ma);
		l->dcl_ma = min_u32(l->dcl_ma, ls.dcl_ma);
		l->dvl_mv = l->dvl_mv > ls.dvl_mv ? l->dvl_mv : ls.dvl_mv;
	}
	if (cell_high) {
		l->ccl_ma = 0;
	}
}

/* ---- 4. the bank ----------------------------------------------------------- */

/* whether the pack said its charge (or discharge) path is open: it takes no current */
static bool path_open(const struct safety_pack *pk, uint32_t enable_bit)
{
	return has_group(pk, BATTERY_GROUP_STATUS) && !(pk->good.requests & enable_bit);
}

/*
 * A pack that is not online (some group stale or implausible) but whose
 * own limits are fresh still takes its share of the current: its limits
 * still bind the bank, as the BMS sent them.
 */
static bool limits_bind(const struct safety *s, const struct safety_pack *pk, uint64_t now)
{
	return pk->online || battery_pack_is_fresh(&pk->good, BATTERY_GROUP_LIMITS, now,
						   s->cfg.stale_timeout_usec);
}

/*
 * Bank current from per-pack currents, for packs in parallel. A pack whose
 * path is open takes nothing and is left out. Any other pack that allows 0
 * would still get its share of the current: the bank gets 0. Otherwise the
 * current divides over the packs that take it, unevenly in practice: the
 * bank gets n times the smallest, so no pack is asked beyond its own
 * limit even when they share evenly; packs offline add nothing (but their
 * fresh limits still count towards the smallest).
 *
 * Charge and discharge in one walk, over the slots ever evaluated
 * (s->packs_seen): a slot beyond them was never read, its limits are
 * never fresh and bind nothing, so leaving it out changes no result.
 */
struct bank_share {
	uint32_t n, lo;
	bool zero;
};

static void bank_share_add(struct bank_share *sh, uint32_t v, bool online)
{
	if (v == 0) {
		sh->zero = true;
		return;
	}
	sh->lo = min_u32(sh->lo, v);
	sh->n += online ? 1 : 0;
}

static uint32_t bank_share_result(const struct bank_share *sh)
{
	if (sh->zero || sh->n == 0) {
		return 0;
	}
	return (uint32_t)min_u32(UINT32_MAX / sh->n, sh->lo) * sh->n;
}

static void bank_currents(const struct safety *s, const struct limits *l, uint64_t now,
			  uint32_t *ret_ccl, uint32_t *ret_dcl)
{
	struct bank_share ch = { .lo = UINT32_MAX }, dis = { .lo = UINT32_MAX };

	for (unsigned i = 0; i < s->packs_seen; i++) {
		const struct safety_pack *pk = &s->pk[i];

		if (!limits_bind(s, pk, now)) {
			continue;
		}
		if (!ch.zero && !path_open(pk, BATTERY_REQUEST_CHARGE_ENABLE)) {
			bank_share_add(&ch, pk->online ? l[i].ccl_ma : pk->good.charge_current_limit_ma,
				       pk->online);
		}
		if (!dis.zero && !path_open(pk, BATTERY_REQUEST_DISCHARGE_ENABLE)) {
			bank_share_add(&dis,
				       pk->online ? l[i].dcl_ma : pk->good.discharge_current_limit_ma,
				       pk->online);
		}
	}
	*ret_ccl = bank_share_result(&ch);
	*ret_dcl = bank_share_result(&dis);
}

/*
 * The caps in force, the last thing applied in every mode that sends
 * (NORMAL, HOLD, ZERO): CVL, CCL and DCL at most the user caps, DVL at
 * least the floor, whatever the bank was shaped under (a reload lowers the
 * caps while HOLD keeps the last NORMAL bank). Then DVL must stay below
 * CVL: "charge to 14.2 V, discharge no lower than 48.8 V" is no limit an
 * inverter can follow. Raising CVL or lowering DVL would loosen a limit,
 * so when DVL >= CVL nothing may flow: CCL = DCL = 0, no enable and no
 * request, and DVL is sent 0.1 V (one step of every encoder) below CVL,
 * which with DCL 0 allows nothing (a CVL below 0.1 V, a BMS saying 0, is
 * sent as 0.1 V with DVL 0: with CCL 0 it allows nothing either).
 * s->conflict says why, for the log.
 */
static void apply_caps(struct safety *s, struct battery_pack *b)
{
	const struct safety_config *c = &s->cfg;

	b->charge_voltage_limit_mv = min_u32(b->charge_voltage_limit_mv, c->max_charge_voltage_mv);
	b->charge_current_limit_ma = min_u32(b->charge_current_limit_ma, c->max_charge_current_ma);
	b->discharge_current_limit_ma =
		min_u32(b->discharge_current_limit_ma, c->max_discharge_current_ma);
	if (b->discharge_voltage_limit_mv < c->min_discharge_voltage_mv) {
		b->discharge_voltage_limit_mv = c->min_discharge_voltage_mv;
	}
	if (c->max_charge_current_ma == 0) {
		b->requests &= ~(uint32_t)BATTERY_REQUEST_CHARGE_ENABLE;
	}
	if (c->max_discharge_current_ma == 0) {
		b->requests &= ~(uint32_t)BATTERY_REQUEST_DISCHARGE_ENABLE;
	}
	if (b->discharge_voltage_limit_mv >= b->charge_voltage_limit_mv) {
		snprintf(s->conflict, sizeof(s->conflict),
			 "DVL %u mV >= CVL %u mV: charging and discharging stopped",
			 b->discharge_voltage_limit_mv, b->charge_voltage_limit_mv);
		b->charge_current_limit_ma = 0;
		b->discharge_current_limit_ma = 0;
		b->requests = 0;
		if (b->charge_voltage_limit_mv < 100) {
			/* a BMS that says CVL 0: 0.1 V, harmless with CCL 0 */
			b->charge_voltage_limit_mv = 100;
		}
		b->discharge_voltage_limit_mv = b->charge_voltage_limit_mv - 100;
	} else {
		s->conflict[0] = '\0';
	}
	s->out_ccl_ma = min_u32(s->out_ccl_ma, b->charge_current_limit_ma);
	s->out_dcl_ma = min_u32(s->out_dcl_ma, b->discharge_current_limit_ma);
}

/* the slew limiter: decreases at once, increases at ramp_up_a_per_s */
static uint32_t slew(const struct safety *s, uint32_t prev, uint32_t target, uint64_t dt)
{
	uint64_t up;

	if (target <= prev) {
		return target;
	}
	up = (uint64_t)s->cfg.ramp_up_ma_per_sec * dt / USEC_PER_SEC;
	return (uint64_t)prev + up < target ? (uint32_t)(prev + up) : target;
}

/*
 * NORMAL: the bank from the online packs. Per pack the rules of
 * pack_limits(), then the bank rule of bank_currents(), the user caps last
 * and the ramp after them (so the ramp can only lower a value further).
 */
static void bank_normal(struct safety *s, struct battery_state *bs, uint64_t now, uint64_t dt)
{
	const struct safety_config *c = &s->cfg;
	struct battery_pack *b = &bs->bank;
	struct limits l[BATTERY_PACKS_MAX] = { 0 };
	uint64_t w_sum = 0, soc_w = 0, soh_w = 0, v_sum = 0, oldest = UINT64_MAX;
	uint32_t cvl = UINT32_MAX, cvl_all = UINT32_MAX, dvl = 0, ccl, dcl;
	uint32_t alarms = 0, warnings = 0, requests = 0;
	unsigned n = 0, cell_hi_pack = 0, temp_hi_pack = 0;
	bool all_full = true, cells = false, temps = false, cvl_any = false;
	uint64_t grp_oldest[BATTERY_GROUP__COUNT];

	for (unsigned grp = 0; grp < BATTERY_GROUP__COUNT; grp++) {
		grp_oldest[grp] = UINT64_MAX;
	}
	battery_pack_init(b);
	for (unsigned i = 0; i < bs->pack_count; i++) {
		if (s->pk[i].online && s->pk[i].good.full_mah == 0) {
			all_full = false;
		}
	}
	for (unsigned i = 0; i < bs->pack_count; i++) {
		const struct safety_pack *pk = &s->pk[i];
		const struct battery_pack *g = &pk->good;
		uint64_t w;

		if (!pk->online) {
			/* fresh limits of a pack otherwise offline still bind */
			if (limits_bind(s, pk, now) &&
			    !path_open(pk, BATTERY_REQUEST_CHARGE_ENABLE)) {
				cvl = min_u32(cvl, g->charge_voltage_limit_mv);
				cvl_any = true;
			}
			continue;
		}
		pack_limits(c, pk, &l[i]);
		for (unsigned grp = 0; grp < BATTERY_GROUP__COUNT; grp++) {
			uint64_t t = g->updated_usec[grp];

			if (t != BATTERY_NEVER && t < grp_oldest[grp]) {
				grp_oldest[grp] = t;
			}
			if (t != BATTERY_NEVER && t < oldest) {
				oldest = t;
			}
		}
		/* SOC and SOH by capacity: a 280 Ah pack counts twice a 140 Ah one */
		w = all_full ? g->full_mah : 1;
		w_sum += w;
		soc_w += w * g->soc_pct;
		soh_w += w * g->soh_pct;
		v_sum += g->voltage_mv; /* parallel: one voltage, averaged */
		b->current_ma += g->current_ma;
		b->remaining_mah += g->remaining_mah;
		b->full_mah += g->full_mah;
		b->cycles = g->cycles > b->cycles ? g->cycles : b->cycles;
		if (!path_open(pk, BATTERY_REQUEST_CHARGE_ENABLE)) {
			cvl = min_u32(cvl, l[i].cvl_mv);
			cvl_any = true;
		}
		cvl_all = min_u32(cvl_all, l[i].cvl_mv);
		dvl = l[i].dvl_mv > dvl ? l[i].dvl_mv : dvl;
		alarms |= g->alarms;
		warnings |= g->warnings;
		requests |= g->requests & (BATTERY_REQUEST_FORCE_CHARGE |
					   BATTERY_REQUEST_FORCE_CHARGE_2 |
					   BATTERY_REQUEST_FULL_CHARGE);
		/* extremes across packs, with the pack that holds them */
		if (has_group(pk, BATTERY_GROUP_CELLS)) {
			if (!cells || g->cell_max_mv > b->cell_max_mv) {
				b->cell_max_mv = g->cell_max_mv;
				b->cell_max_idx = g->cell_max_idx;
				b->cell_max_pack = (uint8_t)i;
				cell_hi_pack = i;
			}
			if (!cells || g->cell_min_mv < b->cell_min_mv) {
				b->cell_min_mv = g->cell_min_mv;
				b->cell_min_idx = g->cell_min_idx;
				b->cell_min_pack = (uint8_t)i;
			}
			cells = true;
		}
		if (has_group(pk, BATTERY_GROUP_TEMPS)) {
			if (!temps || g->temp_max_dc > b->temp_max_dc) {
				b->temp_max_dc = g->temp_max_dc;
				b->temp_max_idx = g->temp_max_idx;
				b->temp_max_pack = (uint8_t)i;
				temp_hi_pack = i;
			}
			if (!temps || g->temp_min_dc < b->temp_min_dc) {
				b->temp_min_dc = g->temp_min_dc;
				b->temp_min_idx = g->temp_min_idx;
				b->temp_min_pack = (uint8_t)i;
			}
			if (g->mosfet_temp_dc != BATTERY_TEMP_NONE &&
			    (b->mosfet_temp_dc == BATTERY_TEMP_NONE ||
			     g->mosfet_temp_dc > b->mosfet_temp_dc)) {
				b->mosfet_temp_dc = g->mosfet_temp_dc;
			}
			temps = true;
		}
		n++;
	}
	if (n == 0) {
		return;
	}
	b->voltage_mv = (uint32_t)(v_sum / n);
	b->soc_pct = (uint8_t)(w_sum ? soc_w / w_sum : 0);
	b->soh_pct = (uint8_t)(w_sum ? soh_w / w_sum : 0);
	/* the cell and sensor lists of the pack holding the highest value */
	if (cells) {
		const struct battery_pack *g = &s->pk[cell_hi_pack].good;

		b->cell_count = g->cell_count;
		memcpy(b->cell_mv, g->cell_mv, sizeof(b->cell_mv));
	}
	if (temps) {
		const struct battery_pack *g = &s->pk[temp_hi_pack].good;

		b->temp_count = g->temp_count;
		memcpy(b->temp_dc, g->temp_dc, sizeof(b->temp_dc));
	}

	/* limits: the packs', the bank rule, the user caps last */
	bank_currents(s, l, now, &ccl, &dcl);
	ccl = min_u32(ccl, c->max_charge_current_ma);
	dcl = min_u32(dcl, c->max_discharge_current_ma);
	cvl = min_u32(cvl_any ? cvl : cvl_all, c->max_charge_voltage_mv);
	dvl = dvl > c->min_discharge_voltage_mv ? dvl : c->min_discharge_voltage_mv;
	s->out_ccl_ma = slew(s, s->out_ccl_ma, ccl, dt);
	s->out_dcl_ma = slew(s, s->out_dcl_ma, dcl, dt);
	b->charge_voltage_limit_mv = cvl;
	b->discharge_voltage_limit_mv = dvl;
	b->charge_current_limit_ma = s->out_ccl_ma;
	b->discharge_current_limit_ma = s->out_dcl_ma;

	/* force charge, with hysteresis */
	if ((c->force_charge_soc_pct && b->soc_pct <= c->force_charge_soc_pct) ||
	    (cells && c->force_charge_cell_mv && b->cell_min_mv <= c->force_charge_cell_mv)) {
		s->force_charge = true;
	} else if (s->force_charge && b->soc_pct >= c->force_charge_release_soc_pct &&
		   (!cells || b->cell_min_mv >= c->force_charge_release_cell_mv)) {
		s->force_charge = false;
	}
	if (s->force_charge) {
		requests |= BATTERY_REQUEST_FORCE_CHARGE;
		warnings |= BATTERY_ALARM_LOW_SOC;
	}
	/* the enables follow the shaped limits, before the ramp */
	requests |= (ccl ? BATTERY_REQUEST_CHARGE_ENABLE : 0) |
		    (dcl ? BATTERY_REQUEST_DISCHARGE_ENABLE : 0);
	if (n < bs->pack_count) {
		alarms |= BATTERY_ALARM_PACK_OFFLINE;
	}
	b->alarms = alarms & ~BATTERY_ALARM_BMS_LINK_LOST; /* ours alone */
	b->warnings = warnings & ~BATTERY_ALARM_BMS_LINK_LOST;
	b->requests = requests;

	/* each group as old as the oldest data it came from; limits from all of it */
	for (unsigned grp = 0; grp < BATTERY_GROUP__COUNT; grp++) {
		b->updated_usec[grp] =
			grp_oldest[grp] == UINT64_MAX ? BATTERY_NEVER : grp_oldest[grp];
	}
	b->updated_usec[BATTERY_GROUP_LIMITS] = oldest;
	b->updated_usec[BATTERY_GROUP_STATUS] = oldest;
	s->last_cells_in_window = cells && b->cell_min_mv >= c->hold_cell_min_mv &&
				  b->cell_max_mv <= c->hold_cell_max_mv;
	apply_caps(s, b);
	s->last_bank = *b;
}

/* HOLD: the last NORMAL bank, currents cut to hold_current_pct, link-lost warning */
static void bank_hold(struct safety *s, struct battery_state *bs)
{
	struct battery_pack *b = &bs->bank;

	*b = s->last_bank;
	b->charge_current_limit_ma =
		scale(b->charge_current_limit_ma, s->cfg.hold_current_pct, 100);
	b->discharge_current_limit_ma =
		scale(b->discharge_current_limit_ma, s->cfg.hold_current_pct, 100);
	b->warnings |= BATTERY_ALARM_BMS_LINK_LOST;
	b->requests &= ~(uint32_t)(BATTERY_REQUEST_FORCE_CHARGE | BATTERY_REQUEST_FORCE_CHARGE_2 |
				   BATTERY_REQUEST_FULL_CHARGE);
	s->out_ccl_ma = b->charge_current_limit_ma;
	s->out_dcl_ma = b->discharge_current_limit_ma;
	apply_caps(s, b); /* the caps of now, not those the last bank was shaped under */
}

/* ZERO and STOP: CCL = DCL = 0, nothing enabled, the link-lost alarm; decided now */
static void bank_zero(struct safety *s, struct battery_state *bs, uint64_t now)
{
	struct battery_pack *b = &bs->bank;

	*b = s->last_bank;
	b->charge_current_limit_ma = 0;
	b->discharge_current_limit_ma = 0;
	b->alarms |= BATTERY_ALARM_BMS_LINK_LOST;
	b->requests = 0;
	battery_pack_mark(b, BATTERY_GROUP_LIMITS, now);
	battery_pack_mark(b, BATTERY_GROUP_STATUS, now);
	s->out_ccl_ma = 0;
	s->out_dcl_ma = 0;
	apply_caps(s, b); /* CVL and DVL under the caps of now */
}

/* ---- 5. the mode machine --------------------------------------------------- */

static double secs(uint64_t usec)
{
	return (double)usec / USEC_PER_SEC;
}

static void set_mode(struct safety *s, enum safety_mode to, uint64_t now,
		     struct safety_event *ev, const char *reason)
{
	if (ev) {
		ev->changed = true;
		ev->from = s->mode;
		ev->to = to;
		snprintf(ev->reason, sizeof(ev->reason), "%s", reason);
	}
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
	s->mode = to;
	s->mode_since_usec = now;
	if (to != SAFETY_MODE_NORMAL) {
		/* recovery counts reads made after the loss began */
		s->good_reads = 0;
		for (unsigned i = 0; i < BATTERY_PACKS_MAX; i++) {
			s->pk[i].good_reads = 0;
		}
	}
}

/*
 * Recovery progress: the good reads of the need-th best pack online, so
 * that leaving a loss asks the same as staying out of one: at least
 * min_packs_online packs, each with recovery_reads good reads of its own.
 * A flaky pack neither blocks the others nor counts for them.
 */
static uint32_t recovery_good_reads(const struct safety *s, unsigned pack_count, unsigned need)
{
	uint32_t best = 0;

	for (unsigned i = 0; i < pack_count; i++) {
		uint32_t v = s->pk[i].online ? s->pk[i].good_reads : 0;
		unsigned at_least = 0;

		for (unsigned k = 0; k < pack_count; k++) {
			at_least += s->pk[k].online && s->pk[k].good_reads >= v;
		}
		if (at_least >= need && v > best) {
			best = v;
		}
	}
	return best;
}

/* the newest read of any pack, for "silent for" */
static uint64_t newest_read(const struct safety *s, unsigned pack_count)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < pack_count; i++) {
		t = s->last_read_usec[i] > t ? s->last_read_usec[i] : t;
	}
	return t;
}

/* NORMAL -> the comm-loss policy */
static void enter_loss(struct safety *s, uint64_t now, unsigned online, unsigned pack_count,
		       struct safety_event *ev)
{
	char why[96];
	uint64_t last = newest_read(s, pack_count);

	if (online == 0) {
		snprintf(why, sizeof(why), "BMS silent for %.1f s (stale_timeout %.1f s)",
			 secs(last && now > last ? now - last : 0),
			 secs(s->cfg.stale_timeout_usec));
	} else {
		snprintf(why, sizeof(why), "%u/%u packs online (min_packs_online %u)", online,
			 pack_count, s->cfg.min_packs_online);
	}
	switch ((enum safety_comm_loss)s->comm_loss) {
	case SAFETY_COMM_LOSS_HOLD:
		if (s->last_cells_in_window && s->cfg.hold_max_usec > 0) {
			strncat(why, ", holding", sizeof(why) - strlen(why) - 1);
			set_mode(s, SAFETY_MODE_HOLD, now, ev, why);
			return;
		}
		strncat(why, ", cells outside hold window", sizeof(why) - strlen(why) - 1);
		set_mode(s, SAFETY_MODE_ZERO, now, ev, why);
		return;
	case SAFETY_COMM_LOSS_STOP:
		set_mode(s, SAFETY_MODE_STOP, now, ev, why);
		return;
	case SAFETY_COMM_LOSS_AUTO:
	case SAFETY_COMM_LOSS_ZERO:
		break;
	}
	set_mode(s, SAFETY_MODE_ZERO, now, ev, why);
}

/*
 * One step of the mode machine (the transitions listed at the top of the
 * file, at most one per call, so each is reported once).
 */
static void step_mode(struct safety *s, const struct battery_state *bs, uint64_t now,
		      unsigned online, const char *missing, unsigned missing_pack,
		      struct safety_event *ev)
{
	const struct safety_config *c = &s->cfg;
	unsigned need = c->min_packs_online > bs->pack_count ? bs->pack_count : c->min_packs_online;
	bool enough = online >= (need ? need : 1);
	char why[96];

	switch (s->mode) {
	case SAFETY_MODE_NOT_READY:
		if (online > 0 && s->first_complete_usec == 0) {
			s->first_complete_usec = now;
		}
		if (online == bs->pack_count) {
			snprintf(why, sizeof(why), "first complete read (%u/%u packs)", online,
				 bs->pack_count);
			set_mode(s, SAFETY_MODE_NORMAL, now, ev, why);
		} else if (enough && now - s->first_complete_usec >= c->stale_timeout_usec) {
			snprintf(why, sizeof(why),
				 "first complete read (%u/%u packs, pack %u: no %s)", online,
				 bs->pack_count, missing_pack + 1, missing);
			set_mode(s, SAFETY_MODE_NORMAL, now, ev, why);
		} else {
			/* not a transition: the reason the status shows */
			snprintf(s->reason, sizeof(s->reason),
				 "no complete read yet (pack %u: no fresh %s)", missing_pack + 1,
				 missing);
		}
		return;
	case SAFETY_MODE_NORMAL:
		if (!enough) {
			enter_loss(s, now, online, bs->pack_count, ev);
		}
		return;
	case SAFETY_MODE_HOLD:
	case SAFETY_MODE_ZERO:
	case SAFETY_MODE_STOP:
		break;
	}
	s->good_reads = recovery_good_reads(s, bs->pack_count, need ? need : 1);
	if (enough && s->good_reads >= c->recovery_reads) {
		snprintf(why, sizeof(why), "%u good reads after %.1f s in %s (recovery_reads %u)",
			 s->good_reads, secs(now - s->mode_since_usec), safety_mode_name(s->mode),
			 c->recovery_reads);
		set_mode(s, SAFETY_MODE_NORMAL, now, ev, why);
		return;
	}
	if (s->mode == SAFETY_MODE_HOLD && now - s->mode_since_usec >= c->hold_max_usec) {
		snprintf(why, sizeof(why), "held %.1f s (hold_max), BMS still silent",
			 secs(now - s->mode_since_usec));
		set_mode(s, SAFETY_MODE_ZERO, now, ev, why);
	} else if (s->mode == SAFETY_MODE_ZERO && c->zero_to_stop_usec > 0 &&
		   now - s->mode_since_usec >= c->zero_to_stop_usec) {
		snprintf(why, sizeof(why), "zero for %.1f s (zero_to_stop), BMS still silent",
			 secs(now - s->mode_since_usec));
		set_mode(s, SAFETY_MODE_STOP, now, ev, why);
	}
}

enum safety_mode safety_evaluate(struct safety *s, struct battery_state *bs, uint64_t now_usec,
				 struct safety_event *ret_event)
{
	unsigned online = 0, missing_pack = 0;
	const char *missing = NULL;
	uint64_t dt;

	if (ret_event) {
		ret_event->changed = false;
		ret_event->from = ret_event->to = s->mode;
		ret_event->reason[0] = '\0';
	}
	if (bs->pack_count < 1 || bs->pack_count > BATTERY_PACKS_MAX) {
		bs->pack_count = bs->pack_count < 1 ? 1 : BATTERY_PACKS_MAX;
	}
	if (bs->pack_count > s->packs_seen) {
		s->packs_seen = bs->pack_count;
	}
	dt = s->last_eval_usec && now_usec > s->last_eval_usec ? now_usec - s->last_eval_usec : 0;
	s->last_eval_usec = now_usec;

	for (unsigned i = 0; i < bs->pack_count; i++) {
		struct safety_pack *pk = &s->pk[i];
		const char *why = NULL;
		bool complete, clean;
		bool read = pack_read(s, pk, &bs->packs[i], now_usec, &complete, &clean);

		pk->online = pack_online(s, pk, now_usec, &why);
		if (pk->online) {
			online++;
		} else if (!missing) {
			missing = why;
			missing_pack = i;
		}
		if (read) {
			s->last_read_usec[i] = now_usec;
		}
		/* consecutive good reads of this pack: whole sets, online, nothing rejected */
		if (!pk->online) {
			pk->good_reads = 0;
		} else if (complete) {
			pk->good_reads = clean ? pk->good_reads + 1 : 0;
		}
	}
	/* slots from packs_seen on were never evaluated: never online */
	for (unsigned i = bs->pack_count; i < s->packs_seen; i++) {
		s->pk[i].online = false;
	}

	step_mode(s, bs, now_usec, online, missing ? missing : "data", missing_pack, ret_event);

	switch (s->mode) {
	case SAFETY_MODE_NOT_READY:
		battery_pack_init(&bs->bank);
		break;
	case SAFETY_MODE_NORMAL:
		bank_normal(s, bs, now_usec, dt);
		break;
	case SAFETY_MODE_HOLD:
		bank_hold(s, bs);
		break;
	case SAFETY_MODE_ZERO:
	case SAFETY_MODE_STOP:
		bank_zero(s, bs, now_usec);
		break;
	}
	bs->packs_online = (uint8_t)online;
	return s->mode;
}
