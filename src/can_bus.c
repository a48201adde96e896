/* SPDX-License-Identifier: MIT */
/*
 * A SocketCAN port that never blocks the loop and never gives up.
 *
 * States of the port (not of the bus):
 *
 *   closed --(interface appears)--> open --(ENODEV: unplugged)--> closed
 *                                   open --(ENETDOWN: ip link set down)--> down
 *                                   down --(IFF_UP again)--> open
 *
 * "closed" retries opening with a back-off from 1 s doubling to 30 s;
 * "down" keeps the socket (the kernel keeps it bound across down/up) and
 * checks the link's flags every second. Each change is logged once.
 *
 * Bus state comes from error frames (CAN_RAW_ERR_FILTER): warning,
 * passive, bus-off, restarted. libsocketcan reads the controller's own
 * state and bit rate where the interface has them (a vcan has neither).
 *
 * Transmit: write() each frame; on ENOBUFS/EAGAIN (the interface queue is
 * full: a 500 kbit/s bus carries ~4000 frames/s, an unplugged bus none)
 * the frame goes to a pending set of at most CAN_BUS_PENDING_MAX frames,
 * one per id, flushed by a 5 ms timer. A newer frame of the same id
 * replaces the pending one: the inverter wants the current value, not a
 * backlog of old ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libsocketcan.h>
#include <linux/can/error.h>
#include <linux/can/netlink.h>
#include <linux/can/raw.h>

#define LOG_MODULE "can"
#include "can_bus.h"
#include "log.h"
#include "macro.h"

#define CAN_BUS_PENDING_MAX 32
#define CAN_BUS_FILTERS_MAX 64
#define CAN_BUS_RX_BATCH 32
#define CAN_BUS_BACKOFF_MIN_USEC (1 * USEC_PER_SEC)
#define CAN_BUS_BACKOFF_MAX_USEC (30 * USEC_PER_SEC)
#define CAN_BUS_FLUSH_USEC (5 * USEC_PER_MSEC)
#define CAN_BUS_WATCH_USEC (1 * USEC_PER_SEC)
#define CAN_BUS_RESTART_MS 100 /* kernel's automatic bus-off restart, with manage_link */

struct can_bus {
	sd_event *event;
	char ifname[IFNAMSIZ];
	char user[32];
	canid_t rx_ids[CAN_BUS_FILTERS_MAX];
	size_t n_rx_ids;
	uint32_t bitrate;
	bool manage_link;

	can_bus_rx_fn on_rx;
	can_bus_state_fn on_state;
	void *userdata;

	int fd;
	sd_event_source *io;
	sd_event_source *retry;	/* reopen (closed) or link watch (down, bus-off) */
	sd_event_source *flush; /* pending transmit */
	uint64_t backoff_usec;
	bool open;		/* socket bound and interface up */
	bool missing_warned;
	enum can_bus_state state;
	uint32_t rxq_drops;	/* the kernel's cumulative counter, last seen */

	struct can_frame pending[CAN_BUS_PENDING_MAX];
	size_t n_pending;

	struct can_bus_stats stats;
	struct ratelimit err_rl;
	struct ratelimit drop_rl;
};

static void schedule(struct can_bus *bus, uint64_t delay_usec);
static void port_close(struct can_bus *bus);

const char *can_bus_state_name(enum can_bus_state state)
{
	switch (state) {
	case CAN_BUS_DOWN:
		return "down";
	case CAN_BUS_ERROR_ACTIVE:
		return "error-active";
	case CAN_BUS_WARNING:
		return "error-warning";
	case CAN_BUS_PASSIVE:
		return "error-passive";
	case CAN_BUS_OFF:
		return "bus-off";
	}
	return "?";
}

