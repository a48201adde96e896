/* SPDX-License-Identifier: MIT */
/*
 * The replay input (BMS_TRANSPORT_FILE): a can-utils log (`candump -l`,
 * include/candump.h) played as the BMS, for demos, bug reports and tests
 * with real captures.
 *
 * Model:
 *   - at open the whole log is read into memory (the only allocation); a
 *     line that does not parse is skipped and counted, a comment ('#') or
 *     blank line ignored; a log without one frame is refused;
 *   - frame i is due at start + (t_i - t_0) / bms.replay_speed, t being the
 *     recorded time (a timestamp going backwards counts as no time);
 *   - one sd-event timer: each wake-up feeds every due frame (at most
 *     REPLAY_BATCH_MAX, so a burst never stalls the loop) to the
 *     ->decode_frame() of the driver bms.replay_format names, then calls
 *     input_updated() once if any frame changed the state, and sets
 *     the timer to the next frame's due time;
 *   - at the end of the log: start again one recorded frame interval
 *     later (bms.replay_loop), or stop and let the data age: what the
 *     safety layer does with a silent BMS is exactly what a replay should
 *     show.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "bms_replay"
#include "bms.h"
#include "adapter.h"
#include "candump.h"
#include "log.h"
#include "macro.h"

#define REPLAY_FRAMES_MAX (4u * 1024 * 1024) /* 64 MB of frames: a day at 50 frames/s */
#define REPLAY_BATCH_MAX 256		      /* frames fed per wake-up at most */
#define REPLAY_LOOP_GAP_USEC (10 * USEC_PER_MSEC) /* between the last frame and the first */

struct replay_frame {
	uint64_t time_usec; /* recorded time, relative to the first frame */
	struct can_frame frame;
};

struct replay_input {
	struct input base; /* ops, ctx */
	const struct bms_driver *decoder;
	sd_event_source *timer;
	struct replay_frame *frames;
	size_t n_frames;
	size_t next;		/* index of the next frame to feed */
	uint64_t start_usec;	/* monotonic time frame 0 was (or is) due */
	uint32_t speed;
	uint64_t loops;		/* completed passes */
	uint64_t fed;		/* frames fed in total */
	uint64_t rejected;	/* frames the decoder called malformed */
	unsigned skipped_lines;
	bool finished;
};

static uint64_t due_usec(const struct replay_input *in, size_t i)
{
	return in->start_usec + in->frames[i].time_usec / in->speed;
}

static int replay_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct replay_input *in = userdata;
	struct input_ctx *ctx = in->base.ctx;
	uint64_t now = input_now(ctx);
	unsigned batch = 0;
	bool changed = false;

	while (in->next < in->n_frames && due_usec(in, in->next) <= now &&
	       batch < REPLAY_BATCH_MAX) {
		int r = in->decoder->decode_frame(&in->frames[in->next].frame, now, ctx->state);

		if (r > 0) {
			changed = true;
		} else if (r < 0) {
			in->rejected++;
		}
		in->next++;
		in->fed++;
		batch++;
	}
	if (changed) {
		input_updated(ctx);
	}
	if (in->next >= in->n_frames) {
		in->loops++;
		if (!ctx->cfg->replay_loop) {
			in->finished = true;
			log_info("Replay of %s finished: %" PRIu64 " frames, %" PRIu64 " rejected",
				 ctx->cfg->port, in->fed, in->rejected);
			return sd_event_source_set_enabled(s, SD_EVENT_OFF);
		}
		/* the next pass starts where this one ended */
		in->next = 0;
		in->start_usec = due_usec(in, in->n_frames - 1) + REPLAY_LOOP_GAP_USEC;
	}
	return sd_event_source_set_time(s, due_usec(in, in->next));
}

static struct input *replay_free(struct input *base)
{
	struct replay_input *in = base ? container_of(base, struct replay_input, base) : NULL;

	if (!in) {
		return NULL;
	}
	sd_event_source_disable_unref(in->timer);
	free(in->frames);
	free(in);
	return NULL;
}

static void fclosep_replay(FILE **f)
{
	if (*f) {
		fclose(*f);
	}
}

