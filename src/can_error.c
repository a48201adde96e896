/* SPDX-License-Identifier: MIT */
/*
 * The pure readers of what the kernel says about a CAN port: error frames
 * (CAN_ERR_FLAG, linux/can/error.h) and rtnetlink link messages
 * (RTM_NEWLINK/RTM_DELLINK, rtnetlink(7)). No I/O: src/can_bus.c feeds
 * them, the unit tests and fuzz/fuzz-can-error.c call them directly.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <net/if.h>

#include <linux/can/error.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "can_error.h"

const char *can_bus_state_name(enum can_bus_state state)
{
	switch (state) {
	case CAN_BUS_DOWN:
		return "down";
	case CAN_BUS_ERROR_ACTIVE:
		return "error-active";
	case CAN_BUS_WARNING:
		return "error-warning";
	case CAN_BUS_PASSIVE:
		return "error-passive";
	case CAN_BUS_OFF:
		return "bus-off";
	}
	return "?";
}

int can_error_decode(const struct can_frame *f, struct can_error_info *ret)
{
	canid_t cls;
	size_t len = 0;

	if (!(f->can_id & CAN_ERR_FLAG) || f->len > CAN_MAX_DLEN) {
		return -EBADMSG;
	}
	memset(ret, 0, sizeof(*ret));
	ret->new_state = -1;
	cls = f->can_id & CAN_ERR_MASK;
	/* linux/can/error.h: data[6] tx and data[7] rx error counter */
	if (f->len == CAN_ERR_DLC) {
		ret->tx_errors = f->data[6];
		ret->rx_errors = f->data[7];
	}
#define SAY(...)                                                                                   \
	(len += (size_t)snprintf(ret->text + len,                                                  \
				 len < sizeof(ret->text) ? sizeof(ret->text) - len : 0,            \
				 __VA_ARGS__))
	if (cls & CAN_ERR_BUSOFF) {
		ret->new_state = CAN_BUS_OFF;
		SAY("bus-off");
	} else if (cls & CAN_ERR_RESTARTED) {
		ret->new_state = CAN_BUS_ERROR_ACTIVE;
		ret->restarted = true;
		SAY("controller restarted");
	} else if (cls & CAN_ERR_CRTL) {
		uint8_t c = f->data[1];

		if (c & (CAN_ERR_CRTL_RX_PASSIVE | CAN_ERR_CRTL_TX_PASSIVE)) {
			ret->new_state = CAN_BUS_PASSIVE;
			SAY("error passive");
		} else if (c & (CAN_ERR_CRTL_RX_WARNING | CAN_ERR_CRTL_TX_WARNING)) {
			ret->new_state = CAN_BUS_WARNING;
			SAY("error warning");
		} else if (c & CAN_ERR_CRTL_ACTIVE) {
			ret->new_state = CAN_BUS_ERROR_ACTIVE;
			SAY("back to error active");
		}
		if (c & (CAN_ERR_CRTL_RX_OVERFLOW | CAN_ERR_CRTL_TX_OVERFLOW)) {
			ret->rx_overflow = true;
			SAY("%scontroller buffer overflow", len ? ", " : "");
		}
	}
	if (cls & CAN_ERR_ACK) {
		/* nobody acknowledges: alone on the bus, or wrong bit rate */
		SAY("%sno acknowledgement (nobody else on the bus, or a wrong bit rate?)",
		    len ? ", " : "");
	}
	if (cls & CAN_ERR_PROT) {
		SAY("%sprotocol violation", len ? ", " : "");
	}
	if (cls & CAN_ERR_TRX) {
		SAY("%stransceiver error (wiring, termination?)", len ? ", " : "");
	}
	if (cls & CAN_ERR_LOSTARB) {
		SAY("%slost arbitration", len ? ", " : "");
	}
	if (cls & CAN_ERR_TX_TIMEOUT) {
		SAY("%stransmit timeout", len ? ", " : "");
	}
	if (cls & CAN_ERR_BUSERROR) {
		SAY("%sbus error", len ? ", " : "");
	}
	if (len == 0) {
		SAY("error frame 0x%08x", (unsigned)cls);
	}
	if (f->len == CAN_ERR_DLC && (ret->tx_errors || ret->rx_errors)) {
		SAY(" (tx errors %u, rx errors %u)", ret->tx_errors, ret->rx_errors);
	}
#undef SAY
	return 0;
}

int can_link_decode(const void *buf, size_t len, const char *ifname, struct can_link_event *ret,
		    size_t n)
{
	size_t name_len = strlen(ifname), got = 0, off = 0;

	while (off < len) {
		struct nlmsghdr h;
		struct ifinfomsg ifi;
		bool ours = false;
		size_t alen, aoff;

		if (len - off < sizeof(h)) {
			return -EBADMSG;
		}
		memcpy(&h, (const uint8_t *)buf + off, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len - off) {
			return -EBADMSG;
		}
		if ((h.nlmsg_type == RTM_NEWLINK || h.nlmsg_type == RTM_DELLINK) &&
		    h.nlmsg_len >= NLMSG_LENGTH(sizeof(ifi))) {
			memcpy(&ifi, (const uint8_t *)buf + off + NLMSG_HDRLEN, sizeof(ifi));
			/* the attributes: struct rtattr, 4-byte aligned (rtnetlink(7)) */
			alen = h.nlmsg_len;
			aoff = NLMSG_LENGTH(NLMSG_ALIGN(sizeof(ifi)));
			while (aoff + sizeof(struct rtattr) <= alen) {
				struct rtattr a;
				const char *p = (const char *)buf + off + aoff;

				memcpy(&a, p, sizeof(a));
				if (a.rta_len < sizeof(a) || a.rta_len > alen - aoff) {
					return -EBADMSG;
				}
				if (a.rta_type == IFLA_IFNAME) {
					size_t plen = a.rta_len - RTA_LENGTH(0);
					const char *name = p + RTA_LENGTH(0);

					ours = strnlen(name, plen) == name_len &&
					       memcmp(name, ifname, name_len) == 0;
					break;
				}
				aoff += RTA_ALIGN(a.rta_len);
			}
			if (ours && got < n) {
				ret[got++] = (struct can_link_event){
					.exists = h.nlmsg_type == RTM_NEWLINK,
					.up = (ifi.ifi_flags & IFF_UP) != 0,
				};
			}
		}
		off += NLMSG_ALIGN(h.nlmsg_len);
	}
	return (int)got;
}
