/* SPDX-License-Identifier: MIT */
/*
 * The `candump` output: the frames the chosen CAN protocol would send,
 * written as can-utils log lines to stdout ("-") or a file, stamped with
 * the wall clock. Used by the demo and for checking a protocol without a
 * CAN interface; `canplayer -I FILE` can replay the file onto a real bus.
 *
 * The loop must never block on a slow reader: before each line we ask
 * poll() whether the fd can take it; a line that would block is dropped
 * and counted (a pipe write of <= PIPE_BUF bytes is atomic, so a line is
 * never torn).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_MODULE "candump"
#include "adapter.h"
#include "candump.h"
#include "log.h"
#include "macro.h"

struct candump_output {
	struct output base; /* ops, ctx */
	int fd;
	bool own_fd;
	const char *ifname;
	uint64_t lines;
	uint64_t dropped;
	struct ratelimit drop_rl;
};

static struct output *candump_free(struct output *base)
{
	struct candump_output *out = base ? container_of(base, struct candump_output, base) : NULL;

	if (!out) {
		return NULL;
	}
	if (out->own_fd && out->fd >= 0) {
		close(out->fd);
	}
	free(out);
	return NULL;
}

static int candump_open(struct output_ctx *ctx, struct output **ret)
{
	const char *port = ctx->cfg->port;
	struct candump_output *out;

	out = calloc(1, sizeof(*out));
	if (!out) {
		return -ENOMEM;
	}
	out->base.ctx = ctx;
	out->ifname = ctx->cfg->candump_ifname[0] ? ctx->cfg->candump_ifname : "can0";
	out->drop_rl = (struct ratelimit)RATELIMIT_INIT(10 * USEC_PER_SEC, 1);
	if (strcmp(port, "-") == 0 || port[0] == '\0') {
		out->fd = STDOUT_FILENO;
	} else {
		out->fd = open(port, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
			       0644);
		if (out->fd < 0) {
			int r = -errno;

			free(out);
			return log_error_errno(r, "Failed to open candump output %s: %s", port,
					       strerror(-r));
		}
		out->own_fd = true;
	}
	ctx->open = true;
	out->base.ops = &output_candump_ops;
	*ret = &out->base;
	return 0;
}

static int candump_send(struct output *base, const struct can_frame *frames, size_t n,
			uint64_t now_usec)
{
	struct candump_output *out = container_of(base, struct candump_output, base);
	struct timespec ts;
	uint64_t wall_usec;

	/* fails only where time_t is 32 bits and the date is past 2038
	 * (EOVERFLOW): stamp 0 then, never an uninitialised time */
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0) {
		ts.tv_sec = 0;
		ts.tv_nsec = 0;
	}
	wall_usec = (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;

	for (size_t i = 0; i < n; i++) {
		char line[CANDUMP_LINE_MAX];
		struct pollfd pfd = { .fd = out->fd, .events = POLLOUT };
		int len = candump_format(wall_usec, out->ifname, &frames[i], line, sizeof(line));

		if (len < 0) {
			return log_error_errno(len, "Cannot format frame %03X", frames[i].can_id);
		}
		if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT)) {
			out->dropped++;
			log_ratelimit(&out->drop_rl, now_usec, LOG_WARNING,
				      "candump output is not being read, dropping frames (%llu so far)",
				      (unsigned long long)out->dropped);
			continue;
		}
		if (write(out->fd, line, (size_t)len) != len) {
			out->dropped++;
			log_ratelimit(&out->drop_rl, now_usec, LOG_WARNING,
				      "candump output write failed, dropping frames (%llu so far)",
				      (unsigned long long)out->dropped);
			continue;
		}
		out->lines++;
	}
	return 0;
}

static void candump_status(struct output *base, char *buf, size_t n)
{
	struct candump_output *out = container_of(base, struct candump_output, base);

	snprintf(buf, n, "candump %s, %llu frames%s", out->own_fd ? out->base.ctx->cfg->port : "stdout",
		 (unsigned long long)out->lines, out->dropped ? " (some dropped)" : "");
}

const struct output_ops output_candump_ops = {
	.name = "candump",
	.open = candump_open,
	.free = candump_free,
	.send = candump_send,
	.status = candump_status,
};
