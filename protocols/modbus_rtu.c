/* SPDX-License-Identifier: MIT */
/*
 * The master's side of a Modbus RTU read (include/modbus_rtu.h): the
 * request, and finding its answer in what the bus gives back, byte by
 * byte, among the echo of our own request (two-wire adapters), other
 * nodes' answers and other masters' requests. Citations: "MODBUS over
 * Serial Line" V1.02 (MSL) and "MODBUS Application Protocol" V1.1b3 (MAP).
 */
#include <errno.h>
#include <string.h>

#include "byteorder.h"
#include "modbus_rtu.h"

/* MSL §6.2.2: CRC-16, polynomial 0xA001 reflected, register preset 0xFFFF */
uint16_t modbus_crc16(const uint8_t *buf, size_t len)
{
	uint16_t crc = 0xFFFF;

	for (size_t i = 0; i < len; i++) {
		crc ^= buf[i];
		for (unsigned b = 0; b < 8; b++) {
			crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
		}
	}
	return crc;
}

/* MSL §2.5.1.2: the CRC goes last, low byte first */
bool modbus_crc_ok(const uint8_t *buf, size_t len)
{
	return len >= 3 && get_le16(buf + len - 2) == modbus_crc16(buf, len - 2);
}

/* MAP §6.1-6.4: address, function, start address, quantity (both MSB first), CRC */
size_t modbus_build_read(uint8_t address, uint8_t fn, uint16_t start, uint16_t count, uint8_t *buf)
{
	buf[0] = address;
	buf[1] = fn;
	put_be16(buf + 2, start);
	put_be16(buf + 4, count);
	put_le16(buf + 6, modbus_crc16(buf, 6));
	return MODBUS_READ_LEN;
}

static bool fn_on_bus(uint32_t fns, uint8_t fn)
{
	return fn >= 1 && fn < 32 && (fns & MODBUS_FN(fn));
}

static ssize_t other(size_t n, size_t *skip)
{
	if (skip) {
		*skip = n;
	}
	return -ENOMSG;
}

ssize_t modbus_frame_read(const uint8_t *req, uint8_t bytes, uint32_t fns, const uint8_t *buf,
			  size_t len, size_t *skip)
{
	size_t n_ans, need;

	if (len < 2) {
		return 0;
	}
	if (buf[1] & 0x80) {
		/* MAP §7: address, function + 0x80, exception code, CRC */
		if (!fn_on_bus(fns, buf[1] & 0x7F)) {
			return -EBADMSG;
		}
		if (len < MODBUS_EXCEPTION_LEN) {
			return 0;
		}
		if (!modbus_crc_ok(buf, MODBUS_EXCEPTION_LEN)) {
			return -EBADMSG;
		}
		if (buf[0] == req[0] && (buf[1] & 0x7F) == req[1]) {
			return MODBUS_EXCEPTION_LEN;
		}
		return other(MODBUS_EXCEPTION_LEN, skip);
	}
	if (!fn_on_bus(fns, buf[1])) {
		return -EBADMSG;
	}
	if (len < 3) {
		return 0;
	}
	/* our own request, echoed on a two-wire bus: it may look like an answer */
	if (memcmp(buf, req, len < MODBUS_READ_LEN ? len : MODBUS_READ_LEN) == 0) {
		return len < MODBUS_READ_LEN ? 0 : other(MODBUS_READ_LEN, skip);
	}
	/* MAP §6.1-6.4: address, function, byte count, data, CRC */
	n_ans = 5 + (size_t)buf[2];
	if (buf[0] == req[0] && buf[1] == req[1] && buf[2] == bytes) {
		if (len < n_ans) {
			return 0;
		}
		return modbus_crc_ok(buf, n_ans) ? (ssize_t)n_ans : -EBADMSG;
	}
	/* another node's answer to a read (functions 0x01-0x04), another master's request */
	if (buf[1] <= 0x04 && len >= n_ans && modbus_crc_ok(buf, n_ans)) {
		return other(n_ans, skip);
	}
	if (len >= MODBUS_READ_LEN && modbus_crc_ok(buf, MODBUS_READ_LEN)) {
		return other(MODBUS_READ_LEN, skip);
	}
	need = n_ans > MODBUS_READ_LEN ? n_ans : MODBUS_READ_LEN;
	return len < need ? 0 : -EBADMSG;
}
