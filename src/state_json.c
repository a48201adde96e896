/* SPDX-License-Identifier: MIT */
/*
 * battery_state <-> JSON. Writing walks the groups in a fixed order, so
 * the output is stable and diffable. Reading is strict, as for any outside
 * input: every key must be known, every number an integer inside its
 * field's range, and the first problem is reported with its path.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "battery.h"
#include "macro.h"
#include "state_json.h"

static void add_int(struct json_object *o, const char *key, int64_t v)
{
	json_object_object_add(o, key, json_object_new_int64(v));
}

static struct json_object *bits_to_json(uint32_t bits, const char *(*name)(uint32_t))
{
	struct json_object *a = json_object_new_array();

	for (unsigned i = 0; i < 32; i++) {
		const char *n = (bits & (1u << i)) ? name(1u << i) : NULL;

		if (n) {
			json_object_array_add(a, json_object_new_string(n));
		}
	}
	return a;
}

/* an index field: null when unknown */
static struct json_object *index_json(uint8_t idx)
{
	return idx == BATTERY_INDEX_NONE ? NULL : json_object_new_int(idx);
}

/* Over 80 lines: one JSON key per struct field, in struct order. */
struct json_object *battery_pack_to_json(const struct battery_pack *p)
{
	struct json_object *o = json_object_new_object(), *g, *a;

	if (!o) {
		return NULL;
	}
	g = NULL;
	if (battery_pack_has(p, BATTERY_GROUP_ELECTRICAL)) {
		g = json_object_new_object();
		add_int(g, "voltage_mv", p->voltage_mv);
		add_int(g, "current_ma", p->current_ma);
	}
	json_object_object_add(o, "electrical", g);

	g = NULL;
	if (battery_pack_has(p, BATTERY_GROUP_CAPACITY)) {
		g = json_object_new_object();
		add_int(g, "soc_pct", p->soc_pct);
		add_int(g, "soh_pct", p->soh_pct);
		add_int(g, "remaining_mah", p->remaining_mah);
		add_int(g, "full_mah", p->full_mah);
		add_int(g, "cycles", p->cycles);
	}
	json_object_object_add(o, "capacity", g);

	g = NULL;
	if (battery_pack_has(p, BATTERY_GROUP_CELLS)) {
		g = json_object_new_object();
		a = json_object_new_array();
		for (unsigned i = 0; i < p->cell_count && i < BATTERY_CELLS_MAX; i++) {
			json_object_array_add(a, json_object_new_int(p->cell_mv[i]));
		}
		json_object_object_add(g, "cell_mv", a);
		add_int(g, "cell_min_mv", p->cell_min_mv);
		add_int(g, "cell_max_mv", p->cell_max_mv);
		json_object_object_add(g, "cell_min_idx", p->cell_min_idx == BATTERY_INDEX_NONE
								  ? NULL
								  : json_object_new_int(p->cell_min_idx));
		json_object_object_add(g, "cell_max_idx", p->cell_max_idx == BATTERY_INDEX_NONE
								  ? NULL
								  : json_object_new_int(p->cell_max_idx));
		/* the bank: which pack holds the extreme */
		json_object_object_add(g, "cell_min_pack", index_json(p->cell_min_pack));
		json_object_object_add(g, "cell_max_pack", index_json(p->cell_max_pack));
	}
	json_object_object_add(o, "cells", g);

