/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: replaced by the safety module. */
#include <string.h>
#include "config.h"
#include "safety.h"
const struct conf_key safety_conf_keys[] = { { .name = "stale_timeout_ms" } };
const size_t safety_conf_n_keys = 1;
void safety_init(struct safety *s, const struct safety_config *cfg,
		 const struct inverter_protocol *proto)
{
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
}
enum safety_mode safety_evaluate(struct safety *s, struct battery_state *bs, uint64_t now_usec,
				 struct safety_event *ret_event)
{
	bs->bank = bs->packs[0];
	bs->packs_online = 1;
	if (ret_event) {
		ret_event->changed = false;
	}
	return battery_pack_has(&bs->bank, BATTERY_GROUP_LIMITS) ? SAFETY_MODE_NORMAL : SAFETY_MODE_NOT_READY;
}
const char *safety_mode_name(enum safety_mode mode)
{
	return "normal";
}
