/* SPDX-License-Identifier: MIT */
/*
 * The configuration file: libconfig syntax in, struct config out.
 *
 * Model: every group of the file has a table of struct conf_key (name,
 * type, range, default, unit, where it lives in struct config). Loading
 * runs in five steps, and only the last one touches the caller's struct:
 *
 *   0. (a file) open it without blocking, refuse anything but a regular
 *      file of at most CONFIG_FILE_MAX bytes, read it into memory;
 *      (any text) skip a UTF-8 byte order mark, refuse UTF-16 and NUL
 *      bytes and @include, and mark integer literals wider than 32 bits
 *      with libconfig's L suffix (libconfig 1.5 wraps them silently);
 *   1. fill a scratch struct config with the defaults of every table;
 *   2. let libconfig parse the text (syntax errors carry its line);
 *   3. walk the parsed tree: every setting must be a known key of its
 *      group, of the right type, inside its range; the first problem is
 *      the error, "file:line: group.key: what is wrong";
 *   4. cross-key checks the tables cannot express (the driver and the
 *      protocol exist, the output suits the protocol, ports are named and
 *      distinct, the poll round fits the stale timeout, options and rates
 *      suit the driver and protocol), then copy the scratch struct out.
 *
 * So a bad file never half-applies: SIGHUP with a broken file keeps the
 * running configuration untouched (src/main.c).
 *
 * config_print() walks the same tables backwards, so --check-config prints
 * every effective value, defaults included, in a form that reads back in.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <libconfig.h>

#include "bms.h"
#include "config.h"
#include "hex.h"
#include "macro.h"
#include "metrics.h"
#include "mqtt.h"
#include "protocol.h"
#include "safety.h"

struct loader {
	const char *name; /* the source, as errors call it */
	struct config_error *err;
};

static int fail(struct loader *ld, const char *file, int line, const char *setting,
		const char *fmt, ...) _printf_(5, 6);
static int fail(struct loader *ld, const char *file, int line, const char *setting,
		const char *fmt, ...)
{
	va_list ap;

	memset(ld->err, 0, sizeof(*ld->err));
	snprintf(ld->err->file, sizeof(ld->err->file), "%s", file ? file : ld->name);
	ld->err->line = line;
	snprintf(ld->err->setting, sizeof(ld->err->setting), "%s", setting ? setting : "");
	va_start(ap, fmt);
	vsnprintf(ld->err->text, sizeof(ld->err->text), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* fail() at the place of a parsed setting; @what is "group.key" */
static int fail_at(struct loader *ld, const config_setting_t *s, const char *what,
		   const char *fmt, ...) _printf_(4, 5);
static int fail_at(struct loader *ld, const config_setting_t *s, const char *what,
		   const char *fmt, ...)
{
	char text[sizeof(ld->err->text)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return fail(ld, s ? config_setting_source_file(s) : NULL,
		    s ? (int)config_setting_source_line(s) : 0, what, "%s", text);
}

static void *field(void *base, const struct conf_key *k)
{
	return (char *)base + k->offset;
}

/* store @v (file units) scaled into the integer field of @k */
static void store_int(const struct conf_key *k, void *base, int64_t v)
{
	int64_t x = v * (k->scale ? k->scale : 1);
	void *p = field(base, k);

	switch (k->size) {
	case 1:
		*(uint8_t *)p = (uint8_t)x;
		break;
	case 2:
		*(uint16_t *)p = (uint16_t)x;
		break;
	case 4:
		*(uint32_t *)p = (uint32_t)x;
		break;
	case 8:
		*(uint64_t *)p = (uint64_t)x;
		break;
	default:
		break;
	}
}

/* read the integer field of @k back in file units */
static int64_t load_int(const struct conf_key *k, const void *base)
{
	const void *p = (const char *)base + k->offset;
	bool sign = k->type == CONF_INT;
	int64_t x = 0;

	switch (k->size) {
	case 1:
		x = sign ? *(const int8_t *)p : *(const uint8_t *)p;
		break;
	case 2:
		x = sign ? *(const int16_t *)p : *(const uint16_t *)p;
		break;
	case 4:
		x = sign ? *(const int32_t *)p : (int64_t) * (const uint32_t *)p;
		break;
	case 8:
		x = (int64_t) * (const uint64_t *)p;
		break;
	default:
		break;
	}
	return x / (k->scale ? k->scale : 1);
}

static void key_default(const struct conf_key *k, void *base)
{
	switch (k->type) {
	case CONF_BOOL:
		*(bool *)field(base, k) = k->def != 0;
		break;
	case CONF_UINT:
	case CONF_INT:
		store_int(k, base, k->def);
		break;
	case CONF_STRING:
		snprintf(field(base, k), k->size, "%s", k->def_str ? k->def_str : "");
		break;
	case CONF_ENUM:
		*(int *)field(base, k) = (int)k->def;
		break;
	case CONF_UINT_LIST:
		/* one element, the default */
		memset(field(base, k), 0, k->size);
		*(uint8_t *)field(base, k) = (uint8_t)k->def;
		*((uint8_t *)base + k->count_offset) = 1;
		break;
	}
}

static const char *type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a number with a fraction";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

static bool is_int(const config_setting_t *s)
{
	int t = config_setting_type(s);

	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

/* "a, b, c" from a NULL-terminated name list */
static void join_names(const char *const *names, char *buf, size_t n)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; names[i] && len < n; i++) {
		len += (size_t)snprintf(buf + len, n - len, "%s\"%s\"", i ? ", " : "", names[i]);
	}
}

/* @str made safe to echo in a one-line error: at most 40 characters, controls as '?' */
static const char *printable(const char *str, char buf[static 48])
{
	size_t i;

	for (i = 0; str[i] && i < 40; i++) {
		unsigned char c = (unsigned char)str[i];

		buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	buf[i] = '\0';
	if (str[i]) {
		memcpy(buf + i, "...", 4);
	}
	return buf;
}

/* parse one setting @s into the field of @k; @what names it in errors */
/* one setting of each conf_type: the value checked, then stored at its offset */
static int parse_bool(struct loader *ld, const struct conf_key *k, const config_setting_t *s,
		      void *base, const char *what)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		return fail_at(ld, s, what, "expected true or false, not %s",
			       type_name(config_setting_type(s)));
	}
	*(bool *)field(base, k) = config_setting_get_bool(s);
	return 0;
}

static int parse_int(struct loader *ld, const struct conf_key *k, const config_setting_t *s,
		     void *base, const char *what)
{
	char list[160];
	int64_t v;

	if (!is_int(s)) {
		return fail_at(ld, s, what, "expected an integer%s%s, not %s",
			       k->unit ? " in " : "", k->unit ? k->unit : "",
			       type_name(config_setting_type(s)));
	}
	v = config_setting_get_int64(s);
	if (k->choices) {
		size_t len = 0;
		bool ok = false;

		for (const int64_t *c = k->choices; *c; c++) {
			ok = ok || v == *c || (v == 0 && k->def == 0);
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%" PRId64,
						c == k->choices ? "" : ", ", *c);
		}
		if (!ok) {
			return fail_at(ld, s, what,
				       "%" PRId64 " %s is not supported; use one of %s%s",
				       v, k->unit ? k->unit : "", list,
				       k->def == 0 ? " (or 0 for the default)" : "");
		}
		store_int(k, base, v);
		return 0;
	}
	if (v < k->min || v > k->max) {
		return fail_at(ld, s, what,
			       "%" PRId64 "%s%s is out of range [%" PRId64 ", %" PRId64 "]",
			       v, k->unit ? " " : "", k->unit ? k->unit : "", k->min,
			       k->max);
	}
	store_int(k, base, v);
	return 0;
}

