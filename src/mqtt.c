/* SPDX-License-Identifier: MIT */
/*
 * The MQTT client (include/mqtt.h): libmosquitto 2.0 driven by the
 * daemon's own sd-event loop. Never mosquitto_loop_start() or
 * mosquitto_loop_forever(), never a thread of ours, never a call that
 * waits on the network while the loop runs:
 *
 *  - connect: mosquitto_connect_async() on a numeric address (so its own
 *    getaddrinfo() never reaches DNS); the TCP connect is non-blocking and
 *    the CONNECT packet waits in libmosquitto until the socket is writable;
 *  - a name is resolved with glibc's getaddrinfo_a() (its helper thread is
 *    glibc's, not ours), polled from a timer every RESOLVE_POLL_USEC and
 *    given up after RESOLVE_TIMEOUT_USEC, so a dead DNS server costs the
 *    loop nothing but a timer tick;
 *  - one io source on mosquitto_socket(): EPOLLIN always, EPOLLOUT only
 *    while mosquitto_want_write() (or our queue has something for a
 *    connected broker); mosquitto_loop_read()/_write() on its events;
 *  - a 1 s timer calls mosquitto_loop_misc() for the keepalive: a ping
 *    after keepalive_s of silence, the connection dropped when the broker
 *    does not answer within another keepalive_s (a broker that stops
 *    reading, a cable pulled);
 *  - a CONNACK timeout of our own (keepalive_s): a broker that accepts TCP
 *    and never answers;
 *  - back-off between attempts: reconnect_min_s doubling up to
 *    reconnect_max_s, +-20 % jitter.
 *
 * TLS: our own SSL_CTX (MOSQ_OPT_SSL_CTX, without libmosquitto's
 * defaults): TLS 1.2 or newer, the peer verified against ca_file/ca_path,
 * and its name checked by OpenSSL against the configured host (libmosquitto
 * would check the numeric address we hand it instead).
 *
 * In front of libmosquitto, whose own out queue has no bound, sits a queue
 * of ours of queue_max messages of at most MQTT_PAYLOAD_MAX bytes each,
 * allocated once: messages go to libmosquitto only while connected and
 * only while libmosquitto has nothing left to write, a newer message for
 * a queued topic replaces it, and a full queue drops its oldest message
 * that is not retained (discovery, retained, survives a burst).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <systemd/sd-event.h>

#define LOG_MODULE "mqtt"
#include "log.h"
#include "macro.h"
#include "mqtt.h"

#define RESOLVE_POLL_USEC (10 * USEC_PER_MSEC)
#define RESOLVE_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define MISC_INTERVAL_USEC USEC_PER_SEC
/* messages handed to libmosquitto per loop pass: bounds the time of one pass */
#define DRAIN_BATCH 64
/*
 * QoS 1 messages handed over and not yet acknowledged (PUBACK): at most
 * libmosquitto's own max_inflight_messages (20), as what it holds beyond
 * that waits in its unbounded queue
 */
#define INFLIGHT_MAX 20
/* the kinds of failure one outage says at warning level, each once */
#define MQTT_REASONS_SAID 4
/* the largest password file read */
#define PASSWORD_FILE_MAX 4096

enum mqtt_state {
	MQTT_STATE_WAITING,    /* for the retry timer (or nothing: not started) */
	MQTT_STATE_RESOLVING,  /* getaddrinfo_a() in flight */
	MQTT_STATE_CONNECTING, /* socket open, no CONNACK yet */
	MQTT_STATE_CONNECTED,  /* CONNACK accepted */
	MQTT_STATE_STOPPING,   /* "offline" and DISCONNECT sent, the socket closing */
};

struct mqtt_msg {
	int prev, next; /* in the queue; -1 at the ends (free slots: next only) */
	uint32_t hash;	/* of the topic */
	bool retain;
	uint8_t qos;
	uint16_t len;
	char topic[MQTT_TOPIC_MAX];
	char payload[MQTT_PAYLOAD_MAX];
};

/* one name lookup; on the heap, as glibc may still write it after a failed cancel */
struct mqtt_resolve {
	struct gaicb cb;
	struct addrinfo hints;
	char name[MQTT_HOST_MAX];
};

struct mqtt_client {
	sd_event *event;
	struct mqtt_config cfg;
	struct mosquitto *mosq;
	SSL_CTX *ssl_ctx;
	bool tls;
	uint16_t port;
	char client_id[MQTT_NAME_MAX + 16];
	char avail_topic[MQTT_TOPIC_MAX];
	char password[MQTT_PASSWORD_MAX];

	enum mqtt_state state;
	sd_event_source *io;
	int io_fd;
	sd_event_source *timer; /* retry, resolve poll, CONNACK timeout */
	sd_event_source *misc;	/* mosquitto_loop_misc() */
	struct mqtt_resolve *resolve;
	uint64_t resolve_deadline_usec;
	char addr[INET6_ADDRSTRLEN];

	uint64_t backoff_usec;
	uint32_t rng;
	uint32_t inflight;		/* QoS 1 messages without their PUBACK yet */
	int inflight_mid[INFLIGHT_MAX]; /* their message ids */
	char refused[96];		/* the CONNACK's refusal, for the disconnect that follows */
	char lost[128];			/* why we closed the socket ourselves */
	char mosq_err[100];		/* libmosquitto's last error line (TLS details) */
	/*
	 * the failures said at warning level during this outage: a handshake
	 * can fail two ways in turn (TLS 1.3's certificate alert, or a bare
	 * error when the socket closed first), each is said once
	 */
	char logged[MQTT_REASONS_SAID][128];
	unsigned n_logged;
	struct mqtt_stats stats;

