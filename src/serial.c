/* SPDX-License-Identifier: MIT */
/*
 * Serial port module (house style H6: one fd on the loop, never blocking).
 *
 * Life of a port:
 *   closed --open ok--> open --read error / EOF / HUP--> closed
 *   closed --timer (1 s, 2 s, 4 s ... 30 s)--> try open again
 * A USB-RS485 adapter that is unplugged makes read() fail with EIO/ENODEV
 * (or the fd reports EPOLLHUP); its device node comes back under the same
 * name (or the same /dev/serial/by-id link) when it is plugged in again.
 * A pty whose other side closed behaves the same (EIO, HUP), which is how
 * the integration test exercises this path.
 *
 * Writes: a ring buffer of SERIAL_TX_QUEUE bytes; serial_write() appends a
 * whole message or refuses it, writes as much as the tty takes at once and
 * leaves the rest to EPOLLOUT. Reads: at most SERIAL_READ_ROUNDS reads of
 * SERIAL_READ_CHUNK bytes per wake-up, so a babbling line cannot hold the
 * loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <termios.h>
#include <unistd.h>

#include <linux/serial.h>

#define LOG_MODULE "serial"
#include "log.h"
#include "macro.h"
#include "serial.h"

#define SERIAL_READ_CHUNK 256
#define SERIAL_READ_ROUNDS 8
#define SERIAL_PATH_MAX 256

struct serial {
	sd_event *event;
	char path[SERIAL_PATH_MAX];
	uint32_t baud;
	bool rs485;
	serial_read_fn on_read;
	serial_state_fn on_state;
	void *userdata;

	int fd;
	sd_event_source *io;
	sd_event_source *retry;
	uint64_t backoff_usec;
	bool rs485_noted; /* the TIOCSRS485 note is logged once */
	bool open_warned; /* "cannot open" is logged once per outage, then at debug */
	unsigned reading; /* inside ->on_read (nested: serial_read_now() from it) */
	bool freed;	  /* serial_free() was called from ->on_read: free on return */

	uint8_t txq[SERIAL_TX_QUEUE];
	size_t tx_head; /* next byte to write */
	size_t tx_len;	/* bytes queued */
};

/*
 * The three rates the inverters and packs we know use: 9600 (Voltronic
 * "PYL", Pylontech default), 19200 (some setups), 115200 (newer packs,
 * JK-PB). Anything else is refused at start rather than half-working.
 */
static int baud_to_speed(uint32_t baud, speed_t *ret)
{
	switch (baud) {
	case 9600:
		*ret = B9600;
		return 0;
	case 19200:
		*ret = B19200;
		return 0;
	case 115200:
		*ret = B115200;
		return 0;
	default:
		return -EINVAL;
	}
}

bool serial_baud_supported(uint32_t baud)
{
	speed_t sp;

	return baud_to_speed(baud, &sp) == 0;
}

/* raw 8N1, no flow control, reads return what is there (VMIN = VTIME = 0) */
static int setup_termios(int fd, uint32_t baud)
{
	struct termios t;
	speed_t sp;

	if (baud_to_speed(baud, &sp) < 0) {
		return -EINVAL;
	}
	if (tcgetattr(fd, &t) < 0) {
		return -errno;
	}
	cfmakeraw(&t);
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB | CRTSCTS);
	t.c_cflag |= CS8 | CLOCAL | CREAD;
	t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	if (cfsetispeed(&t, sp) < 0 || cfsetospeed(&t, sp) < 0) {
		return -errno;
	}
	if (tcsetattr(fd, TCSANOW, &t) < 0) {
		return -errno;
	}
	tcflush(fd, TCIOFLUSH); /* stale bytes from before we owned the port */
	return 0;
}

/* RS485 direction control by the kernel where the UART driver supports it */
static void setup_rs485(struct serial *s)
{
	struct serial_rs485 rs = { 0 };

	if (!s->rs485) {
		return;
	}
	rs.flags = SER_RS485_ENABLED | SER_RS485_RTS_ON_SEND;
	if (ioctl(s->fd, TIOCSRS485, &rs) < 0) {
		int r = -errno;

		if (!s->rs485_noted) {
			log_notice("%s: no kernel RS485 mode (TIOCSRS485: %s); fine for USB "
				   "adapters and ptys, which switch direction themselves",
				   s->path, strerror(-r));
			s->rs485_noted = true;
		}
		return;
	}
	if (!s->rs485_noted) {
		log_info("%s: kernel RS485 mode on (RTS high while sending)", s->path);
		s->rs485_noted = true;
	}
}

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata);
static void schedule_retry(struct serial *s);

/* drop the fd and its source; queued bytes belonged to the old link, drop them too */
static void port_close(struct serial *s)
{
	s->io = sd_event_source_disable_unref(s->io);
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	s->tx_head = s->tx_len = 0;
}

