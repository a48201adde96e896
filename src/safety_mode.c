/* SPDX-License-Identifier: MIT */
/*
 * The safety layer, step 5: the mode machine (src/safety_internal.h), and
 * safety_evaluate(), which runs steps 1-5 in order.
 * Pure: no I/O, no clock, no logging, no allocation.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "battery.h"
#include "macro.h"
#include "safety.h"
#include "safety_internal.h"

/* ---- 5. the mode machine --------------------------------------------------- */

static double secs(uint64_t usec)
{
	return (double)usec / USEC_PER_SEC;
}

static void set_mode(struct safety *s, enum safety_mode to, uint64_t now, struct safety_event *ev,
		     const char *reason)
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
		bool read = safety_pack_read(s, pk, &bs->packs[i], now_usec, &complete, &clean);

		pk->online = safety_pack_online(s, pk, now_usec, &why);
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
		safety_bank_normal(s, bs, now_usec, dt);
		break;
	case SAFETY_MODE_HOLD:
		safety_bank_hold(s, bs);
		break;
	case SAFETY_MODE_ZERO:
	case SAFETY_MODE_STOP:
		safety_bank_zero(s, bs, now_usec);
		break;
	}
	bs->packs_online = (uint8_t)online;
	return s->mode;
}
