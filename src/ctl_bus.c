/* SPDX-License-Identifier: MIT */
/*
 * bmsbridgectl status | watch: the running daemon as it publishes itself
 * on the system bus (org.bmsbridge.Gateway1, bmsbridged(8)). Read-only:
 * Properties.GetAll on the gateway and on each pack, PropertiesChanged for
 * watch.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <systemd/sd-bus.h>

#include "ctl.h"
#include "macro.h"

#define BUS_NAME "org.bmsbridge.Gateway1"
#define BUS_PATH "/org/bmsbridge/Gateway1"
#define IFACE_GATEWAY "org.bmsbridge.Gateway1"
#define IFACE_PACK "org.bmsbridge.Pack1"

struct sd_bus *ctl_bus_open(bool say, int *ret_err)
{
	sd_bus *bus = NULL;
	int r = sd_bus_open_system(&bus);

	if (r < 0) {
		if (say) {
			fprintf(stderr, "bmsbridgectl: no system bus (%s): is dbus running?\n",
				strerror(-r));
		}
		*ret_err = r;
		return NULL;
	}
	*ret_err = 0;
	return bus;
}

/* one variant (the message is at its 'v') as JSON */
static struct json_object *variant_to_json(sd_bus_message *m)
{
	const char *contents = NULL;
	char type;
	int r;

	r = sd_bus_message_peek_type(m, &type, &contents);
	if (r <= 0) {
		return NULL;
	}
	if (type == SD_BUS_TYPE_VARIANT) {
		struct json_object *o;

		if (sd_bus_message_enter_container(m, 'v', contents) < 0) {
			return NULL;
		}
		o = variant_to_json(m);
		sd_bus_message_exit_container(m);
		return o;
	}
	if (type == SD_BUS_TYPE_ARRAY) {
		struct json_object *a = json_object_new_array();

		if (sd_bus_message_enter_container(m, 'a', contents) < 0) {
			json_object_put(a);
			return NULL;
		}
		while (sd_bus_message_at_end(m, false) == 0) {
			struct json_object *e = variant_to_json(m);

			if (!e) {
				break;
			}
			json_object_array_add(a, e);
		}
		sd_bus_message_exit_container(m);
		return a;
	}
	if (type == SD_BUS_TYPE_STRUCT) {
		/* (uay): a frame, {"id": N, "data": "hex"} */
		struct json_object *f = json_object_new_object();
		const void *data = NULL;
		size_t n = 0;
		uint32_t id = 0;
		char hex[2 * 64 + 1] = "";

		if (sd_bus_message_enter_container(m, 'r', contents) < 0 ||
		    sd_bus_message_read(m, "u", &id) < 0 ||
		    sd_bus_message_read_array(m, 'y', &data, &n) < 0) {
			json_object_put(f);
			return NULL;
		}
		sd_bus_message_exit_container(m);
		for (size_t k = 0; k < n && k < 64; k++) {
			snprintf(hex + 2 * k, 3, "%02X", ((const uint8_t *)data)[k]);
		}
		json_object_object_add(f, "id", json_object_new_int64(id));
		json_object_object_add(f, "data", json_object_new_string(hex));
		return f;
	}
	switch (type) {
	case 's': {
		const char *s;

		r = sd_bus_message_read_basic(m, type, &s);
		return r < 0 ? NULL : json_object_new_string(s);
	}
	case 'b': {
		int b;

		r = sd_bus_message_read_basic(m, type, &b);
		return r < 0 ? NULL : json_object_new_boolean(b);
	}
	case 'y': {
		uint8_t v;

		r = sd_bus_message_read_basic(m, type, &v);
		return r < 0 ? NULL : json_object_new_int64(v);
	}
	case 'q': {
		uint16_t v;

		r = sd_bus_message_read_basic(m, type, &v);
		return r < 0 ? NULL : json_object_new_int64(v);
	}
	case 'n': {
		int16_t v;

		r = sd_bus_message_read_basic(m, type, &v);
		return r < 0 ? NULL : json_object_new_int64(v);
	}
	case 'u': {
		uint32_t v;

		r = sd_bus_message_read_basic(m, type, &v);
		return r < 0 ? NULL : json_object_new_int64(v);
	}
	case 'i': {
		int32_t v;

		r = sd_bus_message_read_basic(m, type, &v);
		return r < 0 ? NULL : json_object_new_int64(v);
	}
	case 't': {
		uint64_t v;

		r = sd_bus_message_read_basic(m, type, &v);
		return r < 0 ? NULL : json_object_new_uint64(v);
	}
	default:
		sd_bus_message_skip(m, NULL);
		return json_object_new_null();
	}
}

