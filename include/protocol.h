/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Inverter-side protocols: what the gateway speaks to the inverter.
 *
 * One file per protocol under protocols/, each exporting one
 * `const struct inverter_protocol`; protocols/registry.c lists them all.
 * Every hook is PURE: no I/O, no clock reads (the time is passed in), no
 * allocation, no logging. The caller owns all buffers.
 *
 * Encoders read only bs->bank (plus pack_count / packs_online, and the
 * packs' cell counts where a protocol numbers cells across the bank), which
 * the safety layer has already shaped: they never decide limits
 * themselves, they only put them on the wire.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/can.h>

struct battery_state;

enum protocol_transport {
	PROTOCOL_TRANSPORT_CAN,	  /* we broadcast (or answer requests) on CAN */
	PROTOCOL_TRANSPORT_RS485, /* the inverter polls, we answer */
};

/* How a CAN protocol decides when to send. */
enum protocol_schedule {
	PROTOCOL_SCHEDULE_PERIODIC, /* every period_usec, unprompted */
	PROTOCOL_SCHEDULE_ON_REQUEST, /* only in answer to an inverter request (Growatt 0x301) */
};

/* What an inverter frame meant, returned by ->inverter_rx(). */
enum protocol_rx {
	PROTOCOL_RX_IGNORED = 0,   /* not a frame of this protocol */
	PROTOCOL_RX_KEEPALIVE = 1, /* inverter is there (0x305 ack, 0x307 id, ...) */
	PROTOCOL_RX_REQUEST = 2,   /* inverter asks for the set now (implies presence) */
	/*
	 * A remote command from the inverter (Luxpower V04.2, CAN ID 0x300,
	 * byte 0 bit 0 "RSD battery", 0x01 = shut the battery down). Both
	 * imply presence. The gateway cannot switch a BMS off and never
	 * changes a limit because of it: the caller logs each change and shows
	 * it in STATUS (src/output_can.c), nothing more.
	 */
	PROTOCOL_RX_SHUTDOWN_ASKED = 3,	  /* 0x300 with bit 0 set */
	PROTOCOL_RX_SHUTDOWN_CLEARED = 4, /* 0x300 with bit 0 clear */
};

/*
 * Per-instance options, filled from the config's inverter group. Each
 * option names the quirk it serves; encoders that do not know an option
 * ignore it.
 */
struct protocol_options {
	uint8_t rs485_address; /* RS485: pack address we answer as (1-15) */
	/*
	 * Deye/Sol-Ark off-grid follow SOC, not current limits
	 * (dalathegreat/Battery-Emulator#873): send SOC 100 % while charge is
	 * blocked (CCL 0) and 0 % while discharge is blocked (DCL 0).
	 */
	bool soc_follows_limits;
	/* Pylontech family: also send the discharge voltage limit in 0x351 bytes 6-7 */
	bool send_dvl;
	/* 0x35E / manufacturer name, space padded to 8 characters */
	char manufacturer[9];
};

/*
 * One inverter protocol (one brand dialect).
 */
struct inverter_protocol {
	const char *name;	 /* `protocol =` value in the config file */
	const char *description; /* one line, for `bmsbridgectl list` */
	enum protocol_transport transport;
	enum protocol_schedule schedule; /* CAN only */
	uint64_t period_usec;		 /* CAN: broadcast period; 0 for RS485 */
	/*
	 * CAN, PROTOCOL_SCHEDULE_ON_REQUEST: a request that comes sooner than
	 * this after the last one answered only proves presence (a Growatt
	 * SPH6000 asks every 500 ms; the set goes out once a second). 0:
	 * every request is answered.
	 */
	uint64_t request_min_interval_usec;
	uint32_t bitrate;		 /* CAN: default bit rate, bit/s */
	uint32_t baud;			 /* RS485: default baud rate */
	/*
	 * CAN: silence after which the inverter counts as gone. Generous
	 * where an inverter is known to pause its ack (Deye, ~2 h).
	 */
	uint64_t inverter_timeout_usec;
	/* CAN: ids the inverter sends that ->inverter_rx() wants to see */
	const canid_t *rx_ids;
	size_t n_rx_ids;

	/*
	 * CAN: fill at most @n_frames frames with the full periodic set.
	 * Returns the number of frames written, -ENODATA if bs->bank holds
	 * no complete data yet, -ENOBUFS if @n_frames is too small.
	 */
	int (*encode)(const struct protocol_options *opt, const struct battery_state *bs,
		      uint64_t now_usec, struct can_frame *frames, size_t n_frames);

	/*
	 * CAN, optional: which of the frames ->encode() would produce must go
	 * out AT ONCE because @bs differs from @prev in a way the inverter
	 * must learn before the next period (a lowered limit, a new alarm).
	 * Fills at most @n_frames; returns the count (0: nothing urgent).
	 */
	int (*encode_urgent)(const struct protocol_options *opt, const struct battery_state *prev,
			     const struct battery_state *bs, uint64_t now_usec,
			     struct can_frame *frames, size_t n_frames);

	/*
	 * CAN: classify one frame received from the inverter (standard or
	 * extended id: a Schneider XW Pro acks with an extended 0x305).
	 * Returns enum protocol_rx; every value but PROTOCOL_RX_IGNORED means
	 * the inverter is there.
	 */
	int (*inverter_rx)(const struct can_frame *f);

	/*
	 * CAN: the inverse of ->encode(), what an inverter understands from
	 * one frame: writes the fields the frame carries into bs->bank and
	 * marks their groups at @now_usec. Returns 1 if the frame was used,
	 * 0 if it is not one of this protocol's frames, -EBADMSG if it is
	 * but is malformed (too short...). Used by `bmsbridgectl decode` and
	 * by tests; BMS-side drivers may share it.
	 */
	int (*decode)(const struct can_frame *f, uint64_t now_usec, struct battery_state *bs);

	/*
	 * RS485: answer one complete request frame. Returns the response
	 * length, 0 if the request is not for us (other address: stay
	 * silent), or a negative errno (-EBADMSG malformed, -ENOBUFS).
	 */
	ssize_t (*respond)(const struct protocol_options *opt, const struct battery_state *bs,
			   const uint8_t *req, size_t n_req, uint8_t *rsp, size_t n_rsp);
};

/* An alias: a brand name that selects another protocol (goodwe → pylontech). */
struct protocol_alias {
	const char *name;
	const char *target;
	const char *note; /* shown by `bmsbridgectl list` */
};

/**
 * protocol_find() - look a protocol up by name or alias.
 * Return: the protocol, or NULL.
 */
const struct inverter_protocol *protocol_find(const char *name);

/**
 * protocol_get() - the @i-th protocol of the registry, sorted by name.
 * Return: the protocol, NULL past the end.
 */
const struct inverter_protocol *protocol_get(size_t i);

/**
 * protocol_alias_get() - the @i-th alias, NULL past the end.
 */
const struct protocol_alias *protocol_alias_get(size_t i);

/*
 * Limits on a wire never say more than the bank allows, whatever the
 * field's resolution: an upper bound (CVL, CCL, DCL) is rounded DOWN to
 * the field's step, a lower bound (DVL) UP. Every CAN encoder goes through
 * these two; 48.05 V in a 0.1 V DVL field is 48.1 V, never 48.0 V.
 */

/**
 * protocol_upper_limit() - an upper bound in wire units, rounded down.
 * @milli: the limit in mV or mA
 * @step: mV or mA per wire unit (100 for 0.1 V or 0.1 A)
 * Return: floor(@milli / @step). The caller clamps into its field, which
 * can only lower it further.
 */
static inline uint32_t protocol_upper_limit(uint32_t milli, uint32_t step)
{
	return milli / step;
}

/**
 * protocol_lower_limit() - a lower bound in wire units, rounded up.
 * @milli: the limit in mV or mA
 * @step: mV or mA per wire unit
 * Return: ceil(@milli / @step), without overflow.
 */
static inline uint32_t protocol_lower_limit(uint32_t milli, uint32_t step)
{
	return milli / step + (milli % step != 0);
}

/* Largest frame set any CAN protocol's ->encode() writes. */
#define PROTOCOL_FRAMES_MAX 32
/* Largest RS485 request/response in bytes. */
#define PROTOCOL_RS485_MAX 512
