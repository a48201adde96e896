/* SPDX-License-Identifier: MIT */
/*
 * bench/metrics-write [WRITES] [DIR]: what one metrics interval costs the
 * loop (src/observer_metrics.c): metrics_render() of 3 packs x 16 cells,
 * then the textfile written and renamed into place in DIR (default
 * $TMPDIR or /tmp; put it on the SD card or the disk the textfile
 * directory is on to measure that medium). Prints the render alone and
 * render + write: median, 99th percentile and worst, in microseconds, and
 * the file's size, with cells = true and cells = false.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "battery.h"
#include "config.h"
#include "metrics.h"
#include "observer.h"
#include "observer_metrics.h"

#define PACKS 3
#define CELLS 16

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* a 16s LFP pack at rest, every group received */
static void fill(struct battery_pack *p, unsigned i, uint64_t t)
{
	battery_pack_init(p);
	p->voltage_mv = 53120 + i * 10;
	p->current_ma = -23450;
	p->soc_pct = 76;
	p->soh_pct = 98;
	p->remaining_mah = 212000;
	p->full_mah = 280000;
	p->cycles = 321;
	p->cell_count = CELLS;
	for (unsigned c = 0; c < CELLS; c++) {
		p->cell_mv[c] = (uint16_t)(3310 + (c * 7 + i) % 13);
	}
	battery_pack_update_cell_extremes(p);
	p->temp_count = 4;
	for (unsigned s = 0; s < 4; s++) {
		p->temp_dc[s] = (int16_t)(215 + s * 3);
	}
	battery_pack_update_temp_extremes(p);
	p->mosfet_temp_dc = 284;
	p->charge_voltage_limit_mv = 56800;
	p->discharge_voltage_limit_mv = 48000;
	p->charge_current_limit_ma = 100000;
	p->discharge_current_limit_ma = 150000;
	p->requests = BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE;
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		battery_pack_mark(p, (enum battery_group)g, t);
	}
}

static void report(const char *what, uint64_t *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("  %-22s median %6llu us, p99 %6llu us, worst %6llu us\n", what,
	       (unsigned long long)v[n / 2], (unsigned long long)v[n * 99 / 100],
	       (unsigned long long)v[n - 1]);
}

static int run(const char *dir, bool cells, unsigned writes)
{
	static struct battery_state st;
	static char text[METRICS_TEXT_MAX];
	static struct observer_metrics o;
	struct metrics_config cfg = { .interval_usec = 15000000, .cells = cells };
	struct observer_evaluation ev = { .state = &st, .decision = { .packs_online_mask = 0x7 } };
	struct metrics_snapshot s = { .version = "bench",
				      .cells = cells,
				      .state = &st,
				      .mode = SAFETY_MODE_NORMAL,
				      .packs_online_mask = 0x7 };
	uint64_t *render = calloc(writes, sizeof(uint64_t));
	uint64_t *write = calloc(writes, sizeof(uint64_t));
	int len = 0;

	if (!render || !write) {
		return 1;
	}
	battery_state_init(&st, PACKS);
	for (unsigned i = 0; i < PACKS; i++) {
		fill(&st.packs[i], i, 1000000);
	}
	fill(&st.bank, 0, 1000000);
	st.packs_online = PACKS;
	snprintf(cfg.textfile, sizeof(cfg.textfile), "%s/bmsbridge-bench.prom", dir);
	if (observer_metrics_start(&o, &cfg, NULL) < 0) {
		return 1;
	}
	for (unsigned k = 0; k < writes; k++) {
		uint64_t t0 = now_usec();

		st.packs[k % PACKS].cell_mv[k % CELLS] ^= 1; /* the values move */
		len = metrics_render(&s, text, sizeof(text));
		render[k] = now_usec() - t0;
		ev.now_usec = t0;
		t0 = now_usec();
		if (observer_metrics_write(&o, &ev) < 0) {
			fprintf(stderr, "metrics-write: cannot write into %s\n", dir);
			return 1;
		}
		write[k] = now_usec() - t0;
	}
	printf("metrics-write: %u packs x %u cells, cells = %s, %d bytes, %u writes into %s\n",
	       PACKS, CELLS, cells ? "true" : "false", len, writes, dir);
	report("render", render, writes);
	report("render + write + rename", write, writes);
	observer_metrics_stop(&o);
	free(render);
	free(write);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned writes = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 2000;
	const char *dir = argc > 2 ? argv[2] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	if (writes < 1) {
		writes = 1;
	}
	return run(dir, true, writes) || run(dir, false, writes);
}
