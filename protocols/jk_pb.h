/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * JK-PB "inverter BMS" (JK-PB2A16S20P and kin) on its RS485 port: the
 * pure decoders of protocols/jk_pb.c, shared with the daemon's poller
 * (src/bms_modbus.c), `bmsbridgectl decode`, the tests and the fuzzers.
 *
 * Two read methods, both Modbus RTU framed (address, function, ..., CRC-16
 * Modbus little endian):
 *
 *   trigger    ADDR 10 16 20 00 01 02 00 00 CRC (a function-0x10 write of
 *              0x0000 to 0x1620; 0x161E settings, 0x161C device info). The
 *              BMS answers with a 300-byte JK02 frame "55 AA EB 90 <type>
 *              <counter> <data...> <sum8>", then the 8-byte write echo
 *              ADDR 10 16 20 00 01 CRC. Fields little endian.
 *   registers  function-0x03 reads of the "data domain" at 0x1200 and the
 *              settings at 0x1000. JK addresses registers by BYTE offset
 *              (0x1290 is byte 0x90 of the block) and sends every field
 *              big endian.
 *
 * The data of a trigger frame from byte 6 on is the register block byte
 * for byte (same offsets), only the byte order of the fields differs.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct battery_state;

/* enum values of bms_config.read_method (config key bms.read_method) */
enum jk_pb_read_method {
	JK_PB_READ_REGISTERS = 0, /* "registers" */
	JK_PB_READ_TRIGGER = 1,	  /* "trigger" */
};

/* The ->decode_block() kinds of the jk-pb-modbus driver. */
enum jk_pb_block {
	/* a whole 300-byte 55 AA EB 90 frame (type 0x01, 0x02 or 0x03) */
	JK_PB_BLOCK_FRAME = 0,
	/* the 0x1200 data domain from byte 0, big endian, >= JK_PB_DATA_LEN */
	JK_PB_BLOCK_DATA_REGS = 1,
	/* the 0x1000 settings from byte 0, big endian, >= JK_PB_SETTINGS_LEN */
	JK_PB_BLOCK_SETTINGS_REGS = 2,
};

#define JK_PB_FRAME_LEN 300	 /* 55 AA EB 90 frame, checksum included */
#define JK_PB_FRAME_ACK_LEN 8	 /* the function-0x10 echo after the frame */
#define JK_PB_DATA_LEN 256	 /* 0x1200..0x12FF, what we decode */
#define JK_PB_SETTINGS_LEN 144	 /* 0x1000..0x108F */

#define JK_PB_FRAME_SETTINGS 0x01
#define JK_PB_FRAME_STATUS 0x02
#define JK_PB_FRAME_ABOUT 0x03

/* the 0x10 "trigger" registers */
#define JK_PB_TRIGGER_STATUS 0x1620
#define JK_PB_TRIGGER_SETTINGS 0x161E
#define JK_PB_TRIGGER_ABOUT 0x161C

/* the 0x03 register blocks (byte addressed) */
#define JK_PB_REG_SETTINGS 0x1000
#define JK_PB_REG_DATA 0x1200
#define JK_PB_REG_ABOUT 0x1400

/*
 * battery_pack.charge_voltage_limit_mv of a pack whose RCV reads 0 (JK
 * Modbus V1.0 has no VolCellRCV): "no charge voltage from this pack". It
 * is the largest value the field holds, so every minimum the safety layer
 * takes (cell_count x cell_max_mv, the other packs, max_charge_voltage_mv)
 * replaces it; no encoder ever sees it.
 */
#define JK_PB_CVL_NONE UINT32_MAX

/* longest request any builder below writes */
#define JK_PB_REQUEST_MAX 11

/**
 * jk_pb_crc16() - CRC-16/Modbus (poly 0xA001 reflected, init 0xFFFF).
 * @buf: the bytes
 * @len: their number
 * Return: the CRC; on the wire low byte first.
 */
uint16_t jk_pb_crc16(const uint8_t *buf, size_t len);

/**
 * jk_pb_build_trigger() - the function-0x10 trigger request, CRC included.
 * @addr: pack address 1-15
 * @reg: JK_PB_TRIGGER_STATUS, _SETTINGS or _ABOUT
 * @buf: out, at least JK_PB_REQUEST_MAX bytes
 * Return: the length (11).
 */
size_t jk_pb_build_trigger(uint8_t addr, uint16_t reg, uint8_t *buf);

/**
 * jk_pb_build_read() - a function-0x03 read request, CRC included.
 * @addr: pack address 1-15
 * @reg: first register
 * @count: registers, 1-125
 * @buf: out, at least JK_PB_REQUEST_MAX bytes
 * Return: the length (8).
 */
size_t jk_pb_build_read(uint8_t addr, uint16_t reg, uint16_t count, uint8_t *buf);

/**
 * jk_pb_check_read_response() - validate a function-0x03 answer.
 * @addr: the address asked
 * @buf: the bytes received
 * @len: their number
 * @ret_data: where the register bytes start in @buf
 * @ret_n: their number
 * Return: 0 complete and valid; -EAGAIN need more bytes; -EBADMSG bad CRC,
 * wrong address or function; -EIO the BMS answered with an exception.
 */
int jk_pb_check_read_response(uint8_t addr, const uint8_t *buf, size_t len,
			      const uint8_t **ret_data, size_t *ret_n);

/**
 * jk_pb_find_frame() - find a complete, valid trigger answer in @buf.
 * @addr: the address asked
 * @reg: the trigger register written
 * @buf: the bytes received so far (may start with an echo or noise)
 * @len: their number
 * @final: the wait is over (response timeout): a valid frame whose write
 *         echo never came is accepted (jkbms_pb.py only warns then)
 * @ret_frame: where the 300-byte frame starts in @buf
 *
 * The frame counts once its checksum holds; the write echo that follows
 * it is waited for (it keeps the bus in step) and checked when present
 * (address, function, register, CRC): a wrong one rejects the answer.
 *
 * Return: 0 found; -EAGAIN not complete yet; -EBADMSG what is there is
 * malformed (bad checksum, wrong frame type or echo).
 */
int jk_pb_find_frame(uint8_t addr, uint16_t reg, const uint8_t *buf, size_t len, bool final,
		     const uint8_t **ret_frame);

/**
 * jk_pb_decode_block() - the ->decode_block() hook of `jk-pb-modbus`.
 * @kind: enum jk_pb_block
 * @buf: the block
 * @len: its length
 * @pack: 0-based pack index
 * @now_usec: marks the groups written
 * @bs: the state; only bs->packs[@pack] is written
 * Return: 0, or -EBADMSG (nothing written) for a malformed block, an
 * unknown kind or a pack index out of range.
 */
int jk_pb_decode_block(unsigned kind, const uint8_t *buf, size_t len, unsigned pack,
		       uint64_t now_usec, struct battery_state *bs);

/**
 * jk_pb_decode_dump() - decode a text dump (the `bmsbridgectl decode`
 * format, see jk_pb.c) into bs->packs[@pack].
 * @text: the dump
 * @len: its length
 * Return: the number of blocks decoded (>= 1), or -EBADMSG with the
 * state untouched when a line is malformed or nothing decodable is there.
 */
int jk_pb_decode_dump(const char *text, size_t len, unsigned pack, uint64_t now_usec,
		      struct battery_state *bs);
