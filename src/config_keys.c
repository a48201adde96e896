/* SPDX-License-Identifier: MIT */
/*
 * The key tables of bmsbridge.conf: one struct conf_key per setting of the
 * top level (the daemon), bms { } and inverter { }; safety { } is the
 * safety layer's own (src/safety.c). The engine (src/config.c) loads,
 * checks and prints through them; bmsbridge.conf(5) documents each key.
 */
#include <stddef.h>
#include <syslog.h>

#include "config.h"
#include "macro.h"
#include "safety.h"

/* jk_pb.h is not included: the read methods are named here in its order */
static const char *const read_method_names[] = { "registers", "trigger", "listen", NULL };
/* index = syslog level */
static const char *const log_level_names[] = { "emerg",	 "alert", "crit",  "error", "warning",
					       "notice", "info",  "debug", NULL };
/* index = enum output_kind */
static const char *const output_names[] = { "can", "rs485", "candump", NULL };

/* the serial port module's rates (src/serial.c): inverters 9600/19200, JK-PB 115200 */
static const int64_t baud_choices[] = { 9600, 19200, 115200, 0 };
/* the CiA bit rates; inverters use 500 kbit/s, one Victron variant 250 kbit/s */
static const int64_t bitrate_choices[] = { 10000,  20000,  50000,  100000,  125000,
					   250000, 500000, 800000, 1000000, 0 };

#define D(field) offsetof(struct daemon_config, field), sizeof(((struct daemon_config *)0)->field)
#define B(field) offsetof(struct bms_config, field), sizeof(((struct bms_config *)0)->field)
#define I(field)                                                                                   \
	offsetof(struct inverter_config, field), sizeof(((struct inverter_config *)0)->field)

/* top level: the daemon itself */
static const struct conf_key daemon_keys[] = {
	{ "log_level", CONF_ENUM, D(log_level), 0, 0, LOG_INFO, .enum_names = log_level_names },
	{ "status_interval_s", CONF_UINT, D(status_interval_usec), 1, 3600, 10,
	  .scale = USEC_PER_SEC, .unit = "s" },
	{ "dbus", CONF_BOOL, D(dbus), 0, 1, true },
};

/* bms { }: where the battery is read */
static const struct conf_key bms_keys[] = {
	{ "driver", CONF_STRING, B(driver), 1, CONFIG_NAME_MAX - 1, .def_str = "" },
	{ "port", CONF_STRING, B(port), 0, CONFIG_PATH_MAX - 1, .def_str = "" },
	{ "baud", CONF_UINT, B(baud), 0, 115200, 0, .unit = "baud", .choices = baud_choices },
	{ "bitrate", CONF_UINT, B(bitrate), 0, 1000000, 0, .unit = "bit/s",
	  .choices = bitrate_choices },
	{ "manage_link", CONF_BOOL, B(manage_link), 0, 1, false },
	/*
	 * Pack addresses, 0-127 here; each driver's own range is checked in
	 * config.c (check_addresses(): JK-PB 1-15, the serial families their
	 * bms_serial_ops range)
	 */
	{ "addresses", CONF_UINT_LIST, B(addresses), 0, 127, 1,
	  .count_offset = offsetof(struct bms_config, n_addresses) },
	{ "poll_interval_ms", CONF_UINT, B(poll_interval_usec), 100, 600000, 1000,
	  .scale = USEC_PER_MSEC, .unit = "ms" },
	{ "response_timeout_ms", CONF_UINT, B(response_timeout_usec), 20, 5000, 200,
	  .scale = USEC_PER_MSEC, .unit = "ms" },
	{ "request_gap_ms", CONF_UINT, B(request_gap_usec), 0, 5000, 100, .scale = USEC_PER_MSEC,
	  .unit = "ms" },
	{ "read_method", CONF_ENUM, B(read_method), 0, 0, 1, .enum_names = read_method_names },
	{ "seed", CONF_UINT, B(seed), 0, UINT32_MAX, 1 },
	{ "sim_speed", CONF_UINT, B(sim_speed), 1, 3600, 1, .unit = "x" },
	{ "sim_cells", CONF_UINT, B(sim_cells), 4, BATTERY_CELLS_MAX, 16, .unit = "cells" },
	{ "sim_capacity_ah", CONF_UINT, B(sim_capacity_mah), 1, 10000, 280, .scale = 1000,
	  .unit = "Ah" },
	{ "sim_packs", CONF_UINT, B(sim_packs), 1, BATTERY_PACKS_MAX, 1, .unit = "packs" },
	{ "replay_format", CONF_STRING, B(replay_format), 1, CONFIG_NAME_MAX - 1,
	  .def_str = "pylontech-can" },
	{ "replay_speed", CONF_UINT, B(replay_speed), 1, 1000, 1, .unit = "x" },
	{ "replay_loop", CONF_BOOL, B(replay_loop), 0, 1, false },
};

/* inverter { }: what the inverter is told, and where */
static const struct conf_key inverter_keys[] = {
	{ "protocol", CONF_STRING, I(protocol), 1, CONFIG_NAME_MAX - 1, .def_str = "" },
	{ "output", CONF_ENUM, I(output), 0, 0, OUTPUT_KIND_CAN, .enum_names = output_names },
	{ "port", CONF_STRING, I(port), 0, CONFIG_PATH_MAX - 1, .def_str = "" },
	{ "candump_ifname", CONF_STRING, I(candump_ifname), 1, 15, .def_str = "can0" },
	{ "baud", CONF_UINT, I(baud), 0, 115200, 0, .unit = "baud", .choices = baud_choices },
	{ "bitrate", CONF_UINT, I(bitrate), 0, 1000000, 0, .unit = "bit/s",
	  .choices = bitrate_choices },
	{ "manage_link", CONF_BOOL, I(manage_link), 0, 1, false },
	{ "inverter_timeout_s", CONF_UINT, I(inverter_timeout_usec), 0, 86400, 0,
	  .scale = USEC_PER_SEC, .unit = "s" },
	/* the seed's DIP switch 1: Voltronic/PIP only talk to pack #1 */
	{ "rs485_address", CONF_UINT, I(options.rs485_address), 1, 15, 1 },
	{ "soc_follows_limits", CONF_BOOL, I(options.soc_follows_limits), 0, 1, false },
	{ "send_dvl", CONF_BOOL, I(options.send_dvl), 0, 1, false },
	{ "manufacturer", CONF_STRING, I(options.manufacturer), 0, 8, .def_str = "" },
};

