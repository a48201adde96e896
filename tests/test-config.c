/* SPDX-License-Identifier: MIT */
/*
 * The config parser: every value lands scaled in its field, every bad file
 * is ONE error naming file, line and setting, a failed load never touches
 * the caller's struct, and what config_print() writes reads back the same.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"

#define EXAMPLE_CONF TESTS_DATA_DIR "/../../conf/bmsbridge.conf"

static const char *const minimal =
	"bms: { driver = \"sim\"; };\n"
	"inverter: { protocol = \"pylontech\"; output = \"candump\"; port = \"-\"; };\n";

static struct config *load_ok(const char *text)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	struct config_error err;
	char msg[512];
	int r;

	assert_non_null(cfg);
	r = config_load_string("t.conf", text, cfg, &err);
	if (r < 0) {
		config_error_format(&err, msg, sizeof(msg));
		print_message("# unexpected error: %s\n", msg);
	}
	assert_int_equal(r, 0);
	return cfg;
}

static void test_demo_loads(void **state)
{
	struct config *cfg = load_ok(config_demo_text);

	assert_string_equal(cfg->bms.driver, "sim");
	assert_string_equal(cfg->inverter.protocol, "pylontech");
	assert_int_equal(cfg->inverter.output, OUTPUT_KIND_CANDUMP);
	assert_string_equal(cfg->inverter.port, "-");
	assert_int_equal(cfg->bms.sim_speed, 60);
	free(cfg);
}

static void test_defaults(void **state)
{
	struct config *cfg = load_ok(minimal);
	struct safety_config def;

	assert_int_equal(cfg->daemon.log_level, LOG_INFO);
	assert_int_equal(cfg->daemon.status_interval_usec, 10 * USEC_PER_SEC);
	assert_int_equal(cfg->bms.n_addresses, 1);
	assert_int_equal(cfg->bms.addresses[0], 1);
	assert_int_equal(cfg->bms.poll_interval_usec, 1000 * USEC_PER_MSEC);
	assert_int_equal(cfg->bms.response_timeout_usec, 200 * USEC_PER_MSEC);
	assert_int_equal(cfg->bms.read_method, 1); /* trigger */
	assert_int_equal(cfg->bms.sim_cells, 16);
	assert_int_equal(cfg->bms.sim_capacity_mah, 280000);
	assert_int_equal(cfg->bms.sim_packs, 1);
	assert_string_equal(cfg->bms.replay_format, "pylontech-can");
	assert_int_equal(cfg->inverter.options.rs485_address, 1);
	assert_string_equal(cfg->inverter.candump_ifname, "can0");
	/* the safety group's defaults are the safety module's own */
	safety_config_defaults(&def);
	assert_memory_equal(&cfg->safety, &def, sizeof(def));
	free(cfg);
}

static void test_values_scaled(void **state)
{
	struct config *cfg = load_ok(
		"log_level = \"debug\";\n"
		"bms: { driver = \"jk-pb-modbus\"; port = \"/dev/ttyUSB0\"; addresses = [3, 1, 15];\n"
		"  read_method = \"registers\"; poll_interval_ms = 2000; request_gap_ms = 0; };\n"
		"inverter: { protocol = \"deye\"; port = \"can1\"; bitrate = 500000;\n"
		"  soc_follows_limits = true; manufacturer = \"JK-BMS\"; inverter_timeout_s = 90; };\n"
		"safety: { stale_timeout_ms = 2500; max_charge_current_a = 50;\n"
		"  charge_temp_min_c = -5; charge_cold_full_c = 5; comm_loss = \"hold\"; };\n");

	assert_int_equal(cfg->daemon.log_level, LOG_DEBUG);
	assert_int_equal(cfg->bms.n_addresses, 3);
	assert_int_equal(cfg->bms.addresses[0], 3);
	assert_int_equal(cfg->bms.addresses[2], 15);
	assert_int_equal(cfg->bms.read_method, 0);
	assert_int_equal(cfg->bms.poll_interval_usec, 2000 * USEC_PER_MSEC);
	assert_int_equal(cfg->bms.request_gap_usec, 0);
	/* output defaults to the protocol's transport */
	assert_int_equal(cfg->inverter.output, OUTPUT_KIND_CAN);
	assert_int_equal(cfg->inverter.bitrate, 500000);
	assert_true(cfg->inverter.options.soc_follows_limits);
	assert_string_equal(cfg->inverter.options.manufacturer, "JK-BMS");
	assert_int_equal(cfg->inverter.inverter_timeout_usec, 90 * USEC_PER_SEC);
	assert_int_equal(cfg->safety.stale_timeout_usec, 2500 * USEC_PER_MSEC);
	assert_int_equal(cfg->safety.max_charge_current_ma, 50000);
	assert_int_equal(cfg->safety.charge_temp_min_dc, -50);
	assert_int_equal(cfg->safety.comm_loss, SAFETY_COMM_LOSS_HOLD);
	free(cfg);
}

static void test_rs485_output_default_and_alias(void **state)
{
	struct config *cfg = load_ok("bms: { driver = \"sim\"; };\n"
				     "inverter: { protocol = \"pylontech-rs485\"; port = \"/dev/ttyS0\";"
				     " baud = 19200; rs485_address = 2; };\n");

	assert_int_equal(cfg->inverter.output, OUTPUT_KIND_RS485);
	assert_int_equal(cfg->inverter.baud, 19200);
	assert_int_equal(cfg->inverter.options.rs485_address, 2);
	free(cfg);

	cfg = load_ok("bms: { driver = \"sim\"; };\n"
		      "inverter: { protocol = \"goodwe\"; port = \"can0\"; };\n");
	assert_string_equal(cfg->inverter.protocol, "goodwe");
	assert_int_equal(cfg->inverter.output, OUTPUT_KIND_CAN);
	free(cfg);
}

