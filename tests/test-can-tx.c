/* SPDX-License-Identifier: MIT */
/*
 * The transmit queue of src/can_bus.c, without CAN: link-time mocks
 * (-Wl,--wrap, as tinc's tests do) give the port one end of an AF_UNIX
 * datagram socketpair for its raw CAN socket, so every frame the port
 * writes arrives, whole, at the other end for the test to read; a switch
 * makes write() answer ENOBUFS as a full interface queue does. The rest
 * (sd-event, the pending set, its flush timer, age limit and gate) is the
 * real code on a real loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "can_bus.h"
#include "macro.h"

/* ---- the mocks ------------------------------------------------------------ */

static int can_fd = -1, peer_fd = -1;
static bool tx_blocked; /* write() answers ENOBUFS: the interface queue is full */
static bool gate_open = true;

int __real_socket(int domain, int type, int protocol);
int __wrap_socket(int domain, int type, int protocol);
int __real_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int __wrap_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int __real_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int __wrap_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int __real_bind(int fd, const struct sockaddr *addr, socklen_t len);
int __wrap_bind(int fd, const struct sockaddr *addr, socklen_t len);
ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);
unsigned __wrap_if_nametoindex(const char *name);

int __wrap_socket(int domain, int type, int protocol)
{
	int sv[2];

	if (domain != PF_CAN) {
		return __real_socket(domain, type, protocol);
	}
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		return -1;
	}
	can_fd = sv[0];
	peer_fd = sv[1];
	return can_fd;
}

int __wrap_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	/* CAN_RAW_FILTER, CAN_RAW_ERR_FILTER, SO_RXQ_OVFL, SO_RCVBUF*: taken */
	return fd == can_fd ? 0 : __real_setsockopt(fd, level, name, val, len);
}

int __wrap_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	if (fd == can_fd && level == SOL_SOCKET && name == SO_MEMINFO) {
		errno = ENOPROTOOPT; /* the kernel's own queue: "cannot tell" */
		return -1;
	}
	return __real_getsockopt(fd, level, name, val, len);
}

int __wrap_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	return fd == can_fd ? 0 : __real_bind(fd, addr, len);
}

ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	if (fd == can_fd && tx_blocked) {
		errno = ENOBUFS;
		return -1;
	}
	return __real_write(fd, buf, n);
}

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	struct ifreq *ifr;

	va_start(ap, req);
	ifr = va_arg(ap, struct ifreq *);
	va_end(ap);
	if (fd == can_fd && req == SIOCGIFFLAGS) {
		ifr->ifr_flags = IFF_UP | IFF_RUNNING;
		return 0;
	}
	return __real_ioctl(fd, req, ifr);
}

/*
 * glibc with a 64-bit time_t on a 32-bit ABI (armhf, -D_TIME_BITS=64)
 * redirects these three to their time64 names, so the calls in the daemon
 * library reference __setsockopt64, __getsockopt64 and __ioctl_time64: wrap
 * those too (tests/meson.build passes --wrap for them everywhere; where
 * nothing references them the flag does nothing).
 */
#if defined(__USE_TIME_BITS64) && __TIMESIZE == 32
int __real___setsockopt64(int fd, int level, int name, const void *val, socklen_t len);
int __wrap___setsockopt64(int fd, int level, int name, const void *val, socklen_t len);
int __real___getsockopt64(int fd, int level, int name, void *val, socklen_t *len);
int __wrap___getsockopt64(int fd, int level, int name, void *val, socklen_t *len);
int __real___ioctl_time64(int fd, unsigned long req, ...);
int __wrap___ioctl_time64(int fd, unsigned long req, ...);

int __wrap___setsockopt64(int fd, int level, int name, const void *val, socklen_t len)
{
	return fd == can_fd ? 0 : __real___setsockopt64(fd, level, name, val, len);
}