/*
 * Open, lock, configure, watch. On failure nothing is left open and the
 * caller decides between "retry later" and "give up".
 */
static int port_open(struct serial *s)
{
	int fd, r;

	fd = open(s->path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		return -errno;
	}
	/* exclusive: a second opener (another daemon, a stray minicom) gets EBUSY */
	if (ioctl(fd, TIOCEXCL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = setup_termios(fd, s->baud);
	if (r < 0) {
		close(fd);
		return r;
	}
	s->fd = fd;
	setup_rs485(s);
	r = sd_event_add_io(s->event, &s->io, fd, EPOLLIN, on_io, s);
	if (r < 0) {
		close(fd);
		s->fd = -1;
		return r;
	}
	/* the loop cannot serve the inverter without this source */
	sd_event_source_set_exit_on_failure(s->io, true);
	sd_event_source_set_description(s->io, "serial");
	return 0;
}

/* the device went away: close, tell the owner, try again later */
static void port_lost(struct serial *s, int error)
{
	log_warning("%s: port lost (%s), reopening with back-off", s->path,
		    error ? strerror(-error) : "hang-up");
	port_close(s);
	s->backoff_usec = SERIAL_BACKOFF_MIN_USEC;
	s->open_warned = false;
	if (s->on_state) {
		s->on_state(s, false, s->userdata);
	}
	schedule_retry(s);
}

/*
 * Write what the tty takes now. The ring may wrap, so at most two write()s
 * per call; EAGAIN leaves the rest to EPOLLOUT, which is only asked for
 * while bytes are queued (an always-on EPOLLOUT would spin the loop).
 */
static void flush_tx(struct serial *s)
{
	while (s->tx_len > 0) {
		size_t chunk = s->tx_len;
		ssize_t w;

		if (s->tx_head + chunk > SERIAL_TX_QUEUE) {
			chunk = SERIAL_TX_QUEUE - s->tx_head; /* up to the end of the ring */
		}
		w = write(s->fd, s->txq + s->tx_head, chunk);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				break;
			}
			port_lost(s, -errno);
			return;
		}
		s->tx_head = (s->tx_head + (size_t)w) % SERIAL_TX_QUEUE;
		s->tx_len -= (size_t)w;
		if ((size_t)w < chunk) {
			break;
		}
	}
	if (s->io) {
		sd_event_source_set_io_events(s->io, s->tx_len ? EPOLLIN | EPOLLOUT : EPOLLIN);
	}
}

/*
 * Read what the tty holds, in bounded rounds, and hand it to ->on_read.
 * Return: bytes read, or -ENOTCONN when the port was lost (->on_state(false)
 * was called) or the owner closed or reopened it from its callback.
 */
static ssize_t read_input(struct serial *s)
{
	int fd = s->fd;
	uint64_t now = 0;
	ssize_t total = 0;

	sd_event_now(s->event, CLOCK_MONOTONIC, &now);
	for (int i = 0; i < SERIAL_READ_ROUNDS; i++) {
		uint8_t buf[SERIAL_READ_CHUNK];
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				break;
			}
			port_lost(s, -errno); /* EIO, ENODEV, ENXIO: the device is gone */
			return -ENOTCONN;
		}
		if (n == 0) {
			/* EOF on a tty: nothing is left to read; HUP (on_io) decides */
			break;
		}
		total += n;
		s->reading++;
		s->on_read(s, buf, (size_t)n, now, s->userdata);
		s->reading--;
		if (s->freed) {
			/* the owner let us go from its callback (e.g. the engine's reopen) */
			if (s->reading == 0) {
				sd_event_unref(s->event);
				free(s);
			}
			return -ENOTCONN;
		}
		if (s->fd != fd) {
			return -ENOTCONN;
		}
	}
	return total;
}

/*
 * Readable, writable or hung up. Device loss is handled here and never
 * returned as an error: a negative return would disable the source (and,
 * with exit-on-failure, stop the daemon) for what is a routine unplug.
 */
static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct serial *s = userdata;

	if ((revents & EPOLLIN) && read_input(s) < 0) {
		return 0; /* lost, or the owner closed or reopened us from its callback */
	}
	if (revents & (EPOLLHUP | EPOLLERR)) {
		port_lost(s, revents & EPOLLERR ? -EIO : 0);
		return 0;
	}
	if (revents & EPOLLOUT) {
		flush_tx(s);
	}
	return 0;
}

