/* SPDX-License-Identifier: MIT */
/*
 * The bridge: wires the BMS input, the safety layer, the protocol encoder
 * and the inverter output together on one sd-event loop.
 *
 * Data flow and timing:
 *   - the input writes br->state.packs[] and calls bridge_bms_updated();
 *     the safety layer then reshapes br->state.bank, and if the protocol
 *     says a change is urgent (a lowered limit, a new alarm) those frames
 *     go out at once, outside the period;
 *   - one tick timer runs at the protocol's period (1 s for polled and
 *     request-driven protocols): it re-evaluates the safety layer (data
 *     ages even when nothing arrives), sends the full set for periodic CAN
 *     protocols, watches inverter presence and refreshes the status;
 *   - the safety layer alone decides whether anything may be sent: in
 *     NOT_READY and STOP nothing goes on the wire.
 * Nothing here allocates after start-up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_MODULE "bridge"
#include "bms.h"
#include "bridge.h"
#include "log.h"
#include "macro.h"
#include "mqtt.h"
#include "notify.h"
#include "observer.h"
#include "protocol.h"


#define BRIDGE_DEFAULT_INVERTER_TIMEOUT_USEC (10 * USEC_PER_SEC)

uint64_t bridge_now(struct bridge *br)
{
	uint64_t now = 0;

	if (sd_event_now(br->event, CLOCK_MONOTONIC, &now) < 0 || now == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
	}
	return now;
}

static bool mode_sends(enum safety_mode mode)
{
	switch (mode) {
	case SAFETY_MODE_NORMAL:
	case SAFETY_MODE_HOLD:
	case SAFETY_MODE_ZERO:
		return true;
	case SAFETY_MODE_NOT_READY:
	case SAFETY_MODE_STOP:
		return false;
	}
	return false;
}

static void bridge_port_ready(struct bridge *br);

/* Run the safety layer; what it decided goes to the observers with what went on the wire. */
static enum safety_mode evaluate(struct bridge *br, uint64_t now, struct safety_event *ev)
{
	br->mode = safety_evaluate(&br->safety, &br->state, now, ev);
	return br->mode;
}

static void status_line(const struct observer_evaluation *ev, char *buf, size_t n)
{
	bridge_status(ev->status_data, buf, n);
}

static void port_status(const struct observer_evaluation *ev, bool inverter, char *buf, size_t n)
{
	struct bridge *br = ev->status_data;

	buf[0] = '\0';
	if (inverter && br->output && br->output_ops->status) {
		br->output_ops->status(br->output, buf, n);
	} else if (!inverter && br->input && br->input_ops->status) {
		br->input_ops->status(br->input, buf, n);
	}
}

/* what a limit of the bank equals: the BMS's own, the user's cap or floor, or neither */
/* the rules that lowered a limit, as the safety layer recorded them (SAFETY_BY_*) */
static const char *const rule_names[8] = {
	"rules", /* below the BMS's and the cap with no rule recorded: the bank's share rule */
	"taper", "cell", "taper+cell", "derate", "taper+derate", "cell+derate",
	"taper+cell+derate",
};

static const char *limit_source(uint32_t v, bool have_bms, uint32_t bms, uint32_t cap,
				bool ramped, uint8_t by)
{
	if (ramped) {
		return "ramp"; /* held below what the rules and the cap allow, rising */
	}
	if (v == cap) {
		return "cap";
	}
	if (have_bms && v == bms) {
		return "bms";
	}
	return rule_names[by & 7];
}

/*
 * Which rule set each limit (observer.h, set_by[]). Told from the values:
 * the comm-loss modes and a DVL/CVL conflict set all four; otherwise a
 * current the ramp holds back is the ramp's, a limit equal to the user's
 * cap (or floor) is the cap's, one equal to the BMS's (the lowest CVL, the
 * highest DVL, the sum of the currents of the online packs) is the BMS's,
 * and anything lower names the rules the safety layer recorded (taper,
 * cell, derate, or "rules" for the bank's share rule).
 */
