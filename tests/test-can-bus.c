/* SPDX-License-Identifier: MIT */
/*
 * The error-frame decoder of the CAN port, on frames built from the
 * kernel's own definitions (linux/can/error.h): class in can_id, controller
 * status in data[1], error counters in data[6] (tx) and data[7] (rx).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <linux/can/error.h>

#include "can_bus.h"

static struct can_frame err_frame(canid_t cls, uint8_t ctrl, uint8_t tx, uint8_t rx)
{
	struct can_frame f = { .can_id = CAN_ERR_FLAG | cls, .len = CAN_ERR_DLC };

	f.data[1] = ctrl;
	f.data[6] = tx;
	f.data[7] = rx;
	return f;
}

static void test_states(void **state)
{
	struct can_error_info ei;
	struct can_frame f;

	f = err_frame(CAN_ERR_BUSOFF, 0, 255, 0);
	assert_int_equal(can_error_decode(&f, &ei), 0);
	assert_int_equal(ei.new_state, CAN_BUS_OFF);
	assert_non_null(strstr(ei.text, "bus-off"));
	assert_int_equal(ei.tx_errors, 255);

	f = err_frame(CAN_ERR_RESTARTED, 0, 0, 0);
	assert_int_equal(can_error_decode(&f, &ei), 0);
	assert_int_equal(ei.new_state, CAN_BUS_ERROR_ACTIVE);
	assert_true(ei.restarted);

	f = err_frame(CAN_ERR_CRTL, CAN_ERR_CRTL_TX_PASSIVE, 136, 0);
	assert_int_equal(can_error_decode(&f, &ei), 0);
	assert_int_equal(ei.new_state, CAN_BUS_PASSIVE);
	assert_non_null(strstr(ei.text, "tx errors 136"));

	f = err_frame(CAN_ERR_CRTL, CAN_ERR_CRTL_RX_WARNING, 0, 97);
	assert_int_equal(can_error_decode(&f, &ei), 0);
	assert_int_equal(ei.new_state, CAN_BUS_WARNING);

	f = err_frame(CAN_ERR_CRTL, CAN_ERR_CRTL_ACTIVE, 0, 0);
	assert_int_equal(can_error_decode(&f, &ei), 0);
	assert_int_equal(ei.new_state, CAN_BUS_ERROR_ACTIVE);

	f = err_frame(CAN_ERR_CRTL, CAN_ERR_CRTL_RX_OVERFLOW, 0, 0);
	assert_int_equal(can_error_decode(&f, &ei), 0);
	assert_int_equal(ei.new_state, -1);
	assert_true(ei.rx_overflow);
}

/* the common case of a lone node: nobody acknowledges */
static void test_no_ack(void **state)
{
	struct can_error_info ei;
	struct can_frame f = err_frame(CAN_ERR_ACK | CAN_ERR_BUSERROR, 0, 128, 0);

	assert_int_equal(can_error_decode(&f, &ei), 0);
	assert_int_equal(ei.new_state, -1);
	assert_non_null(strstr(ei.text, "no acknowledgement"));
	assert_non_null(strstr(ei.text, "wrong bit rate"));
	assert_null(strchr(ei.text, '\n'));
}

static void test_not_error_frames(void **state)
{
	struct can_error_info ei;
	struct can_frame f = { .can_id = 0x351, .len = 8 };

	assert_int_equal(can_error_decode(&f, &ei), -EBADMSG);
	f.can_id = CAN_ERR_FLAG | CAN_ERR_BUSOFF;
	f.len = 9; /* longer than a classic frame */
	assert_int_equal(can_error_decode(&f, &ei), -EBADMSG);
	/* a short error frame: no counters, still decoded */
	f.len = 2;
	assert_int_equal(can_error_decode(&f, &ei), 0);
	assert_int_equal(ei.new_state, CAN_BUS_OFF);
	assert_int_equal(ei.tx_errors, 0);
}

static void test_state_names(void **state)
{
	assert_string_equal(can_bus_state_name(CAN_BUS_OFF), "bus-off");
	assert_string_equal(can_bus_state_name(CAN_BUS_ERROR_ACTIVE), "error-active");
	assert_string_equal(can_bus_state_name(CAN_BUS_DOWN), "down");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_no_ack),
		cmocka_unit_test(test_not_error_frames),
		cmocka_unit_test(test_state_names),
	};

	return cmocka_run_group_tests_name("can-bus", tests, NULL, NULL);
}
