/* SPDX-License-Identifier: MIT */
/*
 * The STATUS= line as an observer of the bridge (include/observer.h):
 * refreshed on the tick once status_interval has passed since the last
 * refresh (or since the ports were opened), with a debug-log copy.
 */
#include <stdio.h>

#define LOG_MODULE "bridge"
#include "log.h"
#include "macro.h"
#include "notify.h"
#include "observer.h"

static void status_evaluated(struct observer *base, const struct observer_evaluation *ev)
{
	struct observer_status *o = container_of(base, struct observer_status, base);
	char status[256];

	if (ev->cause != OBSERVER_CAUSE_TICK || ev->now_usec - o->last_usec < o->interval_usec) {
		return;
	}
	o->last_usec = ev->now_usec;
	ev->status(ev, status, sizeof(status));
	notify_status(status);
	/* the heartbeat is STATUS= only: 8,640 journal lines a day otherwise */
	log_debug("Status: %s", status);
}

static void status_configured(struct observer *base, const struct observer_config *ev)
{
	struct observer_status *o = container_of(base, struct observer_status, base);

	o->interval_usec = ev->status_interval_usec;
	if (ev->restarted) {
		o->last_usec = ev->now_usec;
	}
}

static const struct observer_ops status_ops = {
	.name = "status",
	.evaluated = status_evaluated,
	.configured = status_configured,
};

void observer_status_init(struct observer_status *o)
{
	*o = (struct observer_status){ .base = { .ops = &status_ops } };
}
