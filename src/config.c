/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: replaced by the config module. */
#include <errno.h>
#include <string.h>
#include "config.h"
int config_load(const char *path, struct config *ret, struct config_error *ret_err)
{
	memset(ret_err, 0, sizeof(*ret_err));
	return -ENOSYS;
}
int config_load_string(const char *name, const char *text, struct config *ret,
		       struct config_error *ret_err)
{
	memset(ret_err, 0, sizeof(*ret_err));
	return -ENOSYS;
}
void config_error_format(const struct config_error *err, char *buf, size_t n)
{
	snprintf(buf, n, "%s:%d: %s: %s", err->file, err->line, err->setting, err->text);
}
void config_print(const struct config *cfg, FILE *f)
{
}
