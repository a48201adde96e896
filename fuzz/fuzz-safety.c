/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the safety layer: the input is a config and a
 * trace of BMS writes, reloads and receive batches. The safety layer parses
 * no bytes itself, but every value it judges comes from outside (a BMS),
 * so the fuzzer drives it with arbitrary values and times and aborts when
 * an invariant breaks. The oracle checks the caps IN FORCE (a reload may
 * have changed them just before), not those of the start:
 *   - every mode that sends (NORMAL, HOLD, ZERO): CCL, DCL and CVL at most
 *     the caps, DVL below CVL, DVL at least the floor unless nothing may
 *     flow (CCL = DCL = 0, no enable);
 *   - NORMAL: every group of the bank younger than stale_timeout, none
 *     from the future;
 *   - HOLD: nothing stale passed as fresh: no group of the bank newer than
 *     the last NORMAL evaluation;
 *   - ZERO/STOP: CCL = DCL = 0 with the link-lost alarm;
 *   - NOT_READY: the bank carries no group.
 *
 * Layout: 16 config bytes, then records of 24 bytes:
 *   0 pack, 1 group mask, 2-3 time step (ms), 4-5 cell mV (all), 6 spiked
 *   cell, 7-8 its mV, 9-10 pack voltage delta, 11 SOC, 12-13 temperature,
 *   14-15 CCL (0.1 A), 16-17 DCL (0.1 A), 18-19 CVL (10 mV), 20 requests
 *   (bits 0-4) and reload floor (bits 5-7), 21 flags: bit 0 reload before
 *   this write (caps from 20, 22, 23), bit 1 the same loop time as the
 *   last record (one receive batch), 22 reload CCL/DCL cap (A), 23 reload
 *   CVL cap (40 V + 80 mV steps).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "battery.h"
#include "byteorder.h"
#include "macro.h"
#include "protocol.h"
#include "safety.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_pack(struct battery_pack *p, const uint8_t *r, uint64_t now)
{
	unsigned mask = r[1];
	uint32_t sum = 0;

	p->cell_count = 16;
	for (unsigned i = 0; i < 16; i++) {
		p->cell_mv[i] = i == (r[6] & 15) ? get_le16(&r[7]) : get_le16(&r[4]);
		sum += p->cell_mv[i];
	}
	battery_pack_update_cell_extremes(p);
	p->voltage_mv = (uint32_t)((int32_t)sum + (int16_t)get_le16(&r[9]));
	p->soc_pct = r[11];
	p->full_mah = 100000u * (r[0] >> 4);
	p->temp_count = 2;
	p->temp_dc[0] = p->temp_dc[1] = (int16_t)get_le16(&r[12]);
	battery_pack_update_temp_extremes(p);
	p->charge_current_limit_ma = get_le16(&r[14]) * 100u;
	p->discharge_current_limit_ma = get_le16(&r[16]) * 100u;
	p->charge_voltage_limit_mv = get_le16(&r[18]) * 10u;
	p->discharge_voltage_limit_mv = 44000;
	p->requests = r[20] & BATTERY_REQUEST__ALL;
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		if (mask & (1u << g)) {
			battery_pack_mark(p, (enum battery_group)g, now);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const protos[] = { "pylontech", "victron", "deye", "growatt" };
	struct safety_config cfg;
	struct battery_state bs;
	struct safety s;
	uint64_t now = 1000000, last_normal = 0;

	if (size < 16) {
		return 0;
	}
	safety_config_defaults(&cfg);
	cfg.comm_loss = data[0] & 3;
	cfg.stale_timeout_usec = (500 + data[1] * 100u) * USEC_PER_MSEC;
	cfg.hold_max_usec = data[2] * USEC_PER_SEC;
	cfg.zero_to_stop_usec = data[3] * USEC_PER_SEC;
	cfg.recovery_reads = 1 + (data[4] & 7);
	cfg.spike_confirm_reads = 1 + (data[5] & 3);
	cfg.min_packs_online = (uint8_t)(1 + (data[6] & 3));
	cfg.max_charge_current_ma = data[7] * 1000u;
	cfg.max_discharge_current_ma = data[8] * 1000u;
	cfg.ramp_up_ma_per_sec = 1000u * (1 + data[9]);
	cfg.max_charge_voltage_mv = 50000 + data[10] * 40u;
	battery_state_init(&bs, 1 + (data[11] & 3));
	safety_init(&s, &cfg, protocol_find(protos[data[12] & 3]));
	data += 16;
	size -= 16;

	for (; size >= 24; data += 24, size -= 24) {
		enum safety_mode mode;
		const struct battery_pack *b = &bs.bank;
		bool flows;

		if (data[21] & 1) {
			cfg.max_charge_current_ma = data[22] * 1000u;
			cfg.max_discharge_current_ma = data[22] * 1000u;
			cfg.max_charge_voltage_mv = 40000 + data[23] * 80u;
			cfg.min_discharge_voltage_mv = 40000 + (data[20] >> 5) * 2000u;
			safety_reconfigure(&s, &cfg, protocol_find(protos[data[12] & 3]));
		}
		if (!(data[21] & 2)) {
			now += get_le16(&data[2]) * USEC_PER_MSEC;
		}
		write_pack(&bs.packs[(data[0] & 15) % bs.pack_count], data, now);
		mode = safety_evaluate(&s, &bs, now, NULL);
		flows = b->charge_current_limit_ma || b->discharge_current_limit_ma ||
			(b->requests & (BATTERY_REQUEST_CHARGE_ENABLE |
					BATTERY_REQUEST_DISCHARGE_ENABLE));
		if ((mode == SAFETY_MODE_NORMAL || mode == SAFETY_MODE_HOLD ||
		     mode == SAFETY_MODE_ZERO) &&
		    (b->charge_current_limit_ma > cfg.max_charge_current_ma ||
		     b->discharge_current_limit_ma > cfg.max_discharge_current_ma ||
		     b->charge_voltage_limit_mv > cfg.max_charge_voltage_mv ||
		     b->discharge_voltage_limit_mv >= b->charge_voltage_limit_mv ||
		     (b->discharge_voltage_limit_mv < cfg.min_discharge_voltage_mv && flows))) {
			abort();
		}
		switch (mode) {
		case SAFETY_MODE_NOT_READY:
			for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
				if (battery_pack_has(b, (enum battery_group)g)) {
					abort();
				}
			}
			break;
		case SAFETY_MODE_NORMAL:
			for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
				if (battery_pack_has(b, (enum battery_group)g) &&
				    (now - b->updated_usec[g] > cfg.stale_timeout_usec ||
				     b->updated_usec[g] > now)) {
					abort();
				}
			}
			last_normal = now;
			break;
		case SAFETY_MODE_HOLD:
			for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
				if (b->updated_usec[g] > last_normal) {
					abort();
				}
			}
			break;
		case SAFETY_MODE_ZERO:
		case SAFETY_MODE_STOP:
			if (b->charge_current_limit_ma || b->discharge_current_limit_ma ||
			    !(b->alarms & BATTERY_ALARM_BMS_LINK_LOST)) {
				abort();
			}
			break;
		}
	}
	return 0;
}
