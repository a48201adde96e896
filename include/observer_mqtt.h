/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the gateway publishes over MQTT (src/observer_mqtt.c): an observer
 * of the bridge (observer.h) that publishes through struct mqtt_sink
 * (mqtt.h). Every evaluation is reduced to a compact snapshot of integers
 * in display units (struct observer_mqtt_bank, _pack); a topic's JSON is
 * built only when that topic is due:
 *
 *	due = never published
 *	   || (snapshot changed && now - last publish >= mqtt.min_interval)
 *	   || now - last publish >= mqtt.max_silence
 *
 * at most one publish per topic per evaluation. Topics, keys, units and
 * the Home Assistant entities: bmsbridged(8) "MQTT".
 */
#include <stdbool.h>
#include <stdint.h>

#include "battery.h"
#include "mqtt.h"
#include "observer.h"
#include "safety.h"

#define OBSERVER_MQTT_REASON_MAX 96
#define OBSERVER_MQTT_NAME_MAX 32
#define OBSERVER_MQTT_PAYLOAD_MAX 4096

/* "no value": a group never received, a limit never sent; JSON null */
#define OBSERVER_MQTT_NONE INT32_MIN

/* The bank's snapshot: every number already in its published unit. */
struct observer_mqtt_bank {
	int32_t soc_pct, soh_pct;
	int32_t voltage_cv;		  /* 0.01 V */
	int32_t current_da;		  /* 0.1 A, + charging */
	int32_t power_w;		  /* + charging */
	int32_t temp_min_dc, temp_max_dc; /* 0.1 degC */
	int32_t cell_min_mv, cell_max_mv, cell_delta_mv;
	int32_t remaining_cah, full_cah; /* 0.01 Ah */
	int32_t cycles;
	/*
	 * the limits the last frames the output took were encoded from, in the
	 * wires' 0.1 V and 0.1 A, rounded as the encoders round them
	 */
	int32_t cvl_dv, dvl_dv; /* 0.1 V */
	int32_t ccl_da, dcl_da; /* 0.1 A */
	char set_by[OBSERVER_LIMIT__COUNT][12];
	int32_t mode; /* enum safety_mode */
	char reason[OBSERVER_MQTT_REASON_MAX];
	bool conflict;
	int32_t pack_count, packs_online;
	bool inverter;
	uint32_t alarms, warnings; /* enum battery_alarm bits */
};

/* One pack's snapshot. */
struct observer_mqtt_pack {
	int32_t soc_pct, soh_pct;
	int32_t voltage_cv, current_da, power_w;
	int32_t temp_min_dc, temp_max_dc, mosfet_dc;
	int32_t cell_min_mv, cell_max_mv, cell_delta_mv;
	int32_t remaining_cah, full_cah, cycles;
	uint32_t alarms, warnings;
	uint8_t cell_count; /* cells in cell_mv[]: 0 when mqtt.cells is off */
	uint16_t cell_mv[BATTERY_CELLS_MAX];
};

/* A topic's publishing state. */
struct observer_mqtt_topic {
	bool published; /* at least once (since the pack came back online) */
	bool dirty;	/* the snapshot changed since the last publish */
	uint64_t last_usec;
};

struct observer_mqtt_slot {
	uint8_t address;	 /* bus address (bms { addresses }), 1-based */
	bool online;		 /* as last published on its availability topic */
	bool have;		 /* snap holds a pack read while online */
	bool announced;		 /* its discovery is on the broker (as far as we know) */
	uint8_t cells_announced; /* cell entities on the broker */
	uint8_t cells_seen;	 /* cells the pack reported last */
	struct observer_mqtt_topic topic;
	struct observer_mqtt_pack snap;
};

struct observer_mqtt {
	struct observer base;
	struct mqtt_sink *sink;
	const struct mqtt_config *cfg;
	char base_topic[MQTT_TOPIC_MAX];
	char node[MQTT_NAME_MAX];	 /* the node id: base_topic's last level */
	char disc_prefix[MQTT_NAME_MAX]; /* discovery_prefix, as announced */
	bool names_failed;		 /* no base topic: said once */
	char driver[OBSERVER_MQTT_NAME_MAX], protocol[OBSERVER_MQTT_NAME_MAX];
	bool configured;	/* ->configured() seen: the packs are known */
	bool gateway_announced; /* the gateway's discovery is on the broker */
	uint64_t last_eval_usec;
	bool have_bank;
	struct observer_mqtt_bank bank;
	struct observer_mqtt_topic bank_topic;
	unsigned n_slots;
	struct observer_mqtt_slot slots[BATTERY_PACKS_MAX];
	/* counters (tests, bmsbridgectl) */
	uint64_t published, publish_errors, payload_bytes;
};

/**
 * observer_mqtt_init() - an observer publishing through @sink with the
 * topics and rates of @cfg, which must stay valid and may be changed in
 * place by a reload (the bridge's own copy, &br.cfg.mqtt): it is read at
 * every use, the names (base topic, node id, discovery prefix) at every
 * ->configured(), so nothing is published before the bridge's first one.
 * Sets @sink's connected hook. Return: 0, or -EINVAL.
 */
int observer_mqtt_init(struct observer_mqtt *o, struct mqtt_sink *sink,
		       const struct mqtt_config *cfg);

/**
 * observer_mqtt_stop() - every pack's availability "offline" (the client's
 * last will covers the gateway), before the client is freed.
 */
void observer_mqtt_stop(struct observer_mqtt *o);
