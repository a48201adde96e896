/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the strict JSON state reader (bmsbridgectl encode's
 * input). Whatever it accepts must write out and read back to the same
 * state; whatever it refuses must say where.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "state_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct battery_state a, b;
	struct json_object *o;
	char err[160] = "";
	char *text;

	if (size > 65536) {
		return 0;
	}
	text = malloc(size + 1);
	if (!text) {
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	if (battery_state_from_json(text, 7, &a, err, sizeof(err)) < 0) {
		if (!err[0]) {
			__builtin_trap();
		}
	} else {
		o = battery_state_to_json(&a);
		if (!o || battery_state_from_json(json_object_to_json_string(o), 7, &b, err,
						  sizeof(err)) < 0 ||
		    memcmp(&a.bank, &b.bank, sizeof(a.bank)) != 0 || a.pack_count != b.pack_count) {
			__builtin_trap();
		}
		json_object_put(o);
	}
	free(text);
	return 0;
}
