/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * MQTT: the client (src/mqtt.c, libmosquitto driven by the daemon's own
 * sd-event loop, never a thread, never a blocking call) and what it carries
 * (src/observer_mqtt.c: the state, Home Assistant discovery).
 *
 * The two halves meet at struct mqtt_sink: the observer publishes through
 * it and is told when the broker (re)connects, so its content can be
 * tested without a broker and the client without a battery.
 *
 * Topics (bmsbridge.conf(5) "mqtt", bmsbridged(8) "MQTT"):
 *	<topic_prefix>/<node_id>/availability	"online" / "offline", QoS 1, retained,
 *						"offline" also the last will
 *	<topic_prefix>/<node_id>/...		the observer's state topics
 *	<discovery_prefix>/<component>/<node_id>/<object>/config
 *						Home Assistant discovery, QoS 1, retained
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MQTT_HOST_MAX 256
#define MQTT_NAME_MAX 64
#define MQTT_PATH_MAX 256
#define MQTT_TOPIC_MAX 256

/* mqtt { } in bmsbridge.conf; read at start and on every reload */
struct mqtt_config {
	bool enabled;
	/* the broker */
	char host[MQTT_HOST_MAX];
	uint32_t port;		       /* 0: 1883, or 8883 with TLS */
	char client_id[MQTT_NAME_MAX]; /* "": "bmsbridge-<node_id>" */
	char username[MQTT_NAME_MAX];
	/*
	 * the password, never in bmsbridge.conf itself: a file readable by its
	 * owner only (group at most), or the systemd credential "mqtt-password"
	 * ($CREDENTIALS_DIRECTORY/mqtt-password, LoadCredential=) when "" and present
	 */
	char password_file[MQTT_PATH_MAX];
	char ca_file[MQTT_PATH_MAX];   /* TLS when set (or ca_path) */
	char ca_path[MQTT_PATH_MAX];   /* a directory of CA certificates (/etc/ssl/certs) */
	char cert_file[MQTT_PATH_MAX]; /* client certificate, with key_file */
	char key_file[MQTT_PATH_MAX];
	uint64_t keepalive_usec;     /* keepalive_s */
	uint64_t reconnect_min_usec; /* back-off: first wait after a loss */
	uint64_t reconnect_max_usec; /* ... doubled up to this */
	uint32_t queue_max;	     /* messages held while the broker is slow or gone */
	/* topics */
	char topic_prefix[MQTT_NAME_MAX];     /* "bmsbridge" */
	char node_id[MQTT_NAME_MAX];	      /* "": the host name, [a-zA-Z0-9_-] only */
	bool discovery;			      /* Home Assistant discovery */
	char discovery_prefix[MQTT_NAME_MAX]; /* "homeassistant" */
	/* what and how often (the observer) */
	bool cells;		    /* one entity per cell */
	uint64_t min_interval_usec; /* a topic at most this often */
	uint64_t max_silence_usec;  /* ... and at least this often, changed or not */
};

/* what the client did so far (bmsbridgectl status, metrics, tests) */
struct mqtt_stats {
	bool connected;
	uint64_t connects;	  /* CONNACK accepted */
	uint64_t disconnects;	  /* connections lost or refused */
	uint64_t published;	  /* messages handed to the socket */
	uint64_t superseded;	  /* replaced in the queue by a newer one of the same topic */
	uint64_t dropped;	  /* dropped because the queue was full (oldest first) */
	uint32_t queued;	  /* messages waiting now */
	uint64_t queued_bytes;	  /* their payload bytes */
	uint64_t next_retry_usec; /* when the next connection attempt is due (0: none) */
	char last_error[128];	  /* why the last connection ended, "" if none */
};

/*
 * The narrow interface the observer publishes through. A message for a
 * topic that is still queued replaces the queued one (the newest state
 * wins; counted as superseded); a full queue drops its oldest message
 * (counted). publish() never blocks and never fails for a slow broker;
 * it fails only for a bad topic or payload (-EINVAL) or no memory.
 */
struct mqtt_sink {
	int (*publish)(struct mqtt_sink *s, const char *topic, const void *payload, size_t len,
		       int qos, bool retain);
	/* set by the observer: called on the loop after every CONNACK (publish
	 * discovery and the whole state again); NULL: not interested */
	void (*connected)(struct mqtt_sink *s, void *userdata);
	void *userdata;
};

struct sd_event;
struct mqtt_client;

/**
 * mqtt_base_topic() - "<topic_prefix>/<node_id>" into @buf (node_id from
 * the host name when empty). Return: 0, or -ENAMETOOLONG.
 */
int mqtt_base_topic(const struct mqtt_config *cfg, char *buf, size_t n);

/**
 * mqtt_client_new() - a client on @e for @cfg; connects at once (without
 * waiting for the result) and keeps reconnecting with back-off.
 * Return: 0, or a negative errno for a setting that cannot work (a missing
 * CA file, a password file others can read): logged, one clear line.
 */
int mqtt_client_new(struct mqtt_client **ret, struct sd_event *e, const struct mqtt_config *cfg);

/* the sink the observer publishes through; valid as long as the client */
struct mqtt_sink *mqtt_client_sink(struct mqtt_client *c);

void mqtt_client_stats(const struct mqtt_client *c, struct mqtt_stats *ret);

/**
 * mqtt_client_free() - publish "offline", disconnect cleanly (bounded:
 * at most MQTT_STOP_USEC), free. NULL-safe.
 */
#define MQTT_STOP_USEC (500 * UINT64_C(1000))
void mqtt_client_free(struct mqtt_client *c);

/*
 * mqtt_client_reload() - apply a reloaded mqtt { } (SIGHUP): when anything
 * the connection depends on changed, publish "offline", disconnect and
 * connect again with the new settings; the sink stays the same, so the
 * observer keeps publishing through it. Return: 0, or a negative errno for
 * a setting that cannot work (the client then keeps its old settings).
 */
int mqtt_client_reload(struct mqtt_client *c, const struct mqtt_config *cfg);

/* the largest payload publish() takes (-EINVAL above): bounds the queue's memory */
#define MQTT_PAYLOAD_MAX 4096
/* the password file's content: one line of at most this minus one byte */
#define MQTT_PASSWORD_MAX 256

/*
 * mqtt_config_check() - the checks across the keys of mqtt { } (the table
 * checks each key alone). Return: 0, or -EINVAL with the key to blame in
 * @ret_key and why in @why.
 */
int mqtt_config_check(const struct mqtt_config *cfg, const char **ret_key, char *why, size_t n);

/* mqtt_node_id() - node_id, or the host name's first label made safe (a-z A-Z 0-9 _ -) */
int mqtt_node_id(const struct mqtt_config *cfg, char *buf, size_t n);

/*
 * mqtt_password_parse() - the password from a password file's bytes: one
 * line, one final "\n" or "\r\n" dropped; empty, NUL bytes, a second line
 * or more than MQTT_PASSWORD_MAX - 1 bytes: -EINVAL with @ret_why.
 */
int mqtt_password_parse(const char *buf, size_t len, char *ret, size_t n, const char **ret_why);

/*
 * mqtt_stats_phrase() - the client's state in a few words for the status
 * line (STATUS=): "mqtt: connected, 0 queued", "mqtt: retrying in 8 s
 * (connection refused: not authorised)", "mqtt: connecting". @now_usec on
 * the clock of next_retry_usec (the loop's CLOCK_MONOTONIC). Pure.
 */
void mqtt_stats_phrase(const struct mqtt_stats *s, uint64_t now_usec, char *buf, size_t n);