/* a{sv} into @obj; Return: 0 or a negative errno */
static int dict_to_json(sd_bus_message *m, struct json_object *obj)
{
	int r = sd_bus_message_enter_container(m, 'a', "{sv}");

	if (r < 0) {
		return r;
	}
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const char *name;
		struct json_object *v;

		r = sd_bus_message_read(m, "s", &name);
		if (r < 0) {
			return r;
		}
		v = variant_to_json(m);
		json_object_object_add(obj, name, v);
		r = sd_bus_message_exit_container(m);
		if (r < 0) {
			return r;
		}
	}
	return r < 0 ? r : sd_bus_message_exit_container(m);
}

static struct json_object *get_all(sd_bus *bus, const char *path, const char *iface, int *ret_err)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	struct json_object *obj;
	int r;

	r = sd_bus_call_method(bus, BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll",
			       &err, &reply, "s", iface);
	if (r < 0) {
		*ret_err = sd_bus_error_has_name(&err, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
					   sd_bus_error_has_name(&err, SD_BUS_ERROR_SERVICE_UNKNOWN)
				   ? -ESRCH
				   : r;
		sd_bus_error_free(&err);
		return NULL;
	}
	obj = json_object_new_object();
	r = dict_to_json(reply, obj);
	sd_bus_message_unref(reply);
	if (r < 0) {
		json_object_put(obj);
		*ret_err = r;
		return NULL;
	}
	return obj;
}

struct json_object *ctl_bus_snapshot(sd_bus *bus, int *ret_err)
{
	struct json_object *all, *gw, *packs, *addrs = NULL;

	gw = get_all(bus, BUS_PATH, IFACE_GATEWAY, ret_err);
	if (!gw) {
		return NULL;
	}
	all = json_object_new_object();
	json_object_object_add(all, "gateway", gw);
	packs = json_object_new_array();
	json_object_object_add(all, "packs", packs);
	json_object_object_get_ex(gw, "PackAddresses", &addrs);
	for (size_t k = 0; addrs && k < json_object_array_length(addrs); k++) {
		char path[64];
		struct json_object *p;

		snprintf(path, sizeof(path), BUS_PATH "/pack/%d",
			 json_object_get_int(json_object_array_get_idx(addrs, k)));
		p = get_all(bus, path, IFACE_PACK, ret_err);
		if (p) {
			json_object_array_add(packs, p);
		}
	}
	*ret_err = 0;
	return all;
}

/* ---- the one screen ---------------------------------------------------------------- */

static const char *str(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : "";
}

static int64_t num(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static bool flag(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

/* "a, b" of a string array, "none" if empty */
static const char *names(struct json_object *o, const char *key, char *buf, size_t n)
{
	struct json_object *v;
	size_t len = 0;

	buf[0] = '\0';
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) == 0) {
		snprintf(buf, n, "none");
		return buf;
	}
	for (size_t k = 0; k < json_object_array_length(v) && len < n; k++) {
		len += (size_t)snprintf(buf + len, n - len, "%s%s", k ? ", " : "",
					json_object_get_string(json_object_array_get_idx(v, k)));
	}
	return buf;
}

static void print_limit(FILE *f, struct json_object *gw, const char *label, const char *prop,
			const char *wire, const char *unit, double scale)
{
	char key[64];

	/* ChargeVoltageLimitMv -> ChargeVoltageLimitSetBy */
	snprintf(key, sizeof(key), "%.*sSetBy", (int)(strlen(prop) - 2), prop);
	fprintf(f, "%16s: %.1f %s (set by %s; on the wire %.1f %s)\n", label,
		(double)num(gw, prop) / scale, unit, str(gw, key), (double)num(gw, wire) / scale,
		unit);
}

static void print_pack(FILE *f, struct json_object *p)
{
	char al[160], wa[160];

	fprintf(f, "%16s: #%" PRId64 " %s", "Pack", num(p, "Address"),
		flag(p, "Online") ? "online" : "OFFLINE");
	if ((uint64_t)num(p, "AgeUsec") != UINT64_MAX && num(p, "AgeUsec") >= 0) {
		fprintf(f, " (read %.1f s ago)", (double)num(p, "AgeUsec") / 1e6);
	} else {
		fprintf(f, " (never read)");
	}
	fprintf(f, ", SOC %" PRId64 " %%, SOH %" PRId64 " %%, %.2f V, %.1f A\n", num(p, "SocPct"),
		num(p, "SohPct"), (double)num(p, "VoltageMv") / 1000,
		(double)num(p, "CurrentMa") / 1000);
	fprintf(f,
		"%16s  cells %.3f V (#%" PRId64 ") .. %.3f V (#%" PRId64 "), delta %" PRId64
		" mV; %.1f .. %.1f °C\n",
		"", (double)num(p, "CellMinMv") / 1000, num(p, "CellMinPosition"),
		(double)num(p, "CellMaxMv") / 1000, num(p, "CellMaxPosition"),
		num(p, "CellDeltaMv"), (double)num(p, "TemperatureMinDc") / 10,
		(double)num(p, "TemperatureMaxDc") / 10);
	fprintf(f, "%16s  alarms: %s; warnings: %s\n", "", names(p, "Alarms", al, sizeof(al)),
		names(p, "Warnings", wa, sizeof(wa)));
}

