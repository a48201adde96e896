# SPDX-License-Identifier: MIT
"""The readers' findings we knowingly accept, each with its reason."""

# Where we knowingly depart from what a reader reads in its document, each
# with the reason (also in bmsbridge-protocols(7)); nothing else is excused.
ACCEPTED = {
    "deye": [
        # the deye profile serves Deye V1.2 and Sol-Ark v1.3, whose 0x351
        # bytes 6-7 are the discharge voltage limit; Deye V1.2 leaves them
        # empty, and an empty field is ignored by the inverter it belongs to
        ("0x351: reserved/undefined bits set in byte 6", None),
        ("0x351: reserved/undefined bits set in byte 7", None),
        # 0x35E is free text the user may set (manufacturer = ...); the
        # default "PYLON" is what Deye inverters are known to accept
        # (Sleeper85/esphome-yambms yambms_canbus.yaml); V1.2 shows "DEYE"
        ("0x35E: manufacturer name 'PYLON'", None),
    ],
    "growatt": [
        # a BMS that gives only the cell extremes (no cell list): the cell
        # count and the cell numbers are unknown and sent as 0, as the real
        # GBLI6532 sends its 0x312 cell count (tests/data/growatt-gbli6532-
        # sph6000.log); V1.04 gives 1~254 and no "unknown" value
        ("0x312: total_cell_count = 0", "no-cell-list"),
        ("0x319: max_cell_voltage_number = 0", "no-cell-list"),
        ("0x319: min_cell_voltage_number = 0", "no-cell-list"),
        # a BMS that gives only the extremes, their cell numbers and its cell
        # count (Daly 0x91 / 0x94): 0x315-0x318 carry 0 mV. V1.04 calls them
        # optional; they are kept because the real GBLI bank always sends them
        # and no Growatt inverter log shows one without them; a frame missing
        # from a set a real inverter expects is a worse guess than zeros
        ("0x319/0x315-0x318:", "no-cell-list"),
        # a BMS that gives no full capacity (Daly: 0x93 has the remaining
        # capacity only): 0x314 FCC is 0, unknown; V1.04 has no such value and
        # the remaining capacity is not turned into a made-up full one
        ("0x314: Gauge RM", "no-full-capacity"),
    ],
}


def accepted(protocol, has_cell_list, violation, has_full_capacity=True):
    """whether @violation, found by the reader in @protocol's output, is one
    of the departures above (for a bank with or without a cell list, with or
    without a full capacity from its BMS)"""
    for prefix, only in ACCEPTED.get(protocol, []):
        if violation.startswith(prefix):
            if only == "no-cell-list":
                return not has_cell_list
            if only == "no-full-capacity":
                return not has_full_capacity
            return True
    return False
