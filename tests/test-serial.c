/* SPDX-License-Identifier: MIT */
/*
 * src/serial.c on real ptys and a real sd-event loop: raw bytes both ways,
 * the bounded write queue, exclusive open, the baud check, and the life
 * cycle of a USB adapter that vanishes and comes back (the pty's master
 * closed, the symlink the port is configured with pointed at a new pty).
 * Waits are loop iterations with a deadline, never fixed sleeps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "log.h"
#include "macro.h"
#include "serial.h"

struct rig {
	sd_event *e;
	char dir[64];
	char link[96];
	int master;
	char slave[64];
	uint8_t got[256];
	size_t n_got;
	int opened, lost;
	struct serial *free_on_read; /* test_free_from_read: the callback frees this port */
};

static void on_read(struct serial *s, const uint8_t *buf, size_t n, uint64_t now, void *userdata)
{
	struct rig *r = userdata;

	assert_true(n > 0);
	assert_true(now > 0);
	for (size_t i = 0; i < n && r->n_got < sizeof(r->got); i++) {
		r->got[r->n_got++] = buf[i];
	}
	if (r->free_on_read == s) {
		r->free_on_read = serial_free(s);
	}
}

static void on_state(struct serial *s, bool open, void *userdata)
{
	struct rig *r = userdata;

	if (open) {
		r->opened++;
	} else {
		r->lost++;
	}
}

/* a new pty; the rig's symlink points at its slave */
static void new_pty(struct rig *r)
{
	int slave_fd = -1;

	assert_int_equal(openpty(&r->master, &slave_fd, r->slave, NULL, NULL), 0);
	/* openpty() handed us a slave fd too: close it, the port opens by name */
	close(slave_fd);
	unlink(r->link);
	assert_int_equal(symlink(r->slave, r->link), 0);
}

/* run the loop until @cond holds or @usec pass */
#define RUN_UNTIL(r, cond, usec)                                                      \
	do {                                                                          \
		uint64_t _end, _now;                                                  \
		sd_event_now((r)->e, CLOCK_MONOTONIC, &_now);                         \
		_end = _now + (usec);                                                 \
		while (!(cond)) {                                                     \
			assert_true(sd_event_run((r)->e, 100 * USEC_PER_MSEC) >= 0);  \
			sd_event_now((r)->e, CLOCK_MONOTONIC, &_now);                 \
			if (_now > _end) {                                            \
				break;                                                \
			}                                                             \
		}                                                                     \
	} while (0)