static int parse_string(struct loader *ld, const struct conf_key *k, const config_setting_t *s,
		        void *base, const char *what)
{
	const char *str;
	size_t len;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		return fail_at(ld, s, what, "expected a string, not %s",
			       type_name(config_setting_type(s)));
	}
	str = config_setting_get_string(s);
	len = strlen(str);
	if (len < (size_t)k->min) {
		return fail_at(ld, s, what, "must not be empty");
	}
	if (len > (size_t)k->max || len >= k->size) {
		return fail_at(ld, s, what, "is %zu characters long, at most %" PRId64,
			       len, k->max);
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)str[i] < 0x20 || str[i] == 0x7f) {
			return fail_at(ld, s, what, "contains a control character");
		}
	}
	memcpy(field(base, k), str, len + 1);
	return 0;
}

static int parse_enum(struct loader *ld, const struct conf_key *k, const config_setting_t *s,
		      void *base, const char *what)
{
	char list[160];
	char shown[48];
	const char *str;

	join_names(k->enum_names, list, sizeof(list));
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		return fail_at(ld, s, what, "expected one of %s, not %s", list,
			       type_name(config_setting_type(s)));
	}
	str = config_setting_get_string(s);
	for (int i = 0; k->enum_names[i]; i++) {
		if (streq(str, k->enum_names[i])) {
			*(int *)field(base, k) = i;
			return 0;
		}
	}
	return fail_at(ld, s, what, "\"%s\" is not one of %s", printable(str, shown),
		       list);
}

static int parse_list(struct loader *ld, const struct conf_key *k, const config_setting_t *s,
		      void *base, const char *what)
{
	int64_t v;
	int t = config_setting_type(s);
	int n = config_setting_length(s);
	uint8_t *a = field(base, k);

	if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
		return fail_at(ld, s, what, "expected a list like [1, 2], not %s",
			       type_name(t));
	}
	if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
		return fail_at(ld, s, what, "expected a list like [1, 2], not %s",
			       type_name(t));
	}
	if (n < 1 || (size_t)n > k->size) {
		return fail_at(ld, s, what, "needs 1 to %zu entries, has %d", k->size, n);
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

		if (!e || !is_int(e)) {
			return fail_at(ld, s, what, "entry %d is not an integer", i + 1);
		}
		v = config_setting_get_int64(e);
		if (v < k->min || v > k->max) {
			return fail_at(ld, s, what,
				       "entry %d (%" PRId64 ") is out of range [%" PRId64
				       ", %" PRId64 "]",
				       i + 1, v, k->min, k->max);
		}
		for (int j = 0; j < i; j++) {
			if (a[j] == v) {
				return fail_at(ld, s, what, "%" PRId64 " is listed twice", v);
			}
		}
		a[i] = (uint8_t)v;
	}
	*((uint8_t *)base + k->count_offset) = (uint8_t)n;
	return 0;
}

static int parse_key(struct loader *ld, const struct conf_key *k, const config_setting_t *s,
		     void *base, const char *what)
{
	switch (k->type) {
	case CONF_BOOL:
		return parse_bool(ld, k, s, base, what);
	case CONF_UINT:
	case CONF_INT:
		return parse_int(ld, k, s, base, what);
	case CONF_STRING:
		return parse_string(ld, k, s, base, what);
	case CONF_ENUM:
		return parse_enum(ld, k, s, base, what);
	case CONF_UINT_LIST:
		return parse_list(ld, k, s, base, what);
	}
	return fail_at(ld, s, what, "internal error: unknown key type");
}

/* Levenshtein distance, capped: for "did you mean" */
static unsigned distance(const char *a, const char *b)
{
	unsigned prev[CONFIG_NAME_MAX + 1], cur[CONFIG_NAME_MAX + 1];
	size_t la = strlen(a), lb = strlen(b);

	if (la > CONFIG_NAME_MAX || lb > CONFIG_NAME_MAX) {
		return UINT32_MAX;
	}
	for (size_t j = 0; j <= lb; j++) {
		prev[j] = (unsigned)j;
	}
	for (size_t i = 1; i <= la; i++) {
		cur[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			unsigned del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = MIN(sub, MIN(del, ins));
		}
		memcpy(prev, cur, sizeof(prev));
	}
	return prev[lb];
}

/* the closest known key of @g to @name, or NULL if none is close */
static const char *closest(const struct conf_group *g, const char *name)
{
	const char *best = NULL;
	unsigned best_d = 3; /* at most two edits away */

	for (size_t i = 0; i < g->n_keys; i++) {
		unsigned d = distance(name, g->keys[i].name);

		if (d < best_d) {
			best_d = d;
			best = g->keys[i].name;
		}
	}
	return best;
}

