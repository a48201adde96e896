/* SPDX-License-Identifier: MIT */
/*
 * What the gateway publishes over MQTT (include/observer_mqtt.h), through
 * struct mqtt_sink (include/mqtt.h): the state topics and Home Assistant
 * MQTT discovery. bmsbridged(8) "MQTT" is the reference for every topic,
 * key, unit and entity; the comments here say why.
 *
 * The hot path (every BMS frame) only fills a snapshot of integers in the
 * published units and compares it with the last one; JSON is written only
 * for a topic that is due, into a stack buffer. The JSON is written with
 * snprintf, not json-c: every number is an integer scaled to its display
 * unit and printed with fixed decimals ("52.30", never 52.299999), which
 * json-c's double serialiser does not give; the daemon gains no library
 * and no allocation per message; the only free text (the mode's reason,
 * the driver and protocol names) goes through json_escape() below. The
 * unit test parses every payload with json-c as the independent check.
 *
 * Home Assistant discovery follows the MQTT integration's documentation
 * (www.home-assistant.io/integrations/mqtt/, "MQTT Discovery": topic
 * <discovery_prefix>/<component>/[<node_id>/]<object_id>/config, retained;
 * an empty retained payload removes the entity; the availability list and
 * availability_mode; expire_after), and the sensor's and binary_sensor's
 * pages (www.home-assistant.io/integrations/sensor.mqtt/,
 * binary_sensor.mqtt/) and www.home-assistant.io/integrations/sensor/ for
 * the device classes, their units and the state classes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LOG_MODULE "mqtt"
#include "build-config.h"
#include "log.h"
#include "macro.h"
#include "observer_mqtt.h"
#include "protocol.h"

#define NONE OBSERVER_MQTT_NONE
/* a topic or name built from the base topic: room for what follows it */
#define TBUF (MQTT_TOPIC_MAX + 64)

/* ---- a small JSON writer: fixed decimals, escaped strings, no allocation ------------ */

struct jw {
	char *buf;
	size_t n, len;
	bool overflow;
	bool after_key;
	unsigned depth;
	bool comma[8]; /* a value was written at this depth */
};

static void jw_init(struct jw *w, char *buf, size_t n)
{
	*w = (struct jw){ .buf = buf, .n = n };
	buf[0] = '\0';
}

