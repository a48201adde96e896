/* SPDX-License-Identifier: MIT */
/*
 * The sim input: runs the simulated BMS (protocols/sim.c) from a 1 s timer.
 * Simulated time runs bms.sim_speed times faster than real time, so an
 * hour of pack life can be watched (and measured) in minutes. Every pack
 * address gets its own simulated pack (seed + index), so multi-pack setups
 * can be tried without hardware.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "bms_sim"
#include "bridge.h"
#include "log.h"
#include "macro.h"
#include "sim.h"

#define BMS_SIM_PERIOD_USEC USEC_PER_SEC

struct input {
	struct bridge *br;
	sd_event_source *timer;
	uint64_t last_usec;
	unsigned n_packs;
	struct sim sims[BATTERY_PACKS_MAX];
};

static int sim_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct input *in = userdata;
	struct bridge *br = in->br;
	uint64_t now = bridge_now(br);
	uint64_t dt = now > in->last_usec ? now - in->last_usec : 0;

	in->last_usec = now;
	for (unsigned i = 0; i < in->n_packs; i++) {
		sim_step(&in->sims[i], dt * br->cfg.bms.sim_speed);
		sim_fill(&in->sims[i], i, now, &br->state);
	}
	bridge_bms_updated(br);
	return sd_event_source_set_time(s, usec + BMS_SIM_PERIOD_USEC);
}

static struct input *sim_free(struct input *in)
{
	if (!in) {
		return NULL;
	}
	sd_event_source_disable_unref(in->timer);
	free(in);
	return NULL;
}

static int sim_open(struct bridge *br, struct input **ret)
{
	struct input *in;
	uint64_t now = bridge_now(br);
	int r;

	in = calloc(1, sizeof(*in));
	if (!in) {
		return -ENOMEM;
	}
	in->br = br;
	in->n_packs = br->cfg.bms.sim_packs ? br->cfg.bms.sim_packs : 1;
	br->state.pack_count = (uint8_t)in->n_packs;
	for (unsigned i = 0; i < in->n_packs; i++) {
		sim_init(&in->sims[i], br->cfg.bms.seed + i, br->cfg.bms.sim_cells,
			 br->cfg.bms.sim_capacity_mah);
	}
	in->last_usec = now;
	/* the first reading at once, then every second */
	r = sd_event_add_time(br->event, &in->timer, CLOCK_MONOTONIC, now, 50 * USEC_PER_MSEC,
			      sim_tick, in);
	if (r < 0) {
		sim_free(in);
		return log_error_errno(r, "Failed to add sim timer: %s", strerror(-r));
	}
	sd_event_source_set_enabled(in->timer, SD_EVENT_ON);
	sd_event_source_set_exit_on_failure(in->timer, true);
	br->input_open = true;
	*ret = in;
	return 0;
}

static void sim_status(struct input *in, char *buf, size_t n)
{
	snprintf(buf, n, "sim %u pack%s, SOC %u%%", in->n_packs, in->n_packs == 1 ? "" : "s",
		 sim_soc_pct(&in->sims[0]));
}

const struct input_ops input_sim_ops = {
	.name = "sim",
	.open = sim_open,
	.free = sim_free,
	.status = sim_status,
};