static void limit_sources(const struct bridge *br, uint32_t online, const char **set_by)
{
	const struct safety_config *c = &br->safety.cfg;
	const struct battery_pack *b = &br->state.bank;
	uint32_t cvl = UINT32_MAX, dvl = 0;
	uint64_t ccl = 0, dcl = 0;
	bool have = false;
	const char *all = NULL;

	switch (br->mode) {
	case SAFETY_MODE_NOT_READY:
	case SAFETY_MODE_STOP:
		all = "none";
		break;
	case SAFETY_MODE_HOLD:
	case SAFETY_MODE_ZERO:
		all = "comm-loss";
		break;
	case SAFETY_MODE_NORMAL:
		if (br->safety.conflict[0]) {
			all = "conflict";
		}
		break;
	}
	if (all) {
		for (unsigned i = 0; i < OBSERVER_LIMIT__COUNT; i++) {
			set_by[i] = all;
		}
		return;
	}
	for (unsigned i = 0; i < br->state.pack_count; i++) {
		const struct battery_pack *p = &br->state.packs[i];

		if (!(online & (1u << i)) || !battery_pack_has(p, BATTERY_GROUP_LIMITS)) {
			continue;
		}
		have = true;
		cvl = p->charge_voltage_limit_mv < cvl ? p->charge_voltage_limit_mv : cvl;
		dvl = p->discharge_voltage_limit_mv > dvl ? p->discharge_voltage_limit_mv : dvl;
		ccl += p->charge_current_limit_ma;
		dcl += p->discharge_current_limit_ma;
	}
	set_by[OBSERVER_LIMIT_CVL] = limit_source(b->charge_voltage_limit_mv, have, cvl,
						  c->max_charge_voltage_mv, false,
						  br->safety.cvl_by);
	set_by[OBSERVER_LIMIT_DVL] = b->discharge_voltage_limit_mv == c->min_discharge_voltage_mv
					     ? "floor"
				     : have && b->discharge_voltage_limit_mv == dvl ? "bms"
										    : "rules";
	set_by[OBSERVER_LIMIT_CCL] = limit_source(b->charge_current_limit_ma, have,
						  ccl > UINT32_MAX ? UINT32_MAX : (uint32_t)ccl,
						  c->max_charge_current_ma, br->safety.ccl_ramped,
						  br->safety.ccl_by);
	set_by[OBSERVER_LIMIT_DCL] = limit_source(b->discharge_current_limit_ma, have,
						  dcl > UINT32_MAX ? UINT32_MAX : (uint32_t)dcl,
						  c->max_discharge_current_ma, br->safety.dcl_ramped,
						  br->safety.dcl_by);
}

/*
 * Tell every observer about the evaluation at @now (observer.h). The
 * transition, if any, is in @sev; @tx says what went on the wire.
 */
static void observe(struct bridge *br, uint64_t now, enum observer_cause cause,
		    const struct safety_event *sev, const struct observer_tx *tx)
{
	static const struct observer_tx nothing = { .kind = OBSERVER_WIRE_NONE };
	struct observer_evaluation ev = {
		.now_usec = now,
		.cause = cause,
		.state = &br->state,
		.decision = {
			.mode = br->mode,
			.reason = br->safety.reason,
			.transition = sev,
			.conflict = br->safety.conflict,
			.rejected = br->safety.rejected,
			.last_rejected = br->safety.last_rejected,
		},
		.tx = tx ? *tx : nothing,
		.status = status_line,
		.status_data = br,
		.port_status = port_status,
		.inverter_present = br->inverter_present,
		.inverter_heard_usec = br->inverter_seen_usec,
	};
	struct inverter_link_stats link;
	uint32_t online = 0;

	if (!br->observers) {
		return;
	}
	if (cause == OBSERVER_CAUSE_TICK && br->output && br->output_ops->stats) {
		br->output_ops->stats(br->output, &link);
		ev.inverter_stats = &link;
	}
	for (unsigned i = 0; i < br->state.pack_count && i < BATTERY_PACKS_MAX; i++) {
		if (br->safety.pk[i].online) {
			online |= 1u << i;
		}
	}
	ev.decision.packs_online_mask = online;
	limit_sources(br, online, ev.decision.set_by);

	for (struct observer *o = br->observers; o; o = o->next) {
		if (o->ops->evaluated) {
			o->ops->evaluated(o, &ev);
		}
	}
}

