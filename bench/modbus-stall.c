/* SPDX-License-Identifier: MIT */
/*
 * bench/modbus-stall: the longest event-loop stall the RS485 Modbus input
 * (src/serial_engine.c, JK-PB's round from protocols/jk_pb.c, through
 * src/input_serial.c) causes while polling JK-PB packs.
 *
 * Setup: tests/integration/jk-pb-server simulates packs on a pty; the real
 * input runs on a real sd-event loop against a minimal bridge
 * (the three functions it calls). Every sd_event_dispatch() is timed: that
 * is the time the loop spends inside callbacks, i.e. the stall any other
 * source (the inverter broadcast timer, the watchdog) would see.
 *
 * Scenario: packs at addresses 1, 2 and 3, address 2 unplugged (every
 * round waits out its response timeout twice), response timeout 200 ms,
 * request gap 100 ms, poll interval 1 s, trigger method, then the same
 * with the register method.
 *
 * Usage: modbus-stall SERVER DATA_HEX [SECONDS]
 * Prints the figures; exits 1 if no pack was ever read.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bms.h"
#include "adapter.h"
#include "config.h"
#include "macro.h"
#include "jk_pb.h"

static unsigned long updates;

/* the calls up the input makes (include/adapter.h) */
static uint64_t up_now(struct input_ctx *ctx)
{
	uint64_t now = 0;

	sd_event_now(ctx->event, CLOCK_MONOTONIC, &now);
	return now;
}

static void up_updated(struct input_ctx *ctx)
{
	updates++;
}

static void up_port_changed(struct input_ctx *ctx)
{
}

static const struct input_up bench_up = {
	.now = up_now,
	.updated = up_updated,
	.port_changed = up_port_changed,
};

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static pid_t start_server(const char *server, const char *link, const char *data, FILE **ret_in,
			  FILE **ret_out)
{
	int to[2], from[2];
	pid_t pid;

	if (pipe(to) < 0 || pipe(from) < 0) {
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		dup2(to[0], STDIN_FILENO);
		dup2(from[1], STDOUT_FILENO);
		close(to[1]);
		close(from[0]);
		execl(server, server, link, data, (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	*ret_in = fdopen(to[1], "w");
	*ret_out = fdopen(from[0], "r");
	return pid;
}

static void say(FILE *in, FILE *out, const char *cmd)
{
	char line[256];

	fprintf(in, "%s\n", cmd);
	fflush(in);
	if (!fgets(line, sizeof(line), out)) {
		fprintf(stderr, "server gone\n");
		exit(1);
	}
}

static int run(const char *server, const char *data, int method, unsigned seconds)
{
	char link[] = "/tmp/modbus-stall-XXXXXX", line[256], path[64];
	static struct config cfg;
	struct battery_state state;
	struct input_ctx ctx = { .cfg = &cfg.bms, .state = &state, .up = &bench_up };
	struct input *input = NULL;
	FILE *in, *out;
	pid_t pid;
	uint64_t end, max_stall = 0, sum = 0, n = 0;
	unsigned long rounds_updates;
	char status[160], ok[40];

	if (!mkdtemp(link)) {
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/tty", link);
	pid = start_server(server, path, data, &in, &out);
	if (pid < 0 || !fgets(line, sizeof(line), out)) {
		return -EIO;
	}
	say(in, out, "pack 1 53000");
	say(in, out, "pack 2 53100");
	say(in, out, "pack 3 53200");
	say(in, out, "unplug 2");

	sd_event_new(&ctx.event);
	snprintf(cfg.bms.port, sizeof(cfg.bms.port), "%s", path);
	cfg.bms.addresses[0] = 1;
	cfg.bms.addresses[1] = 2;
	cfg.bms.addresses[2] = 3;
	cfg.bms.n_addresses = 3;
	cfg.bms.poll_interval_usec = USEC_PER_SEC;
	cfg.bms.response_timeout_usec = 200 * USEC_PER_MSEC;
	cfg.bms.request_gap_usec = 100 * USEC_PER_MSEC;
	cfg.bms.read_method = method;
	ctx.driver = bms_driver_find("jk-pb-modbus");
	battery_state_init(&state, 3);
	updates = 0;
	if (input_serial_ops.open(&ctx, &input) < 0) {
		return -EIO;
	}
	end = mono_usec() + (uint64_t)seconds * USEC_PER_SEC;
	while (mono_usec() < end) {
		uint64_t t0, t1;

		if (sd_event_prepare(ctx.event) == 0) {
			if (sd_event_wait(ctx.event, 100 * USEC_PER_MSEC) <= 0) {
				continue;
			}
		}
		t0 = mono_usec();
		sd_event_dispatch(ctx.event);
		t1 = mono_usec();
		max_stall = t1 - t0 > max_stall ? t1 - t0 : max_stall;
		sum += t1 - t0;
		n++;
	}
	rounds_updates = updates;
	input_serial_ops.status(input, status, sizeof(status));
	fprintf(in, "stats\n");
	fflush(in);
	if (fgets(line, sizeof(line), out)) {
		line[strcspn(line, "\n")] = '\0';
	}
	/* the "ok" after the stats line, read into a buffer of its own */
	if (!fgets(ok, sizeof(ok), out)) {
		fprintf(stderr, "modbus-stall: no answer after the stats line\n");
	}
	printf("%s method, 3 packs (address 2 absent), %u s: %lu decoded blocks, %" PRIu64
	       " dispatches, longest stall %.3f ms, mean %.3f ms\n  input: %s\n  server: %s\n",
	       method == JK_PB_READ_TRIGGER ? "trigger" : "register", seconds, rounds_updates, n,
	       (double)max_stall / 1000.0, n ? (double)sum / (double)n / 1000.0 : 0.0, status,
	       line);
	input_serial_ops.free(input);
	sd_event_unref(ctx.event);
	fprintf(in, "quit\n");
	fclose(in);
	fclose(out);
	waitpid(pid, NULL, 0);
	unlink(path);
	rmdir(link);
	return rounds_updates > 0 ? 0 : -ENODATA;
}

int main(int argc, char **argv)
{
	unsigned seconds = argc > 3 ? (unsigned)atoi(argv[3]) : 10;

	if (argc < 3) {
		fprintf(stderr, "usage: %s SERVER DATA_HEX [SECONDS]\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (run(argv[1], argv[2], JK_PB_READ_TRIGGER, seconds) < 0 ||
	    run(argv[1], argv[2], JK_PB_READ_REGISTERS, seconds) < 0) {
		return 1;
	}
	return 0;
}