static const struct conf_key *key_find(const struct conf_group *g, const char *name)
{
	for (size_t i = 0; i < g->n_keys; i++) {
		if (streq(g->keys[i].name, name)) {
			return &g->keys[i];
		}
	}
	return NULL;
}

static int unknown(struct loader *ld, const config_setting_t *s, const struct conf_group *g,
		   const char *what)
{
	const char *name = config_setting_name(s);
	struct conf_group all[CONFIG_GROUPS];
	size_t n = config_groups(all);
	const char *near;

	/* a known key of another group: say where it belongs */
	for (size_t i = 0; name && i < n; i++) {
		if (streq(all[i].name, g->name) || !key_find(&all[i], name)) {
			continue;
		}
		if (!all[i].name[0]) {
			return fail_at(ld, s, what,
				       "unknown in group %s; %s belongs at the top level, outside any "
				       "group",
				       g->name, name);
		}
		return fail_at(ld, s, what, "unknown %s%s; did you mean %s.%s?",
			       g->name[0] ? "in group " : "at the top level", g->name, all[i].name,
			       name);
	}
	near = closest(g, name);
	if (near) {
		return fail_at(ld, s, what, "unknown setting; did you mean \"%s\"?", near);
	}
	return fail_at(ld, s, what, "unknown setting%s%s", g->name[0] ? " in group " : "",
		       g->name);
}

static int parse_group(struct loader *ld, const struct conf_group *g, const config_setting_t *gs,
		       struct config *cfg)
{
	void *base = (char *)cfg + g->offset;
	int n = config_setting_length(gs);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(gs, (unsigned)i);
		const char *name = config_setting_name(s);
		const struct conf_key *k;
		char what[64];
		int r;

		snprintf(what, sizeof(what), "%s.%s", g->name, name ? name : "?");
		k = name ? key_find(g, name) : NULL;
		if (!k) {
			return unknown(ld, s, g, what);
		}
		r = parse_key(ld, k, s, base, what);
		if (r < 0) {
			return r;
		}
	}
	return 0;
}

static int parse_root(struct loader *ld, const config_setting_t *root, struct config *cfg)
{
	struct conf_group g[CONFIG_GROUPS];
	size_t n_groups = config_groups(g);
	int n = config_setting_length(root);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
		const char *name = config_setting_name(s);
		const struct conf_group *grp = NULL;
		const struct conf_key *k;
		int r;

		if (!name) {
			return fail_at(ld, s, "", "a setting without a name");
		}
		for (size_t j = 1; j < n_groups; j++) {
			if (streq(g[j].name, name)) {
				grp = &g[j];
			}
		}
		if (grp) {
			if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
				return fail_at(ld, s, name, "expected a group: %s: { ... };", name);
			}
			r = parse_group(ld, grp, s, cfg);
		} else if ((k = key_find(&g[0], name))) {
			r = parse_key(ld, k, s, &cfg->daemon, name);
		} else if (config_setting_type(s) == CONFIG_TYPE_GROUP) {
			return fail_at(ld, s, name,
				       "unknown group; the groups are bms, inverter, safety, metrics and mqtt");
		} else {
			r = unknown(ld, s, &g[0], name);
		}
		if (r < 0) {
			return r;
		}
	}
	return 0;
}

/* "a, b, c" of the BMS drivers or inverter protocols, for error messages */
static void driver_names(char *buf, size_t n, bool can_only)
{
	const struct bms_driver *d;
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; (d = bms_driver_get(i)) && len < n; i++) {
		if (can_only && d->transport != BMS_TRANSPORT_CAN) {
			continue;
		}
		len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", d->name);
	}
}

static void protocol_names(char *buf, size_t n)
{
	const struct inverter_protocol *p;
	const struct protocol_alias *a;
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; (p = protocol_get(i)) && len < n; i++) {
		len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", p->name);
	}
	for (size_t i = 0; (a = protocol_alias_get(i)) && len < n; i++) {
		len += (size_t)snprintf(buf + len, n - len, ", %s", a->name);
	}
}

/* the first of @paths (NULL-terminated) set in the file, else @fallback's group */
static const config_setting_t *first_set(config_t *lc, const char *const *paths,
					 const char *fallback, const char **ret_what)
{
	for (size_t i = 0; paths[i]; i++) {
		const config_setting_t *s = config_lookup(lc, paths[i]);

		if (s) {
			*ret_what = paths[i];
			return s;
		}
	}
	*ret_what = paths[0];
	return config_lookup(lc, fallback);
}

/*
 * The BMS and the inverter need a port each, also when one is named
 * through a link (/dev/serial/by-id/...): both are resolved and compared.
 * A port that does not exist yet (an adapter plugged in later) is
 * compared by name only.
 */
static int check_ports_distinct(struct loader *ld, config_t *lc, const struct config *cfg)
{
	char a[PATH_MAX], b[PATH_MAX];
	const config_setting_t *s = config_lookup(lc, "inverter.port");

	if (streq(cfg->inverter.port, cfg->bms.port)) {
		return fail_at(ld, s, "inverter.port",
			       "\"%s\" is also the BMS port; the BMS and the inverter need a port "
			       "each",
			       cfg->inverter.port);
	}
	if (cfg->bms.port[0] == '/' && cfg->inverter.port[0] == '/' &&
	    realpath(cfg->bms.port, a) && realpath(cfg->inverter.port, b) && streq(a, b)) {
		return fail_at(ld, s, "inverter.port",
			       "the same device as bms.port (both are %s); the BMS and the "
			       "inverter need a port each",
			       a);
	}
	return 0;
}

static const char *bms_transport_name(enum bms_transport t)
{
	switch (t) {
	case BMS_TRANSPORT_CAN:
		return "a CAN";
	case BMS_TRANSPORT_SERIAL:
		return "a serial";
	case BMS_TRANSPORT_SIM:
		return "a simulated";
	case BMS_TRANSPORT_FILE:
		return "a replayed";
	}
	return "an unknown";
}

/*
 * A serial speed only where there is a serial line, a bit rate only on
 * CAN, and on CAN only the rate the protocol is specified at: every
 * driver and protocol here names one (struct bms_driver.bitrate,
 * struct inverter_protocol.bitrate, 500 kbit/s from each protocol's
 * document), and a bus at another rate carries no frame at all.
 */