/* the back-off timer: try once, double the delay on failure (capped at 30 s) */
static int on_retry(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct serial *s = userdata;
	int r;

	r = port_open(s);
	if (r < 0) {
		if (!s->open_warned) {
			log_warning("%s: cannot open (%s), retrying every %u s at most", s->path,
				    strerror(-r),
				    (unsigned)(SERIAL_BACKOFF_MAX_USEC / USEC_PER_SEC));
			s->open_warned = true;
		} else {
			log_debug("%s: still cannot open (%s)", s->path, strerror(-r));
		}
		s->backoff_usec = s->backoff_usec * 2 > SERIAL_BACKOFF_MAX_USEC
					  ? SERIAL_BACKOFF_MAX_USEC
					  : s->backoff_usec * 2;
		schedule_retry(s);
		return 0;
	}
	log_info("%s: open at %u baud 8N1", s->path, s->baud);
	s->backoff_usec = SERIAL_BACKOFF_MIN_USEC;
	s->open_warned = false;
	if (s->on_state) {
		s->on_state(s, true, s->userdata);
	}
	return 0;
}

/* arm the one-shot reopen timer backoff_usec from now (created on first use) */
static void schedule_retry(struct serial *s)
{
	uint64_t now = 0;
	int r;

	sd_event_now(s->event, CLOCK_MONOTONIC, &now);
	if (!s->retry) {
		r = sd_event_add_time(s->event, &s->retry, CLOCK_MONOTONIC, now + s->backoff_usec,
				      10 * USEC_PER_MSEC, on_retry, s);
		if (r < 0) {
			log_error_errno(r, "%s: cannot arm the reopen timer: %s", s->path,
					strerror(-r));
			return;
		}
		sd_event_source_set_description(s->retry, "serial-retry");
		return;
	}
	sd_event_source_set_time(s->retry, now + s->backoff_usec);
	sd_event_source_set_enabled(s->retry, SD_EVENT_ONESHOT);
}

int serial_new(sd_event *e, const struct serial_config *cfg, serial_read_fn on_read,
	       serial_state_fn on_state, void *userdata, struct serial **ret)
{
	struct serial *s;
	int r;

	if (!serial_baud_supported(cfg->baud)) {
		return log_error_errno(-EINVAL,
				       "%s: baud %u not supported: use 9600, 19200 or "
				       "115200",
				       cfg->path, cfg->baud);
	}
	if (strlen(cfg->path) >= SERIAL_PATH_MAX || cfg->path[0] == '\0') {
		return log_error_errno(-EINVAL, "serial port path empty or too long");
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		return -ENOMEM;
	}
	s->event = sd_event_ref(e);
	snprintf(s->path, sizeof(s->path), "%s", cfg->path);
	s->baud = cfg->baud;
	s->rs485 = cfg->rs485;
	s->on_read = on_read;
	s->on_state = on_state;
	s->userdata = userdata;
	s->fd = -1;
	s->backoff_usec = SERIAL_BACKOFF_MIN_USEC;

	r = port_open(s);
	if (r < 0) {
		if (r != -ENOENT && r != -ENODEV && r != -ENXIO && r != -EBUSY && r != -EACCES &&
		    r != -EIO) {
			/* not a missing device: a tty that refuses our settings, say */
			log_error_errno(r, "%s: cannot set up the port: %s", s->path, strerror(-r));
			serial_free(s);
			return r;
		}
		log_warning("%s: cannot open (%s), retrying in the background", s->path,
			    strerror(-r));
		s->open_warned = true;
		schedule_retry(s);
	} else {
		log_info("%s: open at %u baud 8N1", s->path, s->baud);
	}
	*ret = s;
	return 0;
}

struct serial *serial_free(struct serial *s)
{
	if (!s) {
		return NULL;
	}
	port_close(s);
	s->retry = sd_event_source_disable_unref(s->retry);
	if (s->reading) {
		/* called from ->on_read: read_input() still holds @s, it frees it */
		s->freed = true;
		return NULL;
	}
	sd_event_unref(s->event);
	free(s);
	return NULL;
}

int serial_write(struct serial *s, const uint8_t *buf, size_t n)
{
	if (s->fd < 0) {
		return -ENOTCONN;
	}
	if (n > SERIAL_TX_QUEUE - s->tx_len) {
		return -ENOBUFS;
	}
	for (size_t i = 0; i < n; i++) {
		s->txq[(s->tx_head + s->tx_len + i) % SERIAL_TX_QUEUE] = buf[i];
	}
	s->tx_len += n;
	flush_tx(s);
	return 0;
}

ssize_t serial_read_now(struct serial *s)
{
	if (s->fd < 0) {
		return -ENOTCONN;
	}
	return read_input(s);
}

bool serial_is_open(const struct serial *s)
{
	return s->fd >= 0;
}

uint64_t serial_retry_usec(const struct serial *s)
{
	return s->backoff_usec;
}

const char *serial_path(const struct serial *s)
{
	return s->path;
}