	g = NULL;
	if (battery_pack_has(p, BATTERY_GROUP_TEMPS)) {
		g = json_object_new_object();
		a = json_object_new_array();
		for (unsigned i = 0; i < p->temp_count && i < BATTERY_TEMPS_MAX; i++) {
			json_object_array_add(a, json_object_new_int(p->temp_dc[i]));
		}
		json_object_object_add(g, "temp_dc", a);
		add_int(g, "temp_min_dc", p->temp_min_dc);
		add_int(g, "temp_max_dc", p->temp_max_dc);
		json_object_object_add(g, "temp_min_idx", p->temp_min_idx == BATTERY_INDEX_NONE
								  ? NULL
								  : json_object_new_int(p->temp_min_idx));
		json_object_object_add(g, "temp_max_idx", p->temp_max_idx == BATTERY_INDEX_NONE
								  ? NULL
								  : json_object_new_int(p->temp_max_idx));
		json_object_object_add(g, "temp_min_pack", index_json(p->temp_min_pack));
		json_object_object_add(g, "temp_max_pack", index_json(p->temp_max_pack));
		json_object_object_add(g, "mosfet_temp_dc", p->mosfet_temp_dc == BATTERY_TEMP_NONE
								    ? NULL
								    : json_object_new_int(p->mosfet_temp_dc));
	}
	json_object_object_add(o, "temps", g);

	g = NULL;
	if (battery_pack_has(p, BATTERY_GROUP_LIMITS)) {
		g = json_object_new_object();
		add_int(g, "charge_voltage_limit_mv", p->charge_voltage_limit_mv);
		add_int(g, "discharge_voltage_limit_mv", p->discharge_voltage_limit_mv);
		add_int(g, "charge_current_limit_ma", p->charge_current_limit_ma);
		add_int(g, "discharge_current_limit_ma", p->discharge_current_limit_ma);
	}
	json_object_object_add(o, "limits", g);

	g = NULL;
	if (battery_pack_has(p, BATTERY_GROUP_STATUS)) {
		g = json_object_new_object();
		json_object_object_add(g, "alarms", bits_to_json(p->alarms, battery_alarm_name));
		json_object_object_add(g, "warnings", bits_to_json(p->warnings, battery_alarm_name));
		json_object_object_add(g, "requests",
				       bits_to_json(p->requests, battery_request_name));
	}
	json_object_object_add(o, "status", g);
	return o;
}

struct json_object *battery_state_to_json(const struct battery_state *bs)
{
	struct json_object *o = json_object_new_object(), *packs;

	if (!o) {
		return NULL;
	}
	add_int(o, "pack_count", bs->pack_count);
	add_int(o, "packs_online", bs->packs_online);
	json_object_object_add(o, "bank", battery_pack_to_json(&bs->bank));
	packs = json_object_new_array();
	for (unsigned i = 0; i < bs->pack_count && i < BATTERY_PACKS_MAX; i++) {
		json_object_array_add(packs, battery_pack_to_json(&bs->packs[i]));
	}
	json_object_object_add(o, "packs", packs);
	return o;
}

/* ---- reading -------------------------------------------------------------- */

struct reader {
	char *err;
	size_t n;
	uint64_t now;
};

