/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Observers of the bridge: whatever wants to watch the gateway without
 * taking part in it (the log, the STATUS= line; next D-Bus, MQTT,
 * metrics). An observer is one file against this header:
 *
 *	struct my_observer {
 *		struct observer base;	// ops and the bridge's list link
 *		... its own state ...
 *	};
 *	static void my_evaluated(struct observer *o, const struct observer_evaluation *ev)
 *	{
 *		struct my_observer *m = container_of(o, struct my_observer, base);
 *		...
 *	}
 *	static const struct observer_ops my_ops = { .name = "my", .evaluated = my_evaluated };
 *
 * and one call, bridge_observer_add(), where the daemon is wired (main.c).
 *
 * After every evaluation of the safety layer (per BMS frame, per tick,
 * per inverter request or poll, after a reload: bmsbridge-safety(7)), and
 * after the frames that evaluation caused went out (or were refused),
 * each observer in the order added gets one struct observer_evaluation:
 * the new state, the safety decision and what went on the wire. Link
 * events (the BMS port, the inverter port, the inverter itself coming and
 * going) come through ->link(). Everything pointed to is valid during the
 * call only, and read-only. Observers run on the loop, in the hot path of
 * every BMS frame: they must not block, and should do their real work
 * (a D-Bus signal, an MQTT publish) at their own rate.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/can.h>

#include "battery.h"
#include "link_stats.h"
#include "log.h"
#include "safety.h"

/* what made the bridge evaluate */
enum observer_cause {
	OBSERVER_CAUSE_BMS,	/* the input wrote new BMS data */
	OBSERVER_CAUSE_TICK,	/* the periodic tick (the protocol's period, or 1 s) */
	OBSERVER_CAUSE_REQUEST, /* the inverter asked for the whole set (Growatt 0x301) */
	OBSERVER_CAUSE_POLL,	/* an RS485 poll is about to be answered */
	OBSERVER_CAUSE_RELOAD,	/* a reload changed the settings in place */
};

/* what the evaluation put on the wire */
enum observer_wire {
	OBSERVER_WIRE_NONE,   /* nothing (not due, nothing urgent, or the mode sends nothing) */
	OBSERVER_WIRE_URGENT, /* urgent frames: a lowered limit, a new alarm */
	OBSERVER_WIRE_SET,    /* the protocol's whole set */
};

/* the four limits of the bank, in observer_decision.set_by[] */
enum observer_limit {
	OBSERVER_LIMIT_CVL,
	OBSERVER_LIMIT_DVL,
	OBSERVER_LIMIT_CCL,
	OBSERVER_LIMIT_DCL,
	OBSERVER_LIMIT__COUNT,
};

/* The safety layer's decision at this evaluation. */
struct observer_decision {
	enum safety_mode mode;
	const char *reason; /* why this mode is in force ("first complete read ...") */
	/* a transition at this evaluation (.changed), with its reason; at most one */
	const struct safety_event *transition;
	const char *conflict; /* "DVL ... >= CVL ...: ..." while nothing may flow; "" if none */
	uint64_t rejected;    /* implausible values rejected so far */
	const char *last_rejected; /* the last of them in words */
	/*
	 * which rule set each limit of state->bank (enum observer_limit):
	 * "bms", "cap", "floor", "rules" (taper, derate or ramp), "comm-loss",
	 * "conflict", "none" (nothing sent)
	 */
	const char *set_by[OBSERVER_LIMIT__COUNT];
	uint32_t packs_online_mask; /* bit i: packs[i] fresh and complete */
};

/* What went on the wire because of this evaluation. */
struct observer_tx {
	enum observer_wire kind;
	const struct can_frame *frames; /* the frames encoded (kind != NONE) */
	size_t n_frames;
	int error; /* 0: the output took them; a negative errno: refused */
};

struct observer_evaluation {
	uint64_t now_usec; /* the loop time of the evaluation */
	enum observer_cause cause;
	const struct battery_state *state; /* packs[] as read, bank as decided */
	struct observer_decision decision;
	struct observer_tx tx;
	/* the one-line status ("BMS normal: ...; pylontech: ...") into @buf */
	void (*status)(const struct observer_evaluation *ev, char *buf, size_t n);
	void *status_data; /* the bridge's, for ->status() */
	/* the BMS port's (@inverter false) or the inverter port's own phrase into @buf */
	void (*port_status)(const struct observer_evaluation *ev, bool inverter, char *buf,
			    size_t n);
	bool inverter_present;	      /* heard within its timeout */
	uint64_t inverter_heard_usec; /* when it was last heard (0: never) */
	/* the inverter link's counters: on OBSERVER_CAUSE_TICK only, else NULL */
	const struct inverter_link_stats *inverter_stats;
};

enum observer_link {
	OBSERVER_LINK_INPUT,	/* the BMS port (open / closed) */
	OBSERVER_LINK_OUTPUT,	/* the inverter port (open / closed) */
	OBSERVER_LINK_INVERTER, /* the inverter itself (heard / silent) */
};

struct observer_link_event {
	enum observer_link link;
	bool up;
	uint64_t now_usec;
	/* OBSERVER_LINK_INVERTER: when it was last heard before (0: never), its timeout */
	uint64_t last_heard_usec;
	uint64_t timeout_usec;
	const char *protocol; /* the inverter protocol's name */
	bool transport_can;   /* the inverter talks CAN (its silence is ours to say) */
};

