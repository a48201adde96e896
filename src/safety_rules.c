/* SPDX-License-Identifier: MIT */
/*
 * The safety layer, step 3: charge control per pack (src/safety_internal.h):
 * the BMS's own limits, taper, cell-ahead CVL, temperature tables and the
 * discharge floor, on the filtered values and on a strict view of them.
 * Pure: no I/O, no clock, no logging, no allocation.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "battery.h"
#include "macro.h"
#include "safety.h"
#include "safety_internal.h"

/* ---- 3. charge control, per pack ------------------------------------------ */

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
	uint32_t before;

	l->cvl_mv = g->charge_voltage_limit_mv;
	l->dvl_mv = g->discharge_voltage_limit_mv;
	l->ccl_ma = g->charge_current_limit_ma;
	l->dcl_ma = g->discharge_current_limit_ma;
	l->cvl_by = l->ccl_by = l->dcl_by = 0;

	if (has_group(pk, BATTERY_GROUP_CELLS)) {
		uint32_t hi = g->cell_max_mv, lo = g->cell_min_mv;

		/* taper: full current at charge_taper_start_mv, none at cell_full_mv */
		before = l->ccl_ma;
		if (hi >= c->cell_full_mv) {
			l->ccl_ma = 0;
		} else if (hi > c->charge_taper_start_mv) {
			l->ccl_ma = scale(l->ccl_ma, c->cell_full_mv - hi,
					  c->cell_full_mv - c->charge_taper_start_mv);
		}
		if (l->ccl_ma < before) {
			l->ccl_by |= SAFETY_BY_TAPER;
		}
		before = l->cvl_mv;
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
		if (l->cvl_mv < before) {
			l->cvl_by |= SAFETY_BY_CELL;
		}
		/* discharge: none at cell_empty_mv, full discharge_taper_mv above */
		before = l->dcl_ma;
		if (lo <= c->cell_empty_mv) {
			l->dcl_ma = 0;
		} else if (lo < (uint32_t)c->cell_empty_mv + c->discharge_taper_mv) {
			l->dcl_ma = scale(l->dcl_ma, lo - c->cell_empty_mv, c->discharge_taper_mv);
		}
		if (l->dcl_ma < before) {
			l->dcl_by |= SAFETY_BY_TAPER;
		}
	}
	if (has_group(pk, BATTERY_GROUP_TEMPS)) {
		uint32_t ccl_before = l->ccl_ma, dcl_before = l->dcl_ma;

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
		if (l->ccl_ma < ccl_before) {
			l->ccl_by |= SAFETY_BY_DERATE;
		}
		if (l->dcl_ma < dcl_before) {
			l->dcl_by |= SAFETY_BY_DERATE;
		}
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
void safety_pack_limits(const struct safety_config *c, const struct safety_pack *pk,
			struct limits *l)
{
	struct battery_pack v;
	struct limits ls;
	bool cell_high;

	pack_rules(c, pk, &pk->good, l);
	if (strict_view(c, pk, &v, &cell_high)) {
		pack_rules(c, pk, &v, &ls);
		if (ls.cvl_mv < l->cvl_mv) {
			l->cvl_mv = ls.cvl_mv;
			l->cvl_by |= ls.cvl_by;
		}
		if (ls.ccl_ma < l->ccl_ma) {
			l->ccl_ma = ls.ccl_ma;
			l->ccl_by |= ls.ccl_by;
		}
		if (ls.dcl_ma < l->dcl_ma) {
			l->dcl_ma = ls.dcl_ma;
			l->dcl_by |= ls.dcl_by;
		}
		l->dvl_mv = l->dvl_mv > ls.dvl_mv ? l->dvl_mv : ls.dvl_mv;
	}
	if (cell_high) {
		if (l->ccl_ma) {
			l->ccl_by |= SAFETY_BY_CELL;
		}
		l->ccl_ma = 0;
	}
}