static void observe_configured(struct bridge *br, uint64_t now, bool restarted)
{
	struct observer_config ev = {
		.now_usec = now,
		.restarted = restarted,
		.protocol = br->proto->name,
		.driver = br->driver->name,
		.status_interval_usec = br->cfg.daemon.status_interval_usec,
		.transport = br->output_ops->name,
		.inverter_port = br->cfg.inverter.port,
		.bms_port = br->cfg.bms.port,
		.pack_count = br->state.pack_count,
		.pack_addresses = br->cfg.bms.n_addresses >= br->state.pack_count ? br->cfg.bms.addresses
										   : NULL,
	};

	for (struct observer *o = br->observers; o; o = o->next) {
		if (o->ops->configured) {
			o->ops->configured(o, &ev);
		}
	}
}

static void observe_link(struct bridge *br, const struct observer_link_event *ev)
{
	for (struct observer *o = br->observers; o; o = o->next) {
		if (o->ops->link) {
			o->ops->link(o, ev);
		}
	}
}

void bridge_observer_add(struct bridge *br, struct observer *o)
{
	struct observer **p = &br->observers;

	while (*p) {
		p = &(*p)->next;
	}
	o->next = NULL;
	*p = o;
}

void bridge_observer_remove(struct bridge *br, struct observer *o)
{
	for (struct observer **p = &br->observers; o && *p; p = &(*p)->next) {
		if (*p == o) {
			*p = o->next;
			o->next = NULL;
			return;
		}
	}
}

/* Return: 0 if the output took the frames, a negative errno if not. */
static int send_frames(struct bridge *br, const struct can_frame *frames, size_t n,
		       uint64_t now)
{
	int r;

	if (n == 0 || !br->output_ops->send) {
		return 0;
	}
	r = br->output_ops->send(br->output, frames, n, now);
	if (r < 0) {
		log_debug("output refused %zu frames: %s", n, strerror(-r));
		return r;
	}
	br->frames_sent += n;
	br->last_tx_usec = now;
	return 0;
}

/* Encode and send the protocol's whole set; @tx: what went out (frames in @tx_buf). */
static void send_full_set(struct bridge *br, uint64_t now, struct observer_tx *tx,
			  struct can_frame *frames)
{
	int n;

	if (!mode_sends(br->mode) || !br->proto->encode) {
		return;
	}
	n = br->proto->encode(&br->cfg.inverter.options, &br->state, now, frames,
			      PROTOCOL_FRAMES_MAX);
	if (n < 0) {
		log_debug("%s encoder: %s", br->proto->name, strerror(-n));
		return;
	}
	*tx = (struct observer_tx){ .kind = OBSERVER_WIRE_SET, .frames = frames,
				    .n_frames = (size_t)n };
	tx->error = send_frames(br, frames, (size_t)n, now);
	if (tx->error < 0) {
		return; /* the inverter learnt nothing: keep comparing with the last set */
	}
	br->sent = br->state;
	br->sets_sent++;
}

/*
 * A lowered limit or a new alarm must not wait for the period: compare the
 * bank with what the inverter was last told and send what is urgent. What
 * the inverter was told moves on only when the output took the frames, so
 * a refused send is tried again at the next evaluation, not forgotten.
 */
static void send_urgent(struct bridge *br, uint64_t now, struct observer_tx *tx,
			struct can_frame *frames)
{
	int n;

