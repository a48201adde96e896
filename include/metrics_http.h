/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * GET /metrics on a local HTTP port (src/metrics_http.c): libmicrohttpd
 * driven by the bridge's sd-event loop, no thread.
 */
#include <stddef.h>

struct MHD_Daemon;
struct sd_event;
struct sd_event_source;

/* the text of the last interval and its length; NULL or 0: none yet */
typedef const char *(*metrics_http_text_fn)(void *userdata, size_t *ret_len);

struct metrics_http {
	struct MHD_Daemon *daemon;
	struct sd_event_source *io;    /* MHD's epoll fd */
	struct sd_event_source *timer; /* MHD's connection timeouts */
	metrics_http_text_fn get;
	void *userdata;
};

/**
 * metrics_http_start() - listen on @listen ("127.0.0.1:9585", "[::1]:9585")
 * and answer GET /metrics from @get on @e.
 * Return: 0, or a negative errno (logged; the daemon goes on without it).
 */
int metrics_http_start(struct metrics_http *h, struct sd_event *e, const char *listen,
		       metrics_http_text_fn get, void *userdata);

/**
 * metrics_http_stop() - close the port and every connection; safe on a
 * zeroed or stopped @h.
 */
void metrics_http_stop(struct metrics_http *h);
