/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * BMS-side drivers: how the gateway reads the battery.
 *
 * A driver is a const ops struct in the registry (protocols/bms_registry.c).
 * Its decoders are PURE (bytes or frames + time -> battery_state, no I/O, no
 * clock reads, no logging); the I/O around them lives in src/ and is chosen
 * by the driver's transport:
 *
 *   BMS_TRANSPORT_SIM     src/input_sim.c drives ->sim_step() from a timer
 *   BMS_TRANSPORT_CAN     src/input_can.c reads a SocketCAN port, feeds
 *                         ->decode_frame(), sends ->keepalive() frames
 *   BMS_TRANSPORT_SERIAL  src/serial_engine.c polls packs over RS485 through
 *                         ->serial (or ->serial_method()); JK-PB's listen-only
 *                         method (src/input_serial.c) feeds ->decode_block()
 *   BMS_TRANSPORT_FILE    src/input_replay.c plays a candump log through the
 *                         ->decode_frame() of the driver named by
 *                         bms.replay_format
 *
 * Decoders write only into bs->packs[] (never bs->bank) and mark each
 * group they fill with battery_pack_mark(). A malformed input returns
 * -EBADMSG and leaves the state untouched.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/can.h>

struct battery_state;
struct bms_serial_item;
struct bms_serial_part;

enum bms_transport {
	BMS_TRANSPORT_SIM,
	BMS_TRANSPORT_CAN,
	BMS_TRANSPORT_SERIAL,
	BMS_TRANSPORT_FILE,
};

struct bms_driver {
	const char *name;	 /* `driver =` value in the config's bms group */
	const char *description; /* one line, for `bmsbridgectl list` */
	enum bms_transport transport;
	uint32_t bitrate; /* CAN: default bit rate */
	uint32_t baud;	  /* SERIAL: default baud rate */

	/* CAN: ids ->decode_frame() wants (receive filter) */
	const canid_t *rx_ids;
	size_t n_rx_ids;

	/*
	 * CAN: decode one frame into bs->packs[] at @now_usec. Returns 1 if
	 * the frame changed the state, 0 if it is not one of the driver's
	 * frames, -EBADMSG if it is but is malformed.
	 */
	int (*decode_frame)(const struct can_frame *f, uint64_t now_usec,
			    struct battery_state *bs);

	/*
	 * CAN, optional: the frames the BMS expects from an inverter (e.g.
	 * Pylontech 0x305), sent every keepalive_period_usec. Returns the
	 * number of frames written.
	 */
	int (*keepalive)(struct can_frame *frames, size_t n_frames);
	uint64_t keepalive_period_usec;

	/*
	 * CAN, optional: several BMS on one bus, each answering at its own
	 * address (Daly boards: 0x18 <ID> 40 <board>). Drivers without them
	 * (pylontech-can: one BMS speaks for the bank) leave all of this 0 /
	 * NULL, and `bms.addresses` is refused for them.
	 *
	 * can_address_min .. can_address_max: the valid `bms.addresses`
	 * (config.c check_addresses(); none given: can_address_min alone).
	 * With them src/input_can.c reads one pack per configured address,
	 * pack i = the i-th address, and calls the two _at variants below
	 * with that list instead of ->decode_frame() / ->keepalive(), which
	 * stay the one-BMS entry points (the driver's default address: the
	 * replay input, bmsbridgectl decode).
	 *
	 * rx_mask: the bits of the 29-bit ->rx_ids the receive filter
	 * compares (0: all of them), so that one filter entry per id takes
	 * the answers of every address; the decoder drops those of addresses
	 * not listed.
	 */
	uint8_t can_address_min;
	uint8_t can_address_max;
	canid_t rx_mask;
	/*
	 * ->decode_frame() for the BMS at @addresses[0 .. @n_addresses - 1]:
	 * a frame of @addresses[i] goes into bs->packs[i]. Returns as
	 * ->decode_frame(); 0 also for a frame of an address not listed.
	 */
	int (*decode_frame_at)(const struct can_frame *f, uint64_t now_usec,
			       const uint8_t *addresses, size_t n_addresses,
			       struct battery_state *bs);
	/*
	 * ->keepalive() for every listed address, address by address in the
	 * list's order. Returns the number of frames written, -ENOBUFS if
	 * @n_frames cannot hold them all (nothing is sent then).
	 */
	int (*keepalive_at)(const uint8_t *addresses, size_t n_addresses, struct can_frame *frames,
			    size_t n_frames);