	if (!mode_sends(br->mode) || br->sets_sent == 0 || !br->proto->encode_urgent ||
	    br->proto->schedule != PROTOCOL_SCHEDULE_PERIODIC) {
		return;
	}
	n = br->proto->encode_urgent(&br->cfg.inverter.options, &br->sent, &br->state, now, frames,
				     PROTOCOL_FRAMES_MAX);
	if (n <= 0) {
		return;
	}
	*tx = (struct observer_tx){ .kind = OBSERVER_WIRE_URGENT, .frames = frames,
				    .n_frames = (size_t)n };
	tx->error = send_frames(br, frames, (size_t)n, now);
	if (tx->error == 0) {
		br->urgent_frames_sent += (uint64_t)n;
		/* the inverter now knows the new values: compare against them next */
		br->sent.bank = br->state.bank;
	}
}

/* evaluate, send what is urgent, tell the observers */
static void evaluate_urgent(struct bridge *br, uint64_t now, enum observer_cause cause)
{
	struct can_frame frames[PROTOCOL_FRAMES_MAX];
	struct observer_tx tx = { .kind = OBSERVER_WIRE_NONE };
	struct safety_event ev;

	evaluate(br, now, &ev);
	send_urgent(br, now, &tx, frames);
	observe(br, now, cause, &ev, &tx);
}

static void bridge_bms_updated(struct bridge *br)
{
	uint64_t now = bridge_now(br);

	br->bms_updates++;
	/*
	 * Once per decoded frame, not per receive batch: each frame of a
	 * recvmmsg() batch is judged and, if urgent, sent before the next.
	 */
	evaluate_urgent(br, now, OBSERVER_CAUSE_BMS);
}

static void inverter_link(struct bridge *br, bool up, uint64_t now, uint64_t last_heard)
{
	struct observer_link_event ev = {
		.link = OBSERVER_LINK_INVERTER,
		.up = up,
		.now_usec = now,
		.last_heard_usec = last_heard,
		.timeout_usec = br->inverter_timeout_usec,
		.protocol = br->proto->name,
		.transport_can = br->proto->transport == PROTOCOL_TRANSPORT_CAN,
	};

	observe_link(br, &ev);
}

static void bridge_inverter_heard(struct bridge *br, uint64_t now_usec)
{
	uint64_t last = br->inverter_seen_usec;
	bool was = br->inverter_present;

	br->inverter_present = true;
	br->inverter_seen_usec = now_usec;
	if (!was) {
		inverter_link(br, true, now_usec, last);
	}
}

static void bridge_inverter_request(struct bridge *br, uint64_t now_usec)
{
	struct can_frame frames[PROTOCOL_FRAMES_MAX];
	struct observer_tx tx = { .kind = OBSERVER_WIRE_NONE };
	struct safety_event ev;

	bridge_inverter_heard(br, now_usec);
	evaluate(br, now_usec, &ev);
	send_full_set(br, now_usec, &tx, frames);
	observe(br, now_usec, OBSERVER_CAUSE_REQUEST, &ev, &tx);
}

static const struct battery_state *bridge_output_state(struct bridge *br, uint64_t now_usec)
{
	struct safety_event ev;
	enum safety_mode mode = evaluate(br, now_usec, &ev);

	/* the answer itself is bytes the output writes after this: no frames here */
	observe(br, now_usec, OBSERVER_CAUSE_POLL, &ev, NULL);
	return mode_sends(mode) ? &br->state : NULL;
}

void bridge_status(struct bridge *br, char *buf, size_t n)
{
	char in[96] = "", out[96] = "", inv[64], last[32];
	uint64_t now = bridge_now(br);
	int len;

	if (br->input && br->input_ops->status) {
		br->input_ops->status(br->input, in, sizeof(in));
	}
	if (br->output && br->output_ops->status) {
		br->output_ops->status(br->output, out, sizeof(out));
	}
	if (br->cfg.inverter.output == OUTPUT_KIND_CANDUMP) {
		snprintf(inv, sizeof(inv), "no inverter (candump)");
	} else if (br->inverter_present) {
		snprintf(inv, sizeof(inv), "inverter present");
	} else if (br->inverter_seen_usec) {
		snprintf(inv, sizeof(inv), "inverter silent %llu s",
			 (unsigned long long)((now - br->inverter_seen_usec) / USEC_PER_SEC));
	} else {
		snprintf(inv, sizeof(inv), "inverter not heard yet");
	}
	if (br->last_tx_usec == 0) {
		snprintf(last, sizeof(last), "none yet");
	} else {
		snprintf(last, sizeof(last), "%.1f s ago",
			 (double)(now - br->last_tx_usec) / USEC_PER_SEC);
	}
	len = snprintf(buf, n, "BMS %s: %s; %s: %s; %s; last frame %s", safety_mode_name(br->mode),
		       in, br->proto->name, out, inv, last);
	if (br->mqtt && len > 0 && (size_t)len < n) {
		struct mqtt_stats st;
		char mqtt[192];

		mqtt_client_stats(br->mqtt, &st);
		mqtt_stats_phrase(&st, now, mqtt, sizeof(mqtt));
		snprintf(buf + len, n - (size_t)len, "; %s", mqtt);
	}
}

