/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the MQTT password file's content (src/mqtt_config.c,
 * mqtt_password_parse()). A password that is taken is one line of at
 * most MQTT_PASSWORD_MAX - 1 bytes without NUL, CR or LF, and the input
 * with at most its final line end; a refusal always says why and writes
 * nothing.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mqtt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char pw[MQTT_PASSWORD_MAX];
	const char *why = NULL;
	size_t n;

	memset(pw, 0x5a, sizeof(pw));
	if (mqtt_password_parse((const char *)data, size, pw, sizeof(pw), &why) < 0) {
		assert(why && why[0]);
		assert((unsigned char)pw[0] == 0x5a);
		return 0;
	}
	n = strlen(pw);
	assert(n > 0 && n < MQTT_PASSWORD_MAX);
	assert(memcmp(pw, data, n) == 0);
	assert(!memchr(pw, '\r', n) && !memchr(pw, '\n', n));
	assert(size == n || (size == n + 1 && data[n] == '\n') ||
	       (size == n + 2 && data[n] == '\r' && data[n + 1] == '\n'));
	return 0;
}