static int fail(struct reader *rd, const char *path, const char *fmt, ...) _printf_(3, 4);
static int fail(struct reader *rd, const char *path, const char *fmt, ...)
{
	char text[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (rd->err && rd->n) {
		snprintf(rd->err, rd->n, "%s: %s", path, text);
	}
	return -EINVAL;
}

static int get_int(struct reader *rd, struct json_object *v, const char *path, int64_t min,
		   int64_t max, int64_t *ret)
{
	*ret = 0; /* on failure too: gcc -O3 cannot follow the error paths of its callers */
	if (!json_object_is_type(v, json_type_int)) {
		return fail(rd, path, "expected an integer");
	}
	errno = 0;
	*ret = json_object_get_int64(v);
	if (errno == EINVAL || *ret < min || *ret > max) {
		return fail(rd, path, "%s is out of range [%" PRId64 ", %" PRId64 "]",
			    json_object_get_string(v), min, max);
	}
	return 0;
}

/* one integer field of a group object */
struct field {
	const char *key;
	int64_t min, max;
	void *ptr;
	unsigned size; /* 1, 2 or 4 bytes; signed by min < 0 */
};

static void store(const struct field *f, int64_t v)
{
	switch (f->size) {
	case 1:
		*(uint8_t *)f->ptr = (uint8_t)v;
		break;
	case 2:
		*(uint16_t *)f->ptr = (uint16_t)v;
		break;
	default:
		*(uint32_t *)f->ptr = (uint32_t)v;
		break;
	}
}

static int get_array(struct reader *rd, struct json_object *v, const char *path, size_t max_len,
		     int64_t min, int64_t max, int64_t *out, size_t *ret_len)
{
	size_t len;
	char p[96];

	if (!json_object_is_type(v, json_type_array)) {
		return fail(rd, path, "expected an array");
	}
	len = json_object_array_length(v);
	if (len > max_len) {
		return fail(rd, path, "%zu entries, at most %zu", len, max_len);
	}
	for (size_t i = 0; i < len; i++) {
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		if (get_int(rd, json_object_array_get_idx(v, i), p, min, max, &out[i]) < 0) {
			return -EINVAL;
		}
	}
	*ret_len = len;
	return 0;
}

static int get_bits(struct reader *rd, struct json_object *v, const char *path,
		    uint32_t (*from)(const char *), uint32_t *ret)
{
	char p[96];

	if (!json_object_is_type(v, json_type_array)) {
		return fail(rd, path, "expected an array of names");
	}
	*ret = 0;
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		uint32_t bit;

		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		if (!json_object_is_type(e, json_type_string)) {
			return fail(rd, p, "expected a name");
		}
		bit = from(json_object_get_string(e));
		if (!bit) {
			return fail(rd, p, "unknown name \"%.40s\"", json_object_get_string(e));
		}
		*ret |= bit;
	}
	return 0;
}

/* a group object: plain integer fields from @fields, the rest by @special */
static int read_group(struct reader *rd, struct json_object *g, const char *path,
		      const struct field *fields, size_t n_fields,
		      int (*special)(struct reader *, const char *, struct json_object *,
				     const char *, struct battery_pack *),
		      struct battery_pack *p)
{
	char kp[96];

	if (!json_object_is_type(g, json_type_object)) {
		return fail(rd, path, "expected an object or null");
	}
	json_object_object_foreach(g, key, val)
	{
		const struct field *f = NULL;
		int64_t v = 0;
		int r;

		if (snprintf(kp, sizeof(kp), "%s.%s", path, key) >= (int)sizeof(kp)) {
			return fail(rd, path, "key too long");
		}
		for (size_t i = 0; i < n_fields; i++) {
			if (streq(fields[i].key, key)) {
				f = &fields[i];
			}
		}
		if (f) {
			if (get_int(rd, val, kp, f->min, f->max, &v) < 0) {
				return -EINVAL;
			}
			store(f, v);
			continue;
		}
		r = special ? special(rd, key, val, kp, p) : 1;
		if (r < 0) {
			return r;
		}
		if (r > 0) {
			return fail(rd, kp, "unknown key");
		}
	}
	return 0;
}

/* an index field: null (unknown) or 0..@max */
static int read_index(struct reader *rd, struct json_object *v, const char *path, int64_t max,
		      uint8_t *dst)
{
	int64_t x = 0;

	if (json_object_is_type(v, json_type_null)) {
		*dst = BATTERY_INDEX_NONE;
		return 0;
	}
	if (get_int(rd, v, path, 0, max, &x) < 0) {
		return -EINVAL;
	}
	*dst = (uint8_t)x;
	return 0;
}

