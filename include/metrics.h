/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The gateway's state as Prometheus metrics: the text exposition format
 * 0.0.4 (what node_exporter's textfile collector and a Prometheus scrape
 * read). metrics_render() is pure: a snapshot in, text out, into a
 * buffer the caller owns; no clock, no I/O, no allocation. The observer
 * that fills the snapshot and writes the file is src/observer_metrics.c.
 *
 * Names follow the Prometheus naming practice: prefix bmsbridge_, the
 * base unit in the name (_volts, _amperes, _watts, _celsius, _seconds,
 * _ratio for SOC/SOH 0..1, _coulombs for capacity), _total on our own
 * counters. Capacity is in coulombs, not ampere-hours: "hours" is not a
 * base unit and promtool check metrics refuses *_ampere_hours (1 Ah =
 * 3600 C; bmsbridged(8), "METRICS"). Series of a group the BMS never sent
 * are left out, never written as NaN.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "battery.h"
#include "safety.h"

struct inverter_link_stats;
struct mqtt_stats;

/* the limits in metrics_snapshot.set_by[], the order of enum observer_limit */
#define METRICS_LIMITS 4

/* a snapshot of everything rendered; what it points to is read only during the call */
struct metrics_snapshot {
	const char *version; /* bmsbridge_build_info{version} */
	bool cells;	     /* one series per cell (metrics { cells }) */
	/* CLOCK_REALTIME - CLOCK_MONOTONIC, to turn the state's times into Unix times */
	int64_t realtime_offset_usec;
	enum safety_mode mode;
	uint64_t rejected; /* implausible values rejected so far */
	/* what set each limit ("bms", "cap", ...), CVL, DVL, CCL, DCL; NULL: unknown */
	const char *set_by[METRICS_LIMITS];
	const struct battery_state *state; /* packs[] as read, bank as decided */
	uint32_t packs_online_mask;	   /* bit i: packs[i] fresh and complete */
	const uint8_t *pack_addresses;	   /* packs[i]'s address; NULL: i + 1 */
	/* the bank the last frames the output took were encoded from */
	bool have_wire;
	const struct battery_pack *wire;
	uint64_t wire_usec;			       /* when they went out (monotonic) */
	uint64_t wire_sets, wire_urgent, wire_refused; /* evaluations that sent / were refused */
	bool inverter_present;
	uint64_t inverter_heard_usec;		/* monotonic, 0: never */
	const char *transport;			/* "can", "rs485", "candump" */
	const struct inverter_link_stats *link; /* NULL: the output has no counters */
	const struct mqtt_stats *mqtt;		/* the MQTT client's; NULL: MQTT not enabled */
};

/**
 * metrics_render() - @s as Prometheus text format 0.0.4 into @buf.
 * Each family has its HELP and TYPE lines once, before its samples.
 * Return: the length written (without the terminating NUL), or -ENOBUFS
 * when @n is too small (@buf then holds a truncated text: never publish it).
 */
int metrics_render(const struct metrics_snapshot *s, char *buf, size_t n);

/* a size enough for BATTERY_PACKS_MAX packs of BATTERY_CELLS_MAX cells (checked in the test) */
#define METRICS_TEXT_MAX (256 * 1024)

/**
 * metrics_parse_listen() - "127.0.0.1:9585" or "[::1]:9585" (numeric
 * addresses only: no name lookup, which could block) as a socket address.
 * @ret, @ret_len: filled only on success
 * Return: 0, or -EINVAL.
 */
int metrics_parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len);
