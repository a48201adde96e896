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
#include "adapter.h"
#include "log.h"
#include "macro.h"
#include "sim.h"

#define BMS_SIM_PERIOD_USEC USEC_PER_SEC

struct sim_input {
	struct input base; /* ops, ctx */
	sd_event_source *timer;
	uint64_t last_usec;
	unsigned n_packs;
	struct sim sims[BATTERY_PACKS_MAX];
};

static int sim_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct sim_input *in = userdata;
	struct input_ctx *ctx = in->base.ctx;
	uint64_t now = input_now(ctx);
	uint64_t dt = now > in->last_usec ? now - in->last_usec : 0;

	in->last_usec = now;
	for (unsigned i = 0; i < in->n_packs; i++) {
		sim_step(&in->sims[i], dt * ctx->cfg->sim_speed);
		sim_fill(&in->sims[i], i, now, ctx->state);
	}
	input_updated(ctx);
	return sd_event_source_set_time(s, usec + BMS_SIM_PERIOD_USEC);
}

static struct input *sim_free(struct input *base)
{
	struct sim_input *in = base ? container_of(base, struct sim_input, base) : NULL;

	if (!in) {
		return NULL;
	}
	sd_event_source_disable_unref(in->timer);
	free(in);
	return NULL;
}

static int sim_open(struct input_ctx *ctx, struct input **ret)
{
	struct sim_input *in;
	uint64_t now = input_now(ctx);
	int r;

	in = calloc(1, sizeof(*in));
	if (!in) {
		return -ENOMEM;
	}
	in->base.ctx = ctx;
	in->n_packs = ctx->cfg->sim_packs ? ctx->cfg->sim_packs : 1;
	ctx->state->pack_count = (uint8_t)in->n_packs;
	for (unsigned i = 0; i < in->n_packs; i++) {
		sim_init(&in->sims[i], ctx->cfg->seed + i, ctx->cfg->sim_cells,
			 ctx->cfg->sim_capacity_mah);
	}
	in->last_usec = now;
	/* the first reading at once, then every second */
	r = sd_event_add_time(ctx->event, &in->timer, CLOCK_MONOTONIC, now, 50 * USEC_PER_MSEC,
			      sim_tick, in);
	if (r < 0) {
		sim_free(&in->base);
		return log_error_errno(r, "Failed to add sim timer: %s", strerror(-r));
	}
	sd_event_source_set_enabled(in->timer, SD_EVENT_ON);
	sd_event_source_set_exit_on_failure(in->timer, true);
	ctx->open = true;
	in->base.ops = &input_sim_ops;
	*ret = &in->base;
	return 0;
}

static void sim_status(struct input *base, char *buf, size_t n)
{
	struct sim_input *in = container_of(base, struct sim_input, base);

	snprintf(buf, n, "sim %u pack%s, SOC %u%%", in->n_packs, in->n_packs == 1 ? "" : "s",
		 sim_soc_pct(&in->sims[0]));
}

const struct input_ops input_sim_ops = {
	.name = "sim",
	.open = sim_open,
	.free = sim_free,
	.status = sim_status,
};