int can_error_decode(const struct can_frame *f, struct can_error_info *ret)
{
	canid_t cls;
	size_t len = 0;

	if (!(f->can_id & CAN_ERR_FLAG) || f->len > CAN_MAX_DLEN) {
		return -EBADMSG;
	}
	memset(ret, 0, sizeof(*ret));
	ret->new_state = -1;
	cls = f->can_id & CAN_ERR_MASK;
	/* linux/can/error.h: data[6] tx and data[7] rx error counter */
	if (f->len == CAN_ERR_DLC) {
		ret->tx_errors = f->data[6];
		ret->rx_errors = f->data[7];
	}
#define SAY(...) (len += (size_t)snprintf(ret->text + len, len < sizeof(ret->text) ? sizeof(ret->text) - len : 0, __VA_ARGS__))
	if (cls & CAN_ERR_BUSOFF) {
		ret->new_state = CAN_BUS_OFF;
		SAY("bus-off");
	} else if (cls & CAN_ERR_RESTARTED) {
		ret->new_state = CAN_BUS_ERROR_ACTIVE;
		ret->restarted = true;
		SAY("controller restarted");
	} else if (cls & CAN_ERR_CRTL) {
		uint8_t c = f->data[1];

		if (c & (CAN_ERR_CRTL_RX_PASSIVE | CAN_ERR_CRTL_TX_PASSIVE)) {
			ret->new_state = CAN_BUS_PASSIVE;
			SAY("error passive");
		} else if (c & (CAN_ERR_CRTL_RX_WARNING | CAN_ERR_CRTL_TX_WARNING)) {
			ret->new_state = CAN_BUS_WARNING;
			SAY("error warning");
		} else if (c & CAN_ERR_CRTL_ACTIVE) {
			ret->new_state = CAN_BUS_ERROR_ACTIVE;
			SAY("back to error active");
		}
		if (c & (CAN_ERR_CRTL_RX_OVERFLOW | CAN_ERR_CRTL_TX_OVERFLOW)) {
			ret->rx_overflow = true;
			SAY("%scontroller buffer overflow", len ? ", " : "");
		}
	}
	if (cls & CAN_ERR_ACK) {
		/* nobody acknowledges: alone on the bus, or wrong bit rate */
		SAY("%sno acknowledgement (nobody else on the bus, or a wrong bit rate?)",
		    len ? ", " : "");
	}
	if (cls & CAN_ERR_PROT) {
		SAY("%sprotocol violation", len ? ", " : "");
	}
	if (cls & CAN_ERR_TRX) {
		SAY("%stransceiver error (wiring, termination?)", len ? ", " : "");
	}
	if (cls & CAN_ERR_LOSTARB) {
		SAY("%slost arbitration", len ? ", " : "");
	}
	if (cls & CAN_ERR_TX_TIMEOUT) {
		SAY("%stransmit timeout", len ? ", " : "");
	}
	if (cls & CAN_ERR_BUSERROR) {
		SAY("%sbus error", len ? ", " : "");
	}
	if (len == 0) {
		SAY("error frame 0x%08x", (unsigned)cls);
	}
	if (f->len == CAN_ERR_DLC && (ret->tx_errors || ret->rx_errors)) {
		SAY(" (tx errors %u, rx errors %u)", ret->tx_errors, ret->rx_errors);
	}
#undef SAY
	return 0;
}

static void set_state(struct can_bus *bus, enum can_bus_state state, const char *why)
{
	if (state == bus->state) {
		return;
	}
	if (state == CAN_BUS_OFF) {
		bus->stats.bus_off++;
		log_warning("%s: bus-off: %s; %s", bus->ifname, why,
			    bus->manage_link ? "restarting the controller"
					     : "the link is managed elsewhere: set its restart-ms "
					       "(or manage_link = true)");
	} else if (bus->state == CAN_BUS_OFF || bus->state == CAN_BUS_PASSIVE) {
		log_notice("%s: bus %s again (%s)", bus->ifname, can_bus_state_name(state), why);
	} else if (state == CAN_BUS_PASSIVE || state == CAN_BUS_WARNING) {
		log_warning("%s: bus %s: %s", bus->ifname, can_bus_state_name(state), why);
	}
	bus->state = state;
	if (state == CAN_BUS_OFF && bus->manage_link) {
		schedule(bus, 100 * USEC_PER_MSEC);
	}
}