/*
 * daly-can: board numbers in the list's order; none given: board 1. Its
 * requests go out once a second whatever the number of boards, so the
 * serial round check (packs x (timeout + gap) below stale_timeout_ms)
 * does not apply: 15 boards with a 2 s stale timeout load.
 */
static void test_can_addresses(void **state)
{
	struct config *cfg = load_ok("bms: { driver = \"daly-can\"; port = \"can1\"; "
				     "addresses = [3, 2, 0x0B]; };\n"
				     "inverter: { protocol = \"pylontech\"; port = \"can0\"; };\n");

	(void)state;
	assert_int_equal(cfg->bms.n_addresses, 3);
	assert_int_equal(cfg->bms.addresses[0], 3);
	assert_int_equal(cfg->bms.addresses[1], 2);
	assert_int_equal(cfg->bms.addresses[2], 11);
	free(cfg);
	cfg = load_ok("bms: { driver = \"daly-can\"; port = \"can1\"; };\n"
		      "inverter: { protocol = \"pylontech\"; port = \"can0\"; };\n");
	assert_int_equal(cfg->bms.n_addresses, 1);
	assert_int_equal(cfg->bms.addresses[0], 1);
	free(cfg);
	cfg = load_ok(
		"bms: { driver = \"daly-can\"; port = \"can1\"; response_timeout_ms = "
		"1200;\n addresses = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 31]; };\n"
		"inverter: { protocol = \"pylontech\"; port = \"can0\"; };\n"
		"safety: { stale_timeout_ms = 2000; };\n");
	assert_int_equal(cfg->bms.n_addresses, 15);
	assert_int_equal(cfg->bms.addresses[14], 31);
	free(cfg);
	/* pylontech-can without the key: one pack, as before */
	cfg = load_ok("bms: { driver = \"pylontech-can\"; port = \"can1\"; };\n"
		      "inverter: { protocol = \"victron\"; port = \"can0\"; };\n");
	assert_int_equal(cfg->bms.n_addresses, 1);
	free(cfg);
}

/* a polled family takes its own range; none given: its first address */
static void test_serial_addresses(void **state)
{
	struct config *cfg = load_ok("bms: { driver = \"seplos-v3\"; port = \"/dev/ttyUSB0\"; "
				     "addresses = [0, 127]; };\n"
				     "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n");

	(void)state;
	assert_int_equal(cfg->bms.n_addresses, 2);
	assert_int_equal(cfg->bms.addresses[1], 127);
	free(cfg);
	cfg = load_ok("bms: { driver = \"pylontech-rs485\"; port = \"/dev/ttyUSB0\"; };\n"
		      "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n");
	assert_int_equal(cfg->bms.n_addresses, 1);
	assert_int_equal(cfg->bms.addresses[0], 2);
	assert_int_equal(cfg->bms.baud, 0);
	free(cfg);
}