static int check_rates(struct loader *ld, config_t *lc, const struct config *cfg,
		       const struct bms_driver *drv, const struct inverter_protocol *proto)
{
	const config_setting_t *s;

	s = config_lookup(lc, "bms.baud");
	if (cfg->bms.baud && drv->transport != BMS_TRANSPORT_SERIAL) {
		return fail_at(ld, s, "bms.baud",
			       "%s is %s BMS: baud is for a serial BMS; remove this setting",
			       drv->name, bms_transport_name(drv->transport));
	}
	s = config_lookup(lc, "bms.bitrate");
	if (cfg->bms.bitrate && drv->transport != BMS_TRANSPORT_CAN) {
		return fail_at(ld, s, "bms.bitrate",
			       "%s is %s BMS: bitrate is for a CAN BMS; remove this setting",
			       drv->name, bms_transport_name(drv->transport));
	}
	if (cfg->bms.bitrate && drv->bitrate && cfg->bms.bitrate != drv->bitrate) {
		return fail_at(ld, s, "bms.bitrate",
			       "%s runs at %u bit/s; set bitrate = 0 (the driver's) or %u",
			       drv->name, drv->bitrate, drv->bitrate);
	}
	s = config_lookup(lc, "inverter.baud");
	if (cfg->inverter.baud && proto->transport == PROTOCOL_TRANSPORT_CAN) {
		return fail_at(ld, s, "inverter.baud",
			       "%s is a CAN protocol: baud is for RS485; remove this setting",
			       proto->name);
	}
	s = config_lookup(lc, "inverter.bitrate");
	if (cfg->inverter.bitrate && proto->transport == PROTOCOL_TRANSPORT_RS485) {
		return fail_at(ld, s, "inverter.bitrate",
			       "%s is polled over a serial line: bitrate is for CAN; use baud",
			       proto->name);
	}
	if (cfg->inverter.bitrate && proto->bitrate && cfg->inverter.bitrate != proto->bitrate) {
		return fail_at(ld, s, "inverter.bitrate",
			       "%s runs at %u bit/s; set bitrate = 0 (the protocol's) or %u",
			       proto->name, proto->bitrate, proto->bitrate);
	}
	return 0;
}

/*
 * Protocol options that only some encoders (protocols/) read: set on
 * another protocol they would do nothing, silently. Kept in step with the
 * encoders: pylontech_rs485.c reads rs485_address, the Pylontech family
 * layout with .soc_follows (deye.c) reads soc_follows_limits, and only
 * pylontech.c's layout has .dvl = false (deye, luxpower and victron
 * always send the DVL; growatt has no field for it).
 */
static int check_quirks(struct loader *ld, config_t *lc, const struct config *cfg,
			const struct inverter_protocol *proto)
{
	static const struct {
		const char *key;
		const char *only;
	} quirks[] = {
		{ "rs485_address", "pylontech-rs485" },
		{ "soc_follows_limits", "deye" },
		{ "send_dvl", "pylontech" },
	};
	const struct protocol_options *o = &cfg->inverter.options;
	bool set[] = { o->rs485_address != 1, o->soc_follows_limits, o->send_dvl };

	for (size_t i = 0; i < ARRAY_SIZE(quirks); i++) {
		char what[64];

		if (!set[i] || streq(proto->name, quirks[i].only)) {
			continue;
		}
		snprintf(what, sizeof(what), "inverter.%s", quirks[i].key);
		return fail_at(ld, config_lookup(lc, what), what,
			       "only %s uses it; %s ignores it: remove this setting",
			       quirks[i].only, proto->name);
	}
	return 0;
}

/*
 * Every pack of a polled (Modbus) BMS is read once a round. A round that
 * is not shorter than the stale timeout lets each pack go stale before it
 * is read again: the limits flap NORMAL/ZERO every round ("BMS silent for
 * 0.0 s"). A round is the poll interval, or longer when the packs' worst
 * case (each answer timing out, plus the gap) does not fit in it.
 */
static int check_poll_round(struct loader *ld, config_t *lc, const struct config *cfg)
{
	static const char *const poll[] = { "bms.poll_interval_ms", "safety.stale_timeout_ms",
					    NULL };
	static const char *const round[] = { "bms.addresses", "bms.response_timeout_ms",
					     "bms.request_gap_ms", "safety.stale_timeout_ms",
					     NULL };
	const struct bms_config *b = &cfg->bms;
	uint64_t stale_ms = cfg->safety.stale_timeout_usec / USEC_PER_MSEC;
	uint64_t timeout_ms = b->response_timeout_usec / USEC_PER_MSEC;
	uint64_t gap_ms = b->request_gap_usec / USEC_PER_MSEC;
	uint64_t round_ms = b->n_addresses * (timeout_ms + gap_ms);
	const config_setting_t *s;
	const char *what;

	if (b->poll_interval_usec >= cfg->safety.stale_timeout_usec) {
		s = first_set(lc, poll, "bms", &what);
		if (streq(what, "safety.stale_timeout_ms")) {
			return fail_at(ld, s, what,
				       "%" PRIu64 " ms is not above bms.poll_interval_ms (%" PRIu64
				       " ms): packs go stale between reads and the limits flap; "
				       "raise it or poll more often",
				       stale_ms, b->poll_interval_usec / USEC_PER_MSEC);
		}
		return fail_at(ld, s, what,
			       "%" PRIu64 " ms is not below safety.stale_timeout_ms (%" PRIu64
			       " ms): packs go stale between reads and the limits flap; poll "
			       "more often or raise stale_timeout_ms",
			       b->poll_interval_usec / USEC_PER_MSEC, stale_ms);
	}
	if (round_ms >= stale_ms) {
		s = first_set(lc, round, "bms", &what);
		return fail_at(ld, s, what,
			       "%u packs x (%" PRIu64 " ms + %" PRIu64 " ms) = %" PRIu64
			       " ms a round, not below safety.stale_timeout_ms (%" PRIu64
			       " ms): fewer packs, shorter timeouts or a longer stale timeout",
			       b->n_addresses, timeout_ms, gap_ms, round_ms, stale_ms);
	}
	return 0;
}

