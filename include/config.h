/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The configuration: /etc/bmsbridge.conf (libconfig syntax), parsed ONCE
 * into struct config, every value range-checked, unknown keys rejected.
 *
 * The parser is table-driven: each group of the file has a table of
 * struct conf_key (name, type, range, default, unit, offset into its C
 * struct). config.c walks the tables; modules own their tables
 * (src/config.c: daemon, bms, inverter; src/safety.c: safety), so adding a
 * key is one line in one table plus one line in bmsbridge.conf(5).
 *
 * Units: the file speaks in the unit its key name ends with (_mv, _a, _ms,
 * _s, _c, _pct); CONF_KEY_* with a scale store it in the internal unit of
 * the field (e.g. _a * 1000 into a _ma field, _ms * 1000 into a _usec field).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "battery.h"
#include "build-config.h"
#include "conf_key.h"
#include "mqtt.h"
#include "protocol.h"
#include "safety.h"

/* sysconfdir as configured (meson setup --sysconfdir=/etc), from build-config.h */
#define CONFIG_DEFAULT_PATH SYSCONFDIR "/bmsbridge.conf"
#define CONFIG_NAME_MAX 32
#define CONFIG_PATH_MAX 256
/* the largest configuration file read; a real one is a few KiB */
#define CONFIG_FILE_MAX (1024 * 1024)

struct conf_group {
	const char *name; /* group name in the file; "" = top level */
	const struct conf_key *keys;
	size_t n_keys;
	size_t offset; /* of the group's struct inside struct config */
};

enum log_target {
	LOG_TARGET_AUTO,    /* journald prefixes when JOURNAL_STREAM says so */
	LOG_TARGET_CONSOLE, /* plain */
	LOG_TARGET_JOURNAL, /* always <N> prefixes */
};

/* top level keys */
struct daemon_config {
	int log_level; /* syslog level LOG_EMERG..LOG_DEBUG, from "emerg".."debug" */
	uint64_t status_interval_usec; /* how often STATUS= and the status log line refresh */
	bool dbus; /* publish the state on the system bus (org.bmsbridge.Gateway1) */
};

/* bms { ... } */
struct bms_config {
	char driver[CONFIG_NAME_MAX]; /* bms_driver name */
	char port[CONFIG_PATH_MAX];   /* can0, /dev/ttyUSB0, or a candump log for replay */
	uint32_t baud;		      /* serial; 0 = driver default */
	uint32_t bitrate;	      /* CAN; 0 = driver default */
	bool manage_link;	      /* CAN: set bitrate and bring the link up */
	uint8_t addresses[BATTERY_PACKS_MAX]; /* Modbus pack addresses 1-15 */
	uint8_t n_addresses;
	uint64_t poll_interval_usec;	/* one full round over all packs */
	uint64_t response_timeout_usec; /* per Modbus request */
	uint64_t request_gap_usec;	/* bus silence between requests */
	int read_method;		/* jk-pb: registers / trigger */
	uint32_t seed;			/* sim: PRNG seed */
	uint32_t sim_speed;		/* sim: simulated seconds per real second */
	uint8_t sim_cells;		/* sim: cells in series */
	uint32_t sim_capacity_mah;	/* sim: pack capacity */
	uint8_t sim_packs;		/* sim: packs simulated (pack i uses seed + i) */
	char replay_format[CONFIG_NAME_MAX]; /* replay: decoder for the frames */
	uint32_t replay_speed;		     /* replay: 1 = recorded speed */
	bool replay_loop;
};

enum output_kind {
	OUTPUT_KIND_CAN,     /* SocketCAN interface */
	OUTPUT_KIND_RS485,   /* serial port, the inverter polls */
	OUTPUT_KIND_CANDUMP, /* candump log lines to a file or "-" (stdout) */
};

/* inverter { ... } */
struct inverter_config {
	char protocol[CONFIG_NAME_MAX]; /* inverter_protocol name or alias */
	int output;			/* enum output_kind */
	char port[CONFIG_PATH_MAX];	/* can1, /dev/ttyAMA0, "-" or a file */
	char candump_ifname[16];	/* interface name written in candump lines */
	uint32_t baud;			/* RS485; 0 = protocol default */
	uint32_t bitrate;		/* CAN; 0 = protocol default */
	bool manage_link;
	uint64_t inverter_timeout_usec; /* 0 = protocol default */
	struct protocol_options options;
};

/* metrics { ... }: Prometheus metrics (src/observer_metrics.c) */
struct metrics_config {
	char textfile[CONFIG_PATH_MAX]; /* *.prom for node_exporter's textfile collector; "" = off */
	uint64_t interval_usec;		/* how often the file is rewritten */
	bool cells;			/* one series per cell */
	char listen[64];		/* HTTP "127.0.0.1:9585" for GET /metrics; "" = off */
};

struct config {
	char path[CONFIG_PATH_MAX]; /* file it was read from */
	struct daemon_config daemon;
	struct bms_config bms;
	struct inverter_config inverter;
	struct safety_config safety;
	struct metrics_config metrics;
	struct mqtt_config mqtt;
};

/*
 * One clear error: "file:line: setting: what is wrong". line is 0 when
 * the problem has no line (missing file, cross-key check).
 */
struct config_error {
	char file[CONFIG_PATH_MAX];
	int line;
	char setting[64];
	char text[192];
};

/**
 * config_load() - read and validate a config file.
 * @path: the file
 * @ret: filled only on success
 * @ret_err: filled only on failure
 * The file is opened without blocking and must be a regular file of at
 * most CONFIG_FILE_MAX bytes (a FIFO, a device or a directory is -EINVAL
 * at once).
 * Return: 0, -ENOENT / -EACCES (cannot read), -EINVAL (bad content, or not
 * a regular file).
 */
int config_load(const char *path, struct config *ret, struct config_error *ret_err);

/**
 * config_load_string() - the same, from a string (tests, the embedded demo).
 * @name: what error messages call the source
 */
int config_load_string(const char *name, const char *text, struct config *ret,
		       struct config_error *ret_err);

/**
 * config_error_format() - "file:line: setting: text" into @buf.
 */
void config_error_format(const struct config_error *err, char *buf, size_t n);

/**
 * config_print() - print the effective settings in libconfig syntax, with units.
 */
void config_print(const struct config *cfg, FILE *f);

/* the groups of the file, in the order --check-config prints them (src/config_keys.c) */
#define CONFIG_GROUPS 6
size_t config_groups(struct conf_group g[static CONFIG_GROUPS]);

/* The embedded demo configuration (conf/demo.conf, compiled in). */
extern const char config_demo_text[];
