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
 * Links are followed over rtnetlink (NETLINK_ROUTE, group RTMGRP_LINK, on
 * the loop): RTM_NEWLINK for our name with IFF_UP opens the port at once,
 * without IFF_UP takes it down (and, with manage_link, brings the link up
 * again), RTM_DELLINK closes it. A CAN interface back after 40 s used to
 * wait for the next back-off step (21.6 s later); now it is noticed in the
 * same loop iteration. The retry timer stays as a safety net: back-off
 * from 1 s doubling to 30 s while closed, and the link's flags every 30 s
 * while down (every second if the netlink socket could not be opened).
 * "down" keeps the socket (the kernel keeps it bound across down/up).
 * Each change is logged once.
 *
 * Bus state comes from error frames (CAN_RAW_ERR_FILTER): warning,
 * passive, bus-off, restarted. libsocketcan reads the controller's own
 * state and bit rate where the interface has them (a vcan has neither).
 * State changes are logged at most CAN_BUS_STATE_LOG_BURST times per
 * CAN_BUS_STATE_LOG_USEC; a storm beyond that (a flapping bus-off gave
 * 4,000 lines in 0.8 s) is summed up in one line at the end of the window
 * with its counts and the state it ended in.
 *
 * Transmit: write() each frame; on ENOBUFS/EAGAIN (the interface queue is
 * full: a 500 kbit/s bus carries ~4000 frames/s, an unplugged bus none)
 * the frame goes to a pending set of at most CAN_BUS_PENDING_MAX frames,
 * one per id, flushed by a 5 ms timer. A newer frame of the same id
 * replaces the pending one: the inverter wants the current value, not a
 * backlog of old ones. A parked frame lives at most pending_max_age_usec
 * (the owner sets one protocol period, 1 s: a newer set is due by then,
 * and it is far below any stale timeout); it is dropped, not sent, once
 * older, once the owner's gate says no (safety mode STOP), and while the
 * bus is off. So a queue held for 12 s (nobody acknowledges) releases
 * nothing old when it drains. Frames the kernel has already taken (its
 * qdisc, the controller's mailboxes) cannot be recalled one by one: the
 * port reads how much the kernel holds (SO_MEMINFO); held longer than the
 * age limit, nothing more is written into it, and with manage_link the
 * link is taken down and up, which empties it. On bus-off the kernel
 * drops them itself (carrier off resets the qdisc).
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
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>

#define LOG_MODULE "can_bus"
#include "can_bus.h"
#include "log.h"
#include "macro.h"

/*
 * One per id; a Daly CAN input asks 6 ids of up to 15 boards at once (90
 * distinct ids, src/input_can.c), all of which must fit when the kernel's
 * queue (txqueuelen 10 on a CAN interface) refuses the burst.
 */
#define CAN_BUS_PENDING_MAX 96
#define CAN_BUS_FILTERS_MAX 64
#define CAN_BUS_RX_BATCH 32
/*
 * The receive queue asked for (the kernel doubles it for its bookkeeping).
 * Every frame lost in bench/can-flood was a kernel receive-queue drop at
 * the default size (net.core.rmem_default, 208 KiB): a CAN frame costs a
 * whole sk_buff there (~0.7-1 KiB of truesize), so ~200-300 frames, well
 * under a tenth of a second at the bus limit (3,700-4,500 frames/s at
 * 500 kbit/s) of a loop that is busy elsewhere. 1 MiB (2 MiB accounted)
 * holds ~2,000 frames, about half a second at the bus limit.
 */
#define CAN_BUS_RCVBUF_BYTES (1024 * 1024)
#define CAN_BUS_BACKOFF_MIN_USEC (1 * USEC_PER_SEC)
#define CAN_BUS_BACKOFF_MAX_USEC (30 * USEC_PER_SEC)
#define CAN_BUS_FLUSH_USEC (5 * USEC_PER_MSEC)
#define CAN_BUS_WATCH_USEC (1 * USEC_PER_SEC)	/* link flags, without netlink */
#define CAN_BUS_NL_WATCH_USEC (30 * USEC_PER_SEC) /* the same, as a safety net */
#define CAN_BUS_RESTART_MS 100 /* kernel's automatic bus-off restart, with manage_link */
#define CAN_BUS_STATE_LOG_USEC (10 * USEC_PER_SEC)
#define CAN_BUS_STATE_LOG_BURST 4

/* the wiring hint of a bus in trouble (bmsbridge-troubleshooting(7), "CAN wiring") */
#define CAN_WIRING_HINT                                                                       \
	"check termination (120 ohm at both ends: 60 ohm between CAN-H and CAN-L, power "     \
	"off), the bit rate (500 kbit/s), a crossed or wrong cable (CAN-H/CAN-L on the RJ45 " \
	"pins of the device's manual; Victron: pins 7 and 8)"

struct can_bus_pending {
	struct can_frame frame;
	uint64_t queued_usec;
};

struct can_bus {
	sd_event *event;
	char ifname[IFNAMSIZ];
	char user[32];
	canid_t rx_ids[CAN_BUS_FILTERS_MAX];
	size_t n_rx_ids;
	bool rx_extended;
	canid_t rx_mask;
	uint32_t bitrate;
	bool manage_link;
	uint64_t pending_max_age_usec;
	can_bus_gate_fn may_send;

	can_bus_rx_fn on_rx;
	can_bus_state_fn on_state;
	void *userdata;

	int fd;
	sd_event_source *io;
	int nl_fd;		/* rtnetlink, RTMGRP_LINK; -1: polling only */
	sd_event_source *nl_io;
	sd_event_source *state_log; /* the end of a state-log window */
	sd_event_source *retry;	/* reopen (closed) or link watch (down, bus-off) */
	sd_event_source *flush; /* pending transmit */
	uint64_t backoff_usec;
	bool open;		/* socket bound and interface up */
	bool missing_warned;
	enum can_bus_state state;
	uint32_t rxq_drops;	/* the kernel's cumulative counter, last seen */

	struct can_bus_pending pending[CAN_BUS_PENDING_MAX];
	size_t n_pending;

	/* the kernel's own queue (qdisc, controller): frames written, not yet sent */
	uint64_t kq_empty_usec;	/* last seen empty */
	bool kq_stuck;		/* not empty for longer than the age limit */
	bool bus_fault_said;	/* can-bus-error raised, not yet cleared (error-passive / bus-off) */
	uint64_t quiet_until_usec; /* our own flush (down/up): not logged as an outage */

	/* state-change logging: a window, its budget, what went unsaid */
	uint64_t state_log_usec;	/* the window's start; 0: none open */
	unsigned state_logged;		/* lines in this window */
	unsigned state_unlogged;	/* changes not logged in this window */
	unsigned window_bus_off;	/* bus-offs in this window */

	struct can_bus_stats stats;
	struct ratelimit err_rl;
	struct ratelimit drop_rl;
	struct ratelimit stale_rl;
};

static void schedule(struct can_bus *bus, uint64_t delay_usec);
static void port_close(struct can_bus *bus);

static uint64_t bus_now(const struct can_bus *bus)
{
	uint64_t now = 0;

	sd_event_now(bus->event, CLOCK_MONOTONIC, &now);
	return now;
}

/* drop the whole pending set, counted in @counter */
static void drop_pending(struct can_bus *bus, uint64_t *counter, const char *why)
{
	if (bus->n_pending == 0) {
		return;
	}
	*counter += bus->n_pending;
	log_ratelimit(&bus->stale_rl, bus_now(bus), LOG_WARNING,
		      "%s: %zu parked frame%s dropped, not sent late: %s (%llu dropped so far)",
		      bus->ifname, bus->n_pending, bus->n_pending == 1 ? "" : "s", why,
		      (unsigned long long)(bus->stats.tx_dropped + bus->stats.tx_stale));
	bus->n_pending = 0;
}

/* the end of a state-log window: say what went unsaid, once */
static int on_state_log(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct can_bus *bus = userdata;

	if (bus->state_unlogged) {
		log_warning("%s: bus-off entered %u times in %.1f s (%u state changes not logged); "
			    "now %s, %llu bus-offs in all",
			    bus->ifname, bus->window_bus_off,
			    (double)(usec - bus->state_log_usec) / USEC_PER_SEC,
			    bus->state_unlogged,
			    can_bus_state_name(bus->state), (unsigned long long)bus->stats.bus_off);
	}
	bus->state_log_usec = 0;
	bus->state_logged = bus->state_unlogged = bus->window_bus_off = 0;
	return 0;
}

/* may a state change be logged now? Opens a window and its summary timer */
static bool state_log_allowed(struct can_bus *bus)
{
	uint64_t now = bus_now(bus);

	if (bus->state_log_usec == 0) {
		bus->state_log_usec = now ? now : 1;
		bus->state_logged = bus->state_unlogged = bus->window_bus_off = 0;
		if (!bus->state_log) {
			if (sd_event_add_time(bus->event, &bus->state_log, CLOCK_MONOTONIC,
					      now + CAN_BUS_STATE_LOG_USEC, 100 * USEC_PER_MSEC,
					      on_state_log, bus) >= 0) {
				sd_event_source_set_description(bus->state_log, "can-state-log");
			}
		} else {
			sd_event_source_set_time(bus->state_log, now + CAN_BUS_STATE_LOG_USEC);
			sd_event_source_set_enabled(bus->state_log, SD_EVENT_ONESHOT);
		}
	}
	if (bus->state_logged < CAN_BUS_STATE_LOG_BURST) {
		bus->state_logged++;
		return true;
	}
	bus->state_unlogged++;
	return false;
}

static void set_state(struct can_bus *bus, enum can_bus_state state, const char *why)
{
	enum can_bus_state from = bus->state;
	bool say;

	if (state == bus->state) {
		return;
	}
	bus->state = state;
	say = state == CAN_BUS_OFF || state == CAN_BUS_PASSIVE || state == CAN_BUS_WARNING ||
	      from == CAN_BUS_OFF || from == CAN_BUS_PASSIVE;
	if (state == CAN_BUS_OFF) {
		bus->stats.bus_off++;
		if (say && state_log_allowed(bus)) {
			const char *act = bus->manage_link
						  ? "restarting the controller"
						  : "the link is managed elsewhere: set its restart-ms "
						    "(or manage_link = true)";

			/* the first of an episode with its hint and fields, then plain */
			if (!bus->bus_fault_said) {
				log_fault("can-bus-error", CAN_WIRING_HINT, "%s: bus-off: %s; %s",
					  bus->ifname, why, act);
			} else {
				log_warning("%s: bus-off: %s; %s", bus->ifname, why, act);
			}
		}
		bus->bus_fault_said = true;
		bus->window_bus_off++;
		/* nothing parked goes out after the bus comes back: it is old by then */
		drop_pending(bus, &bus->stats.tx_dropped, "the bus is off");
		/* watch the controller (restart with manage_link, its state otherwise) */
		schedule(bus, 100 * USEC_PER_MSEC);
	} else if (from == CAN_BUS_OFF || from == CAN_BUS_PASSIVE) {
		bool clear = bus->bus_fault_said && state != CAN_BUS_PASSIVE;

		if (clear) {
			bus->bus_fault_said = false;
		}
		if (state_log_allowed(bus)) {
			if (clear) {
				log_fault_cleared("can-bus-error", "%s: bus %s again (%s)",
						  bus->ifname, can_bus_state_name(state), why);
			} else {
				log_notice("%s: bus %s again (%s)", bus->ifname,
					   can_bus_state_name(state), why);
			}
		}
	} else if (say && state == CAN_BUS_PASSIVE && !bus->bus_fault_said) {
		/* error-passive: our frames are not acknowledged, or the bus is noisy */
		bus->bus_fault_said = true;
		if (state_log_allowed(bus)) {
			log_fault("can-bus-error", CAN_WIRING_HINT, "%s: bus %s: %s", bus->ifname,
				  can_bus_state_name(state), why);
		}
	} else if (say && state_log_allowed(bus)) {
		log_warning("%s: bus %s: %s", bus->ifname, can_bus_state_name(state), why);
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
		case CAN_STATE_ERROR_ACTIVE:
			/* the restart's error frame may have been lost: the controller knows */
			if (bus->state == CAN_BUS_OFF || bus->state == CAN_BUS_PASSIVE) {
				set_state(bus, CAN_BUS_ERROR_ACTIVE, "controller state");
			}
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
		drop_pending(bus, &bus->stats.tx_dropped, "the port is down");
	}
	if (bus->on_state) {
		bus->on_state(bus, open, bus->userdata);
	}
}

/* how often the link's flags are read while it is down */
static uint64_t watch_usec(const struct can_bus *bus)
{
	return bus->nl_fd >= 0 ? CAN_BUS_NL_WATCH_USEC : CAN_BUS_WATCH_USEC;
}

/*
 * The socket or rtnetlink reported the interface unplugged (ENODEV) or
 * taken down (ENETDOWN). Both may say so for one event: the second call
 * changes nothing.
 */
static void port_lost(struct can_bus *bus, int err)
{
	if (err == ENETDOWN) {
		bool was_open = bus->open;

		if (was_open && bus_now(bus) >= bus->quiet_until_usec) {
			log_warning("%s is down; waiting for it to come up", bus->ifname);
			bus->missing_warned = true;
		}
		report_open(bus, false);
		if (was_open && bus->manage_link && bus_now(bus) >= bus->quiet_until_usec) {
			/* bmsbridged(8): manage_link brings the link up, also at run time */
			log_notice("%s: bringing the link up again (manage_link)", bus->ifname);
			link_setup(bus);
		}
		/* the socket's error may come after the link is up again: then look now */
		schedule(bus, link_is_up(bus) ? 0 : watch_usec(bus));
		return;
	}
	if (bus->fd < 0) {
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

/*
 * A larger receive queue (CAN_BUS_RCVBUF_BYTES). SO_RCVBUFFORCE passes
 * net.core.rmem_max but needs CAP_NET_ADMIN; without it SO_RCVBUF gets
 * what rmem_max allows. Neither failing is fatal: the default queue works,
 * it only drops sooner under a flood (counted by SO_RXQ_OVFL).
 */
static void rcvbuf_raise(int fd)
{
	int bytes = CAN_BUS_RCVBUF_BYTES;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)) < 0) {
		log_debug("SO_RCVBUF %d: %s; the default receive queue stays", bytes,
			  strerror(errno));
	}
}

