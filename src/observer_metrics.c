/* SPDX-License-Identifier: MIT */
/*
 * Prometheus metrics for node_exporter's textfile collector, as an
 * observer of the bridge (include/observer.h). Every evaluation updates a
 * few fields here (the mode, the limits that went on the wire, counters:
 * no copy of the state, no I/O); on the bridge's tick, once interval_s has
 * passed, the state of that evaluation is rendered (metrics_render(),
 * pure, into a buffer allocated at start) and the file is replaced:
 *
 *	open(<dir>/.<name>.tmp, O_CREAT | O_TRUNC), fchmod(0644), write(),
 *	close(), rename() over <name>
 *
 * rename() within one directory is atomic: the collector reads the old
 * file or the new one, never a part of one. The temporary name does not
 * end in .prom, so the collector never reads it either.
 *
 * No fsync(): the file is rewritten every interval, so one lost at a power
 * cut costs one interval; an fsync() on an SD card can take tens to
 * hundreds of milliseconds and would stall the loop (and the inverter
 * frames) every interval, and would wear the card for data that is stale
 * within seconds. (ext4's default auto_da_alloc also flushes a file
 * renamed over another before the rename commits, so the file a crash
 * leaves is the old one or the new one, not an empty one.)
 *
 * A directory we cannot write (missing, read-only, full): one error line,
 * then a reminder at most every 10 minutes, and the daemon goes on; a
 * line when it works again.
 *
 * With metrics { listen }, the same text is served on GET /metrics
 * (src/metrics_http.c); with listen alone, no file is written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#define OBSERVER_METRICS_SLACK_USEC (100 * USEC_PER_MSEC)

#define LOG_MODULE "metrics"
#include "build-config.h"
#include "log.h"
#include "macro.h"
#include "metrics.h"
#include "mqtt.h"
#include "observer_metrics.h"

static uint64_t clock_usec(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static void copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

/* the whole buffer to @fd; 0 or a negative errno */
static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* the text to tmp_path, then renamed over path; 0 or a negative errno, the step in @ret_step */
static int replace_file(struct observer_metrics *o, size_t len, const char **ret_step)
{
	int fd, r;

	fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		*ret_step = "create";
		return -errno;
	}
	/* the collector runs as another user: readable by all whatever our umask */
	if (fchmod(fd, 0644) < 0) {
		r = -errno;
		*ret_step = "chmod";
	} else {
		r = write_all(fd, o->text, len);
		*ret_step = "write";
	}
	if (close(fd) < 0 && r == 0) {
		r = -errno;
		*ret_step = "close";
	}
	if (r == 0 && rename(o->tmp_path, o->path) < 0) {
		r = -errno;
		*ret_step = "rename";
	}
	if (r < 0) {
		unlink(o->tmp_path);
	}
	return r;
}

int observer_metrics_write(struct observer_metrics *o, const struct observer_evaluation *ev)
{
	struct metrics_snapshot s = {
		.version = VERSION,
		.cells = o->cells,
		.mode = o->mode,
		.rejected = o->rejected,
		.state = ev->state,
		.packs_online_mask = ev->decision.packs_online_mask,
		.pack_addresses = o->have_addresses ? o->pack_addresses : NULL,
		.have_wire = o->have_wire,
		.wire = &o->wire,
		.wire_usec = o->wire_usec,
		.wire_sets = o->wire_sets,
		.wire_urgent = o->wire_urgent,
		.wire_refused = o->wire_refused,
		.inverter_present = o->inverter_present,
		.inverter_heard_usec = o->inverter_heard_usec,
		.transport = o->transport,
		.link = o->have_link ? &o->link : NULL,
	};
	struct mqtt_stats mqtt;
	uint64_t t0 = clock_usec(CLOCK_MONOTONIC), dt;
	const char *step = "render";
	int len, r;

	for (unsigned i = 0; i < METRICS_LIMITS; i++) {
		s.set_by[i] = o->set_by[i];
	}
	s.realtime_offset_usec = (int64_t)(clock_usec(CLOCK_REALTIME) - t0);
	if (o->mqtt) {
		mqtt_client_stats(o->mqtt, &mqtt);
		s.mqtt = &mqtt;
	}
	o->last_usec = ev->now_usec;

	len = metrics_render(&s, o->text, METRICS_TEXT_MAX);
	o->text_len = len < 0 ? 0 : (size_t)len;
	if (!o->path[0]) {
		return len; /* HTTP only */
	}
	r = len < 0 ? len : replace_file(o, (size_t)len, &step);
	dt = clock_usec(CLOCK_MONOTONIC) - t0;
	if (r < 0) {
		if (!o->failing) {
			log_error("Cannot write the metrics file %s (%s: %s); the daemon goes on "
				  "without it, reminding every %llu min",
				  o->path, step, strerror(-r),
				  (unsigned long long)(OBSERVER_METRICS_REMIND_USEC / USEC_PER_SEC /
						       60));
			o->failing = true;
			o->reminded_usec = ev->now_usec;
		} else if (ev->now_usec - o->reminded_usec >= OBSERVER_METRICS_REMIND_USEC) {
			log_warning("Still cannot write the metrics file %s (%s: %s)", o->path,
				    step, strerror(-r));
			o->reminded_usec = ev->now_usec;
		}
		return r;
	}
	if (o->failing) {
		log_info("Metrics file %s written again", o->path);
		o->failing = false;
	}
	o->writes++;
	o->last_write_usec = dt;
	if (dt > o->max_write_usec) {
		o->max_write_usec = dt;
	}
	o->last_len = len;
	log_debug("Metrics: %d bytes to %s in %llu us", len, o->path, (unsigned long long)dt);
	return len;
}