	/*
	 * SERIAL: decode one response block for pack index @pack (0-based)
	 * into bs->packs[pack]. @kind says which block (driver-defined, e.g.
	 * JK-PB real-time data vs settings). Returns 0 or -EBADMSG.
	 */
	int (*decode_block)(unsigned kind, const uint8_t *buf, size_t len, unsigned pack,
			    uint64_t now_usec, struct battery_state *bs);

	/*
	 * SERIAL, request/answer BMS families (JK-PB, Pylontech RS485, Seplos,
	 * Pace, JBD, Daly, EG4): the pure half of one poll round, driven by
	 * the generic serial engine. NULL for drivers that do not use it yet.
	 */
	const struct bms_serial_ops *serial;
	/*
	 * SERIAL, a family with several read methods (bms.read_method,
	 * JK-PB): the round of @read_method for the generic engine, NULL for
	 * a method that is no polled round (JK-PB "listen": it never sends,
	 * src/input_serial.c reads it). ->serial is NULL then.
	 */
	const struct bms_serial_ops *(*serial_method)(int read_method);
	/*
	 * SERIAL with ->serial: the family sends no charge or discharge
	 * limits (Seplos V2, Pace, JBD, Daly, Seplos V3). After each pack's
	 * complete round the engine marks its LIMITS group "no limit from
	 * this pack" (CVL, CCL, DCL the largest value, DVL 0), dated by the
	 * round's first request, so that the safety layer's configured caps
	 * and its cell-based rules decide (as for a JK V1.0 pack without RCV).
	 */
	bool no_limits;
};

/*
 * The pure half of a polled serial BMS: what to send, how to find one
 * complete answer in the bytes that come back, and what it means. The
 * engine (src/) owns the tty, the timing (inter-frame gap, response
 * timeout, retries, reopen) and the counters; it calls these for every
 * pack address of the configured list, step 0 .. n_steps - 1 per round.
 * No I/O, no clock reads, no allocation, no logging.
 */
struct bms_serial_ops {
	uint32_t baud;		/* default baud rate */
	uint8_t address_min;	/* valid pack addresses, inclusive */
	uint8_t address_max;
	unsigned n_steps;	/* requests per pack and round */
	size_t answer_max;	/* longest answer, bytes (the engine's buffer) */
	/*
	 * Write the request of @step to pack @address into @buf. Returns its
	 * length, 0 if this step is skipped for this pack, -ENOBUFS.
	 */
	ssize_t (*request)(unsigned step, uint8_t address, uint8_t *buf, size_t n);
	/*
	 * Look for one complete answer to (@step, @address) at the START of
	 * @buf (@len bytes received so far). Returns its length (> 0) when
	 * complete and intact (checksum verified), 0 if more bytes are
	 * needed, -EBADMSG if the bytes at the start cannot begin such an
	 * answer or fail their checksum (the engine drops one byte and looks
	 * again: resynchronisation), -ENOMSG if it is a well-formed answer
	 * for another address or step (the engine drops that many bytes:
	 * *@skip), or an echo of our own request on a two-wire bus.
	 */
	ssize_t (*frame)(unsigned step, uint8_t address, const uint8_t *buf, size_t len,
			 size_t *skip);
	/*
	 * Decode one complete answer of @step into bs->packs[@pack] at
	 * @now_usec (the time of its REQUEST). Returns 0, or -EBADMSG with
	 * the state untouched (a well-framed answer whose content is
	 * impossible), -EPROTO for the BMS's own error answer.
	 */
	int (*decode)(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
		      uint64_t now_usec, struct battery_state *bs);
	/*
	 * Optional (both NULL: every answer is one frame, decoded by
	 * ->decode()). Families that answer one request with several frames
	 * whose number only an earlier answer tells (Daly 0x95 / 0x96 over
	 * UART: one frame per 3 cells / 7 sensors, counted by 0x94). The
	 * engine keeps one word per pack, @memo, 0 at start and whenever the
	 * pack goes silent (the BMS may have been replaced).
	 *
	 * ->answer_frames() says how many ->frame() frames make the answer of
	 * @step to a pack whose word is @memo: 1 for an ordinary step, 0 to
	 * skip the step this round (its count is not known yet, or another
	 * step reads the same values better). ->decode_memo() then takes the
	 * whole answer, its frames back to back, as ->decode() would, and may
	 * set *@memo (Daly: from 0x94). Frames the BMS sends beyond the count
	 * are the bus's noise, not an error.
	 */
	unsigned (*answer_frames)(unsigned step, uint32_t memo);
	int (*decode_memo)(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
			   uint64_t now_usec, struct battery_state *bs, uint32_t *memo);

