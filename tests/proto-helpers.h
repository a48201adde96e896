/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Helpers shared by the protocol golden tests (test-proto-*.c): a full
 * reference state, frames from hex, exact frame comparison with a readable
 * diff, and reading the candump captures under tests/data/ (lines starting
 * with '#' name the source and are skipped). Include after <cmocka.h>.
 */
#include <stdio.h>
#include <string.h>

#include "battery.h"
#include "candump.h"
#include "protocol.h"

#define T_NOW UINT64_C(1000000000)

/*
 * A 16s LFP bank of one 280 Ah pack, every group received: the
 * reference state the golden cases start from and modify.
 */
static inline void t_state(struct battery_state *bs)
{
	struct battery_pack *b;

	battery_state_init(bs, 1);
	bs->packs_online = 1;
	b = &bs->bank;
	b->voltage_mv = 53120;
	b->current_ma = 12300;
	battery_pack_mark(b, BATTERY_GROUP_ELECTRICAL, T_NOW);
	b->soc_pct = 67;
	b->soh_pct = 98;
	b->remaining_mah = 187600;
	b->full_mah = 280000;
	b->cycles = 41;
	battery_pack_mark(b, BATTERY_GROUP_CAPACITY, T_NOW);
	b->cell_count = 16;
	for (unsigned i = 0; i < 16; i++) {
		b->cell_mv[i] = (uint16_t)(3318 + i % 4); /* 3318..3321 */
	}
	b->cell_mv[5] = 3325;
	b->cell_mv[11] = 3312;
	b->cell_min_mv = 3312;
	b->cell_max_mv = 3325;
	b->cell_min_idx = 11;
	b->cell_max_idx = 5;
	b->cell_min_pack = b->cell_max_pack = 0;
	battery_pack_mark(b, BATTERY_GROUP_CELLS, T_NOW);
	b->temp_count = 4;
	b->temp_dc[0] = 215;
	b->temp_dc[1] = 224;
	b->temp_dc[2] = 231;
	b->temp_dc[3] = 209;
	b->temp_min_dc = 209;
	b->temp_max_dc = 231;
	b->temp_min_idx = 3;
	b->temp_max_idx = 2;
	b->temp_min_pack = b->temp_max_pack = 0;
	b->mosfet_temp_dc = 260;
	battery_pack_mark(b, BATTERY_GROUP_TEMPS, T_NOW);
	b->charge_voltage_limit_mv = 55200;
	b->discharge_voltage_limit_mv = 46400;
	b->charge_current_limit_ma = 100000;
	b->discharge_current_limit_ma = 150000;
	battery_pack_mark(b, BATTERY_GROUP_LIMITS, T_NOW);
	b->alarms = 0;
	b->warnings = 0;
	b->requests = BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE;
	battery_pack_mark(b, BATTERY_GROUP_STATUS, T_NOW);
}

/* the groups every encoder needs */
static inline bool t_ready(const struct battery_state *bs)
{
	return battery_pack_has(&bs->bank, BATTERY_GROUP_LIMITS) &&
	       battery_pack_has(&bs->bank, BATTERY_GROUP_ELECTRICAL) &&
	       battery_pack_has(&bs->bank, BATTERY_GROUP_CAPACITY);
}

static inline int t_hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c - 'a' + 10;
}

/* "1402C012" (spaces allowed) -> frame @id */
static inline struct can_frame t_frame(canid_t id, const char *hex)
{
	struct can_frame f = { .can_id = id };

	for (const char *p = hex; *p && p[1];) {
		if (*p == ' ') {
			p++;
			continue;
		}
		f.data[f.len++] = (uint8_t)(t_hexval(p[0]) << 4 | t_hexval(p[1]));
		p += 2;
	}
	return f;
}

static inline void t_frame_str(const struct can_frame *f, char *buf, size_t n)
{
	int w = snprintf(buf, n, "%03X#", f->can_id);

	for (unsigned i = 0; i < f->len && w > 0 && (size_t)w + 3 < n; i++) {
		w += snprintf(buf + w, n - (size_t)w, "%02X", f->data[i]);
	}
}

/* exact id, length and bytes; prints both frames when they differ */
static inline void t_assert_frame(const struct can_frame *got, const struct can_frame *want)
{
	char a[48], b[48];

	if (!got || !want) {
		fail_msg("frame missing");
		return;
	}
	t_frame_str(got, a, sizeof(a));
	t_frame_str(want, b, sizeof(b));
	if (strcmp(a, b) != 0) {
		print_error("frame   %s\nexpected %s\n", a, b);
	}
	assert_string_equal(a, b);
}

static inline void t_assert_hex(const struct can_frame *got, canid_t id, const char *hex)
{
	struct can_frame want = t_frame(id, hex);

	if (!got) {
		fail_msg("frame %03X missing", id);
		return;
	}
	t_assert_frame(got, &want);
}

/* the frame with @id among @n, or NULL */
static inline const struct can_frame *t_find(const struct can_frame *f, int n, canid_t id)
{
	for (int i = 0; i < n; i++) {
		if (f[i].can_id == id) {
			return &f[i];
		}
	}
	return NULL;
}

/* read a capture from TESTS_DATA_DIR; returns the frame count */
static inline int t_load(const char *name, struct can_frame *frames, int max)
{
	char path[512], line[256];
	FILE *fp;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", TESTS_DATA_DIR, name);
	fp = fopen(path, "re");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		if (line[0] == '#' || line[0] == '\n') {
			continue;
		}
		assert_true(n < max);
		assert_int_equal(candump_parse(line, strlen(line), NULL, NULL, &frames[n]), 0);
		n++;
	}
	fclose(fp);
	return n;
}

/* decode every frame of @f with @p into @bs; each must be the protocol's */
static inline void t_decode_all(const struct inverter_protocol *p, const struct can_frame *f,
				int n, struct battery_state *bs)
{
	for (int i = 0; i < n; i++) {
		assert_int_equal(p->decode(&f[i], T_NOW, bs), 1);
	}
}