/*
 * A virtual interface (vcan, vxcan) has no controller: no state, no bit
 * rate, and libsocketcan would print "no link data found" on stderr for
 * each question. Real ones sit under a device (/sys/devices/platform,
 * usb, spi...), virtual ones under /sys/devices/virtual/net.
 */
static bool link_is_virtual(const struct can_bus *bus)
{
	char path[64], real[PATH_MAX];

	snprintf(path, sizeof(path), "/sys/class/net/%s", bus->ifname);
	if (!realpath(path, real)) {
		return true; /* no sysfs entry: nothing libsocketcan could read either */
	}
	return strstr(real, "/virtual/") != NULL;
}

/* libsocketcan: the controller's state and bit rate */
static void link_check(struct can_bus *bus, bool at_open)
{
	struct can_bittiming bt = { 0 };
	int st;

	if (link_is_virtual(bus)) {
		return;
	}
	if (can_get_state(bus->ifname, &st) == 0) {
		switch (st) {
		case CAN_STATE_BUS_OFF:
			set_state(bus, CAN_BUS_OFF, "controller state");
			break;
		case CAN_STATE_ERROR_PASSIVE:
			set_state(bus, CAN_BUS_PASSIVE, "controller state");
			break;
		case CAN_STATE_ERROR_WARNING:
			set_state(bus, CAN_BUS_WARNING, "controller state");
			break;
		default:
			break;
		}
	}
	if (!at_open || bus->bitrate == 0) {
		return;
	}
	if (can_get_bittiming(bus->ifname, &bt) < 0 || bt.bitrate == 0) {
		log_debug("%s: no bit rate to check (virtual interface?)", bus->ifname);
		return;
	}
	if (bt.bitrate != bus->bitrate) {
		log_warning("%s runs at %u bit/s, %s expects %u%s", bus->ifname, bt.bitrate,
			    bus->user, bus->bitrate,
			    bus->manage_link ? "" : " (set it, or manage_link = true)");
	}
}

/* manage_link: bit rate, restart-ms, up. A vcan takes only "up". */
static void link_setup(struct can_bus *bus)
{
	struct can_bittiming bt = { 0 };
	__u32 restart_ms = 0;
	bool rate_ok, restart_ok;

	if (!bus->manage_link) {
		return;
	}
	if (link_is_virtual(bus)) {
		/* only "up" applies; libsocketcan does that through netlink */
		can_do_start(bus->ifname);
		return;
	}
	/* both can only change while the link is down: stop it only if needed */
	rate_ok = !bus->bitrate ||
		  (can_get_bittiming(bus->ifname, &bt) == 0 && bt.bitrate == bus->bitrate);
	restart_ok = can_get_restart_ms(bus->ifname, &restart_ms) == 0 && restart_ms > 0;
	if (!rate_ok || !restart_ok) {
		can_do_stop(bus->ifname);
		if (!rate_ok) {
			if (can_set_bitrate(bus->ifname, bus->bitrate) < 0) {
				log_warning("%s: cannot set the bit rate to %u: %s", bus->ifname,
					    bus->bitrate, strerror(errno));
			} else {
				log_info("%s: bit rate set to %u", bus->ifname, bus->bitrate);
			}
		}
		/* the kernel then restarts the controller after bus-off by itself */
		if (!restart_ok && can_set_restart_ms(bus->ifname, CAN_BUS_RESTART_MS) < 0) {
			log_debug("%s: cannot set restart-ms: %s", bus->ifname, strerror(errno));
		}
	}
	if (can_do_start(bus->ifname) < 0) {
		log_debug("%s: libsocketcan cannot start the link: %s", bus->ifname, strerror(errno));
	}
}

