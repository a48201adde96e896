/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one hex digit reader of the tree: candump logs, JK-PB text dumps
 * and config values all read hex through it.
 */

/* the value of one hex digit (either case), or -1 */
static inline int hex_value(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}
