/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Pylontech CAN family, shared by pylontech.c, deye.c and luxpower.c
 * (internal to protocols/, and to the `pylontech-can` BMS input, which
 * reads a BMS that speaks this very protocol).
 *
 * The family: 500 kbit/s, 11-bit ids, little-endian fields, the battery
 * broadcasts 0x351 limits, 0x355 SOC/SOH, 0x356 V/I/T, 0x359 protection
 * and warning bits, 0x35C request flags and 0x35E its maker's name about
 * once a second; the inverter answers 0x305 (and some 0x307). The brands
 * differ in frame lengths, the temperature they put in 0x356 and a few
 * extra fields; each brand file passes a struct pylon_layout and adds its
 * own extras on top of these builders.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/can.h>

struct battery_pack;
struct battery_state;
struct protocol_options;

#define PYLON_ID_LIMITS 0x351	   /* CVL, CCL, DCL (, DVL) */
#define PYLON_ID_SOC 0x355	   /* SOC, SOH */
#define PYLON_ID_MEASURED 0x356	   /* voltage, current, temperature */
#define PYLON_ID_ALARMS 0x359	   /* protection, warnings, module count, "PN" */
#define PYLON_ID_REQUESTS 0x35C	   /* charge/discharge enable, force charge */
#define PYLON_ID_NAME 0x35E	   /* manufacturer, 8 ASCII characters */
#define PYLON_ID_INV_ACK 0x305	   /* inverter -> battery keep-alive / ack */
#define PYLON_ID_INV_IDENT 0x307   /* inverter -> battery identification */

/* Which temperature a brand puts in 0x356 bytes 4-5. */
enum pylon_temp_source {
	PYLON_TEMP_MAX,	    /* highest sensor (Luxpower V04.2 "Max Cell temperature") */
	PYLON_TEMP_AVERAGE, /* pylon_family_mean_temp_dc() (Pylon V1.2, Deye V1.2) */
};

/* The per-brand shape of the common frames. */
struct pylon_layout {
	bool pad_to_8;	     /* every frame 8 bytes, zero padded (Sol-Ark v1.3) */
	bool dvl;	     /* 0x351 always carries DVL in bytes 6-7 (else: options.send_dvl) */
	enum pylon_temp_source temp;
	bool soc_follows;	  /* honours protocol_options.soc_follows_limits (Deye) */
	const char *default_name; /* 0x35E when the options name none */
};

/**
 * pylon_family_ready() - whether @bs->bank holds what every set needs.
 * @bs: the state
 * Return: true when the bank has LIMITS, ELECTRICAL and CAPACITY.
 */
bool pylon_family_ready(const struct battery_state *bs);

/*
 * The family's predicates, shared by every encoder of it (Victron's too):
 * charge (discharge) blocked: its limit below one 0.1 A step, or the
 * status group says its enable is off; limits lowered: CVL/CCL/DCL lower
 * or DVL higher than in @p.
 */
bool pylon_family_charge_blocked(const struct battery_pack *b);
bool pylon_family_discharge_blocked(const struct battery_pack *b);
bool pylon_family_limits_lowered(const struct battery_pack *p, const struct battery_pack *b);

/**
 * pylon_family_mean_temp_dc() - the bank's average cell temperature for
 * 0x356 bytes 4-5 ("Average cell temperature", Pylon CAN V1.2).
 * @bs: the state
 * Return: the mean of the sensor list (rounded to the nearest 0.1 degC,
 * kept within the extremes) when one pack makes the bank; else, and when
 * only the extremes are known, the midpoint of the bank's lowest and
 * highest temperature.
 */
int16_t pylon_family_mean_temp_dc(const struct battery_state *bs);

/**
 * pylon_family_soc() - the SOC put in 0x355.
 * @l: the brand's layout
 * @opt: the options (soc_follows_limits is honoured where @l->soc_follows)
 * @bs: the state
 * Return: bank SOC, or 100/0 while charge/discharge is blocked under
 * soc_follows_limits.
 */
uint8_t pylon_family_soc(const struct pylon_layout *l, const struct protocol_options *opt,
			 const struct battery_state *bs);

/**
 * pylon_family_encode() - the six common frames 0x351, 0x355, 0x356, 0x359,
 * 0x35C, 0x35E, in that order (the order of real Pylontech packs).
 * @l: the brand's layout
 * @opt: the options
 * @bs: the state; only bank, pack_count and packs_online are read
 * @frames: out
 * @n_frames: room in @frames
 * Return: 6, -ENODATA without LIMITS/ELECTRICAL/CAPACITY, -ENOBUFS.
 */
int pylon_family_encode(const struct pylon_layout *l, const struct protocol_options *opt,
			const struct battery_state *bs, struct can_frame *frames, size_t n_frames);

/**
 * pylon_family_encode_urgent() - the common frames that must go out now:
 * 0x351 and 0x35C when a limit got stricter (CVL, CCL or DCL lower, DVL
 * higher) or an enable flag was withdrawn or a force-charge request
 * appeared; 0x359 when an alarm or warning bit appeared; 0x355 when the
 * reported SOC moved under soc_follows_limits.
 * Return: the count (0: nothing urgent), -ENOBUFS.
 */
int pylon_family_encode_urgent(const struct pylon_layout *l, const struct protocol_options *opt,
			       const struct battery_state *prev, const struct battery_state *bs,
			       struct can_frame *frames, size_t n_frames);

/**
 * pylon_family_inverter_rx() - classify an inverter frame: 0x305 and 0x307
 * mean the inverter is there; so does 0x305 in an extended frame
 * (Schneider XW Pro).
 * @f: the frame
 * Return: PROTOCOL_RX_KEEPALIVE or PROTOCOL_RX_IGNORED.
 */
int pylon_family_inverter_rx(const struct can_frame *f);

/**
 * pylon_can_decode_pack() - decode one Pylontech-family frame into @p.
 * @f: a frame from the battery side of the bus (0x351, 0x355, 0x356, 0x359,
 *     0x35C, 0x35E)
 * @now_usec: CLOCK_MONOTONIC time the frame arrived, marks the groups
 * @p: the pack written
 *
 * Fields the frame carries are written and their group marked: 0x351
 * LIMITS (DVL only from an 8-byte frame, else left as it was), 0x355
 * CAPACITY (soc, soh), 0x356 ELECTRICAL and TEMPS (one temperature, kept as
 * both extremes), 0x359 STATUS (alarms, warnings), 0x35C STATUS
 * (requests). 0x35E is accepted and carries nothing to store. Extended,
 * remote and error frames are not ours.
 *
 * Return: 1 if used, 0 if not a frame of the family, -EBADMSG if too short.
 */
int pylon_can_decode_pack(const struct can_frame *f, uint64_t now_usec, struct battery_pack *p);

/**
 * pylon_family_decode() - ->decode() of the family: pylon_can_decode_pack()
 * into @bs->bank, plus the module count of 0x359 into pack_count and
 * packs_online.
 * Return: as pylon_can_decode_pack().
 */
int pylon_family_decode(const struct can_frame *f, uint64_t now_usec, struct battery_state *bs);
