/* SPDX-License-Identifier: MIT */
/*
 * The safety layer, step 1: plausibility (src/safety_internal.h). Every
 * group a pack wrote since the last run is taken once; cell voltages,
 * pack voltage, SOC and temperatures pass only within chemistry bounds and
 * believable steps from the last good value, else the good one is kept
 * until the new one is confirmed (spike_confirm_reads).
 * Pure: no I/O, no clock, no logging, no allocation.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "battery.h"
#include "macro.h"
#include "safety.h"
#include "safety_internal.h"

/* ---- 1. plausibility --------------------------------------------------- */

/*
 * Remember the last rejection in words, for the daemon's rate-limited log
 * and the status: "pack 2 cell 6: 4500 mV rejected (kept 3301 mV)".
 */
static void note_rejected(struct safety *s, const struct safety_pack *pk, const char *what, int idx,
			  int32_t v, int32_t kept, const char *unit)
{
	unsigned pack = (unsigned)(pk - s->pk) + 1;

	if (idx >= 0) {
		snprintf(s->last_rejected, sizeof(s->last_rejected),
			 "pack %u %s %d: %d %s rejected (kept %d %s)", pack, what, idx + 1, v, unit,
			 kept, unit);
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
		ok = v > 0 &&
		     (!pk->have_voltage || (uint32_t)abs_diff(v, good) <= c->pack_sum_tolerance_mv);
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
		g->soc_cpct = raw->soc_cpct; /* the finer value of the SOC taken */
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
		return a->soc_pct != b->soc_pct || a->soc_cpct != b->soc_cpct ||
		       a->soh_pct != b->soh_pct || a->remaining_mah != b->remaining_mah ||
		       a->full_mah != b->full_mah || a->cycles != b->cycles ||
		       a->cell_series != b->cell_series;
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
		dst->soc_cpct = raw->soc_cpct;
		dst->soh_pct = raw->soh_pct;
		dst->remaining_mah = raw->remaining_mah;
		dst->full_mah = raw->full_mah;
		dst->cycles = raw->cycles;
		dst->cell_series = raw->cell_series;
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
bool safety_pack_read(struct safety *s, struct safety_pack *pk, const struct battery_pack *raw,
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
