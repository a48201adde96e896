/* SPDX-License-Identifier: MIT */
/*
 * The MQTT client's queue, without a broker (a closed port: the client
 * never connects, so everything published waits): a newer message for a
 * queued topic replaces it, a full queue drops its oldest message that is
 * not retained, retained messages survive a burst, and publish() refuses
 * what no broker should get.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-event.h>

#include "mqtt.h"

struct fixture {
	sd_event *e;
	struct mqtt_client *c;
	struct mqtt_sink *s;
};

static int setup(void **state)
{
	static struct fixture f;
	struct mqtt_config cfg = {
		.enabled = true,
		.host = "127.0.0.1",
		.port = 1, /* nothing listens there */
		.keepalive_usec = 30 * 1000000ULL,
		.reconnect_min_usec = 60 * 1000000ULL,
		.reconnect_max_usec = 60 * 1000000ULL,
		.queue_max = 16,
		.topic_prefix = "bmsbridge",
		.node_id = "unit",
		.discovery_prefix = "homeassistant",
	};

	if (sd_event_new(&f.e) < 0 || mqtt_client_new(&f.c, f.e, &cfg) < 0) {
		return -1;
	}
	f.s = mqtt_client_sink(f.c);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	mqtt_client_free(f->c);
	sd_event_unref(f->e);
	return 0;
}

static struct mqtt_stats stats(struct fixture *f)
{
	struct mqtt_stats st;

	mqtt_client_stats(f->c, &st);
	return st;
}

static int pub(struct fixture *f, const char *topic, const char *payload, bool retain)
{
	return f->s->publish(f->s, topic, payload, strlen(payload), retain ? 1 : 0, retain);
}

static void test_supersede_and_drop(void **state)
{
	struct fixture *f = *state;
	char topic[32];
	struct mqtt_stats st;

	st = stats(f);
	assert_false(st.connected);
	assert_int_equal(st.queued, 0);

	/* one retained message first, then 15 volatile ones: full */
	assert_int_equal(pub(f, "ha/config/0", "{\"retained\":1}", true), 0);
	for (int i = 1; i < 16; i++) {
		snprintf(topic, sizeof(topic), "state/%d", i);
		assert_int_equal(pub(f, topic, "12", false), 0);
	}
	st = stats(f);
	assert_int_equal(st.queued, 16);
	assert_int_equal(st.queued_bytes, 14 + 15 * 2);
	assert_int_equal(st.superseded, 0);
	assert_int_equal(st.dropped, 0);

	/* a newer state/5 replaces the queued one */
	assert_int_equal(pub(f, "state/5", "12345", false), 0);
	st = stats(f);
	assert_int_equal(st.queued, 16);
	assert_int_equal(st.superseded, 1);
	assert_int_equal(st.queued_bytes, 14 + 14 * 2 + 5);

	/* full: a new topic drops the oldest volatile one (state/1), not the retained */
	assert_int_equal(pub(f, "state/new", "1", false), 0);
	st = stats(f);
	assert_int_equal(st.queued, 16);
	assert_int_equal(st.dropped, 1);
	/* the retained one is still there: replacing it supersedes */
	assert_int_equal(pub(f, "ha/config/0", "{\"retained\":2}", true), 0);
	assert_int_equal(stats(f).superseded, 2);
	/* state/1 is gone: publishing it is a new message, dropping state/2 */
	assert_int_equal(pub(f, "state/1", "9", false), 0);
	st = stats(f);
	assert_int_equal(st.superseded, 2);
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.queued, 16);
	/* ... and state/3 is still queued */
	assert_int_equal(pub(f, "state/3", "10", false), 0);
	assert_int_equal(stats(f).superseded, 3);
}

/* a burst of retained discovery messages evicts every volatile one, never a retained one */
static void test_retained_survive_burst(void **state)
{
	struct fixture *f = *state;
	struct mqtt_stats before = stats(f), st;
	char topic[32];

	for (int i = 0; i < 16; i++) {
		snprintf(topic, sizeof(topic), "ha/burst/%d", i);
		assert_int_equal(pub(f, topic, "{}", true), 0);
	}
	/* all 16 slots retained now; a volatile newcomer is the one that goes */
	assert_int_equal(pub(f, "state/late", "1", false), 0);
	st = stats(f);
	assert_int_equal(st.queued, 16);
	assert_int_equal(st.dropped, before.dropped + 17);
	for (int i = 0; i < 16; i++) {
		snprintf(topic, sizeof(topic), "ha/burst/%d", i);
		assert_int_equal(pub(f, topic, "{}", true), 0);
	}
	assert_int_equal(stats(f).superseded, st.superseded + 16);
	/* a retained newcomer on a full retained queue drops the oldest retained */
	assert_int_equal(pub(f, "ha/burst/16", "{}", true), 0);
	assert_int_equal(stats(f).dropped, st.dropped + 1);
	assert_int_equal(pub(f, "ha/burst/1", "{}", true), 0);
	assert_int_equal(stats(f).superseded, st.superseded + 17);
}

static void test_refused(void **state)
{
	struct fixture *f = *state;
	static char big[MQTT_PAYLOAD_MAX + 1];
	char long_topic[MQTT_TOPIC_MAX + 1];
	struct mqtt_stats before = stats(f), st;

	memset(big, 'x', sizeof(big));
	memset(long_topic, 'a', sizeof(long_topic) - 1);
	long_topic[sizeof(long_topic) - 1] = '\0';
	assert_int_equal(f->s->publish(f->s, "t", big, sizeof(big), 0, false), -EINVAL);
	assert_int_equal(f->s->publish(f->s, "a/+/b", "1", 1, 0, false), -EINVAL);
	assert_int_equal(f->s->publish(f->s, "a/#", "1", 1, 0, false), -EINVAL);
	assert_int_equal(f->s->publish(f->s, "", "1", 1, 0, false), -EINVAL);
	assert_int_equal(f->s->publish(f->s, NULL, "1", 1, 0, false), -EINVAL);
	assert_int_equal(f->s->publish(f->s, long_topic, "1", 1, 0, false), -EINVAL);
	assert_int_equal(f->s->publish(f->s, "t", NULL, 3, 0, false), -EINVAL);
	assert_int_equal(f->s->publish(f->s, "t", "1", 1, 3, false), -EINVAL);
	st = stats(f);
	assert_int_equal(st.queued, before.queued);
	assert_int_equal(st.dropped, before.dropped);
	/* the cap itself is fine, and so is an empty payload (clears a retained topic) */
	assert_int_equal(f->s->publish(f->s, "ha/big", big, MQTT_PAYLOAD_MAX, 1, true), 0);
	assert_int_equal(f->s->publish(f->s, "ha/gone", NULL, 0, 1, true), 0);
}

/* a refused connection is a reason and a retry time, and nothing connected */
static void test_not_connected(void **state)
{
	struct fixture *f = *state;
	struct mqtt_stats st;

	/* one loop pass: the connection attempt's outcome, if not known at once */
	for (int i = 0; i < 20 && !stats(f).last_error[0]; i++) {
		sd_event_run(f->e, 50000);
	}
	st = stats(f);
	print_message("# last_error: %s\n", st.last_error);
	assert_false(st.connected);
	assert_int_equal(st.connects, 0);
	assert_true(st.disconnects >= 1);
	assert_non_null(strstr(st.last_error, "refused"));
	assert_true(st.next_retry_usec > 0);
	assert_int_equal(st.published, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_supersede_and_drop),
		cmocka_unit_test(test_retained_survive_burst),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_not_connected),
	};

	return cmocka_run_group_tests_name("mqtt", tests, setup, teardown);
}