/* a port opened or closed since the last call: a link event */
static void port_links(struct bridge *br)
{
	struct observer_link_event ev = { .now_usec = bridge_now(br), .protocol = br->proto->name };

	if (br->in_ctx.open != br->input_link_up) {
		br->input_link_up = br->in_ctx.open;
		ev.link = OBSERVER_LINK_INPUT;
		ev.up = br->in_ctx.open;
		observe_link(br, &ev);
	}
	if (br->out_ctx.open != br->output_link_up) {
		br->output_link_up = br->out_ctx.open;
		ev.link = OBSERVER_LINK_OUTPUT;
		ev.up = br->out_ctx.open;
		observe_link(br, &ev);
	}
}

static void bridge_port_ready(struct bridge *br)
{
	char status[256];

	port_links(br);
	if (br->ready_sent || !br->in_ctx.open || !br->out_ctx.open) {
		return;
	}
	br->ready_sent = true;
	bridge_status(br, status, sizeof(status));
	notify_ready(status);
	log_info("Ready: %s", status);
}

static void check_presence(struct bridge *br, uint64_t now)
{
	if (br->inverter_present && now - br->inverter_seen_usec > br->inverter_timeout_usec) {
		br->inverter_present = false;
		inverter_link(br, false, now, br->inverter_seen_usec);
	}
}

/*
 * The next tick: one period after this one was due (no drift), but never
 * in the past. After a stall (SIGSTOP, a frozen VM) the ticks missed are
 * not caught up: the tick running now has just sent a set, the next comes
 * one period later (max(due + period, now + period) in the missed case; the
 * plain max(due + period, now) would fire a second set at once).
 */
uint64_t bridge_next_tick_usec(uint64_t due_usec, uint64_t period_usec, uint64_t now_usec)
{
	uint64_t next = due_usec + period_usec;

	return next > now_usec ? next : now_usec + period_usec;
}

static int tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct bridge *br = userdata;
	uint64_t now = bridge_now(br);
	struct can_frame frames[PROTOCOL_FRAMES_MAX];
	struct observer_tx tx = { .kind = OBSERVER_WIRE_NONE };
	struct safety_event ev;

	/* presence first: the status line of this tick (an observer) shows it */
	check_presence(br, now);
	evaluate(br, now, &ev);
	if (br->proto->transport == PROTOCOL_TRANSPORT_CAN &&
	    br->proto->schedule == PROTOCOL_SCHEDULE_PERIODIC) {
		send_full_set(br, now, &tx, frames);
	}
	observe(br, now, OBSERVER_CAUSE_TICK, &ev, &tx);
	return sd_event_source_set_time(s, bridge_next_tick_usec(usec, br->tick_usec, now));
}

static const struct input_ops *input_for(const struct bms_driver *d)
{
	switch (d->transport) {
	case BMS_TRANSPORT_SIM:
		return &input_sim_ops;
	case BMS_TRANSPORT_CAN:
		return &input_can_ops;
	case BMS_TRANSPORT_SERIAL:
		return &input_serial_ops;
	case BMS_TRANSPORT_FILE:
		return &input_replay_ops;
	}
	return NULL;
}

