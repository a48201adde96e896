/* SPDX-License-Identifier: MIT */
/*
 * observer_mqtt: what goes to the broker, and when. A recording
 * struct mqtt_sink takes every message; synthetic evaluations (ev->now_usec
 * is the clock) drive the observer. Every payload is parsed with json-c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "battery.h"
#include "macro.h"
#include "observer_mqtt.h"

#define SEC UINT64_C(1000000)
#define MSGS_MAX 2048

struct msg {
	char topic[MQTT_TOPIC_MAX];
	char *payload;
	size_t len;
	int qos;
	bool retain;
};

struct rec {
	struct mqtt_sink sink;
	struct msg m[MSGS_MAX];
	unsigned n;
};

static int rec_publish(struct mqtt_sink *s, const char *topic, const void *payload, size_t len,
		       int qos, bool retain)
{
	struct rec *r = container_of(s, struct rec, sink);
	struct msg *m;

	assert_true(r->n < MSGS_MAX);
	m = &r->m[r->n++];
	assert_true(strlen(topic) < sizeof(m->topic));
	strcpy(m->topic, topic);
	m->payload = malloc(len + 1);
	assert_non_null(m->payload);
	memcpy(m->payload, payload, len);
	m->payload[len] = '\0';
	m->len = len;
	m->qos = qos;
	m->retain = retain;
	return 0;
}

static void rec_clear(struct rec *r)
{
	for (unsigned i = 0; i < r->n; i++) {
		free(r->m[i].payload);
	}
	r->n = 0;
}

/* the test's world: a config, a state, the observer, the recorder */
struct world {
	struct mqtt_config cfg;
	struct battery_state st;
	struct observer_mqtt o;
	struct rec rec;
	uint32_t online_mask;
	enum observer_wire wire;
	int wire_error;
	const char *reason;
	bool inverter;
};

static void fill_pack(struct battery_pack *p, unsigned k, uint64_t now)
{
	p->voltage_mv = 52300 + k;
	p->current_ma = -12345;
	p->soc_pct = (uint8_t)(70 + k);
	p->soh_pct = 98;
	p->remaining_mah = 70125;
	p->full_mah = 100000;
	p->cycles = 12;
	p->cell_count = 16;
	for (unsigned i = 0; i < 16; i++) {
		p->cell_mv[i] = (uint16_t)(3260 + i);
	}
	battery_pack_update_cell_extremes(p);
	p->temp_count = 2;
	p->temp_dc[0] = 215;
	p->temp_dc[1] = -35;
	battery_pack_update_temp_extremes(p);
	p->mosfet_temp_dc = BATTERY_TEMP_NONE;
	p->charge_voltage_limit_mv = 55200;
	p->discharge_voltage_limit_mv = 48000;
	p->charge_current_limit_ma = 50000;
	p->discharge_current_limit_ma = 100000;
	p->alarms = 0;
	p->warnings = 0;
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		battery_pack_mark(p, g, now);
	}
}

static struct world *world_new(unsigned packs, bool cells)
{
	struct world *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	w->cfg.enabled = true;
	strcpy(w->cfg.topic_prefix, "bmsbridge");
	strcpy(w->cfg.node_id, "gw1");
	strcpy(w->cfg.discovery_prefix, "homeassistant");
	w->cfg.discovery = true;
	w->cfg.cells = cells;
	w->cfg.min_interval_usec = 1 * SEC;
	w->cfg.max_silence_usec = 60 * SEC;
	w->rec.sink.publish = rec_publish;
	battery_state_init(&w->st, packs);
	for (unsigned i = 0; i < packs; i++) {
		fill_pack(&w->st.packs[i], i, 1);
	}
	fill_pack(&w->st.bank, 0, 1);
	w->st.bank.voltage_mv = 52300;
	w->st.packs_online = (uint8_t)packs;
	w->online_mask = (1u << packs) - 1;
	w->wire = OBSERVER_WIRE_SET;
	w->reason = "first complete read";
	w->inverter = true;
	assert_int_equal(observer_mqtt_init(&w->o, &w->rec.sink, &w->cfg), 0);
	assert_ptr_equal(w->rec.sink.userdata, &w->o);
	assert_non_null(w->rec.sink.connected);
	return w;
}

static void world_free(struct world *w)
{
	rec_clear(&w->rec);
	free(w);
}

static void configure(struct world *w, unsigned n, const uint8_t *addresses)
{
	struct observer_config c = {
		.protocol = "pylontech",
		.driver = "sim",
		.transport = "can",
		.pack_count = n,
		.pack_addresses = addresses,
	};

	w->o.base.ops->configured(&w->o.base, &c);
}

