/* SPDX-License-Identifier: MIT */
/*
 * The gateway on the system bus (include/observer.h): org.bmsbridge.Gateway1
 * at /org/bmsbridge/Gateway1, one child object per pack at
 * /org/bmsbridge/Gateway1/pack/<address>. sd-bus on the bridge's own
 * sd-event loop: every evaluation copies what a client may read into this
 * observer (a few kB, no allocation, no I/O); property reads are answered
 * from that copy, so a client asking as fast as it can costs the loop one
 * small message per request and never delays an inverter frame by more
 * than one such answer. PropertiesChanged goes out from a timer, at most
 * every OBSERVER_DBUS_FLUSH_USEC, only for objects whose values changed.
 *
 * Without a system bus (a Pi without D-Bus, a container) the daemon says
 * so once and carries on; daemon { dbus = false } keeps it off the bus.
 * Units are in every property name (bmsbridged(8), "D-BUS INTERFACE").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#define LOG_MODULE "dbus"
#include "build-config.h"
#include "log.h"
#include "macro.h"
#include "observer.h"

#define IFACE_GATEWAY "org.bmsbridge.Gateway1"
#define IFACE_PACK "org.bmsbridge.Pack1"

/* ---- getters: userdata points at the field (vtable offset) --------------------- */

static int get_u(sd_bus *b, const char *p, const char *i, const char *prop, sd_bus_message *reply,
		 void *userdata, sd_bus_error *e)
{
	return sd_bus_message_append(reply, "u", *(const uint32_t *)userdata);
}

static int get_i(sd_bus *b, const char *p, const char *i, const char *prop, sd_bus_message *reply,
		 void *userdata, sd_bus_error *e)
{
	return sd_bus_message_append(reply, "i", *(const int32_t *)userdata);
}

static int get_q(sd_bus *b, const char *p, const char *i, const char *prop, sd_bus_message *reply,
		 void *userdata, sd_bus_error *e)
{
	return sd_bus_message_append(reply, "q", *(const uint16_t *)userdata);
}

static int get_n(sd_bus *b, const char *p, const char *i, const char *prop, sd_bus_message *reply,
		 void *userdata, sd_bus_error *e)
{
	return sd_bus_message_append(reply, "n", *(const int16_t *)userdata);
}

static int get_y(sd_bus *b, const char *p, const char *i, const char *prop, sd_bus_message *reply,
		 void *userdata, sd_bus_error *e)
{
	return sd_bus_message_append(reply, "y", *(const uint8_t *)userdata);
}

static int get_t(sd_bus *b, const char *p, const char *i, const char *prop, sd_bus_message *reply,
		 void *userdata, sd_bus_error *e)
{
	return sd_bus_message_append(reply, "t", *(const uint64_t *)userdata);
}

static int get_b(sd_bus *b, const char *p, const char *i, const char *prop, sd_bus_message *reply,
		 void *userdata, sd_bus_error *e)
{
	return sd_bus_message_append(reply, "b", (int)*(const bool *)userdata);
}

static int get_s(sd_bus *b, const char *p, const char *i, const char *prop, sd_bus_message *reply,
		 void *userdata, sd_bus_error *e)
{
	return sd_bus_message_append(reply, "s", (const char *)userdata);
}

/* 0-based index as 1-based position; 0: unknown */
static int get_pos(sd_bus *b, const char *p, const char *i, const char *prop, sd_bus_message *reply,
		   void *userdata, sd_bus_error *e)
{
	uint8_t idx = *(const uint8_t *)userdata;

	return sd_bus_message_append(reply, "y", idx == BATTERY_INDEX_NONE ? 0 : idx + 1);
}