int __wrap___getsockopt64(int fd, int level, int name, void *val, socklen_t *len)
{
	if (fd == can_fd && level == SOL_SOCKET && name == SO_MEMINFO) {
		errno = ENOPROTOOPT;
		return -1;
	}
	return __real___getsockopt64(fd, level, name, val, len);
}

int __wrap___ioctl_time64(int fd, unsigned long req, ...)
{
	va_list ap;
	struct ifreq *ifr;

	va_start(ap, req);
	ifr = va_arg(ap, struct ifreq *);
	va_end(ap);
	if (fd == can_fd && req == SIOCGIFFLAGS) {
		ifr->ifr_flags = IFF_UP | IFF_RUNNING;
		return 0;
	}
	return __real___ioctl_time64(fd, req, ifr);
}
#endif

unsigned __wrap_if_nametoindex(const char *name)
{
	return strcmp(name, "vtest0") == 0 ? 7 : 0;
}

/* ---- the fixture ---------------------------------------------------------- */

struct fixture {
	sd_event *e;
	struct can_bus *bus;
};

static bool gate(struct can_bus *bus, uint64_t now_usec, void *userdata)
{
	return gate_open;
}

static void run_usec(struct fixture *fx, uint64_t usec)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		assert_true(sd_event_run(fx->e, 2000) >= 0);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((uint64_t)(t.tv_sec - t0.tv_sec) * USEC_PER_SEC +
			 (uint64_t)(t.tv_nsec - t0.tv_nsec) / 1000 <
		 usec);
}

/* run the loop until its own clock (what the port ages frames by) passed @usec */
static void run_loop_usec(struct fixture *fx, uint64_t usec)
{
	uint64_t t0 = 0, t = 0;

	assert_int_equal(sd_event_now(fx->e, CLOCK_MONOTONIC, &t0), 0);
	do {
		assert_true(sd_event_run(fx->e, 2000) >= 0);
		assert_int_equal(sd_event_now(fx->e, CLOCK_MONOTONIC, &t), 0);
	} while (t - t0 < usec);
}

static int setup(void **state)
{
	static const canid_t rx[] = { 0x305 };
	struct can_bus_config cfg = {
		.ifname = "vtest0",
		.user = "test",
		.rx_ids = rx,
		.n_rx_ids = ARRAY_SIZE(rx),
		.pending_max_age_usec = 500 * USEC_PER_MSEC,
		.may_send = gate,
	};
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	tx_blocked = false;
	gate_open = true;
	assert_int_equal(sd_event_new(&fx->e), 0);
	assert_int_equal(can_bus_new(fx->e, &cfg, NULL, NULL, NULL, &fx->bus), 0);
	run_usec(fx, 20 * USEC_PER_MSEC);
	assert_true(can_bus_is_open(fx->bus));
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	can_bus_free(fx->bus);
	sd_event_unref(fx->e);
	if (peer_fd >= 0) {
		close(peer_fd);
		peer_fd = -1;
	}
	can_fd = -1;
	free(fx);
	return 0;
}

static struct can_frame frame(canid_t id, uint8_t b0)
{
	struct can_frame f = { .can_id = id, .len = 2, .data = { b0, 0x5A } };

	return f;
}

/* what reached the other end, in order: ids and first bytes */
static size_t received(struct can_frame *out, size_t n)
{
	size_t k = 0;

	while (k < n && read(peer_fd, &out[k], sizeof(out[k])) == (ssize_t)sizeof(out[k])) {
		k++;
	}
	return k;
}

/* ---- the tests ------------------------------------------------------------ */

static void test_written_at_once(void **state)
{
	struct fixture *fx = *state;
	struct can_frame set[3] = { frame(0x351, 1), frame(0x355, 2), frame(0x356, 3) };
	struct can_frame got[8];

	assert_int_equal(can_bus_send(fx->bus, set, 3), 3);
	assert_int_equal(received(got, 8), 3);
	for (size_t i = 0; i < 3; i++) {
		assert_memory_equal(&got[i], &set[i], sizeof(set[i]));
	}
	assert_int_equal(can_bus_get_stats(fx->bus)->tx_frames, 3);
}

