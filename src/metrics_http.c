/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics over HTTP (metrics { listen }), with libmicrohttpd on the
 * bridge's own sd-event loop: no thread. MHD runs in its external-loop
 * epoll mode (MHD_USE_EPOLL without MHD_USE_INTERNAL_POLLING_THREAD): its
 * epoll fd (MHD_DAEMON_INFO_EPOLL_FD) is one io source of our loop, and
 * MHD_run() does whatever is ready, never waiting (every socket of MHD is
 * non-blocking); after each run MHD_get_timeout() re-arms a timer for its
 * connection timeouts. A slow or stalled client therefore costs the loop
 * one non-blocking send at a time, never a wait.
 *
 * The answer is the text of the last metrics interval, copied into the
 * response (the next interval may rewrite the buffer while a slow client
 * still reads). Any other path is 404, any other method 405, and before
 * the first interval 503. At most METRICS_HTTP_CONNECTIONS clients at
 * once, each dropped after METRICS_HTTP_TIMEOUT_S of silence.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include <microhttpd.h>
#include <systemd/sd-event.h>

#define LOG_MODULE "metrics"
#include "log.h"
#include "macro.h"
#include "metrics.h"
#include "metrics_http.h"

#define METRICS_HTTP_CONNECTIONS 8
#define METRICS_HTTP_TIMEOUT_S 10
/* the Prometheus text format's content type */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *text,
			     size_t len, const char *type)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
	if (!r) {
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct metrics_http *h = cls;
	const char *text;
	size_t len = 0;

	(void)version;
	(void)upload;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n", 9, "text/plain");
	}
	/* a GET has no body; anything sent with one is ignored */
	*upload_size = 0;
	(void)con_cls;
	if (strcmp(url, "/metrics") != 0) {
		return reply(c, MHD_HTTP_NOT_FOUND, "Not found: try /metrics\n", 24, "text/plain");
	}
	text = h->get(h->userdata, &len);
	if (!text || len == 0) {
		return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "No metrics yet\n", 15, "text/plain");
	}
	return reply(c, MHD_HTTP_OK, text, len, METRICS_CONTENT_TYPE);
}

static void rearm(struct metrics_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms = 0;
	uint64_t now = 0;

	if (MHD_get_timeout(h->daemon, &ms) != MHD_YES) {
		sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
		return;
	}
	sd_event_now(sd_event_source_get_event(h->timer), CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(h->timer, now + (uint64_t)ms * USEC_PER_MSEC);
	sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct metrics_http *h = userdata;

	(void)s;
	(void)fd;
	(void)revents;
	MHD_run(h->daemon);
	rearm(h);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct metrics_http *h = userdata;

	(void)s;
	(void)usec;
	MHD_run(h->daemon);
	rearm(h);
	return 0;
}

int metrics_http_start(struct metrics_http *h, sd_event *e, const char *listen,
		       metrics_http_text_fn get, void *userdata)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const union MHD_DaemonInfo *info;
	int r;

	*h = (struct metrics_http){ .get = get, .userdata = userdata };
	r = metrics_parse_listen(listen, &ss, &len);
	if (r < 0) {
		return r; /* config.c checked it */
	}
	h->daemon = MHD_start_daemon(MHD_USE_EPOLL | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				     0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &ss,
				     MHD_OPTION_CONNECTION_LIMIT,
				     (unsigned)METRICS_HTTP_CONNECTIONS,
				     MHD_OPTION_CONNECTION_TIMEOUT,
				     (unsigned)METRICS_HTTP_TIMEOUT_S, MHD_OPTION_END);
	if (!h->daemon) {
		/* MHD says nothing more; the usual causes */
		log_warning("Cannot serve metrics on http://%s/metrics (address in use, or not "
			    "allowed by the unit's RestrictAddressFamilies=); the daemon goes on "
			    "without it",
			    listen);
		return -EADDRNOTAVAIL;
	}
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	r = info ? 0 : -EIO;
	if (r >= 0) {
		r = sd_event_add_io(e, &h->io, info->epoll_fd, EPOLLIN, on_io, h);
	}
	if (r >= 0) {
		r = sd_event_add_time(e, &h->timer, CLOCK_MONOTONIC, 0, 0, on_timer, h);
	}
	if (r < 0) {
		log_warning("Cannot serve metrics on %s: %s", listen, strerror(-r));
		metrics_http_stop(h);
		return r;
	}
	rearm(h);
	log_info("Metrics on http://%s/metrics", listen);
	return 0;
}

void metrics_http_stop(struct metrics_http *h)
{
	h->io = sd_event_source_disable_unref(h->io);
	h->timer = sd_event_source_disable_unref(h->timer);
	if (h->daemon) {
		MHD_stop_daemon(h->daemon);
		h->daemon = NULL;
	}
}