static void connect(struct world *w)
{
	w->rec.sink.connected(&w->rec.sink, w->rec.sink.userdata);
}

static void evaluate(struct world *w, uint64_t now)
{
	static const struct can_frame frames[2];
	const char *set_by[OBSERVER_LIMIT__COUNT] = { "bms", "bms", "rules", "cap" };
	struct observer_evaluation ev = {
		.now_usec = now,
		.cause = OBSERVER_CAUSE_BMS,
		.state = &w->st,
		.decision = {
			.mode = SAFETY_MODE_NORMAL,
			.reason = w->reason,
			.conflict = "",
			.last_rejected = "",
			.packs_online_mask = w->online_mask,
		},
		.tx = {
			.kind = w->wire,
			.frames = frames,
			.n_frames = w->wire == OBSERVER_WIRE_NONE ? 0 : 2,
			.error = w->wire_error,
		},
		.inverter_present = w->inverter,
	};

	memcpy(ev.decision.set_by, set_by, sizeof(set_by));
	w->o.base.ops->evaluated(&w->o.base, &ev);
}

/* messages whose topic ends in @suffix (or all with NULL) */
static unsigned count(const struct world *w, const char *prefix, const char *suffix)
{
	unsigned n = 0;

	for (unsigned i = 0; i < w->rec.n; i++) {
		const char *t = w->rec.m[i].topic;
		size_t lt = strlen(t), ls = suffix ? strlen(suffix) : 0;

		if (prefix && strncmp(t, prefix, strlen(prefix)) != 0) {
			continue;
		}
		if (suffix && (lt < ls || strcmp(t + lt - ls, suffix) != 0)) {
			continue;
		}
		n++;
	}
	return n;
}

/* discovery messages of pack @address's cells ("pack1_cell_7", not "pack1_cell_min") */
static unsigned count_cells(const struct world *w, unsigned address)
{
	unsigned n = 0;

	for (unsigned i = 0; i < w->rec.n; i++) {
		unsigned a, c;
		int end = 0;

		if (sscanf(w->rec.m[i].topic, "homeassistant/sensor/gw1/pack%u_cell_%u/config%n",
			   &a, &c, &end) == 2 &&
		    end > 0 && w->rec.m[i].topic[end] == '\0' && a == address) {
			n++;
		}
	}
	return n;
}

/* the last message recorded on @topic, NULL if none */
static const struct msg *find(const struct world *w, const char *topic)
{
	for (unsigned i = w->rec.n; i-- > 0;) {
		if (strcmp(w->rec.m[i].topic, topic) == 0) {
			return &w->rec.m[i];
		}
	}
	return NULL;
}

/* the same, where the test expects one: a failure of the test if there is none */
__attribute__((returns_nonnull)) static const struct msg *last(const struct world *w,
							       const char *topic)
{
	const struct msg *m = find(w, topic);

	if (!m) {
		fail_msg("nothing published on %s", topic);
		abort(); /* not reached: fail_msg() leaves the test */
	}
	return m;
}

/* no topic twice in the messages recorded (one evaluation's worth) */
static void assert_unique_topics(const struct world *w)
{
	for (unsigned i = 0; i < w->rec.n; i++) {
		for (unsigned k = i + 1; k < w->rec.n; k++) {
			if (strcmp(w->rec.m[i].topic, w->rec.m[k].topic) == 0) {
				fail_msg("%s published twice", w->rec.m[i].topic);
			}
		}
	}
}

static struct json_object *parse(const struct msg *m)
{
	struct json_object *j;

	assert_non_null(m);
	j = json_tokener_parse(m->payload);
	if (!j) {
		fail_msg("not JSON on %s: %s", m->topic, m->payload);
	}
	return j;
}

static const char *jstr(struct json_object *j, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(j, key, &v)) {
		fail_msg("no key %s", key);
	}
	return json_object_get_string(v);
}

/* the JSON text of a key's value as sent ("52.30", "null") */
static void raw_value(const struct msg *m, const char *key, char *buf, size_t n)
{
	char needle[64];
	const char *p, *end;

	snprintf(needle, sizeof(needle), "\"%s\":", key);
	p = strstr(m->payload, needle);
	if (!p) {
		fail_msg("no key %s in %s", key, m->payload);
	}
	p += strlen(needle);
	end = p + strcspn(p, ",}");
	assert_true((size_t)(end - p) < n);
	memcpy(buf, p, (size_t)(end - p));
	buf[end - p] = '\0';
}

static void assert_raw(const struct msg *m, const char *key, const char *want)
{
	char got[64];

	raw_value(m, key, got, sizeof(got));
	if (strcmp(got, want) != 0) {
		fail_msg("%s: %s, want %s", key, got, want);
	}
}

