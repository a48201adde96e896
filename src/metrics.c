/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text exposition format 0.0.4 of a struct metrics_snapshot
 * (include/metrics.h). Families are written one after the other, each with
 * "# HELP" and "# TYPE" once and then all its samples (the format requires
 * a family's samples to be together). Values are integers of the state
 * written as exact decimals (53125 mV -> "53.125"), by integer arithmetic:
 * no double, no locale, no NaN. Label values are escaped (\\, \", \n) and
 * HELP texts too (\\, \n), as the format says.
 *
 * Families per pack carry pack="<address>" (bms { addresses }, else 1..n);
 * the bank (what the inverter is told, after the safety layer) has its own
 * families, bmsbridge_bank_*, so that a sum over pack never counts it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "battery.h"
#include "link_stats.h"
#include "macro.h"
#include "metrics.h"
#include "mqtt.h"
#include "safety.h"

struct out {
	char *buf;
	size_t n, len;
	bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (o->full) {
		return;
	}
	va_start(ap, fmt);
	r = vsnprintf(o->buf + o->len, o->n - o->len, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= o->n - o->len) {
		o->full = true;
		return;
	}
	o->len += (size_t)r;
}

/* @v / 10^@dec as an exact decimal, trailing zeros dropped: 53120, 3 -> "53.12" */
static const char *fixed(char *b, size_t n, int64_t v, unsigned dec)
{
	uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	uint64_t div = 1;
	uint64_t frac;
	int len;

	for (unsigned i = 0; i < dec; i++) {
		div *= 10;
	}
	frac = mag % div;
	len = snprintf(b, n, "%s%llu", v < 0 ? "-" : "", (unsigned long long)(mag / div));
	if (frac && len > 0 && (size_t)len < n) {
		snprintf(b + len, n - (size_t)len, ".%0*llu", (int)dec, (unsigned long long)frac);
		for (char *e = b + strlen(b) - 1; *e == '0'; e--) {
			*e = '\0';
		}
	}
	return b;
}

/* a label value, escaped: backslash, double quote and line feed */
static void put_escaped(struct out *o, const char *s, bool quote)
{
	for (; s && *s; s++) {
		if (*s == '\\') {
			put(o, "\\\\");
		} else if (*s == '\n') {
			put(o, "\\n");
		} else if (*s == '"' && quote) {
			put(o, "\\\"");
		} else {
			put(o, "%c", *s);
		}
	}
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s ", name);
	put_escaped(o, help, false);
	put(o, "\n# TYPE %s %s\n", name, type);
}

/* up to two labels (a NULL key ends them) and a value already formatted */
static void sample(struct out *o, const char *name, const char *k1, const char *v1, const char *k2,
		   const char *v2, const char *value)
{
	put(o, "%s", name);
	if (k1) {
		put(o, "{%s=\"", k1);
		put_escaped(o, v1, true);
		put(o, "\"");
		if (k2) {
			put(o, ",%s=\"", k2);
			put_escaped(o, v2, true);
			put(o, "\"");
		}
		put(o, "}");
	}
	put(o, " %s\n", value);
}

static void sample_u(struct out *o, const char *name, const char *k1, const char *v1,
		     const char *k2, const char *v2, uint64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
	sample(o, name, k1, v1, k2, v2, b);
}

/* a monotonic time as Unix seconds, to the millisecond */
static const char *unix_time(char *b, size_t n, const struct metrics_snapshot *s, uint64_t t)
{
	int64_t real = (int64_t)t + s->realtime_offset_usec;

	return fixed(b, n, real / 1000, 3);
}

/* ---- the numbers of one pack (or the bank) -------------------------------------- */

enum pack_value {
	PV_VOLTAGE,
	PV_CURRENT,
	PV_POWER,
	PV_SOC,
	PV_SOH,
	PV_REMAINING,
	PV_FULL,
	PV_CYCLES,
	PV_CELL_MIN,
	PV_CELL_MAX,
	PV_TEMP_MIN,
	PV_TEMP_MAX,
	PV_MOSFET,
	PV_CVL,
	PV_DVL,
	PV_CCL,
	PV_DCL,
};

struct pack_family {
	const char *name; /* after bmsbridge_pack_ / bmsbridge_bank_ */
	const char *help;
	enum battery_group group;
	enum pack_value value;
};

static const struct pack_family pack_families[] = {
	{ "voltage_volts", "Battery voltage.", BATTERY_GROUP_ELECTRICAL, PV_VOLTAGE },
	{ "current_amperes", "Battery current, positive while charging.", BATTERY_GROUP_ELECTRICAL,
	  PV_CURRENT },
	{ "power_watts", "Voltage times current, positive while charging.",
	  BATTERY_GROUP_ELECTRICAL, PV_POWER },
	{ "state_of_charge_ratio", "State of charge, 0 to 1.", BATTERY_GROUP_CAPACITY, PV_SOC },
	{ "state_of_health_ratio", "State of health, 0 to 1.", BATTERY_GROUP_CAPACITY, PV_SOH },
	{ "remaining_charge_coulombs", "Remaining capacity as the BMS reports it (1 Ah = 3600 C).",
	  BATTERY_GROUP_CAPACITY, PV_REMAINING },
	{ "full_charge_coulombs", "Full charge capacity as the BMS reports it (1 Ah = 3600 C).",
	  BATTERY_GROUP_CAPACITY, PV_FULL },
	{ "charge_cycles", "Charge cycles as the BMS counts them.", BATTERY_GROUP_CAPACITY,
	  PV_CYCLES },
	{ "cell_voltage_min_volts", "Lowest cell voltage.", BATTERY_GROUP_CELLS, PV_CELL_MIN },
	{ "cell_voltage_max_volts", "Highest cell voltage.", BATTERY_GROUP_CELLS, PV_CELL_MAX },
	{ "temperature_min_celsius", "Lowest cell temperature.", BATTERY_GROUP_TEMPS, PV_TEMP_MIN },
	{ "temperature_max_celsius", "Highest cell temperature.", BATTERY_GROUP_TEMPS,
	  PV_TEMP_MAX },
	{ "mosfet_temperature_celsius", "Temperature of the BMS's MOSFETs.", BATTERY_GROUP_TEMPS,
	  PV_MOSFET },
	{ "charge_voltage_limit_volts", "Charge voltage limit (CVL).", BATTERY_GROUP_LIMITS,
	  PV_CVL },
	{ "discharge_voltage_limit_volts", "Discharge voltage limit (DVL).", BATTERY_GROUP_LIMITS,
	  PV_DVL },
	{ "charge_current_limit_amperes", "Charge current limit (CCL).", BATTERY_GROUP_LIMITS,
	  PV_CCL },
	{ "discharge_current_limit_amperes", "Discharge current limit (DCL), a magnitude.",
	  BATTERY_GROUP_LIMITS, PV_DCL },
};

/* false: no such value (a sensor the BMS does not have) */
static bool pack_value(const struct battery_pack *p, enum pack_value v, char *b, size_t n)
{
	switch (v) {
	case PV_VOLTAGE:
		fixed(b, n, p->voltage_mv, 3);
		return true;
	case PV_CURRENT:
		fixed(b, n, p->current_ma, 3);
		return true;
	case PV_POWER:
		/* mV * mA = microwatt */
		fixed(b, n, (int64_t)p->voltage_mv * p->current_ma, 6);
		return true;
	case PV_SOC:
		fixed(b, n, battery_soc_cpct(p), 4); /* 0.01 % where the BMS says more */
		return true;
	case PV_SOH:
		fixed(b, n, p->soh_pct, 2);
		return true;
	case PV_REMAINING:
		/* 1 mAh = 3.6 C */
		fixed(b, n, (int64_t)p->remaining_mah * 36, 1);
		return true;
	case PV_FULL:
		fixed(b, n, (int64_t)p->full_mah * 36, 1);
		return true;
	case PV_CYCLES:
		fixed(b, n, p->cycles, 0);
		return true;
	case PV_CELL_MIN:
		fixed(b, n, p->cell_min_mv, 3);
		return p->cell_min_mv != 0;
	case PV_CELL_MAX:
		fixed(b, n, p->cell_max_mv, 3);
		return p->cell_max_mv != 0;
	case PV_TEMP_MIN:
		fixed(b, n, p->temp_min_dc, 1);
		return true;
	case PV_TEMP_MAX:
		fixed(b, n, p->temp_max_dc, 1);
		return true;
	case PV_MOSFET:
		fixed(b, n, p->mosfet_temp_dc, 1);
		return p->mosfet_temp_dc != BATTERY_TEMP_NONE;
	case PV_CVL:
		fixed(b, n, p->charge_voltage_limit_mv, 3);
		return true;
	case PV_DVL:
		fixed(b, n, p->discharge_voltage_limit_mv, 3);
		return true;
	case PV_CCL:
		fixed(b, n, p->charge_current_limit_ma, 3);
		return true;
	case PV_DCL:
		fixed(b, n, p->discharge_current_limit_ma, 3);
		return true;
	}
	return false;
}

static const char *pack_label(char *b, size_t n, const struct metrics_snapshot *s, unsigned i)
{
	snprintf(b, n, "%u", s->pack_addresses ? s->pack_addresses[i] : i + 1);
	return b;
}

static void render_pack_families(struct out *o, const struct metrics_snapshot *s)
{
	const struct battery_state *st = s->state;
	char name[96], help[160], v[32], pk[8];

	for (size_t f = 0; f < ARRAY_SIZE(pack_families); f++) {
		const struct pack_family *pf = &pack_families[f];
		bool any = false;

		/* the bank's family, then the packs' */
		snprintf(name, sizeof(name), "bmsbridge_bank_%s", pf->name);
		if (battery_pack_has(&st->bank, pf->group) &&
		    pack_value(&st->bank, pf->value, v, sizeof(v))) {
			snprintf(help, sizeof(help), "%s Of the bank, as the inverter is told.",
				 pf->help);
			family(o, name, "gauge", help);
			sample(o, name, NULL, NULL, NULL, NULL, v);
		}
		snprintf(name, sizeof(name), "bmsbridge_pack_%s", pf->name);
		for (unsigned i = 0; i < st->pack_count && i < BATTERY_PACKS_MAX; i++) {
			const struct battery_pack *p = &st->packs[i];

			if (!battery_pack_has(p, pf->group) ||
			    !pack_value(p, pf->value, v, sizeof(v))) {
				continue;
			}
			if (!any) {
				snprintf(help, sizeof(help), "%s Of one pack, as its BMS said.",
					 pf->help);
				family(o, name, "gauge", help);
				any = true;
			}
			sample(o, name, "pack", pack_label(pk, sizeof(pk), s, i), NULL, NULL, v);
		}
	}
}

/* alarms, warnings or requests of the bank (pk NULL) or a pack, one series per flag */
static void render_flags(struct out *o, const char *name, const char *pk, bool requests,
			 uint32_t bits)
{
	unsigned count = requests ? BATTERY_REQUEST__COUNT : BATTERY_ALARM__COUNT;
	const char *key = requests ? "request" : "flag";

	for (unsigned k = 0; k < count; k++) {
		uint32_t bit = 1u << k;
		const char *flag = requests ? battery_request_name(bit) : battery_alarm_name(bit);
		const char *v = bits & bit ? "1" : "0";

		if (pk) {
			sample(o, name, "pack", pk, key, flag, v);
		} else {
			sample(o, name, key, flag, NULL, NULL, v);
		}
	}
}

static void render_status_families(struct out *o, const struct metrics_snapshot *s)
{
	static const struct {
		const char *name, *help;
		size_t offset;
		bool requests;
	} sets[] = {
		{ "alarm", "1 while the protection (alarm) is active.",
		  offsetof(struct battery_pack, alarms), false },
		{ "warning", "1 while the warning is raised.",
		  offsetof(struct battery_pack, warnings), false },
		{ "request", "1 while the battery makes the request.",
		  offsetof(struct battery_pack, requests), true },
	};
	const struct battery_state *st = s->state;
	char name[64], pk[8];

	for (size_t f = 0; f < ARRAY_SIZE(sets); f++) {
		bool any = false;

		snprintf(name, sizeof(name), "bmsbridge_bank_%s", sets[f].name);
		if (battery_pack_has(&st->bank, BATTERY_GROUP_STATUS)) {
			family(o, name, "gauge", sets[f].help);
			render_flags(o, name, NULL, sets[f].requests,
				     *(const uint32_t *)((const char *)&st->bank + sets[f].offset));
		}
		snprintf(name, sizeof(name), "bmsbridge_pack_%s", sets[f].name);
		for (unsigned i = 0; i < st->pack_count && i < BATTERY_PACKS_MAX; i++) {
			const struct battery_pack *p = &st->packs[i];

			if (!battery_pack_has(p, BATTERY_GROUP_STATUS)) {
				continue;
			}
			if (!any) {
				family(o, name, "gauge", sets[f].help);
				any = true;
			}
			render_flags(o, name, pack_label(pk, sizeof(pk), s, i), sets[f].requests,
				     *(const uint32_t *)((const char *)p + sets[f].offset));
		}
	}
}

/* per cell and per temperature sensor, 1-based as the BMS's display counts them */
static void render_arrays(struct out *o, const struct metrics_snapshot *s)
{
	const struct battery_state *st = s->state;
	char v[32], pk[8], idx[8];
	bool any = false;

	for (unsigned i = 0; s->cells && i < st->pack_count && i < BATTERY_PACKS_MAX; i++) {
		const struct battery_pack *p = &st->packs[i];

		if (!battery_pack_has(p, BATTERY_GROUP_CELLS)) {
			continue;
		}
		for (unsigned c = 0; c < p->cell_count && c < BATTERY_CELLS_MAX; c++) {
			if (!any) {
				family(o, "bmsbridge_pack_cell_voltage_volts", "gauge",
				       "Voltage of one cell, cell 1 first.");
				any = true;
			}
			snprintf(idx, sizeof(idx), "%u", c + 1);
			sample(o, "bmsbridge_pack_cell_voltage_volts", "pack",
			       pack_label(pk, sizeof(pk), s, i), "cell", idx,
			       fixed(v, sizeof(v), p->cell_mv[c], 3));
		}
	}
	any = false;
	for (unsigned i = 0; i < st->pack_count && i < BATTERY_PACKS_MAX; i++) {
		const struct battery_pack *p = &st->packs[i];

		if (!battery_pack_has(p, BATTERY_GROUP_TEMPS)) {
			continue;
		}
		for (unsigned t = 0; t < p->temp_count && t < BATTERY_TEMPS_MAX; t++) {
			if (!any) {
				family(o, "bmsbridge_pack_temperature_celsius", "gauge",
				       "Temperature of one sensor, sensor 1 first.");
				any = true;
			}
			snprintf(idx, sizeof(idx), "%u", t + 1);
			sample(o, "bmsbridge_pack_temperature_celsius", "pack",
			       pack_label(pk, sizeof(pk), s, i), "sensor", idx,
			       fixed(v, sizeof(v), p->temp_dc[t], 1));
		}
	}
}

static void render_packs_meta(struct out *o, const struct metrics_snapshot *s)
{
	const struct battery_state *st = s->state;
	char v[32], pk[8];
	bool any = false;

	family(o, "bmsbridge_pack_online", "gauge",
	       "1 while the pack's data is fresh and complete (it counts for the bank).");
	for (unsigned i = 0; i < st->pack_count && i < BATTERY_PACKS_MAX; i++) {
		sample(o, "bmsbridge_pack_online", "pack", pack_label(pk, sizeof(pk), s, i), NULL,
		       NULL, s->packs_online_mask & (1u << i) ? "1" : "0");
	}
	for (unsigned i = 0; i < st->pack_count && i < BATTERY_PACKS_MAX; i++) {
		for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
			const struct battery_pack *p = &st->packs[i];

			if (!battery_pack_has(p, (enum battery_group)g)) {
				continue;
			}
			if (!any) {
				family(o, "bmsbridge_last_update_timestamp_seconds", "gauge",
				       "When the pack's BMS last sent this group of fields (Unix "
				       "time).");
				any = true;
			}
			sample(o, "bmsbridge_last_update_timestamp_seconds", "pack",
			       pack_label(pk, sizeof(pk), s, i), "group",
			       battery_group_name((enum battery_group)g),
			       unix_time(v, sizeof(v), s, p->updated_usec[g]));
		}
	}
}

static void render_gateway(struct out *o, const struct metrics_snapshot *s)
{
	static const char *const limit_names[METRICS_LIMITS] = {
		"charge_voltage", "discharge_voltage", "charge_current", "discharge_current"
	};
	static const enum safety_mode modes[] = {
		SAFETY_MODE_NOT_READY, SAFETY_MODE_NORMAL, SAFETY_MODE_HOLD,
		SAFETY_MODE_ZERO,      SAFETY_MODE_STOP,
	};

	family(o, "bmsbridge_build_info", "gauge", "The bmsbridge version, as a label; always 1.");
	sample(o, "bmsbridge_build_info", "version", s->version ? s->version : "", NULL, NULL, "1");

	family(o, "bmsbridge_safety_mode", "gauge",
	       "The safety layer's mode: 1 for the mode in force, 0 for the others.");
	for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
		sample(o, "bmsbridge_safety_mode", "mode", safety_mode_name(modes[i]), NULL, NULL,
		       s->mode == modes[i] ? "1" : "0");
	}
	family(o, "bmsbridge_limit_set_by", "gauge",
	       "What set each limit of the bank (bms, cap, floor, rules, comm-loss, conflict, "
	       "none); always 1.");
	for (unsigned i = 0; i < METRICS_LIMITS; i++) {
		sample(o, "bmsbridge_limit_set_by", "limit", limit_names[i], "by",
		       s->set_by[i] ? s->set_by[i] : "none", "1");
	}
	family(o, "bmsbridge_rejected_values_total", "counter",
	       "Implausible values the safety layer rejected since the daemon started.");
	sample_u(o, "bmsbridge_rejected_values_total", NULL, NULL, NULL, NULL, s->rejected);

	family(o, "bmsbridge_packs", "gauge", "Packs the BMS input reads.");
	sample_u(o, "bmsbridge_packs", NULL, NULL, NULL, NULL, s->state->pack_count);
	family(o, "bmsbridge_packs_online", "gauge", "Packs whose data is fresh and complete.");
	sample_u(o, "bmsbridge_packs_online", NULL, NULL, NULL, NULL, s->state->packs_online);
	family(o, "bmsbridge_inverter_present", "gauge",
	       "1 while the inverter was heard within its timeout.");
	sample(o, "bmsbridge_inverter_present", NULL, NULL, NULL, NULL,
	       s->inverter_present ? "1" : "0");
	if (s->inverter_heard_usec) {
		char v[32];

		family(o, "bmsbridge_inverter_last_heard_timestamp_seconds", "gauge",
		       "When the inverter was last heard (Unix time).");
		sample(o, "bmsbridge_inverter_last_heard_timestamp_seconds", NULL, NULL, NULL, NULL,
		       unix_time(v, sizeof(v), s, s->inverter_heard_usec));
	}
}

