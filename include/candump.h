/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * can-utils log format, as `candump -l` writes and `canplayer` reads:
 *
 *	(1700000000.000000) can0 351#2802E803DC050000
 *
 * One frame per line: a timestamp in seconds with six decimals, the
 * interface name, the id (3 hex digits standard, 8 extended), '#', the data
 * in hex (0-8 bytes; "R" for a remote frame). CAN FD ("##") is rejected.
 */
#include <stddef.h>
#include <stdint.h>

#include <linux/can.h>
#include <net/if.h>

#define CANDUMP_LINE_MAX 96 /* "(sec.usec) ifname 1FFFFFFF#16 hex digits\n" fits */

/**
 * candump_format() - write one frame as a log line (with '\n').
 * @time_usec: timestamp written, microseconds (wall clock or any epoch)
 * @ifname: interface name written
 * @buf: at least CANDUMP_LINE_MAX bytes
 * Return: the line length, or -EINVAL (bad frame), -ENOBUFS.
 */
int candump_format(uint64_t time_usec, const char *ifname, const struct can_frame *f, char *buf,
		   size_t n);

/**
 * candump_parse() - parse one log line (trailing '\n' optional).
 * @ret_time_usec: may be NULL
 * @ret_ifname: may be NULL, else IFNAMSIZ bytes
 * Return: 0, or -EBADMSG with nothing written (bad syntax, id, length).
 */
int candump_parse(const char *line, size_t len, uint64_t *ret_time_usec, char *ret_ifname,
		  struct can_frame *ret);
