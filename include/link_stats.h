/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The inverter link as the output sees it, for the observers (D-Bus,
 * bmsbridgectl diagnose): filled by an output's ->stats() (adapter.h),
 * read through struct observer_evaluation (observer.h). Counters since the
 * port was opened.
 */
#include <stdbool.h>
#include <stdint.h>

#define LINK_STATS_NONE UINT8_MAX /* no such address / command */

struct inverter_link_stats {
	/* CAN */
	const char *bus_state; /* "error-active", "bus-off", ...; "" for RS485 */
	uint64_t tx_frames, rx_frames, tx_dropped, rx_overflows, error_frames, bus_off;
	/* RS485 (Pylontech RS485 V3.3 framing: ADR, CID2, RTN, §2.5) */
	uint32_t baud;
	uint8_t address;	   /* the ADR we answer as */
	uint64_t polls;		   /* valid polls for our address */
	uint64_t answered;	   /* answered with RTN 0x00 */
	uint64_t errors;	   /* answered with an error RTN */
	uint64_t other_adr;	   /* valid polls for another address */
	uint8_t top_other_adr;	   /* the other address polled most; LINK_STATS_NONE: none */
	uint8_t top_cid2;	   /* the command polled most for us; LINK_STATS_NONE: none */
	uint64_t malformed;	   /* not a frame, CHKSUM or LENGTH wrong */
	uint64_t noise;		   /* bytes with bit 7 set or outside any frame (a baud mismatch) */
	uint8_t err_cid2, err_rtn; /* the last command answered with an error, and its RTN */
	uint64_t err_in_row;	   /* error answers in a row, none normal */
};
