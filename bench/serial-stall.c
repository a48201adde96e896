/* SPDX-License-Identifier: MIT */
/*
 * bench/serial-stall: the longest event-loop stall the generic serial
 * engine (src/serial_engine.c, through src/input_serial.c) causes while
 * polling each serial BMS family with one pack absent; bench/modbus-stall
 * measures JK-PB's two read methods on the same engine.
 *
 * Setup: the family's simulated device (tests/sim/<family>-server.py) on
 * a pty; the real input on a real sd-event loop against a minimal bridge
 * (the three calls it makes). Every sd_event_dispatch() is timed: that is
 * the time the loop spends inside callbacks, the stall any other source
 * (the inverter broadcast timer, the watchdog) would see.
 *
 * Scenario per family: three packs, the middle one unplugged (every round
 * waits out its response timeout twice); JBD has no addressing, so its one
 * pack is the absent one. Response timeout 200 ms, request gap 100 ms,
 * poll interval 1 s.
 *
 * Usage: serial-stall SIM_DIR [SECONDS [FAMILY...]]
 * Prints the figures; exits 1 if a family with a present pack decoded nothing.
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

#include "adapter.h"
#include "bms.h"
#include "config.h"
#include "macro.h"

static unsigned long updates;

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

enum sim_style {
	SIM_YDT1363, /* --link PATH ADDR... */
	SIM_LIST,    /* PATH --addresses A,B,C */
	SIM_SINGLE,  /* PATH */
};

static const struct family {
	const char *name;
	enum sim_style style;
	uint8_t addr[3];
	unsigned n;
	uint8_t absent;
} families[] = {
	{ "pylontech-rs485", SIM_YDT1363, { 2, 3, 4 }, 3, 3 },
	{ "seplos-v2", SIM_YDT1363, { 0, 1, 2 }, 3, 1 },
	{ "pace", SIM_YDT1363, { 1, 2, 3 }, 3, 2 },
	{ "jbd", SIM_SINGLE, { 1 }, 1, 1 },
	{ "daly", SIM_LIST, { 1, 2, 3 }, 3, 2 },
	{ "seplos-v3", SIM_LIST, { 1, 2, 3 }, 3, 2 },
	{ "pace-modbus", SIM_LIST, { 1, 2, 3 }, 3, 2 },
	{ "eg4-lifepower4", SIM_YDT1363, { 1, 2, 3 }, 3, 2 },
	{ "eg4-ll", SIM_LIST, { 1, 16, 2 }, 3, 16 },
};

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static pid_t start_sim(const char *dir, const struct family *f, const char *link, FILE **ret_in,
		       FILE **ret_out)
{
	char script[512], a[3][8], list[32];
	int to[2], from[2];
	pid_t pid;

	snprintf(script, sizeof(script), "%s/%s-server.py", dir, f->name);
	for (unsigned i = 0; i < 3; i++) {
		snprintf(a[i], sizeof(a[i]), "%u", f->addr[i]);
	}
	snprintf(list, sizeof(list), "%s,%s,%s", a[0], a[1], a[2]);
	if (pipe(to) < 0 || pipe(from) < 0) {
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		dup2(to[0], STDIN_FILENO);
		dup2(from[1], STDOUT_FILENO);
		close(to[1]);
		close(from[0]);
		switch (f->style) {
		case SIM_YDT1363:
			execlp("python3", "python3", script, "--link", link, a[0], a[1], a[2],
			       (char *)NULL);
			break;
		case SIM_LIST:
			execlp("python3", "python3", script, link, "--addresses", list,
			       (char *)NULL);
			break;
		case SIM_SINGLE:
			execlp("python3", "python3", script, link, (char *)NULL);
			break;
		}
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	*ret_in = fdopen(to[1], "w");
	*ret_out = fdopen(from[0], "r");
	return pid;
}

static int run(const char *dir, const struct family *f, unsigned seconds)
{
	char tmp[] = "/tmp/serial-stall-XXXXXX", line[256], path[64], status[200];
	static struct config cfg;
	struct battery_state state;
	struct input_ctx ctx = { .cfg = &cfg.bms, .state = &state, .up = &bench_up };
	struct input *input = NULL;
	FILE *in, *out;
	pid_t pid;
	uint64_t end, max_stall = 0, sum = 0, n = 0;

	if (!mkdtemp(tmp)) {
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/tty", tmp);
	pid = start_sim(dir, f, path, &in, &out);
	if (pid < 0 || !fgets(line, sizeof(line), out) || strncmp(line, "ready", 5) != 0) {
		fprintf(stderr, "serial-stall: %s: the simulated device did not start\n", f->name);
		return -EIO;
	}
	fprintf(in, "unplug %u\n", f->absent);
	fflush(in);
	if (!fgets(line, sizeof(line), out)) {
		return -EIO;
	}

	memset(&cfg, 0, sizeof(cfg));
	sd_event_new(&ctx.event);
	snprintf(cfg.bms.port, sizeof(cfg.bms.port), "%s", path);
	memcpy(cfg.bms.addresses, f->addr, f->n);
	cfg.bms.n_addresses = (uint8_t)f->n;
	cfg.bms.poll_interval_usec = USEC_PER_SEC;
	cfg.bms.response_timeout_usec = 200 * USEC_PER_MSEC;
	cfg.bms.request_gap_usec = 100 * USEC_PER_MSEC;
	ctx.driver = bms_driver_find(f->name);
	battery_state_init(&state, (uint8_t)f->n);
	updates = 0;
	if (!ctx.driver || input_serial_ops.open(&ctx, &input) < 0) {
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
	input_serial_ops.status(input, status, sizeof(status));
	printf("%-16s %u pack%s (address %u absent), %u s: %lu updates, %" PRIu64
	       " dispatches, longest stall %.3f ms, mean %.3f ms\n  input: %s\n",
	       f->name, f->n, f->n == 1 ? "" : "s", f->absent, seconds, updates, n,
	       (double)max_stall / 1000.0, n ? (double)sum / (double)n / 1000.0 : 0.0, status);
	input_serial_ops.free(input);
	sd_event_unref(ctx.event);
	fprintf(in, "quit\n");
	fclose(in);
	waitpid(pid, NULL, 0); /* its last "ok" still has somewhere to go */
	fclose(out);
	unlink(path);
	rmdir(tmp);
	/* with a pack present, something must have been decoded */
	return f->n > 1 && updates == 0 ? -ENODATA : 0;
}

int main(int argc, char **argv)
{
	unsigned seconds = argc > 2 ? (unsigned)atoi(argv[2]) : 10;
	int failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s SIM_DIR [SECONDS [FAMILY...]]\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < ARRAY_SIZE(families); i++) {
		bool wanted = argc <= 3;

		for (int k = 3; k < argc; k++) {
			wanted |= strcmp(argv[k], families[i].name) == 0;
		}
		if (wanted && run(argv[1], &families[i], seconds) < 0) {
			failed = 1;
		}
	}
	return failed;
}
