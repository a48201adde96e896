/* SPDX-License-Identifier: MIT */
/*
 * Packs online and silent, said once: see include/pack_watch.h. The two
 * serial inputs used to carry a copy each; the wording is theirs, kept
 * word for word (tests/integration/test-jk-pb.py and test-bms-families.py
 * read these lines).
 */
#include <inttypes.h>
#include <stdio.h>

#include "log.h"
#include "pack_watch.h"

void pack_watch_answered(struct pack_watch *w, const char *module, unsigned i, uint64_t now_usec)
{
	if (w->online) {
		return;
	}
	w->online = true;
	if (w->silent_since_usec) {
		log_internal(LOG_INFO, 0, module,
			     "Pack %u (address %u) online again after %.1f s silent (%" PRIu64
			     " rounds missed)",
			     i + 1, w->addr,
			     (double)(now_usec - w->silent_since_usec) / USEC_PER_SEC,
			     w->silent_rounds);
	} else {
		log_internal(LOG_INFO, 0, module, "Pack %u (address %u) online", i + 1, w->addr);
	}
	w->silent_since_usec = 0;
	w->silent_rounds = 0;
}

void pack_watch_silent(struct pack_watch *w, const char *module, unsigned i, uint64_t now_usec,
		       const char *what)
{
	w->silent_rounds++;
	if (w->online || !w->silent_since_usec) {
		w->online = false;
		w->silent_since_usec = now_usec;
		w->reminded_usec = now_usec;
		log_internal(LOG_WARNING, 0, module,
			     "Pack %u (address %u) %s; said once, the count is in STATUS", i + 1,
			     w->addr, what);
		return;
	}
	if (now_usec - w->reminded_usec >= PACK_WATCH_REMIND_USEC) {
		w->reminded_usec = now_usec;
		log_internal(LOG_WARNING, 0, module,
			     "Pack %u (address %u) still silent, for %.0f s (%" PRIu64 " rounds)",
			     i + 1, w->addr,
			     (double)(now_usec - w->silent_since_usec) / USEC_PER_SEC,
			     w->silent_rounds);
	}
}

unsigned pack_watch_summary(const struct pack_watch *first, size_t stride, unsigned n,
			    uint64_t now_usec, char *buf, size_t len)
{
	const struct pack_watch *silent_first = NULL;
	unsigned online = 0, silent = 0;

	for (unsigned i = 0; i < n; i++) {
		const struct pack_watch *w =
			(const struct pack_watch *)((const char *)first + (size_t)i * stride);

		online += w->online;
		if (w->silent_since_usec && silent++ == 0) {
			silent_first = w;
		}
	}
	if (len > 0) {
		buf[0] = '\0';
	}
	/* the first silent pack by name, its time and rounds; the others counted */
	if (silent_first) {
		snprintf(buf, len, ", @%u silent %" PRIu64 " s/%" PRIu64 " rounds%s",
			 silent_first->addr,
			 (now_usec - silent_first->silent_since_usec) / USEC_PER_SEC,
			 silent_first->silent_rounds, silent > 1 ? " +more" : "");
	}
	return online;
}
