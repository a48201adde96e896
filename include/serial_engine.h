/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The generic serial exchange engine (src/serial_engine.c): drives the
 * pure half of a polled serial BMS (struct bms_serial_ops, include/bms.h)
 * over a port of src/serial.c. The serial input (src/input_serial.c)
 * hands it every driver with ->serial, and JK-PB's polled read methods
 * (->serial_method()).
 */
#include "adapter.h"

struct bms_serial_ops;

/**
 * serial_engine_open() - set up the engine for @ops. The input it returns
 * carries its own ->free() and ->status() in (*ret)->ops.
 * Return: 0, or a negative errno (bad configuration, no memory, sd-event).
 */
int serial_engine_open(struct input_ctx *ctx, const struct bms_serial_ops *ops, struct input **ret);