static int port_open(struct can_bus *bus)
{
	struct can_filter filters[2 * CAN_BUS_FILTERS_MAX];
	size_t n_filters = 0;
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
		/* the 11-bit id, data frames only */
		if (!(bus->rx_ids[i] & CAN_EFF_FLAG)) {
			filters[n_filters++] = (struct can_filter){
				.can_id = bus->rx_ids[i],
				.can_mask = CAN_SFF_MASK | CAN_EFF_FLAG | CAN_RTR_FLAG,
			};
		}
		/*
		 * and the same number as a 29-bit id (Schneider XW Pro acks 0x305
		 * so), or only that where the id says 29-bit (Daly CAN)
		 */
		if (bus->rx_extended || (bus->rx_ids[i] & CAN_EFF_FLAG)) {
			/* rx_mask: the bits compared (Daly CAN: not the sender's address) */
			canid_t mask = bus->rx_mask ? bus->rx_mask & CAN_EFF_MASK : CAN_EFF_MASK;

			filters[n_filters++] = (struct can_filter){
				.can_id = (bus->rx_ids[i] & mask) | CAN_EFF_FLAG,
				.can_mask = mask | CAN_EFF_FLAG | CAN_RTR_FLAG,
			};
		}
	}
	/* zero filters: no data frames at all (an output that expects no answer) */
	if (setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FILTER, n_filters ? filters : NULL,
		       (socklen_t)(n_filters * sizeof(filters[0]))) < 0 ||
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
	rcvbuf_raise(fd);
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
		if (bus->manage_link) {
			link_setup(bus);
		}
		schedule(bus, watch_usec(bus));
		return 0;
	}
	if (!bus->open) {
		if (bus_now(bus) >= bus->quiet_until_usec) {
			log_notice("%s is %s for %s", bus->ifname,
				   bus->missing_warned ? "back" : "open", bus->user);
		}
		bus->missing_warned = false;
		bus->backoff_usec = CAN_BUS_BACKOFF_MIN_USEC;
		report_open(bus, true);
		link_check(bus, true);
		return 0;
	}
	if (bus->state == CAN_BUS_OFF) {
		/* the controller may be back without its error frame reaching us */
		link_check(bus, false);
	}
	if (bus->state == CAN_BUS_OFF) {
		/* restart-ms normally does this in the kernel; this is the fallback */
		if (bus->manage_link && can_do_restart(bus->ifname) < 0) {
			log_debug("%s: restart: %s", bus->ifname, strerror(errno));
		}
		bus->backoff_usec = MIN(bus->backoff_usec * 2, CAN_BUS_BACKOFF_MAX_USEC);
		schedule(bus, bus->backoff_usec);
	}
	return 0;
}

