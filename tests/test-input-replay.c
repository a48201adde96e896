/* SPDX-License-Identifier: MIT */
/*
 * The `pylontech-can` BMS driver and the replay input.
 *
 * Source of the frames: real Pylontech US5000 packs, setfirelabs.com
 * "Pylontech battery CAN comms V1.2 vs V1.3" (tests/data/
 * pylontech-us5000-v12.log): CVL 53.2 V, CCL 480 A, DCL 480 A, DVL 45.0 V,
 * SOC 88 %, SOH 94 %, 49.86 V, -27.0 A, 36.3 degC, charge + discharge
 * enabled. The replay runs src/input_replay.c on a real sd-event loop
 * against the small bridge below (the functions it calls).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "battery.h"
#include "bms.h"
#include "adapter.h"
#include "config.h"
#include "candump.h"
#include "macro.h"

#define T_NOW UINT64_C(7000000)

/* ---- the calls up the input makes (include/adapter.h) ------------------------ */

static unsigned updates, ready_calls;

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
	ready_calls++;
}

static const struct input_up test_up = {
	.now = up_now,
	.updated = up_updated,
	.port_changed = up_port_changed,
};

/* ---- pylontech-can ------------------------------------------------------------ */

static void assert_us5000(const struct battery_pack *p)
{
	assert_int_equal(p->charge_voltage_limit_mv, 53200);
	assert_int_equal(p->charge_current_limit_ma, 480000);
	assert_int_equal(p->discharge_current_limit_ma, 480000);
	assert_int_equal(p->discharge_voltage_limit_mv, 45000);
	assert_int_equal(p->soc_pct, 88);
	assert_int_equal(p->soh_pct, 94);
	assert_int_equal(p->voltage_mv, 49860);
	assert_int_equal(p->current_ma, -27000);
	assert_int_equal(p->temp_max_dc, 363);
	assert_int_equal(p->alarms, 0);
	assert_int_equal(p->requests,
			 BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE);
}

static int load_log(const char *name, struct can_frame *frames, int max)
{
	char path[512], line[256];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", TESTS_DATA_DIR, name);
	f = fopen(path, "r");
	assert_non_null(f);
	while (n < max && fgets(line, sizeof(line), f)) {
		if (line[0] == '#') {
			continue;
		}
		assert_int_equal(candump_parse(line, strlen(line), NULL, NULL, &frames[n]), 0);
		n++;
	}
	fclose(f);
	return n;
}

static void test_pylontech_can_decode(void **state)
{
	const struct bms_driver *d = bms_driver_find("pylontech-can");
	struct can_frame f[8], k[2];
	struct battery_state bs, before;
	int n = load_log("pylontech-us5000-v12.log", f, 8);

	assert_non_null(d);
	assert_int_equal(d->transport, BMS_TRANSPORT_CAN);
	assert_int_equal(d->bitrate, 500000);
	assert_int_equal(n, 6);
	battery_state_init(&bs, 1);
	for (int i = 0; i < n; i++) {
		bool wanted = false;

		for (size_t j = 0; j < d->n_rx_ids; j++) {
			wanted |= d->rx_ids[j] == f[i].can_id;
		}
		assert_true(wanted);
		assert_int_equal(d->decode_frame(&f[i], T_NOW, &bs), 1);
	}
	assert_us5000(&bs.packs[0]);
	assert_int_equal(bs.bank.updated_usec[BATTERY_GROUP_LIMITS], BATTERY_NEVER);
	for (int g = 0; g < BATTERY_GROUP__COUNT; g++) {
		/* every group but the cells, which the family does not carry */
		assert_int_equal(bs.packs[0].updated_usec[g],
				 g == BATTERY_GROUP_CELLS ? BATTERY_NEVER : T_NOW);
	}

	/* not ours; too short (state untouched) */
	before = bs;
	memset(&k[0], 0, sizeof(k[0]));
	k[0].can_id = 0x123;
	k[0].len = 8;
	assert_int_equal(d->decode_frame(&k[0], T_NOW + 1, &bs), 0);
	k[0].can_id = 0x356;
	k[0].len = 3;
	assert_int_equal(d->decode_frame(&k[0], T_NOW + 1, &bs), -EBADMSG);
	assert_memory_equal(&bs, &before, sizeof(bs));

	/* the inverter's keep-alive: 0x305, eight zero bytes */
	assert_non_null(d->keepalive);
	assert_int_equal(d->keepalive_period_usec, USEC_PER_SEC);
	assert_int_equal(d->keepalive(k, 2), 1);
	assert_int_equal(k[0].can_id, 0x305);
	assert_int_equal(k[0].len, 8);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(k[0].data[i], 0);
	}
	assert_int_equal(d->keepalive(k, 0), -ENOBUFS);
}

/* ---- replay ---------------------------------------------------------------------- */

struct replay_fixture {
	sd_event *event;
	struct config cfg;
	struct battery_state state;
	struct input_ctx ctx; /* what the input sees */
	struct input *input;
	char path[64];
};

static int replay_setup(void **state)
{
	struct replay_fixture *fx = calloc(1, sizeof(*fx));

	if (!fx || sd_event_new(&fx->event) < 0) {
		return -1;
	}
	strcpy(fx->path, "/tmp/test-bms-replay-XXXXXX");
	battery_state_init(&fx->state, 1);
	snprintf(fx->cfg.bms.replay_format, sizeof(fx->cfg.bms.replay_format), "pylontech-can");
	fx->cfg.bms.replay_speed = 1;
	fx->ctx = (struct input_ctx){
		.event = fx->event, .cfg = &fx->cfg.bms, .state = &fx->state, .up = &test_up
	};
	updates = ready_calls = 0;
	*state = fx;
	return 0;
}