/*
 * Pack addresses in the driver's range: JK-PB's DIP switch 1-15 (0 is a
 * master that broadcasts, never polled), the polled families their
 * bms_serial_ops range (cited in each protocols/ file); a family with no
 * addressing (JBD: one BMS per port) takes one address. A CAN driver with
 * addresses (daly-can: board numbers) its can_address range; a CAN driver
 * without (pylontech-can: one BMS speaks for the bank) refuses the key,
 * which it would ignore. No address twice.
 */
static int check_addresses(struct loader *ld, config_t *lc, struct config *cfg,
			   const struct bms_driver *drv)
{
	const config_setting_t *s = config_lookup(lc, "bms.addresses");
	struct bms_config *b = &cfg->bms;
	unsigned lo = 1, hi = 15;

	if (drv->serial) {
		lo = drv->serial->address_min;
		hi = drv->serial->address_max;
		/* not given: one pack at the family's first address */
		if (!s) {
			b->addresses[0] = drv->serial->address_min;
			b->n_addresses = 1;
			return 0;
		}
	} else if (drv->transport == BMS_TRANSPORT_CAN) {
		if (!drv->can_address_max) {
			if (s) {
				return fail_at(ld, s, "bms.addresses",
					       "%s reads one BMS per port, which speaks for the "
					       "bank: remove this setting",
					       drv->name);
			}
			return 0;
		}
		lo = drv->can_address_min;
		hi = drv->can_address_max;
		if (!s) {
			b->addresses[0] = drv->can_address_min;
			b->n_addresses = 1;
			return 0;
		}
	}
	if (lo == hi && b->n_addresses > 1) {
		return fail_at(ld, s, "bms.addresses",
			       "%s has no addressing (one BMS per port): give one address, %u, "
			       "and a port per BMS",
			       drv->name, lo);
	}
	for (unsigned i = 0; i < b->n_addresses; i++) {
		if (b->addresses[i] < lo || b->addresses[i] > hi) {
			return fail_at(ld, s, "bms.addresses",
				       "address %u out of range for %s: %u-%u", b->addresses[i],
				       drv->name, lo, hi);
		}
		for (unsigned j = 0; j < i; j++) {
			if (b->addresses[j] == b->addresses[i]) {
				return fail_at(ld, s, "bms.addresses", "address %u given twice",
					       b->addresses[i]);
			}
		}
	}
	return 0;
}

/* mqtt { }: its own checks (src/mqtt_config.c), at the line of the key to change */
static int check_mqtt(struct loader *ld, config_t *lc, const struct config *cfg)
{
	const config_setting_t *s;
	const char *key = "";
	char what[64];
	char why[160];

	if (mqtt_config_check(&cfg->mqtt, &key, why, sizeof(why)) >= 0) {
		return 0;
	}
	snprintf(what, sizeof(what), "mqtt.%s", key);
	s = config_lookup(lc, what);
	return fail_at(ld, s ? s : config_lookup(lc, "mqtt"), what, "%s", why);
}

/* checks across keys; errors point at the setting that has to change */
/*
 * Over 80 lines: one check after another, in the order bmsbridge.conf(5) lists them; each
 * is a few lines and reads best in that list.
 */
