/* SPDX-License-Identifier: MIT */
/*
 * src/bridge.c on a real sd-event loop, with the real sim input and the
 * candump output into a file, watched through the observer interface
 * (include/observer.h) as D-Bus, MQTT or metrics will watch it: the link
 * events, the first NOT_READY -> NORMAL transition, the full sets of the
 * tick and the urgent frames after BMS updates, each accounted for in the
 * file the output wrote; an observer removed hears nothing more; and the
 * tick arithmetic after a stall.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "config.h"
#include "macro.h"
#include "observer.h"

struct watcher {
	struct observer base;
	unsigned evaluations, by_cause[OBSERVER_CAUSE_RELOAD + 1];
	unsigned to_normal, sets, urgents, refused;
	unsigned frames_taken;	   /* frames the output took, over all evaluations */
	unsigned sent_not_sending; /* frames sent while the mode sends nothing */
	unsigned input_up, output_up, links;
	bool state_ok; /* the state passed is the bridge's, every time */
	const struct bridge *br;
	char status[256];
};

static void watch_evaluated(struct observer *o, const struct observer_evaluation *ev)
{
	struct watcher *w = container_of(o, struct watcher, base);

	w->evaluations++;
	w->by_cause[ev->cause]++;
	if (ev->state != &w->br->state || ev->decision.mode != w->br->mode) {
		w->state_ok = false;
	}
	if (ev->decision.transition && ev->decision.transition->changed &&
	    ev->decision.transition->to == SAFETY_MODE_NORMAL) {
		w->to_normal++;
	}
	if (ev->tx.kind != OBSERVER_WIRE_NONE) {
		if (ev->tx.error < 0) {
			w->refused++;
		} else {
			w->frames_taken += (unsigned)ev->tx.n_frames;
		}
		w->sets += ev->tx.kind == OBSERVER_WIRE_SET;
		w->urgents += ev->tx.kind == OBSERVER_WIRE_URGENT;
		if (ev->decision.mode == SAFETY_MODE_NOT_READY ||
		    ev->decision.mode == SAFETY_MODE_STOP) {
			w->sent_not_sending += (unsigned)ev->tx.n_frames;
		}
	}
	if (ev->cause == OBSERVER_CAUSE_TICK) {
		ev->status(ev, w->status, sizeof(w->status));
	}
}

static void watch_link(struct observer *o, const struct observer_link_event *ev)
{
	struct watcher *w = container_of(o, struct watcher, base);

	w->links++;
	w->input_up += ev->link == OBSERVER_LINK_INPUT && ev->up;
	w->output_up += ev->link == OBSERVER_LINK_OUTPUT && ev->up;
}

static const struct observer_ops watch_ops = {
	.name = "test",
	.evaluated = watch_evaluated,
	.link = watch_link,
};

static unsigned lines_in(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned n = 0;
	int c;

	assert_non_null(f);
	while ((c = fgetc(f)) != EOF) {
		n += c == '\n';
	}
	fclose(f);
	return n;
}

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static void test_observed_run(void **state)
{
	static struct bridge br;
	static struct config cfg;
	struct watcher w = { .base = { .ops = &watch_ops }, .state_ok = true, .br = &br };
	struct watcher late = { .base = { .ops = &watch_ops }, .state_ok = true, .br = &br };
	struct config_error err;
	char path[] = "/tmp/test-bridge-XXXXXX", text[512];
	sd_event *e = NULL;
	uint64_t end;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	snprintf(text, sizeof(text),
		 "bms: { driver = \"sim\"; seed = 1; sim_speed = 60; };\n"
		 "inverter: { protocol = \"pylontech\"; output = \"candump\"; port = \"%s\"; };\n"
		 "status_interval_s = 1;\n",
		 path);
	assert_int_equal(config_load_string("test", text, &cfg, &err), 0);
	assert_int_equal(sd_event_new(&e), 0);

	/* added before bridge_init(): they stay */
	bridge_observer_add(&br, &w.base);
	bridge_observer_add(&br, &late.base);
	assert_int_equal(bridge_init(&br, e, &cfg), 0);
	assert_ptr_equal(br.observers, &w.base);

	end = mono_usec() + 8 * USEC_PER_SEC;
	while (mono_usec() < end && (w.sets < 2 || w.to_normal == 0)) {
		assert_true(sd_event_run(e, 100 * USEC_PER_MSEC) >= 0);
		if (late.evaluations >= 3 && late.base.ops) {
			bridge_observer_remove(&br, &late.base);
			late.base.ops = NULL; /* a call now would crash the test */
		}
	}
	bridge_done(&br);
	sd_event_unref(e);

	/* both ports opened, said once each */
	assert_int_equal(w.input_up, 1);
	assert_int_equal(w.output_up, 1);
	/* the sim's updates and the ticks were each evaluated and observed */
	assert_true(w.by_cause[OBSERVER_CAUSE_BMS] > 0);
	assert_true(w.by_cause[OBSERVER_CAUSE_TICK] >= 2);
	assert_int_equal(w.evaluations,
			 w.by_cause[OBSERVER_CAUSE_BMS] + w.by_cause[OBSERVER_CAUSE_TICK]);
	assert_true(w.state_ok);
	/* one first complete read, then whole sets on the tick */
	assert_int_equal(w.to_normal, 1);
	assert_true(w.sets >= 2);
	assert_int_equal(w.refused, 0);
	assert_int_equal(w.sent_not_sending, 0);
	/* every frame the observers were told of is a line the output wrote */
	assert_int_equal(w.frames_taken, (unsigned)br.frames_sent);
	assert_int_equal(lines_in(path), w.frames_taken);
	/* the status line through the observer is the bridge's */
	assert_non_null(strstr(w.status, "pylontech"));
	/* the removed observer heard nothing after its removal */
	assert_int_equal(late.evaluations, 3);
	assert_true(late.links >= 2);
	unlink(path);
}