static bool link_is_up(struct can_bus *bus)
{
	struct ifreq ifr = { 0 };

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bus->ifname);
	if (bus->fd < 0 || ioctl(bus->fd, SIOCGIFFLAGS, &ifr) < 0) {
		return false;
	}
	return (ifr.ifr_flags & IFF_UP) != 0;
}

static void report_open(struct can_bus *bus, bool open)
{
	if (bus->open == open) {
		return;
	}
	bus->open = open;
	if (open) {
		bus->state = CAN_BUS_ERROR_ACTIVE;
	} else {
		bus->state = CAN_BUS_DOWN;
		/* what was pending is stale by the time the link is back */
		bus->stats.tx_dropped += bus->n_pending;
		bus->n_pending = 0;
	}
	if (bus->on_state) {
		bus->on_state(bus, open, bus->userdata);
	}
}

/* the socket reported an error: unplugged (ENODEV) or taken down (ENETDOWN) */
static void port_lost(struct can_bus *bus, int err)
{
	if (err == ENETDOWN) {
		if (bus->open) {
			log_warning("%s is down; waiting for it to come up", bus->ifname);
			bus->missing_warned = true;
		}
		report_open(bus, false);
		schedule(bus, CAN_BUS_WATCH_USEC);
		return;
	}
	log_warning("%s lost (%s); reopening with back-off", bus->ifname, strerror(err));
	port_close(bus);
	report_open(bus, false);
	bus->backoff_usec = CAN_BUS_BACKOFF_MIN_USEC;
	schedule(bus, bus->backoff_usec);
}

static void on_frame(struct can_bus *bus, const struct can_frame *f, uint64_t now)
{
	struct can_error_info ei;

	if (f->can_id & CAN_ERR_FLAG) {
		bus->stats.error_frames++;
		if (can_error_decode(f, &ei) < 0) {
			return;
		}
		if (ei.new_state >= 0) {
			set_state(bus, (enum can_bus_state)ei.new_state, ei.text);
		} else {
			log_ratelimit(&bus->err_rl, now, LOG_WARNING, "%s: %s", bus->ifname, ei.text);
		}
		return;
	}
	if (f->can_id & CAN_RTR_FLAG) {
		return;
	}
	bus->stats.rx_frames++;
	if (bus->on_rx) {
		bus->on_rx(bus, f, now, bus->userdata);
	}
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct can_bus *bus = userdata;
	uint64_t now = 0;

	sd_event_now(bus->event, CLOCK_MONOTONIC, &now);
	if (revents & EPOLLERR) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err) {
			port_lost(bus, err);
			return 0;
		}
	}
	/*
	 * One recvmmsg() per wake-up takes what is queued, up to a batch:
	 * fewer system calls under load, and a flood cannot starve the
	 * timers (the level-triggered watch calls again for the rest).
	 */
	struct can_frame f[CAN_BUS_RX_BATCH];
	char ctrl[CAN_BUS_RX_BATCH][CMSG_SPACE(sizeof(uint32_t))];
	struct iovec iov[CAN_BUS_RX_BATCH];
	struct mmsghdr mm[CAN_BUS_RX_BATCH];
	int n;

	for (int i = 0; i < CAN_BUS_RX_BATCH; i++) {
		iov[i] = (struct iovec){ .iov_base = &f[i], .iov_len = sizeof(f[i]) };
		mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1,
						       .msg_control = ctrl[i],
						       .msg_controllen = sizeof(ctrl[i]) } };
	}
	n = recvmmsg(fd, mm, CAN_BUS_RX_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR) {
			port_lost(bus, errno);
		}
		return 0;
	}
	for (int i = 0; i < n; i++) {
		struct msghdr *msg = &mm[i].msg_hdr;

		if (mm[i].msg_len != sizeof(f[i])) {
			continue; /* a CAN FD frame cannot come on a classic socket; ignore */
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
				uint32_t drops;

				memcpy(&drops, CMSG_DATA(c), sizeof(drops));
				if (drops != bus->rxq_drops) {
					bus->stats.rx_overflows += (uint32_t)(drops - bus->rxq_drops);
					log_ratelimit(&bus->drop_rl, now, LOG_WARNING,
						      "%s: the kernel dropped %u received frames so far "
						      "(the loop did not keep up)",
						      bus->ifname, drops);
					bus->rxq_drops = drops;
				}
			}
		}
		on_frame(bus, &f[i], now);
		if (!bus->io) {
			break; /* the callback closed the port */
		}
	}
	return 0;
}