/* the four limits (and SOC) of the last frames the output took */
static void render_wire(struct out *o, const struct metrics_snapshot *s)
{
	static const struct {
		const char *name, *help;
		enum pack_value value;
	} wire[] = {
		{ "bmsbridge_wire_charge_voltage_limit_volts",
		  "Charge voltage limit (CVL) in the last frames sent to the inverter.", PV_CVL },
		{ "bmsbridge_wire_discharge_voltage_limit_volts",
		  "Discharge voltage limit (DVL) in the last frames sent to the inverter.",
		  PV_DVL },
		{ "bmsbridge_wire_charge_current_limit_amperes",
		  "Charge current limit (CCL) in the last frames sent to the inverter.", PV_CCL },
		{ "bmsbridge_wire_discharge_current_limit_amperes",
		  "Discharge current limit (DCL) in the last frames sent to the inverter.",
		  PV_DCL },
		{ "bmsbridge_wire_state_of_charge_ratio",
		  "State of charge in the last frames sent to the inverter, 0 to 1.", PV_SOC },
	};
	char v[32];

	if (s->have_wire && s->wire) {
		for (size_t i = 0; i < ARRAY_SIZE(wire); i++) {
			family(o, wire[i].name, "gauge", wire[i].help);
			pack_value(s->wire, wire[i].value, v, sizeof(v));
			sample(o, wire[i].name, NULL, NULL, NULL, NULL, v);
		}
		family(o, "bmsbridge_wire_last_sent_timestamp_seconds", "gauge",
		       "When the output last took frames for the inverter (Unix time).");
		sample(o, "bmsbridge_wire_last_sent_timestamp_seconds", NULL, NULL, NULL, NULL,
		       unix_time(v, sizeof(v), s, s->wire_usec));
	}
	family(o, "bmsbridge_wire_transmissions_total", "counter",
	       "Evaluations whose frames the output took: the whole set, or urgent frames only.");
	sample_u(o, "bmsbridge_wire_transmissions_total", "kind", "set", NULL, NULL, s->wire_sets);
	sample_u(o, "bmsbridge_wire_transmissions_total", "kind", "urgent", NULL, NULL,
		 s->wire_urgent);
	family(o, "bmsbridge_wire_refused_total", "counter",
	       "Evaluations whose frames the output refused (a send error).");
	sample_u(o, "bmsbridge_wire_refused_total", NULL, NULL, NULL, NULL, s->wire_refused);
}

