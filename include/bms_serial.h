/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The pure halves (struct bms_serial_ops, include/bms.h) of the polled
 * serial BMS families, for the generic serial engine, the tests and the
 * fuzzers. One line per family.
 */
#include "battery.h"
#include "bms.h"

extern const struct bms_serial_ops pylontech_rs485_bms_serial; /* protocols/pylontech_rs485.c */
extern const struct bms_serial_ops seplos_v2_serial;	       /* protocols/seplos_v2.c */
extern const struct bms_serial_ops pace_serial;		       /* protocols/pace.c */
extern const struct bms_serial_ops jbd_serial;		       /* protocols/jbd.c */
extern const struct bms_serial_ops daly_serial;		       /* protocols/daly.c */
extern const struct bms_serial_ops seplos_v3_serial;	       /* protocols/seplos_v3.c */
extern const struct bms_serial_ops pace_modbus_serial;	       /* protocols/pace_modbus.c */
extern const struct bms_serial_ops eg4_lifepower4_serial;      /* protocols/eg4_lifepower4.c */
extern const struct bms_serial_ops eg4_ll_serial;	       /* protocols/eg4_ll.c */

/*
 * A capture of a serial BMS bus (requests and answers, one frame per
 * line, hex or "~...\r" text) read back through a family's ops
 * (protocols/bms_serial_dump.c): `bmsbridgectl decode <family>`.
 */
struct bms_serial_dump {
	unsigned frames;	/* frame lines read */
	unsigned requests;	/* ... the family's requests */
	unsigned answers;	/* answers decoded */
	unsigned error_answers; /* the BMS's own error answers (-EPROTO) */
	unsigned unanswered;	/* requests with no answer before the next */
	unsigned unread;  /* frames framed, not decoded (a step the engine skips, beyond a count) */
	unsigned skipped; /* frames of another address or step, echoes */
	unsigned foreign; /* frames of commands the family does not send */
	unsigned n_packs;
	uint8_t address[BATTERY_PACKS_MAX]; /* pack i's address, in order of appearance */
	unsigned bad_line;		    /* on error: the line (1-based) */
	const char *why;		    /* on error: what is wrong with it */
};

/**
 * bms_serial_dump_decode() - decode a capture through @ops.
 * @now_usec: the time the groups are marked with (never 0)
 * Return: 0 and @bs (one pack per address seen) and @st filled, or
 * -EBADMSG with st->bad_line and st->why said and @bs untouched, -EINVAL.
 */
int bms_serial_dump_decode(const struct bms_serial_ops *ops, const char *text, size_t len,
			   uint64_t now_usec, struct battery_state *bs, struct bms_serial_dump *st);
