/* SPDX-License-Identifier: MIT */
/*
 * The safety layer, step 4: the bank (src/safety_internal.h): the online
 * packs aggregated, the user caps, the ramp; HOLD and ZERO/STOP banks.
 * Pure: no I/O, no clock, no logging, no allocation.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "battery.h"
#include "macro.h"
#include "safety.h"
#include "safety_internal.h"

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
			bank_share_add(&ch,
				       pk->online ? l[i].ccl_ma : pk->good.charge_current_limit_ma,
				       pk->online);
		}
		if (!dis.zero && !path_open(pk, BATTERY_REQUEST_DISCHARGE_ENABLE)) {
			bank_share_add(&dis,
				       pk->online ? l[i].dcl_ma
						  : pk->good.discharge_current_limit_ma,
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

/* what the online packs add up to, while safety_bank_normal() walks them */
struct bank_sum {
	uint64_t w_sum, soc_w, soh_w, v_sum, oldest;
	uint64_t grp_oldest[BATTERY_GROUP__COUNT];
	uint32_t cvl, cvl_all, dvl, alarms, warnings, requests;
	unsigned n, cell_hi_pack, temp_hi_pack;
	bool all_full, cells, temps, cvl_any;
};

/* the extremes across packs, with the pack that holds them */
static void bank_extremes(struct bank_sum *sum, const struct safety_pack *pk, unsigned i,
			  struct battery_pack *b)
{
	const struct battery_pack *g = &pk->good;

	if (has_group(pk, BATTERY_GROUP_CELLS)) {
		if (!sum->cells || g->cell_max_mv > b->cell_max_mv) {
			b->cell_max_mv = g->cell_max_mv;
			b->cell_max_idx = g->cell_max_idx;
			b->cell_max_pack = (uint8_t)i;
			sum->cell_hi_pack = i;
		}
		if (!sum->cells || g->cell_min_mv < b->cell_min_mv) {
			b->cell_min_mv = g->cell_min_mv;
			b->cell_min_idx = g->cell_min_idx;
			b->cell_min_pack = (uint8_t)i;
		}
		sum->cells = true;
	}
	if (has_group(pk, BATTERY_GROUP_TEMPS)) {
		if (!sum->temps || g->temp_max_dc > b->temp_max_dc) {
			b->temp_max_dc = g->temp_max_dc;
			b->temp_max_idx = g->temp_max_idx;
			b->temp_max_pack = (uint8_t)i;
			sum->temp_hi_pack = i;
		}
		if (!sum->temps || g->temp_min_dc < b->temp_min_dc) {
			b->temp_min_dc = g->temp_min_dc;
			b->temp_min_idx = g->temp_min_idx;
			b->temp_min_pack = (uint8_t)i;
		}
		if (g->mosfet_temp_dc != BATTERY_TEMP_NONE &&
		    (b->mosfet_temp_dc == BATTERY_TEMP_NONE ||
		     g->mosfet_temp_dc > b->mosfet_temp_dc)) {
			b->mosfet_temp_dc = g->mosfet_temp_dc;
		}
		sum->temps = true;
	}
}