/* the output's own counters, since the port was opened */
static void render_link(struct out *o, const struct metrics_snapshot *s)
{
	const struct inverter_link_stats *l = s->link;
	const struct {
		const char *name, *help;
		uint64_t v;
	} can[] = {
		{ "bmsbridge_inverter_can_frames_sent_total", "CAN frames sent to the inverter.",
		  l ? l->tx_frames : 0 },
		{ "bmsbridge_inverter_can_frames_received_total", "CAN frames received on its bus.",
		  l ? l->rx_frames : 0 },
		{ "bmsbridge_inverter_can_send_dropped_total",
		  "CAN frames not sent (the queue full, the bus off).", l ? l->tx_dropped : 0 },
		{ "bmsbridge_inverter_can_receive_overflows_total",
		  "CAN frames lost on receive (socket overflow).", l ? l->rx_overflows : 0 },
		{ "bmsbridge_inverter_can_error_frames_total", "CAN error frames seen.",
		  l ? l->error_frames : 0 },
		{ "bmsbridge_inverter_can_bus_off_total", "Times the CAN controller went bus-off.",
		  l ? l->bus_off : 0 },
	}, rs485[] = {
		{ "bmsbridge_inverter_rs485_polls_total", "Valid polls for our address.",
		  l ? l->polls : 0 },
		{ "bmsbridge_inverter_rs485_answered_total", "Polls answered with RTN 0.",
		  l ? l->answered : 0 },
		{ "bmsbridge_inverter_rs485_error_answers_total", "Polls answered with an error RTN.",
		  l ? l->errors : 0 },
		{ "bmsbridge_inverter_rs485_other_address_polls_total",
		  "Valid polls for another address.", l ? l->other_adr : 0 },
		{ "bmsbridge_inverter_rs485_malformed_total",
		  "Frames with a wrong checksum or length, or not frames at all.",
		  l ? l->malformed : 0 },
		{ "bmsbridge_inverter_rs485_noise_bytes_total",
		  "Bytes outside any frame (a baud rate mismatch).", l ? l->noise : 0 },
	};
	bool is_rs485 = s->transport && strcmp(s->transport, "rs485") == 0;

	if (!l) {
		return;
	}
	for (size_t i = 0; i < (is_rs485 ? ARRAY_SIZE(rs485) : ARRAY_SIZE(can)); i++) {
		const char *name = is_rs485 ? rs485[i].name : can[i].name;
		char help[128];

		snprintf(help, sizeof(help), "%s Since the port was opened.",
			 is_rs485 ? rs485[i].help : can[i].help);
		family(o, name, "counter", help);
		sample_u(o, name, NULL, NULL, NULL, NULL, is_rs485 ? rs485[i].v : can[i].v);
	}
	if (!is_rs485 && l->bus_state && l->bus_state[0]) {
		family(o, "bmsbridge_inverter_can_bus_state", "gauge",
		       "The CAN controller's state, as a label; always 1.");
		sample(o, "bmsbridge_inverter_can_bus_state", "state", l->bus_state, NULL, NULL,
		       "1");
	}
}

