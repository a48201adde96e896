/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One SocketCAN port: a raw CAN socket on a named interface, run by the
 * sd-event loop, that survives everything a CAN adapter does.
 *
 *   - receive filters for the ids the driver/protocol wants, plus every
 *     error class (CAN_RAW_ERR_FILTER), turned into a bus state;
 *   - the kernel's receive-queue drops read with every frame (SO_RXQ_OVFL);
 *   - transmit never blocks: what the queue refuses (ENOBUFS/EAGAIN) waits
 *     in a small pending set holding at most ONE copy per CAN id (a newer
 *     frame of the same id replaces the stale one, counted), retried on a
 *     short timer. A parked frame has an age limit (pending_max_age_usec,
 *     one protocol period): older, it is dropped, never sent late. Parked
 *     frames are also dropped when the owner's gate says nothing may be
 *     sent any more (safety mode STOP) and while the bus is off; every
 *     drop is counted and shown in the status line. A kernel queue that
 *     holds our frames longer than the age limit gets nothing more, and
 *     with manage_link is emptied (link down and up);
 *   - the interface missing at start, unplugged (USB), or taken down: the
 *     port follows the link over rtnetlink (RTM_NEWLINK/RTM_DELLINK),
 *     reports each change once and resumes within a loop iteration of the
 *     interface coming back; a slow back-off timer is the safety net;
 *   - link management with libsocketcan: the bit rate is read and checked
 *     against the protocol's; with manage_link the port sets bit rate and
 *     restart-ms and brings the link up, at start and whenever it goes
 *     down at run time, and restarts it after bus-off.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/can.h>
#include <systemd/sd-event.h>

#include "can_error.h"

struct can_bus;

/*
 * May parked frames still go out? Asked before each retry of the pending
 * set; false drops the whole set (counted as stale). NULL: always.
 */
typedef bool (*can_bus_gate_fn)(struct can_bus *bus, uint64_t now_usec, void *userdata);

/* a parked frame older than this is dropped when no age limit is given */
#define CAN_BUS_PENDING_AGE_DEFAULT_USEC (1000000ULL)

struct can_bus_config {
	const char *ifname;
	const char *user;	/* who uses the port, for messages ("pylontech") */
	const canid_t *rx_ids;	/* standard ids to receive; NULL/0: none */
				/* (an id | CAN_EFF_FLAG: that 29-bit id, only) */
	size_t n_rx_ids;
	bool rx_extended;	/* also receive 29-bit frames with these ids */
	canid_t rx_mask;	/* 29-bit rx_ids: the id bits compared; 0: all */
	uint32_t bitrate;	/* expected (and set, with manage_link); 0: no check */
	bool manage_link;
	uint64_t pending_max_age_usec; /* 0: CAN_BUS_PENDING_AGE_DEFAULT_USEC */
	can_bus_gate_fn may_send;      /* NULL: parked frames always may go */
};

struct can_bus_stats {
	uint64_t rx_frames;
	uint64_t tx_frames;
	uint64_t tx_replaced;	/* a pending frame replaced by a newer one of its id */
	uint64_t tx_dropped;	/* dropped: pending set full, port down or bus-off */
	uint64_t tx_stale;	/* parked frames dropped: too old, or the gate said no */
	uint64_t kernel_flushes;	/* the kernel's queue flushed (manage_link) */
	uint64_t rx_overflows;	/* the kernel's socket queue drops (SO_RXQ_OVFL) */
	uint64_t error_frames;
	uint64_t bus_off;	/* times the bus went off */
};

/* a frame received (never an error frame); @now_usec CLOCK_MONOTONIC */
typedef void (*can_bus_rx_fn)(struct can_bus *bus, const struct can_frame *f, uint64_t now_usec,
			      void *userdata);
/* the port opened (@open) or went away */
typedef void (*can_bus_state_fn)(struct can_bus *bus, bool open, void *userdata);

/**
 * can_bus_new() - open @cfg->ifname now, or keep trying in the background.
 * Return: 0 (the port may still be closed: @on_state reports it),
 * -EINVAL for a bad interface name, -ENOMEM.
 */
int can_bus_new(sd_event *e, const struct can_bus_config *cfg, can_bus_rx_fn on_rx,
		can_bus_state_fn on_state, void *userdata, struct can_bus **ret);

/**
 * can_bus_free() - close and free; NULL-safe. Return: NULL.
 */
struct can_bus *can_bus_free(struct can_bus *bus);

/**
 * can_bus_send() - put @n frames on the bus without blocking.
 * Return: frames written or queued (pending), -ENOTCONN if the port is
 * down, -ENETDOWN while the bus is off (the frames are dropped and
 * counted: a stale frame is worth nothing later).
 */
int can_bus_send(struct can_bus *bus, const struct can_frame *frames, size_t n);

bool can_bus_is_open(const struct can_bus *bus);
enum can_bus_state can_bus_get_state(const struct can_bus *bus);
const struct can_bus_stats *can_bus_get_stats(const struct can_bus *bus);

/**
 * can_bus_status() - "can0 error-active, 1234 tx, 5 rx, 0 dropped (0 stale)"
 * for STATUS=; "can0 missing, retrying" or "can0 down, waiting" while closed.
 */
void can_bus_status(const struct can_bus *bus, char *buf, size_t n);