/* what the decision says set each limit, as the observers get it */
struct setter_watch {
	struct observer base;
	unsigned normal, not_ready, missing;
	unsigned ccl_at_cap, ccl_cap, ccl_below, ccl_below_rules, cvl_cap, dvl_floor, none_before;
	unsigned online_bit, stats_on_tick, stats_off_tick;
};

static void setter_evaluated(struct observer *o, const struct observer_evaluation *ev)
{
	struct setter_watch *w = container_of(o, struct setter_watch, base);
	const char *const *by = ev->decision.set_by;

	for (unsigned i = 0; i < OBSERVER_LIMIT__COUNT; i++) {
		w->missing += by[i] == NULL;
	}
	if (w->missing) {
		return;
	}
	if (ev->decision.mode == SAFETY_MODE_NOT_READY) {
		w->not_ready++;
		w->none_before += streq(by[OBSERVER_LIMIT_CCL], "none");
	} else if (ev->decision.mode == SAFETY_MODE_NORMAL) {
		w->normal++;
		/* the ramp brings CCL up to the cap: "ramp" below it, "cap" at it */
		if (ev->state->bank.charge_current_limit_ma == 5000) {
			w->ccl_at_cap++;
			w->ccl_cap += streq(by[OBSERVER_LIMIT_CCL], "cap");
		} else {
			w->ccl_below++;
			w->ccl_below_rules += streq(by[OBSERVER_LIMIT_CCL], "ramp");
		}
		w->cvl_cap += streq(by[OBSERVER_LIMIT_CVL], "cap") &&
			      ev->state->bank.charge_voltage_limit_mv == 52000;
		w->dvl_floor += streq(by[OBSERVER_LIMIT_DVL], "floor") &&
				ev->state->bank.discharge_voltage_limit_mv == 48000;
		w->online_bit += ev->decision.packs_online_mask == 1;
	}
	if (ev->cause == OBSERVER_CAUSE_TICK) {
		w->stats_on_tick += ev->inverter_stats != NULL;
	} else {
		w->stats_off_tick += ev->inverter_stats != NULL;
	}
}

static const struct observer_ops setter_ops = {
	.name = "setter",
	.evaluated = setter_evaluated,
};

/*
 * The sim's pack asks 100 A and 56.8 V (sim.c); caps of 5 A and 52.0 V
 * set CCL and CVL ("cap"), the 48.0 V floor sets DVL above the pack's
 * 46.4 V ("floor"); before the first complete read nothing is sent ("none").
 */
static void test_limit_setters(void **state)
{
	static struct bridge br;
	static struct config cfg;
	struct setter_watch w = { .base = { .ops = &setter_ops } };
	struct config_error err;
	sd_event *e = NULL;
	uint64_t end;

	assert_int_equal(config_load_string("test",
					    "bms: { driver = \"sim\"; seed = 1; };\n"
					    "inverter: { protocol = \"pylontech\"; output = "
					    "\"candump\"; port = \"/dev/null\"; };\n"
					    "safety: { max_charge_current_a = 5; "
					    "max_charge_voltage_mv = 52000; };\n",
					    &cfg, &err),
			 0);
	assert_int_equal(sd_event_new(&e), 0);
	bridge_observer_add(&br, &w.base);
	assert_int_equal(bridge_init(&br, e, &cfg), 0);
	end = mono_usec() + 8 * USEC_PER_SEC;
	while (mono_usec() < end && (w.normal < 5 || w.ccl_at_cap < 3)) {
		assert_true(sd_event_run(e, 100 * USEC_PER_MSEC) >= 0);
	}
	bridge_done(&br);
	sd_event_unref(e);

	assert_int_equal(w.missing, 0);
	assert_true(w.normal >= 5);
	assert_true(w.ccl_at_cap >= 3);
	assert_int_equal(w.ccl_cap, w.ccl_at_cap);
	assert_int_equal(w.ccl_below_rules, w.ccl_below);
	assert_int_equal(w.cvl_cap, w.normal);
	assert_int_equal(w.dvl_floor, w.normal);
	assert_int_equal(w.online_bit, w.normal);
	assert_int_equal(w.none_before, w.not_ready);
	/* the candump output has no ->stats(): nothing, on the tick or off it */
	assert_int_equal(w.stats_off_tick, 0);
	assert_int_equal(w.stats_on_tick, 0);
}

/* a tick that runs late is followed by one a whole period later, never a burst */
static void test_next_tick(void **state)
{
	assert_int_equal(bridge_next_tick_usec(1000000, 1000000, 1000100), 2000000);
	assert_int_equal(bridge_next_tick_usec(1000000, 1000000, 1999999), 2000000);
	/* a stall past the next due time: one period after now */
	assert_int_equal(bridge_next_tick_usec(1000000, 1000000, 2000000), 3000000);
	assert_int_equal(bridge_next_tick_usec(1000000, 1000000, 7500000), 8500000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_observed_run),
		cmocka_unit_test(test_limit_setters),
		cmocka_unit_test(test_next_tick),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