/* the MQTT client's counters (include/mqtt.h, struct mqtt_stats), when MQTT is enabled */
static void render_mqtt(struct out *o, const struct metrics_snapshot *s)
{
	const struct mqtt_stats *m = s->mqtt;
	const struct {
		const char *name, *type, *help;
		uint64_t v;
	} f[] = {
		{ "bmsbridge_mqtt_connected", "gauge", "1 while connected to the MQTT broker.",
		  m ? m->connected : 0 },
		{ "bmsbridge_mqtt_connects_total", "counter",
		  "Connections the MQTT broker accepted (CONNACK).", m ? m->connects : 0 },
		{ "bmsbridge_mqtt_disconnects_total", "counter",
		  "MQTT connections lost or refused.", m ? m->disconnects : 0 },
		{ "bmsbridge_mqtt_published_total", "counter",
		  "MQTT messages handed to the socket.", m ? m->published : 0 },
		{ "bmsbridge_mqtt_superseded_total", "counter",
		  "MQTT messages replaced in the queue by a newer one of the same topic.",
		  m ? m->superseded : 0 },
		{ "bmsbridge_mqtt_dropped_total", "counter",
		  "MQTT messages dropped because the queue was full (oldest first).",
		  m ? m->dropped : 0 },
		{ "bmsbridge_mqtt_queued_messages", "gauge",
		  "MQTT messages waiting for the broker now.", m ? m->queued : 0 },
		{ "bmsbridge_mqtt_queued_bytes", "gauge",
		  "Payload bytes of the MQTT messages waiting now.", m ? m->queued_bytes : 0 },
	};

	if (!m) {
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(f); i++) {
		family(o, f[i].name, f[i].type, f[i].help);
		sample_u(o, f[i].name, NULL, NULL, NULL, NULL, f[i].v);
	}
}

