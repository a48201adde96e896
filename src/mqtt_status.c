/* SPDX-License-Identifier: MIT */
/*
 * The MQTT client's state as a short phrase for the status line
 * (include/mqtt.h, mqtt_stats_phrase()). Pure: the counters and a time in,
 * text out; the client itself is src/mqtt.c.
 */
#include <stdio.h>

#include "macro.h"
#include "mqtt.h"

void mqtt_stats_phrase(const struct mqtt_stats *s, uint64_t now_usec, char *buf, size_t n)
{
	uint64_t wait_s;
	int len;

	if (n == 0) {
		return;
	}
	if (s->connected) {
		snprintf(buf, n, "mqtt: connected, %u queued", s->queued);
		return;
	}
	if (s->next_retry_usec == 0) {
		len = snprintf(buf, n, "mqtt: connecting");
	} else {
		/* whole seconds, rounded up: "in 0 s" only once it is due */
		wait_s = s->next_retry_usec > now_usec
				 ? (s->next_retry_usec - now_usec + USEC_PER_SEC - 1) / USEC_PER_SEC
				 : 0;
		len = snprintf(buf, n, "mqtt: retrying in %llu s", (unsigned long long)wait_s);
	}
	if (s->last_error[0] && len > 0 && (size_t)len < n) {
		snprintf(buf + len, n - (size_t)len, " (%s)", s->last_error);
	}
}