/* cells: cell_mv[], the index fields (null allowed) */
static int cells_special(struct reader *rd, const char *key, struct json_object *v,
			 const char *path, struct battery_pack *p)
{
	int64_t a[BATTERY_CELLS_MAX], x = 0;
	size_t len;

	if (streq(key, "cell_mv")) {
		if (get_array(rd, v, path, BATTERY_CELLS_MAX, 0, UINT16_MAX, a, &len) < 0) {
			return -EINVAL;
		}
		p->cell_count = (uint8_t)len;
		for (size_t i = 0; i < len; i++) {
			p->cell_mv[i] = (uint16_t)a[i];
		}
		return 0;
	}
	if (streq(key, "cell_min_pack")) {
		return read_index(rd, v, path, BATTERY_PACKS_MAX - 1, &p->cell_min_pack);
	}
	if (streq(key, "cell_max_pack")) {
		return read_index(rd, v, path, BATTERY_PACKS_MAX - 1, &p->cell_max_pack);
	}
	if (streq(key, "cell_min_idx") || streq(key, "cell_max_idx")) {
		uint8_t *dst = streq(key, "cell_min_idx") ? &p->cell_min_idx : &p->cell_max_idx;

		if (json_object_is_type(v, json_type_null)) {
			*dst = BATTERY_INDEX_NONE;
			return 0;
		}
		if (get_int(rd, v, path, 0, BATTERY_CELLS_MAX - 1, &x) < 0) {
			return -EINVAL;
		}
		*dst = (uint8_t)x;
		return 0;
	}
	return 1;
}

static int temps_special(struct reader *rd, const char *key, struct json_object *v,
			 const char *path, struct battery_pack *p)
{
	int64_t a[BATTERY_TEMPS_MAX], x = 0;
	size_t len;

	if (streq(key, "temp_dc")) {
		if (get_array(rd, v, path, BATTERY_TEMPS_MAX, INT16_MIN + 1, INT16_MAX, a, &len) < 0) {
			return -EINVAL;
		}
		p->temp_count = (uint8_t)len;
		for (size_t i = 0; i < len; i++) {
			p->temp_dc[i] = (int16_t)a[i];
		}
		return 0;
	}
	if (streq(key, "temp_min_pack")) {
		return read_index(rd, v, path, BATTERY_PACKS_MAX - 1, &p->temp_min_pack);
	}
	if (streq(key, "temp_max_pack")) {
		return read_index(rd, v, path, BATTERY_PACKS_MAX - 1, &p->temp_max_pack);
	}
	if (streq(key, "temp_min_idx") || streq(key, "temp_max_idx")) {
		uint8_t *dst = streq(key, "temp_min_idx") ? &p->temp_min_idx : &p->temp_max_idx;

		if (json_object_is_type(v, json_type_null)) {
			*dst = BATTERY_INDEX_NONE;
			return 0;
		}
		if (get_int(rd, v, path, 0, BATTERY_TEMPS_MAX - 1, &x) < 0) {
			return -EINVAL;
		}
		*dst = (uint8_t)x;
		return 0;
	}
	if (streq(key, "mosfet_temp_dc")) {
		if (json_object_is_type(v, json_type_null)) {
			p->mosfet_temp_dc = BATTERY_TEMP_NONE;
			return 0;
		}
		if (get_int(rd, v, path, INT16_MIN + 1, INT16_MAX, &x) < 0) {
			return -EINVAL;
		}
		p->mosfet_temp_dc = (int16_t)x;
		return 0;
	}
	return 1;
}

static int status_special(struct reader *rd, const char *key, struct json_object *v,
			  const char *path, struct battery_pack *p)
{
	if (streq(key, "alarms")) {
		return get_bits(rd, v, path, battery_alarm_from_name, &p->alarms);
	}
	if (streq(key, "warnings")) {
		return get_bits(rd, v, path, battery_alarm_from_name, &p->warnings);
	}
	if (streq(key, "requests")) {
		return get_bits(rd, v, path, battery_request_from_name, &p->requests);
	}
	return 1;
}

/* Over 80 lines: one JSON key per struct field, in struct order. */
static int read_pack(struct reader *rd, struct json_object *o, const char *path,
		     struct battery_pack *p)
{
	/* the extremes are computed unless the input gives them */
	bool cell_min = false, cell_max = false, temp_min = false, temp_max = false;
	char gp[96];
	int r;