/* a full queue parks one copy per id, the newest; the flush timer sends them in order */
static void test_parked_newest_per_id(void **state)
{
	struct fixture *fx = *state;
	struct can_frame a[2] = { frame(0x351, 1), frame(0x355, 2) };
	struct can_frame b = frame(0x351, 9);
	struct can_frame got[8];
	size_t n = 0;
	const struct can_bus_stats *st = can_bus_get_stats(fx->bus);

	tx_blocked = true;
	assert_int_equal(can_bus_send(fx->bus, a, 2), 2);
	assert_int_equal(can_bus_send(fx->bus, &b, 1), 1);
	assert_int_equal(st->tx_replaced, 1);
	assert_int_equal(st->tx_frames, 0);
	run_usec(fx, 20 * USEC_PER_MSEC);
	assert_int_equal(received(got, 8), 0);

	tx_blocked = false;
	/* the flush timer retries every 5 ms: wait for it, however loaded the machine */
	for (unsigned k = 0; k < 300 && n < 2; k++) {
		run_usec(fx, 10 * USEC_PER_MSEC);
		n += received(got + n, ARRAY_SIZE(got) - n);
	}
	assert_int_equal(n, 2);
	assert_int_equal(got[0].can_id, 0x351);
	assert_int_equal(got[0].data[0], 9); /* the newer value, never the old one */
	assert_int_equal(got[1].can_id, 0x355);
	assert_int_equal(st->tx_frames, 2);
	assert_int_equal(st->tx_stale + st->tx_dropped, 0);
}

/* older pending frames go before a new send's, so a set keeps its order */
static void test_order_kept(void **state)
{
	struct fixture *fx = *state;
	struct can_frame first = frame(0x351, 1), second = frame(0x359, 2);
	struct can_frame got[8];

	tx_blocked = true;
	assert_int_equal(can_bus_send(fx->bus, &first, 1), 1);
	tx_blocked = false;
	assert_int_equal(can_bus_send(fx->bus, &second, 1), 1);
	assert_int_equal(received(got, 8), 2);
	assert_int_equal(got[0].can_id, 0x351);
	assert_int_equal(got[1].can_id, 0x359);
}

/*
 * A parked frame older than the age limit is dropped, never sent late.
 * The next send runs the same expiry as the flush timer, before its own
 * frame: the old one goes, the new one is written.
 */
static void test_aged_out(void **state)
{
	struct fixture *fx = *state;
	struct can_frame old = frame(0x351, 1), fresh = frame(0x355, 2);
	struct can_frame got[8];
	const struct can_bus_stats *st = can_bus_get_stats(fx->bus);

	tx_blocked = true;
	assert_int_equal(can_bus_send(fx->bus, &old, 1), 1);
	run_loop_usec(fx, 600 * USEC_PER_MSEC); /* > pending_max_age_usec (500 ms) */
	tx_blocked = false;
	assert_int_equal(can_bus_send(fx->bus, &fresh, 1), 1);
	assert_int_equal(st->tx_stale, 1);
	assert_int_equal(received(got, 8), 1);
	assert_int_equal(got[0].can_id, 0x355);
	assert_int_equal(st->tx_frames, 1);
}

/* a young parked frame is not dropped: it goes before the next send's */
static void test_young_kept(void **state)
{
	struct fixture *fx = *state;
	struct can_frame old = frame(0x351, 1), fresh = frame(0x355, 2);
	struct can_frame got[8];
	const struct can_bus_stats *st = can_bus_get_stats(fx->bus);

	tx_blocked = true;
	assert_int_equal(can_bus_send(fx->bus, &old, 1), 1);
	run_loop_usec(fx, 50 * USEC_PER_MSEC); /* < pending_max_age_usec (500 ms) */
	tx_blocked = false;
	assert_int_equal(can_bus_send(fx->bus, &fresh, 1), 1);
	assert_int_equal(st->tx_stale, 0);
	assert_int_equal(received(got, 8), 2);
	assert_int_equal(got[0].can_id, 0x351);
	assert_int_equal(got[1].can_id, 0x355);
}