/* a bit set as its names; userdata: the uint32_t bits, prop ends in "Requests" or not */
static int get_bits(sd_bus *b, const char *p, const char *i, const char *prop,
		    sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
	uint32_t bits = *(const uint32_t *)userdata;
	bool req = strstr(prop, "Requests") != NULL;
	unsigned count = req ? BATTERY_REQUEST__COUNT : BATTERY_ALARM__COUNT;
	int r;

	r = sd_bus_message_open_container(reply, 'a', "s");
	for (unsigned k = 0; r >= 0 && k < count; k++) {
		uint32_t bit = 1u << k;

		if (bits & bit) {
			r = sd_bus_message_append(reply, "s",
						  req ? battery_request_name(bit)
						      : battery_alarm_name(bit));
		}
	}
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* a pack's cells (aq) or temperatures (an), userdata: the pack */
static int get_cells(sd_bus *b, const char *p, const char *i, const char *prop,
		     sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
	const struct battery_pack *pk = userdata;

	return sd_bus_message_append_array(reply, 'q', pk->cell_mv,
					   pk->cell_count * sizeof(pk->cell_mv[0]));
}

static int get_temps(sd_bus *b, const char *p, const char *i, const char *prop,
		     sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
	const struct battery_pack *pk = userdata;

	return sd_bus_message_append_array(reply, 'n', pk->temp_dc,
					   pk->temp_count * sizeof(pk->temp_dc[0]));
}

/* the age of a pack's oldest group at the time of the request; UINT64_MAX: never read */
static int get_pack_age(sd_bus *b, const char *p, const char *i, const char *prop,
			sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
	const struct observer_dbus_pack *pk = userdata;
	uint64_t now = 0, oldest;

	sd_event_now(pk->owner->event, CLOCK_MONOTONIC, &now);
	oldest = battery_pack_oldest_usec(&pk->pack, (1u << BATTERY_GROUP__COUNT) - 1);
	return sd_bus_message_append(reply, "t",
				     oldest == BATTERY_NEVER ? UINT64_MAX
				     : now > oldest	     ? now - oldest
							     : UINT64_C(0));
}

static int get_uptime(sd_bus *b, const char *p, const char *i, const char *prop,
		      sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
	const struct observer_dbus *o = userdata;
	uint64_t now = 0;

	sd_event_now(o->event, CLOCK_MONOTONIC, &now);
	return sd_bus_message_append(reply, "t", now - o->start_usec);
}

/* the frames on the wire as (CAN id, data) pairs; RS485 answers are their CAN-shaped parts */
static int get_frames(sd_bus *b, const char *p, const char *i, const char *prop,
		      sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
	const struct observer_dbus *o = userdata;
	int r;

	r = sd_bus_message_open_container(reply, 'a', "(uay)");
	for (uint32_t k = 0; r >= 0 && k < o->n_frames; k++) {
		const struct can_frame *f = &o->frames[k];

		r = sd_bus_message_open_container(reply, 'r', "uay");
		if (r >= 0) {
			r = sd_bus_message_append(reply, "u", f->can_id);
		}
		if (r >= 0) {
			r = sd_bus_message_append_array(reply, 'y', f->data, f->len);
		}
		if (r >= 0) {
			r = sd_bus_message_close_container(reply);
		}
	}
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* the packs' addresses, each one an object .../pack/<address> */
static int get_addresses(sd_bus *b, const char *p, const char *i, const char *prop,
			 sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
	const struct observer_dbus *o = userdata;

	return sd_bus_message_append_array(reply, 'y', o->pack_addresses, o->pack_objects);
}

/* GetStatus(): the one-line status, the same as STATUS= (a read-only method) */
static int method_status(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	const struct observer_dbus *o = userdata;
	char line[512];

	snprintf(line, sizeof(line), "BMS %s: %s; %s: %s; inverter %s", o->mode, o->bms_status,
		 o->protocol, o->inverter_status, o->inverter_present ? "present" : "not heard");
	return sd_bus_reply_method_return(m, "s", line);
}

#define EC SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
#define GW(name, sig, get, field)                                                                  \
	SD_BUS_PROPERTY(name, sig, get, offsetof(struct observer_dbus, field), EC)
#define BANK(name, sig, get, field)                                                                \
	SD_BUS_PROPERTY(name, sig, get, offsetof(struct observer_dbus, bank.field), EC)
#define WIRE(name, sig, get, field)                                                                \
	SD_BUS_PROPERTY(name, sig, get, offsetof(struct observer_dbus, wire.field), EC)

static const sd_bus_vtable gateway_vtable[] = {
	SD_BUS_VTABLE_START(0),
	/* the gateway */
	SD_BUS_PROPERTY("Version", "s", get_s, offsetof(struct observer_dbus, version),
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("ConfigPath", "s", get_s, offsetof(struct observer_dbus, config_path),
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("UptimeUsec", "t", get_uptime, 0, 0),
	GW("BmsDriver", "s", get_s, driver),
	GW("BmsPort", "s", get_s, bms_port),
	GW("BmsPortOpen", "b", get_b, bms_port_open),
	GW("BmsStatus", "s", get_s, bms_status),
	GW("PackCount", "y", get_y, pack_count),
	GW("PacksOnline", "y", get_y, packs_online),
	SD_BUS_PROPERTY("PackAddresses", "ay", get_addresses, 0, EC),
	/* the safety decision */
	GW("Mode", "s", get_s, mode),
	GW("ModeReason", "s", get_s, reason),
	GW("Conflict", "s", get_s, conflict),
	GW("RejectedValues", "t", get_t, rejected),
	GW("LastRejected", "s", get_s, last_rejected),
	BANK("ChargeVoltageLimitMv", "u", get_u, charge_voltage_limit_mv),
	GW("ChargeVoltageLimitSetBy", "s", get_s, set_by[OBSERVER_LIMIT_CVL]),
	BANK("DischargeVoltageLimitMv", "u", get_u, discharge_voltage_limit_mv),
	GW("DischargeVoltageLimitSetBy", "s", get_s, set_by[OBSERVER_LIMIT_DVL]),
	BANK("ChargeCurrentLimitMa", "u", get_u, charge_current_limit_ma),
	GW("ChargeCurrentLimitSetBy", "s", get_s, set_by[OBSERVER_LIMIT_CCL]),
	BANK("DischargeCurrentLimitMa", "u", get_u, discharge_current_limit_ma),
	GW("DischargeCurrentLimitSetBy", "s", get_s, set_by[OBSERVER_LIMIT_DCL]),
	BANK("SocPct", "y", get_y, soc_pct),
	BANK("SohPct", "y", get_y, soh_pct),
	BANK("VoltageMv", "u", get_u, voltage_mv),
	BANK("CurrentMa", "i", get_i, current_ma),
	BANK("CellMinMv", "q", get_q, cell_min_mv),
	BANK("CellMaxMv", "q", get_q, cell_max_mv),
	BANK("TemperatureMinDc", "n", get_n, temp_min_dc),
	BANK("TemperatureMaxDc", "n", get_n, temp_max_dc),
	BANK("Alarms", "as", get_bits, alarms),
	BANK("Warnings", "as", get_bits, warnings),
	BANK("Requests", "as", get_bits, requests),
	/* what the inverter was told last: the bank those frames were encoded from */
	GW("WireKind", "s", get_s, wire_kind),
	GW("WireMonotonicUsec", "t", get_t, wire_usec),
	GW("WireError", "i", get_i, wire_error),
	SD_BUS_PROPERTY("WireFrames", "a(uay)", get_frames, 0, EC),
	WIRE("WireChargeVoltageLimitMv", "u", get_u, charge_voltage_limit_mv),
	WIRE("WireDischargeVoltageLimitMv", "u", get_u, discharge_voltage_limit_mv),
	WIRE("WireChargeCurrentLimitMa", "u", get_u, charge_current_limit_ma),
	WIRE("WireDischargeCurrentLimitMa", "u", get_u, discharge_current_limit_ma),
	WIRE("WireSocPct", "y", get_y, soc_pct),
	WIRE("WireSohPct", "y", get_y, soh_pct),
	WIRE("WireVoltageMv", "u", get_u, voltage_mv),
	WIRE("WireCurrentMa", "i", get_i, current_ma),
	WIRE("WireAlarms", "as", get_bits, alarms),
	WIRE("WireWarnings", "as", get_bits, warnings),
	WIRE("WireRequests", "as", get_bits, requests),
	/* the inverter side */
	GW("InverterProtocol", "s", get_s, protocol),
	GW("InverterTransport", "s", get_s, transport),
	GW("InverterPort", "s", get_s, inverter_port),
	GW("InverterPortOpen", "b", get_b, inverter_port_open),
	GW("InverterStatus", "s", get_s, inverter_status),
	GW("InverterHeard", "b", get_b, inverter_present),
	GW("InverterHeardMonotonicUsec", "t", get_t, inverter_heard_usec),
	GW("InverterBusState", "s", get_s, bus_state),
	GW("InverterTxFrames", "t", get_t, link.tx_frames),
	GW("InverterRxFrames", "t", get_t, link.rx_frames),
	GW("InverterTxDropped", "t", get_t, link.tx_dropped),
	GW("InverterRxOverflows", "t", get_t, link.rx_overflows),
	GW("InverterErrorFrames", "t", get_t, link.error_frames),
	GW("InverterBusOffCount", "t", get_t, link.bus_off),
	GW("InverterBaud", "u", get_u, link.baud),
	GW("InverterAddress", "y", get_y, link.address),
	GW("InverterPolls", "t", get_t, link.polls),
	GW("InverterPollsAnswered", "t", get_t, link.answered),
	GW("InverterErrorAnswers", "t", get_t, link.errors),
	GW("InverterPollsOtherAddress", "t", get_t, link.other_adr),
	GW("InverterOtherAddress", "y", get_y, link.top_other_adr),
	GW("InverterPollCommand", "y", get_y, link.top_cid2),
	GW("InverterMalformed", "t", get_t, link.malformed),
	GW("InverterNoiseBytes", "t", get_t, link.noise),
	GW("InverterErrorCommand", "y", get_y, link.err_cid2),
	GW("InverterErrorRtn", "y", get_y, link.err_rtn),
	GW("InverterErrorsInRow", "t", get_t, link.err_in_row),
	SD_BUS_METHOD("GetStatus", "", "s", method_status, 0),
	SD_BUS_VTABLE_END,
};

#define PK(name, sig, get, field)                                                                  \
	SD_BUS_PROPERTY(name, sig, get, offsetof(struct observer_dbus_pack, pack.field), EC)

static const sd_bus_vtable pack_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Address", "y", get_y, offsetof(struct observer_dbus_pack, address),
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Online", "b", get_b, offsetof(struct observer_dbus_pack, online), EC),
	SD_BUS_PROPERTY("AgeUsec", "t", get_pack_age, 0, 0),
	PK("SocPct", "y", get_y, soc_pct),
	PK("SohPct", "y", get_y, soh_pct),
	PK("VoltageMv", "u", get_u, voltage_mv),
	PK("CurrentMa", "i", get_i, current_ma),
	PK("RemainingMah", "u", get_u, remaining_mah),
	PK("FullMah", "u", get_u, full_mah),
	PK("Cycles", "u", get_u, cycles),
	SD_BUS_PROPERTY("CellsMv", "aq", get_cells, offsetof(struct observer_dbus_pack, pack), EC),
	PK("CellMinMv", "q", get_q, cell_min_mv),
	PK("CellMinPosition", "y", get_pos, cell_min_idx),
	PK("CellMaxMv", "q", get_q, cell_max_mv),
	PK("CellMaxPosition", "y", get_pos, cell_max_idx),
	SD_BUS_PROPERTY("CellDeltaMv", "q", get_q,
			offsetof(struct observer_dbus_pack, cell_delta_mv), EC),
	SD_BUS_PROPERTY("TemperaturesDc", "an", get_temps,
			offsetof(struct observer_dbus_pack, pack), EC),
	PK("TemperatureMinDc", "n", get_n, temp_min_dc),
	PK("TemperatureMaxDc", "n", get_n, temp_max_dc),
	PK("MosfetTemperatureDc", "n", get_n, mosfet_temp_dc),
	PK("ChargeVoltageLimitMv", "u", get_u, charge_voltage_limit_mv),
	PK("DischargeVoltageLimitMv", "u", get_u, discharge_voltage_limit_mv),
	PK("ChargeCurrentLimitMa", "u", get_u, charge_current_limit_ma),
	PK("DischargeCurrentLimitMa", "u", get_u, discharge_current_limit_ma),
	PK("Alarms", "as", get_bits, alarms),
	PK("Warnings", "as", get_bits, warnings),
	PK("Requests", "as", get_bits, requests),
	SD_BUS_VTABLE_END,
};

/* ---- the snapshot ----------------------------------------------------------------- */

static void copy_str(char *dst, size_t n, const char *src)
{
	size_t len = src ? strnlen(src, n - 1) : 0;

	if (len) {
		memcpy(dst, src, len);
	}
	dst[len] = '\0';
}

static void arm_flush(struct observer_dbus *o);

static void take_pack(struct observer_dbus *o, unsigned i, const struct battery_pack *p,
		      bool online)
{
	struct observer_dbus_pack *pk = &o->packs[i];
	struct observer_dbus_pack next = *pk;

	next.pack = *p;
	next.online = online;
	next.cell_delta_mv =
		p->cell_max_mv >= p->cell_min_mv ? (uint16_t)(p->cell_max_mv - p->cell_min_mv) : 0;
	/* a new write of the same values (only the group times moved) is no change */
	memcpy(next.pack.updated_usec, pk->pack.updated_usec, sizeof(next.pack.updated_usec));
	if (memcmp(&next, pk, sizeof(next)) != 0) {
		o->dirty_packs |= 1u << i;
	}
	pk->pack = *p;
	pk->online = online;
	pk->cell_delta_mv = next.cell_delta_mv;
}

static bool set_str(char *dst, size_t n, const char *src)
{
	size_t len = src ? strnlen(src, n - 1) : 0;

	if (strncmp(dst, src ? src : "", len) == 0 && dst[len] == '\0') {
		return false;
	}
	copy_str(dst, n, src);
	return true;
}

#define SET_STR(o, field, src) ((o)->dirty |= set_str((o)->field, sizeof((o)->field), (src)))
#define SET_VAL(o, field, v)                                                                       \
	do {                                                                                       \
		if ((o)->field != (v)) {                                                           \
			(o)->field = (v);                                                          \
			(o)->dirty = true;                                                         \
		}                                                                                  \
	} while (0)

static void take_wire(struct observer_dbus *o, const struct observer_evaluation *ev)
{
	const struct observer_tx *tx = &ev->tx;
	size_t n = tx->n_frames < OBSERVER_DBUS_FRAMES_MAX ? tx->n_frames
							   : OBSERVER_DBUS_FRAMES_MAX;

	if (tx->kind == OBSERVER_WIRE_NONE) {
		return;
	}
	SET_STR(o, wire_kind, tx->kind == OBSERVER_WIRE_SET ? "set" : "urgent");
	SET_VAL(o, wire_error, tx->error);
	o->wire_usec = ev->now_usec;
	if (tx->error < 0) {
		return; /* the inverter learnt nothing new */
	}
	if (memcmp(&o->wire, &ev->state->bank, sizeof(o->wire)) != 0) {
		o->wire = ev->state->bank;
		o->dirty = true;
	}
	if (o->n_frames != n || memcmp(o->frames, tx->frames, n * sizeof(o->frames[0])) != 0) {
		memcpy(o->frames, tx->frames, n * sizeof(o->frames[0]));
		o->n_frames = (uint32_t)n;
		o->dirty = true;
	}
}

static void dbus_evaluated(struct observer *base, const struct observer_evaluation *ev)
{
	struct observer_dbus *o = container_of(base, struct observer_dbus, base);
	const struct battery_state *st = ev->state;
	struct battery_pack bank = st->bank;

	if (!o->bus) {
		return;
	}
	SET_STR(o, mode, safety_mode_name(ev->decision.mode));
	SET_STR(o, reason, ev->decision.reason);
	SET_STR(o, conflict, ev->decision.conflict);
	SET_STR(o, last_rejected, ev->decision.last_rejected);
	SET_VAL(o, rejected, ev->decision.rejected);
	for (unsigned i = 0; i < OBSERVER_LIMIT__COUNT; i++) {
		SET_STR(o, set_by[i], ev->decision.set_by[i]);
	}
	SET_VAL(o, packs_online, st->packs_online);
	SET_VAL(o, pack_count, st->pack_count);
	memcpy(bank.updated_usec, o->bank.updated_usec, sizeof(bank.updated_usec));
	if (memcmp(&bank, &o->bank, sizeof(bank)) != 0) {
		o->dirty = true;
	}
	o->bank = st->bank;
	take_wire(o, ev);
	SET_VAL(o, inverter_present, ev->inverter_present);
	SET_VAL(o, inverter_heard_usec, ev->inverter_heard_usec);
	if (ev->cause == OBSERVER_CAUSE_TICK || ev->cause == OBSERVER_CAUSE_RELOAD) {
		char buf[160];

		/* the ports' phrases carry counters: refreshed once a tick, not per frame */
		ev->port_status(ev, true, buf, sizeof(buf));
		SET_STR(o, inverter_status, buf);
		ev->port_status(ev, false, buf, sizeof(buf));
		SET_STR(o, bms_status, buf);
	}
	if (ev->inverter_stats) {
		const struct inverter_link_stats *l = ev->inverter_stats;

		SET_STR(o, bus_state, l->bus_state);
		if (memcmp(&o->link.tx_frames, &l->tx_frames,
			   sizeof(*l) - offsetof(struct inverter_link_stats, tx_frames)) != 0) {
			o->link = *l;
			o->link.bus_state = NULL; /* bus_state[] holds it */
			o->dirty = true;
		}
	}
	for (unsigned i = 0; i < st->pack_count && i < o->pack_objects; i++) {
		take_pack(o, i, &st->packs[i], ev->decision.packs_online_mask & (1u << i));
	}
	if (o->dirty || o->dirty_packs) {
		arm_flush(o);
	}
}

static void dbus_link(struct observer *base, const struct observer_link_event *ev)
{
	struct observer_dbus *o = container_of(base, struct observer_dbus, base);

	if (!o->bus) {
		return;
	}
	switch (ev->link) {
	case OBSERVER_LINK_INPUT:
		SET_VAL(o, bms_port_open, ev->up);
		break;
	case OBSERVER_LINK_OUTPUT:
		SET_VAL(o, inverter_port_open, ev->up);
		break;
	case OBSERVER_LINK_INVERTER:
		SET_VAL(o, inverter_present, ev->up);
		break;
	}
	arm_flush(o);
}

/* one object per pack the input reads, named by its address; a reload re-registers them */
static void register_packs(struct observer_dbus *o, unsigned count, const uint8_t *addresses)
{
	bool same = count == o->pack_objects;

	for (unsigned i = 0; same && i < count; i++) {
		same = o->pack_addresses[i] == (addresses ? addresses[i] : i + 1);
	}
	if (same) {
		return;
	}
	while (o->pack_objects > 0) {
		struct observer_dbus_pack *pk = &o->packs[--o->pack_objects];

		pk->slot = sd_bus_slot_unref(pk->slot);
	}
	while (o->pack_objects < count && o->pack_objects < BATTERY_PACKS_MAX) {
		struct observer_dbus_pack *pk = &o->packs[o->pack_objects];
		char path[64];
		int r;

		battery_pack_init(&pk->pack);
		pk->owner = o;
		pk->address = addresses ? addresses[o->pack_objects]
					: (uint8_t)(o->pack_objects + 1);
		o->pack_addresses[o->pack_objects] = pk->address;
		pk->online = false;
		snprintf(path, sizeof(path), OBSERVER_DBUS_PATH "/pack/%u", pk->address);
		r = sd_bus_add_object_vtable(o->bus, &pk->slot, path, IFACE_PACK, pack_vtable, pk);
		if (r < 0) {
			log_warning("Cannot publish %s: %s", path, strerror(-r));
			return;
		}
		o->pack_objects++;
	}
}

static void dbus_configured(struct observer *base, const struct observer_config *ev)
{
	struct observer_dbus *o = container_of(base, struct observer_dbus, base);

	if (!o->bus) {
		return;
	}
	SET_STR(o, protocol, ev->protocol);
	SET_STR(o, driver, ev->driver);
	SET_STR(o, transport, ev->transport);
	SET_STR(o, inverter_port, ev->inverter_port);
	SET_STR(o, bms_port, ev->bms_port);
	register_packs(o, ev->pack_count, ev->pack_addresses);
	o->dirty = true; /* PackAddresses */
	arm_flush(o);
}

static const struct observer_ops dbus_ops = {
	.name = "dbus",
	.evaluated = dbus_evaluated,
	.link = dbus_link,
	.configured = dbus_configured,
};

/* ---- signals: at most one batch per OBSERVER_DBUS_FLUSH_USEC ---------------------- */

static int on_flush(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct observer_dbus *o = userdata;
	int r;

	o->flush_armed = false;
	if (o->dirty) {
		o->dirty = false;
		/* NULL names: every property marked EMITS_CHANGE, with its value */
		r = sd_bus_emit_properties_changed_strv(o->bus, OBSERVER_DBUS_PATH, IFACE_GATEWAY,
							NULL);
		if (r < 0) {
			log_debug("PropertiesChanged: %s", strerror(-r));
		}
	}
	for (unsigned i = 0; i < o->pack_objects; i++) {
		char path[64];

		if (!(o->dirty_packs & (1u << i))) {
			continue;
		}
		snprintf(path, sizeof(path), OBSERVER_DBUS_PATH "/pack/%u", o->packs[i].address);
		r = sd_bus_emit_properties_changed_strv(o->bus, path, IFACE_PACK, NULL);
		if (r < 0) {
			log_debug("PropertiesChanged %s: %s", path, strerror(-r));
		}
	}
	o->dirty_packs = 0;
	return 0;
}

static void arm_flush(struct observer_dbus *o)
{
	uint64_t now = 0;
	int r;

	if (o->flush_armed || !o->flush) {
		return;
	}
	sd_event_now(o->event, CLOCK_MONOTONIC, &now);
	r = sd_event_source_set_time(o->flush, now + OBSERVER_DBUS_FLUSH_USEC);
	if (r >= 0) {
		r = sd_event_source_set_enabled(o->flush, SD_EVENT_ONESHOT);
	}
	if (r >= 0) {
		o->flush_armed = true;
	}
}

static int on_name(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	const sd_bus_error *err = sd_bus_message_get_error(m);

	if (err) {
		log_warning("Cannot own %s on the system bus (%s), the state is not "
			    "published; is the policy file installed?",
			    OBSERVER_DBUS_NAME, err->message ? err->message : err->name);
		return 0;
	}
	log_info("On the system bus as %s", OBSERVER_DBUS_NAME);
	return 0;
}

int observer_dbus_start(struct observer_dbus *o, sd_event *e, const char *config_path)
{
	int r;

	*o = (struct observer_dbus){ .base = { .ops = &dbus_ops }, .event = e };
	sd_event_now(e, CLOCK_MONOTONIC, &o->start_usec);
	copy_str(o->version, sizeof(o->version), VERSION);
	copy_str(o->config_path, sizeof(o->config_path), config_path);
	copy_str(o->mode, sizeof(o->mode), safety_mode_name(SAFETY_MODE_NOT_READY));
	copy_str(o->wire_kind, sizeof(o->wire_kind), "none");
	for (unsigned i = 0; i < OBSERVER_LIMIT__COUNT; i++) {
		copy_str(o->set_by[i], sizeof(o->set_by[i]), "none");
	}
	battery_pack_init(&o->bank);
	battery_pack_init(&o->wire);
	o->link.top_other_adr = o->link.top_cid2 = o->link.err_cid2 = LINK_STATS_NONE;

	r = sd_bus_open_system(&o->bus);
	if (r < 0) {
		o->bus = NULL;
		log_warning("No system bus (%s): the state is not published on D-Bus, "
			    "everything else works",
			    strerror(-r));
		return r;
	}
	/* never a blocking flush at exit, never leave the loop on a lost bus */
	sd_bus_set_close_on_exit(o->bus, false);
	sd_bus_set_exit_on_disconnect(o->bus, false);
	r = sd_bus_add_object_vtable(o->bus, &o->slot, OBSERVER_DBUS_PATH, IFACE_GATEWAY,
				     gateway_vtable, o);
	if (r >= 0) {
		r = sd_bus_add_object_manager(o->bus, NULL, OBSERVER_DBUS_PATH);
	}
	if (r >= 0) {
		r = sd_event_add_time(e, &o->flush, CLOCK_MONOTONIC, 0, 0, on_flush, o);
	}
	if (r >= 0) {
		r = sd_event_source_set_enabled(o->flush, SD_EVENT_OFF);
	}
	if (r >= 0) {
		r = sd_bus_attach_event(o->bus, e, SD_EVENT_PRIORITY_NORMAL);
	}
	if (r >= 0) {
		r = sd_bus_request_name_async(o->bus, NULL, OBSERVER_DBUS_NAME, 0, on_name, o);
	}
	if (r < 0) {
		log_warning("Cannot publish on the system bus: %s; everything else works",
			    strerror(-r));
		observer_dbus_stop(o);
		return r;
	}
	return 0;
}

void observer_dbus_stop(struct observer_dbus *o)
{
	for (unsigned i = 0; i < o->pack_objects; i++) {
		o->packs[i].slot = sd_bus_slot_unref(o->packs[i].slot);
	}
	o->pack_objects = 0;
	o->slot = sd_bus_slot_unref(o->slot);
	o->flush = sd_event_source_disable_unref(o->flush);
	if (o->bus) {
		sd_bus_detach_event(o->bus);
		o->bus = sd_bus_close_unref(o->bus);
	}
}