static void print_status(FILE *f, struct json_object *all)
{
	struct json_object *gw = NULL, *packs = NULL;
	char buf[256], buf2[256];

	json_object_object_get_ex(all, "gateway", &gw);
	json_object_object_get_ex(all, "packs", &packs);
	fprintf(f, "● bmsbridged %s, up %.0f s, %s\n", str(gw, "Version"),
		(double)num(gw, "UptimeUsec") / 1e6, str(gw, "ConfigPath"));
	fprintf(f, "%16s: %s on %s (%s): %s\n", "BMS", str(gw, "BmsDriver"), str(gw, "BmsPort"),
		flag(gw, "BmsPortOpen") ? "open" : "CLOSED", str(gw, "BmsStatus"));
	fprintf(f, "%16s: %" PRId64 "/%" PRId64 " online; SOC %" PRId64 " %%, %.2f V, %.1f A\n",
		"Bank", num(gw, "PacksOnline"), num(gw, "PackCount"), num(gw, "SocPct"),
		(double)num(gw, "VoltageMv") / 1000, (double)num(gw, "CurrentMa") / 1000);
	for (size_t k = 0; packs && k < json_object_array_length(packs); k++) {
		print_pack(f, json_object_array_get_idx(packs, k));
	}
	fprintf(f, "%16s: %s (%s)\n", "Safety", str(gw, "Mode"), str(gw, "ModeReason"));
	if (str(gw, "Conflict")[0]) {
		fprintf(f, "%16s: %s\n", "Conflict", str(gw, "Conflict"));
	}
	print_limit(f, gw, "Charge voltage", "ChargeVoltageLimitMv", "WireChargeVoltageLimitMv",
		    "V", 1000);
	print_limit(f, gw, "Disch. voltage", "DischargeVoltageLimitMv",
		    "WireDischargeVoltageLimitMv", "V", 1000);
	print_limit(f, gw, "Charge current", "ChargeCurrentLimitMa", "WireChargeCurrentLimitMa",
		    "A", 1000);
	print_limit(f, gw, "Disch. current", "DischargeCurrentLimitMa",
		    "WireDischargeCurrentLimitMa", "A", 1000);
	fprintf(f, "%16s: SOC %" PRId64 " %%, %.2f V; alarms: %s; requests: %s\n", "On the wire",
		num(gw, "WireSocPct"), (double)num(gw, "WireVoltageMv") / 1000,
		names(gw, "WireAlarms", buf, sizeof(buf)),
		names(gw, "WireRequests", buf2, sizeof(buf2)));
	fprintf(f, "%16s: %s over %s on %s (%s): %s\n", "Inverter", str(gw, "InverterProtocol"),
		str(gw, "InverterTransport"), str(gw, "InverterPort"),
		flag(gw, "InverterPortOpen") ? "open" : "CLOSED", str(gw, "InverterStatus"));
	fprintf(f, "%16s: %s\n", "Inverter heard",
		flag(gw, "InverterHeard")		? "yes"
		: num(gw, "InverterHeardMonotonicUsec") ? "not any more"
							: "never");
}

static int snapshot_or_say(sd_bus *bus, struct json_object **ret)
{
	int r;

	*ret = ctl_bus_snapshot(bus, &r);
	if (!*ret) {
		if (r == -ESRCH) {
			fprintf(stderr, "bmsbridgectl: bmsbridged is not on the system bus "
					"(not running, or daemon { dbus = false }); "
					"try 'systemctl status bmsbridge'\n");
			return CTL_EXIT_NO_DAEMON;
		}
		fprintf(stderr, "bmsbridgectl: cannot read the daemon: %s\n", strerror(-r));
		return 1;
	}
	return 0;
}