/* the keys HA needs of every discovery message, and that they are coherent */
static void check_discovery(const struct world *w, const struct msg *m)
{
	struct json_object *j = parse(m), *v, *dev, *ids, *avail;
	char comp[32], node[32], obj[64], uid[128], topic[MQTT_TOPIC_MAX];
	const char *dc, *unit;

	assert_int_equal(m->qos, 1);
	assert_true(m->retain);
	assert_int_equal(sscanf(m->topic, "homeassistant/%31[^/]/%31[^/]/%63[^/]/config", comp,
				node, obj),
			 3);
	assert_string_equal(node, "gw1");
	assert_true(strcmp(comp, "sensor") == 0 || strcmp(comp, "binary_sensor") == 0);
	snprintf(uid, sizeof(uid), "bmsbridge_gw1_%s", obj);
	assert_string_equal(jstr(j, "unique_id"), uid);
	assert_false(json_object_object_get_ex(j, "object_id", NULL)); /* removed in HA 2026.4 */
	snprintf(topic, sizeof(topic), "%s.%s", comp, uid);
	assert_string_equal(jstr(j, "default_entity_id"), topic);
	assert_true(strlen(jstr(j, "name")) > 0);
	/* the state topic: the bank's or the pack's named in the object id */
	if (strncmp(obj, "bank_", 5) == 0) {
		assert_string_equal(jstr(j, "state_topic"), "bmsbridge/gw1/state");
		snprintf(topic, sizeof(topic), "{{ value_json.%s }}", obj + 5);
	} else {
		unsigned a;
		int off = 0;

		assert_int_equal(sscanf(obj, "pack%u_%n", &a, &off), 1);
		snprintf(topic, sizeof(topic), "bmsbridge/gw1/pack/%u/state", a);
		assert_string_equal(jstr(j, "state_topic"), topic);
		snprintf(topic, sizeof(topic), "{{ value_json.%s }}", obj + off);
	}
	assert_string_equal(jstr(j, "value_template"), topic);
	/* availability: the gateway's first, the pack's too for a pack; all must be online */
	assert_true(json_object_object_get_ex(j, "availability", &avail));
	assert_true(json_object_is_type(avail, json_type_array));
	assert_true(json_object_array_length(avail) == (strncmp(obj, "bank_", 5) == 0 ? 1 : 2));
	assert_string_equal(jstr(json_object_array_get_idx(avail, 0), "topic"),
			    "bmsbridge/gw1/availability");
	assert_string_equal(jstr(j, "availability_mode"), "all");
	assert_true(json_object_object_get_ex(j, "expire_after", &v));
	assert_true(json_object_get_int64(v) > (int64_t)(w->cfg.max_silence_usec / SEC));
	/* the device */
	assert_true(json_object_object_get_ex(j, "device", &dev));
	assert_true(json_object_object_get_ex(dev, "identifiers", &ids));
	assert_true(json_object_array_length(ids) >= 1);
	assert_true(strlen(jstr(dev, "name")) > 0);
	if (strncmp(obj, "pack", 4) == 0) {
		assert_string_equal(jstr(dev, "via_device"), "bmsbridge_gw1");
	} else {
		assert_string_equal(jstr(dev, "model"), "sim -> pylontech");
		assert_string_equal(json_object_get_string(json_object_array_get_idx(ids, 0)),
				    "bmsbridge_gw1");
	}
	/* a unit only with a class that allows it; enum: options, no unit, no state class */
	dc = json_object_object_get_ex(j, "device_class", &v) ? json_object_get_string(v) : NULL;
	unit = json_object_object_get_ex(j, "unit_of_measurement", &v) ? json_object_get_string(v)
								       : NULL;
	if (dc && strcmp(dc, "battery") == 0) {
		assert_string_equal(unit, "%");
	} else if (dc && strcmp(dc, "voltage") == 0) {
		assert_true(strcmp(unit, "V") == 0 || strcmp(unit, "mV") == 0);
	} else if (dc && strcmp(dc, "current") == 0) {
		assert_string_equal(unit, "A");
	} else if (dc && strcmp(dc, "power") == 0) {
		assert_string_equal(unit, "W");
	} else if (dc && strcmp(dc, "temperature") == 0) {
		assert_string_equal(unit, "°C");
	} else if (dc && strcmp(dc, "enum") == 0) {
		assert_null(unit);
		assert_false(json_object_object_get_ex(j, "state_class", &v));
		assert_true(json_object_object_get_ex(j, "options", &v));
	} else if (dc) {
		assert_string_equal(comp, "binary_sensor");
		assert_true(strcmp(dc, "connectivity") == 0 || strcmp(dc, "problem") == 0);
	}
	json_object_put(j);
}