static int replay_teardown(void **state)
{
	struct replay_fixture *fx = *state;

	if (fx->input) {
		input_replay_ops.free(fx->input);
	}
	sd_event_unref(fx->event);
	if (fx->path[sizeof("/tmp/test-bms-replay-") - 1] != 'X') {
		unlink(fx->path);
	}
	free(fx);
	return 0;
}

/* Write @text to a fresh temporary log and point bms.port at it. */
static void write_log(struct replay_fixture *fx, const char *text)
{
	int fd = mkstemp(fx->path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	snprintf(fx->cfg.bms.port, sizeof(fx->cfg.bms.port), "%s", fx->path);
}

/* Copy of the real capture with its recorded timing (10 ms apart). */
static void write_capture(struct replay_fixture *fx)
{
	char buf[4096], path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/pylontech-us5000-v12.log", TESTS_DATA_DIR);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	write_log(fx, buf);
}

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

/* Run the loop until the status line holds @what (or @max_usec passed). */
static int run_until(struct replay_fixture *fx, const char *what, uint64_t max_usec)
{
	uint64_t start = mono_usec();
	char status[128];
	int r;

	for (;;) {
		input_replay_ops.status(fx->input, status, sizeof(status));
		if (strstr(status, what)) {
			return 0;
		}
		if (mono_usec() - start > max_usec) {
			return -ETIMEDOUT;
		}
		r = sd_event_run(fx->event, 50 * USEC_PER_MSEC);
		if (r < 0) {
			return r;
		}
	}
}

static void test_replay_plays_capture(void **state)
{
	struct replay_fixture *fx = *state;
	char status[128];
	uint64_t t0, t1;

	write_capture(fx);
	/* before open: the replay's clock starts there (valgrind makes open slow) */
	t0 = mono_usec();
	assert_int_equal(input_replay_ops.open(&fx->ctx, &fx->input), 0);
	assert_true(fx->ctx.open);
	assert_int_equal(ready_calls, 1);
	/* six frames, 50 ms of recorded time at speed 1: not sooner */
	assert_int_equal(run_until(fx, "finished", 2 * USEC_PER_SEC), 0);
	t1 = mono_usec();
	assert_true(t1 - t0 >= 40 * USEC_PER_MSEC);
	assert_us5000(&fx->state.packs[0]);
	input_replay_ops.status(fx->input, status, sizeof(status));
	assert_non_null(strstr(status, "6/6 frames"));
	assert_non_null(strstr(status, "finished"));
	/* nothing more happens once the log is over */
	updates = 0;
	assert_int_equal(sd_event_run(fx->event, 100 * USEC_PER_MSEC), 0);
	assert_int_equal(updates, 0);
}

static void test_replay_loops_fast(void **state)
{
	struct replay_fixture *fx = *state;
	char status[128];

	write_capture(fx);
	fx->cfg.bms.replay_loop = true;
	fx->cfg.bms.replay_speed = 100;
	assert_int_equal(input_replay_ops.open(&fx->ctx, &fx->input), 0);
	/* three passes of six frames, at 100x in well under a second */
	assert_int_equal(run_until(fx, "pass 4", USEC_PER_SEC), 0);
	assert_true(updates >= 3);
	input_replay_ops.status(fx->input, status, sizeof(status));
	assert_null(strstr(status, "finished"));
	assert_us5000(&fx->state.packs[0]);
}

/* Bad lines are skipped, a frame the decoder rejects changes nothing. */
static void test_replay_bad_lines(void **state)
{
	struct replay_fixture *fx = *state;

	write_log(fx, "# a comment\n"
		      "garbage line\n"
		      "(1700000000.000000) can0 355#58005E00\n"
		      "(1700000000.001000) can0 356#7A13\n" /* too short for 0x356 */
		      "(1700000000.002000) can0 123#00\n"); /* not a Pylontech frame */
	assert_int_equal(input_replay_ops.open(&fx->ctx, &fx->input), 0);
	assert_int_equal(run_until(fx, "finished", USEC_PER_SEC), 0);
	assert_true(updates >= 1);
	assert_int_equal(fx->state.packs[0].soc_pct, 88);
	assert_int_equal(fx->state.packs[0].updated_usec[BATTERY_GROUP_ELECTRICAL], BATTERY_NEVER);
}

static void test_replay_errors(void **state)
{
	struct replay_fixture *fx = *state;
	struct input *in = NULL;

	snprintf(fx->cfg.bms.port, sizeof(fx->cfg.bms.port), "/nonexistent/log");
	assert_int_equal(input_replay_ops.open(&fx->ctx, &in), -ENOENT);
	write_log(fx, "# only a comment\nnot a frame\n");
	assert_int_equal(input_replay_ops.open(&fx->ctx, &in), -EBADMSG);
	/* a serial driver cannot decode CAN frames */
	snprintf(fx->cfg.bms.replay_format, sizeof(fx->cfg.bms.replay_format), "jk-pb-modbus");
	assert_int_equal(input_replay_ops.open(&fx->ctx, &in), -EINVAL);
	assert_null(in);
	assert_false(fx->ctx.open);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pylontech_can_decode),
		cmocka_unit_test_setup_teardown(test_replay_plays_capture, replay_setup,
						replay_teardown),
		cmocka_unit_test_setup_teardown(test_replay_loops_fast, replay_setup,
						replay_teardown),
		cmocka_unit_test_setup_teardown(test_replay_bad_lines, replay_setup,
						replay_teardown),
		cmocka_unit_test_setup_teardown(test_replay_errors, replay_setup, replay_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
