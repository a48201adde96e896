/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Daly "smart BMS": what its UART (protocols/daly.c) and CAN
 * (protocols/daly_can.c) sides share. The 0x90-0x98 answers carry the
 * same 8 data bytes on both (Daly UART/485 V1.2 §3, Daly CAN V1.0 §3).
 */
#include <stdint.h>

#include "battery.h"

/**
 * daly_decode_data() - decode the 8 data bytes of one single-frame answer.
 * @cmd: the data ID, 0x90-0x94 or 0x98
 * @d: its 8 data bytes
 * @p: the pack they describe; only the groups @cmd fills are touched
 * @now_usec: the time the groups are marked with
 *
 * Return: 0, -EBADMSG (impossible content: @p untouched), -EINVAL for
 * another ID (0x95 / 0x96 take several frames, 0x97 has no field).
 */
int daly_decode_data(uint8_t cmd, const uint8_t *d, struct battery_pack *p, uint64_t now_usec);