/* one online pack into the sum and the bank (@li: what its rules allow) */
static void bank_add(struct bank_sum *sum, const struct safety_pack *pk, unsigned i,
		     const struct limits *li, struct battery_pack *b)
{
	const struct battery_pack *g = &pk->good;
	uint64_t w;

	for (unsigned grp = 0; grp < BATTERY_GROUP__COUNT; grp++) {
		uint64_t t = g->updated_usec[grp];

		if (t != BATTERY_NEVER && t < sum->grp_oldest[grp]) {
			sum->grp_oldest[grp] = t;
		}
		if (t != BATTERY_NEVER && t < sum->oldest) {
			sum->oldest = t;
		}
	}
	/* SOC and SOH by capacity: a 280 Ah pack counts twice a 140 Ah one */
	w = sum->all_full ? g->full_mah : 1;
	sum->w_sum += w;
	sum->soc_w += w * battery_soc_cpct(g); /* 0.01 % */
	sum->soh_w += w * g->soh_pct;
	sum->v_sum += g->voltage_mv; /* parallel: one voltage, averaged */
	b->current_ma += g->current_ma;
	b->remaining_mah += g->remaining_mah;
	b->full_mah += g->full_mah;
	b->cycles = g->cycles > b->cycles ? g->cycles : b->cycles;
	if (!path_open(pk, BATTERY_REQUEST_CHARGE_ENABLE)) {
		sum->cvl = min_u32(sum->cvl, li->cvl_mv);
		sum->cvl_any = true;
	}
	sum->cvl_all = min_u32(sum->cvl_all, li->cvl_mv);
	sum->dvl = li->dvl_mv > sum->dvl ? li->dvl_mv : sum->dvl;
	sum->alarms |= g->alarms;
	sum->warnings |= g->warnings;
	sum->requests |= g->requests &
			 (BATTERY_REQUEST_FORCE_CHARGE | BATTERY_REQUEST_FORCE_CHARGE_2 |
			  BATTERY_REQUEST_FULL_CHARGE);
	bank_extremes(sum, pk, i, b);
	sum->n++;
}

/* the averages, and the cell and sensor lists of the pack holding the highest value */
static void bank_values(const struct safety *s, const struct bank_sum *sum, struct battery_pack *b)
{
	b->voltage_mv = (uint32_t)(sum->v_sum / sum->n);
	battery_pack_set_soc_cpct(b, (uint32_t)(sum->w_sum ? sum->soc_w / sum->w_sum : 0));
	b->soh_pct = (uint8_t)(sum->w_sum ? sum->soh_w / sum->w_sum : 0);
	if (sum->cells) {
		const struct battery_pack *g = &s->pk[sum->cell_hi_pack].good;

		b->cell_count = g->cell_count;
		memcpy(b->cell_mv, g->cell_mv, sizeof(b->cell_mv));
	}
	if (sum->temps) {
		const struct battery_pack *g = &s->pk[sum->temp_hi_pack].good;

		b->temp_count = g->temp_count;
		memcpy(b->temp_dc, g->temp_dc, sizeof(b->temp_dc));
	}
}

/*
 * The limits (the packs', the bank rule, the user caps, the ramp), force
 * charge with its hysteresis, the enables, the flags and the group times.
 */