/* The bridge (re)started with a configuration, or took new settings in place. */
struct observer_config {
	uint64_t now_usec;
	bool restarted;		       /* ports (re)opened: counters and periods start again */
	const char *protocol;	       /* the inverter protocol's name */
	const char *driver;	       /* the BMS driver's name */
	uint64_t status_interval_usec; /* daemon { status_interval_s } */
	const char *transport;	       /* the inverter output: "can", "rs485", "candump" */
	const char *inverter_port;     /* inverter { port } */
	const char *bms_port;	       /* bms { port } */
	unsigned pack_count;	       /* packs the BMS input reads */
	const uint8_t *pack_addresses; /* packs[i]'s bus address (bms { addresses }); NULL: i + 1 */
};

struct observer;

struct observer_ops {
	const char *name;
	/* after every evaluation; NULL: not interested */
	void (*evaluated)(struct observer *o, const struct observer_evaluation *ev);
	/* a link came up or went down; NULL: not interested */
	void (*link)(struct observer *o, const struct observer_link_event *ev);
	/* the bridge started or was reconfigured; NULL: not interested */
	void (*configured)(struct observer *o, const struct observer_config *ev);
};

/* The base every observer embeds (container_of() gets the observer back). */
struct observer {
	const struct observer_ops *ops;
	struct observer *next; /* the bridge's list; owned by the bridge */
};

struct bridge;

/**
 * bridge_observer_add() - @o gets every evaluation and link event from now
 * on, after the observers added before it. @o must outlive the bridge (or
 * be removed first). Observers added before bridge_init() stay.
 */
void bridge_observer_add(struct bridge *br, struct observer *o);

/**
 * bridge_observer_remove() - @o gets nothing more; NULL-safe.
 */
void bridge_observer_remove(struct bridge *br, struct observer *o);

/* The first two users (src/observer_log.c, src/observer_status.c). */

/*
 * The log: safety transitions, limit cuts, DVL >= CVL conflicts, rejected
 * values, packs online, the ports and the inverter coming and going; each
 * event kind with its MESSAGE_ID and BMSBRIDGE_* fields (log.h).
 */
struct observer_log {
	struct observer base;
	uint64_t rejected_seen;	      /* safety's rejected count already logged */
	bool conflict_logged;	      /* the conflict already said */
	struct ratelimit rejected_rl; /* "implausible value rejected" lines */
	bool have_limits;	      /* the limits below are from an earlier evaluation */
	uint32_t ccl_ma, dcl_ma;      /* the bank's limits at the last evaluation */
	struct ratelimit cut_rl;      /* "limit cut" lines (a taper cuts at every step) */
	int packs_online;	      /* the bank's packs_online at the last evaluation, -1: none */
};

void observer_log_init(struct observer_log *o);

/* The STATUS= line (and its debug-log copy), refreshed on the tick every status_interval. */
struct observer_status {
	struct observer base;
	uint64_t interval_usec;
	uint64_t last_usec;
};

void observer_status_init(struct observer_status *o);

/*
 * The D-Bus view (src/observer_dbus.c): org.bmsbridge.Gateway1 on the
 * system bus, on the bridge's loop; a snapshot taken at every evaluation,
 * PropertiesChanged at most every OBSERVER_DBUS_FLUSH_USEC. No system bus:
 * said once, and the daemon goes on without it.
 */
#define OBSERVER_DBUS_NAME "org.bmsbridge.Gateway1"
#define OBSERVER_DBUS_PATH "/org/bmsbridge/Gateway1"
#define OBSERVER_DBUS_FLUSH_USEC UINT64_C(500000) /* at most 2 signals a second */
#define OBSERVER_DBUS_FRAMES_MAX 32

struct sd_bus;
struct sd_bus_slot;
struct sd_event;
struct sd_event_source;
struct observer_dbus;

/* one pack's object, /org/bmsbridge/Gateway1/pack/<address> */
struct observer_dbus_pack {
	struct battery_pack pack;
	struct observer_dbus *owner;
	uint8_t address; /* the pack's number, 1-based */
	bool online;
	uint16_t cell_delta_mv;
	struct sd_bus_slot *slot;
};

struct observer_dbus {
	struct observer base;
	struct sd_bus *bus;
	struct sd_event *event;
	struct sd_event_source *flush;
	struct sd_bus_slot *slot;
	bool flush_armed;
	bool dirty; /* the gateway's properties changed since the last signal */
	uint32_t dirty_packs;
	unsigned pack_objects;			   /* packs[] registered on the bus */
	uint8_t pack_addresses[BATTERY_PACKS_MAX]; /* of the registered packs */
	uint64_t start_usec;
	/* the gateway */
	char version[32];
	char config_path[256];
	char protocol[32], driver[32], transport[16];
	char inverter_port[64], bms_port[64];
	char inverter_status[160], bms_status[160];
	/* the decision */
	char mode[16], reason[96], conflict[96], last_rejected[96];
	uint64_t rejected;
	char set_by[OBSERVER_LIMIT__COUNT][24];
	struct battery_pack bank;
	uint8_t pack_count, packs_online;
	/* the wire */
	char wire_kind[8];
	uint64_t wire_usec;
	int32_t wire_error;
	struct battery_pack wire; /* the bank the last frames were encoded from */
	struct can_frame frames[OBSERVER_DBUS_FRAMES_MAX];
	uint32_t n_frames;
	/* the inverter */
	bool inverter_present, inverter_port_open, bms_port_open;
	uint64_t inverter_heard_usec;
	struct inverter_link_stats link;
	char bus_state[24];
	struct observer_dbus_pack packs[BATTERY_PACKS_MAX];
};

/**
 * observer_dbus_start() - connect to the system bus, take the name and
 * publish on @e. Return: 0, or a negative errno when there is no bus
 * (logged once; the observer then stays quiet).
 */
int observer_dbus_start(struct observer_dbus *o, struct sd_event *e, const char *config_path);

/**
 * observer_dbus_stop() - leave the bus without flushing (never blocks).
 */
void observer_dbus_stop(struct observer_dbus *o);