	struct mqtt_sink sink;

	struct mqtt_msg *msgs;
	uint32_t n_msgs;
	int head, tail, free_list;
};

static void schedule_retry(struct mqtt_client *c);
static void sync_io(struct mqtt_client *c);
static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static uint64_t now_usec(const struct mqtt_client *c)
{
	uint64_t t = 0;

	sd_event_now(c->event, CLOCK_MONOTONIC, &t);
	return t;
}

static uint32_t topic_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++) {
		h = (h ^ (uint8_t)*s) * 16777619u;
	}
	return h;
}

/* ---- the queue ------------------------------------------------------------------ */

static void queue_init(struct mqtt_client *c)
{
	c->head = c->tail = -1;
	c->free_list = -1;
	for (int i = (int)c->n_msgs - 1; i >= 0; i--) {
		c->msgs[i].next = c->free_list;
		c->free_list = i;
	}
	c->stats.queued = 0;
	c->stats.queued_bytes = 0;
}

static void queue_unlink(struct mqtt_client *c, int i)
{
	struct mqtt_msg *m = &c->msgs[i];

	if (m->prev >= 0) {
		c->msgs[m->prev].next = m->next;
	} else {
		c->head = m->next;
	}
	if (m->next >= 0) {
		c->msgs[m->next].prev = m->prev;
	} else {
		c->tail = m->prev;
	}
	c->stats.queued--;
	c->stats.queued_bytes -= m->len;
	m->next = c->free_list;
	c->free_list = i;
}

static int queue_find(const struct mqtt_client *c, uint32_t hash, const char *topic)
{
	for (int i = c->head; i >= 0; i = c->msgs[i].next) {
		if (c->msgs[i].hash == hash && streq(c->msgs[i].topic, topic)) {
			return i;
		}
	}
	return -1;
}

/* the oldest message that is not retained, or -1 */
static int queue_oldest_volatile(const struct mqtt_client *c)
{
	for (int i = c->head; i >= 0; i = c->msgs[i].next) {
		if (!c->msgs[i].retain) {
			return i;
		}
	}
	return -1;
}

static void msg_fill(struct mqtt_client *c, struct mqtt_msg *m, const void *payload, size_t len,
		     int qos, bool retain)
{
	c->stats.queued_bytes -= m->len;
	if (len > 0) {
		memcpy(m->payload, payload, len);
	}
	m->len = (uint16_t)len;
	m->qos = (uint8_t)qos;
	m->retain = retain;
	c->stats.queued_bytes += len;
}

/* hand queued messages to libmosquitto while it has nothing left to write */
static void drain(struct mqtt_client *c)
{
	for (int n = 0; n < DRAIN_BATCH && c->head >= 0; n++) {
		struct mqtt_msg *m = &c->msgs[c->head];
		int rc, mid = 0;

		if (c->state != MQTT_STATE_CONNECTED || mosquitto_socket(c->mosq) < 0 ||
		    mosquitto_want_write(c->mosq) || c->inflight >= INFLIGHT_MAX) {
			return;
		}
		rc = mosquitto_publish(c->mosq, &mid, m->topic, m->len, m->payload, m->qos,
				       m->retain);
		if (rc == MOSQ_ERR_SUCCESS) {
			c->stats.published++;
			if (m->qos > 0) {
				c->inflight_mid[c->inflight++] = mid;
			}
		} else {
			/* the connection just went (the disconnect path says so); the
			 * observer republishes everything after the next CONNACK */
			log_debug("publish %s: %s", m->topic, mosquitto_strerror(rc));
			c->stats.dropped++;
		}
		queue_unlink(c, c->head);
	}
}

static int sink_publish(struct mqtt_sink *s, const char *topic, const void *payload, size_t len,
			int qos, bool retain)
{
	struct mqtt_client *c = container_of(s, struct mqtt_client, sink);
	size_t tlen = topic ? strlen(topic) : 0;
	uint32_t h;
	int i;

	if (tlen == 0 || tlen >= MQTT_TOPIC_MAX || strpbrk(topic, "+#") || len > MQTT_PAYLOAD_MAX ||
	    (len > 0 && !payload) || qos < 0 || qos > 2) {
		return -EINVAL;
	}
	h = topic_hash(topic);
	i = queue_find(c, h, topic);
	if (i >= 0) {
		/* the newest state wins, in the place of the one it replaces */
		msg_fill(c, &c->msgs[i], payload, len, qos, retain);
		c->stats.superseded++;
	} else {
		if (c->free_list < 0) {
			int old = queue_oldest_volatile(c);

			if (old < 0 && !retain) {
				/* all retained: the new volatile message is the one to go */
				c->stats.dropped++;
				return 0;
			}
			queue_unlink(c, old >= 0 ? old : c->head);
			c->stats.dropped++;
		}
		i = c->free_list;
		c->free_list = c->msgs[i].next;
		c->msgs[i] = (struct mqtt_msg){ .prev = c->tail, .next = -1, .hash = h };
		memcpy(c->msgs[i].topic, topic, tlen + 1);
		if (c->tail >= 0) {
			c->msgs[c->tail].next = i;
		} else {
			c->head = i;
		}
		c->tail = i;
		c->stats.queued++;
		msg_fill(c, &c->msgs[i], payload, len, qos, retain);
	}
	if (c->state == MQTT_STATE_CONNECTED) {
		drain(c);
		sync_io(c);
	}
	return 0;
}