static void port_close(struct can_bus *bus)
{
	bus->io = sd_event_source_disable_unref(bus->io);
	if (bus->fd >= 0) {
		close(bus->fd);
		bus->fd = -1;
	}
}

static int port_open(struct can_bus *bus)
{
	struct can_filter filters[CAN_BUS_FILTERS_MAX];
	struct sockaddr_can addr = { .can_family = AF_CAN };
	can_err_mask_t err_mask = CAN_ERR_MASK;
	unsigned ifindex;
	int one = 1, fd, r;

	ifindex = if_nametoindex(bus->ifname);
	if (ifindex == 0) {
		return -ENODEV;
	}
	link_setup(bus);
	fd = socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW);
	if (fd < 0) {
		return -errno;
	}
	for (size_t i = 0; i < bus->n_rx_ids; i++) {
		filters[i].can_id = bus->rx_ids[i];
		filters[i].can_mask = CAN_SFF_MASK | CAN_EFF_FLAG | CAN_RTR_FLAG;
	}
	/* zero filters: no data frames at all (an output that expects no answer) */
	if (setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FILTER, bus->n_rx_ids ? filters : NULL,
		       (socklen_t)(bus->n_rx_ids * sizeof(filters[0]))) < 0 ||
	    setsockopt(fd, SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &err_mask, sizeof(err_mask)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	addr.can_ifindex = (int)ifindex;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = sd_event_add_io(bus->event, &bus->io, fd, EPOLLIN, on_io, bus);
	if (r < 0) {
		close(fd);
		return r;
	}
	sd_event_source_set_description(bus->io, "can-io");
	bus->fd = fd;
	bus->rxq_drops = 0;
	return 0;
}

/* the retry timer: reopen (closed), watch the link (down, bus-off) */
static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct can_bus *bus = userdata;
	int r;

	if (bus->fd < 0) {
		r = port_open(bus);
		if (r < 0) {
			if (!bus->missing_warned) {
				log_warning("%s: cannot open (%s); retrying every %u s at most",
					    bus->ifname, strerror(-r),
					    (unsigned)(CAN_BUS_BACKOFF_MAX_USEC / USEC_PER_SEC));
				bus->missing_warned = true;
			}
			bus->backoff_usec = MIN(bus->backoff_usec * 2, CAN_BUS_BACKOFF_MAX_USEC);
			schedule(bus, bus->backoff_usec);
			return 0;
		}
	}
	if (!link_is_up(bus)) {
		if (!bus->missing_warned) {
			log_warning("%s is down; waiting for it to come up", bus->ifname);
			bus->missing_warned = true;
		}
		schedule(bus, CAN_BUS_WATCH_USEC);
		return 0;
	}
	if (!bus->open) {
		log_notice("%s is %s for %s", bus->ifname,
			   bus->missing_warned ? "back" : "open", bus->user);
		bus->missing_warned = false;
		bus->backoff_usec = CAN_BUS_BACKOFF_MIN_USEC;
		report_open(bus, true);
		link_check(bus, true);
		return 0;
	}
	if (bus->state == CAN_BUS_OFF && bus->manage_link) {
		/* restart-ms normally does this in the kernel; this is the fallback */
		if (can_do_restart(bus->ifname) < 0) {
			log_debug("%s: restart: %s", bus->ifname, strerror(errno));
		}
		bus->backoff_usec = MIN(bus->backoff_usec * 2, CAN_BUS_BACKOFF_MAX_USEC);
		schedule(bus, bus->backoff_usec);
	}
	return 0;
}