/* every way a file can be wrong: where the error must point, and what it must say */
static const struct bad_case {
	const char *text;
	int line;
	const char *setting;
	const char *says;
} bad_cases[] = {
	{ "bms: { driver = \"sim\"; sede = 3; };", 1, "bms.sede", "did you mean \"seed\"" },
	{ "bms: { driver = \"sim\"; seed = \"x\"; };", 1, "bms.seed", "expected an integer" },
	{ "bms: { driver = \"sim\"; seed = 1.5; };", 1, "bms.seed", "fraction" },
	{ "bms: { driver = \"sim\"; seed = -1; };", 1, "bms.seed", "out of range" },
	{ "\n\nbms: { driver = \"sim\"; sim_cells = 99; };", 3, "bms.sim_cells", "out of range" },
	{ "bms: { driver = \"sim\"; manage_link = 1; };", 1, "bms.manage_link", "true or false" },
	{ "bms: { driver = \"sim\"; addresses = [200]; };", 1, "bms.addresses", "out of range" },
	/* each driver's own address range (config.c check_addresses()) */
	{ "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n"
	  "bms: { driver = \"jk-pb-modbus\"; port = \"/dev/ttyUSB0\"; addresses = [0]; };", 2,
	  "bms.addresses", "out of range for jk-pb-modbus: 1-15" },
	{ "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n"
	  "bms: { driver = \"pylontech-rs485\"; port = \"/dev/ttyUSB0\"; addresses = [2, 1]; };",
	  2, "bms.addresses", "address 1 out of range for pylontech-rs485: 2-16" },
	{ "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n"
	  "bms: { driver = \"jbd\"; port = \"/dev/ttyUSB0\"; addresses = [1, 2]; };", 2,
	  "bms.addresses", "no addressing" },
	/* daly-can: board numbers 1-31 (Daly CAN V1.0 §2.2, protocols/daly_can.c) */
	{ "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n"
	  "bms: { driver = \"daly-can\"; port = \"can1\";\n addresses = [1, 32]; };",
	  3, "bms.addresses", "address 32 out of range for daly-can: 1-31" },
	{ "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n"
	  "bms: { driver = \"daly-can\"; port = \"can1\"; addresses = [0]; };",
	  2, "bms.addresses", "address 0 out of range for daly-can: 1-31" },
	{ "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n\n"
	  "bms: { driver = \"daly-can\"; port = \"can1\"; addresses = [2, 3, 2]; };",
	  3, "bms.addresses", "2 is listed twice" },
	/* a CAN BMS without addresses would ignore the key */
	{ "inverter: { protocol = \"victron\"; port = \"can0\"; };\n"
	  "bms: { driver = \"pylontech-can\"; port = \"can1\"; addresses = [1]; };",
	  2, "bms.addresses", "pylontech-can reads one BMS per port" },
	{ "bms: { driver = \"sim\"; addresses = [1, 2, 1]; };", 1, "bms.addresses", "twice" },
	{ "bms: { driver = \"sim\"; addresses = 1; };", 1, "bms.addresses", "list" },
	{ "bms: { driver = \"sim\"; addresses = []; };", 1, "bms.addresses", "1 to" },
	{ "bms: { driver = \"sim\"; read_method = \"fast\"; };", 1, "bms.read_method",
	  "\"registers\", \"trigger\"" },
	{ "bms: { driver = \"sim\"; baud = 12345; };", 1, "bms.baud", "not supported" },
	{ "bms: { driver = \"sim\"; bitrate = 300000; };", 1, "bms.bitrate", "not supported" },
	{ "bms: { driver = \"sim\"; port = \"a\tb\"; };", 1, "bms.port", "control character" },
	{ "bms: { driver = \"sim\"; nested: { a = 1; }; };", 1, "bms.nested", "unknown setting" },
	{ "bms = 1;", 1, "bms", "expected a group" },
	{ "gadget: { a = 1; };", 1, "gadget", "unknown group" },
	{ "colour = 1;", 1, "colour", "unknown setting" },
	{ "bms: { driver = \"sim\" ; seed = ; };", 1, "", "syntax error" },
	{ "bms: { driver = \"sim\"; };\ninverter: {\n protocol = \"pylontech\";\n"
	  " output = \"candump\"; manufacturer = \"123456789\"; };",
	  4, "inverter.manufacturer", "at most 8" },
	{ "inverter: { protocol = \"pylontech\"; port = \"can0\"; };", 0, "bms.driver", "missing" },
	{ "bms: { driver = \"jkbms\"; };", 1, "bms.driver", "unknown BMS driver" },
	{ "bms: { driver = \"jk-pb-modbus\"; };", 1, "bms.port", "serial port" },
	{ "bms: { driver = \"replay\"; port = \"x.log\"; replay_format = \"jk-pb-modbus\"; };", 1,
	  "bms.replay_format", "not a CAN BMS format" },
	{ "bms: { driver = \"sim\"; };", 0, "inverter.protocol", "missing" },
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"byd\"; };", 2, "inverter.protocol",
	  "unknown protocol" },
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"pylontech\"; };", 2,
	  "inverter.port", "CAN interface" },
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"pylontech-rs485\";\n"
	  " output = \"can\"; port = \"can0\"; };",
	  3, "inverter.output", "rs485" },
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"victron\"; output = \"rs485\";"
	  " port = \"/dev/ttyS0\"; };",
	  2, "inverter.output", "CAN protocol" },
	{ "bms: { driver = \"pylontech-can\"; port = \"can0\"; };\n"
	  "inverter: { protocol = \"pylontech\"; port = \"can0\"; };",
	  2, "inverter.port", "port each" },
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"pylontech\"; port = \"can0\"; };\n"
	  "safety: { cell_full_mv = 3300; };",
	  3, "safety", "charge_taper_start_mv must be below cell_full_mv" },
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"pylontech\"; port = \"can0\"; };\n"
	  "safety: { comm_loss = \"panic\"; };",
	  3, "safety.comm_loss", "\"auto\", \"zero\", \"stop\", \"hold\"" },
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"pylontech\"; port = \"can0\"; };\n"
	  "safety: { max_charge_current_a = 5000; };",
	  3, "safety.max_charge_current_a", "5000 A is out of range [0, 2000]" },
	/* libconfig 1.5 wraps decimal literals to 32 bits: 4294967346 would read as 50 */
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"pylontech\"; port = \"can0\"; };\n"
	  "safety: { max_charge_current_a = 4294967346; };",
	  3, "safety.max_charge_current_a", "4294967346 A is out of range [0, 2000]" },
	{ "bms: { driver = \"sim\";\n seed = 4294967296; };", 2, "bms.seed",
	  "4294967296 is out of range [0, 4294967295]" },
	{ "bms: { driver = \"sim\"; seed = 0x1FFFFFFFF; };", 1, "bms.seed", "out of range" },
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"pylontech\"; port = \"can0\"; };\n"
	  "safety: { charge_temp_min_c = -4294967298; };",
	  3, "safety.charge_temp_min_c", "-4294967298 degC is out of range [-40, 100]" },
	{ "bms: { driver = \"sim\";\n seed = 99999999999999999999; };", 2, "", "too large" },
	/* a round over the packs that the stale timeout cannot wait for flaps NORMAL/ZERO */
	{ "bms: { driver = \"jk-pb-modbus\"; port = \"/dev/ttyUSB0\";\n poll_interval_ms = 10000; };\n"
	  "inverter: { protocol = \"pylontech\"; port = \"can0\"; };",
	  2, "bms.poll_interval_ms", "stale_timeout_ms" },
	{ "bms: { driver = \"jk-pb-modbus\"; port = \"/dev/ttyUSB0\"; };\n"
	  "inverter: { protocol = \"pylontech\"; port = \"can0\"; };\n"
	  "safety: { stale_timeout_ms = 800; };",
	  3, "safety.stale_timeout_ms", "poll_interval_ms" },
	{ "bms: { driver = \"jk-pb-modbus\"; port = \"/dev/ttyUSB0\";\n"
	  " addresses = [1, 2, 3, 4, 5, 6, 7, 8]; response_timeout_ms = 1200; };\n"
	  "inverter: { protocol = \"pylontech\"; port = \"can0\"; };",
	  2, "bms.addresses", "8 packs x (1200 ms + 100 ms) = 10400 ms" },
	/* quirk options where the protocol ignores them */
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"victron\"; port = \"can0\";\n"
	  " soc_follows_limits = true; };",
	  3, "inverter.soc_follows_limits", "only deye" },
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"deye\"; port = \"can0\";\n"
	  " send_dvl = true; };",
	  3, "inverter.send_dvl", "only pylontech" },
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"sofar\"; port = \"can0\";\n"
	  " rs485_address = 2; };",
	  3, "inverter.rs485_address", "only pylontech-rs485" },
	/* a serial speed on CAN, a bit rate on a serial line, a bit rate not the protocol's */
	{ "bms: { driver = \"pylontech-can\"; port = \"can0\";\n baud = 9600; };\n"
	  "inverter: { protocol = \"pylontech\"; port = \"can1\"; };",
	  2, "bms.baud", "CAN" },
	{ "bms: { driver = \"jk-pb-modbus\"; port = \"/dev/ttyUSB0\"; bitrate = 500000; };\n"
	  "inverter: { protocol = \"pylontech\"; port = \"can1\"; };",
	  1, "bms.bitrate", "serial" },
	{ "bms: { driver = \"pylontech-can\"; port = \"can0\"; bitrate = 250000; };\n"
	  "inverter: { protocol = \"pylontech\"; port = \"can1\"; };",
	  1, "bms.bitrate", "500000" },
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"victron\"; port = \"can1\";\n"
	  " bitrate = 250000; };",
	  3, "inverter.bitrate", "victron runs at 500000 bit/s" },
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"growatt\"; port = \"can1\";\n"
	  " baud = 9600; };",
	  3, "inverter.baud", "CAN" },
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"pylontech-rs485\";\n"
	  " port = \"/dev/ttyS0\"; bitrate = 500000; };",
	  3, "inverter.bitrate", "serial" },
	/* a key in the wrong group */
	{ "bms: { driver = \"sim\";\n stale_timeout_ms = 5000; };", 2, "bms.stale_timeout_ms",
	  "did you mean safety.stale_timeout_ms?" },
	{ "max_charge_current_a = 50;", 1, "max_charge_current_a",
	  "did you mean safety.max_charge_current_a?" },
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"pylontech\"; port = \"can0\";\n"
	  " addresses = [1]; };",
	  3, "inverter.addresses", "did you mean bms.addresses?" },
	/* @include would open files libconfig reads blocking, beyond these checks */
	{ "@include \"other.conf\"\nbms: { driver = \"sim\"; };", 1, "", "@include" },
	/* UTF-16 is not UTF-8 */
	{ "\xff\xfe" "b\0m\0s\0", 1, "", "UTF-16" },
	/* "charge to 14.2 V, don't discharge below 48 V", and sim packs that cannot fit */
	{ "bms: { driver = \"sim\"; };\ninverter: { protocol = \"deye\"; port = \"can0\"; };\n"
	  "safety: {\n max_charge_voltage_mv = 14200; };",
	  4, "safety.max_charge_voltage_mv", "DVL >= CVL" },
	{ "bms: { driver = \"sim\"; sim_cells = 4; };\n"
	  "inverter: { protocol = \"deye\"; port = \"can0\"; };",
	  1, "bms.sim_cells", "DVL >= CVL" },
	{ "bms: { driver = \"sim\";\n sim_cells = 32; };\n"
	  "inverter: { protocol = \"deye\"; port = \"can0\"; };",
	  2, "bms.sim_cells", "DVL >= CVL" },
};

