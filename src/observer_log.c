/* SPDX-License-Identifier: MIT */
/*
 * The log as an observer of the bridge (include/observer.h): what the
 * safety layer decided, said once per change, and the inverter coming
 * and going. The lines and their levels are those the bridge wrote
 * itself before; the module is still "bridge" for -d.
 */
#include <stdio.h>

#define LOG_MODULE "bridge"
#include "log.h"
#include "macro.h"
#include "observer.h"

static void log_evaluated(struct observer *base, const struct observer_evaluation *ev)
{
	struct observer_log *o = container_of(base, struct observer_log, base);
	const struct observer_decision *d = &ev->decision;

	if (d->transition && d->transition->changed) {
		const struct safety_event *t = d->transition;
		int level = t->to == SAFETY_MODE_NORMAL ? LOG_NOTICE : LOG_WARNING;

		log_full_errno(level, 0, "Safety: %s -> %s: %s", safety_mode_name(t->from),
			       safety_mode_name(t->to), t->reason);
	}
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

static void log_link(struct observer *base, const struct observer_link_event *ev)
{
	if (ev->link != OBSERVER_LINK_INVERTER) {
		return; /* the ports log their own changes, with their details */
	}
	if (ev->up && ev->last_heard_usec == 0) {
		log_notice("Inverter present (%s)", ev->protocol);
	} else if (ev->up) {
		log_notice("Inverter back after %.1f s of silence",
			   (double)(ev->now_usec - ev->last_heard_usec) / USEC_PER_SEC);
	} else if (ev->transport_can) {
		/* RS485: the output logs "polls stopped" with its counts, once (issue 10) */
		log_warning("Inverter silent for %.1f s (timeout %.1f s), still sending",
			    (double)(ev->now_usec - ev->last_heard_usec) / USEC_PER_SEC,
			    (double)ev->timeout_usec / USEC_PER_SEC);
	}
}

static const struct observer_ops log_ops = {
	.name = "log",
	.evaluated = log_evaluated,
	.link = log_link,
};

void observer_log_init(struct observer_log *o)
{
	*o = (struct observer_log){
		.base = { .ops = &log_ops },
		.rejected_rl = RATELIMIT_INIT(60 * USEC_PER_SEC, 5),
	};
}