/* the owner's gate (safety mode STOP) drops what is parked, at the next flush */
static void test_gate_closed(void **state)
{
	struct fixture *fx = *state;
	struct can_frame set[2] = { frame(0x351, 1), frame(0x355, 2) };
	struct can_frame next = frame(0x356, 3);
	struct can_frame got[8];
	const struct can_bus_stats *st = can_bus_get_stats(fx->bus);

	tx_blocked = true;
	assert_int_equal(can_bus_send(fx->bus, set, 2), 2);
	gate_open = false;
	tx_blocked = false;
	assert_int_equal(can_bus_send(fx->bus, &next, 1), 1);
	assert_int_equal(st->tx_stale, 2);
	/* the parked set never goes out; only what was handed over now */
	assert_int_equal(received(got, 8), 1);
	assert_int_equal(got[0].can_id, 0x356);
}

/*
 * at most CAN_BUS_PENDING_MAX (96: Daly CAN's 6 requests x 15 boards fit) ids
 * wait; beyond, the oldest goes, counted
 */
static void test_pending_full(void **state)
{
	struct fixture *fx = *state;
	struct can_frame got[100];
	struct can_frame last = frame(0x700, 0);
	const struct can_bus_stats *st = can_bus_get_stats(fx->bus);

	tx_blocked = true;
	for (canid_t id = 0x300; id < 0x300 + 98; id++) {
		struct can_frame f = frame(id, (uint8_t)id);

		assert_int_equal(can_bus_send(fx->bus, &f, 1), 1);
	}
	assert_int_equal(st->tx_dropped, 2);
	tx_blocked = false;
	assert_int_equal(can_bus_send(fx->bus, &last, 1), 1);
	assert_int_equal(received(got, 100), 97);
	assert_int_equal(got[0].can_id, 0x302); /* 0x300 and 0x301 were the oldest */
	assert_int_equal(got[95].can_id, 0x300 + 97);
	assert_int_equal(got[96].can_id, 0x700); /* the parked ones first */
}

/*
 * Daly CAN requests to 15 boards (0x18 <ID> <board> 40, 6 IDs each) parked
 * at once: 90 distinct ids, none replaced, none dropped, all sent in order
 */
static void test_pending_daly_boards(void **state)
{
	static const uint8_t cmd[] = { 0x90, 0x91, 0x92, 0x93, 0x94, 0x98 };
	struct fixture *fx = *state;
	struct can_frame got[100];
	const struct can_bus_stats *st = can_bus_get_stats(fx->bus);
	struct can_frame last = frame(0x700, 0);
	int n = 0;

	tx_blocked = true;
	for (unsigned board = 1; board <= 15; board++) {
		for (size_t i = 0; i < sizeof(cmd); i++) {
			struct can_frame f = { .len = 8 };

			f.can_id = (0x18000040 | (canid_t)cmd[i] << 16 | board << 8) | CAN_EFF_FLAG;
			assert_int_equal(can_bus_send(fx->bus, &f, 1), 1);
		}
	}
	assert_int_equal(st->tx_dropped, 0);
	assert_int_equal(st->tx_replaced, 0);
	tx_blocked = false;
	assert_int_equal(can_bus_send(fx->bus, &last, 1), 1);
	assert_int_equal(received(got, 100), 91);
	for (unsigned board = 1; board <= 15; board++) {
		for (size_t i = 0; i < sizeof(cmd); i++, n++) {
			assert_int_equal(got[n].can_id,
					 (0x18000040 | (canid_t)cmd[i] << 16 | board << 8) |
						 CAN_EFF_FLAG);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_written_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parked_newest_per_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aged_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_young_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_daly_boards, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