static void schedule(struct can_bus *bus, uint64_t delay_usec)
{
	uint64_t now = 0;
	int r;

	sd_event_now(bus->event, CLOCK_MONOTONIC, &now);
	if (!bus->retry) {
		r = sd_event_add_time(bus->event, &bus->retry, CLOCK_MONOTONIC, now + delay_usec,
				      10 * USEC_PER_MSEC, on_retry, bus);
		if (r < 0) {
			log_error_errno(r, "%s: cannot arm the retry timer: %s", bus->ifname,
					strerror(-r));
			return;
		}
		sd_event_source_set_description(bus->retry, "can-retry");
		return;
	}
	sd_event_source_set_time(bus->retry, now + delay_usec);
	sd_event_source_set_enabled(bus->retry, SD_EVENT_ONESHOT);
}

/* keep @f until the queue takes it: one copy per id, the newest */
static void pend(struct can_bus *bus, const struct can_frame *f)
{
	for (size_t i = 0; i < bus->n_pending; i++) {
		if (bus->pending[i].can_id == f->can_id) {
			bus->pending[i] = *f;
			bus->stats.tx_replaced++;
			return;
		}
	}
	if (bus->n_pending == CAN_BUS_PENDING_MAX) {
		/* full: the oldest goes */
		memmove(bus->pending, bus->pending + 1, sizeof(bus->pending[0]) * (bus->n_pending - 1));
		bus->n_pending--;
		bus->stats.tx_dropped++;
	}
	bus->pending[bus->n_pending++] = *f;
}

/* Write one frame. Return: 1 written, 0 the queue is full, <0 the port failed. */
static int write_one(struct can_bus *bus, const struct can_frame *f)
{
	ssize_t n = write(bus->fd, f, sizeof(*f));

	if (n == (ssize_t)sizeof(*f)) {
		bus->stats.tx_frames++;
		return 1;
	}
	if (n < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)) {
		return 0;
	}
	return n < 0 ? -errno : -EIO;
}

static int flush_pending(struct can_bus *bus)
{
	size_t done = 0;
	int r = 0;

	while (done < bus->n_pending) {
		r = write_one(bus, &bus->pending[done]);
		if (r <= 0) {
			break;
		}
		done++;
	}
	memmove(bus->pending, bus->pending + done, sizeof(bus->pending[0]) * (bus->n_pending - done));
	bus->n_pending -= done;
	return r < 0 ? r : 0;
}

static int on_flush(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct can_bus *bus = userdata;
	int r;

	if (!bus->open) {
		return 0;
	}
	r = flush_pending(bus);
	if (r < 0) {
		port_lost(bus, -r);
		return 0;
	}
	if (bus->n_pending) {
		sd_event_source_set_time(s, usec + CAN_BUS_FLUSH_USEC);
		sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	}
	return 0;
}

static void arm_flush(struct can_bus *bus)
{
	uint64_t now = 0;

	sd_event_now(bus->event, CLOCK_MONOTONIC, &now);
	if (!bus->flush) {
		if (sd_event_add_time(bus->event, &bus->flush, CLOCK_MONOTONIC,
				      now + CAN_BUS_FLUSH_USEC, USEC_PER_MSEC, on_flush, bus) >= 0) {
			sd_event_source_set_description(bus->flush, "can-flush");
		}
		return;
	}
	if (sd_event_source_get_enabled(bus->flush, NULL) == 0) {
		sd_event_source_set_time(bus->flush, now + CAN_BUS_FLUSH_USEC);
		sd_event_source_set_enabled(bus->flush, SD_EVENT_ONESHOT);
	}
}

