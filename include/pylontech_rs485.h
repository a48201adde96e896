/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Pylontech RS485 ASCII framing, shared by the pure responder
 * (protocols/pylontech_rs485.c) and the serial output around it
 * (src/output_rs485.c), which needs to look at a request's header to log
 * what the inverter asks for and to tell a valid poll from noise.
 *
 *   '~' VER ADR CID1 CID2 LENGTH INFO CHKSUM '\r'
 *
 * every field after '~' is hex written as ASCII (two characters per byte):
 * the smallest frame is 18 bytes (no INFO).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct battery_pack;
struct battery_state;
struct protocol_options;

#define PYLON_RS485_SOI '~'
#define PYLON_RS485_EOI '\r'
#define PYLON_RS485_FRAME_MIN 18 /* '~' + 12 header chars + 4 CHKSUM + '\r' */
#define PYLON_RS485_CID1_BATTERY 0x46

/* RTN codes, carried in CID2 of a response (Pylontech RS485 protocol V3.3 §2.5.2) */
enum pylon_rs485_rtn {
	PYLON_RS485_RTN_OK = 0x00,
	PYLON_RS485_RTN_VER = 0x01,	/* VER error */
	PYLON_RS485_RTN_CHKSUM = 0x02,	/* CHKSUM error */
	PYLON_RS485_RTN_LCHKSUM = 0x03, /* LCHKSUM error */
	PYLON_RS485_RTN_CID2 = 0x04,	/* CID2 invalid */
	PYLON_RS485_RTN_FORMAT = 0x05,	/* command format error */
	PYLON_RS485_RTN_DATA = 0x06,	/* invalid data */
	PYLON_RS485_RTN_ADR = 0x90,	/* ADR error */
	PYLON_RS485_RTN_INTERNAL = 0x91, /* internal communication error */
};

/* What a request's header says, for logging and link monitoring. */
struct pylon_rs485_head {
	uint8_t ver;
	uint8_t adr;
	uint8_t cid1;
	uint8_t cid2;
	uint16_t length; /* LCHKSUM << 12 | LENID */
	bool chksum_ok;	 /* CHKSUM matches the frame */
	bool length_ok;	 /* LCHKSUM matches LENID and LENID the INFO length */
};

/**
 * pylon_rs485_is_response() - whether a frame is an answer, not a request:
 * its CID2 is an RTN code. Requests use CID2 0x42 and above.
 */
static inline bool pylon_rs485_is_response(const struct pylon_rs485_head *h)
{
	return h->cid2 <= PYLON_RS485_RTN_DATA || h->cid2 == PYLON_RS485_RTN_ADR ||
	       h->cid2 == PYLON_RS485_RTN_INTERNAL;
}

/**
 * pylon_rs485_peek() - decode the header of one complete frame.
 * @req: the frame, '~' to '\r' included
 * @n: its length
 * @ret: filled on success
 * Return: 0, or -EBADMSG if it is not a frame at all (too short, no '~'
 * or '\r', a non-hex character).
 */
int pylon_rs485_peek(const uint8_t *req, size_t n, struct pylon_rs485_head *ret);

/**
 * pylon_rs485_addressed() - whether a request is one we answer at all:
 * CID1 0x46 (V3.3 §2.5.1) and our ADR, or ADR 0x00 for the identity
 * commands 0x4F and 0x51. Everything else is another device's and gets
 * silence.
 * @h: the request's header
 * @our: our ADR, pylon_rs485_adr()
 */
bool pylon_rs485_addressed(const struct pylon_rs485_head *h, uint8_t our);

/**
 * pylon_rs485_ver_ok() - whether a request's VER is accepted: any VER on
 * 0x4F (V3.3 §3.1 "battery ignore VER value"), 0x20-0x3F on the others.
 * A request that fails this gets RTN 0x01.
 */
bool pylon_rs485_ver_ok(const struct pylon_rs485_head *h);

/**
 * pylon_rs485_answer_ver() - the VER an answer to @h carries: 0x20 (what a
 * real US2000B Plus answers) for 0x4F and for a VER we do not accept, the
 * request's own VER otherwise.
 */
uint8_t pylon_rs485_answer_ver(const struct pylon_rs485_head *h);

/**
 * pylon_rs485_adr() - the ADR we answer as, from options.rs485_address.
 * Pylontech numbers packs from ADR 0x02 (pack #1, the master); real
 * Voltronic/Vevor inverters and python-pylontech poll pack #1 at 0x02.
 * Return: rs485_address + 1 (2 for the default address 1).
 */
uint8_t pylon_rs485_adr(const struct protocol_options *opt);