static void metrics_evaluated(struct observer *base, const struct observer_evaluation *ev)
{
	struct observer_metrics *o = container_of(base, struct observer_metrics, base);

	o->mode = ev->decision.mode;
	o->rejected = ev->decision.rejected;
	for (unsigned i = 0; i < OBSERVER_LIMIT__COUNT; i++) {
		copy_str(o->set_by[i], sizeof(o->set_by[i]), ev->decision.set_by[i]);
	}
	/* the limits ON THE WIRE: only frames the output took */
	if (ev->tx.kind != OBSERVER_WIRE_NONE) {
		if (ev->tx.error < 0) {
			o->wire_refused++;
		} else {
			o->have_wire = true;
			o->wire = ev->state->bank;
			o->wire_usec = ev->now_usec;
			if (ev->tx.kind == OBSERVER_WIRE_SET) {
				o->wire_sets++;
			} else {
				o->wire_urgent++;
			}
		}
	}
	o->inverter_present = ev->inverter_present;
	o->inverter_heard_usec = ev->inverter_heard_usec;
	if (ev->inverter_stats) {
		o->link = *ev->inverter_stats;
		copy_str(o->bus_state, sizeof(o->bus_state), ev->inverter_stats->bus_state);
		o->link.bus_state = o->bus_state;
		o->have_link = true;
	}
	/* the tick jitters by a few ms: a tick 100 ms early still counts as due */
	if (ev->cause == OBSERVER_CAUSE_TICK &&
	    (o->last_usec == 0 ||
	     ev->now_usec - o->last_usec + OBSERVER_METRICS_SLACK_USEC >= o->interval_usec)) {
		observer_metrics_write(o, ev);
	}
}

static void metrics_link(struct observer *base, const struct observer_link_event *ev)
{
	struct observer_metrics *o = container_of(base, struct observer_metrics, base);

	if (ev->link == OBSERVER_LINK_INVERTER) {
		o->inverter_present = ev->up;
	}
	if (ev->link == OBSERVER_LINK_OUTPUT && !ev->up) {
		o->have_link = false; /* the port's counters ended with it */
	}
}

static void metrics_configured(struct observer *base, const struct observer_config *ev)
{
	struct observer_metrics *o = container_of(base, struct observer_metrics, base);

	copy_str(o->transport, sizeof(o->transport), ev->transport);
	o->have_addresses = ev->pack_addresses != NULL;
	for (unsigned i = 0; ev->pack_addresses && i < ev->pack_count && i < BATTERY_PACKS_MAX;
	     i++) {
		o->pack_addresses[i] = ev->pack_addresses[i];
	}
	if (ev->restarted) {
		o->have_link = false;
	}
}

static const struct observer_ops metrics_ops = {
	.name = "metrics",
	.evaluated = metrics_evaluated,
	.link = metrics_link,
	.configured = metrics_configured,
};

static const char *http_text(void *userdata, size_t *ret_len)
{
	struct observer_metrics *o = userdata;

	*ret_len = o->text_len;
	return o->text;
}

int observer_metrics_start(struct observer_metrics *o, const struct metrics_config *cfg,
			   sd_event *e)
{
	const char *slash;

	*o = (struct observer_metrics){
		.base = { .ops = &metrics_ops },
		.interval_usec = cfg->interval_usec,
		.cells = cfg->cells,
		.mode = SAFETY_MODE_NOT_READY,
	};
	copy_str(o->path, sizeof(o->path), cfg->textfile);
	/* config.c checked: absolute, a file name after the last slash */
	slash = strrchr(o->path, '/');
	if (o->path[0]) {
		snprintf(o->tmp_path, sizeof(o->tmp_path), "%.*s/.%s.tmp",
			 slash ? (int)(slash - o->path) : 0, o->path, slash ? slash + 1 : o->path);
	}
	for (unsigned i = 0; i < OBSERVER_LIMIT__COUNT; i++) {
		copy_str(o->set_by[i], sizeof(o->set_by[i]), "none");
	}
	o->text = malloc(METRICS_TEXT_MAX);
	if (!o->text) {
		return log_error_errno(-ENOMEM, "Out of memory for the metrics text");
	}
	if (o->path[0]) {
		log_info("Metrics to %s every %llu s", o->path,
			 (unsigned long long)(o->interval_usec / USEC_PER_SEC));
	}
	if (cfg->listen[0]) {
		metrics_http_start(&o->http, e, cfg->listen, http_text, o);
	}
	return 0;
}

void observer_metrics_stop(struct observer_metrics *o)
{
	metrics_http_stop(&o->http);
	if (o->path[0] && o->text && o->writes > 0 && unlink(o->path) < 0 && errno != ENOENT) {
		log_debug("Cannot remove %s: %s", o->path, strerror(errno));
	}
	if (o->writes > 0) {
		log_debug("Metrics: %llu writes, the slowest %llu us",
			  (unsigned long long)o->writes, (unsigned long long)o->max_write_usec);
	}
	free(o->text);
	o->text = NULL;
}