static void bank_limits(struct safety *s, struct battery_state *bs, struct bank_sum *sum,
			const struct limits *l, uint64_t now, uint64_t dt)
{
	const struct safety_config *c = &s->cfg;
	struct battery_pack *b = &bs->bank;
	uint32_t ccl, dcl;

	bank_currents(s, l, now, &ccl, &dcl);
	ccl = min_u32(ccl, c->max_charge_current_ma);
	dcl = min_u32(dcl, c->max_discharge_current_ma);
	b->charge_voltage_limit_mv =
		min_u32(sum->cvl_any ? sum->cvl : sum->cvl_all, c->max_charge_voltage_mv);
	b->discharge_voltage_limit_mv =
		sum->dvl > c->min_discharge_voltage_mv ? sum->dvl : c->min_discharge_voltage_mv;
	s->out_ccl_ma = slew(s, s->out_ccl_ma, ccl, dt);
	s->out_dcl_ma = slew(s, s->out_dcl_ma, dcl, dt);
	b->charge_current_limit_ma = s->out_ccl_ma;
	b->discharge_current_limit_ma = s->out_dcl_ma;
	/* for observers: which rules lowered what, and where the ramp holds back */
	s->cvl_by = s->ccl_by = s->dcl_by = 0;
	for (unsigned i = 0; i < s->packs_seen; i++) {
		if (s->pk[i].online) {
			s->cvl_by |= l[i].cvl_by;
			s->ccl_by |= l[i].ccl_by;
			s->dcl_by |= l[i].dcl_by;
		}
	}
	s->ccl_ramped = s->out_ccl_ma < ccl;
	s->dcl_ramped = s->out_dcl_ma < dcl;

	if ((c->force_charge_soc_pct && b->soc_pct <= c->force_charge_soc_pct) ||
	    (sum->cells && c->force_charge_cell_mv && b->cell_min_mv <= c->force_charge_cell_mv)) {
		s->force_charge = true;
	} else if (s->force_charge && b->soc_pct >= c->force_charge_release_soc_pct &&
		   (!sum->cells || b->cell_min_mv >= c->force_charge_release_cell_mv)) {
		s->force_charge = false;
	}
	if (s->force_charge) {
		sum->requests |= BATTERY_REQUEST_FORCE_CHARGE;
		sum->warnings |= BATTERY_ALARM_LOW_SOC;
	}
	/* the enables follow the shaped limits, before the ramp */
	sum->requests |= (ccl ? BATTERY_REQUEST_CHARGE_ENABLE : 0) |
			 (dcl ? BATTERY_REQUEST_DISCHARGE_ENABLE : 0);
	if (sum->n < bs->pack_count) {
		sum->alarms |= BATTERY_ALARM_PACK_OFFLINE;
	}
	b->alarms = sum->alarms & ~BATTERY_ALARM_BMS_LINK_LOST; /* ours alone */
	b->warnings = sum->warnings & ~BATTERY_ALARM_BMS_LINK_LOST;
	b->requests = sum->requests;

	/* each group as old as the oldest data it came from; limits from all of it */
	for (unsigned grp = 0; grp < BATTERY_GROUP__COUNT; grp++) {
		b->updated_usec[grp] = sum->grp_oldest[grp] == UINT64_MAX ? BATTERY_NEVER
									  : sum->grp_oldest[grp];
	}
	b->updated_usec[BATTERY_GROUP_LIMITS] = sum->oldest;
	b->updated_usec[BATTERY_GROUP_STATUS] = sum->oldest;
	s->last_cells_in_window = sum->cells && b->cell_min_mv >= c->hold_cell_min_mv &&
				  b->cell_max_mv <= c->hold_cell_max_mv;
}

/*
 * NORMAL: the bank from the online packs. Per pack the rules of
 * pack_limits(), then the bank rule of bank_currents(), the user caps last
 * and the ramp after them (so the ramp can only lower a value further).
 */
void safety_bank_normal(struct safety *s, struct battery_state *bs, uint64_t now, uint64_t dt)
{
	struct battery_pack *b = &bs->bank;
	struct limits l[BATTERY_PACKS_MAX] = { 0 };
	struct bank_sum sum = {
		.oldest = UINT64_MAX,
		.cvl = UINT32_MAX,
		.cvl_all = UINT32_MAX,
		.all_full = true,
	};

	for (unsigned grp = 0; grp < BATTERY_GROUP__COUNT; grp++) {
		sum.grp_oldest[grp] = UINT64_MAX;
	}
	battery_pack_init(b);
	for (unsigned i = 0; i < bs->pack_count; i++) {
		if (s->pk[i].online && s->pk[i].good.full_mah == 0) {
			sum.all_full = false;
		}
	}
	for (unsigned i = 0; i < bs->pack_count; i++) {
		const struct safety_pack *pk = &s->pk[i];

		if (!pk->online) {
			/* fresh limits of a pack otherwise offline still bind */
			if (limits_bind(s, pk, now) &&
			    !path_open(pk, BATTERY_REQUEST_CHARGE_ENABLE)) {
				sum.cvl = min_u32(sum.cvl, pk->good.charge_voltage_limit_mv);
				sum.cvl_any = true;
			}
			continue;
		}
		safety_pack_limits(&s->cfg, pk, &l[i]);
		bank_add(&sum, pk, i, &l[i], b);
	}
	if (sum.n == 0) {
		return;
	}
	bank_values(s, &sum, b);
	bank_limits(s, bs, &sum, l, now, dt);
	apply_caps(s, b);
	s->last_bank = *b;
}

/* HOLD: the last NORMAL bank, currents cut to hold_current_pct, link-lost warning */
void safety_bank_hold(struct safety *s, struct battery_state *bs)
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
void safety_bank_zero(struct safety *s, struct battery_state *bs, uint64_t now)
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