static int cross_check(struct loader *ld, config_t *lc, struct config *cfg)
{
	const config_setting_t *s;
	const struct bms_driver *drv;
	const struct inverter_protocol *proto;
	char names[256];
	char why[160];
	int r;

	driver_names(names, sizeof(names), false);
	s = config_lookup(lc, "bms.driver");
	if (!s) {
		return fail_at(ld, config_lookup(lc, "bms"), "bms.driver",
			       "missing: say which BMS to read (%s)", names);
	}
	drv = bms_driver_find(cfg->bms.driver);
	if (!drv) {
		return fail_at(ld, s, "bms.driver", "unknown BMS driver \"%s\"; known: %s",
			       cfg->bms.driver, names);
	}
	if (drv->transport != BMS_TRANSPORT_SIM && !cfg->bms.port[0]) {
		return fail_at(ld, config_lookup(lc, "bms"), "bms.port",
			       "missing: %s reads %s", drv->name,
			       drv->transport == BMS_TRANSPORT_CAN ? "a CAN interface (port = \"can0\";)"
			       : drv->transport == BMS_TRANSPORT_SERIAL
				       ? "a serial port (port = \"/dev/ttyUSB0\";)"
				       : "a candump log file (port = \"capture.log\";)");
	}
	if (drv->transport == BMS_TRANSPORT_FILE) {
		const struct bms_driver *fmt = bms_driver_find(cfg->bms.replay_format);

		if (!fmt || fmt->transport != BMS_TRANSPORT_CAN) {
			driver_names(names, sizeof(names), true);
			return fail_at(ld, config_lookup(lc, "bms.replay_format"),
				       "bms.replay_format",
				       "\"%s\" is not a CAN BMS format; known: %s",
				       cfg->bms.replay_format, names);
		}
	}
	protocol_names(names, sizeof(names));
	s = config_lookup(lc, "inverter.protocol");
	if (!s) {
		return fail_at(ld, config_lookup(lc, "inverter"), "inverter.protocol",
			       "missing: say which battery the inverter should see (%s)", names);
	}
	proto = protocol_find(cfg->inverter.protocol);
	if (!proto) {
		return fail_at(ld, s, "inverter.protocol", "unknown protocol \"%s\"; known: %s",
			       cfg->inverter.protocol, names);
	}
	s = config_lookup(lc, "inverter.output");
	if (!s) {
		/* the protocol's own transport */
		cfg->inverter.output = proto->transport == PROTOCOL_TRANSPORT_RS485
					       ? OUTPUT_KIND_RS485
					       : OUTPUT_KIND_CAN;
	} else if (proto->transport == PROTOCOL_TRANSPORT_RS485 &&
		   cfg->inverter.output != OUTPUT_KIND_RS485) {
		return fail_at(ld, s, "inverter.output",
			       "%s is polled by the inverter over a serial line: use output = "
			       "\"rs485\"",
			       proto->name);
	} else if (proto->transport == PROTOCOL_TRANSPORT_CAN &&
		   cfg->inverter.output == OUTPUT_KIND_RS485) {
		return fail_at(ld, s, "inverter.output",
			       "%s is a CAN protocol: use output = \"can\" (or \"candump\")",
			       proto->name);
	}
	if (!cfg->inverter.port[0]) {
		if (cfg->inverter.output != OUTPUT_KIND_CANDUMP) {
			return fail_at(ld, config_lookup(lc, "inverter"), "inverter.port",
				       "missing: name the %s",
				       cfg->inverter.output == OUTPUT_KIND_CAN
					       ? "CAN interface (port = \"can0\";)"
					       : "serial port (port = \"/dev/ttyUSB0\";)");
		}
		snprintf(cfg->inverter.port, sizeof(cfg->inverter.port), "-");
	}
	if (cfg->inverter.output != OUTPUT_KIND_CANDUMP && drv->transport != BMS_TRANSPORT_SIM &&
	    drv->transport != BMS_TRANSPORT_FILE) {
		r = check_ports_distinct(ld, lc, cfg);
		if (r < 0) {
			return r;
		}
	}
	r = check_rates(ld, lc, cfg, drv, proto);
	if (r < 0) {
		return r;
	}
	r = check_quirks(ld, lc, cfg, proto);
	if (r < 0) {
		return r;
	}
	r = check_addresses(ld, lc, cfg, drv);
	if (r < 0) {
		return r;
	}
	if (drv->transport == BMS_TRANSPORT_SERIAL) {
		r = check_poll_round(ld, lc, cfg);
		if (r < 0) {
			return r;
		}
	}
	r = check_mqtt(ld, lc, cfg);
	if (r < 0) {
		return r;
	}
	if (safety_config_check(&cfg->safety, why, sizeof(why)) < 0) {
		return fail_at(ld, config_lookup(lc, "safety"), "safety", "%s", why);
	}
	/* DVL below CVL: the caps, and the sim pack's own voltages (bmsbridge-safety(7)) */
	if (cfg->safety.min_discharge_voltage_mv >= cfg->safety.max_charge_voltage_mv) {
		s = config_lookup(lc, "safety.max_charge_voltage_mv");
		return fail_at(ld, s ? s : config_lookup(lc, "safety"),
			       "safety.max_charge_voltage_mv",
			       "%u mV is not above min_discharge_voltage_mv (%u mV): the inverter "
			       "would be told DVL >= CVL",
			       cfg->safety.max_charge_voltage_mv,
			       cfg->safety.min_discharge_voltage_mv);
	} else if (drv->transport == BMS_TRANSPORT_SIM &&
		   ((uint32_t)cfg->bms.sim_cells * cfg->safety.cell_max_mv <=
			    cfg->safety.min_discharge_voltage_mv ||
		    (uint32_t)cfg->bms.sim_cells * cfg->safety.cell_empty_mv >=
			    cfg->safety.max_charge_voltage_mv)) {
		s = config_lookup(lc, "bms.sim_cells");
		return fail_at(ld, s ? s : config_lookup(lc, "bms"), "bms.sim_cells",
			       "a %u-cell pack (%u-%u mV) does not fit min_discharge_voltage_mv "
			       "%u mV and max_charge_voltage_mv %u mV: the inverter would be told "
			       "DVL >= CVL",
			       cfg->bms.sim_cells,
			       (unsigned)cfg->bms.sim_cells * cfg->safety.cell_empty_mv,
			       (unsigned)cfg->bms.sim_cells * cfg->safety.cell_max_mv,
			       cfg->safety.min_discharge_voltage_mv,
			       cfg->safety.max_charge_voltage_mv);
	}
	return 0;
}

static void config_defaults(struct config *cfg)
{
	struct conf_group g[CONFIG_GROUPS];
	size_t n = config_groups(g);

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < g[i].n_keys; j++) {
			key_default(&g[i].keys[j], (char *)cfg + g[i].offset);
		}
	}
}

/*
 * metrics.textfile: an absolute path to a *.prom file (node_exporter's
 * textfile collector reads only those), whose directory we write the
 * temporary file into; metrics.listen: a numeric address and port.
 */
static int check_metrics(struct loader *ld, config_t *lc, const struct config *cfg)
{
	const char *t = cfg->metrics.textfile;
	size_t n = strlen(t);
	struct sockaddr_storage ss;
	socklen_t len;

	if (cfg->metrics.listen[0] && metrics_parse_listen(cfg->metrics.listen, &ss, &len) < 0) {
		return fail_at(ld, config_lookup(lc, "metrics.listen"), "metrics.listen",
			       "\"%s\": expected a numeric address and a port, "
			       "\"127.0.0.1:9585\" or \"[::1]:9585\"",
			       cfg->metrics.listen);
	}
	if (n == 0) {
		return 0;
	}
	if (t[0] != '/' || t[n - 1] == '/') {
		return fail_at(ld, config_lookup(lc, "metrics.textfile"), "metrics.textfile",
			       "\"%s\": an absolute path to a file is needed", t);
	}
	if (n < 6 || !streq(t + n - 5, ".prom")) {
		return fail_at(ld, config_lookup(lc, "metrics.textfile"), "metrics.textfile",
			       "\"%s\" does not end in .prom; node_exporter's textfile collector "
			       "reads only *.prom files",
			       t);
	}
	return 0;
}

/* steps 3 and 4 on a parsed tree; @cfg is the scratch copy */
static int config_build(struct loader *ld, config_t *lc, struct config *cfg)
{
	int r;

	r = parse_root(ld, config_root_setting(lc), cfg);
	if (r < 0) {
		return r;
	}
	r = cross_check(ld, lc, cfg);
	if (r < 0) {
		return r;
	}
	return check_metrics(ld, lc, cfg);
}

static int syntax_error(struct loader *ld, const config_t *lc)
{
	const char *text = config_error_text(lc);

	if (!text) {
		text = "unreadable";
	}
	if (streq(text, "syntax error")) {
		/* libconfig says no more: point at the usual suspects */
		return fail(ld, config_error_file(lc), config_error_line(lc), "",
			    "syntax error (check the ';', '=', braces and quotes here and on the line "
			    "before)");
	}
	return fail(ld, config_error_file(lc), config_error_line(lc), "", "%s", text);
}

