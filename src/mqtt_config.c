/* SPDX-License-Identifier: MIT */
/*
 * The pure half of the MQTT client (include/mqtt.h), in the core library
 * so that the config parser, the observer and the tests use it without
 * libmosquitto: the cross-key checks of mqtt { }, the base topic, and the
 * password file's content.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "mqtt.h"

/* node_id: what Home Assistant accepts in an object id, and no MQTT wildcard or level */
static bool node_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

/* a prefix: any printable character but the wildcards; '/' inside only */
static const char *prefix_problem(const char *p)
{
	size_t n = strlen(p);

	if (n == 0) {
		return "must not be empty";
	}
	if (p[0] == '/' || p[n - 1] == '/') {
		return "must not begin or end with '/'";
	}
	for (const char *c = p; *c; c++) {
		if (*c == '+' || *c == '#') {
			return "must not contain the MQTT wildcards '+' or '#'";
		}
		if ((unsigned char)*c <= ' ' || *c == 0x7f) {
			return "must not contain spaces or control characters";
		}
		if (c[0] == '/' && c[1] == '/') {
			return "must not contain an empty level (\"//\")";
		}
	}
	return NULL;
}

int mqtt_config_check(const struct mqtt_config *cfg, const char **ret_key, char *why, size_t n)
{
	const char *p;

#define FAIL(key, ...)                                                                             \
	do {                                                                                       \
		*ret_key = (key);                                                                  \
		snprintf(why, n, __VA_ARGS__);                                                     \
		return -EINVAL;                                                                    \
	} while (0)

	if (cfg->enabled && !cfg->host[0]) {
		FAIL("host", "required when enabled: the broker's name or address");
	}
	if (cfg->cert_file[0] && !cfg->key_file[0]) {
		FAIL("cert_file", "needs key_file (the client certificate's private key)");
	}
	if (cfg->key_file[0] && !cfg->cert_file[0]) {
		FAIL("key_file", "needs cert_file (the client certificate)");
	}
	if (cfg->cert_file[0] && !cfg->ca_file[0] && !cfg->ca_path[0]) {
		FAIL("cert_file", "a client certificate is for TLS: set ca_file or ca_path too");
	}
	if (cfg->password_file[0] && !cfg->username[0]) {
		FAIL("password_file", "a password needs a username");
	}
	for (p = cfg->node_id; *p; p++) {
		if (!node_char_ok(*p)) {
			FAIL("node_id",
			     "\"%s\": letters, digits, '_' and '-' only (no '+', '#', '/' or spaces)",
			     cfg->node_id);
		}
	}
	p = prefix_problem(cfg->topic_prefix);
	if (p) {
		FAIL("topic_prefix", "%s", p);
	}
	p = prefix_problem(cfg->discovery_prefix);
	if (p) {
		FAIL("discovery_prefix", "%s", p);
	}
	if (cfg->reconnect_min_usec > cfg->reconnect_max_usec) {
		FAIL("reconnect_min_s", "%llu s is above reconnect_max_s (%llu s)",
		     (unsigned long long)(cfg->reconnect_min_usec / USEC_PER_SEC),
		     (unsigned long long)(cfg->reconnect_max_usec / USEC_PER_SEC));
	}
	if (cfg->min_interval_usec > cfg->max_silence_usec) {
		FAIL("min_interval_ms", "%llu ms is above max_silence_s (%llu s)",
		     (unsigned long long)(cfg->min_interval_usec / USEC_PER_MSEC),
		     (unsigned long long)(cfg->max_silence_usec / USEC_PER_SEC));
	}
#undef FAIL
	return 0;
}

int mqtt_node_id(const struct mqtt_config *cfg, char *buf, size_t n)
{
	char host[MQTT_HOST_MAX] = "";
	size_t i;

	if (cfg->node_id[0]) {
		if (strlen(cfg->node_id) >= n) {
			return -ENAMETOOLONG;
		}
		snprintf(buf, n, "%s", cfg->node_id);
		return 0;
	}
	/* the host name's first label, anything else as '_' */
	if (gethostname(host, sizeof(host) - 1) < 0 || !host[0]) {
		snprintf(host, sizeof(host), "bmsbridge");
	}
	host[strcspn(host, ".")] = '\0';
	if (strlen(host) >= n) {
		return -ENAMETOOLONG;
	}
	for (i = 0; host[i]; i++) {
		buf[i] = node_char_ok(host[i]) ? host[i] : '_';
	}
	buf[i] = '\0';
	return 0;
}

int mqtt_base_topic(const struct mqtt_config *cfg, char *buf, size_t n)
{
	char node[MQTT_HOST_MAX];
	int r;

	r = mqtt_node_id(cfg, node, sizeof(node));
	if (r < 0) {
		return r;
	}
	r = snprintf(buf, n, "%s/%s", cfg->topic_prefix, node);
	if (r < 0 || (size_t)r >= n) {
		return -ENAMETOOLONG;
	}
	return 0;
}

/*
 * The password file: the password on its first line. One final "\n" or
 * "\r\n" is the line's end, not the password's; anything else is refused
 * rather than guessed at (a second line, a NUL, a lone CR).
 */
int mqtt_password_parse(const char *buf, size_t len, char *ret, size_t n, const char **ret_why)
{
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r') {
			len--;
		}
	}
	if (len == 0) {
		*ret_why = "is empty (the password on its first line)";
		return -EINVAL;
	}
	if (len >= n) {
		*ret_why = "is too long (a password of at most 255 bytes on one line)";
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\0') {
			*ret_why = "contains a NUL byte";
			return -EINVAL;
		}
		if (buf[i] == '\n' || buf[i] == '\r') {
			*ret_why = "has more than one line (the password alone, on one line)";
			return -EINVAL;
		}
	}
	memcpy(ret, buf, len);
	ret[len] = '\0';
	return 0;
}
