/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the kernel says about a CAN port, decoded without I/O
 * (src/can_error.c, in the core library): the bus state an error frame
 * announces, and the link events of an rtnetlink datagram. src/can_bus.c
 * acts on them; the unit tests and fuzz/fuzz-can-error.c call them alone.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/can.h>

enum can_bus_state {
	CAN_BUS_DOWN,	      /* no interface, interface down, or not open yet */
	CAN_BUS_ERROR_ACTIVE, /* normal */
	CAN_BUS_WARNING,      /* error counters above 96 */
	CAN_BUS_PASSIVE,      /* above 127: the controller only listens to errors */
	CAN_BUS_OFF,	      /* above 255: the controller is off the bus */
};

/* "error-active", "bus-off", ... */
const char *can_bus_state_name(enum can_bus_state state);

/* What one error frame says (pure decode, fuzzed). */
struct can_error_info {
	int new_state;	   /* enum can_bus_state, or -1: no change */
	bool rx_overflow;  /* controller lost frames */
	bool restarted;	   /* the controller came back from bus-off */
	uint8_t tx_errors; /* error counters, when the frame carries them */
	uint8_t rx_errors;
	char text[96]; /* "bus-off", "error passive (tx 130, rx 0)" */
};

/* What one rtnetlink link message says about an interface. */
struct can_link_event {
	bool exists; /* RTM_NEWLINK; false: RTM_DELLINK */
	bool up;     /* IFF_UP */
};

/**
 * can_link_decode() - the link events for @ifname in one rtnetlink
 * datagram (RTM_NEWLINK/RTM_DELLINK, rtnetlink(7)), in order. Pure.
 * Return: the number of events written (at most @n), or -EBADMSG if a
 * message is truncated or malformed (the caller then reads the link's
 * state itself).
 */
int can_link_decode(const void *buf, size_t len, const char *ifname, struct can_link_event *ret,
		    size_t n);

/**
 * can_error_decode() - what an error frame (CAN_ERR_FLAG) says. Pure.
 * Return: 0, or -EBADMSG if @f is not an error frame or is malformed.
 */
int can_error_decode(const struct can_frame *f, struct can_error_info *ret);
