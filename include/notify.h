/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Everything the daemon tells systemd (house style H12) goes through here:
 * READY=1, RELOADING=1, STOPPING=1, STATUS= one-liners. The watchdog
 * (WATCHDOG=1) is sent by sd-event itself from the loop
 * (sd_event_set_watchdog), so it proves loop liveness and nothing else.
 * Without $NOTIFY_SOCKET every call is a no-op.
 */

/**
 * notify_ready() - READY=1 and a first STATUS=.
 */
void notify_ready(const char *status);

/**
 * notify_reloading() - RELOADING=1 (SIGHUP received).
 */
void notify_reloading(void);

/**
 * notify_stopping() - STOPPING=1.
 */
void notify_stopping(void);

/**
 * notify_status() - STATUS=@status, only when it changed since the last call.
 */
void notify_status(const char *status);
