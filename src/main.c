/* SPDX-License-Identifier: MIT */
/*
 * bmsbridged: command line, configuration, signals and the event loop.
 *
 * One thread, one sd-event loop. Signals arrive as event sources (blocked
 * first, so they are never delivered asynchronously): SIGTERM and SIGINT
 * stop cleanly, SIGHUP re-reads the configuration, validates all of it into
 * a second struct config and switches only if it is valid; otherwise the
 * daemon keeps running on the old one and says why in one line. The systemd
 * watchdog is fed by sd-event itself from the loop (sd_event_set_watchdog),
 * so it proves the loop turns; stale BMS data is the safety layer's matter.
 *
 * READY=1 means "set up": both sides created and each port tried once (a
 * deferred source at idle priority, after the first attempts). A port that
 * is still missing (a USB adapter plugged in late) keeps retrying and
 * STATUS= says so; waiting for it would fail the unit on its start
 * timeout and loop on restarts.
 *
 * A reload whose new ports fail and whose old ones then fail too leaves
 * nothing running; the daemon then exits with status 1 and one line
 * saying why, and systemd (Restart=on-failure) starts it again on the
 * file as it is. Running on, empty but READY with a fed watchdog, is what
 * it must not do.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-event.h>

#include "macro.h"

#define LOG_MODULE "main"
#include "bridge.h"
#include "build-config.h"
#include "config.h"
#include "log.h"
#include "mqtt.h"
#include "notify.h"
#include "observer.h"
#include "observer_metrics.h"
#include "observer_mqtt.h"

static const char *arg_config = CONFIG_DEFAULT_PATH;
static bool arg_config_given; /* -c or a --check-config FILE */
static bool arg_demo;
static bool arg_check;
static int arg_verbose;
static const char *arg_debug;
/* the MQTT client, when mqtt { enabled = true } at start (NULL otherwise) */
static struct mqtt_client *mqtt_client;

/* every LOG_MODULE of the daemon, for -d (tests/can/test-can-link.py checks the list) */
static const char *const log_modules[] = {
	"bms_can", "bms_modbus", "bms_replay", "bms_serial", "bms_sim", "bridge", "can_bus",
	"candump", "dbus", "main", "metrics", "mqtt", "notify", "output_can", "rs485", "serial",
};

/* -d: each name must be a module, or the flag silently shows nothing */
static int check_debug_modules(const char *list)
{
	const char *p = list;

	for (;;) {
		size_t len = strcspn(p, ",");
		bool found = false;

		for (size_t i = 0; i < ARRAY_SIZE(log_modules) && len; i++) {
			found |= strlen(log_modules[i]) == len &&
				 strncmp(p, log_modules[i], len) == 0;
		}
		if (!found) {
			fprintf(stderr, "bmsbridged: -d: unknown module '%.*s'; the modules are:",
				(int)len, p);
			for (size_t i = 0; i < ARRAY_SIZE(log_modules); i++) {
				fprintf(stderr, "%s %s", i ? "," : "", log_modules[i]);
			}
			fprintf(stderr, "\n");
			return -EINVAL;
		}
		if (p[len] == '\0') {
			return 0;
		}
		p += len + 1;
	}
}

static void help(void)
{
	printf("Usage: bmsbridged [OPTIONS]\n"
	       "Gateway between a battery's BMS and a solar inverter.\n\n"
	       "  -c, --config FILE        configuration file (default %s)\n"
	       "      --check-config [FILE] validate FILE, print the effective settings, exit\n"
	       "      --demo               run the embedded demo configuration (simulated BMS,\n"
	       "                           Pylontech frames to stdout in candump format)\n"
	       "  -v, --verbose            log debug messages\n"
	       "  -d, --debug MODULES      debug messages of these modules only (a,b,...)\n"
	       "  -h, --help               this help\n"
	       "  -V, --version            version\n\n"
	       "See bmsbridged(8) and bmsbridge.conf(5).\n",
	       CONFIG_DEFAULT_PATH);
}

