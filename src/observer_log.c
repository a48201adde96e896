/* SPDX-License-Identifier: MIT */
/*
 * The log as an observer of the bridge (include/observer.h): what the
 * safety layer decided, said once per change, limit cuts, packs coming
 * and going, the ports and the inverter. Each event kind carries its
 * MESSAGE_ID and BMSBRIDGE_* fields (log.h; explained for `journalctl -x`
 * by systemd/bmsbridge.catalog); outside the journal the lines read as
 * before. The module is still "bridge" for -d.
 */
#include <stdio.h>

#define LOG_MODULE "bridge"
#include "log.h"
#include "macro.h"
#include "observer.h"

/* limit cuts: a taper lowers CCL at every step; a few lines a minute at most */
#define LIMIT_CUT_RL_USEC (60 * USEC_PER_SEC)
#define LIMIT_CUT_RL_BURST 6

static void log_transition(const struct safety_event *t)
{
	const char *fault = t->to == SAFETY_MODE_HOLD || t->to == SAFETY_MODE_ZERO ||
					    t->to == SAFETY_MODE_STOP
				    ? "bms-silent"
				    : NULL;
	const struct log_field f[] = {
		{ "BMSBRIDGE_MODE", safety_mode_name(t->to) },
		{ "BMSBRIDGE_MODE_FROM", safety_mode_name(t->from) },
		{ "BMSBRIDGE_REASON", t->reason },
		{ "BMSBRIDGE_FAULT", fault },
	};
	int level = t->to == SAFETY_MODE_NORMAL ? LOG_NOTICE : LOG_WARNING;

	log_struct(level, LOG_MSGID_SAFETY_MODE, f, ARRAY_SIZE(f), "Safety: %s -> %s: %s",
		   safety_mode_name(t->from), safety_mode_name(t->to), t->reason);
}

/* one current limit lowered: "CCL cut 100.0 A -> 20.0 A (mode normal)" */
static void log_cut(struct observer_log *o, const struct observer_evaluation *ev, const char *limit,
		    uint32_t from_ma, uint32_t to_ma)
{
	char value[16], prev[16];
	const char *mode = safety_mode_name(ev->decision.mode);
	const struct log_field f[] = {
		{ "BMSBRIDGE_LIMIT", limit },
		{ "BMSBRIDGE_VALUE_MA", value },
		{ "BMSBRIDGE_PREVIOUS_MA", prev },
		{ "BMSBRIDGE_MODE", mode },
		{ "BMSBRIDGE_REASON", ev->decision.reason },
	};

	if (!ratelimit_below(&o->cut_rl, ev->now_usec)) {
		return;
	}
	snprintf(value, sizeof(value), "%u", to_ma);
	snprintf(prev, sizeof(prev), "%u", from_ma);
	log_struct(to_ma == 0 ? LOG_NOTICE : LOG_INFO, LOG_MSGID_LIMIT_CUT, f, ARRAY_SIZE(f),
		   "%s cut %.1f A -> %.1f A (mode %s: %s)%s", limit, from_ma / 1000.0,
		   to_ma / 1000.0, mode, ev->decision.reason,
		   o->cut_rl.suppressed ? " (earlier cuts not logged)" : "");
}

static void log_limits(struct observer_log *o, const struct observer_evaluation *ev)
{
	const struct battery_pack *b = &ev->state->bank;

	if (o->have_limits && b->charge_current_limit_ma < o->ccl_ma) {
		log_cut(o, ev, "CCL", o->ccl_ma, b->charge_current_limit_ma);
	}
	if (o->have_limits && b->discharge_current_limit_ma < o->dcl_ma) {
		log_cut(o, ev, "DCL", o->dcl_ma, b->discharge_current_limit_ma);
	}
	o->ccl_ma = b->charge_current_limit_ma;
	o->dcl_ma = b->discharge_current_limit_ma;
	o->have_limits = true;
}

/* the bank's packs_online: said when it changes, the first read included */
static void log_packs(struct observer_log *o, const struct observer_evaluation *ev)
{
	const struct battery_state *bs = ev->state;
	char online[8], count[8];
	const struct log_field f[] = {
		{ "BMSBRIDGE_PACKS_ONLINE", online },
		{ "BMSBRIDGE_PACK_COUNT", count },
	};

	if (o->packs_online == bs->packs_online || (o->packs_online < 0 && bs->packs_online == 0)) {
		o->packs_online = bs->packs_online;
		return;
	}
	snprintf(online, sizeof(online), "%u", bs->packs_online);
	snprintf(count, sizeof(count), "%u", bs->pack_count);
	log_struct(bs->packs_online < bs->pack_count ? LOG_WARNING : LOG_NOTICE, LOG_MSGID_PACK, f,
		   ARRAY_SIZE(f), "BMS packs online: %u of %u (were %d)", bs->packs_online,
		   bs->pack_count, o->packs_online < 0 ? 0 : o->packs_online);
	o->packs_online = bs->packs_online;
}

