/* SPDX-License-Identifier: MIT */
/*
 * can-utils log lines ("(1700000000.000000) can0 351#2802E803"): the
 * format `candump -l` writes and `canplayer` reads. The writer is used by
 * the candump output sink, the parser by replay, the CLI and the tests.
 * The parser is strict: anything it does not understand is -EBADMSG.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "candump.h"
#include "hex.h"

static const char hexdigits[] = "0123456789ABCDEF";

int candump_format(uint64_t time_usec, const char *ifname, const struct can_frame *f, char *buf,
		   size_t n)
{
	size_t len;
	int r;

	if (f->len > CAN_MAX_DLEN || strlen(ifname) >= IFNAMSIZ) {
		return -EINVAL;
	}
	if (n < CANDUMP_LINE_MAX) {
		return -ENOBUFS;
	}
	if (f->can_id & CAN_EFF_FLAG) {
		r = snprintf(buf, n, "(%llu.%06llu) %s %08X#",
			     (unsigned long long)(time_usec / 1000000),
			     (unsigned long long)(time_usec % 1000000), ifname,
			     (unsigned)(f->can_id & CAN_EFF_MASK));
	} else {
		r = snprintf(buf, n, "(%llu.%06llu) %s %03X#",
			     (unsigned long long)(time_usec / 1000000),
			     (unsigned long long)(time_usec % 1000000), ifname,
			     (unsigned)(f->can_id & CAN_SFF_MASK));
	}
	if (r < 0 || (size_t)r + 2 * CAN_MAX_DLEN + 2 > n) {
		return -ENOBUFS;
	}
	len = (size_t)r;
	if (f->can_id & CAN_RTR_FLAG) {
		buf[len++] = 'R';
	} else {
		for (unsigned i = 0; i < f->len; i++) {
			buf[len++] = hexdigits[f->data[i] >> 4];
			buf[len++] = hexdigits[f->data[i] & 0xf];
		}
	}
	buf[len++] = '\n';
	buf[len] = '\0';
	return (int)len;
}

/* Over 80 lines: one pass over one log line, field by field as candump -l writes them. */
int candump_parse(const char *line, size_t len, uint64_t *ret_time_usec, char *ret_ifname,
		  struct can_frame *ret)
{
	struct can_frame f = { 0 };
	char ifname[IFNAMSIZ];
	uint64_t sec = 0, usec = 0;
	size_t i = 0, start, ndig;
	uint32_t id = 0;

	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
		len--;
	}
	/* "(" seconds "." 6 digits ")" */
	if (i >= len || line[i++] != '(') {
		return -EBADMSG;
	}
	for (ndig = 0; i < len && line[i] >= '0' && line[i] <= '9'; i++, ndig++) {
		if (ndig >= 12) {
			return -EBADMSG;
		}
		sec = sec * 10 + (uint64_t)(line[i] - '0');
	}
	if (ndig == 0 || i >= len || line[i++] != '.') {
		return -EBADMSG;
	}
	for (ndig = 0; i < len && line[i] >= '0' && line[i] <= '9'; i++, ndig++) {
		if (ndig >= 6) {
			return -EBADMSG;
		}
		usec = usec * 10 + (uint64_t)(line[i] - '0');
	}
	if (ndig != 6 || i >= len || line[i++] != ')') {
		return -EBADMSG;
	}
	/* " " ifname " " */
	if (i >= len || line[i++] != ' ') {
		return -EBADMSG;
	}
	start = i;
	while (i < len && line[i] != ' ') {
		/* printable ASCII only: no NUL, no control bytes in a name */
		if (line[i] <= ' ' || line[i] > '~') {
			return -EBADMSG;
		}
		i++;
	}
	if (i == start || i - start >= IFNAMSIZ || i >= len) {
		return -EBADMSG;
	}
	memcpy(ifname, line + start, i - start);
	ifname[i - start] = '\0';
	i++;
	/* id: 3 hex digits (standard) or 8 (extended) */
	start = i;
	while (i < len && hex_value(line[i]) >= 0) {
		id = (id << 4) | (uint32_t)hex_value(line[i]);
		i++;
		if (i - start > 8) {
			return -EBADMSG;
		}
	}
	if (i - start == 3) {
		if (id > CAN_SFF_MASK) {
			return -EBADMSG;
		}
		f.can_id = id;
	} else if (i - start == 8) {
		if (id > CAN_EFF_MASK) {
			return -EBADMSG;
		}
		f.can_id = id | CAN_EFF_FLAG;
	} else {
		return -EBADMSG;
	}
	if (i >= len || line[i++] != '#') {
		return -EBADMSG;
	}
	if (i < len && line[i] == '#') {
		return -EBADMSG; /* CAN FD: not for us */
	}
	if (i < len && line[i] == 'R') {
		f.can_id |= CAN_RTR_FLAG;
		i++;
		if (i != len) {
			return -EBADMSG;
		}
	} else {
		while (i < len) {
			int hi, lo;

			if (i + 1 >= len || f.len >= CAN_MAX_DLEN) {
				return -EBADMSG;
			}
			hi = hex_value(line[i]);
			lo = hex_value(line[i + 1]);
			if (hi < 0 || lo < 0) {
				return -EBADMSG;
			}
			f.data[f.len++] = (uint8_t)(hi << 4 | lo);
			i += 2;
		}
	}

	if (ret_time_usec) {
		*ret_time_usec = sec * 1000000 + usec;
	}
	if (ret_ifname) {
		memcpy(ret_ifname, ifname, strlen(ifname) + 1);
	}
	*ret = f;
	return 0;
}