static int parse_argv(int argc, char **argv)
{
	enum { ARG_CHECK = 0x100, ARG_DEMO };
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, ARG_CHECK },
		{ "demo", no_argument, NULL, ARG_DEMO },
		{ "verbose", no_argument, NULL, 'v' },
		{ "debug", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:vd:hV", options, NULL)) >= 0) {
		switch (c) {
		case 'c':
			arg_config = optarg;
			arg_config_given = true;
			break;
		case ARG_CHECK:
			arg_check = true;
			break;
		case ARG_DEMO:
			arg_demo = true;
			break;
		case 'v':
			arg_verbose++;
			break;
		case 'd':
			if (check_debug_modules(optarg) < 0) {
				return -EINVAL;
			}
			arg_debug = optarg;
			break;
		case 'h':
			help();
			return 0;
		case 'V':
			printf("bmsbridged %s\n", VERSION);
			return 0;
		default:
			fprintf(stderr, "Try 'bmsbridged --help'.\n");
			return -EINVAL;
		}
	}
	/* --check-config FILE: the file may follow as a plain argument */
	if (arg_check && optind < argc) {
		arg_config = argv[optind++];
		arg_config_given = true;
	}
	if (optind < argc) {
		fprintf(stderr, "bmsbridged: unexpected argument '%s'. Try 'bmsbridged --help'.\n",
			argv[optind]);
		return -EINVAL;
	}
	return 1;
}

/* Load the configuration the command line names; one error line on failure. */
static int load_config(struct config *ret)
{
	struct config_error err;
	char msg[512];
	int r;

	if (arg_demo) {
		r = config_load_string("demo.conf (embedded)", config_demo_text, ret, &err);
	} else {
		r = config_load(arg_config, ret, &err);
		/*
		 * No file at the default place and none asked for: the embedded
		 * demo, which only writes candump lines to stdout, never to a
		 * port. A file given with -c must exist.
		 */
		if (r == -ENOENT && !arg_config_given && !arg_check) {
			log_warning("No %s: running the embedded demo (simulated BMS, frames on "
				    "stdout). Install a configuration: bmsbridge.conf(5)",
				    arg_config);
			arg_demo = true;
			r = config_load_string("demo.conf (embedded)", config_demo_text, ret, &err);
		}
	}
	if (r < 0) {
		config_error_format(&err, msg, sizeof(msg));
		log_error("%s", msg);
	}
	return r;
}

static void apply_log_level(const struct config *cfg)
{
	if (arg_verbose > 0 || arg_debug) {
		log_set_max_level(LOG_DEBUG);
	} else {
		log_set_max_level(cfg->daemon.log_level);
	}
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	log_info("Received %s, stopping", strsignal((int)si->ssi_signo));
	notify_stopping();
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct bridge *br = userdata;
	struct config *cfg;
	char status[256];
	int r;

	notify_reloading();
	log_info("Received SIGHUP, reloading %s", arg_demo ? "the demo configuration" : arg_config);
	/* struct config is large: keep it off the stack, freed right after */
	cfg = malloc(sizeof(*cfg));
	if (!cfg) {
		log_error("Out of memory while reloading, keeping the running configuration");
	} else if (load_config(cfg) < 0) {
		log_error("Reloading failed, keeping the running configuration");
	} else {
		r = bridge_reload(br, cfg);
		if (r >= 0) {
			apply_log_level(&br->cfg);
		}
		/* mqtt { }: reconnect with what changed; enabled itself is read at start */
		if (r >= 0 && mqtt_client) {
			(void)mqtt_client_reload(mqtt_client, &br->cfg.mqtt);
		}
		if (r >= 0 && br->cfg.mqtt.enabled != !!mqtt_client) {
			log_notice("mqtt.enabled is read at start only: restart the daemon to %s MQTT",
				   br->cfg.mqtt.enabled ? "start" : "stop");
		}
	}
	free(cfg);
	if (!br->tick_timer) {
		/* bridge_reload() could start neither configuration: nothing runs */
		snprintf(status, sizeof(status),
			 "Exiting: neither the new nor the old configuration could be started");
		notify_status(status);
		log_error("Cannot run with neither the new nor the old configuration of %s (see "
			  "above): exiting, so that systemd starts the daemon again",
			  arg_demo ? "the demo" : arg_config);
		return sd_event_exit(sd_event_source_get_event(s), -ENOTRECOVERABLE);
	}
	bridge_status(br, status, sizeof(status));
	notify_ready(status);
	return 0;
}