static void log_evaluated(struct observer *base, const struct observer_evaluation *ev)
{
	struct observer_log *o = container_of(base, struct observer_log, base);
	const struct observer_decision *d = &ev->decision;

	if (d->transition && d->transition->changed) {
		log_transition(d->transition);
	}
	log_limits(o, ev);
	log_packs(o, ev);
	/* DVL >= CVL: nothing may flow until it clears; said once each way */
	if (d->conflict[0] && !o->conflict_logged) {
		log_warning("Safety: %s", d->conflict);
		o->conflict_logged = true;
	} else if (!d->conflict[0] && o->conflict_logged) {
		log_notice("Safety: DVL below CVL again, limits released");
		o->conflict_logged = false;
	}
	/* one absurd reading never loosens a limit; say so, a few times a minute at most */
	if (d->rejected != o->rejected_seen) {
		log_ratelimit(&o->rejected_rl, ev->now_usec, LOG_WARNING,
			      "Safety: implausible value rejected (%llu so far): %s",
			      (unsigned long long)d->rejected, d->last_rejected);
		o->rejected_seen = d->rejected;
	}
}

static void log_port(const struct observer_link_event *ev)
{
	const char *which = ev->link == OBSERVER_LINK_INPUT ? "bms" : "inverter";
	const struct log_field f[] = {
		{ "BMSBRIDGE_LINK", which },
		{ "BMSBRIDGE_UP", ev->up ? "1" : "0" },
		{ "BMSBRIDGE_PROTOCOL", ev->protocol },
	};

	/* the ports log their own warnings, with their details: this is the record */
	log_struct(LOG_INFO, LOG_MSGID_PORT, f, ARRAY_SIZE(f), "%s port %s",
		   ev->link == OBSERVER_LINK_INPUT ? "BMS" : "Inverter",
		   ev->up ? "open" : "closed");
}

static void log_link(struct observer *base, const struct observer_link_event *ev)
{
	char silent[24];
	const struct log_field f[] = {
		{ "BMSBRIDGE_PRESENT", ev->up ? "1" : "0" },
		{ "BMSBRIDGE_PROTOCOL", ev->protocol },
		{ "BMSBRIDGE_SILENT_S", ev->last_heard_usec ? silent : NULL },
		{ "BMSBRIDGE_FAULT", ev->up ? NULL : "inverter-silent" },
	};

	if (ev->link != OBSERVER_LINK_INVERTER) {
		log_port(ev);
		return;
	}
	snprintf(silent, sizeof(silent), "%.1f",
		 (double)(ev->now_usec - ev->last_heard_usec) / USEC_PER_SEC);
	if (ev->up && ev->last_heard_usec == 0) {
		log_struct(LOG_NOTICE, LOG_MSGID_INVERTER, f, ARRAY_SIZE(f),
			   "Inverter present (%s)", ev->protocol);
	} else if (ev->up) {
		log_struct(LOG_NOTICE, LOG_MSGID_INVERTER, f, ARRAY_SIZE(f),
			   "Inverter back after %s s of silence", silent);
	} else if (ev->transport_can) {
		/* RS485: the output logs "polls stopped" with its counts, once (issue 10) */
		log_struct(LOG_WARNING, LOG_MSGID_INVERTER, f, ARRAY_SIZE(f),
			   "Inverter silent for %s s (timeout %.1f s), still sending; check "
			   "that the inverter's battery type is set to the protocol (%s) and the "
			   "cable (bmsbridge-troubleshooting(7))",
			   silent, (double)ev->timeout_usec / USEC_PER_SEC, ev->protocol);
	}
}

static void log_configured(struct observer *base, const struct observer_config *ev)
{
	struct observer_log *o = container_of(base, struct observer_log, base);

	if (ev->restarted) {
		/* new ports, new state: the first read is not a cut */
		o->have_limits = false;
		o->packs_online = -1;
	}
}

static const struct observer_ops log_ops = {
	.name = "log",
	.evaluated = log_evaluated,
	.link = log_link,
	.configured = log_configured,
};

void observer_log_init(struct observer_log *o)
{
	*o = (struct observer_log){
		.base = { .ops = &log_ops },
		.rejected_rl = RATELIMIT_INIT(60 * USEC_PER_SEC, 5),
		.cut_rl = RATELIMIT_INIT(LIMIT_CUT_RL_USEC, LIMIT_CUT_RL_BURST),
		.packs_online = -1,
	};
}
