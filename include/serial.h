/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A serial port on the sd-event loop (src/serial.c): raw 8N1 at 9600,
 * 19200 or 115200 baud, opened O_NONBLOCK | O_CLOEXEC | O_NOCTTY and
 * exclusively (TIOCEXCL), RS485 direction control through TIOCSRS485 where
 * the UART driver has it.
 *
 * The port survives a USB adapter that disappears: a read error, EOF or
 * hang-up closes it, and a timer reopens it with back-off (1 s doubling to
 * 30 s) until the device is back; the owner hears both through
 * ->state(open). Nothing here ever blocks the loop: reads are drained in
 * bounded rounds, writes go through a bounded queue that drains on EPOLLOUT.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

struct serial;

/* bytes received (never 0 of them) at @now_usec */
typedef void (*serial_read_fn)(struct serial *s, const uint8_t *buf, size_t n, uint64_t now_usec,
			       void *userdata);
/* the port just opened (true) or was lost (false) */
typedef void (*serial_state_fn)(struct serial *s, bool open, void *userdata);

#define SERIAL_TX_QUEUE 4096		 /* bytes the write queue holds */
#define SERIAL_BACKOFF_MIN_USEC 1000000	 /* first reopen attempt after 1 s */
#define SERIAL_BACKOFF_MAX_USEC 30000000 /* doubling up to 30 s */

struct serial_config {
	const char *path;
	uint32_t baud; /* 9600, 19200 or 115200 */
	bool rs485;    /* try TIOCSRS485 (RTS drives the transceiver) */
};

/**
 * serial_baud_supported() - whether @baud is one the port accepts.
 * Return: true for 9600, 19200 and 115200.
 */
bool serial_baud_supported(uint32_t baud);

/**
 * serial_new() - set up the port on @e and try to open it.
 * @e: the event loop
 * @cfg: path, baud, rs485 (path is copied)
 * @on_read: called with received bytes
 * @on_state: called on open and on loss; may be NULL
 * @userdata: passed to both
 * @ret: the port, also when it could not be opened yet (it keeps retrying)
 * Return: 0, -EINVAL (baud not supported, path too long), -ENOMEM, or an
 * sd-event error.
 */
int serial_new(sd_event *e, const struct serial_config *cfg, serial_read_fn on_read,
	       serial_state_fn on_state, void *userdata, struct serial **ret);

/**
 * serial_free() - close the port and drop its event sources. Safe from
 * inside the port's own ->on_read (the memory goes when it returns).
 * Return: NULL.
 */
struct serial *serial_free(struct serial *s);

/**
 * serial_write() - queue @n bytes; they go out as the tty accepts them.
 * Never blocks and never queues part of a message.
 * Return: 0, -ENOTCONN (port closed), -ENOBUFS (queue full, nothing queued).
 */
int serial_write(struct serial *s, const uint8_t *buf, size_t n);

/**
 * serial_read_now() - read what the tty holds now, without waiting for the
 * loop to dispatch the port's io source (a response timeout that fires with
 * the answer already in the tty must see it first). The bytes go to
 * ->on_read as usual; a read error is handled as in the loop
 * (->on_state(false), reopen with back-off). Never blocks.
 * Return: bytes read (0: none), or -ENOTCONN when the port is closed or
 * was lost meanwhile.
 */
ssize_t serial_read_now(struct serial *s);

/**
 * serial_is_open() - whether the port is open now.
 */
bool serial_is_open(const struct serial *s);

/**
 * serial_retry_usec() - when closed, the delay before the next reopen attempt.
 */
uint64_t serial_retry_usec(const struct serial *s);

/**
 * serial_path() - the configured path.
 */
const char *serial_path(const struct serial *s);