	if (!json_object_is_type(o, json_type_object)) {
		return fail(rd, path, "expected an object");
	}
	battery_pack_init(p);
	json_object_object_foreach(o, key, val)
	{
		enum battery_group g;

		snprintf(gp, sizeof(gp), "%s.%s", path, key);
		if (json_object_is_type(val, json_type_null)) {
			if (!streq(key, "electrical") && !streq(key, "capacity") &&
			    !streq(key, "cells") && !streq(key, "temps") && !streq(key, "limits") &&
			    !streq(key, "status")) {
				return fail(rd, gp, "unknown group");
			}
			continue; /* never received */
		}
		if (streq(key, "electrical")) {
			const struct field f[] = {
				{ "voltage_mv", 0, UINT32_MAX, &p->voltage_mv, 4 },
				{ "current_ma", INT32_MIN, INT32_MAX, &p->current_ma, 4 },
			};
			g = BATTERY_GROUP_ELECTRICAL;
			r = read_group(rd, val, gp, f, ARRAY_SIZE(f), NULL, p);
		} else if (streq(key, "capacity")) {
			const struct field f[] = {
				{ "soc_pct", 0, 100, &p->soc_pct, 1 },
				{ "soh_pct", 0, 100, &p->soh_pct, 1 },
				{ "remaining_mah", 0, UINT32_MAX, &p->remaining_mah, 4 },
				{ "full_mah", 0, UINT32_MAX, &p->full_mah, 4 },
				{ "cycles", 0, UINT32_MAX, &p->cycles, 4 },
			};
			g = BATTERY_GROUP_CAPACITY;
			r = read_group(rd, val, gp, f, ARRAY_SIZE(f), NULL, p);
		} else if (streq(key, "cells")) {
			const struct field f[] = {
				{ "cell_min_mv", 0, UINT16_MAX, &p->cell_min_mv, 2 },
				{ "cell_max_mv", 0, UINT16_MAX, &p->cell_max_mv, 2 },
			};
			g = BATTERY_GROUP_CELLS;
			cell_min = json_object_object_get_ex(val, "cell_min_mv", NULL);
			cell_max = json_object_object_get_ex(val, "cell_max_mv", NULL);
			r = read_group(rd, val, gp, f, ARRAY_SIZE(f), cells_special, p);
		} else if (streq(key, "temps")) {
			const struct field f[] = {
				{ "temp_min_dc", INT16_MIN + 1, INT16_MAX, &p->temp_min_dc, 2 },
				{ "temp_max_dc", INT16_MIN + 1, INT16_MAX, &p->temp_max_dc, 2 },
			};
			g = BATTERY_GROUP_TEMPS;
			temp_min = json_object_object_get_ex(val, "temp_min_dc", NULL);
			temp_max = json_object_object_get_ex(val, "temp_max_dc", NULL);
			r = read_group(rd, val, gp, f, ARRAY_SIZE(f), temps_special, p);
		} else if (streq(key, "limits")) {
			const struct field f[] = {
				{ "charge_voltage_limit_mv", 0, UINT32_MAX, &p->charge_voltage_limit_mv, 4 },
				{ "discharge_voltage_limit_mv", 0, UINT32_MAX,
				  &p->discharge_voltage_limit_mv, 4 },
				{ "charge_current_limit_ma", 0, UINT32_MAX, &p->charge_current_limit_ma, 4 },
				{ "discharge_current_limit_ma", 0, UINT32_MAX,
				  &p->discharge_current_limit_ma, 4 },
			};
			g = BATTERY_GROUP_LIMITS;
			r = read_group(rd, val, gp, f, ARRAY_SIZE(f), NULL, p);
		} else if (streq(key, "status")) {
			g = BATTERY_GROUP_STATUS;
			r = read_group(rd, val, gp, NULL, 0, status_special, p);
		} else {
			return fail(rd, gp, "unknown group");
		}
		if (r < 0) {
			return r;
		}
		battery_pack_mark(p, g, rd->now);
	}
	if (p->cell_count && !cell_min && !cell_max) {
		battery_pack_update_cell_extremes(p);
	}
	if (p->temp_count && !temp_min && !temp_max) {
		battery_pack_update_temp_extremes(p);
	}
	return 0;
}

