/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * bmsbridgectl's commands that talk to the running daemon over the system
 * bus (src/ctl_bus.c) and look at the system (src/ctl_diagnose.c).
 * Each returns the exit status: 0, 1 (failed, said), 3 (no daemon).
 */
#include <stdbool.h>

struct json_object;
struct sd_bus;

#define CTL_EXIT_NO_DAEMON 3

/* status: one screen, or --json */
int ctl_status(bool json);

/* watch: one line per change, or a refreshing view on a terminal */
int ctl_watch(void);

/* diagnose: the checklist; @config: the daemon's file (NULL: the daemon's own, or the default) */
int ctl_diagnose(const char *config);

/**
 * ctl_bus_snapshot() - everything the daemon publishes, as
 * {"gateway": {Property: value...}, "packs": [{...}...]}.
 * Return: the object (json_object_put() it), or NULL with @ret_err set to
 * a negative errno (-ENOENT / -ECONNREFUSED: no bus, -ESRCH: no daemon).
 */
struct json_object *ctl_bus_snapshot(struct sd_bus *bus, int *ret_err);

/* the system bus, or NULL with the reason printed when @say */
struct sd_bus *ctl_bus_open(bool say, int *ret_err);