/**
 * pylon_rs485_chksum() - CHKSUM over @n ASCII characters (those between
 * '~' and CHKSUM): the two's complement of their sum, modulo 65536.
 */
uint16_t pylon_rs485_chksum(const uint8_t *p, size_t n);

/**
 * pylon_rs485_length() - LENGTH for @lenid INFO characters: LCHKSUM in the
 * top nibble (two's complement of the sum of LENID's three nibbles, mod 16).
 */
uint16_t pylon_rs485_length(uint16_t lenid);

/*
 * The polling side of the same framing (YD/T 1363-style "~...\r"), shared
 * by the BMS input decoders of Pylontech RS485 (protocols/pylontech_rs485.c),
 * Seplos V2 (protocols/seplos_v2.c) and Pace (protocols/pace.c).
 */

/**
 * pylon_rs485_request() - build a request '~' VER ADR CID1 CID2 LENGTH INFO
 * CHKSUM '\r' with CID1 0x46 and @n_info INFO bytes written as hex.
 * Return: its length, or -ENOBUFS.
 */
ssize_t pylon_rs485_request(uint8_t ver, uint8_t adr, uint8_t cid2, const uint8_t *info,
			    size_t n_info, uint8_t *buf, size_t n);

/**
 * pylon_rs485_find_answer() - the struct bms_serial_ops ->frame() of these
 * families: one complete answer from @adr at the start of @buf.
 * @adr: the polled address
 * @req_cid2: the polled command (a frame carrying it is our own echo)
 * @max: longest answer; no '\r' within it is -EBADMSG
 * Return: its length, 0 for more bytes, -EBADMSG (not a frame, CHKSUM or
 * LCHKSUM wrong), -ENOMSG with *@skip set (an echo, another address's
 * answer, another CID1).
 */
ssize_t pylon_rs485_find_answer(uint8_t adr, uint8_t req_cid2, const uint8_t *buf, size_t len,
				size_t max, size_t *skip);

/*
 * The same two for a family with another CID1 on the same framing (EG4
 * LifePower4: 0x4A, protocols/eg4_lifepower4.c); the two above are these
 * with CID1 0x46.
 */
ssize_t pylon_rs485_request_cid1(uint8_t ver, uint8_t adr, uint8_t cid1, uint8_t cid2,
				 const uint8_t *info, size_t n_info, uint8_t *buf, size_t n);
ssize_t pylon_rs485_find_answer_cid1(uint8_t adr, uint8_t cid1, uint8_t req_cid2,
				     const uint8_t *buf, size_t len, size_t max, size_t *skip);

/**
 * pylon_rs485_answer_info() - the INFO of a framed answer as bytes.
 * @rtn: the answer's RTN (CID2)
 * Return: the number of INFO bytes, or -EBADMSG (not a frame, odd INFO,
 * bigger than @n_info).
 */
ssize_t pylon_rs485_answer_info(const uint8_t *ans, size_t len, uint8_t *info, size_t n_info,
				uint8_t *rtn);

/**
 * pylon_rs485_answer_data() - the INFO of a framed answer that carries
 * data (RTN 00), as the polled BMS families read it.
 * Return: the number of INFO bytes, -EBADMSG as pylon_rs485_answer_info(),
 * or -EPROTO for the pack's error answer (any other RTN: each family's
 * document lists its codes).
 */
ssize_t pylon_rs485_answer_data(const uint8_t *ans, size_t len, uint8_t *info, size_t n_info);

/* the largest INFO of a polled family's answer (pylon_rs485_decode_step()'s buffer) */
#define PYLON_RS485_STEP_INFO_MAX 255

/* one step's INFO decoder of a polled "~...\r" BMS family (bms_serial_ops ->decode()) */
typedef int (*pylon_rs485_info_fn)(const uint8_t *info, size_t n, struct battery_pack *p,
				   uint64_t now_usec);

/**
 * pylon_rs485_decode_step() - the ->decode() of a polled "~...\r" BMS
 * family (Pylontech RS485, Seplos V2, Pace, EG4 LifePower4): the INFO of
 * the answer (pylon_rs485_answer_data(), at most PYLON_RS485_STEP_INFO_MAX) handed to
 * @steps[@step] for bs->packs[@pack].
 * Return: what the step's decoder returns; -EBADMSG for a step or pack out
 * of range or a malformed frame, -EPROTO for the pack's error answer.
 */
int pylon_rs485_decode_step(const pylon_rs485_info_fn *steps, unsigned n_steps, unsigned step,
			    const uint8_t *ans, size_t len, unsigned pack, uint64_t now_usec,
			    struct battery_state *bs);