/* ---- the connection ------------------------------------------------------------- */

static void drop_io(struct mqtt_client *c)
{
	c->io = sd_event_source_disable_unref(c->io);
	c->io_fd = -1;
}

static bool reason_said(const struct mqtt_client *c, const char *why)
{
	for (unsigned i = 0; i < c->n_logged && i < MQTT_REASONS_SAID; i++) {
		if (streq(c->logged[i], why)) {
			return true;
		}
	}
	return false;
}

/* once per distinct reason of an outage at warning level; repeats at debug */
static void connection_failed(struct mqtt_client *c, const char *why)
{
	snprintf(c->stats.last_error, sizeof(c->stats.last_error), "%s", why);
	if (!reason_said(c, why)) {
		/* past MQTT_REASONS_SAID kinds, the oldest slot is reused */
		snprintf(c->logged[c->n_logged++ % MQTT_REASONS_SAID], sizeof(c->logged[0]), "%s",
			 why);
		log_warning("MQTT broker %s:%u: %s; retrying every %llu-%llu s until it works "
			    "(said once)",
			    c->cfg.host, c->port, why,
			    (unsigned long long)(c->cfg.reconnect_min_usec / USEC_PER_SEC),
			    (unsigned long long)(c->cfg.reconnect_max_usec / USEC_PER_SEC));
	} else {
		log_debug("MQTT broker %s:%u: %s, again", c->cfg.host, c->port, why);
	}
	schedule_retry(c);
}

/* close the socket now (a CONNACK that never came, a socket error) */
static void force_close(struct mqtt_client *c, const char *why)
{
	int fd = mosquitto_socket(c->mosq);

	snprintf(c->lost, sizeof(c->lost), "%s", why);
	if (fd >= 0) {
		/* the next read sees the end of the stream: libmosquitto closes the
		 * socket and calls on_disconnect(), which goes on from c->lost */
		shutdown(fd, SHUT_RDWR);
		mosquitto_loop_read(c->mosq, 1);
	}
	if (c->state == MQTT_STATE_CONNECTING || c->state == MQTT_STATE_CONNECTED) {
		/*
		 * libmosquitto kept it (a TLS handshake in progress reads an
		 * error as "try again"): stop watching it; the next
		 * mosquitto_connect_async() closes it
		 */
		mosquitto_disconnect(c->mosq);
		drop_io(c);
		c->state = MQTT_STATE_WAITING;
		c->stats.connected = false;
		c->stats.disconnects++;
		connection_failed(c, why);
	}
	c->lost[0] = '\0';
}

static void on_connect(struct mosquitto *mosq, void *userdata, int rc)
{
	struct mqtt_client *c = userdata;
	int r, mid = 0;

	if (rc != 0) {
		snprintf(c->refused, sizeof(c->refused), "refused the connection: %s",
			 mosquitto_connack_string(rc));
		return;
	}
	c->state = MQTT_STATE_CONNECTED;
	c->timer = sd_event_source_disable_unref(c->timer);
	c->stats.connected = true;
	c->stats.connects++;
	c->stats.next_retry_usec = 0;
	c->stats.last_error[0] = '\0';
	c->backoff_usec = c->cfg.reconnect_min_usec;
	if (c->n_logged) {
		log_notice("MQTT broker %s:%u: connected again (after: %s)", c->cfg.host, c->port,
			   c->logged[(c->n_logged - 1) % MQTT_REASONS_SAID]);
	} else {
		log_info("MQTT broker %s:%u: connected%s", c->cfg.host, c->port,
			 c->tls ? " (TLS)" : "");
	}
	c->n_logged = 0;
	c->inflight = 0;
	r = mosquitto_publish(mosq, &mid, c->avail_topic, 6, "online", 1, true);
	if (r == MOSQ_ERR_SUCCESS) {
		c->stats.published++;
		c->inflight_mid[c->inflight++] = mid;
	}
	if (c->sink.connected) {
		c->sink.connected(&c->sink, c->sink.userdata);
	}
}

/*
 * Why a connection ended, the same words whichever path reported it (the
 * connect call itself, a read, a write, the keepalive), so that a failure
 * that repeats is logged once.
 */
static void describe(const struct mqtt_client *c, int rc, int err, char *why, size_t n)
{
	if (c->lost[0]) {
		snprintf(why, n, "%s", c->lost);
	} else if (c->refused[0]) {
		snprintf(why, n, "%s", c->refused);
	} else if (rc == MOSQ_ERR_KEEPALIVE) {
		snprintf(why, n, "no answer to a ping within keepalive_s (%llu s)",
			 (unsigned long long)(c->cfg.keepalive_usec / USEC_PER_SEC));
	} else if (c->tls && c->mosq_err[0]) {
		/* what OpenSSL said, however it reached us */
		snprintf(why, n, "TLS: %.100s", c->mosq_err);
	} else if (c->tls && rc == MOSQ_ERR_ERRNO && err == EPROTO) {
		snprintf(why, n, "TLS: the handshake failed");
	} else if (rc == MOSQ_ERR_ERRNO) {
		snprintf(why, n, "%s", strerror(err));
	} else {
		snprintf(why, n, "%s", mosquitto_strerror(rc));
	}
}