int can_bus_send(struct can_bus *bus, const struct can_frame *frames, size_t n)
{
	int r;

	if (!bus->open) {
		bus->stats.tx_dropped += n;
		return -ENOTCONN;
	}
	/* the older pending frames go first, so the order of a set is kept */
	r = flush_pending(bus);
	for (size_t i = 0; i < n; i++) {
		if (r == 0 && bus->n_pending == 0) {
			r = write_one(bus, &frames[i]);
			if (r > 0) {
				r = 0;
				continue;
			}
			if (r < 0) {
				break;
			}
		}
		pend(bus, &frames[i]);
	}
	if (r < 0) {
		port_lost(bus, -r);
		return r;
	}
	if (bus->n_pending) {
		arm_flush(bus);
	}
	return (int)n;
}

int can_bus_new(sd_event *e, const struct can_bus_config *cfg, can_bus_rx_fn on_rx,
		can_bus_state_fn on_state, void *userdata, struct can_bus **ret)
{
	struct can_bus *bus;

	if (!cfg->ifname || !cfg->ifname[0] || strlen(cfg->ifname) >= IFNAMSIZ ||
	    strchr(cfg->ifname, '/') || cfg->n_rx_ids > CAN_BUS_FILTERS_MAX) {
		return -EINVAL;
	}
	bus = calloc(1, sizeof(*bus));
	if (!bus) {
		return -ENOMEM;
	}
	bus->event = sd_event_ref(e);
	snprintf(bus->ifname, sizeof(bus->ifname), "%s", cfg->ifname);
	snprintf(bus->user, sizeof(bus->user), "%s", cfg->user ? cfg->user : "bmsbridge");
	if (cfg->n_rx_ids) {
		memcpy(bus->rx_ids, cfg->rx_ids, cfg->n_rx_ids * sizeof(canid_t));
	}
	bus->n_rx_ids = cfg->n_rx_ids;
	bus->bitrate = cfg->bitrate;
	bus->manage_link = cfg->manage_link;
	bus->on_rx = on_rx;
	bus->on_state = on_state;
	bus->userdata = userdata;
	bus->fd = -1;
	bus->state = CAN_BUS_DOWN;
	bus->backoff_usec = CAN_BUS_BACKOFF_MIN_USEC;
	bus->err_rl = (struct ratelimit)RATELIMIT_INIT(60 * USEC_PER_SEC, 5);
	bus->drop_rl = (struct ratelimit)RATELIMIT_INIT(60 * USEC_PER_SEC, 3);
	*ret = bus;
	/* the first attempt at once, from the loop: the caller's state is set up by then */
	schedule(bus, 0);
	return 0;
}

struct can_bus *can_bus_free(struct can_bus *bus)
{
	if (!bus) {
		return NULL;
	}
	port_close(bus);
	sd_event_source_disable_unref(bus->retry);
	sd_event_source_disable_unref(bus->flush);
	sd_event_unref(bus->event);
	free(bus);
	return NULL;
}

bool can_bus_is_open(const struct can_bus *bus)
{
	return bus->open;
}

enum can_bus_state can_bus_get_state(const struct can_bus *bus)
{
	return bus->state;
}

const struct can_bus_stats *can_bus_get_stats(const struct can_bus *bus)
{
	return &bus->stats;
}

void can_bus_status(const struct can_bus *bus, char *buf, size_t n)
{
	snprintf(buf, n, "%s %s, %llu tx, %llu rx, %llu dropped", bus->ifname,
		 can_bus_state_name(bus->state), (unsigned long long)bus->stats.tx_frames,
		 (unsigned long long)bus->stats.rx_frames,
		 (unsigned long long)(bus->stats.tx_dropped + bus->stats.rx_overflows));
}