#define BANK_ENTITIES 21 /* bank_entities[] */
#define ALARM_ENTITIES (2 * BATTERY_ALARM__COUNT)
#define PACK_ENTITIES 13 /* pack_entities[] */

static void test_discovery_on_connect(void **state)
{
	struct world *w = world_new(3, true);
	unsigned disc;

	configure(w, 3, NULL);
	/* configured: discovery of what is known (no cells yet), packs offline */
	disc = count(w, "homeassistant/", "/config");
	assert_int_equal(disc, BANK_ENTITIES + ALARM_ENTITIES + 3 * PACK_ENTITIES);
	assert_int_equal(count(w, "bmsbridge/gw1/pack/", "/availability"), 3);
	assert_string_equal(last(w, "bmsbridge/gw1/pack/2/availability")->payload, "offline");
	rec_clear(&w->rec);

	/* the first evaluation: the cells are known now, each one announced */
	evaluate(w, 10 * SEC);
	assert_unique_topics(w);
	assert_int_equal(count(w, "homeassistant/sensor/gw1/pack", NULL), 3 * 16);
	assert_non_null(last(w, "homeassistant/sensor/gw1/pack3_cell_16/config"));
	assert_null(find(w, "homeassistant/sensor/gw1/pack3_cell_17/config"));
	assert_int_equal(count(w, "bmsbridge/gw1/pack/", "/availability"), 3);
	assert_string_equal(last(w, "bmsbridge/gw1/pack/1/availability")->payload, "online");
	assert_non_null(last(w, "bmsbridge/gw1/state"));
	assert_int_equal(count(w, "bmsbridge/gw1/pack/", "/state"), 3);
	rec_clear(&w->rec);

	/* a (re)connection: everything again, availability and state included */
	connect(w);
	assert_unique_topics(w);
	disc = count(w, "homeassistant/", "/config");
	assert_int_equal(disc, BANK_ENTITIES + ALARM_ENTITIES + 3 * (PACK_ENTITIES + 16));
	for (unsigned i = 0; i < w->rec.n; i++) {
		const struct msg *m = &w->rec.m[i];

		if (strncmp(m->topic, "homeassistant/", 14) == 0) {
			check_discovery(w, m);
		}
	}
	assert_int_equal(count(w, "homeassistant/binary_sensor/", NULL), ALARM_ENTITIES + 1);
	assert_string_equal(last(w, "bmsbridge/gw1/pack/3/availability")->payload, "online");
	assert_non_null(last(w, "bmsbridge/gw1/state"));
	assert_int_equal(count(w, "bmsbridge/gw1/pack/", "/state"), 3);
	world_free(w);
}

static void test_discovery_units(void **state)
{
	struct world *w = world_new(1, true);
	struct json_object *j;

	configure(w, 1, NULL);
	evaluate(w, SEC);
	j = parse(last(w, "homeassistant/sensor/gw1/bank_soc/config"));
	assert_string_equal(jstr(j, "device_class"), "battery");
	assert_string_equal(jstr(j, "unit_of_measurement"), "%");
	assert_string_equal(jstr(j, "state_class"), "measurement");
	json_object_put(j);
	/* Ah: no device class in HA, a unit and a state class still */
	j = parse(last(w, "homeassistant/sensor/gw1/pack1_remaining/config"));
	assert_false(json_object_object_get_ex(j, "device_class", NULL));
	assert_string_equal(jstr(j, "unit_of_measurement"), "Ah");
	assert_string_equal(jstr(j, "state_class"), "measurement");
	json_object_put(j);
	j = parse(last(w, "homeassistant/sensor/gw1/pack1_cycles/config"));
	assert_string_equal(jstr(j, "state_class"), "total_increasing");
	json_object_put(j);
	j = parse(last(w, "homeassistant/sensor/gw1/bank_mode/config"));
	assert_string_equal(jstr(j, "device_class"), "enum");
	json_object_put(j);
	j = parse(last(w, "homeassistant/binary_sensor/gw1/bank_inverter/config"));
	assert_string_equal(jstr(j, "device_class"), "connectivity");
	assert_string_equal(jstr(j, "payload_on"), "ON");
	json_object_put(j);
	j = parse(
		last(w, "homeassistant/binary_sensor/gw1/bank_protection_cell_overvoltage/config"));
	assert_string_equal(jstr(j, "device_class"), "problem");
	json_object_put(j);
	j = parse(last(w, "homeassistant/sensor/gw1/pack1_cell_1/config"));
	assert_string_equal(jstr(j, "device_class"), "voltage");
	assert_string_equal(jstr(j, "unit_of_measurement"), "V");
	assert_string_equal(jstr(j, "value_template"), "{{ value_json.cell_1 }}");
	json_object_put(j);
	world_free(w);
}