int metrics_render(const struct metrics_snapshot *s, char *buf, size_t n)
{
	struct out o = { .buf = buf, .n = n };

	if (n == 0) {
		return -ENOBUFS;
	}
	buf[0] = '\0';
	render_gateway(&o, s);
	render_wire(&o, s);
	render_link(&o, s);
	render_mqtt(&o, s);
	render_packs_meta(&o, s);
	render_pack_families(&o, s);
	render_status_families(&o, s);
	render_arrays(&o, s);
	if (o.full || o.len > INT32_MAX) {
		return -ENOBUFS;
	}
	return (int)o.len;
}

int metrics_parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len)
{
	struct sockaddr_storage ss = { 0 };
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	unsigned long port;
	char *end;
	size_t n;

	colon = s ? strrchr(s, ':') : NULL;
	if (!colon || colon == s) {
		return -EINVAL;
	}
	n = (size_t)(colon - s);
	if (s[0] == '[') {
		/* [v6]:port */
		if (n < 3 || s[n - 1] != ']' || n - 2 >= sizeof(host)) {
			return -EINVAL;
		}
		memcpy(host, s + 1, n - 2);
		host[n - 2] = '\0';
	} else {
		if (n >= sizeof(host)) {
			return -EINVAL;
		}
		memcpy(host, s, n);
		host[n] = '\0';
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end || errno || port < 1 || port > 65535) {
		return -EINVAL;
	}
	if (s[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) {
			return -EINVAL;
		}
		*ret_len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1) {
			return -EINVAL;
		}
		*ret_len = sizeof(*a);
	}
	*ret = ss;
	return 0;
}
