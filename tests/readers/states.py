# SPDX-License-Identifier: MIT
"""Battery states for the independent-reader checks: edge cases that have
gone wrong before (negative temperatures, limits between two wire steps,
zero limits, withdrawn enables, several packs) plus seeded random ones."""
import random

ALARMS = ["cell_overvoltage", "cell_undervoltage", "pack_overvoltage", "pack_undervoltage",
          "charge_overtemp", "charge_undertemp", "discharge_overtemp", "discharge_undertemp",
          "charge_overcurrent", "discharge_overcurrent", "short_circuit", "mosfet_overtemp",
          "cell_imbalance", "bms_internal"]


def pack(cells_mv, temps_dc, voltage_mv=None, current_ma=0, soc=50, soh=98, full_mah=280000,
         cycles=12, cvl=55200, dvl=46400, ccl=100000, dcl=150000, alarms=(), warnings=(),
         requests=("charge_enable", "discharge_enable"), mosfet_dc=None):
    if voltage_mv is None:
        voltage_mv = sum(cells_mv)
    return {
        "electrical": {"voltage_mv": voltage_mv, "current_ma": current_ma},
        "capacity": {"soc_pct": soc, "soh_pct": soh, "remaining_mah": full_mah * soc // 100,
                     "full_mah": full_mah, "cycles": cycles},
        "cells": {"cell_mv": list(cells_mv)},
        "temps": {"temp_dc": list(temps_dc), "mosfet_temp_dc": mosfet_dc},
        "limits": {"charge_voltage_limit_mv": cvl, "discharge_voltage_limit_mv": dvl,
                   "charge_current_limit_ma": ccl, "discharge_current_limit_ma": dcl},
        "status": {"alarms": list(alarms), "warnings": list(warnings),
                   "requests": list(requests)},
    }


def state(bank, packs=None, online=None):
    packs = packs or [bank]
    return {"pack_count": len(packs), "packs_online": len(packs) if online is None else online,
            "bank": bank, "packs": packs}


def named_states():
    c16 = [3281 + (i % 3) for i in range(16)]
    out = {}
    out["typical-discharging"] = state(pack(c16, [215, 223, 219, 230], current_ma=-12300,
                                            soc=64, cycles=88, mosfet_dc=301))
    out["charging"] = state(pack([3390 + i for i in range(16)], [251, 260], current_ma=45600,
                                 soc=91, ccl=70000))
    out["idle-full"] = state(pack([3450] * 16, [200], current_ma=0, soc=100, ccl=0,
                                  requests=("discharge_enable",)))
    out["negative-temps"] = state(pack(c16, [-123, -45, -5, 0], current_ma=-800, soc=30,
                                       warnings=("charge_undertemp",)))
    # limits between two wire steps: upper bounds must round down, DVL up
    out["between-steps"] = state(pack(c16, [150], cvl=55249, dvl=48050, ccl=70049,
                                      dcl=149999, current_ma=-1049))
    out["zero-limits"] = state(pack(c16, [350], ccl=0, dcl=0, requests=(),
                                    alarms=("cell_overvoltage",)))
    out["alarms"] = state(pack(c16, [560, 540], alarms=("discharge_overtemp", "cell_imbalance"),
                               warnings=("charge_overtemp",), soc=45))
    p1 = pack(c16, [210, 212], current_ma=-20000, soc=70)
    p2 = pack([3279 + (i % 2) for i in range(16)], [208, 199], current_ma=-19000, soc=68)
    bank = pack(c16 + [], [210, 212, 208, 199], current_ma=-39000, soc=69,
                full_mah=560000, dcl=300000, ccl=200000)
    # the safety layer gives a bank the cell list of the pack with the highest cell
    bank["cells"] = {"cell_mv": list(c16), "cell_min_mv": 3279, "cell_max_mv": 3283,
                     "cell_min_idx": 0, "cell_max_idx": 2, "cell_min_pack": 1, "cell_max_pack": 0}
    out["two-packs"] = state(bank, [p1, p2])
    # a BMS that reports only the extremes (Pylontech CAN 0x373-style inputs)
    ext = pack(c16, [180, 190], current_ma=-5000, soc=55)
    ext["cells"] = {"cell_mv": [], "cell_min_mv": 3270, "cell_max_mv": 3301,
                    "cell_min_idx": None, "cell_max_idx": None}
    ext["temps"] = {"temp_dc": [], "temp_min_dc": 180, "temp_max_dc": 190, "mosfet_temp_dc": None}
    out["extremes-only"] = state(ext)
    out["force-charge"] = state(pack([3010] * 16, [120], soc=3, current_ma=0,
                                     requests=("charge_enable", "force_charge"),
                                     alarms=("cell_undervoltage",)))
    return out


def random_states(seed, n):
    rnd = random.Random(seed)
    out = {}
    for k in range(n):
        cells = [rnd.randint(2800, 3650) for _ in range(rnd.choice((8, 15, 16)))]
        temps = [rnd.randint(-200, 600) for _ in range(rnd.randint(1, 4))]
        req = [r for r in ("charge_enable", "discharge_enable") if rnd.random() < 0.8]
        out["random-%d" % k] = state(pack(
            cells, temps, current_ma=rnd.randint(-200000, 150000), soc=rnd.randint(0, 100),
            soh=rnd.randint(60, 100), cycles=rnd.randint(0, 6000),
            full_mah=rnd.choice((100000, 280000, 314000)),
            cvl=rnd.randint(len(cells) * 3400, len(cells) * 3650),
            dvl=rnd.randint(len(cells) * 2800, len(cells) * 3100),
            ccl=rnd.randint(0, 200000), dcl=rnd.randint(0, 250000), requests=req,
            alarms=rnd.sample(ALARMS, rnd.randint(0, 2)),
            warnings=rnd.sample(ALARMS, rnd.randint(0, 2))))
    return out
