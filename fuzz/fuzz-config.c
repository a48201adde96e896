/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the config parser (libconfig text -> struct config).
 * Whatever loads must print as a file that loads again to the same struct
 * (what --check-config prints is a valid config); whatever fails must say
 * where, in one line. The loader's own pre-pass (byte order marks, integer
 * literals wider than 32 bits, @ directives) runs on every input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg, again;
	struct config_error err;
	char msg[512];
	char *text, *out = NULL;
	size_t len = 0;
	FILE *f;

	if (size > 8192) {
		return 0;
	}
	text = malloc(size + 1);
	if (!text) {
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	/* @include is refused by the loader itself (it never reaches libconfig) */
	memset(&cfg, 0, sizeof(cfg));
	if (config_load_string("fuzz.conf", text, &cfg, &err) < 0) {
		config_error_format(&err, msg, sizeof(msg));
		if (!err.file[0] || !err.text[0] || strchr(msg, '\n')) {
			__builtin_trap();
		}
		free(text);
		return 0;
	}
	f = open_memstream(&out, &len);
	if (f) {
		config_print(&cfg, f);
		fclose(f);
		memset(&again, 0, sizeof(again));
		if (config_load_string("fuzz.conf", out, &again, &err) < 0 ||
		    memcmp(&cfg, &again, sizeof(cfg)) != 0) {
			__builtin_trap();
		}
		free(out);
	}
	free(text);
	return 0;
}