#define M(field) offsetof(struct metrics_config, field), sizeof(((struct metrics_config *)0)->field)

/* metrics { }: Prometheus metrics for node_exporter's textfile collector */
static const struct conf_key metrics_keys[] = {
	{ "textfile", CONF_STRING, M(textfile), 0, CONFIG_PATH_MAX - 1, .def_str = "" },
	{ "interval_s", CONF_UINT, M(interval_usec), 1, 3600, 15, .scale = USEC_PER_SEC,
	  .unit = "s" },
	{ "cells", CONF_BOOL, M(cells), 0, 1, true },
	{ "listen", CONF_STRING, M(listen), 0, 63, .def_str = "" },
};

#undef D
#undef B
#undef I
#undef M

#define M(field) offsetof(struct mqtt_config, field), sizeof(((struct mqtt_config *)0)->field)

/* mqtt { }: the MQTT client (src/mqtt.c) and what it publishes (src/observer_mqtt.c) */
static const struct conf_key mqtt_keys[] = {
	{ "enabled", CONF_BOOL, M(enabled), 0, 1, false },
	{ "host", CONF_STRING, M(host), 0, MQTT_HOST_MAX - 1, .def_str = "localhost" },
	{ "port", CONF_UINT, M(port), 0, 65535, 0 },
	{ "client_id", CONF_STRING, M(client_id), 0, 23, .def_str = "" },
	{ "username", CONF_STRING, M(username), 0, MQTT_NAME_MAX - 1, .def_str = "" },
	{ "password_file", CONF_STRING, M(password_file), 0, MQTT_PATH_MAX - 1, .def_str = "" },
	{ "ca_file", CONF_STRING, M(ca_file), 0, MQTT_PATH_MAX - 1, .def_str = "" },
	{ "ca_path", CONF_STRING, M(ca_path), 0, MQTT_PATH_MAX - 1, .def_str = "" },
	{ "cert_file", CONF_STRING, M(cert_file), 0, MQTT_PATH_MAX - 1, .def_str = "" },
	{ "key_file", CONF_STRING, M(key_file), 0, MQTT_PATH_MAX - 1, .def_str = "" },
	/* libmosquitto refuses a keepalive under 5 s */
	{ "keepalive_s", CONF_UINT, M(keepalive_usec), 5, 3600, 30, .scale = USEC_PER_SEC,
	  .unit = "s" },
	{ "reconnect_min_s", CONF_UINT, M(reconnect_min_usec), 1, 3600, 1, .scale = USEC_PER_SEC,
	  .unit = "s" },
	{ "reconnect_max_s", CONF_UINT, M(reconnect_max_usec), 1, 3600, 60, .scale = USEC_PER_SEC,
	  .unit = "s" },
	{ "queue_max", CONF_UINT, M(queue_max), 16, 4096, 512, .unit = "messages" },
	{ "topic_prefix", CONF_STRING, M(topic_prefix), 1, MQTT_NAME_MAX - 1,
	  .def_str = "bmsbridge" },
	{ "node_id", CONF_STRING, M(node_id), 0, MQTT_NAME_MAX - 1, .def_str = "" },
	{ "discovery", CONF_BOOL, M(discovery), 0, 1, true },
	{ "discovery_prefix", CONF_STRING, M(discovery_prefix), 1, MQTT_NAME_MAX - 1,
	  .def_str = "homeassistant" },
	{ "cells", CONF_BOOL, M(cells), 0, 1, true },
	{ "min_interval_ms", CONF_UINT, M(min_interval_usec), 100, 3600000, 1000,
	  .scale = USEC_PER_MSEC, .unit = "ms" },
	{ "max_silence_s", CONF_UINT, M(max_silence_usec), 1, 86400, 60, .scale = USEC_PER_SEC,
	  .unit = "s" },
};

#undef M

/* the groups of the file, in the order --check-config prints them */
size_t config_groups(struct conf_group g[static CONFIG_GROUPS])
{
	g[0] = (struct conf_group){ "", daemon_keys, ARRAY_SIZE(daemon_keys),
				    offsetof(struct config, daemon) };
	g[1] = (struct conf_group){ "bms", bms_keys, ARRAY_SIZE(bms_keys),
				    offsetof(struct config, bms) };
	g[2] = (struct conf_group){ "inverter", inverter_keys, ARRAY_SIZE(inverter_keys),
				    offsetof(struct config, inverter) };
	g[3] = (struct conf_group){ "safety", safety_conf_keys, safety_conf_n_keys,
				    offsetof(struct config, safety) };
	g[4] = (struct conf_group){ "metrics", metrics_keys, ARRAY_SIZE(metrics_keys),
				    offsetof(struct config, metrics) };
	g[5] = (struct conf_group){ "mqtt", mqtt_keys, ARRAY_SIZE(mqtt_keys),
				    offsetof(struct config, mqtt) };
	return CONFIG_GROUPS;
}
