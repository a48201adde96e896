/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * JK-PB "inverter BMS" (JK-PB2A16S20P and kin) on its RS485 port: the
 * pure decoders of protocols/jk_pb.c, shared with the daemon's serial
 * engine (src/serial_engine.c, jk_pb_serial_method()) and its listener (src/input_serial.c), `bmsbridgectl decode`, the tests and the fuzzers.
 *
 * Three read methods, all Modbus RTU framed (address, function, ..., CRC-16
 * Modbus little endian); the third, "listen", takes the trigger exchanges
 * a DIP-0 JK master drives and never transmits (jk_pb_bus_next(),
 * jk_pb_listen() below):
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
struct bms_serial_ops;

/* enum values of bms_config.read_method (config key bms.read_method) */
enum jk_pb_read_method {
	JK_PB_READ_REGISTERS = 0, /* "registers" */
	JK_PB_READ_TRIGGER = 1,	  /* "trigger" */
	JK_PB_READ_LISTEN = 2,	  /* "listen": a DIP-0 JK master drives the bus */
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
 * jk_pb_serial_method() - the ->serial_method() of `jk-pb-modbus`: the
 * round of the generic serial engine for bms.read_method (enum
 * jk_pb_read_method), NULL for "listen" (it never sends).
 */
const struct bms_serial_ops *jk_pb_serial_method(int read_method);

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

/**
 * jk_pb_decode_dump_addr() - jk_pb_decode_dump() for one pack of a bus.
 * @addr: decode only the frames of this DIP address; -1: all frames,
 *        which must then all come from one pack
 * @ret_addr: may be NULL; the address the frames named (a poll before
 *            them, their write echo; 0 for a DIP-0 master's own frames),
 *            -1 if the dump held register lines only
 *
 * The hex bytes are read as they were on the bus (jk_pb_bus_next(),
 * jk_pb_listen()): trigger polls, 55 AA EB 90 frames, write echoes and
 * 0x00 padding, e.g. what a logic analyser or a sniffer captured.
 *
 * Return: blocks decoded (>= 1), or -EBADMSG, the state untouched.
 */
int jk_pb_decode_dump_addr(const char *text, size_t len, int addr, unsigned pack,
			   uint64_t now_usec, struct battery_state *bs, int *ret_addr);

/* ---- the bus as a byte stream (listen-only input, exchange dumps) ---- */

/* What jk_pb_bus_next() found at the start of the stream. */
enum jk_pb_bus_kind {
	JK_PB_BUS_NOISE,	/* one byte that starts nothing valid: skipped */
	JK_PB_BUS_WRITE,	/* function 0x10 request, ADDR 10 REG QTY N DATA CRC */
	JK_PB_BUS_ACK,		/* function 0x10 answer (write echo), ADDR 10 REG QTY CRC */
	JK_PB_BUS_READ,		/* function 0x03 request, ADDR 03 REG COUNT CRC */
	JK_PB_BUS_READ_ANSWER,	/* function 0x03 answer, ADDR 03 N DATA CRC */
	JK_PB_BUS_EXCEPTION,	/* ADDR 83|90 CODE CRC */
	JK_PB_BUS_FRAME,	/* a 300-byte 55 AA EB 90 frame with a valid sum8 */
};

struct jk_pb_bus_item {
	enum jk_pb_bus_kind kind;
	uint8_t addr;	     /* Modbus items: the address byte */
	uint16_t reg;	     /* WRITE, ACK, READ: the first register */
	uint16_t count;	     /* WRITE, ACK, READ: registers */
	uint16_t value;	     /* WRITE of one register: its value */
	const uint8_t *data; /* FRAME: the frame; READ_ANSWER: the register bytes */
	size_t len;	     /* their number */
};

/**
 * jk_pb_bus_next() - the next item at the start of a captured byte stream.
 * @buf: the bytes
 * @len: their number
 * @final: no more bytes will come (end of a dump, or a quiet bus): an
 *         incomplete item is noise then
 * @ret: the item
 *
 * Every item is checked by its CRC (Modbus) or sum8 (frames) before it is
 * reported; anything else is one byte of noise (0x00 padding included),
 * so the caller resynchronises byte by byte.
 *
 * Return: the bytes the item takes (>= 1); -EAGAIN when @len is 0, or
 * when @buf may be the start of an item not complete yet and !@final.
 */
int jk_pb_bus_next(const uint8_t *buf, size_t len, bool final, struct jk_pb_bus_item *ret);

/* A trigger poll as jk_pb_bus_next() reports it: 1 register, value 0. */
bool jk_pb_bus_is_trigger(const struct jk_pb_bus_item *it);

/*
 * Pairs frames with the poll before them and the write echo after them,
 * on a bus somebody else drives (a DIP-0 JK master, or our own poller).
 */
struct jk_pb_listener {
	uint64_t window_usec; /* a frame answers a poll that began this recently */