static void test_bad_files(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct config cfg, before;
		struct config_error err;
		char msg[512];
		int r;

		memset(&cfg, 0xa5, sizeof(cfg));
		before = cfg;
		r = config_load_string("bad.conf", c->text, &cfg, &err);
		config_error_format(&err, msg, sizeof(msg));
		print_message("# case %zu: %s\n", i, msg);
		assert_int_equal(r, -EINVAL);
		assert_string_equal(err.file, "bad.conf");
		assert_int_equal(err.line, c->line);
		assert_string_equal(err.setting, c->setting);
		assert_non_null(strstr(err.text, c->says));
		/* a failed load leaves the caller's config exactly as it was */
		assert_memory_equal(&cfg, &before, sizeof(cfg));
		/* one line */
		assert_null(strchr(msg, '\n'));
	}
}

static void test_error_format(void **state)
{
	struct config_error e = { .file = "a.conf", .line = 7, .setting = "bms.seed",
				  .text = "out of range" };
	char buf[128];

	config_error_format(&e, buf, sizeof(buf));
	assert_string_equal(buf, "a.conf:7: bms.seed: out of range");
	e.line = 0;
	config_error_format(&e, buf, sizeof(buf));
	assert_string_equal(buf, "a.conf: bms.seed: out of range");
	e.setting[0] = '\0';
	config_error_format(&e, buf, sizeof(buf));
	assert_string_equal(buf, "a.conf: out of range");
}

static void test_missing_file(void **state)
{
	struct config cfg;
	struct config_error err;
	int r;

	r = config_load("/nonexistent/bmsbridge.conf", &cfg, &err);
	assert_int_equal(r, -ENOENT);
	assert_string_equal(err.file, "/nonexistent/bmsbridge.conf");
	assert_non_null(strstr(err.text, "cannot read"));
}