/* Over 80 lines: one JSON key per struct field, in struct order. */
int battery_state_from_json(const char *text, uint64_t now_usec, struct battery_state *bs,
			    char *err, size_t n)
{
	struct reader rd = { .err = err, .n = n, .now = now_usec ? now_usec : 1 };
	struct json_tokener *tok;
	struct json_object *root, *packs = NULL, *bank = NULL;
	enum json_tokener_error jerr;
	int64_t v = 0;
	int r = 0;

	tok = json_tokener_new_ex(32);
	if (!tok) {
		return fail(&rd, "$", "out of memory");
	}
	root = json_tokener_parse_ex(tok, text, (int)strnlen(text, INT32_MAX));
	jerr = json_tokener_get_error(tok);
	if (!root || jerr != json_tokener_success ||
	    (size_t)json_tokener_get_parse_end(tok) < strlen(text)) {
		/* trailing bytes other than white space are an error too */
		const char *rest = text + json_tokener_get_parse_end(tok);

		if (root && jerr == json_tokener_success && strspn(rest, " \t\r\n") == strlen(rest)) {
			goto parsed;
		}
		r = fail(&rd, "$", "not JSON: %s (at byte %zu)",
			 jerr == json_tokener_continue	 ? "the input ends early"
			 : jerr != json_tokener_success ? json_tokener_error_desc(jerr)
							 : "trailing data",
			 json_tokener_get_parse_end(tok));
		json_object_put(root);
		json_tokener_free(tok);
		return r;
	}
parsed:
	json_tokener_free(tok);
	memset(bs, 0, sizeof(*bs));
	battery_state_init(bs, 1);
	if (!json_object_is_type(root, json_type_object)) {
		r = fail(&rd, "$", "expected an object");
		goto out;
	}
	json_object_object_foreach(root, key, val)
	{
		if (streq(key, "packs")) {
			packs = val;
		} else if (streq(key, "bank")) {
			bank = val;
		} else if (streq(key, "pack_count")) {
			r = get_int(&rd, val, "pack_count", 1, BATTERY_PACKS_MAX, &v);
		} else if (streq(key, "packs_online")) {
			r = get_int(&rd, val, "packs_online", 0, BATTERY_PACKS_MAX, &v);
			bs->packs_online = (uint8_t)v;
		} else {
			r = fail(&rd, key, "unknown key (pack_count, packs_online, bank, packs)");
		}
		if (r < 0) {
			goto out;
		}
	}
	if (!packs && !bank) {
		r = fail(&rd, "$", "needs \"bank\" or \"packs\"");
		goto out;
	}
	if (packs) {
		size_t len;

		if (!json_object_is_type(packs, json_type_array)) {
			r = fail(&rd, "packs", "expected an array");
			goto out;
		}
		len = json_object_array_length(packs);
		if (len < 1 || len > BATTERY_PACKS_MAX) {
			r = fail(&rd, "packs", "%zu packs, 1 to %d", len, BATTERY_PACKS_MAX);
			goto out;
		}
		bs->pack_count = (uint8_t)len;
		for (size_t i = 0; i < len; i++) {
			char path[32];

			snprintf(path, sizeof(path), "packs[%zu]", i);
			r = read_pack(&rd, json_object_array_get_idx(packs, i), path, &bs->packs[i]);
			if (r < 0) {
				goto out;
			}
		}
	}
	if (bank && !json_object_is_type(bank, json_type_null)) {
		r = read_pack(&rd, bank, "bank", &bs->bank);
		if (r < 0) {
			goto out;
		}
		if (!packs) {
			bs->packs[0] = bs->bank;
		}
	} else {
		bs->bank = bs->packs[0];
	}
	if (!bs->packs_online) {
		bs->packs_online = bs->pack_count;
	}
out:
	json_object_put(root);
	return r;
}
