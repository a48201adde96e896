/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The generic serial exchange engine (src/serial_engine.c): drives the
 * pure half of a polled serial BMS (struct bms_serial_ops, include/bms.h)
 * over a port of src/serial.c. The serial input (src/input_serial.c)
 * hands every driver with ->serial to it.
 */
#include <stddef.h>

#include "adapter.h"

/**
 * serial_engine_open() - set up the engine for ctx->driver->serial.
 * Return: 0, or a negative errno (bad configuration, no memory, sd-event).
 */
int serial_engine_open(struct input_ctx *ctx, struct input **ret);

/**
 * serial_engine_free() - stop the engine and close its port.
 * Return: NULL.
 */
struct input *serial_engine_free(struct input *in);

/**
 * serial_engine_status() - one phrase for STATUS=: packs online, the first
 * silent one, answers, timeouts and checksum errors.
 */
void serial_engine_status(struct input *in, char *buf, size_t n);
