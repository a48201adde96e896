/* SPDX-License-Identifier: MIT */
/*
 * sd_notify(3) messages. STATUS= is sent only when its text changed, so a
 * steady daemon does not wake systemd every second.
 */
#include <stdio.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#define LOG_MODULE "notify"
#include "log.h"
#include "notify.h"

static char last_status[256];

void notify_ready(const char *status)
{
	snprintf(last_status, sizeof(last_status), "%s", status);
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void notify_reloading(void)
{
	sd_notify(0, "RELOADING=1\nSTATUS=Reloading configuration");
}

void notify_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
}

void notify_status(const char *status)
{
	if (strcmp(status, last_status) == 0) {
		return;
	}
	snprintf(last_status, sizeof(last_status), "%s", status);
	sd_notifyf(0, "STATUS=%s", status);
}