/* one RTM_NEWLINK / RTM_DELLINK for our interface */
static void link_event(struct can_bus *bus, bool exists, unsigned flags)
{
	if (!exists) {
		port_lost(bus, ENODEV);
		return;
	}
	if (!(flags & IFF_UP)) {
		if (bus->open) {
			port_lost(bus, ENETDOWN);
		} else if (bus->fd < 0) {
			schedule(bus, 0); /* re-created, still down: open it (and bring it up) */
		}
		return;
	}
	if (!bus->open) {
		schedule(bus, 0); /* back: open and report it in this loop iteration */
	}
}

static int on_netlink(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct can_bus *bus = userdata;
	struct can_link_event ev[16];
	union {
		struct nlmsghdr h;
		char buf[16384];
	} u;

	for (;;) {
		ssize_t n = recv(fd, &u, sizeof(u), MSG_DONTWAIT);
		int k;

		if (n < 0) {
			if (errno == ENOBUFS) {
				/* the kernel dropped events: look at the link now */
				schedule(bus, 0);
				continue;
			}
			return 0; /* EAGAIN, EINTR */
		}
		k = can_link_decode(&u, (size_t)n, bus->ifname, ev, ARRAY_SIZE(ev));
		if (k < 0) {
			/* the kernel sent it: look at the link instead of guessing */
			log_debug("%s: malformed rtnetlink message (%zd bytes)", bus->ifname, n);
			schedule(bus, 0);
			continue;
		}
		for (int i = 0; i < k; i++) {
			log_debug("%s: rtnetlink: %s, %s", bus->ifname,
				  ev[i].exists ? "link" : "link deleted", ev[i].up ? "up" : "down");
			link_event(bus, ev[i].exists, ev[i].up ? IFF_UP : 0);
		}
	}
}