	bool poll;	      /* a poll not answered yet */
	uint8_t poll_addr;
	uint16_t poll_reg;
	uint64_t poll_usec;

	bool held;	      /* a frame waiting for its write echo */
	bool held_polled;     /* ... which answers poll_addr / held_poll_usec */
	uint8_t held_poll_addr;
	uint64_t held_poll_usec;
	uint64_t held_usec;   /* when it arrived */
	uint8_t held_frame[JK_PB_FRAME_LEN];

	uint8_t out[JK_PB_FRAME_LEN]; /* the frame last handed out */

	uint64_t polls, frames, acks, unanswered, orphan_acks, noise_bytes;
};

/* One frame heard, with what is known of who sent it and when. */
struct jk_pb_heard {
	const uint8_t *frame;	/* JK_PB_FRAME_LEN bytes, valid until the next call */
	int ack_addr;		/* the write echo's address, -1: none came */
	bool polled;		/* it answered the poll below in time */
	uint8_t poll_addr;
	uint64_t poll_usec;	/* when that poll was seen */
	uint64_t frame_usec;	/* when the frame was seen */
};

/**
 * jk_pb_listener_init() - an empty listener.
 * @window_usec: how long after a poll its answer frame may begin
 */
void jk_pb_listener_init(struct jk_pb_listener *l, uint64_t window_usec);

/**
 * jk_pb_listen() - take one item of the bus.
 * @l: the listener
 * @it: from jk_pb_bus_next()
 * @now_usec: when it was seen
 * @ret: a frame completed by this item (the one held before it)
 * Return: 1 if @ret was filled, 0 otherwise.
 */
int jk_pb_listen(struct jk_pb_listener *l, const struct jk_pb_bus_item *it, uint64_t now_usec,
		 struct jk_pb_heard *ret);

/**
 * jk_pb_listen_flush() - hand out a held frame whose write echo is overdue.
 * @force: hand it out whatever its age (end of a dump)
 * Return: 1 if @ret was filled, 0 otherwise.
 */
int jk_pb_listen_flush(struct jk_pb_listener *l, uint64_t now_usec, bool force,
		       struct jk_pb_heard *ret);

/**
 * jk_pb_heard_attribute() - which pack sent a heard frame, and its time.
 * @h: the frame
 * @unasked_addr: the address of a frame nobody asked for and no echo
 *                names (0 on a bus with a DIP-0 master, which broadcasts
 *                its own frames unasked); -1: such frames are dropped
 * @ret_addr: the pack's DIP address
 * @ret_usec: the time of its poll (the data is as old as the request),
 *            or of the frame when it came unasked
 * Return: 0; -EBADMSG when the poll and the echo name different packs (a
 * collision, or a frame answering someone else) or nothing names one.
 */
int jk_pb_heard_attribute(const struct jk_pb_heard *h, int unasked_addr, uint8_t *ret_addr,
			  uint64_t *ret_usec);
