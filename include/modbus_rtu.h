/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The master's side of a Modbus RTU read, for the Modbus BMS families
 * (protocols/seplos_v3.c, pace_modbus.c, eg4_ll.c) and JK-PB's CRC:
 * protocols/modbus_rtu.c. Pure: no I/O, no state. (What libmodbus would
 * do for us; its calls wait, which the single-threaded loop cannot.)
 *
 * "MODBUS over Serial Line" V1.02 §2.5.1 (RTU framing, CRC-16 low byte
 * first, §6.2.2 the CRC), "MODBUS Application Protocol" V1.1b3 §6.1-6.4
 * (read coils / input / holding registers: address, function, start,
 * count; the answer address, function, byte count, data) and §7
 * (exception: function + 0x80, code).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MODBUS_READ_LEN 8		  /* a read request, CRC included */
#define MODBUS_EXCEPTION_LEN 5		  /* address, function | 0x80, code, CRC */
#define MODBUS_FN(f) (UINT32_C(1) << (f)) /* a function code in a mask of them (0x01-0x1F) */

/**
 * modbus_crc16() - CRC-16/Modbus (reflected 0xA001, init 0xFFFF).
 * Return: the CRC; on the wire low byte first.
 */
uint16_t modbus_crc16(const uint8_t *buf, size_t len);

/**
 * modbus_crc_ok() - whether the last two of @len bytes are the CRC of the others.
 */
bool modbus_crc_ok(const uint8_t *buf, size_t len);

/**
 * modbus_build_read() - a read request: @address, @fn, @start, @count, CRC.
 * @buf: out, MODBUS_READ_LEN bytes
 * Return: MODBUS_READ_LEN.
 */
size_t modbus_build_read(uint8_t address, uint8_t fn, uint16_t start, uint16_t count, uint8_t *buf);

/**
 * modbus_frame_read() - the answer to the read @req at the START of @buf,
 * with the semantics of struct bms_serial_ops ->frame().
 * @req: the request sent (modbus_build_read(), MODBUS_READ_LEN bytes)
 * @bytes: the data bytes its answer carries
 * @fns: MODBUS_FN() of the function codes that may be on this bus (the
 *       families' own); any other function byte starts nothing
 * @skip: out for -ENOMSG, may be NULL
 *
 * Return: the length of the answer (or of its exception, which the
 * decoder then reports) when complete with its CRC; 0 if more bytes are
 * needed; -ENOMSG and *@skip for the echo of @req on a two-wire bus, the
 * answer or exception of another address or read, another master's read;
 * -EBADMSG when the bytes cannot start any of these or fail their CRC.
 */
ssize_t modbus_frame_read(const uint8_t *req, uint8_t bytes, uint32_t fns, const uint8_t *buf,
			  size_t len, size_t *skip);