static void jw_raw(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void jw_raw(struct jw *w, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (w->overflow) {
		return;
	}
	va_start(ap, fmt);
	k = vsnprintf(w->buf + w->len, w->n - w->len, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= w->n - w->len) {
		w->overflow = true;
		w->buf[w->len] = '\0';
		return;
	}
	w->len += (size_t)k;
}

/* @n bytes of @s as they are */
static void jw_put(struct jw *w, const char *s, size_t n)
{
	if (w->overflow) {
		return;
	}
	if (n >= w->n - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

/* the separator before a value (or a key) */
static void jw_sep(struct jw *w)
{
	if (w->after_key) {
		w->after_key = false;
	} else if (w->comma[w->depth]) {
		jw_put(w, ",", 1);
	}
	w->comma[w->depth] = true;
}

static void jw_open(struct jw *w, char c)
{
	jw_sep(w);
	jw_put(w, &c, 1);
	if (w->depth + 1 < ARRAY_SIZE(w->comma)) {
		w->depth++;
	} else {
		w->overflow = true;
	}
	w->comma[w->depth] = false;
}

static void jw_close(struct jw *w, char c)
{
	jw_put(w, &c, 1);
	if (w->depth > 0) {
		w->depth--;
	}
}

/* a JSON string (RFC 8259 section 7): quote, backslash and control characters escaped */
static void jw_strval(struct jw *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	jw_put(w, "\"", 1);
	while (*p) {
		size_t run = 0;

		while (p[run] && p[run] != '"' && p[run] != '\\' && p[run] >= 0x20) {
			run++;
		}
		jw_put(w, (const char *)p, run);
		p += run;
		if (*p == '"' || *p == '\\') {
			jw_raw(w, "\\%c", *p++);
		} else if (*p) {
			jw_raw(w, "\\u%04x", *p++);
		}
	}
	jw_put(w, "\"", 1);
}

static void jw_key(struct jw *w, const char *key)
{
	jw_sep(w);
	jw_strval(w, key);
	jw_put(w, ":", 1);
	w->after_key = true;
}

static void jw_str(struct jw *w, const char *key, const char *s)
{
	if (key) {
		jw_key(w, key);
	}
	jw_sep(w);
	jw_strval(w, s);
}

/* @v scaled by 10^@decimals, printed with exactly @decimals decimals; NONE: null */
static void jw_fixed(struct jw *w, const char *key, int32_t v, unsigned decimals)
{
	static const uint32_t pow10[] = { 1, 10, 100, 1000 };
	uint64_t a;

	jw_key(w, key);
	jw_sep(w);
	if (v == NONE) {
		jw_put(w, "null", 4);
		return;
	}
	a = v < 0 ? (uint64_t)(-(int64_t)v) : (uint64_t)v;
	if (decimals == 0) {
		jw_raw(w, "%s%" PRIu64, v < 0 ? "-" : "", a);
		return;
	}
	jw_raw(w, "%s%" PRIu64 ".%0*" PRIu64, v < 0 ? "-" : "", a / pow10[decimals], (int)decimals,
	       a % pow10[decimals]);
}

static void jw_int(struct jw *w, const char *key, int64_t v)
{
	jw_key(w, key);
	jw_sep(w);
	jw_raw(w, "%" PRId64, v);
}

static void jw_bool(struct jw *w, const char *key, bool v)
{
	jw_key(w, key);
	jw_sep(w);
	jw_put(w, v ? "true" : "false", v ? 4 : 5);
}

/* ---- the entities ---------------------------------------------------------------- */

/*
 * One Home Assistant entity: the key of its value in the state topic's
 * JSON, and what HA needs to show and keep it. Device classes and units
 * from www.home-assistant.io/integrations/sensor/ ("Device class": battery
 * %, voltage V/mV, current A, power W, temperature degC; "State class":
 * measurement, total_increasing) and binary_sensor/ (connectivity,
 * problem). A remaining capacity in Ah has no device class there: unit
 * "Ah" and state_class measurement only, so HA still keeps statistics.
 */
struct entity {
	const char *key;	  /* JSON key in the state, also the object id's tail */
	const char *name;	  /* entity name (HA prefixes the device's name) */
	const char *component;	  /* "sensor", "binary_sensor" */
	const char *device_class; /* NULL: none */
	const char *unit;	  /* NULL: none */
	const char *state_class;  /* NULL: none */
	int precision;		  /* suggested_display_precision; -1: none */
	const char *icon;	  /* NULL: the device class's */
	bool diagnostic;	  /* entity_category "diagnostic" */
};

#define SENSOR "sensor"
#define BINARY "binary_sensor"
#define MEAS "measurement"

/* the entities of the bank and of each pack alike */
static const struct entity common_entities[] = {
	{ "soc", "State of charge", SENSOR, "battery", "%", MEAS, 0, NULL, false },
	{ "soh", "State of health", SENSOR, NULL, "%", MEAS, 0, "mdi:battery-heart-variant",
	  false },
	{ "voltage", "Voltage", SENSOR, "voltage", "V", MEAS, 2, NULL, false },
	{ "current", "Current", SENSOR, "current", "A", MEAS, 1, NULL, false },
	{ "power", "Power", SENSOR, "power", "W", MEAS, 0, NULL, false },
	{ "temp_min", "Temperature min", SENSOR, "temperature", "°C", MEAS, 1, NULL, false },
	{ "temp_max", "Temperature max", SENSOR, "temperature", "°C", MEAS, 1, NULL, false },
	{ "cell_min", "Cell voltage min", SENSOR, "voltage", "V", MEAS, 3, NULL, false },
	{ "cell_max", "Cell voltage max", SENSOR, "voltage", "V", MEAS, 3, NULL, false },
	{ "cell_delta", "Cell voltage delta", SENSOR, "voltage", "mV", MEAS, 0, NULL, false },
	{ "remaining", "Remaining capacity", SENSOR, NULL, "Ah", MEAS, 2, "mdi:battery-50", false },
	{ "full", "Full capacity", SENSOR, NULL, "Ah", MEAS, 2, "mdi:battery", false },
	{ "cycles", "Cycles", SENSOR, NULL, NULL, "total_increasing", 0, "mdi:battery-sync",
	  false },
};

/* the gateway's own, beside the bank's common ones (what the inverter is told) */
static const struct entity gateway_entities[] = {
	{ "cvl", "Charge voltage limit sent", SENSOR, "voltage", "V", MEAS, 1, NULL, false },
	{ "dvl", "Discharge voltage limit sent", SENSOR, "voltage", "V", MEAS, 1, NULL, false },
	{ "ccl", "Charge current limit sent", SENSOR, "current", "A", MEAS, 1, NULL, false },
	{ "dcl", "Discharge current limit sent", SENSOR, "current", "A", MEAS, 1, NULL, false },
	/* device_class enum: no unit, no state class (sensor/, "enum") */
	{ "mode", "Safety mode", SENSOR, "enum", NULL, NULL, -1, "mdi:shield-check", false },
	{ "mode_reason", "Safety mode reason", SENSOR, NULL, NULL, NULL, -1, "mdi:information",
	  true },
	{ "packs_online", "Packs online", SENSOR, NULL, NULL, MEAS, 0, "mdi:battery-check", false },
	{ "inverter", "Inverter link", BINARY, "connectivity", NULL, NULL, -1, NULL, false },
};

/* the bank's alarm bits, one binary_sensor "problem" each: protection_<name>, warning_<name> */
#define ALARM_ENTITIES (2 * BATTERY_ALARM__COUNT)

/* a cell: cell_<n>, 1-based as the BMS apps count */
static const struct entity cell_entity = {
	NULL, NULL, SENSOR, "voltage", "V", MEAS, 3, NULL, false
};

static const char *const mode_options[] = {
	"not-ready", "normal", "hold", "zero", "stop",
};

/* ---- topics and names -------------------------------------------------------------- */

/* the node id: the last level of the base topic */
static const char *node_id(const struct observer_mqtt *o)
{
	return o->node;
}

static int publish(struct observer_mqtt *o, const char *topic, const char *payload, size_t len,
		   int qos, bool retain)
{
	int r = o->sink->publish(o->sink, topic, payload, len, qos, retain);

	if (r < 0) {
		o->publish_errors++;
		log_debug("publish %s: %s", topic, strerror(-r));
		return r;
	}
	o->published++;
	o->payload_bytes += len;
	return 0;
}

/*
 * The object id of an entity: "bank_<key>", "pack<address>_<key>". It names
 * the discovery topic, and with the node id the unique_id and the entity id
 * HA suggests ("bmsbridge_<node>_pack2_soc"): stable across restarts.
 */
static void object_id(char *buf, size_t n, int address, const char *key)
{
	if (address < 0) {
		snprintf(buf, n, "bank_%s", key);
	} else {
		snprintf(buf, n, "pack%d_%s", address, key);
	}
}

static int discovery_topic(const struct observer_mqtt *o, char *buf, size_t n,
			   const char *component, const char *obj)
{
	int k = snprintf(buf, n, "%s/%s/%s/%s/config", o->disc_prefix, component, node_id(o), obj);

	return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

/* expire_after: max_silence and half of it again (at least 5 s more), in whole seconds */
static uint64_t expire_after_s(const struct observer_mqtt *o)
{
	uint64_t s = o->cfg->max_silence_usec;
	uint64_t extra = MAX(s / 2, 5 * USEC_PER_SEC);

	return s ? (s + extra + USEC_PER_SEC - 1) / USEC_PER_SEC : 0;
}

static void write_device(struct observer_mqtt *o, struct jw *w, int address)
{
	char id[TBUF], via[MQTT_NAME_MAX + 16], name[TBUF];

	snprintf(via, sizeof(via), "bmsbridge_%s", node_id(o));
	jw_key(w, "device");
	jw_open(w, '{');
	jw_key(w, "identifiers");
	jw_open(w, '[');
	if (address < 0) {
		jw_str(w, NULL, via);
		jw_close(w, ']');
		snprintf(name, sizeof(name), "bmsbridge %s", node_id(o));
		jw_str(w, "name", name);
		jw_str(w, "manufacturer", "bmsbridge");
		snprintf(id, sizeof(id), "%s -> %s", o->driver, o->protocol);
		jw_str(w, "model", id);
		jw_str(w, "sw_version", VERSION);
	} else {
		snprintf(id, sizeof(id), "%s_pack%d", via, address);
		jw_str(w, NULL, id);
		jw_close(w, ']');
		snprintf(name, sizeof(name), "bmsbridge %s pack %d", node_id(o), address);
		jw_str(w, "name", name);
		jw_str(w, "model", o->driver);
		jw_str(w, "via_device", via);
	}
	jw_close(w, '}');
}

/*
 * One entity's discovery message. @address < 0: the gateway's (bank);
 * else the pack's, whose availability is the gateway's AND the pack's.
 */
static int announce(struct observer_mqtt *o, const struct entity *e, const char *key,
		    const char *name, int address)
{
	char obj[96], topic[MQTT_TOPIC_MAX], buf[TBUF], tmpl[TBUF + 32];
	char payload[OBSERVER_MQTT_PAYLOAD_MAX];
	struct jw w;
	uint64_t expire = expire_after_s(o);
	int r;

	object_id(obj, sizeof(obj), address, key);
	r = discovery_topic(o, topic, sizeof(topic), e->component, obj);
	if (r < 0) {
		return r;
	}
	jw_init(&w, payload, sizeof(payload));
	jw_open(&w, '{');
	jw_str(&w, "name", name);
	snprintf(buf, sizeof(buf), "bmsbridge_%s_%s", node_id(o), obj);
	jw_str(&w, "unique_id", buf);
	/*
	 * the entity id HA gives it: default_entity_id ("<domain>.<id>", HA
	 * 2025.10 and later). Not object_id, the option it replaced: HA
	 * deprecated that in 2025.10 and removed it in 2026.4; an HA before
	 * 2025.10 drops the key it does not know and names the entity from
	 * the device and entity names instead (the MQTT integration's
	 * discovery schemas remove extra keys)
	 */
	snprintf(tmpl, sizeof(tmpl), "%s.%s", e->component, buf);
	jw_str(&w, "default_entity_id", tmpl);
	if (address < 0) {
		snprintf(buf, sizeof(buf), "%s/state", o->base_topic);
	} else {
		snprintf(buf, sizeof(buf), "%s/pack/%d/state", o->base_topic, address);
	}
	jw_str(&w, "state_topic", buf);
	snprintf(tmpl, sizeof(tmpl), "{{ value_json.%s }}", key);
	jw_str(&w, "value_template", tmpl);
	if (e->device_class) {
		jw_str(&w, "device_class", e->device_class);
	}
	if (e->unit) {
		jw_str(&w, "unit_of_measurement", e->unit);
	}
	if (e->state_class) {
		jw_str(&w, "state_class", e->state_class);
	}
	if (e->device_class && strcmp(e->device_class, "enum") == 0) {
		jw_key(&w, "options");
		jw_open(&w, '[');
		for (size_t i = 0; i < ARRAY_SIZE(mode_options); i++) {
			jw_str(&w, NULL, mode_options[i]);
		}
		jw_close(&w, ']');
	}
	if (e->precision >= 0 && strcmp(e->component, SENSOR) == 0) {
		jw_int(&w, "suggested_display_precision", e->precision);
	}
	if (strcmp(e->component, BINARY) == 0) {
		jw_str(&w, "payload_on", "ON");
		jw_str(&w, "payload_off", "OFF");
	}
	if (e->icon) {
		jw_str(&w, "icon", e->icon);
	}
	if (e->diagnostic) {
		jw_str(&w, "entity_category", "diagnostic");
	}
	jw_key(&w, "availability");
	jw_open(&w, '[');
	jw_open(&w, '{');
	snprintf(buf, sizeof(buf), "%s/availability", o->base_topic);
	jw_str(&w, "topic", buf);
	jw_close(&w, '}');
	if (address >= 0) {
		jw_open(&w, '{');
		snprintf(buf, sizeof(buf), "%s/pack/%d/availability", o->base_topic, address);
		jw_str(&w, "topic", buf);
		jw_close(&w, '}');
	}
	jw_close(&w, ']');
	jw_str(&w, "availability_mode", "all");
	if (expire) {
		jw_int(&w, "expire_after", (int64_t)expire);
	}
	write_device(o, &w, address);
	jw_key(&w, "origin");
	jw_open(&w, '{');
	jw_str(&w, "name", "bmsbridge");
	jw_str(&w, "sw_version", VERSION);
	jw_close(&w, '}');
	jw_close(&w, '}');
	if (w.overflow) {
		return -ENOBUFS;
	}
	return publish(o, topic, payload, w.len, 1, true);
}

/* an empty retained payload on the discovery topic: HA removes the entity */
static int unannounce(struct observer_mqtt *o, const char *component, const char *key, int address)
{
	char obj[96], topic[MQTT_TOPIC_MAX];
	int r;

	object_id(obj, sizeof(obj), address, key);
	r = discovery_topic(o, topic, sizeof(topic), component, obj);
	return r < 0 ? r : publish(o, topic, "", 0, 1, true);
}

static void alarm_key(char *buf, size_t n, unsigned k, bool warning)
{
	snprintf(buf, n, "%s_%s", warning ? "warning" : "protection", battery_alarm_name(1u << k));
}

/* "cell_overvoltage" -> "Protection cell overvoltage" */
static void alarm_name(char *buf, size_t n, unsigned k, bool warning)
{
	const char *s = battery_alarm_name(1u << k);
	size_t len;

	snprintf(buf, n, "%s %s", warning ? "Warning" : "Protection", s);
	len = strlen(buf);
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '_') {
			buf[i] = ' ';
		}
	}
}

/* the entities of @table announced (@add) or removed, for a pack or the gateway (-1) */
static void entities_discovery(struct observer_mqtt *o, const struct entity *table, size_t n,
			       int address, bool add)
{
	for (size_t i = 0; i < n; i++) {
		if (add) {
			announce(o, &table[i], table[i].key, table[i].name, address);
		} else {
			unannounce(o, table[i].component, table[i].key, address);
		}
	}
}

static void gateway_discovery(struct observer_mqtt *o, bool add)
{
	static const struct entity alarm = { NULL, NULL, BINARY, "problem", NULL,
					     NULL, -1,	 NULL,	 false };
	char key[64], name[96];

	entities_discovery(o, common_entities, ARRAY_SIZE(common_entities), -1, add);
	entities_discovery(o, gateway_entities, ARRAY_SIZE(gateway_entities), -1, add);
	for (unsigned k = 0; k < ALARM_ENTITIES; k++) {
		bool warning = k >= BATTERY_ALARM__COUNT;
		unsigned bit = k % BATTERY_ALARM__COUNT;

		alarm_key(key, sizeof(key), bit, warning);
		alarm_name(name, sizeof(name), bit, warning);
		if (add) {
			announce(o, &alarm, key, name, -1);
		} else {
			unannounce(o, BINARY, key, -1);
		}
	}
	o->gateway_announced = add;
}

static void pack_discovery(struct observer_mqtt *o, struct observer_mqtt_slot *s, bool add)
{
	entities_discovery(o, common_entities, ARRAY_SIZE(common_entities), s->address, add);
	s->announced = add;
}

/* the cells from @from (0-based) up to @to announced (@add) or removed */
static void cell_discovery(struct observer_mqtt *o, struct observer_mqtt_slot *s, unsigned from,
			   unsigned to, bool add)
{
	char key[16], name[32];

	for (unsigned c = from; c < to; c++) {
		snprintf(key, sizeof(key), "cell_%u", c + 1);
		snprintf(name, sizeof(name), "Cell %u voltage", c + 1);
		if (add) {
			announce(o, &cell_entity, key, name, s->address);
		} else {
			unannounce(o, cell_entity.component, key, s->address);
		}
	}
}

/*
 * Bring the entities on the broker to what is wanted now: the gateway and
 * every configured pack when discovery is on, each pack's cells when
 * mqtt.cells is on and the pack said how many it has. @force: announce all
 * again (a new connection: the broker may have lost them, HA restarted).
 */
static void sync_discovery(struct observer_mqtt *o, bool force)
{
	bool want = o->cfg->discovery && o->configured;

	if (want && (force || !o->gateway_announced)) {
		gateway_discovery(o, true);
	} else if (!want && o->gateway_announced) {
		gateway_discovery(o, false);
	}
	for (unsigned i = 0; i < o->n_slots; i++) {
		struct observer_mqtt_slot *s = &o->slots[i];
		unsigned cells = want && o->cfg->cells ? s->cells_seen : 0;

		if (want && (force || !s->announced)) {
			pack_discovery(o, s, true);
		} else if (!want && s->announced) {
			pack_discovery(o, s, false);
		}
		if (force) {
			cell_discovery(o, s, 0, cells, true);
		} else if (cells > s->cells_announced) {
			cell_discovery(o, s, s->cells_announced, cells, true);
		}
		if (s->cells_announced > cells) {
			cell_discovery(o, s, cells, s->cells_announced, false);
		}
		s->cells_announced = (uint8_t)cells;
	}
}

/* ---- availability ------------------------------------------------------------------ */

static void publish_availability(struct observer_mqtt *o, struct observer_mqtt_slot *s, bool online)
{
	char topic[TBUF];
	const char *p = online ? "online" : "offline";

	snprintf(topic, sizeof(topic), "%s/pack/%u/availability", o->base_topic, s->address);
	publish(o, topic, p, strlen(p), 1, true);
	s->online = online;
}

/* ---- the snapshots ------------------------------------------------------------------ */

/* @v / @d rounded half away from zero */
static int32_t qdiv(int64_t v, int64_t d)
{
	return (int32_t)(v >= 0 ? (v + d / 2) / d : -((-v + d / 2) / d));
}

/* the values every pack and the bank share, from @p's groups that were received */
static void snap_common(const struct battery_pack *p, int32_t *soc, int32_t *soh, int32_t *v_cv,
			int32_t *i_da, int32_t *p_w, int32_t *tmin, int32_t *tmax, int32_t *cmin,
			int32_t *cmax, int32_t *cdelta, int32_t *rem, int32_t *full,
			int32_t *cycles)
{
	*soc = *soh = *v_cv = *i_da = *p_w = *tmin = *tmax = NONE;
	*cmin = *cmax = *cdelta = *rem = *full = *cycles = NONE;
	if (battery_pack_has(p, BATTERY_GROUP_ELECTRICAL)) {
		*v_cv = qdiv(p->voltage_mv, 10);
		*i_da = qdiv(p->current_ma, 100);
		*p_w = qdiv((int64_t)p->voltage_mv * p->current_ma, 1000000);
	}
	if (battery_pack_has(p, BATTERY_GROUP_CAPACITY)) {
		*soc = (battery_soc_cpct(p) + 5) / 10; /* 0.1 %: the BMS's own resolution */
		*soh = p->soh_pct;
		*rem = qdiv(p->remaining_mah, 10);
		*full = qdiv(p->full_mah, 10);
		*cycles = (int32_t)MIN(p->cycles, (uint32_t)INT32_MAX);
	}
	if (battery_pack_has(p, BATTERY_GROUP_CELLS) && p->cell_max_mv > 0) {
		*cmin = p->cell_min_mv;
		*cmax = p->cell_max_mv;
		*cdelta = p->cell_max_mv >= p->cell_min_mv ? p->cell_max_mv - p->cell_min_mv : 0;
	}
	if (battery_pack_has(p, BATTERY_GROUP_TEMPS)) {
		*tmin = p->temp_min_dc;
		*tmax = p->temp_max_dc;
	}
}

static void snap_bank(struct observer_mqtt *o, const struct observer_evaluation *ev,
		      struct observer_mqtt_bank *b)
{
	const struct battery_pack *p = &ev->state->bank;

	memset(b, 0, sizeof(*b)); /* padding too: the snapshot is compared with memcmp */
	snap_common(p, &b->soc_pct, &b->soh_pct, &b->voltage_cv, &b->current_da, &b->power_w,
		    &b->temp_min_dc, &b->temp_max_dc, &b->cell_min_mv, &b->cell_max_mv,
		    &b->cell_delta_mv, &b->remaining_cah, &b->full_cah, &b->cycles);
	b->cvl_dv = o->bank.cvl_dv;
	b->dvl_dv = o->bank.dvl_dv;
	b->ccl_da = o->bank.ccl_da;
	b->dcl_da = o->bank.dcl_da;
	memcpy(b->set_by, o->bank.set_by, sizeof(b->set_by));
	/*
	 * The limits the inverter heard: the bank of an evaluation whose frames
	 * the output took, in the 0.1 V and 0.1 A steps the CAN protocols
	 * carry them in (Pylon CAN V1.2 p.3 0x351, MG Master LV guide section
	 * 1.4 0x351, Growatt V1.04 0x311), rounded as their encoders round
	 * (include/protocol.h): an upper limit (CVL, CCL, DCL) down, a lower
	 * one (DVL) up, so that what is shown is what was sent, not 0.05 more.
	 * The Pylon RS485 answers (V3.3 section 3.6, V3.5 0x63) carry the
	 * currents in 0.1 A truncated too, the voltages in mV: shown in the
	 * same 0.1 V steps, rounded the same safe way.
	 */
	if (ev->tx.kind != OBSERVER_WIRE_NONE && ev->tx.error == 0) {
		b->cvl_dv = (int32_t)protocol_upper_limit(p->charge_voltage_limit_mv, 100);
		b->dvl_dv = (int32_t)protocol_lower_limit(p->discharge_voltage_limit_mv, 100);
		b->ccl_da = (int32_t)protocol_upper_limit(p->charge_current_limit_ma, 100);
		b->dcl_da = (int32_t)protocol_upper_limit(p->discharge_current_limit_ma, 100);
		for (unsigned i = 0; i < OBSERVER_LIMIT__COUNT; i++) {
			snprintf(b->set_by[i], sizeof(b->set_by[i]), "%s",
				 ev->decision.set_by[i] ? ev->decision.set_by[i] : "none");
		}
	}
	b->mode = (int32_t)ev->decision.mode;
	snprintf(b->reason, sizeof(b->reason), "%s",
		 ev->decision.reason ? ev->decision.reason : "");
	b->conflict = ev->decision.conflict && ev->decision.conflict[0];
	b->pack_count = ev->state->pack_count;
	b->packs_online = ev->state->packs_online;
	b->inverter = ev->inverter_present;
	if (battery_pack_has(p, BATTERY_GROUP_STATUS)) {
		b->alarms = p->alarms & BATTERY_ALARM__ALL;
		b->warnings = p->warnings & BATTERY_ALARM__ALL;
	}
}

static void snap_pack(const struct observer_mqtt *o, const struct battery_pack *p,
		      struct observer_mqtt_pack *s)
{
	memset(s, 0, sizeof(*s));
	snap_common(p, &s->soc_pct, &s->soh_pct, &s->voltage_cv, &s->current_da, &s->power_w,
		    &s->temp_min_dc, &s->temp_max_dc, &s->cell_min_mv, &s->cell_max_mv,
		    &s->cell_delta_mv, &s->remaining_cah, &s->full_cah, &s->cycles);
	s->mosfet_dc = battery_pack_has(p, BATTERY_GROUP_TEMPS) &&
				       p->mosfet_temp_dc != BATTERY_TEMP_NONE
			       ? p->mosfet_temp_dc
			       : NONE;
	if (battery_pack_has(p, BATTERY_GROUP_STATUS)) {
		s->alarms = p->alarms & BATTERY_ALARM__ALL;
		s->warnings = p->warnings & BATTERY_ALARM__ALL;
	}
	if (o->cfg->cells && battery_pack_has(p, BATTERY_GROUP_CELLS)) {
		s->cell_count = MIN(p->cell_count, BATTERY_CELLS_MAX);
		memcpy(s->cell_mv, p->cell_mv, s->cell_count * sizeof(s->cell_mv[0]));
	}
}

/* ---- the state payloads ----------------------------------------------------------- */

static void write_common(struct jw *w, int32_t soc, int32_t soh, int32_t v_cv, int32_t i_da,
			 int32_t p_w, int32_t tmin, int32_t tmax, int32_t cmin, int32_t cmax,
			 int32_t cdelta, int32_t rem, int32_t full, int32_t cycles)
{
	jw_fixed(w, "soc", soc, 1);
	jw_fixed(w, "soh", soh, 0);
	jw_fixed(w, "voltage", v_cv, 2);
	jw_fixed(w, "current", i_da, 1);
	jw_fixed(w, "power", p_w, 0);
	jw_fixed(w, "temp_min", tmin, 1);
	jw_fixed(w, "temp_max", tmax, 1);
	jw_fixed(w, "cell_min", cmin, 3);
	jw_fixed(w, "cell_max", cmax, 3);
	jw_fixed(w, "cell_delta", cdelta, 0);
	jw_fixed(w, "remaining", rem, 2);
	jw_fixed(w, "full", full, 2);
	jw_fixed(w, "cycles", cycles, 0);
}

static const char *const limit_keys[OBSERVER_LIMIT__COUNT] = { "cvl_by", "dvl_by", "ccl_by",
							       "dcl_by" };

static int publish_bank(struct observer_mqtt *o)
{
	const struct observer_mqtt_bank *b = &o->bank;
	char payload[OBSERVER_MQTT_PAYLOAD_MAX], topic[TBUF], key[64];
	struct jw w;

	jw_init(&w, payload, sizeof(payload));
	jw_open(&w, '{');
	write_common(&w, b->soc_pct, b->soh_pct, b->voltage_cv, b->current_da, b->power_w,
		     b->temp_min_dc, b->temp_max_dc, b->cell_min_mv, b->cell_max_mv,
		     b->cell_delta_mv, b->remaining_cah, b->full_cah, b->cycles);
	jw_fixed(&w, "cvl", b->cvl_dv, 1);
	jw_fixed(&w, "dvl", b->dvl_dv, 1);
	jw_fixed(&w, "ccl", b->ccl_da, 1);
	jw_fixed(&w, "dcl", b->dcl_da, 1);
	for (unsigned i = 0; i < OBSERVER_LIMIT__COUNT; i++) {
		jw_str(&w, limit_keys[i], b->set_by[i]);
	}
	jw_str(&w, "mode", safety_mode_name((enum safety_mode)b->mode));
	jw_str(&w, "mode_reason", b->reason);
	jw_bool(&w, "conflict", b->conflict);
	jw_int(&w, "pack_count", b->pack_count);
	jw_int(&w, "packs_online", b->packs_online);
	/* binary values as the binary_sensor's payload_on/payload_off */
	jw_str(&w, "inverter", b->inverter ? "ON" : "OFF");
	for (unsigned k = 0; k < ALARM_ENTITIES; k++) {
		bool warning = k >= BATTERY_ALARM__COUNT;
		unsigned bit = k % BATTERY_ALARM__COUNT;
		uint32_t bits = warning ? b->warnings : b->alarms;

		alarm_key(key, sizeof(key), bit, warning);
		jw_str(&w, key, bits & (1u << bit) ? "ON" : "OFF");
	}
	jw_close(&w, '}');
	if (w.overflow) {
		return -ENOBUFS;
	}
	snprintf(topic, sizeof(topic), "%s/state", o->base_topic);
	return publish(o, topic, payload, w.len, 0, false);
}

static void write_bits(struct jw *w, const char *key, uint32_t bits)
{
	jw_key(w, key);
	jw_open(w, '[');
	for (unsigned k = 0; k < BATTERY_ALARM__COUNT; k++) {
		if (bits & (1u << k)) {
			jw_str(w, NULL, battery_alarm_name(1u << k));
		}
	}
	jw_close(w, ']');
}

static int publish_pack(struct observer_mqtt *o, const struct observer_mqtt_slot *sl)
{
	const struct observer_mqtt_pack *s = &sl->snap;
	char payload[OBSERVER_MQTT_PAYLOAD_MAX], topic[TBUF], key[16];
	struct jw w;

	jw_init(&w, payload, sizeof(payload));
	jw_open(&w, '{');
	write_common(&w, s->soc_pct, s->soh_pct, s->voltage_cv, s->current_da, s->power_w,
		     s->temp_min_dc, s->temp_max_dc, s->cell_min_mv, s->cell_max_mv,
		     s->cell_delta_mv, s->remaining_cah, s->full_cah, s->cycles);
	jw_fixed(&w, "temp_mosfet", s->mosfet_dc, 1);
	write_bits(&w, "protections", s->alarms);
	write_bits(&w, "warnings", s->warnings);
	for (unsigned c = 0; c < s->cell_count; c++) {
		snprintf(key, sizeof(key), "cell_%u", c + 1);
		jw_fixed(&w, key, s->cell_mv[c], 3);
	}
	jw_close(&w, '}');
	if (w.overflow) {
		return -ENOBUFS;
	}
	snprintf(topic, sizeof(topic), "%s/pack/%u/state", o->base_topic, sl->address);
	return publish(o, topic, payload, w.len, 0, false);
}

/* ---- the rate ------------------------------------------------------------------------ */

/* @changed: the snapshot differs from the one before; kept until published */
static bool due(const struct observer_mqtt *o, struct observer_mqtt_topic *t, bool changed,
		uint64_t now)
{
	uint64_t age;

	t->dirty |= changed;
	if (!t->published) {
		return true;
	}
	age = now >= t->last_usec ? now - t->last_usec : 0;
	if (t->dirty && age >= o->cfg->min_interval_usec) {
		return true;
	}
	return o->cfg->max_silence_usec && age >= o->cfg->max_silence_usec;
}

static void mark(struct observer_mqtt_topic *t, uint64_t now)
{
	t->published = true;
	t->dirty = false;
	t->last_usec = now;
}

static void mqtt_evaluated(struct observer *base, const struct observer_evaluation *ev)
{
	struct observer_mqtt *o = container_of(base, struct observer_mqtt, base);
	struct observer_mqtt_bank b;
	uint64_t now = ev->now_usec;
	bool changed;

	o->last_eval_usec = now;
	if (!o->base_topic[0]) {
		return; /* not configured yet, or no base topic */
	}
	snap_bank(o, ev, &b);
	changed = !o->have_bank || memcmp(&b, &o->bank, sizeof(b)) != 0;
	/* the wire's limits are kept even when not due: the next payload carries them */
	o->bank = b;
	o->have_bank = true;
	if (due(o, &o->bank_topic, changed, now)) {
		publish_bank(o);
		mark(&o->bank_topic, now);
	}
	for (unsigned i = 0; i < o->n_slots && i < ev->state->pack_count; i++) {
		struct observer_mqtt_slot *s = &o->slots[i];
		const struct battery_pack *p = &ev->state->packs[i];
		bool online = ev->decision.packs_online_mask & (1u << i);
		struct observer_mqtt_pack snap;
		uint8_t cells;

		if (online != s->online) {
			publish_availability(o, s, online);
		}
		if (!online) {
			/* stale values are not republished; back online: at once */
			s->topic.published = false;
			continue;
		}
		cells = battery_pack_has(p, BATTERY_GROUP_CELLS) ? p->cell_count : 0;
		if (cells != s->cells_seen) {
			s->cells_seen = MIN(cells, BATTERY_CELLS_MAX);
			sync_discovery(o, false);
		}
		snap_pack(o, p, &snap);
		changed = !s->have || memcmp(&snap, &s->snap, sizeof(snap)) != 0;
		s->snap = snap;
		s->have = true;
		if (due(o, &s->topic, changed, now)) {
			publish_pack(o, s);
			mark(&s->topic, now);
		}
	}
}

/* a new connection: the entities, every pack's availability and the whole state again */
static void mqtt_connected(struct mqtt_sink *sink, void *userdata)
{
	struct observer_mqtt *o = userdata;

	if (!o->base_topic[0]) {
		return; /* ->configured() will announce */
	}
	sync_discovery(o, true);
	for (unsigned i = 0; i < o->n_slots; i++) {
		publish_availability(o, &o->slots[i], o->slots[i].online);
	}
	if (o->have_bank) {
		publish_bank(o);
		mark(&o->bank_topic, o->last_eval_usec);
	}
	for (unsigned i = 0; i < o->n_slots; i++) {
		struct observer_mqtt_slot *s = &o->slots[i];

		if (s->online && s->have) {
			publish_pack(o, s);
			mark(&s->topic, o->last_eval_usec);
		}
	}
}

static void copy_name(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%.*s", (int)n - 1, src ? src : "");
}

/* everything announced removed, under the names it was announced with */
static void forget_all(struct observer_mqtt *o)
{
	char topic[TBUF];

	if (o->gateway_announced) {
		gateway_discovery(o, false);
	}
	for (unsigned i = 0; i < o->n_slots; i++) {
		struct observer_mqtt_slot *s = &o->slots[i];

		if (s->announced) {
			pack_discovery(o, s, false);
		}
		cell_discovery(o, s, 0, s->cells_announced, false);
		s->cells_announced = 0;
		snprintf(topic, sizeof(topic), "%s/pack/%u/availability", o->base_topic,
			 s->address);
		publish(o, topic, "", 0, 1, true);
		s->online = false;
		s->topic.published = false;
	}
	o->bank_topic.published = false;
}

/*
 * The base topic, the node id and the discovery prefix from the settings
 * (at start, and again at every reload: they may have changed, and then
 * what was announced under the old names is removed first).
 * Return: 1 when they changed, 0 when not, or a negative errno (said
 * once; nothing is published then).
 */
static int set_names(struct observer_mqtt *o)
{
	char base[MQTT_TOPIC_MAX];
	const char *slash;
	int r;

	r = mqtt_base_topic(o->cfg, base, sizeof(base));
	if (r < 0) {
		if (o->base_topic[0] || !o->names_failed) {
			log_warning("MQTT: no base topic from topic_prefix and node_id (%s): "
				    "nothing is published",
				    strerror(-r));
		}
		o->names_failed = true;
		if (o->base_topic[0]) {
			forget_all(o);
			o->base_topic[0] = '\0';
		}
		return r;
	}
	o->names_failed = false;
	if (strcmp(base, o->base_topic) == 0 &&
	    strcmp(o->disc_prefix, o->cfg->discovery_prefix) == 0) {
		return 0;
	}
	if (o->base_topic[0]) {
		forget_all(o);
	}
	copy_name(o->base_topic, sizeof(o->base_topic), base);
	copy_name(o->disc_prefix, sizeof(o->disc_prefix), o->cfg->discovery_prefix);
	/* the node id: the base topic's last level, in unique_ids and discovery topics */
	slash = strrchr(o->base_topic, '/');
	copy_name(o->node, sizeof(o->node), slash ? slash + 1 : o->base_topic);
	return 1;
}

/*
 * The packs the input reads, by address. A pack gone from the list (a
 * reload with fewer addresses): its entities removed (empty retained
 * payloads) and its retained availability cleared. A new one: announced,
 * "offline" until its first complete read. A kept one keeps its state.
 */
static void mqtt_configured(struct observer *base, const struct observer_config *ev)
{
	struct observer_mqtt *o = container_of(base, struct observer_mqtt, base);
	struct observer_mqtt_slot next[BATTERY_PACKS_MAX];
	bool fresh[BATTERY_PACKS_MAX];
	unsigned n = MIN(ev->pack_count, BATTERY_PACKS_MAX);
	char topic[TBUF];
	int renamed = set_names(o);

	if (renamed < 0) {
		return;
	}
	if (strcmp(o->driver, ev->driver ? ev->driver : "") != 0 ||
	    strcmp(o->protocol, ev->protocol ? ev->protocol : "") != 0) {
		/* the devices' model names them: announced again below */
		copy_name(o->driver, sizeof(o->driver), ev->driver);
		copy_name(o->protocol, sizeof(o->protocol), ev->protocol);
		o->gateway_announced = false;
		for (unsigned i = 0; i < o->n_slots; i++) {
			o->slots[i].announced = false;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		uint8_t addr = ev->pack_addresses ? ev->pack_addresses[i] : (uint8_t)(i + 1);

		next[i] = (struct observer_mqtt_slot){ .address = addr };
		fresh[i] = true;
		for (unsigned k = 0; k < o->n_slots; k++) {
			if (o->slots[k].address == addr) {
				next[i] = o->slots[k];
				o->slots[k].address = 0; /* kept */
				fresh[i] = false;
				break;
			}
		}
	}
	for (unsigned k = 0; k < o->n_slots; k++) {
		struct observer_mqtt_slot *s = &o->slots[k];

		if (s->address == 0) {
			continue;
		}
		if (s->announced) {
			pack_discovery(o, s, false);
		}
		cell_discovery(o, s, 0, s->cells_announced, false);
		snprintf(topic, sizeof(topic), "%s/pack/%u/availability", o->base_topic,
			 s->address);
		publish(o, topic, "", 0, 1, true);
	}
	memcpy(o->slots, next, n * sizeof(next[0]));
	o->n_slots = n;
	o->configured = true;
	sync_discovery(o, false);
	for (unsigned i = 0; i < n; i++) {
		if (fresh[i] || renamed) {
			publish_availability(o, &o->slots[i], false);
		}
	}
}

static const struct observer_ops mqtt_ops = {
	.name = "mqtt",
	.evaluated = mqtt_evaluated,
	.configured = mqtt_configured,
};

int observer_mqtt_init(struct observer_mqtt *o, struct mqtt_sink *sink,
		       const struct mqtt_config *cfg)
{
	if (!sink || !sink->publish || !cfg) {
		return -EINVAL;
	}
	*o = (struct observer_mqtt){ .base = { .ops = &mqtt_ops }, .sink = sink, .cfg = cfg };
	for (unsigned i = 0; i < OBSERVER_LIMIT__COUNT; i++) {
		snprintf(o->bank.set_by[i], sizeof(o->bank.set_by[i]), "none");
	}
	o->bank.cvl_dv = o->bank.dvl_dv = o->bank.ccl_da = o->bank.dcl_da = NONE;
	sink->connected = mqtt_connected;
	sink->userdata = o;
	return 0;
}

void observer_mqtt_stop(struct observer_mqtt *o)
{
	if (!o->base_topic[0]) {
		return;
	}
	for (unsigned i = 0; i < o->n_slots; i++) {
		publish_availability(o, &o->slots[i], false);
	}
}