	/*
	 * Optional: the journal. @log_module: the module of the engine's lines
	 * for this family (-d; NULL: "bms_serial"); @step_names: n_steps names
	 * ("trigger 0x1620"; NULL: "step N"); @method: said when the port opens.
	 */
	const char *log_module;
	const char *const *step_names;
	const char *method;

	/*
	 * Optional: answers that may come LATE (a link that buffers: serial
	 * over TCP, some USB adapters), matched to their request whatever
	 * request is current (JK-PB). With ->identify() the engine reads the
	 * bus at all times, not only in a wait window, keeps the send times of
	 * every pack's and step's unanswered requests, oldest first, and
	 * dates an answer by the OLDEST of its pack and step, whenever it
	 * comes; ->frame() is not used.
	 *
	 * ->identify() names the item at the START of @buf: returns its length
	 * (> 0) with *@ret filled, 0 if more bytes are needed (never when
	 * @final: the bus is quiet, nothing more will complete it), -EBADMSG
	 * if the first byte begins nothing (the engine drops it: noise).
	 */
	ssize_t (*identify)(const uint8_t *buf, size_t len, bool final,
			    struct bms_serial_item *ret);
	/*
	 * Optional, with ->identify(): a family whose block is read in parts
	 * (JK-PB's 0x1200 data, 256 bytes: a Modbus read carries at most 125
	 * registers). The engine keeps @part_size bytes and a time per pack;
	 * ->decode_part() replaces ->decode(): it may keep the answer there
	 * (return 0) or decode into bs->packs[@pack] (return 1). Parts are
	 * never taken late (they would join an image of newer reads).
	 */
	size_t part_size;
	int (*decode_part)(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
			   uint64_t now_usec, struct battery_state *bs, struct bms_serial_part *part);
};

/* What ->identify() found at the start of the bytes received. */
struct bms_serial_item {
	/* not an answer: our own request echoed, padding, a block we never ask for */
	bool other;
	/* the pack it names; -1: none (the pack asked now, if the step is the one asked) */
	int addr;
	/* the step it answers; -1: none of ours (a stray answer), or with @error any */
	int step;
	/*
	 * 0: an answer. Else the exchange failed: -EIO the BMS's exception,
	 * -EBADMSG an answer whose content is lost (JK-PB: a write echo with
	 * no frame before it).
	 */
	int error;
};

/* A block read in parts (->decode_part()), one per pack. */
struct bms_serial_part {
	uint64_t usec;	/* the oldest request behind the parts kept, 0: none */
	uint8_t *bytes; /* part_size bytes */
};

/**
 * bms_driver_find() - look a BMS driver up by name.
 * Return: the driver, or NULL.
 */
const struct bms_driver *bms_driver_find(const char *name);

/**
 * bms_driver_get() - the @i-th driver, sorted by name; NULL past the end.
 */
const struct bms_driver *bms_driver_get(size_t i);