static const struct output_ops *output_for(enum output_kind kind)
{
	switch (kind) {
	case OUTPUT_KIND_CAN:
		return &output_can_ops;
	case OUTPUT_KIND_RS485:
		return &output_rs485_ops;
	case OUTPUT_KIND_CANDUMP:
		return &output_candump_ops;
	}
	return NULL;
}

/* ---- what the adapters see of the bridge (include/adapter.h) ---------------- */

static uint64_t in_now(struct input_ctx *ctx)
{
	return bridge_now(container_of(ctx, struct bridge, in_ctx));
}

static void in_updated(struct input_ctx *ctx)
{
	bridge_bms_updated(container_of(ctx, struct bridge, in_ctx));
}

static void in_port_changed(struct input_ctx *ctx)
{
	bridge_port_ready(container_of(ctx, struct bridge, in_ctx));
}

static const struct input_up input_up = {
	.now = in_now,
	.updated = in_updated,
	.port_changed = in_port_changed,
};

static uint64_t out_now(struct output_ctx *ctx)
{
	return bridge_now(container_of(ctx, struct bridge, out_ctx));
}

static void out_port_changed(struct output_ctx *ctx)
{
	bridge_port_ready(container_of(ctx, struct bridge, out_ctx));
}

static void out_heard(struct output_ctx *ctx, uint64_t now_usec)
{
	bridge_inverter_heard(container_of(ctx, struct bridge, out_ctx), now_usec);
}

static void out_request(struct output_ctx *ctx, uint64_t now_usec)
{
	bridge_inverter_request(container_of(ctx, struct bridge, out_ctx), now_usec);
}

static const struct battery_state *out_answer_state(struct output_ctx *ctx, uint64_t now_usec)
{
	return bridge_output_state(container_of(ctx, struct bridge, out_ctx), now_usec);
}

static void out_answered(struct output_ctx *ctx, size_t n, uint64_t now_usec)
{
	struct bridge *br = container_of(ctx, struct bridge, out_ctx);

	br->last_tx_usec = now_usec;
	br->frames_sent += n;
}

static bool out_may_send(struct output_ctx *ctx)
{
	return mode_sends(container_of(ctx, struct bridge, out_ctx)->mode);
}

static const struct output_up output_up = {
	.now = out_now,
	.port_changed = out_port_changed,
	.heard = out_heard,
	.request = out_request,
	.answer_state = out_answer_state,
	.answered = out_answered,
	.may_send = out_may_send,
};

static void bridge_stop(struct bridge *br)
{
	br->tick_timer = sd_event_source_disable_unref(br->tick_timer);
	if (br->input) {
		br->input = br->input_ops->free(br->input);
	}
	if (br->output) {
		br->output = br->output_ops->free(br->output);
	}
	br->in_ctx.open = br->out_ctx.open = false;
}

