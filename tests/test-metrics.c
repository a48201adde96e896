/* SPDX-License-Identifier: MIT */
/*
 * metrics_render() (src/metrics.c) on known states: exact lines for a few
 * series, HELP and TYPE once per family before its samples, every value a
 * plain decimal (no NaN, no Inf), label values escaped, groups never
 * received left out, the buffer's limit kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "battery.h"
#include "link_stats.h"
#include "metrics.h"
#include "mqtt.h"

static char text[METRICS_TEXT_MAX];

static void fill_pack(struct battery_pack *p, unsigned cells, uint64_t t)
{
	battery_pack_init(p);
	p->voltage_mv = 53125;
	p->current_ma = -12340; /* discharging 12.34 A */
	p->soc_pct = 87;
	p->soh_pct = 100;
	p->remaining_mah = 243600; /* 243.6 Ah = 876960 C */
	p->full_mah = 280000;
	p->cycles = 42;
	p->cell_count = (uint8_t)cells;
	for (unsigned c = 0; c < cells; c++) {
		p->cell_mv[c] = (uint16_t)(3300 + c);
	}
	battery_pack_update_cell_extremes(p);
	p->temp_count = 2;
	p->temp_dc[0] = -55; /* -5.5 degC */
	p->temp_dc[1] = 251;
	battery_pack_update_temp_extremes(p);
	p->mosfet_temp_dc = BATTERY_TEMP_NONE;
	p->charge_voltage_limit_mv = 55200;
	p->discharge_voltage_limit_mv = 48000;
	p->charge_current_limit_ma = 100000;
	p->discharge_current_limit_ma = 150500;
	p->alarms = BATTERY_ALARM_CELL_OVERVOLTAGE;
	p->warnings = BATTERY_ALARM_LOW_SOC;
	p->requests = BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE;
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		battery_pack_mark(p, (enum battery_group)g, t);
	}
}

static struct battery_state st;
static struct battery_pack wire;
static struct inverter_link_stats link;
static const uint8_t addresses[] = { 3, 7 };

static struct metrics_snapshot base_snapshot(void)
{
	battery_state_init(&st, 2);
	fill_pack(&st.packs[0], 4, 10 * 1000000);
	fill_pack(&st.packs[1], 4, 11 * 1000000);
	st.packs[1].voltage_mv = 53000;
	st.packs[1].cell_mv[2] = 3456;
	battery_pack_update_cell_extremes(&st.packs[1]);
	fill_pack(&st.bank, 0, 11 * 1000000);
	st.bank.discharge_current_limit_ma = 301000;
	st.packs_online = 2;
	wire = st.bank;
	wire.charge_current_limit_ma = 80000; /* the wire lags the bank */
	link = (struct inverter_link_stats){
		.bus_state = "error-active", .tx_frames = 1234, .rx_frames = 56, .bus_off = 1
	};
	return (struct metrics_snapshot){
		.version = "1.2.3",
		.cells = true,
		/* monotonic 10 s is Unix time 1700000000 */
		.realtime_offset_usec = (int64_t)1700000000 * 1000000 - 10 * 1000000,
		.mode = SAFETY_MODE_NORMAL,
		.rejected = 5,
		.set_by = { "bms", "bms", "rules", "cap" },
		.state = &st,
		.packs_online_mask = 0x1,
		.pack_addresses = addresses,
		.have_wire = true,
		.wire = &wire,
		.wire_usec = 12 * 1000000,
		.wire_sets = 9,
		.wire_urgent = 2,
		.wire_refused = 1,
		.inverter_present = true,
		.inverter_heard_usec = 10500000,
		.transport = "can",
		.link = &link,
	};
}

static int render(const struct metrics_snapshot *s)
{
	int n = metrics_render(s, text, sizeof(text));

	assert_true(n > 0);
	assert_int_equal(strlen(text), n);
	return n;
}