static void test_state_values(void **state)
{
	struct world *w = world_new(2, true);
	const struct msg *m;
	struct json_object *j;

	configure(w, 2, NULL);
	w->wire = OBSERVER_WIRE_NONE;
	evaluate(w, SEC);
	m = last(w, "bmsbridge/gw1/state");
	assert_int_equal(m->qos, 0);
	assert_false(m->retain);
	j = parse(m);
	json_object_put(j);
	/* fixed decimals, rounded from the integers, never float noise */
	assert_raw(m, "voltage", "52.30");
	assert_raw(m, "current", "-12.3");
	assert_raw(m, "power", "-646"); /* 52.300 V x -12.345 A = -645.6 W */
	assert_raw(m, "temp_min", "-3.5");
	assert_raw(m, "temp_max", "21.5");
	assert_raw(m, "cell_min", "3.260");
	assert_raw(m, "cell_max", "3.275");
	assert_raw(m, "cell_delta", "15");
	assert_raw(m, "remaining", "70.13");
	assert_raw(m, "full", "100.00");
	assert_raw(m, "soc", "70.0");
	assert_raw(m, "mode", "\"normal\"");
	assert_raw(m, "inverter", "\"ON\"");
	assert_raw(m, "packs_online", "2");
	/* nothing sent to the inverter yet: the limits on the wire are unknown */
	assert_raw(m, "cvl", "null");
	assert_raw(m, "ccl", "null");
	m = last(w, "bmsbridge/gw1/pack/2/state");
	assert_raw(m, "voltage", "52.30"); /* 52301 mV */
	assert_raw(m, "soc", "71.0");
	assert_raw(m, "temp_mosfet", "null");
	assert_raw(m, "cell_16", "3.275");
	j = parse(m);
	assert_false(json_object_object_get_ex(j, "cell_17", NULL));
	json_object_put(j);
	world_free(w);
}

static void test_wire_limits(void **state)
{
	struct world *w = world_new(1, false);
	const struct msg *m;

	configure(w, 1, NULL);
	w->wire = OBSERVER_WIRE_SET;
	evaluate(w, SEC);
	m = last(w, "bmsbridge/gw1/state");
	assert_raw(m, "cvl", "55.2");
	assert_raw(m, "dvl", "48.0");
	assert_raw(m, "ccl", "50.0");
	assert_raw(m, "dcl", "100.0");
	assert_raw(m, "ccl_by", "\"rules\"");
	/* between two 0.1 steps: as the encoders round, upper limits down, DVL up */
	w->st.bank.charge_voltage_limit_mv = 55290;
	w->st.bank.discharge_voltage_limit_mv = 48010;
	w->st.bank.charge_current_limit_ma = 20450;
	w->st.bank.discharge_current_limit_ma = 99999;
	evaluate(w, 2 * SEC);
	m = last(w, "bmsbridge/gw1/state");
	assert_raw(m, "cvl", "55.2");
	assert_raw(m, "dvl", "48.1");
	assert_raw(m, "ccl", "20.4");
	assert_raw(m, "dcl", "99.9");
	w->st.bank.charge_current_limit_ma = 50000;
	evaluate(w, 3 * SEC);
	assert_raw(last(w, "bmsbridge/gw1/state"), "ccl", "50.0");
	/* the bank's limits move, but the output refused the frames: still the old ones */
	w->st.bank.charge_current_limit_ma = 20000;
	w->wire_error = -ENOBUFS;
	w->st.bank.voltage_mv = 52350; /* something changed, so it is published */
	evaluate(w, 5 * SEC);
	assert_raw(last(w, "bmsbridge/gw1/state"), "voltage", "52.35");
	assert_raw(last(w, "bmsbridge/gw1/state"), "ccl", "50.0");
	/* nothing went out at all: the same */
	w->wire_error = 0;
	w->wire = OBSERVER_WIRE_NONE;
	w->st.bank.voltage_mv = 52400;
	evaluate(w, 7 * SEC);
	assert_raw(last(w, "bmsbridge/gw1/state"), "voltage", "52.40");
	assert_raw(last(w, "bmsbridge/gw1/state"), "ccl", "50.0");
	/* urgent frames went out: now the inverter has 20 A */
	w->wire = OBSERVER_WIRE_URGENT;
	evaluate(w, 9 * SEC);
	assert_raw(last(w, "bmsbridge/gw1/state"), "ccl", "20.0");
	world_free(w);
}