static void on_disconnect(struct mosquitto *mosq, void *userdata, int rc)
{
	struct mqtt_client *c = userdata;
	int err = errno;
	char why[128];

	drop_io(c);
	if (c->state == MQTT_STATE_STOPPING || c->state == MQTT_STATE_WAITING) {
		return;
	}
	describe(c, rc, err, why, sizeof(why));
	c->refused[0] = '\0';
	c->state = MQTT_STATE_WAITING;
	c->stats.connected = false;
	c->stats.disconnects++;
	connection_failed(c, why);
}

/* a QoS 0 message written, or a QoS 1 message acknowledged: room for one more */
static void on_publish(struct mosquitto *mosq, void *userdata, int mid)
{
	struct mqtt_client *c = userdata;

	for (uint32_t i = 0; i < c->inflight; i++) {
		if (c->inflight_mid[i] == mid) {
			c->inflight_mid[i] = c->inflight_mid[--c->inflight];
			return;
		}
	}
}

static void on_log(struct mosquitto *mosq, void *userdata, int level, const char *str)
{
	struct mqtt_client *c = userdata;

	if (level & MOSQ_LOG_ERR) {
		/* "OpenSSL Error[0]: error:0A000086:SSL routines::certificate verify failed" */
		const char *p = strstr(str, "::");

		snprintf(c->mosq_err, sizeof(c->mosq_err), "%s", p ? p + 2 : str);
	}
	log_debug("libmosquitto: %s", str);
}

static void sync_io(struct mqtt_client *c)
{
	int fd = c->mosq ? mosquitto_socket(c->mosq) : -1;
	uint32_t events = EPOLLIN;
	int r;

	if (fd < 0 || fd != c->io_fd) {
		drop_io(c);
	}
	if (fd < 0) {
		return;
	}
	/* our queue's turn comes when the socket takes more (drain() is batched) */
	if (mosquitto_want_write(c->mosq) || (c->state == MQTT_STATE_CONNECTED &&
					      c->stats.queued > 0 && c->inflight < INFLIGHT_MAX)) {
		events |= EPOLLOUT;
	}
	if (!c->io) {
		r = sd_event_add_io(c->event, &c->io, fd, events, on_io, c);
		if (r < 0) {
			force_close(c, "cannot watch the socket");
			return;
		}
		c->io_fd = fd;
		(void)sd_event_source_set_description(c->io, "mqtt");
		return;
	}
	(void)sd_event_source_set_io_events(c->io, events);
}

/* the socket's error (a refused TCP connect under TLS is only seen here) */
static void check_socket_error(struct mqtt_client *c)
{
	int fd = mosquitto_socket(c->mosq);
	int err = 0;
	socklen_t len = sizeof(err);

	if (fd < 0 || c->state == MQTT_STATE_STOPPING) {
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0) {
		err = ECONNRESET;
	}
	force_close(c, strerror(err));
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct mqtt_client *c = userdata;
	int rc = MOSQ_ERR_SUCCESS;

	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		rc = mosquitto_loop_read(c->mosq, 1);
	}
	if (rc == MOSQ_ERR_SUCCESS && (revents & EPOLLOUT) && mosquitto_socket(c->mosq) >= 0) {
		rc = mosquitto_loop_write(c->mosq, 1);
	}
	if (mosquitto_socket(c->mosq) < 0 &&
	    (c->state == MQTT_STATE_CONNECTING || c->state == MQTT_STATE_CONNECTED)) {
		/* closed without on_disconnect() (a failed TLS handshake) */
		on_disconnect(c->mosq, c, rc ? rc : MOSQ_ERR_CONN_LOST);
	} else if ((revents & (EPOLLHUP | EPOLLERR)) && mosquitto_socket(c->mosq) >= 0 &&
		   c->state != MQTT_STATE_STOPPING) {
		check_socket_error(c);
	}
	drain(c);
	sync_io(c);
	return 0;
}

static int on_misc(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct mqtt_client *c = userdata;

	if (mosquitto_socket(c->mosq) >= 0) {
		mosquitto_loop_misc(c->mosq);
		drain(c);
		sync_io(c);
	}
	(void)sd_event_source_set_time_relative(s, MISC_INTERVAL_USEC);
	return 0;
}

static int on_connack_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct mqtt_client *c = userdata;
	char why[96];

	c->timer = sd_event_source_disable_unref(c->timer);
	if (c->state == MQTT_STATE_CONNECTING) {
		snprintf(why, sizeof(why), "no CONNACK within %llu s (keepalive_s)",
			 (unsigned long long)(c->cfg.keepalive_usec / USEC_PER_SEC));
		force_close(c, why);
	}
	return 0;
}