/* Open both sides with br->cfg; on failure everything opened is closed again. */
static int bridge_start(struct bridge *br)
{
	uint64_t now = bridge_now(br);
	int r;

	br->proto = protocol_find(br->cfg.inverter.protocol);
	br->driver = bms_driver_find(br->cfg.bms.driver);
	if (!br->proto || !br->driver) {
		/* config_load() checked both: only a programming error gets here */
		return log_error_errno(-EINVAL, "Unknown protocol '%s' or BMS driver '%s'",
				       br->cfg.inverter.protocol, br->cfg.bms.driver);
	}
	br->input_ops = input_for(br->driver);
	br->output_ops = output_for((enum output_kind)br->cfg.inverter.output);
	if (!br->input_ops || !br->output_ops) {
		return log_error_errno(-EOPNOTSUPP, "BMS driver '%s' or output kind not built in",
				       br->driver->name);
	}

	battery_state_init(&br->state, br->cfg.bms.n_addresses ? br->cfg.bms.n_addresses : 1);
	br->sent = br->state;
	safety_init(&br->safety, &br->cfg.safety, br->proto);
	br->mode = SAFETY_MODE_NOT_READY;
	br->sets_sent = 0;
	br->inverter_present = false;
	br->inverter_seen_usec = 0;
	br->inverter_timeout_usec = br->cfg.inverter.inverter_timeout_usec
						? br->cfg.inverter.inverter_timeout_usec
					: br->proto->inverter_timeout_usec
						? br->proto->inverter_timeout_usec
						: BRIDGE_DEFAULT_INVERTER_TIMEOUT_USEC;
	br->tick_usec = br->proto->transport == PROTOCOL_TRANSPORT_CAN &&
					br->proto->schedule == PROTOCOL_SCHEDULE_PERIODIC &&
					br->proto->period_usec
				? br->proto->period_usec
				: USEC_PER_SEC;

	br->in_ctx = (struct input_ctx){ .event = br->event, .cfg = &br->cfg.bms,
					 .driver = br->driver, .state = &br->state, .up = &input_up };
	br->out_ctx = (struct output_ctx){ .event = br->event, .cfg = &br->cfg.inverter,
					   .proto = br->proto,
					   .inverter_timeout_usec = br->inverter_timeout_usec,
					   .up = &output_up };
	r = br->output_ops->open(&br->out_ctx, &br->output);
	if (r < 0) {
		bridge_stop(br);
		return r;
	}
	r = br->input_ops->open(&br->in_ctx, &br->input);
	if (r < 0) {
		bridge_stop(br);
		return r;
	}
	/* accuracy 1/20 of the period lets the kernel coalesce our wake-ups */
	r = sd_event_add_time(br->event, &br->tick_timer, CLOCK_MONOTONIC, now + br->tick_usec,
			      br->tick_usec / 20, tick, br);
	if (r < 0) {
		bridge_stop(br);
		return log_error_errno(r, "Failed to add the tick timer: %s", strerror(-r));
	}
	sd_event_source_set_exit_on_failure(br->tick_timer, true);
	/* periodic: tick() moves the time on; a one-shot source would fire once */
	sd_event_source_set_enabled(br->tick_timer, SD_EVENT_ON);

	observe_configured(br, now, true);
	log_info("BMS: %s on %s; inverter: %s (%s) via %s %s", br->driver->name,
		 br->cfg.bms.port[0] ? br->cfg.bms.port : "-", br->proto->name,
		 br->proto->description, br->output_ops->name, br->cfg.inverter.port);
	bridge_port_ready(br);
	return 0;
}

int bridge_init(struct bridge *br, sd_event *e, const struct config *cfg)
{
	struct observer *observers = br->observers; /* added before: they stay */

	memset(br, 0, sizeof(*br));
	br->observers = observers;
	br->event = e;
	br->cfg = *cfg;
	return bridge_start(br);
}

void bridge_done(struct bridge *br)
{
	bridge_stop(br);
}

int bridge_reload(struct bridge *br, const struct config *cfg)
{
	struct config old = br->cfg;
	int r;

	if (memcmp(&old.bms, &cfg->bms, sizeof(old.bms)) == 0 &&
	    memcmp(&old.inverter, &cfg->inverter, sizeof(old.inverter)) == 0) {
		/* same ports: apply the new limits and policy in place */
		br->cfg = *cfg;
		safety_reconfigure(&br->safety, &br->cfg.safety, br->proto);
		observe_configured(br, bridge_now(br), false);
		log_notice("Configuration reloaded from %s (ports unchanged)", cfg->path);
		/* a lowered cap reaches the wire now, not at the next period */
		evaluate_urgent(br, bridge_now(br), OBSERVER_CAUSE_RELOAD);
		return 0;
	}

	bridge_stop(br);
	br->ready_sent = true; /* READY=1 after a reload is sent by the caller */
	br->cfg = *cfg;
	r = bridge_start(br);
	if (r >= 0) {
		log_notice("Configuration reloaded from %s (ports reopened)", cfg->path);
		return 0;
	}
	log_error("Cannot start with the new configuration from %s, going back to the old one",
		  cfg->path);
	br->cfg = old;
	r = bridge_start(br);
	if (r < 0) {
		return log_error_errno(r, "Cannot restart with the old configuration either");
	}
	return -EINVAL;
}