static void test_rate(void **state)
{
	struct world *w = world_new(1, false);

	configure(w, 1, NULL);
	evaluate(w, 100 * SEC);
	assert_int_equal(count(w, "bmsbridge/gw1/state", NULL), 1);
	rec_clear(&w->rec);

	/* unchanged: nothing, however often evaluated */
	for (uint64_t t = 100 * SEC; t < 159 * SEC; t += SEC / 10) {
		evaluate(w, t + SEC / 10);
	}
	assert_int_equal(count(w, "bmsbridge/gw1/", "/state"), 0);

	/* max_silence (60 s) since the last publish: again, unchanged */
	evaluate(w, 160 * SEC);
	assert_int_equal(count(w, "bmsbridge/gw1/state", NULL), 1);
	assert_int_equal(count(w, "bmsbridge/gw1/pack/1/state", NULL), 1);
	rec_clear(&w->rec);

	/* a change before min_interval (1 s): held back */
	w->st.bank.soc_pct = 71;
	evaluate(w, 160 * SEC + SEC / 2);
	assert_int_equal(count(w, "bmsbridge/gw1/state", NULL), 0);
	/* a second change, still within: held back; the next due carries the newest */
	w->st.bank.soc_pct = 72;
	evaluate(w, 160 * SEC + 9 * SEC / 10);
	assert_int_equal(count(w, "bmsbridge/gw1/state", NULL), 0);
	evaluate(w, 161 * SEC);
	assert_int_equal(count(w, "bmsbridge/gw1/state", NULL), 1);
	assert_raw(last(w, "bmsbridge/gw1/state"), "soc", "72.0");
	/* the pack did not change: not published with the bank */
	assert_int_equal(count(w, "bmsbridge/gw1/pack/1/state", NULL), 0);
	rec_clear(&w->rec);

	/* a BMS that says 0.1 % (a Seplos, a Daly): published at its resolution */
	battery_pack_set_soc_cpct(&w->st.bank, 7240);
	evaluate(w, 165 * SEC);
	assert_raw(last(w, "bmsbridge/gw1/state"), "soc", "72.4");
	rec_clear(&w->rec);

	/* a change below the published resolution (0.01 V) is no change */
	w->st.bank.voltage_mv = 52302;
	evaluate(w, 170 * SEC);
	assert_int_equal(count(w, "bmsbridge/gw1/state", NULL), 0);
	w->st.bank.voltage_mv = 52306;
	evaluate(w, 171 * SEC);
	assert_int_equal(count(w, "bmsbridge/gw1/state", NULL), 1);
	assert_raw(last(w, "bmsbridge/gw1/state"), "voltage", "52.31");
	rec_clear(&w->rec);

	/* changing at every evaluation (10 per second) for 10 s: one publish per min_interval */
	for (unsigned k = 1; k <= 100; k++) {
		w->st.bank.voltage_mv = 52000 + 10 * k;
		w->st.packs[0].voltage_mv = 52000 + 10 * k;
		evaluate(w, 180 * SEC + k * SEC / 10);
	}
	assert_int_equal(count(w, "bmsbridge/gw1/state", NULL), 10);
	assert_int_equal(count(w, "bmsbridge/gw1/pack/1/state", NULL), 10);
	world_free(w);
}

static void test_pack_availability(void **state)
{
	struct world *w = world_new(3, true);
	const struct msg *m;

	configure(w, 3, NULL);
	evaluate(w, SEC);
	rec_clear(&w->rec);

	/* pack 2 drops out: "offline", retained, QoS 1; its stale state is not published */
	w->online_mask = 0x5;
	w->st.packs_online = 2;
	evaluate(w, 2 * SEC);
	m = last(w, "bmsbridge/gw1/pack/2/availability");
	assert_non_null(m);
	assert_string_equal(m->payload, "offline");
	assert_int_equal(m->qos, 1);
	assert_true(m->retain);
	assert_int_equal(count(w, "bmsbridge/gw1/pack/", "/availability"), 1);
	rec_clear(&w->rec);
	evaluate(w, 100 * SEC); /* past max_silence: the others again, not pack 2 */
	assert_null(find(w, "bmsbridge/gw1/pack/2/state"));
	assert_non_null(last(w, "bmsbridge/gw1/pack/1/state"));
	assert_int_equal(count(w, "bmsbridge/gw1/pack/", "/availability"), 0);
	rec_clear(&w->rec);

	/* back: "online" and its state at once, min_interval or not */
	w->online_mask = 0x7;
	evaluate(w, 100 * SEC + SEC / 10);
	assert_string_equal(last(w, "bmsbridge/gw1/pack/2/availability")->payload, "online");
	assert_non_null(last(w, "bmsbridge/gw1/pack/2/state"));
	assert_int_equal(count(w, "bmsbridge/gw1/pack/", "/availability"), 1);
	rec_clear(&w->rec);

	/* the daemon stops: every pack offline */
	observer_mqtt_stop(&w->o);
	assert_int_equal(count(w, "bmsbridge/gw1/pack/", "/availability"), 3);
	assert_string_equal(last(w, "bmsbridge/gw1/pack/3/availability")->payload, "offline");
	world_free(w);
}

