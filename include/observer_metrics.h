/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Prometheus metrics as an observer of the bridge (src/observer_metrics.c):
 * the file node_exporter's textfile collector reads, rewritten every
 * metrics { interval_s } on the bridge's tick, atomically (a temporary
 * file in the same directory, then rename()). The text is
 * metrics_render()'s (include/metrics.h). With metrics { listen }, the
 * same text is also served on GET /metrics (include/metrics_http.h).
 */
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "link_stats.h"
#include "metrics_http.h"
#include "observer.h"

struct mqtt_client;

struct observer_metrics {
	struct observer base;
	char path[CONFIG_PATH_MAX];	    /* metrics { textfile }; "": no file */
	char tmp_path[CONFIG_PATH_MAX + 8]; /* <dir>/.<name>.tmp: not *.prom, never collected */
	uint64_t interval_usec;
	bool cells;
	uint64_t last_usec; /* the last write (or attempt); 0: none yet */
	/* what the evaluations said, for the next write */
	enum safety_mode mode;
	uint64_t rejected;
	char set_by[OBSERVER_LIMIT__COUNT][24];
	bool have_wire;
	struct battery_pack wire; /* the bank the last frames the output took came from */
	uint64_t wire_usec;
	uint64_t wire_sets, wire_urgent, wire_refused;
	bool inverter_present;
	uint64_t inverter_heard_usec;
	char transport[16];
	uint8_t pack_addresses[BATTERY_PACKS_MAX];
	bool have_addresses;
	bool have_link;
	struct inverter_link_stats link;
	char bus_state[24];
	/* the text, allocated once at start (METRICS_TEXT_MAX), and its length (0: none) */
	char *text;
	size_t text_len;
	/* metrics { listen } */
	struct metrics_http http;
	/* errors: said once, then a reminder at most every OBSERVER_METRICS_REMIND_USEC */
	bool failing;
	uint64_t reminded_usec;
	/* figures: the render + write time */
	uint64_t writes;
	uint64_t last_write_usec, max_write_usec;
	int last_len;
	/* the MQTT client whose counters are rendered, set by main.c; NULL: MQTT off */
	const struct mqtt_client *mqtt;
};

#define OBSERVER_METRICS_REMIND_USEC (600 * UINT64_C(1000000))

/**
 * observer_metrics_start() - set up @o for @cfg (the settings are read at
 * start only; a reload does not change them), the HTTP port on @e. An
 * HTTP port that cannot be opened is logged and left out.
 * Return: 0, or -ENOMEM.
 */
int observer_metrics_start(struct observer_metrics *o, const struct metrics_config *cfg,
			   struct sd_event *e);

/**
 * observer_metrics_stop() - remove the file (Prometheus then sees the
 * series end instead of keeping the last values), close the HTTP port,
 * free the text.
 */
void observer_metrics_stop(struct observer_metrics *o);

/**
 * observer_metrics_write() - render @ev's state now (for the file and the
 * HTTP port) and write the file, if there is one. Called on the tick; the
 * bench calls it too.
 * Return: the bytes rendered, or a negative errno (logged as described above).
 */
int observer_metrics_write(struct observer_metrics *o, const struct observer_evaluation *ev);