/* rtnetlink link events; without them the port polls (as before) */
static void netlink_open(struct can_bus *bus)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	int fd, r;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0) {
		log_warning("%s: no rtnetlink (%s): polling the link instead", bus->ifname,
			    strerror(errno));
		return;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		log_warning("%s: cannot follow links over rtnetlink (%s): polling instead",
			    bus->ifname, strerror(-r));
		return;
	}
	r = sd_event_add_io(bus->event, &bus->nl_io, fd, EPOLLIN, on_netlink, bus);
	if (r < 0) {
		close(fd);
		log_warning("%s: cannot watch rtnetlink (%s): polling instead", bus->ifname,
			    strerror(-r));
		return;
	}
	sd_event_source_set_description(bus->nl_io, "can-netlink");
	bus->nl_fd = fd;
}

static void schedule(struct can_bus *bus, uint64_t delay_usec)
{
	uint64_t now = 0, when = 0;
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
	/* one timer for every reason: a sooner attempt already armed stays */
	if (sd_event_source_get_enabled(bus->retry, NULL) > 0 &&
	    sd_event_source_get_time(bus->retry, &when) >= 0 && when <= now + delay_usec) {
		return;
	}
	sd_event_source_set_time(bus->retry, now + delay_usec);
	sd_event_source_set_enabled(bus->retry, SD_EVENT_ONESHOT);
}