static void test_reload_fewer_packs(void **state)
{
	struct world *w = world_new(3, true);
	static const uint8_t addr3[] = { 1, 2, 3 }, addr2[] = { 1, 2 };
	const struct msg *m;

	configure(w, 3, addr3);
	evaluate(w, SEC);
	rec_clear(&w->rec);

	w->st.pack_count = 2;
	w->online_mask = 0x3;
	configure(w, 2, addr2);
	/* pack 3: every entity removed by an empty retained payload, its availability cleared */
	assert_int_equal(count(w, "homeassistant/sensor/gw1/pack3_", "/config"),
			 PACK_ENTITIES + 16);
	assert_int_equal(count_cells(w, 3), 16);
	for (unsigned i = 0; i < w->rec.n; i++) {
		m = &w->rec.m[i];
		if (strstr(m->topic, "pack3_")) {
			assert_int_equal(m->len, 0);
			assert_true(m->retain);
			assert_int_equal(m->qos, 1);
		}
	}
	m = last(w, "bmsbridge/gw1/pack/3/availability");
	assert_non_null(m);
	assert_int_equal(m->len, 0);
	assert_true(m->retain);
	/* the kept packs are not touched */
	assert_int_equal(count(w, "homeassistant/sensor/gw1/pack1_", NULL), 0);
	assert_null(find(w, "bmsbridge/gw1/pack/1/availability"));
	rec_clear(&w->rec);
	evaluate(w, 2 * SEC);
	assert_null(find(w, "bmsbridge/gw1/pack/3/state"));
	world_free(w);
}

static void test_cells_off(void **state)
{
	struct world *w = world_new(2, false);
	struct json_object *j;

	configure(w, 2, NULL);
	evaluate(w, SEC);
	connect(w);
	assert_int_equal(count_cells(w, 1), 0);
	assert_int_equal(count_cells(w, 2), 0);
	j = parse(last(w, "bmsbridge/gw1/pack/1/state"));
	assert_false(json_object_object_get_ex(j, "cell_1", NULL));
	/* the extremes are there all the same */
	assert_true(json_object_object_get_ex(j, "cell_min", NULL));
	json_object_put(j);
	world_free(w);
}

static void test_cells_turned_off_by_reload(void **state)
{
	struct world *w = world_new(1, true);

	configure(w, 1, NULL);
	evaluate(w, SEC);
	assert_int_equal(count_cells(w, 1), 16);
	rec_clear(&w->rec);
	w->cfg.cells = false;
	configure(w, 1, NULL);
	assert_int_equal(count_cells(w, 1), 16);
	for (unsigned i = 0; i < w->rec.n; i++) {
		assert_int_equal(w->rec.m[i].len, 0);
	}
	rec_clear(&w->rec);
	/* fewer cells reported (a BMS reconfigured): the extra cells removed */
	w->cfg.cells = true;
	configure(w, 1, NULL);
	assert_int_equal(count_cells(w, 1), 16);
	assert_true(last(w, "homeassistant/sensor/gw1/pack1_cell_16/config")->len > 0);
	rec_clear(&w->rec);
	w->st.packs[0].cell_count = 15;
	evaluate(w, 2 * SEC);
	assert_int_equal(count(w, "homeassistant/", NULL), 1);
	assert_int_equal(last(w, "homeassistant/sensor/gw1/pack1_cell_16/config")->len, 0);
	world_free(w);
}

static void test_discovery_off(void **state)
{
	struct world *w = world_new(1, true);

	w->cfg.discovery = false;
	configure(w, 1, NULL);
	evaluate(w, SEC);
	connect(w);
	assert_int_equal(count(w, "homeassistant/", NULL), 0);
	assert_non_null(last(w, "bmsbridge/gw1/state"));
	rec_clear(&w->rec);
	/* turned on by a reload: announced; off again: removed */
	w->cfg.discovery = true;
	configure(w, 1, NULL);
	assert_int_equal(count(w, "homeassistant/", NULL),
			 BANK_ENTITIES + ALARM_ENTITIES + PACK_ENTITIES + 16);
	rec_clear(&w->rec);
	w->cfg.discovery = false;
	configure(w, 1, NULL);
	assert_int_equal(count(w, "homeassistant/", NULL),
			 BANK_ENTITIES + ALARM_ENTITIES + PACK_ENTITIES + 16);
	for (unsigned i = 0; i < w->rec.n; i++) {
		assert_int_equal(w->rec.m[i].len, 0);
	}
	world_free(w);
}