static void connect_to(struct mqtt_client *c, const char *addr)
{
	char why[200];
	int rc, r;

	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->refused[0] = c->lost[0] = c->mosq_err[0] = '\0';
	errno = 0;
	rc = mosquitto_connect_async(c->mosq, addr, c->port,
				     (int)(c->cfg.keepalive_usec / USEC_PER_SEC));
	if (rc != MOSQ_ERR_SUCCESS) {
		describe(c, rc, errno, why, sizeof(why));
		drop_io(c);
		c->state = MQTT_STATE_WAITING;
		c->stats.disconnects++;
		connection_failed(c, why);
		return;
	}
	c->state = MQTT_STATE_CONNECTING;
	c->timer = sd_event_source_disable_unref(c->timer);
	r = sd_event_add_time_relative(c->event, &c->timer, CLOCK_MONOTONIC, c->cfg.keepalive_usec,
				       USEC_PER_MSEC, on_connack_timeout, c);
	if (r < 0) {
		log_warning("MQTT: cannot add the CONNACK timer: %s", strerror(-r));
	}
	sync_io(c);
}

static void resolve_cancel(struct mqtt_client *c)
{
	if (!c->resolve) {
		return;
	}
	if (gai_cancel(&c->resolve->cb) == EAI_NOTCANCELED) {
		/* glibc's helper still holds it: wait a little, else leave it to it */
		const struct gaicb *list[1] = { &c->resolve->cb };
		struct timespec ts = { .tv_nsec = 100 * 1000 * 1000 };

		gai_suspend(list, 1, &ts);
		if (gai_error(&c->resolve->cb) == EAI_INPROGRESS) {
			log_debug("MQTT: a name lookup of %s is still running, abandoned",
				  c->resolve->name);
			c->resolve = NULL;
			return;
		}
	}
	if (c->resolve->cb.ar_result) {
		freeaddrinfo(c->resolve->cb.ar_result);
	}
	free(c->resolve);
	c->resolve = NULL;
}

static int on_resolve_poll(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct mqtt_client *c = userdata;
	char addr[INET6_ADDRSTRLEN] = "";
	char why[160];
	int e;

	e = gai_error(&c->resolve->cb);
	if (e == EAI_INPROGRESS) {
		if (usec < c->resolve_deadline_usec) {
			/* a one-shot timer: fired, it is off until enabled again */
			(void)sd_event_source_set_time_relative(s, RESOLVE_POLL_USEC);
			(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
			return 0;
		}
		resolve_cancel(c);
		c->timer = sd_event_source_disable_unref(c->timer);
		c->state = MQTT_STATE_WAITING;
		snprintf(why, sizeof(why), "resolving the name timed out after %llu s",
			 (unsigned long long)(RESOLVE_TIMEOUT_USEC / USEC_PER_SEC));
		connection_failed(c, why);
		return 0;
	}
	c->timer = sd_event_source_disable_unref(c->timer);
	if (e == 0) {
		const struct addrinfo *ai = c->resolve->cb.ar_result;

		e = ai ? getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), NULL, 0,
				     NI_NUMERICHOST)
		       : EAI_NONAME;
	}
	resolve_cancel(c);
	if (e != 0) {
		c->state = MQTT_STATE_WAITING;
		snprintf(why, sizeof(why), "cannot resolve the name: %s", gai_strerror(e));
		connection_failed(c, why);
		return 0;
	}
	log_debug("MQTT: %s is %s", c->cfg.host, addr);
	connect_to(c, addr);
	return 0;
}