/* keep @f until the queue takes it: one copy per id, the newest */
static void pend(struct can_bus *bus, const struct can_frame *f, uint64_t now)
{
	for (size_t i = 0; i < bus->n_pending; i++) {
		if (bus->pending[i].frame.can_id == f->can_id) {
			/* the newer value, and its age: the old one is never sent */
			bus->pending[i] =
				(struct can_bus_pending){ .frame = *f, .queued_usec = now };
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
	bus->pending[bus->n_pending++] =
		(struct can_bus_pending){ .frame = *f, .queued_usec = now };
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

/* bytes of our frames the kernel still holds (SO_MEMINFO); <0: cannot tell */
static int64_t kernel_queue_bytes(const struct can_bus *bus)
{
	uint32_t mem[SK_MEMINFO_VARS] = { 0 };
	socklen_t len = sizeof(mem);

	if (bus->fd < 0 || getsockopt(bus->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 ||
	    len <= SK_MEMINFO_WMEM_ALLOC * sizeof(mem[0])) {
		return -1;
	}
	return mem[SK_MEMINFO_WMEM_ALLOC];
}

/*
 * manage_link: empty the kernel's queue by taking the link down and up
 * (the qdisc is reset and the controller's echo buffers freed). Frames in
 * it are never recalled any other way.
 */
static void kernel_queue_flush(struct can_bus *bus, const char *why)
{
	uint64_t now = bus_now(bus);

	log_ratelimit(&bus->stale_rl, now, LOG_WARNING,
		      "%s: frames held in the kernel's queue %s: flushing it (link down and up, "
		      "manage_link)",
		      bus->ifname, why);
	bus->stats.kernel_flushes++;
	bus->quiet_until_usec = now + USEC_PER_SEC;
	can_do_stop(bus->ifname);
	link_setup(bus);
	bus->kq_empty_usec = now;
	bus->kq_stuck = false;
}

/*
 * Is the kernel sitting on frames older than the age limit (nobody
 * acknowledges, the queue is held)? Then nothing more is written into it
 * (new frames park and age out here, counted), and with manage_link it
 * is flushed. Without manage_link what it holds goes out when the bus
 * moves again: at most its capacity, written before this was seen.
 */
static bool kernel_queue_stuck(struct can_bus *bus, uint64_t now)
{
	int64_t q = kernel_queue_bytes(bus);

	if (q <= 0) {
		bus->kq_empty_usec = now;
		if (bus->kq_stuck && q == 0) {
			log_fault_cleared("can-no-ack", "%s: the kernel's queue moves again",
					  bus->ifname);
		}
		bus->kq_stuck = false;
		return false;
	}
	if (bus->kq_empty_usec == 0) {
		bus->kq_empty_usec = now;
	}
	if (now - bus->kq_empty_usec <= bus->pending_max_age_usec) {
		return bus->kq_stuck;
	}
	if (bus->manage_link) {
		kernel_queue_flush(bus, "longer than the age limit");
		return true;
	}
	if (!bus->kq_stuck) {
		log_fault("can-no-ack",
			  "is the other end on and set to CAN at 500 kbit/s? " CAN_WIRING_HINT,
			  "%s: the kernel has held our frames for more than %.1f s (nobody "
			  "acknowledges?): writing nothing more until it moves; what it holds "
			  "goes out late when it does (manage_link = true lets the daemon flush it)",
			  bus->ifname, (double)bus->pending_max_age_usec / USEC_PER_SEC);
		bus->kq_stuck = true;
	}
	return true;
}

/* drop what may not go out any more: too old, or the owner says no */
static void expire_pending(struct can_bus *bus, uint64_t now)
{
	size_t kept = 0, old = 0;

	if (bus->n_pending == 0) {
		return;
	}
	if (bus->may_send && !bus->may_send(bus, now, bus->userdata)) {
		drop_pending(bus, &bus->stats.tx_stale, "nothing may be sent now (safety mode)");
		if (bus->manage_link && kernel_queue_bytes(bus) > 0) {
			kernel_queue_flush(bus, "while nothing may be sent (safety mode)");
		}
		return;
	}
	for (size_t i = 0; i < bus->n_pending; i++) {
		if (now - bus->pending[i].queued_usec > bus->pending_max_age_usec) {
			old++;
			continue;
		}
		bus->pending[kept++] = bus->pending[i];
	}
	if (old) {
		bus->stats.tx_stale += old;
		log_ratelimit(&bus->stale_rl, now, LOG_WARNING,
			      "%s: %zu parked frame%s dropped, not sent late: older than %.1f s "
			      "(is anyone acknowledging on the bus?) (%llu dropped so far)",
			      bus->ifname, old, old == 1 ? "" : "s",
			      (double)bus->pending_max_age_usec / USEC_PER_SEC,
			      (unsigned long long)(bus->stats.tx_dropped + bus->stats.tx_stale));
	}
	bus->n_pending = kept;
}

/*
 * While the kernel holds frames of ours, look again even when nothing
 * more is sent: a queue that stopped moving must be seen in STOP too,
 * when no write would notice it (the fault matrix: a held queue released
 * the last NORMAL set 8 s after the BMS fell silent). Returns whether the
 * kernel still holds any.
 */
static bool kernel_queue_watch(struct can_bus *bus, uint64_t now)
{
	if (kernel_queue_bytes(bus) <= 0) {
		kernel_queue_stuck(bus, now); /* notes that it moves again */
		return false;
	}
	if (bus->manage_link && bus->may_send && !bus->may_send(bus, now, bus->userdata)) {
		kernel_queue_flush(bus, "while nothing may be sent (safety mode)");
		return false;
	}
	kernel_queue_stuck(bus, now);
	return bus->open && kernel_queue_bytes(bus) > 0;
}

static int flush_pending(struct can_bus *bus, uint64_t now)
{
	size_t done = 0;
	int r = 0;

	expire_pending(bus, now);
	if (bus->n_pending && kernel_queue_stuck(bus, now)) {
		return 0; /* parked frames wait (and age out) */
	}
	while (done < bus->n_pending) {
		r = write_one(bus, &bus->pending[done].frame);
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
	uint64_t now = bus_now(bus);
	int r;

	if (!bus->open) {
		return 0;
	}
	r = flush_pending(bus, now);
	if (r < 0) {
		port_lost(bus, -r);
		return 0;
	}
	if (bus->n_pending) {
		/*
		 * from now, not from when it was due: a stall is not caught up in
		 * a burst; a kernel that takes nothing is asked ten times less often
		 */
		sd_event_source_set_time(s, now + (bus->kq_stuck ? 10 : 1) * CAN_BUS_FLUSH_USEC);
		sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	} else if (kernel_queue_watch(bus, now)) {
		sd_event_source_set_time(s, now + 10 * CAN_BUS_FLUSH_USEC);
		sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	}
	return 0;
}

static void arm_flush(struct can_bus *bus)
{
	uint64_t now = bus_now(bus);

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
	uint64_t now = bus_now(bus);
	int r;

	if (!bus->open) {
		bus->stats.tx_dropped += n;
		return -ENOTCONN;
	}
	if (bus->state == CAN_BUS_OFF) {
		/* nothing is parked while the bus is off: it would be old when it is back */
		drop_pending(bus, &bus->stats.tx_dropped, "the bus is off");
		bus->stats.tx_dropped += n;
		return -ENETDOWN;
	}
	/* the kernel sits on old frames: park (and age out) rather than add to them */
	if (kernel_queue_stuck(bus, now)) {
		if (!bus->open) {
			bus->stats.tx_dropped += n; /* flushed: the link is down for a moment */
			return -ENOTCONN;
		}
		for (size_t i = 0; i < n; i++) {
			pend(bus, &frames[i], now);
		}
		arm_flush(bus);
		return (int)n;
	}
	/* the older pending frames go first, so the order of a set is kept */
	r = flush_pending(bus, now);
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
		pend(bus, &frames[i], now);
	}
	if (r < 0) {
		port_lost(bus, -r);
		return r;
	}
	/* parked frames go out later; frames the kernel still holds are watched */
	if (bus->n_pending || kernel_queue_bytes(bus) > 0) {
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
	bus->rx_extended = cfg->rx_extended;
	bus->rx_mask = cfg->rx_mask;
	bus->pending_max_age_usec = cfg->pending_max_age_usec ? cfg->pending_max_age_usec
							      : CAN_BUS_PENDING_AGE_DEFAULT_USEC;
	bus->may_send = cfg->may_send;
	bus->bitrate = cfg->bitrate;
	bus->manage_link = cfg->manage_link;
	bus->on_rx = on_rx;
	bus->on_state = on_state;
	bus->userdata = userdata;
	bus->fd = -1;
	bus->nl_fd = -1;
	bus->state = CAN_BUS_DOWN;
	bus->backoff_usec = CAN_BUS_BACKOFF_MIN_USEC;
	bus->err_rl = (struct ratelimit)RATELIMIT_INIT(60 * USEC_PER_SEC, 5);
	bus->drop_rl = (struct ratelimit)RATELIMIT_INIT(60 * USEC_PER_SEC, 3);
	bus->stale_rl = (struct ratelimit)RATELIMIT_INIT(60 * USEC_PER_SEC, 3);
	*ret = bus;
	/* before the first attempt: a link that appears in between is not missed */
	netlink_open(bus);
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
	sd_event_source_disable_unref(bus->state_log);
	sd_event_source_disable_unref(bus->nl_io);
	if (bus->nl_fd >= 0) {
		close(bus->nl_fd);
	}
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
	const char *state = bus->fd < 0  ? "missing, retrying"
			    : !bus->open ? "down, waiting"
					 : can_bus_state_name(bus->state);

	int k;

	k = snprintf(buf, n, "%s %s, %llu tx, %llu rx, %llu dropped (%llu stale), %llu rx lost",
		     bus->ifname, state, (unsigned long long)bus->stats.tx_frames,
		     (unsigned long long)bus->stats.rx_frames,
		     (unsigned long long)(bus->stats.tx_dropped + bus->stats.tx_stale),
		     (unsigned long long)bus->stats.tx_stale,
		     (unsigned long long)bus->stats.rx_overflows);
	if (bus->stats.kernel_flushes && k > 0 && (size_t)k < n) {
		snprintf(buf + k, n - (size_t)k, ", kernel queue flushed %llu times",
			 (unsigned long long)bus->stats.kernel_flushes);
	}
}