/* the line of @p in @text, 1-based */
static int line_of(const char *text, const char *p)
{
	int line = 1;

	for (; text < p; text++) {
		line += *text == '\n';
	}
	return line;
}

static bool is_name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '*';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_utf16(const char *p, size_t n)
{
	return n >= 2 && (memcmp(p, "\xff\xfe", 2) == 0 || memcmp(p, "\xfe\xff", 2) == 0);
}

static int fail_utf16(struct loader *ld)
{
	return fail(ld, NULL, 1, "",
		    "the file is UTF-16 (it starts with a byte order mark): save it as UTF-8 or "
		    "plain ASCII");
}

/*
 * Step 0 on text: the copy libconfig gets, in *@ret (free() it).
 *
 * libconfig 1.5 reads a decimal integer with atoi() and a hex one with
 * strtoul() into an int, so 4294967346 becomes 50 and 0xFFFFFFFF becomes
 * -1 without a word; only a literal with the L suffix is read as 64 bits.
 * So every integer literal outside int32 (and inside int64) gets an L
 * here and reaches the range checks with its real value; one outside
 * int64 is an error at its line. Strings, comments and names (which may
 * hold digits) are copied untouched; lines stay where they were.
 */
/*
 * Over 80 lines: one pass over the text (BOM, UTF-16, NUL, @include, wide literals) that
 * must see every byte once, in order.
 */
static int prepare(struct loader *ld, const char *text, char **ret)
{
	size_t n = strlen(text);
	const char *p = text;
	char *out, *o;

	/* Windows Notepad and some editors start a UTF-8 file with EF BB BF */
	if (strncmp(p, "\xef\xbb\xbf", 3) == 0) {
		p += 3;
	} else if (is_utf16(p, n)) {
		return fail_utf16(ld);
	}
	/* one L per literal of at least 10 digits: n + n / 10 is enough */
	out = malloc(n + n / 10 + 2);
	if (!out) {
		return fail(ld, NULL, 0, "", "out of memory");
	}
	o = out;
	while (*p) {
		const char *tok = p;

		if (*p == '"') {
			/* a string, with backslash escapes; an unterminated one is libconfig's */
			*o++ = *p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1]) {
					*o++ = *p++;
				}
				*o++ = *p++;
			}
			if (*p) {
				*o++ = *p++;
			}
		} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			while (*p && *p != '\n') {
				*o++ = *p++;
			}
		} else if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			size_t len = e ? (size_t)(e + 2 - p) : strlen(p);

			memcpy(o, p, len);
			o += len;
			p += len;
		} else if (*p == '@') {
			free(out);
			return fail(ld, NULL, line_of(text, tok), "",
				    "@include and other @ directives are not supported: keep the "
				    "whole configuration in this one file");
		} else if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '*') {
			while (is_name_char(*p)) {
				*o++ = *p++;
			}
		} else if (*p == '.' && is_digit(p[1])) {
			/* a float without integer part: .5e3 */
			do {
				*o++ = *p++;
			} while (is_digit(*p) || *p == 'e' || *p == 'E' ||
				 ((*p == '-' || *p == '+') && (p[-1] == 'e' || p[-1] == 'E')));
		} else if (is_digit(*p)) {
			bool neg = o > out && o[-1] == '-';
			bool hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && hex_value(p[2]) >= 0;
			uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX;
			bool over = false;
			uint64_t v = 0;
			const char *d = hex ? p + 2 : p;

			if (!hex && (p[1] == '.' || is_digit(p[1]) || p[1] == 'e' || p[1] == 'E')) {
				/* a float? look past the digits */
				const char *q = p;

				while (is_digit(*q)) {
					q++;
				}
				if (*q == '.' || *q == 'e' || *q == 'E') {
					while (is_digit(*p) || *p == '.' || *p == 'e' || *p == 'E' ||
					       ((*p == '-' || *p == '+') &&
						(p[-1] == 'e' || p[-1] == 'E'))) {
						*o++ = *p++;
					}
					continue;
				}
			}
			for (; hex ? hex_value(*d) >= 0 : is_digit(*d); d++) {
				unsigned digit = (unsigned)(hex ? hex_value(*d) : *d - '0');
				unsigned base = hex ? 16 : 10;

				if (v > (limit - digit) / base) {
					over = true;
				} else {
					v = v * base + digit;
				}
			}
			if (over) {
				char shown[48];

				snprintf(shown, sizeof(shown), "%.*s%s", (int)MIN(d - p, 30), p,
					 d - p > 30 ? "..." : "");
				free(out);
				return fail(ld, NULL, line_of(text, tok), "",
					    "the integer %s%s is too large (the most any setting "
					    "takes is far below 2^63)",
					    neg ? "-" : "", shown);
			}
			memcpy(o, p, (size_t)(d - p));
			o += d - p;
			p = d;
			/* INT32_MIN is 2^31 in magnitude */
			if (*p != 'L' && v > (neg ? (uint64_t)INT32_MAX + 1 : (uint64_t)INT32_MAX)) {
				*o++ = 'L';
			}
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	*ret = out;
	return 0;
}

/*
 * Steps 1-4 on one source, @text (a file's content or a string). The
 * caller's @ret is written only when all of it passed.
 */
static int load(struct loader *ld, const char *text, struct config *ret)
{
	_cleanup_free_ char *prepared = NULL;
	struct config *cfg;
	config_t lc;
	int r;

	r = prepare(ld, text, &prepared);
	if (r < 0) {
		return r;
	}
	cfg = malloc(sizeof(*cfg));
	if (!cfg) {
		return fail(ld, NULL, 0, "", "out of memory");
	}
	config_defaults(cfg);
	snprintf(cfg->path, sizeof(cfg->path), "%s", ld->name);
	config_init(&lc);
	/* error messages name the source as the caller does */
	if (config_read_string(&lc, prepared) != CONFIG_TRUE) {
		r = syntax_error(ld, &lc);
	} else {
		r = config_build(ld, &lc, cfg);
	}
	config_destroy(&lc);
	if (r >= 0) {
		*ret = *cfg;
	}
	free(cfg);
	return r;
}