int ctl_status(bool json)
{
	struct json_object *all;
	sd_bus *bus;
	int r;

	bus = ctl_bus_open(true, &r);
	if (!bus) {
		return CTL_EXIT_NO_DAEMON;
	}
	r = snapshot_or_say(bus, &all);
	sd_bus_flush_close_unref(bus);
	if (r) {
		return r;
	}
	if (json) {
		puts(json_object_to_json_string_ext(all, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_SPACED |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		print_status(stdout, all);
	}
	json_object_put(all);
	return 0;
}

/* ---- watch ------------------------------------------------------------------------ */

struct watch {
	sd_bus *bus;
	struct json_object *seen; /* object path -> {property: value} as last printed */
	bool tty;
	bool stop;
	int error;
};

static void now_hms(char *buf, size_t n)
{
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, n, "%H:%M:%S", &tm);
}

static int on_changed(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	struct watch *w = userdata;
	struct json_object *changed;
	const char *iface = NULL, *path = sd_bus_message_get_path(m);
	char hms[16];

	if (w->tty) {
		struct json_object *all;

		if (snapshot_or_say(w->bus, &all) == 0) {
			fputs("\033[H\033[2J", stdout);
			print_status(stdout, all);
			json_object_put(all);
		}
		fflush(stdout);
		return 0;
	}
	if (sd_bus_message_read(m, "s", &iface) < 0) {
		return 0;
	}
	changed = json_object_new_object();
	if (dict_to_json(m, changed) >= 0) {
		const char *obj = path && strlen(path) > strlen(BUS_PATH)
					  ? path + strlen(BUS_PATH) + 1
					  : "gateway";
		struct json_object *seen;
		bool any = false;

		if (!json_object_object_get_ex(w->seen, obj, &seen)) {
			seen = json_object_new_object();
			json_object_object_add(w->seen, obj, seen);
		}
		/* the daemon sends every property of the object: print only those that moved */
		json_object_object_foreach(changed, k, v)
		{
			struct json_object *old;
			const char *txt = json_object_to_json_string_ext(
				v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

			if (json_object_object_get_ex(seen, k, &old) &&
			    streq(json_object_to_json_string_ext(
					  old,
					  JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
				  txt)) {
				continue;
			}
			if (!any) {
				now_hms(hms, sizeof(hms));
				printf("%s %s", hms, obj);
				any = true;
			}
			printf(" %s=%s", k, txt);
			json_object_object_add(seen, k, json_object_get(v));
		}
		if (any) {
			putchar('\n');
			fflush(stdout);
		}
	}
	json_object_put(changed);
	return 0;
}

static int on_owner(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
	const char *name, *old, *new;
	char hms[16];

	if (sd_bus_message_read(m, "sss", &name, &old, &new) < 0) {
		return 0;
	}
	now_hms(hms, sizeof(hms));
	printf("%s bmsbridged %s the bus\n", hms, new[0] ? "is on" : "left");
	fflush(stdout);
	return 0;
}

int ctl_watch(void)
{
	struct watch w = { .tty = isatty(STDOUT_FILENO), .seen = json_object_new_object() };
	struct json_object *all;
	int r;

	w.bus = ctl_bus_open(true, &r);
	if (!w.bus) {
		return CTL_EXIT_NO_DAEMON;
	}
	r = sd_bus_match_signal(w.bus, NULL, BUS_NAME, NULL, "org.freedesktop.DBus.Properties",
				"PropertiesChanged", on_changed, &w);
	if (r >= 0) {
		r = sd_bus_add_match(w.bus, NULL,
				     "type='signal',sender='org.freedesktop.DBus',"
				     "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
				     "arg0='" BUS_NAME "'",
				     on_owner, &w);
	}
	if (r < 0) {
		fprintf(stderr, "bmsbridgectl: cannot watch: %s\n", strerror(-r));
		sd_bus_flush_close_unref(w.bus);
		return 1;
	}
	/* the state now, then every change */
	r = snapshot_or_say(w.bus, &all);
	if (r == 0) {
		struct json_object *gw = NULL, *packs = NULL;

		if (w.tty) {
			fputs("\033[H\033[2J", stdout);
		}
		print_status(stdout, all);
		fflush(stdout);
		/* what is shown: the baseline of the first change lines */
		json_object_object_get_ex(all, "gateway", &gw);
		json_object_object_get_ex(all, "packs", &packs);
		json_object_object_add(w.seen, "gateway", json_object_get(gw));
		for (size_t k = 0; packs && k < json_object_array_length(packs); k++) {
			struct json_object *p = json_object_array_get_idx(packs, k);
			char key[32];

			snprintf(key, sizeof(key), "pack/%d",
				 json_object_get_int(json_object_object_get(p, "Address")));
			json_object_object_add(w.seen, key, json_object_get(p));
		}
		json_object_put(all);
	}
	for (;;) {
		r = sd_bus_process(w.bus, NULL);
		if (r < 0) {
			fprintf(stderr, "bmsbridgectl: the bus went away: %s\n", strerror(-r));
			break;
		}
		if (r > 0) {
			continue;
		}
		r = sd_bus_wait(w.bus, UINT64_MAX);
		if (r < 0 && r != -EINTR) {
			break;
		}
	}
	sd_bus_flush_close_unref(w.bus);
	json_object_put(w.seen);
	return 1;
}
