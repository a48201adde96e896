/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Which packs of a polled (or listened-to) serial bus answer, and saying it
 * once (issue 11: a silent pack gave ~70 lines a minute). One struct
 * pack_watch per configured pack, shared by the two serial inputs: the
 * generic engine of src/serial_engine.c (every polled family) and JK-PB's
 * listen-only method in src/input_serial.c. The lines carry the family's
 * module (JK-PB -d bms_modbus, the others -d bms_serial).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define PACK_WATCH_REMIND_USEC (10 * 60 * USEC_PER_SEC)

struct pack_watch {
	uint8_t addr;		    /* the pack's bus address */
	bool online;		    /* its last round (or listen window) read it */
	uint64_t silent_since_usec; /* when it went silent; 0: answering or never asked */
	uint64_t silent_rounds;	    /* rounds missed in this silence */
	uint64_t reminded_usec;	    /* the last "still silent" line */
};

/**
 * pack_watch_answered() - pack @i (0-based) was read: "online" once, or
 * "online again after ... silent" once after a silence.
 * @module: the caller's LOG_MODULE
 */
void pack_watch_answered(struct pack_watch *w, const char *module, unsigned i, uint64_t now_usec);

/**
 * pack_watch_silent() - pack @i missed a round: said once ("Pack N
 * (address A) @what; said once, the count is in STATUS"), then a reminder
 * every PACK_WATCH_REMIND_USEC.
 * @what: e.g. "not answering", "not heard on the bus"
 */
void pack_watch_silent(struct pack_watch *w, const char *module, unsigned i, uint64_t now_usec,
		       const char *what);

/**
 * pack_watch_summary() - the packs' part of a STATUS= phrase.
 * @first: the first pack's struct pack_watch
 * @stride: bytes from one pack's struct pack_watch to the next (each input
 *          keeps it inside its own per-pack struct)
 * @n: packs
 * @buf: out, ", @A silent S s/R rounds[ +more]" for the first silent pack,
 *       "" when none is silent
 * Return: the number of packs online.
 */
unsigned pack_watch_summary(const struct pack_watch *first, size_t stride, unsigned n,
			    uint64_t now_usec, char *buf, size_t len);