/* the whole line @line is in the text */
static bool has_line(const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n') {
			return true;
		}
	}
	return false;
}

#define assert_line(l)                                                                             \
	do {                                                                                       \
		if (!has_line(l)) {                                                                \
			fail_msg("missing line: %s", l);                                           \
		}                                                                                  \
	} while (0)

static void test_exact_lines(void **state)
{
	struct metrics_snapshot s = base_snapshot();

	(void)state;
	render(&s);
	assert_line("bmsbridge_build_info{version=\"1.2.3\"} 1");
	assert_line("bmsbridge_safety_mode{mode=\"normal\"} 1");
	assert_line("bmsbridge_safety_mode{mode=\"hold\"} 0");
	assert_line("bmsbridge_safety_mode{mode=\"not-ready\"} 0");
	assert_line("bmsbridge_limit_set_by{limit=\"charge_current\",by=\"rules\"} 1");
	assert_line("bmsbridge_rejected_values_total 5");
	assert_line("bmsbridge_packs 2");
	assert_line("bmsbridge_packs_online 2");
	assert_line("bmsbridge_pack_online{pack=\"3\"} 1");
	assert_line("bmsbridge_pack_online{pack=\"7\"} 0");
	assert_line("bmsbridge_inverter_present 1");
	assert_line("bmsbridge_inverter_last_heard_timestamp_seconds 1700000000.5");
	/* the wire's limits, not the bank's */
	assert_line("bmsbridge_wire_charge_current_limit_amperes 80");
	assert_line("bmsbridge_bank_charge_current_limit_amperes 100");
	assert_line("bmsbridge_wire_discharge_current_limit_amperes 301");
	assert_line("bmsbridge_wire_charge_voltage_limit_volts 55.2");
	assert_line("bmsbridge_wire_discharge_voltage_limit_volts 48");
	assert_line("bmsbridge_wire_state_of_charge_ratio 0.87");
	assert_line("bmsbridge_wire_last_sent_timestamp_seconds 1700000002");
	assert_line("bmsbridge_wire_transmissions_total{kind=\"set\"} 9");
	assert_line("bmsbridge_wire_transmissions_total{kind=\"urgent\"} 2");
	assert_line("bmsbridge_wire_refused_total 1");
	assert_line("bmsbridge_inverter_can_frames_sent_total 1234");
	assert_line("bmsbridge_inverter_can_bus_off_total 1");
	assert_line("bmsbridge_inverter_can_bus_state{state=\"error-active\"} 1");
	/* per pack, labelled by address */
	assert_line("bmsbridge_pack_voltage_volts{pack=\"3\"} 53.125");
	assert_line("bmsbridge_pack_voltage_volts{pack=\"7\"} 53");
	assert_line("bmsbridge_pack_current_amperes{pack=\"3\"} -12.34");
	/* 53.125 V * -12.34 A */
	assert_line("bmsbridge_pack_power_watts{pack=\"3\"} -655.5625");
	assert_line("bmsbridge_pack_state_of_charge_ratio{pack=\"3\"} 0.87");
	assert_line("bmsbridge_pack_state_of_health_ratio{pack=\"3\"} 1");
	assert_line("bmsbridge_pack_remaining_charge_coulombs{pack=\"3\"} 876960");
	assert_line("bmsbridge_pack_full_charge_coulombs{pack=\"3\"} 1008000");
	assert_line("bmsbridge_pack_charge_cycles{pack=\"7\"} 42");
	assert_line("bmsbridge_pack_cell_voltage_max_volts{pack=\"7\"} 3.456");
	assert_line("bmsbridge_pack_cell_voltage_min_volts{pack=\"7\"} 3.3");
	assert_line("bmsbridge_pack_temperature_min_celsius{pack=\"3\"} -5.5");
	assert_line("bmsbridge_pack_temperature_celsius{pack=\"3\",sensor=\"2\"} 25.1");
	assert_line("bmsbridge_pack_cell_voltage_volts{pack=\"7\",cell=\"3\"} 3.456");
	assert_line("bmsbridge_pack_cell_voltage_volts{pack=\"3\",cell=\"4\"} 3.303");
	assert_line("bmsbridge_pack_discharge_current_limit_amperes{pack=\"3\"} 150.5");
	assert_line("bmsbridge_pack_alarm{pack=\"3\",flag=\"cell_overvoltage\"} 1");
	assert_line("bmsbridge_pack_alarm{pack=\"3\",flag=\"cell_undervoltage\"} 0");
	assert_line("bmsbridge_pack_warning{pack=\"7\",flag=\"low_soc\"} 1");
	assert_line("bmsbridge_pack_request{pack=\"7\",request=\"discharge_enable\"} 1");
	assert_line("bmsbridge_pack_request{pack=\"7\",request=\"force_charge\"} 0");
	assert_line("bmsbridge_bank_alarm{flag=\"cell_overvoltage\"} 1");
	assert_line("bmsbridge_bank_voltage_volts 53.125");
	assert_line("bmsbridge_last_update_timestamp_seconds{pack=\"3\",group=\"cells\"} "
		    "1700000000");
	assert_line("bmsbridge_last_update_timestamp_seconds{pack=\"7\",group=\"electrical\"} "
		    "1700000001");
	assert_line("# TYPE bmsbridge_rejected_values_total counter");
	assert_line("# TYPE bmsbridge_pack_voltage_volts gauge");
	/* no MOSFET sensor: no series; no RS485 counters on CAN */
	assert_null(strstr(text, "mosfet_temperature_celsius{"));
	assert_null(strstr(text, "rs485"));
}