/* Read the whole log; lines that do not parse are counted, not fatal. */
static int replay_load(struct replay_input *in, const char *path)
{
	_cleanup_(fclosep_replay) FILE *f = NULL;
	char line[256];
	size_t cap = 0;
	uint64_t t0 = 0, prev = 0;
	unsigned lineno = 0;

	f = fopen(path, "re");
	if (!f) {
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		struct replay_frame rf = { 0 };
		uint64_t t;
		size_t len = strlen(line);

		lineno++;
		if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
			/* longer than any candump line: skip the rest of it */
			int c;

			while ((c = fgetc(f)) != EOF && c != '\n') {
			}
			in->skipped_lines++;
			continue;
		}
		if (line[0] == '#' || line[0] == '\n' || line[0] == '\0') {
			continue;
		}
		if (candump_parse(line, len, &t, NULL, &rf.frame) < 0) {
			if (in->skipped_lines++ == 0) {
				log_warning("%s:%u: not a candump line, skipping", path, lineno);
			}
			continue;
		}
		if (in->n_frames == 0) {
			t0 = prev = t;
		}
		/* a timestamp going backwards counts as no time passing */
		prev = t > prev ? t : prev;
		rf.time_usec = prev - t0;
		if (in->n_frames == cap) {
			struct replay_frame *n;

			if (cap >= REPLAY_FRAMES_MAX) {
				return -EFBIG;
			}
			cap = cap ? cap * 2 : 256;
			n = realloc(in->frames, cap * sizeof(*n));
			if (!n) {
				return -ENOMEM;
			}
			in->frames = n;
		}
		in->frames[in->n_frames++] = rf;
	}
	if (ferror(f)) {
		return -EIO;
	}
	return in->n_frames > 0 ? 0 : -EBADMSG;
}

static int replay_open(struct input_ctx *ctx, struct input **ret)
{
	const struct bms_config *c = ctx->cfg;
	struct replay_input *in;
	uint64_t now = input_now(ctx);
	int r;

	in = calloc(1, sizeof(*in));
	if (!in) {
		return -ENOMEM;
	}
	in->base.ctx = ctx;
	in->speed = c->replay_speed ? c->replay_speed : 1;
	in->decoder = bms_driver_find(c->replay_format);
	if (!in->decoder || !in->decoder->decode_frame) {
		replay_free(&in->base);
		return log_error_errno(-EINVAL, "Replay format '%s' is not a CAN BMS driver",
				       c->replay_format);
	}
	r = replay_load(in, c->port);
	if (r < 0) {
		replay_free(&in->base);
		return log_error_errno(r, "Failed to read candump log %s: %s", c->port,
				       r == -EBADMSG ? "no frame in it" : strerror(-r));
	}
	if (in->skipped_lines > 0) {
		log_warning("%s: %u lines skipped", c->port, in->skipped_lines);
	}
	in->start_usec = now;
	r = sd_event_add_time(ctx->event, &in->timer, CLOCK_MONOTONIC, due_usec(in, 0), 1,
			      replay_tick, in);
	if (r < 0) {
		replay_free(&in->base);
		return log_error_errno(r, "Failed to add the replay timer: %s", strerror(-r));
	}
	/* a repeating source: the callback moves its time on */
	sd_event_source_set_enabled(in->timer, SD_EVENT_ON);
	sd_event_source_set_exit_on_failure(in->timer, true);
	log_info("Replaying %zu frames of %s as %s, speed x%u%s", in->n_frames, c->port,
		 in->decoder->name, in->speed, c->replay_loop ? ", looping" : "");
	ctx->open = true;
	in->base.ops = &input_replay_ops;
	*ret = &in->base;
	input_port_changed(ctx);
	return 0;
}

static void replay_status(struct input *base, char *buf, size_t n)
{
	struct replay_input *in = container_of(base, struct replay_input, base);

	snprintf(buf, n, "replay %s %zu/%zu frames, pass %" PRIu64 "%s", in->decoder->name,
		 in->next, in->n_frames, in->loops + 1, in->finished ? ", finished" : "");
}

const struct input_ops input_replay_ops = {
	.name = "replay",
	.open = replay_open,
	.free = replay_free,
	.status = replay_status,
};