static bool is_numeric(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void start_attempt(struct mqtt_client *c)
{
	struct gaicb *list[1];
	int r;

	c->timer = sd_event_source_disable_unref(c->timer);
	c->stats.next_retry_usec = 0;
	if (is_numeric(c->cfg.host)) {
		connect_to(c, c->cfg.host);
		return;
	}
	c->resolve = calloc(1, sizeof(*c->resolve));
	if (!c->resolve) {
		connection_failed(c, "out of memory");
		return;
	}
	snprintf(c->resolve->name, sizeof(c->resolve->name), "%s", c->cfg.host);
	c->resolve->hints = (struct addrinfo){ .ai_family = AF_UNSPEC,
					       .ai_socktype = SOCK_STREAM,
					       .ai_flags = AI_ADDRCONFIG };
	c->resolve->cb =
		(struct gaicb){ .ar_name = c->resolve->name, .ar_request = &c->resolve->hints };
	list[0] = &c->resolve->cb;
	r = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (r != 0) {
		free(c->resolve);
		c->resolve = NULL;
		connection_failed(c, gai_strerror(r));
		return;
	}
	c->state = MQTT_STATE_RESOLVING;
	c->resolve_deadline_usec = now_usec(c) + RESOLVE_TIMEOUT_USEC;
	r = sd_event_add_time_relative(c->event, &c->timer, CLOCK_MONOTONIC, RESOLVE_POLL_USEC,
				       USEC_PER_MSEC, on_resolve_poll, c);
	if (r < 0) {
		resolve_cancel(c);
		c->state = MQTT_STATE_WAITING;
		connection_failed(c, "cannot add the name lookup timer");
	}
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct mqtt_client *c = userdata;

	c->timer = sd_event_source_disable_unref(c->timer);
	start_attempt(c);
	return 0;
}

static void schedule_retry(struct mqtt_client *c)
{
	uint64_t delay = c->backoff_usec, jitter;
	int r;

	/* +-20 %: xorshift32, seeded at start */
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 17;
	c->rng ^= c->rng << 5;
	jitter = delay / 5;
	if (jitter > 0) {
		delay = delay - jitter + c->rng % (2 * jitter + 1);
	}
	c->backoff_usec *= 2;
	if (c->backoff_usec > c->cfg.reconnect_max_usec) {
		c->backoff_usec = c->cfg.reconnect_max_usec;
	}
	c->timer = sd_event_source_disable_unref(c->timer);
	r = sd_event_add_time_relative(c->event, &c->timer, CLOCK_MONOTONIC, delay, USEC_PER_MSEC,
				       on_retry, c);
	if (r < 0) {
		log_error("MQTT: cannot add the retry timer: %s; no more attempts", strerror(-r));
		return;
	}
	c->stats.next_retry_usec = now_usec(c) + delay;
}

/* ---- settings ------------------------------------------------------------------- */

/* the password: password_file, or the systemd credential; "" without a username */
static int load_password(const struct mqtt_config *cfg, char *ret)
{
	char path[MQTT_PATH_MAX + 64];
	char buf[PASSWORD_FILE_MAX + 1];
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	const char *why = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	ssize_t n;

	ret[0] = '\0';
	if (cfg->password_file[0]) {
		snprintf(path, sizeof(path), "%s", cfg->password_file);
	} else if (cfg->username[0] && dir && dir[0] == '/') {
		snprintf(path, sizeof(path), "%s/mqtt-password", dir);
		if (access(path, F_OK) < 0) {
			return 0;
		}
	} else {
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		return log_error_errno(-errno, "MQTT password file %s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		return log_error_errno(-errno, "MQTT password file %s: %s", path, strerror(errno));
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("MQTT password file %s: not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & S_IRWXO) {
		log_error("MQTT password file %s: mode %04o lets others read it; chmod o-rwx %s "
			  "(and keep it owned by root or the daemon's user)",
			  path, (unsigned)(st.st_mode & 07777), path);
		return -EACCES;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 0) {
		return log_error_errno(-errno, "MQTT password file %s: %s", path, strerror(errno));
	}
	if (mqtt_password_parse(buf, (size_t)n, ret, MQTT_PASSWORD_MAX, &why) < 0) {
		explicit_bzero(buf, sizeof(buf));
		log_error("MQTT password file %s %s", path, why);
		return -EINVAL;
	}
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

static bool tls_wanted(const struct mqtt_config *cfg)
{
	return cfg->ca_file[0] || cfg->ca_path[0];
}

static SSL_CTX *make_ssl_ctx(const struct mqtt_config *cfg)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	X509_VERIFY_PARAM *param;
	char err[160];

	if (!ctx) {
		log_error("MQTT TLS: cannot create an OpenSSL context");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file[0] ? cfg->ca_file : NULL,
					  cfg->ca_path[0] ? cfg->ca_path : NULL) != 1) {
		ERR_error_string_n(ERR_get_error(), err, sizeof(err));
		log_error("MQTT TLS: cannot load the CA certificates of %s%s%s: %s", cfg->ca_file,
			  cfg->ca_file[0] && cfg->ca_path[0] ? " and " : "", cfg->ca_path, err);
		goto fail;
	}
	if (cfg->cert_file[0]) {
		if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
			ERR_error_string_n(ERR_get_error(), err, sizeof(err));
			log_error("MQTT TLS: cannot load the client certificate %s: %s",
				  cfg->cert_file, err);
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			ERR_error_string_n(ERR_get_error(), err, sizeof(err));
			log_error(
				"MQTT TLS: cannot use the key %s (PEM, no passphrase, matching %s): "
				"%s",
				cfg->key_file, cfg->cert_file, err);
			goto fail;
		}
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	param = SSL_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (is_numeric(cfg->host) ? X509_VERIFY_PARAM_set1_ip_asc(param, cfg->host) != 1
				  : X509_VERIFY_PARAM_set1_host(param, cfg->host, 0) != 1) {
		goto fail;
	}
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

/* a mosquitto instance for @cfg, with its password and TLS context; nothing on failure */
static int make_mosq(struct mqtt_client *c, const struct mqtt_config *cfg,
		     struct mosquitto **ret_mosq, SSL_CTX **ret_ctx, char *ret_password,
		     char *ret_avail)
{
	struct mosquitto *mosq = NULL;
	SSL_CTX *ctx = NULL;
	char node[MQTT_NAME_MAX];
	char id[sizeof(c->client_id)];
	int r;

	r = mqtt_base_topic(cfg, ret_avail, MQTT_TOPIC_MAX - 16);
	if (r < 0) {
		log_error("MQTT: topic_prefix and node_id make too long a topic");
		return r;
	}
	strcat(ret_avail, "/availability");
	r = mqtt_node_id(cfg, node, sizeof(node));
	if (r < 0) {
		return r;
	}
	if (cfg->client_id[0]) {
		snprintf(id, sizeof(id), "%s", cfg->client_id);
	} else {
		/* MQTT 3.1.1 brokers must take 23 characters; most take more */
		snprintf(id, sizeof(id), "bmsbridge-%s", node);
	}
	r = load_password(cfg, ret_password);
	if (r < 0) {
		return r;
	}
	if (tls_wanted(cfg)) {
		ctx = make_ssl_ctx(cfg);
		if (!ctx) {
			r = -EINVAL;
			goto fail;
		}
	}
	mosq = mosquitto_new(id, true, c);
	if (!mosq) {
		r = -ENOMEM;
		goto fail;
	}
	mosquitto_connect_callback_set(mosq, on_connect);
	mosquitto_disconnect_callback_set(mosq, on_disconnect);
	mosquitto_log_callback_set(mosq, on_log);
	mosquitto_publish_callback_set(mosq, on_publish);
	if (mosquitto_will_set(mosq, ret_avail, 7, "offline", 1, true) != MOSQ_ERR_SUCCESS) {
		r = -EINVAL;
		goto fail;
	}
	if (cfg->username[0] &&
	    mosquitto_username_pw_set(mosq, cfg->username, ret_password[0] ? ret_password : NULL) !=
		    MOSQ_ERR_SUCCESS) {
		r = -EINVAL;
		goto fail;
	}
	if (ctx) {
		/* ours as it is: libmosquitto's defaults would check the name against
		 * the numeric address it is given */
		mosquitto_int_option(mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
		if (mosquitto_void_option(mosq, MOSQ_OPT_SSL_CTX, ctx) != MOSQ_ERR_SUCCESS) {
			log_error("MQTT TLS: this libmosquitto has no TLS");
			r = -EOPNOTSUPP;
			goto fail;
		}
	}
	*ret_mosq = mosq;
	*ret_ctx = ctx;
	snprintf(c->client_id, sizeof(c->client_id), "%s", id);
	return 0;
fail:
	mosquitto_destroy(mosq);
	SSL_CTX_free(ctx);
	explicit_bzero(ret_password, MQTT_PASSWORD_MAX);
	return r;
}

static void install(struct mqtt_client *c, const struct mqtt_config *cfg, struct mosquitto *mosq,
		    SSL_CTX *ctx)
{
	c->cfg = *cfg;
	c->mosq = mosq;
	c->ssl_ctx = ctx;
	c->tls = ctx != NULL;
	c->port = (uint16_t)(cfg->port ? cfg->port : c->tls ? 8883 : 1883);
	c->backoff_usec = cfg->reconnect_min_usec;
	c->n_logged = 0;
}

/*
 * Publish "offline", DISCONNECT. @wait_usec > 0 (the daemon stopping):
 * write both out for at most that long, the loop being done; 0 (a reload):
 * what the socket takes now, the broker's last will covering the rest.
 *
 * The last messages go at QoS 0: libmosquitto holds a QoS 1 message back
 * while 20 others await their PUBACK, and would send the DISCONNECT ahead
 * of it, which cancels the will; at QoS 0 they are written in order before
 * the DISCONNECT on the same stream, so the broker either gets them and
 * the DISCONNECT, or neither and publishes the will ("offline") itself.
 */
static void stop_connection(struct mqtt_client *c, uint64_t wait_usec)
{
	c->timer = sd_event_source_disable_unref(c->timer);
	resolve_cancel(c);
	if (c->state == MQTT_STATE_CONNECTED) {
		/* what is still queued first (the packs' own "offline" from the observer's stop) */
		while (wait_usec > 0 && c->head >= 0) {
			struct mqtt_msg *m = &c->msgs[c->head];

			if (mosquitto_publish(c->mosq, NULL, m->topic, m->len, m->payload, 0,
					      m->retain) == MOSQ_ERR_SUCCESS) {
				c->stats.published++;
			}
			queue_unlink(c, c->head);
		}
		c->state = MQTT_STATE_STOPPING;
		if (mosquitto_publish(c->mosq, NULL, c->avail_topic, 7, "offline", 0, true) ==
		    MOSQ_ERR_SUCCESS) {
			c->stats.published++;
		}
		mosquitto_disconnect(c->mosq);
		if (wait_usec > 0) {
			struct timespec t0, t;
			int64_t left_ms = (int64_t)(wait_usec / USEC_PER_MSEC);

			clock_gettime(CLOCK_MONOTONIC, &t0);
			while (mosquitto_socket(c->mosq) >= 0 && left_ms > 0) {
				struct pollfd p = { .fd = mosquitto_socket(c->mosq),
						    .events = POLLIN };

				if (mosquitto_want_write(c->mosq)) {
					p.events |= POLLOUT;
				}
				if (poll(&p, 1, (int)left_ms) > 0) {
					if (p.revents & POLLOUT) {
						mosquitto_loop_write(c->mosq, 1);
					}
					if ((p.revents & ~POLLOUT) &&
					    mosquitto_socket(c->mosq) >= 0) {
						mosquitto_loop_read(c->mosq, 1);
					}
				}
				clock_gettime(CLOCK_MONOTONIC, &t);
				left_ms = (int64_t)(wait_usec / USEC_PER_MSEC) -
					  ((t.tv_sec - t0.tv_sec) * 1000 +
					   (t.tv_nsec - t0.tv_nsec) / 1000000);
			}
		}
	}
	c->state = MQTT_STATE_STOPPING;
	c->stats.connected = false;
	drop_io(c);
}

/* ---- the interface -------------------------------------------------------------- */

int mqtt_client_new(struct mqtt_client **ret, sd_event *e, const struct mqtt_config *cfg)
{
	static bool lib_ready;
	struct mqtt_client *c;
	struct mosquitto *mosq = NULL;
	SSL_CTX *ctx = NULL;
	int r;

	if (!lib_ready) {
		mosquitto_lib_init();
		lib_ready = true;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		return -ENOMEM;
	}
	c->event = sd_event_ref(e);
	c->io_fd = -1;
	c->sink.publish = sink_publish;
	c->rng = (uint32_t)now_usec(c) ^ (uint32_t)getpid() ^ 0x9e3779b9u;
	if (!c->rng) {
		c->rng = 1;
	}
	c->n_msgs = cfg->queue_max;
	c->msgs = calloc(c->n_msgs, sizeof(*c->msgs));
	if (!c->msgs) {
		r = -ENOMEM;
		goto fail;
	}
	queue_init(c);
	r = make_mosq(c, cfg, &mosq, &ctx, c->password, c->avail_topic);
	if (r < 0) {
		goto fail;
	}
	install(c, cfg, mosq, ctx);
	r = sd_event_add_time_relative(e, &c->misc, CLOCK_MONOTONIC, MISC_INTERVAL_USEC,
				       100 * USEC_PER_MSEC, on_misc, c);
	if (r < 0) {
		goto fail;
	}
	(void)sd_event_source_set_enabled(c->misc, SD_EVENT_ON);
	log_info("MQTT: broker %s:%u%s, client id %s, availability on %s", c->cfg.host, c->port,
		 c->tls ? " over TLS" : "", c->client_id, c->avail_topic);
	start_attempt(c);
	*ret = c;
	return 0;
fail:
	mqtt_client_free(c);
	return r;
}

struct mqtt_sink *mqtt_client_sink(struct mqtt_client *c)
{
	return &c->sink;
}

void mqtt_client_stats(const struct mqtt_client *c, struct mqtt_stats *ret)
{
	*ret = c->stats;
}

/* what the connection itself depends on (the rest is the observer's) */
static bool same_connection(const struct mqtt_config *a, const struct mqtt_config *b)
{
	return streq(a->host, b->host) && a->port == b->port && streq(a->client_id, b->client_id) &&
	       streq(a->username, b->username) && streq(a->password_file, b->password_file) &&
	       streq(a->ca_file, b->ca_file) && streq(a->ca_path, b->ca_path) &&
	       streq(a->cert_file, b->cert_file) && streq(a->key_file, b->key_file) &&
	       a->keepalive_usec == b->keepalive_usec &&
	       a->reconnect_min_usec == b->reconnect_min_usec &&
	       a->reconnect_max_usec == b->reconnect_max_usec && a->queue_max == b->queue_max &&
	       streq(a->topic_prefix, b->topic_prefix) && streq(a->node_id, b->node_id);
}

int mqtt_client_reload(struct mqtt_client *c, const struct mqtt_config *cfg)
{
	struct mosquitto *mosq = NULL;
	SSL_CTX *ctx = NULL;
	struct mqtt_msg *msgs = NULL;
	char password[MQTT_PASSWORD_MAX];
	char avail[MQTT_TOPIC_MAX];
	int r;

	if (same_connection(&c->cfg, cfg)) {
		/* the same file may hold a new password: that reconnects too */
		bool same = load_password(cfg, password) < 0 || streq(password, c->password);

		explicit_bzero(password, sizeof(password));
		if (same) {
			c->cfg = *cfg;
			return 0;
		}
	}
	if (cfg->queue_max != c->n_msgs) {
		msgs = calloc(cfg->queue_max, sizeof(*msgs));
		if (!msgs) {
			return -ENOMEM;
		}
	}
	r = make_mosq(c, cfg, &mosq, &ctx, password, avail);
	if (r < 0) {
		free(msgs);
		log_error("MQTT: the new settings cannot work (above); keeping the connection "
			  "as it is");
		return r;
	}
	log_info("MQTT: settings changed, reconnecting");
	stop_connection(c, 0);
	mosquitto_destroy(c->mosq);
	SSL_CTX_free(c->ssl_ctx);
	if (msgs) {
		free(c->msgs);
		c->msgs = msgs;
		c->n_msgs = cfg->queue_max;
		queue_init(c);
	}
	memcpy(c->password, password, sizeof(password));
	explicit_bzero(password, sizeof(password));
	memcpy(c->avail_topic, avail, sizeof(avail));
	install(c, cfg, mosq, ctx);
	c->state = MQTT_STATE_WAITING;
	start_attempt(c);
	return 0;
}

void mqtt_client_free(struct mqtt_client *c)
{
	if (!c) {
		return;
	}
	log_debug(
		"MQTT: %llu connections, %llu lost; %llu published, %llu superseded, %llu dropped; "
		"%u queued (%llu bytes)",
		(unsigned long long)c->stats.connects, (unsigned long long)c->stats.disconnects,
		(unsigned long long)c->stats.published, (unsigned long long)c->stats.superseded,
		(unsigned long long)c->stats.dropped, c->stats.queued,
		(unsigned long long)c->stats.queued_bytes);
	if (c->mosq) {
		stop_connection(c, MQTT_STOP_USEC);
		mosquitto_destroy(c->mosq);
	}
	resolve_cancel(c);
	SSL_CTX_free(c->ssl_ctx);
	drop_io(c);
	c->timer = sd_event_source_disable_unref(c->timer);
	c->misc = sd_event_source_disable_unref(c->misc);
	sd_event_unref(c->event);
	explicit_bzero(c->password, sizeof(c->password));
	free(c->msgs);
	free(c);
}
