/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the candump log line parser (replay, CLI input). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "candump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct can_frame f;
	char ifname[IFNAMSIZ];
	char line[CANDUMP_LINE_MAX];
	uint64_t t;

	if (candump_parse((const char *)data, size, &t, ifname, &f) == 0) {
		/* whatever parses must format and parse back to the same frame */
		struct can_frame g;
		int n = candump_format(t, ifname, &f, line, sizeof(line));

		if (n < 0 || candump_parse(line, (size_t)n, NULL, NULL, &g) != 0 ||
		    g.can_id != f.can_id || g.len != f.len || memcmp(g.data, f.data, f.len) != 0) {
			__builtin_trap();
		}
	}
	return 0;
}
