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
		"  read_method = \"registers\"; poll_interval_ms = 2500; request_gap_ms = 0; };\n"
		"inverter: { protocol = \"deye\"; port = \"can1\"; bitrate = 250000;\n"
		"  soc_follows_limits = true; manufacturer = \"JK-BMS\"; inverter_timeout_s = 90; };\n"
		"safety: { stale_timeout_ms = 2500; max_charge_current_a = 50;\n"
		"  charge_temp_min_c = -5; charge_cold_full_c = 5; comm_loss = \"hold\"; };\n");

	assert_int_equal(cfg->daemon.log_level, LOG_DEBUG);
	assert_int_equal(cfg->bms.n_addresses, 3);
	assert_int_equal(cfg->bms.addresses[0], 3);
	assert_int_equal(cfg->bms.addresses[2], 15);
	assert_int_equal(cfg->bms.read_method, 0);
	assert_int_equal(cfg->bms.poll_interval_usec, 2500 * USEC_PER_MSEC);
	assert_int_equal(cfg->bms.request_gap_usec, 0);
	/* output defaults to the protocol's transport */
	assert_int_equal(cfg->inverter.output, OUTPUT_KIND_CAN);
	assert_int_equal(cfg->inverter.bitrate, 250000);
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
	{ "bms: { driver = \"sim\"; addresses = [0]; };", 1, "bms.addresses", "out of range" },
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demo_loads),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values_scaled),
		cmocka_unit_test(test_rs485_output_default_and_alias),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_error_format),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_print_round_trip),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
