/* SPDX-License-Identifier: MIT */
/*
 * mqtt_stats_phrase() (src/mqtt_status.c): the MQTT client's state as the
 * status line (STATUS=) shows it: connected with its queue, waiting to
 * retry (the wait rounded up to whole seconds) with the reason, connecting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mqtt.h"

#define SEC UINT64_C(1000000)

static void test_connected(void **state)
{
	struct mqtt_stats s = { .connected = true };
	char b[128];

	(void)state;
	mqtt_stats_phrase(&s, 100 * SEC, b, sizeof(b));
	assert_string_equal(b, "mqtt: connected, 0 queued");
	s.queued = 17;
	/* an old reason is not shown while connected */
	snprintf(s.last_error, sizeof(s.last_error), "connection lost");
	mqtt_stats_phrase(&s, 100 * SEC, b, sizeof(b));
	assert_string_equal(b, "mqtt: connected, 17 queued");
}

static void test_retrying(void **state)
{
	struct mqtt_stats s = { .next_retry_usec = 108 * SEC };
	char b[128];

	(void)state;
	snprintf(s.last_error, sizeof(s.last_error), "connection refused: not authorised");
	mqtt_stats_phrase(&s, 100 * SEC, b, sizeof(b));
	assert_string_equal(b, "mqtt: retrying in 8 s (connection refused: not authorised)");
	/* 7.2 s left: "in 8 s", never "in 7 s" while more than 7 s remain */
	mqtt_stats_phrase(&s, 100 * SEC + 800000, b, sizeof(b));
	assert_string_equal(b, "mqtt: retrying in 8 s (connection refused: not authorised)");
	/* due (or the loop late): 0 s, never a wrapped-around number */
	mqtt_stats_phrase(&s, 109 * SEC, b, sizeof(b));
	assert_string_equal(b, "mqtt: retrying in 0 s (connection refused: not authorised)");
	s.last_error[0] = '\0';
	mqtt_stats_phrase(&s, 105 * SEC, b, sizeof(b));
	assert_string_equal(b, "mqtt: retrying in 3 s");
}

static void test_connecting(void **state)
{
	struct mqtt_stats s = { 0 };
	char b[128];

	(void)state;
	mqtt_stats_phrase(&s, 1, b, sizeof(b));
	assert_string_equal(b, "mqtt: connecting");
	snprintf(s.last_error, sizeof(s.last_error), "connection lost");
	mqtt_stats_phrase(&s, 1, b, sizeof(b));
	assert_string_equal(b, "mqtt: connecting (connection lost)");
}

/* a short buffer: cut, terminated, never overrun */
static void test_short_buffer(void **state)
{
	struct mqtt_stats s = { .next_retry_usec = 108 * SEC };
	char b[24];

	(void)state;
	snprintf(s.last_error, sizeof(s.last_error), "connection refused: not authorised");
	memset(b, 'x', sizeof(b));
	mqtt_stats_phrase(&s, 100 * SEC, b, 20);
	assert_string_equal(b, "mqtt: retrying in 8");
	assert_int_equal(b[20], 'x');
	mqtt_stats_phrase(&s, 100 * SEC, b, 0);
	assert_int_equal(b[0], 'm');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connected),
		cmocka_unit_test(test_retrying),
		cmocka_unit_test(test_connecting),
		cmocka_unit_test(test_short_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