/* the format's structure: every family's HELP, TYPE and samples together, once */
static void check_structure(unsigned min_families)
{
	char seen[256][96];
	unsigned n_seen = 0;
	char family[96] = "";
	bool typed = false;
	char *save = NULL;
	char *copy = strdup(text);

	assert_non_null(copy);
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char name[96], rest[64];

		if (sscanf(l, "# HELP %95s", name) == 1) {
			for (unsigned i = 0; i < n_seen; i++) {
				if (strcmp(seen[i], name) == 0) {
					fail_msg("family %s twice", name);
				}
			}
			assert_true(n_seen < 256);
			snprintf(seen[n_seen++], sizeof(seen[0]), "%s", name);
			snprintf(family, sizeof(family), "%s", name);
			typed = false;
			continue;
		}
		if (sscanf(l, "# TYPE %95s %63s", name, rest) == 2) {
			assert_string_equal(name, family);
			assert_true(strcmp(rest, "gauge") == 0 || strcmp(rest, "counter") == 0);
			if (strcmp(rest, "counter") == 0) {
				size_t k = strlen(name);

				assert_true(k > 6 && strcmp(name + k - 6, "_total") == 0);
			}
			typed = true;
			continue;
		}
		/* a sample of the current family, after its TYPE; the value a decimal */
		assert_true(typed);
		assert_int_equal(strncmp(l, family, strlen(family)), 0);
		assert_true(l[strlen(family)] == '{' || l[strlen(family)] == ' ');
		{
			const char *v = strrchr(l, ' ') + 1;
			char *end;

			strtod(v, &end);
			assert_true(*v && *end == '\0');
			assert_null(strpbrk(v, "naNIi"));
		}
	}
	free(copy);
	assert_true(n_seen >= min_families);
}

static void test_structure(void **state)
{
	struct metrics_snapshot s = base_snapshot();

	(void)state;
	render(&s);
	check_structure(40);
}

static void test_escaping(void **state)
{
	struct metrics_snapshot s = base_snapshot();

	(void)state;
	s.version = "1.0 \"beta\"\\x\nnext";
	s.set_by[0] = "a\"b";
	link.bus_state = "odd\\state";
	render(&s);
	assert_line("bmsbridge_build_info{version=\"1.0 \\\"beta\\\"\\\\x\\nnext\"} 1");
	assert_line("bmsbridge_limit_set_by{limit=\"charge_voltage\",by=\"a\\\"b\"} 1");
	assert_line("bmsbridge_inverter_can_bus_state{state=\"odd\\\\state\"} 1");
	check_structure(40);
}

