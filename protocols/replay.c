/* SPDX-License-Identifier: MIT */
/*
 * `replay`: a candump log file as the BMS (BMS_TRANSPORT_FILE). The driver
 * itself decodes nothing: src/input_replay.c reads the log named by
 * bms.port and feeds each frame to the ->decode_frame() of the CAN driver
 * bms.replay_format names (pylontech-can, ...), at the recorded pace
 * times bms.replay_speed. Listed here so that `driver = "replay"` selects
 * that input and `bmsbridgectl list` shows it.
 */
#include "bms.h"

const struct bms_driver replay_bms_driver = {
	.name = "replay",
	.description = "a candump log played as the BMS (bms.replay_format decodes it)",
	.transport = BMS_TRANSPORT_FILE,
};