/* STATUS= with what is still retrying in front */
static void ready_status(struct bridge *br, char *buf, size_t n)
{
	char st[256];
	int k = 0;

	if (!br->in_ctx.open && br->cfg.bms.port[0]) {
		k += snprintf(buf + k, n - (size_t)k, "BMS port %s not open yet, retrying; ",
			      br->cfg.bms.port);
	}
	if (!br->out_ctx.open && (size_t)k < n) {
		k += snprintf(buf + k, n - (size_t)k, "inverter port %s not open yet, retrying; ",
			      br->cfg.inverter.port);
	}
	bridge_status(br, st, sizeof(st));
	if ((size_t)k < n) {
		snprintf(buf + k, n - (size_t)k, "%s", st);
	}
}

/*
 * Idle priority: runs once the first attempt of every port is done. Ready
 * means set up; a port still missing retries and is named in STATUS=.
 */
static int on_setup_done(sd_event_source *s, void *userdata)
{
	struct bridge *br = userdata;
	char status[512];

	if (br->ready_sent) {
		return 0;
	}
	br->ready_sent = true;
	ready_status(br, status, sizeof(status));
	notify_ready(status);
	log_info("Ready, still retrying: %s", status);
	return 0;
}

static int run(const struct config *cfg)
{
	static struct bridge br; /* one per process; static keeps it off the stack */
	static struct observer_log obs_log;
	static struct observer_status obs_status;
	static struct observer_dbus obs_dbus;
	static struct observer_metrics obs_metrics;
	static struct observer_mqtt obs_mqtt;
	bool mqtt_on = false;
	bool on_bus = false, metrics_on = false;
	sd_event_source *setup_done = NULL;
	sd_event *e = NULL;
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
		return log_error_errno(-errno, "sigprocmask: %s", strerror(errno));
	}
	signal(SIGPIPE, SIG_IGN);

	/*
	 * sd_event_new(), not sd_event_default(): the default loop is per
	 * thread, and libsystemd 252 checks the thread (gettid()) on every
	 * loop pass for it; the daemon has one loop and one thread.
	 */
	r = sd_event_new(&e);
	if (r < 0) {
		return log_error_errno(r, "Failed to allocate the event loop: %s", strerror(-r));
	}
	r = sd_event_add_signal(e, NULL, SIGTERM, on_exit_signal, NULL);
	if (r >= 0) {
		r = sd_event_add_signal(e, NULL, SIGINT, on_exit_signal, NULL);
	}
	if (r >= 0) {
		r = sd_event_add_signal(e, NULL, SIGHUP, on_sighup, &br);
	}
	if (r < 0) {
		sd_event_unref(e);
		return log_error_errno(r, "Failed to add signal handlers: %s", strerror(-r));
	}
	/* WATCHDOG=1 from the loop itself, at half of WatchdogSec= */
	r = sd_event_set_watchdog(e, true);
	if (r < 0) {
		log_warning("Cannot enable the watchdog: %s, ignoring", strerror(-r));
	}

	/* the bridge's first two observers: the log and the STATUS= line */
	observer_log_init(&obs_log);
	bridge_observer_add(&br, &obs_log.base);
	observer_status_init(&obs_status);
	bridge_observer_add(&br, &obs_status.base);
	/* the third: the system bus, unless daemon { dbus = false } (read at start only) */
	if (cfg->daemon.dbus) {
		/* the file as an absolute path, for bmsbridgectl diagnose to read */
		char *abs = arg_demo ? NULL : realpath(arg_config, NULL);

		on_bus = observer_dbus_start(&obs_dbus, e,
					     arg_demo ? "(demo)" : abs ? abs : arg_config) >= 0;
		free(abs);
	}
	if (on_bus) {
		bridge_observer_add(&br, &obs_dbus.base);
	}
	/* the fourth: Prometheus metrics, to metrics { textfile } and/or { listen } (start only) */
	if (cfg->metrics.textfile[0] || cfg->metrics.listen[0]) {
		metrics_on = observer_metrics_start(&obs_metrics, &cfg->metrics, e) >= 0;
	}
	if (metrics_on) {
		bridge_observer_add(&br, &obs_metrics.base);
	}
	/*
	 * the fifth: MQTT, unless mqtt { enabled = false } (read at start
	 * only). A setting that cannot work (a password file others can read,
	 * a missing CA file) is one error line; the gateway runs on without
	 * MQTT, as the inverter matters more than the dashboard.
	 */
	if (cfg->mqtt.enabled && mqtt_client_new(&mqtt_client, e, &cfg->mqtt) < 0) {
		log_error("MQTT is off until the setting above is fixed (then: systemctl restart "
			  "bmsbridge)");
		mqtt_client = NULL;
	}
	/*
	 * what the client carries (src/observer_mqtt.c): the state and Home
	 * Assistant discovery, named from the bridge's own settings (br.cfg,
	 * filled by bridge_init() and changed in place by a reload) at every
	 * ->configured()
	 */
	if (mqtt_client) {
		mqtt_on = observer_mqtt_init(&obs_mqtt, mqtt_client_sink(mqtt_client),
					     &br.cfg.mqtt) >= 0;
	}
	if (mqtt_on) {
		bridge_observer_add(&br, &obs_mqtt.base);
	}
	/* the client's counters in the metrics and its state in STATUS= (NULL: none) */
	obs_metrics.mqtt = metrics_on ? mqtt_client : NULL;
	r = bridge_init(&br, e, cfg);
	br.mqtt = mqtt_client;
	if (r >= 0) {
		r = sd_event_add_defer(e, &setup_done, on_setup_done, &br);
		if (r >= 0) {
			r = sd_event_source_set_priority(setup_done, SD_EVENT_PRIORITY_IDLE);
		}
		if (r < 0) {
			log_error("Failed to add the ready source: %s", strerror(-r));
		}
	}
	if (r >= 0) {
		r = sd_event_loop(e);
		if (r == -ENOTRECOVERABLE) {
			/* said by on_sighup() */
		} else if (r < 0) {
			log_error("Event loop failed: %s", strerror(-r));
		}
	}
	sd_event_source_unref(setup_done);
	bridge_done(&br);
	if (on_bus) {
		bridge_observer_remove(&br, &obs_dbus.base);
		observer_dbus_stop(&obs_dbus);
	}
	if (metrics_on) {
		bridge_observer_remove(&br, &obs_metrics.base);
		observer_metrics_stop(&obs_metrics);
	}
	if (mqtt_on) {
		/* every pack "offline", queued before the client's own */
		observer_mqtt_stop(&obs_mqtt);
		bridge_observer_remove(&br, &obs_mqtt.base);
	}
	/* "offline" and DISCONNECT, within MQTT_STOP_USEC */
	mqtt_client_free(mqtt_client);
	mqtt_client = NULL;
	sd_event_unref(e);
	return r;
}

int main(int argc, char **argv)
{
	static struct config cfg;
	int r;

	log_setup(LOG_INFO);
	r = parse_argv(argc, argv);
	if (r <= 0) {
		return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	}
	if (arg_debug) {
		log_set_debug_modules(arg_debug);
	}

	r = load_config(&cfg);
	if (r < 0) {
		return EXIT_FAILURE;
	}
	if (arg_check) {
		config_print(&cfg, stdout);
		fprintf(stderr, "%s: configuration OK\n", arg_demo ? "demo" : arg_config);
		return EXIT_SUCCESS;
	}
	apply_log_level(&cfg);

	r = run(&cfg);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