/* a group never received has no series at all (not NaN, not 0) */
static void test_never_received(void **state)
{
	struct metrics_snapshot s = base_snapshot();

	(void)state;
	st.packs[1].updated_usec[BATTERY_GROUP_CELLS] = BATTERY_NEVER;
	st.packs[1].updated_usec[BATTERY_GROUP_STATUS] = BATTERY_NEVER;
	battery_pack_init(&st.bank);
	s.have_wire = false;
	s.link = NULL;
	s.inverter_heard_usec = 0;
	render(&s);
	assert_line("bmsbridge_pack_cell_voltage_max_volts{pack=\"3\"} 3.303");
	assert_null(strstr(text, "cell_voltage_max_volts{pack=\"7\"}"));
	assert_null(strstr(text, "{pack=\"7\",cell="));
	assert_null(strstr(text, "alarm{pack=\"7\""));
	assert_null(strstr(text, "group=\"cells\"} 1700000001"));
	assert_null(strstr(text, "bmsbridge_bank_"));
	assert_null(strstr(text, "bmsbridge_wire_charge"));
	assert_null(strstr(text, "bmsbridge_inverter_can"));
	assert_null(strstr(text, "last_heard"));
	/* the counters are there from the start */
	assert_line("bmsbridge_wire_transmissions_total{kind=\"set\"} 9");
	check_structure(30);
}

static void test_cells_off_and_rs485(void **state)
{
	struct metrics_snapshot s = base_snapshot();

	(void)state;
	s.cells = false;
	s.transport = "rs485";
	link = (struct inverter_link_stats){
		.bus_state = "", .polls = 77, .answered = 70, .errors = 7, .noise = 3
	};
	s.pack_addresses = NULL;
	render(&s);
	assert_null(strstr(text, "bmsbridge_pack_cell_voltage_volts"));
	assert_line("bmsbridge_pack_cell_voltage_max_volts{pack=\"2\"} 3.456");
	assert_line("bmsbridge_inverter_rs485_polls_total 77");
	assert_line("bmsbridge_inverter_rs485_answered_total 70");
	assert_line("bmsbridge_inverter_rs485_error_answers_total 7");
	assert_line("bmsbridge_inverter_rs485_noise_bytes_total 3");
	assert_null(strstr(text, "inverter_can"));
	check_structure(40);
}

/* too small a buffer: -ENOBUFS, never a short text taken for a whole one */
static void test_buffer_limit(void **state)
{
	struct metrics_snapshot s = base_snapshot();
	int n;

	(void)state;
	n = render(&s);
	assert_int_equal(metrics_render(&s, text, (size_t)n), -ENOBUFS);
	assert_int_equal(metrics_render(&s, text, 0), -ENOBUFS);
	assert_int_equal(metrics_render(&s, text, (size_t)n + 1), n);
}

/* the largest state (15 packs of 32 cells, 8 sensors each) fits METRICS_TEXT_MAX */
static void test_largest_fits(void **state)
{
	struct metrics_snapshot s = base_snapshot();
	int n;

	(void)state;
	battery_state_init(&st, BATTERY_PACKS_MAX);
	for (unsigned i = 0; i < BATTERY_PACKS_MAX; i++) {
		fill_pack(&st.packs[i], BATTERY_CELLS_MAX, 10 * 1000000);
		st.packs[i].temp_count = BATTERY_TEMPS_MAX;
		st.packs[i].mosfet_temp_dc = 300;
	}
	fill_pack(&st.bank, 0, 10 * 1000000);
	s.pack_addresses = NULL;
	n = render(&s);
	assert_true(n < METRICS_TEXT_MAX / 2); /* room to grow */
	assert_line("bmsbridge_pack_cell_voltage_volts{pack=\"15\",cell=\"32\"} 3.331");
	assert_line("bmsbridge_pack_mosfet_temperature_celsius{pack=\"15\"} 30");
	check_structure(40);
}