/* a scratch directory for files of every kind; removed by the caller */
static char *scratch_dir(void)
{
	char tmpl[] = "/tmp/test-config-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static void write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static void load_fails(const char *path, int line, const char *says)
{
	struct config cfg, before;
	struct config_error err;
	char msg[512];
	int r;

	memset(&cfg, 0x5a, sizeof(cfg));
	before = cfg;
	r = config_load(path, &cfg, &err);
	config_error_format(&err, msg, sizeof(msg));
	print_message("# %s\n", msg);
	assert_int_equal(r, -EINVAL);
	assert_int_equal(err.line, line);
	assert_non_null(strstr(err.text, says));
	assert_memory_equal(&cfg, &before, sizeof(cfg));
	assert_null(strchr(msg, '\n'));
}

/*
 * The path names something that is not a configuration file: a FIFO (fopen
 * would block the loop inside the SIGHUP handler), a directory (libconfig's
 * scanner exit()s on EISDIR), a huge file, a binary with a NUL. Each is one
 * clear error, at once: an alarm ends the test if anything blocks.
 */
static void test_not_a_config_file(void **state)
{
	char *dir = scratch_dir();
	char path[256];
	char *big;

	alarm(20);
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	load_fails(path, 0, "not a regular file (a FIFO)");
	unlink(path);

	load_fails(dir, 0, "is a directory");

	snprintf(path, sizeof(path), "%s/big.conf", dir);
	big = malloc(CONFIG_FILE_MAX + 2);
	assert_non_null(big);
	memset(big, '#', CONFIG_FILE_MAX + 1);
	big[CONFIG_FILE_MAX + 1] = '\n';
	write_file(path, big, CONFIG_FILE_MAX + 2);
	free(big);
	load_fails(path, 0, "larger than 1 MiB");
	unlink(path);

	snprintf(path, sizeof(path), "%s/nul.conf", dir);
	write_file(path, "bms: { driver = \"sim\"; };\n\nx\0y", 31);
	load_fails(path, 3, "NUL byte");
	unlink(path);

	snprintf(path, sizeof(path), "%s/utf16.conf", dir);
	write_file(path, "\xfe\xff\0b\0m\0s", 8);
	load_fails(path, 1, "UTF-16");
	unlink(path);
	alarm(0);

	assert_int_equal(rmdir(dir), 0);
	free(dir);
}

/* a UTF-8 byte order mark (Windows Notepad) is skipped, lines count as before */
static void test_utf8_bom_skipped(void **state)
{
	char *dir = scratch_dir();
	char path[256];
	static const char good[] = "\xef\xbb\xbf"
				   "bms: { driver = \"sim\"; seed = 7; };\n"
				   "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n";
	static const char bad[] = "\xef\xbb\xbf"
				  "bms: { driver = \"sim\"; seed = 7; };\n"
				  "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n"
				  "safety: { sede = 1; };\n";
	struct config *cfg = calloc(1, sizeof(*cfg));
	struct config_error err;

	assert_non_null(cfg);
	snprintf(path, sizeof(path), "%s/bom.conf", dir);
	write_file(path, good, strlen(good));
	assert_int_equal(config_load(path, cfg, &err), 0);
	assert_int_equal(cfg->bms.seed, 7);
	/* the same through config_load_string() */
	assert_int_equal(config_load_string("t.conf", good, cfg, &err), 0);
	write_file(path, bad, strlen(bad));
	assert_int_equal(config_load(path, cfg, &err), -EINVAL);
	assert_int_equal(err.line, 3);
	assert_string_equal(err.setting, "safety.sede");
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
	free(dir);
	free(cfg);
}

/* integers past 32 bits: taken at their value, in decimal and hex */
static void test_wide_integers(void **state)
{
	struct config *cfg = load_ok("bms: { driver = \"sim\"; seed = 4294967295; };\n"
				     "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n");

	/* the documented maximum of bms.seed (bmsbridge.conf(5)) */
	assert_int_equal(cfg->bms.seed, UINT32_MAX);
	free(cfg);
	cfg = load_ok("bms: { driver = \"sim\"; seed = 0xFFFFFFFF; };\n"
		      "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n");
	assert_int_equal(cfg->bms.seed, UINT32_MAX);
	free(cfg);
	/* an L suffix and digits in names and strings are left alone */
	cfg = load_ok("bms: { driver = \"sim\"; seed = 3000000000L; };\n"
		      "inverter: { protocol = \"pylontech\"; output = \"candump\";\n"
		      "  port = \"/tmp/x4294967346\"; };\n"
		      "# 99999999999999999999 in a comment\n");
	assert_int_equal(cfg->bms.seed, 3000000000u);
	assert_string_equal(cfg->inverter.port, "/tmp/x4294967346");
	free(cfg);
}

/* the same device under two names (a /dev/serial/by-id link) is one port */
static void test_same_device_through_link(void **state)
{
	char *dir = scratch_dir();
	char dev[256], link[256], text[1024];
	struct config cfg;
	struct config_error err;

	snprintf(dev, sizeof(dev), "%s/ttyUSB0", dir);
	snprintf(link, sizeof(link), "%s/usb-FTDI_RS485-if00-port0", dir);
	write_file(dev, "", 0);
	assert_int_equal(symlink(dev, link), 0);
	snprintf(text, sizeof(text),
		 "bms: { driver = \"jk-pb-modbus\"; port = \"%s\"; };\n"
		 "inverter: { protocol = \"pylontech-rs485\";\n port = \"%s\"; };\n",
		 dev, link);
	assert_int_equal(config_load_string("t.conf", text, &cfg, &err), -EINVAL);
	assert_int_equal(err.line, 3);
	assert_string_equal(err.setting, "inverter.port");
	assert_non_null(strstr(err.text, "same device as bms.port"));
	unlink(link);
	unlink(dev);
	assert_int_equal(rmdir(dir), 0);
	free(dir);
}

/* what --check-config prints is a config file that loads to the same struct */
static void round_trip(const struct config *cfg)
{
	struct config_error err;
	struct config *again = calloc(1, sizeof(*again));
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int r;

	assert_non_null(again);
	assert_non_null(f);
	config_print(cfg, f);
	assert_int_equal(fclose(f), 0);
	r = config_load_string(cfg->path, text, again, &err);
	if (r < 0) {
		print_message("%s:%d: %s: %s\n%s", err.file, err.line, err.setting, err.text, text);
	}
	assert_int_equal(r, 0);
	assert_memory_equal(again, cfg, sizeof(*cfg));
	free(text);
	free(again);
}

static void test_print_round_trip(void **state)
{
	struct config *cfg = load_ok(config_demo_text);
	struct config_error err;

	round_trip(cfg);
	free(cfg);

	cfg = load_ok("bms: { driver = \"sim\"; seed = 4294967295; };\n"
		      "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n");
	round_trip(cfg);
	free(cfg);

	cfg = calloc(1, sizeof(*cfg));
	assert_non_null(cfg);
	assert_int_equal(config_load(EXAMPLE_CONF, cfg, &err), 0);
	/* the example is the real-world setup: JK-PB over RS485 to a CAN inverter */
	assert_string_equal(cfg->bms.driver, "jk-pb-modbus");
	assert_int_equal(cfg->inverter.output, OUTPUT_KIND_CAN);
	memset(cfg->path, 0, sizeof(cfg->path));
	snprintf(cfg->path, sizeof(cfg->path), "t.conf");
	round_trip(cfg);
	free(cfg);
}

#define SRC_DIR TESTS_DATA_DIR "/../.."

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = calloc(1, 256 * 1024);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, 256 * 1024 - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* every key name, from what config_print() writes: "\tname = value;" */
static bool is_key(const char *keys, const char *name, size_t len)
{
	for (const char *p = keys; (p = strstr(p, " = ")); p++) {
		const char *b = p;

		while (b > keys && b[-1] != '\t' && b[-1] != '\n') {
			b--;
		}
		if ((size_t)(p - b) == len && strncmp(b, name, len) == 0) {
			return true;
		}
	}
	return false;
}

/*
 * One truth for the key names: every *word_with_underscore* in the man
 * pages that talk about the configuration is a real key, every key is
 * documented in bmsbridge.conf(5), and every key the example file sets or
 * shows commented out exists (inverter_timeout vs inverter_timeout_s).
 */
static void test_docs_name_real_keys(void **state)
{
	static const char *const pages[] = { "bmsbridge.conf.5.scd", "bmsbridge-protocols.7.scd",
					     "bmsbridge-rs485.7.scd", "bmsbridge-safety.7.scd",
					     "bmsbridged.8.scd" };
	struct config *cfg = load_ok(minimal);
	char *keys = NULL, *text;
	size_t len = 0, bad = 0;
	FILE *f = open_memstream(&keys, &len);
	char path[512];

	assert_non_null(f);
	config_print(cfg, f);
	assert_int_equal(fclose(f), 0);
	free(cfg);

	for (size_t i = 0; i < ARRAY_SIZE(pages); i++) {
		snprintf(path, sizeof(path), "%s/man/%s", SRC_DIR, pages[i]);
		text = slurp(path);
		for (char *p = text; (p = strchr(p, '*')); p++) {
			size_t n = strspn(p + 1, "abcdefghijklmnopqrstuvwxyz0123456789_");

			if (n == 0 || p[1 + n] != '*' || !memchr(p + 1, '_', n) ||
			    (p[1] >= '0' && p[1] <= '9')) {
				continue;
			}
			if (!is_key(keys, p + 1, n)) {
				print_message("# %s: *%.*s* is no configuration key\n", pages[i],
					      (int)n, p + 1);
				bad++;
			}
			p += n + 1;
		}
		free(text);
	}

	text = slurp(SRC_DIR "/man/bmsbridge.conf.5.scd");
	for (const char *p = keys; (p = strstr(p, " = ")); p++) {
		const char *b = p;
		char want[64];

		while (b > keys && b[-1] != '\t' && b[-1] != '\n') {
			b--;
		}
		snprintf(want, sizeof(want), "*%.*s*", (int)(p - b), b);
		if (!strstr(text, want)) {
			print_message("# bmsbridge.conf(5) does not document %s\n", want);
			bad++;
		}
	}
	free(text);

	text = slurp(SRC_DIR "/conf/bmsbridge.conf");
	for (char *line = text; line; line = strchr(line, '\n')) {
		const char *p;
		size_t n;

		line += *line == '\n';
		p = line + strspn(line, " \t#");
		n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
		if (n > 0 && strncmp(p + n, " = ", 3) == 0 && !is_key(keys, p, n)) {
			print_message("# conf/bmsbridge.conf: %.*s is no configuration key\n", (int)n,
				      p);
			bad++;
		}
	}
	free(text);
	free(keys);
	assert_int_equal(bad, 0);
}

/* ---- mqtt { } ------------------------------------------------------------------ */

static void test_mqtt_defaults(void **state)
{
	struct config *cfg = load_ok(minimal);
	const struct mqtt_config *m = &cfg->mqtt;

	assert_false(m->enabled);
	assert_string_equal(m->host, "localhost");
	assert_int_equal(m->port, 0);
	assert_int_equal(m->keepalive_usec, 30 * USEC_PER_SEC);
	assert_int_equal(m->reconnect_min_usec, 1 * USEC_PER_SEC);
	assert_int_equal(m->reconnect_max_usec, 60 * USEC_PER_SEC);
	assert_int_equal(m->queue_max, 512);
	assert_string_equal(m->topic_prefix, "bmsbridge");
	assert_string_equal(m->node_id, "");
	assert_true(m->discovery);
	assert_string_equal(m->discovery_prefix, "homeassistant");
	assert_true(m->cells);
	assert_int_equal(m->min_interval_usec, 1000 * USEC_PER_MSEC);
	assert_int_equal(m->max_silence_usec, 60 * USEC_PER_SEC);
	free(cfg);
}

static void test_mqtt_values(void **state)
{
	struct config *cfg = load_ok("bms: { driver = \"sim\"; };\n"
				     "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n"
				     "mqtt: { enabled = true; host = \"10.0.0.5\"; port = 8884;\n"
				     "  username = \"bms\"; password_file = \"/etc/bmsbridge/pw\";\n"
				     "  ca_file = \"/etc/ca.pem\"; cert_file = \"c.pem\"; key_file = \"k.pem\";\n"
				     "  keepalive_s = 5; reconnect_min_s = 2; reconnect_max_s = 2;\n"
				     "  queue_max = 16; topic_prefix = \"home/bms\"; node_id = \"shed-1\";\n"
				     "  min_interval_ms = 500; max_silence_s = 1; cells = false; };\n");
	const struct mqtt_config *m = &cfg->mqtt;
	char topic[MQTT_TOPIC_MAX];

	assert_true(m->enabled);
	assert_string_equal(m->host, "10.0.0.5");
	assert_int_equal(m->port, 8884);
	assert_string_equal(m->password_file, "/etc/bmsbridge/pw");
	assert_int_equal(m->keepalive_usec, 5 * USEC_PER_SEC);
	assert_int_equal(m->reconnect_max_usec, 2 * USEC_PER_SEC);
	assert_int_equal(m->queue_max, 16);
	assert_int_equal(m->min_interval_usec, 500 * USEC_PER_MSEC);
	assert_int_equal(m->max_silence_usec, 1 * USEC_PER_SEC);
	assert_false(m->cells);
	assert_int_equal(mqtt_base_topic(m, topic, sizeof(topic)), 0);
	assert_string_equal(topic, "home/bms/shed-1");
	assert_int_equal(mqtt_base_topic(m, topic, 8), -ENAMETOOLONG);
	free(cfg);
}

/* node_id "": the host name's first label, only [A-Za-z0-9_-] */
static void test_mqtt_node_from_host(void **state)
{
	struct mqtt_config m = { .topic_prefix = "bmsbridge" };
	char node[MQTT_HOST_MAX];

	assert_int_equal(mqtt_node_id(&m, node, sizeof(node)), 0);
	assert_true(node[0] != '\0');
	assert_int_equal(strspn(node, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789_-"),
			 strlen(node));
}

static const struct bad_case mqtt_bad_cases[] = {
	{ "mqtt: { enabled = true;\n host = \"\"; };\n", 2, "mqtt.host", "required when enabled" },
	{ "mqtt: {\n cert_file = \"c.pem\"; ca_file = \"ca.pem\"; };\n", 2, "mqtt.cert_file",
	  "needs key_file" },
	{ "mqtt: { key_file = \"k.pem\"; };\n", 1, "mqtt.key_file", "needs cert_file" },
	{ "mqtt: {\n\n cert_file = \"c.pem\"; key_file = \"k.pem\"; };\n", 3, "mqtt.cert_file",
	  "set ca_file or ca_path" },
	{ "mqtt: {\n password_file = \"/etc/pw\"; };\n", 2, "mqtt.password_file",
	  "needs a username" },
	{ "mqtt: {\n node_id = \"a/b\"; };\n", 2, "mqtt.node_id", "no '+', '#', '/' or spaces" },
	{ "mqtt: { node_id = \"a b\"; };\n", 1, "mqtt.node_id", "letters, digits" },
	{ "mqtt: { node_id = \"x+\"; };\n", 1, "mqtt.node_id", "letters, digits" },
	{ "mqtt: {\n topic_prefix = \"bms/#\"; };\n", 2, "mqtt.topic_prefix", "wildcards" },
	{ "mqtt: { topic_prefix = \"/bms\"; };\n", 1, "mqtt.topic_prefix", "begin or end" },
	{ "mqtt: { topic_prefix = \"a//b\"; };\n", 1, "mqtt.topic_prefix", "empty level" },
	{ "mqtt: { discovery_prefix = \"home assistant\"; };\n", 1, "mqtt.discovery_prefix",
	  "spaces" },
	{ "mqtt: { topic_prefix = \"\"; };\n", 1, "mqtt.topic_prefix", "" },
	{ "mqtt: {\n reconnect_min_s = 120;\n reconnect_max_s = 60; };\n", 2,
	  "mqtt.reconnect_min_s", "above reconnect_max_s (60 s)" },
	{ "mqtt: { max_silence_s = 1;\n min_interval_ms = 1500; };\n", 2, "mqtt.min_interval_ms",
	  "above max_silence_s" },
	{ "mqtt: { keepalive_s = 2; };\n", 1, "mqtt.keepalive_s", "out of range" },
	{ "mqtt: { queue_max = 100000; };\n", 1, "mqtt.queue_max", "out of range" },
	{ "mqtt: { port = 70000; };\n", 1, "mqtt.port", "out of range" },
	{ "mqtt: { password = \"secret\"; };\n", 1, "mqtt.password", "unknown" },
	{ "mqtt: { client_id = \"abcdefghijklmnopqrstuvwxyz\"; };\n", 1, "mqtt.client_id", "" },
};

/* each cross-key problem is one error at the line of the key to change */
static void test_mqtt_bad(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(mqtt_bad_cases); i++) {
		const struct bad_case *c = &mqtt_bad_cases[i];
		char text[1024];
		struct config cfg;
		struct config_error err;
		char msg[512];
		int r;

		/* the group after the two required ones: its lines count from 3 */
		snprintf(text, sizeof(text), "%s%s", minimal, c->text);
		r = config_load_string("bad.conf", text, &cfg, &err);
		config_error_format(&err, msg, sizeof(msg));
		print_message("# mqtt case %zu: %s\n", i, msg);
		assert_int_equal(r, -EINVAL);
		assert_int_equal(err.line, c->line + 2);
		assert_string_equal(err.setting, c->setting);
		assert_non_null(strstr(err.text, c->says));
		assert_null(strchr(msg, '\n'));
	}
}

/* --check-config prints the group (a password file's name, never a password) */
static void test_mqtt_printed(void **state)
{
	struct config *cfg = load_ok("bms: { driver = \"sim\"; };\n"
				     "inverter: { protocol = \"pylontech\"; output = \"candump\"; };\n"
				     "mqtt: { enabled = true; username = \"u\";\n"
				     "  password_file = \"/etc/bmsbridge/mqtt-password\"; };\n");
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	config_print(cfg, f);
	assert_int_equal(fclose(f), 0);
	assert_non_null(strstr(out, "mqtt: {\n\tenabled = true;\n\thost = \"localhost\";\n"));
	assert_non_null(strstr(out, "\tpassword_file = \"/etc/bmsbridge/mqtt-password\";\n"));
	assert_non_null(strstr(out, "\tkeepalive_s = 30;\t# s\n"));
	assert_non_null(strstr(out, "\tmin_interval_ms = 1000;\t# ms\n"));
	assert_null(strstr(out, "password ="));
	free(out);
	free(cfg);
}

struct password_case {
	const char *bytes;
	size_t len;
	const char *want; /* NULL: refused */
	const char *says;
};

/* the password file's content: one line, or a clear refusal */
static void test_mqtt_password_parse(void **state)
{
	static char huge[5000];
	const struct password_case cases[] = {
		{ "s3cret", 6, "s3cret", NULL },
		{ "s3cret\n", 7, "s3cret", NULL },
		{ "s3cret\r\n", 8, "s3cret", NULL },
		{ "with space #;\n", 14, "with space #;", NULL },
		{ "", 0, NULL, "empty" },
		{ "\n", 1, NULL, "empty" },
		{ "\r\n", 2, NULL, "empty" },
		{ "ab\0cd\n", 6, NULL, "NUL" },
		{ "one\ntwo\n", 8, NULL, "more than one line" },
		{ "one\n\n", 5, NULL, "more than one line" },
		{ "a\rb", 3, NULL, "more than one line" },
		{ "x\r", 2, NULL, "more than one line" },
		{ huge, sizeof(huge), NULL, "too long" },
		{ huge, MQTT_PASSWORD_MAX - 1, huge, NULL },
		{ huge, MQTT_PASSWORD_MAX, NULL, "too long" },
	};

	memset(huge, 'p', sizeof(huge));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char pw[MQTT_PASSWORD_MAX];
		const char *why = NULL;
		int r;

		memset(pw, 0x5a, sizeof(pw));
		r = mqtt_password_parse(cases[i].bytes, cases[i].len, pw, sizeof(pw), &why);
		print_message("# password case %zu: %d %s\n", i, r, why ? why : "ok");
		if (cases[i].want) {
			assert_int_equal(r, 0);
			assert_int_equal(strlen(pw), cases[i].want == huge ? MQTT_PASSWORD_MAX - 1
									 : strlen(cases[i].want));
			assert_memory_equal(pw, cases[i].want, strlen(pw));
		} else {
			assert_int_equal(r, -EINVAL);
			assert_non_null(why);
			assert_non_null(strstr(why, cases[i].says));
			/* nothing written on failure */
			assert_int_equal((unsigned char)pw[0], 0x5a);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demo_loads),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values_scaled),
		cmocka_unit_test(test_rs485_output_default_and_alias),
		cmocka_unit_test(test_serial_addresses),
		cmocka_unit_test(test_can_addresses),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_error_format),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_not_a_config_file),
		cmocka_unit_test(test_utf8_bom_skipped),
		cmocka_unit_test(test_wide_integers),
		cmocka_unit_test(test_same_device_through_link),
		cmocka_unit_test(test_docs_name_real_keys),
		cmocka_unit_test(test_print_round_trip),
		cmocka_unit_test(test_mqtt_defaults),
		cmocka_unit_test(test_mqtt_values),
		cmocka_unit_test(test_mqtt_node_from_host),
		cmocka_unit_test(test_mqtt_bad),
		cmocka_unit_test(test_mqtt_printed),
		cmocka_unit_test(test_mqtt_password_parse),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