static void test_escaping_and_alarms(void **state)
{
	struct world *w = world_new(1, false);
	struct json_object *j;

	configure(w, 1, NULL);
	w->reason = "BMS \"silent\"\\ for\n10 s";
	w->st.bank.alarms = BATTERY_ALARM_CELL_OVERVOLTAGE;
	w->st.bank.warnings = BATTERY_ALARM_LOW_SOC;
	w->st.packs[0].alarms = BATTERY_ALARM_SHORT_CIRCUIT;
	w->inverter = false;
	evaluate(w, SEC);
	j = parse(last(w, "bmsbridge/gw1/state"));
	assert_string_equal(jstr(j, "mode_reason"), w->reason);
	assert_string_equal(jstr(j, "protection_cell_overvoltage"), "ON");
	assert_string_equal(jstr(j, "protection_short_circuit"), "OFF");
	assert_string_equal(jstr(j, "warning_low_soc"), "ON");
	assert_string_equal(jstr(j, "warning_cell_overvoltage"), "OFF");
	assert_string_equal(jstr(j, "inverter"), "OFF");
	json_object_put(j);
	j = parse(last(w, "bmsbridge/gw1/pack/1/state"));
	assert_string_equal(jstr(j, "protections"), "[ \"short_circuit\" ]");
	json_object_put(j);
	world_free(w);
}

static void test_renamed_by_reload(void **state)
{
	struct world *w = world_new(1, true);
	unsigned old_removed = 0, new_announced = 0;

	/* nothing before the bridge's first ->configured(): the names are not known */
	evaluate(w, SEC);
	connect(w);
	assert_int_equal(w->rec.n, 0);
	configure(w, 1, NULL);
	evaluate(w, 2 * SEC);
	rec_clear(&w->rec);

	strcpy(w->cfg.node_id, "gw2");
	configure(w, 1, NULL);
	for (unsigned i = 0; i < w->rec.n; i++) {
		const struct msg *m = &w->rec.m[i];

		if (strncmp(m->topic, "homeassistant/", 14) == 0 && strstr(m->topic, "/gw1/")) {
			assert_int_equal(m->len, 0);
			old_removed++;
		} else if (strncmp(m->topic, "homeassistant/", 14) == 0 &&
			   strstr(m->topic, "/gw2/")) {
			assert_true(m->len > 0);
			assert_non_null(strstr(m->payload, "bmsbridge/gw2/"));
			new_announced++;
		}
	}
	/* the cells too: the pack's count is known */
	assert_int_equal(old_removed, BANK_ENTITIES + ALARM_ENTITIES + PACK_ENTITIES + 16);
	assert_int_equal(new_announced, BANK_ENTITIES + ALARM_ENTITIES + PACK_ENTITIES + 16);
	assert_int_equal(last(w, "bmsbridge/gw1/pack/1/availability")->len, 0);
	assert_string_equal(last(w, "bmsbridge/gw2/pack/1/availability")->payload, "offline");
	world_free(w);
}

static int refuse_publish(struct mqtt_sink *s, const char *topic, const void *payload, size_t len,
			  int qos, bool retain)
{
	return -ENOMEM;
}

/* a sink that refuses everything: counted, nothing retried in a loop, the rate kept */
static void test_sink_refuses(void **state)
{
	struct world *w = world_new(2, true);
	uint64_t errors;

	w->rec.sink.publish = refuse_publish;
	configure(w, 2, NULL);
	evaluate(w, SEC);
	errors = w->o.publish_errors;
	assert_true(errors > 0);
	assert_int_equal(w->o.published, 0);
	evaluate(w, SEC + SEC / 2); /* nothing due: nothing tried */
	assert_int_equal(w->o.publish_errors, errors);
	w->rec.sink.publish = rec_publish;
	evaluate(w, 100 * SEC);
	assert_non_null(last(w, "bmsbridge/gw1/state"));
	assert_int_equal(w->o.published, w->rec.n);
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_discovery_on_connect),
		cmocka_unit_test(test_discovery_units),
		cmocka_unit_test(test_state_values),
		cmocka_unit_test(test_wire_limits),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_pack_availability),
		cmocka_unit_test(test_reload_fewer_packs),
		cmocka_unit_test(test_cells_off),
		cmocka_unit_test(test_cells_turned_off_by_reload),
		cmocka_unit_test(test_discovery_off),
		cmocka_unit_test(test_escaping_and_alarms),
		cmocka_unit_test(test_renamed_by_reload),
		cmocka_unit_test(test_sink_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