/* MQTT enabled: the client's counters, each family with HELP and TYPE; off: none of them */
static void test_mqtt(void **state)
{
	struct metrics_snapshot s = base_snapshot();
	struct mqtt_stats m = {
		.connected = true,
		.connects = 3,
		.disconnects = 2,
		.published = 1234,
		.superseded = 56,
		.dropped = 7,
		.queued = 8,
		.queued_bytes = 901,
		.next_retry_usec = 0,
	};

	(void)state;
	render(&s);
	assert_null(strstr(text, "bmsbridge_mqtt_"));

	s.mqtt = &m;
	render(&s);
	assert_line("# HELP bmsbridge_mqtt_connected 1 while connected to the MQTT broker.");
	assert_line("# TYPE bmsbridge_mqtt_connected gauge");
	assert_line("bmsbridge_mqtt_connected 1");
	assert_line("# TYPE bmsbridge_mqtt_connects_total counter");
	assert_line("bmsbridge_mqtt_connects_total 3");
	assert_line("# TYPE bmsbridge_mqtt_disconnects_total counter");
	assert_line("bmsbridge_mqtt_disconnects_total 2");
	assert_line("# TYPE bmsbridge_mqtt_published_total counter");
	assert_line("bmsbridge_mqtt_published_total 1234");
	assert_line("# TYPE bmsbridge_mqtt_superseded_total counter");
	assert_line("bmsbridge_mqtt_superseded_total 56");
	assert_line("# TYPE bmsbridge_mqtt_dropped_total counter");
	assert_line("bmsbridge_mqtt_dropped_total 7");
	assert_line("# TYPE bmsbridge_mqtt_queued_messages gauge");
	assert_line("bmsbridge_mqtt_queued_messages 8");
	assert_line("# TYPE bmsbridge_mqtt_queued_bytes gauge");
	assert_line("bmsbridge_mqtt_queued_bytes 901");
	check_structure(48);

	/* gone, with the largest counters: exact, not rounded through a double */
	m.connected = false;
	m.published = UINT64_MAX;
	m.queued = UINT32_MAX;
	render(&s);
	assert_line("bmsbridge_mqtt_connected 0");
	assert_line("bmsbridge_mqtt_published_total 18446744073709551615");
	assert_line("bmsbridge_mqtt_queued_messages 4294967295");
	check_structure(48);
}

/* metrics { listen }: numeric address and port only, both families */
static void test_parse_listen(void **state)
{
	static const char *const bad[] = {
		"",
		"9585",
		":9585",
		"127.0.0.1",
		"127.0.0.1:",
		"127.0.0.1:0",
		"127.0.0.1:65536",
		"127.0.0.1:95a",
		"localhost:9585",
		"::1:9585",
		"[::1]",
		"[::1]9585",
		"[]:9585",
		"1.2.3:9585",
		"127.0.0.1:-1",
	};
	struct sockaddr_storage ss;
	socklen_t len = 0;

	(void)state;
	assert_int_equal(metrics_parse_listen("127.0.0.1:9585", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9585);
	assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(metrics_parse_listen("[::1]:65535", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 65535);
	assert_true(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (metrics_parse_listen(bad[i], &ss, &len) != -EINVAL) {
			fail_msg("\"%s\" accepted", bad[i]);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_lines),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_never_received),
		cmocka_unit_test(test_cells_off_and_rs485),
		cmocka_unit_test(test_buffer_limit),
		cmocka_unit_test(test_largest_fits),
		cmocka_unit_test(test_parse_listen),
		cmocka_unit_test(test_mqtt),
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