static int setup(void **state)
{
	struct rig *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	snprintf(r->dir, sizeof(r->dir), "/tmp/bmsbridge-serial-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->link, sizeof(r->link), "%s/tty", r->dir);
	assert_int_equal(sd_event_new(&r->e), 0);
	r->master = -1;
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	struct rig *r = *state;

	if (r->master >= 0) {
		close(r->master);
	}
	unlink(r->link);
	rmdir(r->dir);
	sd_event_unref(r->e);
	free(r);
	return 0;
}

static void test_bad_baud(void **state)
{
	struct rig *r = *state;
	struct serial *s = NULL;
	struct serial_config c = { .path = "/dev/null", .baud = 4800 };

	assert_int_equal(serial_new(r->e, &c, on_read, on_state, r, &s), -EINVAL);
	assert_null(s);
	assert_false(serial_baud_supported(38400));
	assert_true(serial_baud_supported(9600));
	assert_true(serial_baud_supported(19200));
	assert_true(serial_baud_supported(115200));
}

static void test_bytes_both_ways(void **state)
{
	struct rig *r = *state;
	struct serial_config c = { .baud = 9600, .rs485 = true };
	struct serial *s = NULL;
	uint8_t big[SERIAL_TX_QUEUE + 1] = { 0 };
	char buf[16] = "";
	ssize_t n = 0;

	new_pty(r);
	c.path = r->link;
	assert_int_equal(serial_new(r->e, &c, on_read, on_state, r, &s), 0);
	assert_true(serial_is_open(s));
	assert_string_equal(serial_path(s), r->link);

	if (geteuid() != 0) {
		/* TIOCEXCL: nobody else gets the port (root bypasses it) */
		assert_int_equal(open(r->slave, O_RDWR | O_NOCTTY), -1);
		assert_int_equal(errno, EBUSY);
	}

	assert_int_equal(write(r->master, "~hello\r", 7), 7);
	RUN_UNTIL(r, r->n_got >= 7, 3 * USEC_PER_SEC);
	assert_int_equal(r->n_got, 7);
	assert_memory_equal(r->got, "~hello\r", 7);

	assert_int_equal(serial_write(s, (const uint8_t *)"answer", 6), 0);
	RUN_UNTIL(r, false, 50 * USEC_PER_MSEC);
	for (int i = 0; i < 20 && n < 6; i++) {
		ssize_t k = read(r->master, buf + n, sizeof(buf) - 1 - (size_t)n);

		if (k > 0) {
			n += k;
		} else {
			RUN_UNTIL(r, false, 20 * USEC_PER_MSEC);
		}
	}
	assert_int_equal(n, 6);
	assert_memory_equal(buf, "answer", 6);

	/* a message bigger than the queue is refused whole */
	assert_int_equal(serial_write(s, big, sizeof(big)), -ENOBUFS);
	serial_free(s);
}

/*
 * serial_read_now(): what the tty holds is handed over at once, without a
 * loop iteration (a response timeout that fires with the answer already
 * there must see it); once the port is lost it says so.
 */
static void test_read_now(void **state)
{
	struct rig *r = *state;
	struct serial_config c = { .baud = 115200 };
	struct serial *s = NULL;

	new_pty(r);
	c.path = r->link;
	assert_int_equal(serial_new(r->e, &c, on_read, on_state, r, &s), 0);
	assert_true(serial_is_open(s));
	assert_int_equal(serial_read_now(s), 0);
	assert_int_equal(r->n_got, 0);

	assert_int_equal(write(r->master, "\x01\x10\x16\x20", 4), 4);
	/* the pty hands the bytes over after a moment: no loop run, only reads */
	for (int i = 0; i < 200 && r->n_got < 4; i++) {
		ssize_t k = serial_read_now(s);

		assert_true(k >= 0);
		if (k == 0) {
			usleep(1000);
		}
	}
	assert_int_equal(r->n_got, 4);
	assert_memory_equal(r->got, "\x01\x10\x16\x20", 4);
	assert_int_equal(r->lost, 0);

	/*
	 * The master closed: a read then says EOF (0), which is not a loss by
	 * itself; the hang-up the loop sees is. Closed, reading says so.
	 */
	close(r->master);
	r->master = -1;
	assert_true(serial_read_now(s) <= 0);
	RUN_UNTIL(r, r->lost > 0, 3 * USEC_PER_SEC);
	assert_int_equal(r->lost, 1);
	assert_false(serial_is_open(s));
	assert_int_equal(serial_read_now(s), -ENOTCONN);
	serial_free(s);
}

/*
 * The owner frees the port from its own read callback (the engine reopens
 * a line after too many failed exchanges, which can be decided on an
 * answer): nothing of the port may be touched after that (ASan says so).
 */
static void test_free_from_read(void **state)
{
	struct rig *r = *state;
	struct serial_config c = { .baud = 9600 };
	struct serial *s = NULL;

	new_pty(r);
	c.path = r->link;
	assert_int_equal(serial_new(r->e, &c, on_read, on_state, r, &s), 0);
	assert_true(serial_is_open(s));
	r->free_on_read = s;
	/* more than one read's worth: the reader must stop at the free */
	for (int i = 0; i < 4; i++) {
		uint8_t chunk[200];

		memset(chunk, 0x55 + i, sizeof(chunk));
		assert_int_equal(write(r->master, chunk, sizeof(chunk)), (ssize_t)sizeof(chunk));
	}
	RUN_UNTIL(r, r->n_got > 0, 3 * USEC_PER_SEC);
	assert_true(r->n_got > 0);
	assert_null(r->free_on_read);
	/* the loop goes on without the port; the same from serial_read_now() */
	RUN_UNTIL(r, false, 100 * USEC_PER_MSEC);
	assert_int_equal(r->lost, 0);

	r->n_got = 0;
	assert_int_equal(serial_new(r->e, &c, on_read, on_state, r, &s), 0);
	r->free_on_read = s;
	assert_int_equal(write(r->master, "\x7e", 1), 1);
	for (int i = 0; i < 200 && r->n_got == 0; i++) {
		ssize_t k = serial_read_now(s);

		if (k == 0) {
			usleep(1000);
		} else {
			assert_int_equal(k, -ENOTCONN);
		}
	}
	assert_int_equal(r->n_got, 1);
	assert_null(r->free_on_read);
}

static void test_vanish_and_come_back(void **state)
{
	struct rig *r = *state;
	struct serial_config c = { .baud = 19200 };
	struct serial *s = NULL;

	new_pty(r);
	c.path = r->link;
	assert_int_equal(serial_new(r->e, &c, on_read, on_state, r, &s), 0);
	assert_true(serial_is_open(s));

	/*
	 * The adapter goes away: the other side closes and its name goes, as
	 * /dev/ttyUSB0 does. (A link left dangling could point at a pts number
	 * that another process's new pty reuses: a parallel test's.)
	 */
	close(r->master);
	r->master = -1;
	unlink(r->link);
	RUN_UNTIL(r, r->lost > 0, 3 * USEC_PER_SEC);
	assert_int_equal(r->lost, 1);
	assert_false(serial_is_open(s));
	assert_int_equal(serial_write(s, (const uint8_t *)"x", 1), -ENOTCONN);
	assert_int_equal(serial_retry_usec(s), SERIAL_BACKOFF_MIN_USEC);

	/* a failed attempt or two doubles the back-off */
	RUN_UNTIL(r, serial_retry_usec(s) > SERIAL_BACKOFF_MIN_USEC, 3 * USEC_PER_SEC);
	assert_true(serial_retry_usec(s) >= 2 * SERIAL_BACKOFF_MIN_USEC);
	assert_int_equal(r->opened, 0);

	/* it comes back under the same name */
	new_pty(r);
	RUN_UNTIL(r, r->opened > 0, 6 * USEC_PER_SEC);
	assert_int_equal(r->opened, 1);
	assert_true(serial_is_open(s));
	assert_int_equal(serial_retry_usec(s), SERIAL_BACKOFF_MIN_USEC);

	r->n_got = 0;
	assert_int_equal(write(r->master, "again", 5), 5);
	RUN_UNTIL(r, r->n_got >= 5, 3 * USEC_PER_SEC);
	assert_memory_equal(r->got, "again", 5);
	serial_free(s);
}

static void test_absent_at_start(void **state)
{
	struct rig *r = *state;
	struct serial_config c = { .baud = 115200 };
	struct serial *s = NULL;

	unlink(r->link);
	c.path = r->link;
	/* not there yet: set up anyway and keep trying */
	assert_int_equal(serial_new(r->e, &c, on_read, on_state, r, &s), 0);
	assert_non_null(s);
	assert_false(serial_is_open(s));
	new_pty(r);
	RUN_UNTIL(r, r->opened > 0, 4 * USEC_PER_SEC);
	assert_true(serial_is_open(s));
	serial_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_baud, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bytes_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vanish_and_come_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_now, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_from_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absent_at_start, setup, teardown),
	};

	log_setup(LOG_WARNING);
	return cmocka_run_group_tests_name("serial", tests, NULL, NULL);
}
