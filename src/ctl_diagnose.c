/* SPDX-License-Identifier: MIT */
/*
 * bmsbridgectl diagnose: the closed-loop checklist of a battery owner's
 * guide ("BMS communication loss": baud rate, the master battery at
 * address 1, the cable pinout), run against the configuration, the ports
 * and links of this machine, and the running daemon (over the system bus).
 * Each check prints a verdict and, unless it passed, the exact next step;
 * bmsbridge-troubleshooting(7) maps each verdict to its causes.
 *
 * It works without the daemon: it says so, and checks what it can (the
 * file, the serial ports, the CAN links). Exit status: 0 every check
 * passed, 1 one failed, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libsocketcan.h>
#include <linux/can/netlink.h>
#include <net/if.h>
#include <systemd/sd-bus.h>

#include "bms.h"
#include "config.h"
#include "ctl.h"
#include "macro.h"
#include "protocol.h"

enum verdict { V_OK, V_WARN, V_FAIL, V_SKIP };

static unsigned n_fail, n_warn;

/* one check: "[ OK ] name: what" and, unless it passed, "        -> next step" */
static void say(enum verdict v, const char *name, const char *hint, const char *fmt, ...)
{
	static const char *const tag[] = { "  OK  ", " WARN ", " FAIL ", " SKIP " };
	va_list ap;

	printf("[%s] %s: ", tag[v], name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (hint && v != V_OK) {
		printf("         -> %s\n", hint);
	}
	n_fail += v == V_FAIL;
	n_warn += v == V_WARN;
}

/* ---- the system ------------------------------------------------------------------- */

static bool sysfs_read(const char *ifname, const char *file, char *buf, size_t n)
{
	char path[128];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "/sys/class/net/%s/%s", ifname, file);
	f = fopen(path, "re");
	if (!f) {
		return false;
	}
	ok = fgets(buf, (int)n, f) != NULL;
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

static const char *can_state_name(int st)
{
	switch (st) {
	case CAN_STATE_ERROR_ACTIVE:
		return "error-active";
	case CAN_STATE_ERROR_WARNING:
		return "error-warning";
	case CAN_STATE_ERROR_PASSIVE:
		return "error-passive";
	case CAN_STATE_BUS_OFF:
		return "bus-off";
	case CAN_STATE_STOPPED:
		return "stopped";
	case CAN_STATE_SLEEPING:
		return "sleeping";
	default:
		return "unknown";
	}
}

#define HINT_WIRING                                                                                \
	"check the 120 ohm termination at both ends, CAN-H/CAN-L not crossed, the pinout of "      \
	"the RJ45 (most inverters pins 4/5, Victron 7/8: bmsbridge-troubleshooting(7))"

/* a CAN link: exists, up, at @want_bps, controller state and error counters */
static void check_can_link(const char *side, const char *ifname, uint32_t want_bps)
{
	char name[64], buf[64], hint[192];
	unsigned long flags;
	struct can_bittiming bt = { 0 };
	struct can_berr_counter bc = { 0 };
	int state;

	snprintf(name, sizeof(name), "%s CAN link %s", side, ifname);
	if (!sysfs_read(ifname, "flags", buf, sizeof(buf))) {
		snprintf(hint, sizeof(hint),
			 "is the CAN HAT's overlay loaded (dtoverlay= in config.txt)? "
			 "'ip -details link show %s'",
			 ifname);
		say(V_FAIL, name, hint, "no such interface");
		return;
	}
	flags = strtoul(buf, NULL, 0);
	if (sysfs_read(ifname, "type", buf, sizeof(buf)) && strtoul(buf, NULL, 0) != 280) {
		say(V_FAIL, name, "set the port to a CAN interface in bmsbridge.conf(5)",
		    "not a CAN interface (type %s)", buf);
		return;
	}
	if (!(flags & IFF_UP)) {
		snprintf(hint, sizeof(hint),
			 "'ip link set %s up type can bitrate %u restart-ms 100', or the example "
			 "80-bmsbridge-can.network with systemd-networkd",
			 ifname, want_bps);
		say(V_FAIL, name, hint, "down");
		return;
	}
	if (can_get_bittiming(ifname, &bt) < 0 || bt.bitrate == 0) {
		say(V_OK, name, NULL, "up (virtual: no bit rate)");
		return;
	}
	if (bt.bitrate != want_bps) {
		snprintf(
			hint, sizeof(hint),
			"'ip link set %s down; ip link set %s up type can bitrate %u restart-ms 100' "
			"(or BitRate= in the .network file)",
			ifname, ifname, want_bps);
		say(V_FAIL, name, hint, "bit rate %u, the protocol wants %u", bt.bitrate, want_bps);
		return;
	}
	if (can_get_state(ifname, &state) < 0) {
		say(V_OK, name, NULL, "up at %u bit/s", bt.bitrate);
		return;
	}
	can_get_berr_counter(ifname, &bc);
	if (state == CAN_STATE_BUS_OFF || state == CAN_STATE_ERROR_PASSIVE) {
		say(V_FAIL, name, HINT_WIRING, "%s at %u bit/s (tx errors %u, rx errors %u)",
		    can_state_name(state), bt.bitrate, bc.txerr, bc.rxerr);
	} else if (state == CAN_STATE_ERROR_WARNING) {
		say(V_WARN, name, HINT_WIRING, "%s at %u bit/s (tx errors %u, rx errors %u)",
		    can_state_name(state), bt.bitrate, bc.txerr, bc.rxerr);
	} else {
		say(V_OK, name, NULL, "up, %s at %u bit/s (tx errors %u, rx errors %u)",
		    can_state_name(state), bt.bitrate, bc.txerr, bc.rxerr);
	}
}

static void check_serial(const char *side, const char *path)
{
	char name[300];
	struct stat st;

	snprintf(name, sizeof(name), "%s serial port %s", side, path);
	if (stat(path, &st) < 0) {
		say(V_FAIL, name,
		    "is the adapter plugged in? 'ls -l /dev/serial/by-id/' names it; put that "
		    "path in bmsbridge.conf(5)",
		    "%s", strerror(errno));
		return;
	}
	if (!S_ISCHR(st.st_mode)) {
		say(V_FAIL, name,
		    "the port must be a serial device (/dev/ttyUSB0, /dev/ttyAMA0 ...)",
		    "not a character device");
		return;
	}
	if (access(path, R_OK | W_OK) < 0) {
		say(V_WARN, name,
		    "the service runs in group dialout; to test as yourself: "
		    "'sudo usermod -aG dialout $USER'",
		    "exists, not readable and writable by you");
		return;
	}
	say(V_OK, name, NULL, "a serial device");
}

/* the file, then its ports; Return: the protocol it names (NULL: none usable) */
static const struct inverter_protocol *check_config(const char *path, struct config *cfg, bool *ok)
{
	struct config_error err;
	char line[512];
	const struct inverter_protocol *p;
	const struct bms_driver *d;
	int r;

	*ok = false;
	r = config_load(path, cfg, &err);
	if (r < 0) {
		config_error_format(&err, line, sizeof(line));
		say(V_FAIL, "configuration", "fix it, then 'bmsbridged --check-config' says OK",
		    "%s", line);
		return NULL;
	}
	p = protocol_find(cfg->inverter.protocol);
	d = bms_driver_find(cfg->bms.driver);
	say(V_OK, "configuration", NULL, "%s: BMS %s on %s, inverter %s over %s on %s", path,
	    cfg->bms.driver, cfg->bms.port[0] ? cfg->bms.port : "-", cfg->inverter.protocol,
	    cfg->inverter.output == OUTPUT_KIND_CAN	? "CAN"
	    : cfg->inverter.output == OUTPUT_KIND_RS485 ? "RS485"
							: "candump",
	    cfg->inverter.port);
	*ok = true;
	if (d && d->transport == BMS_TRANSPORT_CAN) {
		check_can_link("BMS", cfg->bms.port,
			       cfg->bms.bitrate ? cfg->bms.bitrate : d->bitrate);
	} else if (d && d->transport == BMS_TRANSPORT_SERIAL) {
		check_serial("BMS", cfg->bms.port);
	}
	if (cfg->inverter.output == OUTPUT_KIND_CAN && p) {
		check_can_link("inverter", cfg->inverter.port,
			       cfg->inverter.bitrate ? cfg->inverter.bitrate : p->bitrate);
	} else if (cfg->inverter.output == OUTPUT_KIND_RS485) {
		check_serial("inverter", cfg->inverter.port);
	}
	return p;
}

/* ---- the daemon ------------------------------------------------------------------- */

static const char *str(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : "";
}

static uint64_t num(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_uint64(v) : 0;
}

static bool flag(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static void check_packs(struct json_object *gw, struct json_object *packs)
{
	size_t n = packs ? json_object_array_length(packs) : 0;
	unsigned ever = 0;
	char name[32];

	for (size_t k = 0; k < n; k++) {
		ever += num(json_object_array_get_idx(packs, k), "AgeUsec") != UINT64_MAX;
	}
	if (n && ever == 0) {
		say(V_FAIL, "BMS",
		    "BMS off or asleep, A/B swapped, wrong baud (bms { baud }) or wrong "
		    "address (bms { addresses }, the DIP switches)",
		    "silent: no pack ever answered (%s)", str(gw, "BmsStatus"));
		return;
	}
	if (!flag(gw, "BmsPortOpen")) {
		say(V_FAIL, "BMS port",
		    "see the BMS port check above; the daemon retries by itself",
		    "%s is not open: %s", str(gw, "BmsPort"), str(gw, "BmsStatus"));
		return;
	}
	for (size_t k = 0; k < n; k++) {
		struct json_object *p = json_object_array_get_idx(packs, k);
		uint64_t age = num(p, "AgeUsec");

		snprintf(name, sizeof(name), "pack #%" PRIu64, num(p, "Address"));
		if (flag(p, "Online")) {
			say(V_OK, name, NULL, "online, read %.1f s ago, SOC %" PRIu64 " %%",
			    age / 1e6, num(p, "SocPct"));
		} else if (age == UINT64_MAX) {
			say(V_FAIL, name,
			    "set this pack's address (DIP switches) to one in bms { addresses }, or "
			    "remove it from there; check it is on and on the same bus",
			    "does not answer (never read)");
		} else {
			say(V_FAIL, name,
			    "check its cable and that it is on; the journal says when it "
			    "stopped",
			    "silent for %.1f s", age / 1e6);
		}
	}
}

static void check_safety(struct json_object *gw)
{
	const char *mode = str(gw, "Mode");

	if (streq(mode, "normal")) {
		say(V_OK, "safety", NULL, "normal (%s)", str(gw, "ModeReason"));
	} else if (streq(mode, "not-ready")) {
		say(V_FAIL, "safety",
		    "nothing goes to the inverter until a complete BMS read: see "
		    "the BMS checks",
		    "not ready (%s)", str(gw, "ModeReason"));
	} else {
		say(V_FAIL, "safety",
		    "comm loss with the BMS: see the BMS checks; "
		    "bmsbridge-safety(7) says what the inverter is told",
		    "%s (%s)", mode, str(gw, "ModeReason"));
	}
}

static void check_inverter_can(struct json_object *gw)
{
	const char *bus = str(gw, "InverterBusState");

	if (streq(bus, "bus-off") || streq(bus, "error-passive")) {
		say(V_FAIL, "inverter CAN bus", HINT_WIRING,
		    "%s: %" PRIu64 " error frames, %" PRIu64 " bus-off, %" PRIu64 " frames dropped",
		    bus, num(gw, "InverterErrorFrames"), num(gw, "InverterBusOffCount"),
		    num(gw, "InverterTxDropped"));
	} else {
		say(V_OK, "inverter CAN bus", NULL,
		    "%s, %" PRIu64 " frames sent, %" PRIu64 " dropped", bus[0] ? bus : "unknown",
		    num(gw, "InverterTxFrames"), num(gw, "InverterTxDropped"));
	}
	if (flag(gw, "InverterHeard")) {
		say(V_OK, "inverter", NULL, "heard (%s)", str(gw, "InverterProtocol"));
	} else {
		say(V_FAIL, "inverter",
		    "set the inverter's battery type to a lithium CAN battery (Pylontech/'PYLON' on "
		    "most); check the cable pinout and that the inverter's BMS port is the one "
		    "wired (bmsbridge-troubleshooting(7))",
		    "%s: no keep-alive (0x305) or request from the inverter",
		    num(gw, "InverterHeardMonotonicUsec") ? "not heard any more" : "never heard");
	}
}

static void check_inverter_rs485(struct json_object *gw)
{
	uint64_t polls = num(gw, "InverterPolls"), other = num(gw, "InverterPollsOtherAddress");
	uint64_t bad = num(gw, "InverterMalformed") + num(gw, "InverterNoiseBytes");
	unsigned adr = (unsigned)num(gw, "InverterAddress");
	unsigned baud = (unsigned)num(gw, "InverterBaud");
	char hint[192];

	if (polls == 0 && other > 0) {
		snprintf(
			hint, sizeof(hint),
			"the inverter talks to address %u only: set inverter { rs485_address = %u } "
			"(or the master battery's DIP switch to %u)",
			(unsigned)num(gw, "InverterOtherAddress"),
			(unsigned)num(gw, "InverterOtherAddress"), adr);
		say(V_FAIL, "RS485 polls", hint,
		    "%" PRIu64 " polls to address 0x%02X, none to ours (0x%02X)", other,
		    (unsigned)num(gw, "InverterOtherAddress"), adr);
	} else if (polls == 0 && bad > 0) {
		snprintf(
			hint, sizeof(hint),
			"wrong baud rate? we listen at %u: set inverter { baud } to the inverter's "
			"(9600 or 19200 on most)",
			baud);
		say(V_FAIL, "RS485 polls", hint,
		    "bytes arrive but no valid poll (%" PRIu64 " malformed, %" PRIu64
		    " noise bytes)",
		    num(gw, "InverterMalformed"), num(gw, "InverterNoiseBytes"));
	} else if (polls == 0) {
		say(V_FAIL, "RS485 polls",
		    "check the cable (A/B, pins of the inverter's BMS port), and the inverter's "
		    "battery type / BMS protocol setting",
		    "nothing heard on %s at %u baud", str(gw, "InverterPort"), baud);
	} else if (num(gw, "InverterErrorsInRow") > 0) {
		snprintf(hint, sizeof(hint),
			 "the inverter asks for command 0x%02X, which we answer with an error; "
			 "the journal names it (bmsbridge-rs485(7))",
			 (unsigned)num(gw, "InverterErrorCommand"));
		say(V_FAIL, "RS485 polls", hint,
		    "%" PRIu64 " polls, the last %" PRIu64 " answered RTN 0x%02X", polls,
		    num(gw, "InverterErrorsInRow"), (unsigned)num(gw, "InverterErrorRtn"));
	} else {
		say(V_OK, "RS485 polls", NULL,
		    "%" PRIu64 " polls at address 0x%02X, %" PRIu64 " answered, %u baud", polls,
		    adr, num(gw, "InverterPollsAnswered"), baud);
	}
}

static void check_daemon(struct json_object *all)
{
	struct json_object *gw = NULL, *packs = NULL;

	json_object_object_get_ex(all, "gateway", &gw);
	json_object_object_get_ex(all, "packs", &packs);
	say(V_OK, "daemon", NULL, "bmsbridged %s running, up %.0f s", str(gw, "Version"),
	    num(gw, "UptimeUsec") / 1e6);
	check_packs(gw, packs);
	check_safety(gw);
	if (streq(str(gw, "InverterTransport"), "can")) {
		check_inverter_can(gw);
	} else if (streq(str(gw, "InverterTransport"), "rs485")) {
		check_inverter_rs485(gw);
	} else {
		say(V_SKIP, "inverter", NULL, "output %s: no inverter to hear",
		    str(gw, "InverterTransport"));
	}
}

int ctl_diagnose(const char *config)
{
	static struct config cfg;
	struct json_object *all = NULL;
	const char *path = config;
	char daemon_path[256] = "";
	sd_bus *bus;
	bool cfg_ok;
	int r;

	bus = ctl_bus_open(false, &r);
	if (bus) {
		all = ctl_bus_snapshot(bus, &r);
		sd_bus_flush_close_unref(bus);
	}
	if (all && !path) {
		struct json_object *gw = NULL;

		json_object_object_get_ex(all, "gateway", &gw);
		snprintf(daemon_path, sizeof(daemon_path), "%s", str(gw, "ConfigPath"));
		path = daemon_path[0] ? daemon_path : NULL;
	}
	if (path && path[0] != '/' && all && !config) {
		say(V_SKIP, "configuration", NULL, "the daemon runs %s, not a file", path);
	} else {
		check_config(path ? path : CONFIG_DEFAULT_PATH, &cfg, &cfg_ok);
	}
	if (!all) {
		say(V_FAIL, "daemon",
		    "'systemctl status bmsbridge' and 'journalctl -u bmsbridge -b' say why; "
		    "the checks above are what can be seen without it",
		    "%s",
		    r == -ESRCH ? "not running (not on the system bus)"
				: "no system bus: cannot ask the daemon");
	} else {
		check_daemon(all);
		json_object_put(all);
	}
	printf("\n%u failed, %u warnings. bmsbridge-troubleshooting(7) explains each check.\n",
	       n_fail, n_warn);
	return n_fail ? 1 : 0;
}
