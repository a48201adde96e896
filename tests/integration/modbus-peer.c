/* SPDX-License-Identifier: MIT */
/*
 * modbus-peer: one Modbus RTU device played by libmodbus (Debian
 * libmodbus5), not by us, for test-modbus-peer.py. The daemon frames its
 * Modbus requests and parses the answers itself (src/serial_engine.c,
 * protocols/seplos_v3.c, protocols/pace_modbus.c); here an independent,
 * widely used implementation of "MODBUS over Serial Line" checks our
 * requests (address, function, CRC: a request it cannot take is counted)
 * and builds the answers we must read.
 *
 * The register image comes on stdin, one item a line, before the bus
 * starts: "unit N", "hr ADDR VALUE" (holding register, function 0x03),
 * "ir ADDR VALUE" (input register, 0x04), "co ADDR 0|1" (coil, 0x01),
 * then "end". Addresses and values are decimal or 0x hex. The pty pair is
 * ours: libmodbus serves its master side (modbus_set_socket()), the slave
 * side's name is printed as "ready PTY" for the daemon to open.
 *
 * On SIGTERM: "stats requests N answered N bad N" on stdout, exit 0.
 * Usage: modbus-peer < IMAGE
 */
#include <errno.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <modbus.h>

#define IMAGE_MAX 4096

struct item {
	char kind[3];
	unsigned addr, value;
};

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* lowest and count of the addresses of one kind, 0 if none */
static unsigned span(const struct item *it, size_t n, const char *kind, unsigned *lo)
{
	unsigned min = UINT32_MAX, max = 0;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(it[i].kind, kind) == 0) {
			min = it[i].addr < min ? it[i].addr : min;
			max = it[i].addr > max ? it[i].addr : max;
		}
	}
	*lo = min == UINT32_MAX ? 0 : min;
	return min == UINT32_MAX ? 0 : max - min + 1;
}

int main(void)
{
	static struct item it[IMAGE_MAX];
	uint8_t req[MODBUS_RTU_MAX_ADU_LENGTH];
	unsigned long requests = 0, answered = 0, bad = 0;
	unsigned unit = 1, hr_lo, ir_lo, co_lo, hr_n, ir_n, co_n;
	modbus_mapping_t *map;
	struct termios raw;
	char line[128];
	size_t n = 0;
	modbus_t *ctx;
	int master, slave;

	while (fgets(line, sizeof(line), stdin)) {
		char kind[3];
		unsigned long a, v;

		if (strncmp(line, "end", 3) == 0) {
			break;
		}
		if (sscanf(line, "unit %lu", &a) == 1) {
			unit = (unsigned)a;
			continue;
		}
		if (sscanf(line, "%2s %li %li", kind, (long *)&a, (long *)&v) != 3 ||
		    n == IMAGE_MAX || a > 0xFFFF || v > 0xFFFF ||
		    (strcmp(kind, "hr") && strcmp(kind, "ir") && strcmp(kind, "co"))) {
			fprintf(stderr, "modbus-peer: bad image line: %s", line);
			return 2;
		}
		memcpy(it[n].kind, kind, 3); /* "hr", "ir" or "co" and its NUL */
		it[n].addr = (unsigned)a;
		it[n].value = (unsigned)v;
		n++;
	}
	hr_n = span(it, n, "hr", &hr_lo);
	ir_n = span(it, n, "ir", &ir_lo);
	co_n = span(it, n, "co", &co_lo);
	map = modbus_mapping_new_start_address(co_lo, co_n, 0, 0, hr_lo, hr_n, ir_lo, ir_n);
	if (!map) {
		fprintf(stderr, "modbus-peer: mapping: %s\n", modbus_strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(it[i].kind, "hr") == 0) {
			map->tab_registers[it[i].addr - hr_lo] = (uint16_t)it[i].value;
		} else if (strcmp(it[i].kind, "ir") == 0) {
			map->tab_input_registers[it[i].addr - ir_lo] = (uint16_t)it[i].value;
		} else {
			map->tab_bits[it[i].addr - co_lo] = it[i].value ? 1 : 0;
		}
	}

	if (openpty(&master, &slave, NULL, NULL, NULL) < 0) {
		perror("modbus-peer: openpty");
		return 1;
	}
	tcgetattr(slave, &raw);
	cfmakeraw(&raw);
	tcsetattr(slave, TCSANOW, &raw);
	tcgetattr(master, &raw);
	cfmakeraw(&raw);
	tcsetattr(master, TCSANOW, &raw);

	/* the RTU backend on a file descriptor of ours: no modbus_connect() */
	ctx = modbus_new_rtu("/dev/null", 9600, 'N', 8, 1);
	if (!ctx || modbus_set_slave(ctx, (int)unit) < 0 || modbus_set_socket(ctx, master) < 0) {
		fprintf(stderr, "modbus-peer: context: %s\n", modbus_strerror(errno));
		return 1;
	}
	/* libmodbus's wait retries on EINTR: wake up every 200 ms to see SIGTERM */
	modbus_set_indication_timeout(ctx, 0, 200000);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	printf("ready %s\n", ttyname(slave));
	fflush(stdout);

	while (!stop) {
		int len = modbus_receive(ctx, req);

		if (len == 0) {
			continue; /* a request to another unit: not ours, no answer */
		}
		if (len < 0) {
			if (stop) {
				break;
			}
			if (errno == ETIMEDOUT || errno == EINTR) {
				continue; /* a quiet bus */
			}
			/* a frame libmodbus could not take: bad CRC, length, function */
			bad++;
			fprintf(stderr, "modbus-peer: request refused: %s\n",
				modbus_strerror(errno));
			modbus_flush(ctx);
			continue;
		}
		requests++;
		if (modbus_reply(ctx, req, len, map) > 0) {
			answered++;
		}
	}
	printf("stats requests %lu answered %lu bad %lu\n", requests, answered, bad);
	fflush(stdout);
	modbus_mapping_free(map);
	modbus_set_socket(ctx, -1);
	modbus_free(ctx);
	close(master);
	close(slave);
	return 0;
}