int config_load_string(const char *name, const char *text, struct config *ret,
		       struct config_error *ret_err)
{
	struct loader ld = { .name = name, .err = ret_err };

	return load(&ld, text, ret);
}

static const char *file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFIFO:
		return "a FIFO";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFSOCK:
		return "a socket";
	default:
		return "not a plain file";
	}
}

/*
 * Read @path into memory without ever blocking: O_NONBLOCK makes opening
 * a FIFO or a tty return at once (a blocking fopen() would stop the event
 * loop inside the SIGHUP handler, SIGTERM unread), and only a regular file
 * of at most CONFIG_FILE_MAX bytes is read (libconfig's scanner exit()s
 * on a directory).
 */
static int read_file(struct loader *ld, const char *path, char **ret)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ char *buf = NULL;
	const char *nul;
	struct stat st;
	size_t len = 0;
	int r;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		fail(ld, NULL, 0, "", "cannot read: %s", strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		fail(ld, NULL, 0, "", "cannot read: %s", strerror(-r));
		return r;
	}
	if (S_ISDIR(st.st_mode)) {
		return fail(ld, NULL, 0, "", "is a directory: name the configuration file itself");
	}
	if (!S_ISREG(st.st_mode)) {
		return fail(ld, NULL, 0, "",
			    "not a regular file (%s): name the configuration file itself",
			    file_kind(st.st_mode));
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		return fail(ld, NULL, 0, "", "larger than 1 MiB (%jd bytes): not a configuration",
			    (intmax_t)st.st_size);
	}
	/* one byte more than allowed, to see a file that grew meanwhile */
	buf = malloc(CONFIG_FILE_MAX + 2);
	if (!buf) {
		return fail(ld, NULL, 0, "", "out of memory");
	}
	while (len <= CONFIG_FILE_MAX) {
		ssize_t n = read(fd, buf + len, CONFIG_FILE_MAX + 1 - len);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			r = -errno;
			fail(ld, NULL, 0, "", "cannot read: %s", strerror(-r));
			return r;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
	}
	if (len > CONFIG_FILE_MAX) {
		return fail(ld, NULL, 0, "", "larger than 1 MiB: not a configuration");
	}
	buf[len] = '\0';
	if (is_utf16(buf, len)) {
		return fail_utf16(ld);
	}
	/* libconfig would stop reading at a NUL and take the rest as missing */
	nul = memchr(buf, '\0', len);
	if (nul) {
		return fail(ld, NULL, line_of(buf, nul), "",
			    "a NUL byte: this is not a text file");
	}
	*ret = buf;
	buf = NULL;
	return 0;
}

int config_load(const char *path, struct config *ret, struct config_error *ret_err)
{
	struct loader ld = { .name = path, .err = ret_err };
	_cleanup_free_ char *text = NULL;
	int r;

	if (strlen(path) >= CONFIG_PATH_MAX) {
		return fail(&ld, NULL, 0, "", "path longer than %d characters",
			    CONFIG_PATH_MAX - 1);
	}
	r = read_file(&ld, path, &text);
	if (r < 0) {
		return r;
	}
	return load(&ld, text, ret);
}

void config_error_format(const struct config_error *err, char *buf, size_t n)
{
	char where[CONFIG_PATH_MAX + 16];

	if (err->line > 0) {
		snprintf(where, sizeof(where), "%s:%d", err->file, err->line);
	} else {
		snprintf(where, sizeof(where), "%s", err->file);
	}
	if (err->setting[0]) {
		snprintf(buf, n, "%s: %s: %s", where, err->setting, err->text);
	} else {
		snprintf(buf, n, "%s: %s", where, err->text);
	}
}

/* print a string so that libconfig reads it back */
static void print_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\') {
			fputc('\\', f);
		}
		fputc(*s, f);
	}
	fputc('"', f);
}

static void print_key(FILE *f, const struct conf_key *k, const void *base, const char *indent)
{
	const void *p = (const char *)base + k->offset;

	fprintf(f, "%s%s = ", indent, k->name);
	switch (k->type) {
	case CONF_BOOL:
		fputs(*(const bool *)p ? "true" : "false", f);
		break;
	case CONF_UINT:
	case CONF_INT:
		fprintf(f, "%" PRId64, load_int(k, base));
		break;
	case CONF_STRING:
		print_string(f, p);
		break;
	case CONF_ENUM:
		print_string(f, k->enum_names[*(const int *)p]);
		break;
	case CONF_UINT_LIST: {
		uint8_t n = *((const uint8_t *)base + k->count_offset);

		fputc('[', f);
		for (uint8_t i = 0; i < n; i++) {
			fprintf(f, "%s%u", i ? ", " : "", ((const uint8_t *)p)[i]);
		}
		fputc(']', f);
		break;
	}
	}
	fputc(';', f);
	if (k->unit) {
		fprintf(f, "\t# %s", k->unit);
	}
	fputc('\n', f);
}

void config_print(const struct config *cfg, FILE *f)
{
	struct conf_group g[CONFIG_GROUPS];
	size_t n = config_groups(g);
	const struct inverter_protocol *proto = protocol_find(cfg->inverter.protocol);

	fprintf(f, "# effective settings of %s\n", cfg->path);
	if (proto && !streq(proto->name, cfg->inverter.protocol)) {
		fprintf(f, "# protocol \"%s\" is an alias of \"%s\"\n", cfg->inverter.protocol,
			proto->name);
	}
	if (cfg->safety.comm_loss == SAFETY_COMM_LOSS_AUTO && proto) {
		fprintf(f, "# comm_loss \"auto\" is \"%s\" for %s\n",
			safety_comm_loss_name(safety_profile_comm_loss(proto->name)), proto->name);
	}
	for (size_t i = 0; i < n; i++) {
		const void *base = (const char *)cfg + g[i].offset;
		const char *indent = g[i].name[0] ? "\t" : "";

		if (g[i].name[0]) {
			fprintf(f, "%s: {\n", g[i].name);
		}
		for (size_t j = 0; j < g[i].n_keys; j++) {
			print_key(f, &g[i].keys[j], base, indent);
		}
		if (g[i].name[0]) {
			fputs("};\n", f);
		}
	}
}
