#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Home Assistant MQTT discovery reader: checks what a device publishes, and
models what Home Assistant would show for it.

Written from Home Assistant's own documentation and published definitions
only (see SOURCES below), not from the code of the device being checked.

Public API
==========

check_discovery(topic, payload, discovery_prefix="homeassistant") -> list[str]
    Violations of one message on a discovery config topic; [] = accepted.
    `payload` is bytes (or str).  An empty payload means "remove the entity"
    and is accepted.  Each string starts with a severity:
      "rejected: ..."  Home Assistant refuses the config (no entity, or an
                       existing entity keeps its previous config);
      "warning: ..."   Home Assistant sets the entity up but logs a warning
                       or raises a repair issue, or the documentation says
                       the config is wrong (e.g. energy with state_class
                       measurement, a device block without unique_id).
    Topic form <prefix>/<component>/[<node_id>/]<object_id>/config,
    component support, JSON object, abbreviations (both forms accepted),
    "~" base topic, required keys per component, device_class, unit,
    state_class, options, device block, availability, expire_after,
    value_template syntax, qos and topics are checked.  Device-based
    discovery (<prefix>/device/<object_id>/config with "cmps") is checked
    per component.

expand_discovery(payload_dict) -> dict
    The payload with abbreviations expanded (entity, device, origin and
    availability keys) and "~" substituted, as HA's discovery does.

render_template(template, payload) -> (kind, text)
    The tiny value_template evaluator: kind is "ok" (text is what HA would
    render), "error" (HA would log a template error and keep the previous
    state) or "unsupported" (outside the subset this reader implements:
    value / value_json with .a, ['a'], [0] accessors and the filters float,
    float(default), int, int(default), round, round(n)).

class HAModel(discovery_prefix="homeassistant")
    feed(topic, payload, retained: bool, now: float)
        Every message seen, in order.  Retained messages are kept as a
        broker would and replayed to an entity when its config arrives
        (HA subscribes to the state topic only then).
    entities(now=None) -> dict
        unique_id -> {component, name, device_class, unit, state_class,
        state, available, ha_state, device, discovery_topic, state_topic}
        state: "unknown" until a usable message; numbers as the strings HA
        stores; binary_sensor/switch "on"/"off"; "unsupported-template" when
        the value_template is outside the subset.  available: availability
        rules and expire_after relative to `now` (default: the time of the
        last message fed).  ha_state: "unavailable" when not available,
        else state.  device: {identifiers, connections, via_device} or None.
        An entity without unique_id is keyed "<no unique_id> <component>
        <discovery id>".  Removed entities disappear.
    devices(now=None) -> dict
        First identifier (or "connection:<type>:<value>") -> {identifiers,
        connections, name, manufacturer, model, model_id, sw_version,
        hw_version, serial_number, via_device, entities: [keys]}; a device
        disappears with its last entity.
    log: list[str]  what the model ignored or refused, and why.

CLI:  ha_mqtt_reader.py check < dump
    Each line: <topic> <retained 0|1> <payload as a JSON string or hex:...>.
    Prints the violations of every config message, then the entities and
    devices as JSON.  Exit 1 if any violation was printed.
ha_mqtt_reader.py --self-test   TAP; exit 1 on any failure.

SOURCES (each table below repeats its source)
=======
- home-assistant.io source/_integrations/mqtt.markdown ("MQTT Discovery":
  topic format, discovery payload, "~" base topic, the three abbreviation
  tables, device-based discovery, availability, examples); as stored at the
  version documenting device-based discovery (HA 2024.11 and later).
- home-assistant.io sensor.mqtt / binary_sensor.mqtt / sensor / binary_sensor
  pages (required keys, expire_after, payload_on/off defaults ON/OFF,
  device block: "At least one of identifiers or connections must be
  present", "Only works when unique_id is set").
- home-assistant/core homeassistant/components/sensor/const.py
  (SensorDeviceClass, SensorStateClass, DEVICE_CLASS_UNITS,
  DEVICE_CLASS_STATE_CLASSES, STATE_CLASS_UNITS), the version with
  MEASUREMENT_ANGLE, with the unit enums of homeassistant/const.py
  2025.5.0b6 (MAJOR_VERSION 2025, MINOR_VERSION 5).  Another stored
  version (commit 00eb6680fbf6) differs: a temperature_delta class, no
  MEASUREMENT_ANGLE, power without mW, reactive_power only var, gas without
  L; this reader follows the one matching the 2025.5 unit enums.
- home-assistant/core homeassistant/components/mqtt/abbreviations.py
  (both the stored versions; union with the docs table).
- home-assistant/core homeassistant/components/mqtt/discovery.py
  (TOPIC_MATCHER, abbreviation expansion, "~" substitution).
- home-assistant/core homeassistant/components/mqtt/sensor.py
  validate_sensor_state_and_device_class_config (2025 versions): blank unit
  dropped; options only with device_class enum and without unit or
  state_class; last_reset_value_template only with state_class total;
  STATE_CLASS_UNITS; unit not in DEVICE_CLASS_UNITS -> vol.Invalid.
- home-assistant/core homeassistant/components/binary_sensor/__init__.py
  BinarySensorDeviceClass.

Where the docs and HA's code differ this reader follows the code, and says
so where it matters:
- expire_after is cv.positive_int in HA's code, which accepts 0 (= off);
  the docs only say "number of seconds".
- the docs' abbreviation table and abbreviations.py differ by version; both
  are accepted (a key is expanded if either lists it).
- DEVICE_CLASS_UNITS[power] in code lacks "BTU/h" although the docstring of
  SensorDeviceClass.POWER lists it: "BTU/h" is rejected, as HA does.
- a unit not allowed for the device class is a hard rejection in the MQTT
  sensor (code); a state_class not allowed for the device class is only a
  warning in HA's sensor entity (code); both are reported.
"""

import datetime
import json
import math
import re
import sys

# ---------------------------------------------------------------------------
# Abbreviations.
# Source: home-assistant.io mqtt.markdown "Supported abbreviations in MQTT
# discovery messages" (device-discovery era, 2024.11+), united with
# home-assistant/core homeassistant/components/mqtt/abbreviations.py
# (ABBREVIATIONS, DEVICE_ABBREVIATIONS) of earlier stored versions.
ABBREVIATIONS = {
    "act_t": "action_topic", "act_tpl": "action_template",
    "atype": "automation_type", "aux_cmd_t": "aux_command_topic",
    "aux_stat_t": "aux_state_topic", "aux_stat_tpl": "aux_state_template",
    "av_tones": "available_tones", "avty": "availability",
    "avty_mode": "availability_mode", "avty_t": "availability_topic",
    "avty_tpl": "availability_template",
    "away_mode_cmd_t": "away_mode_command_topic",
    "away_mode_stat_t": "away_mode_state_topic",
    "away_mode_stat_tpl": "away_mode_state_template",
    "b_tpl": "blue_template", "bat_lev_t": "battery_level_topic",
    "bat_lev_tpl": "battery_level_template",
    "bri_cmd_t": "brightness_command_topic",
    "bri_cmd_tpl": "brightness_command_template", "bri_scl": "brightness_scale",
    "bri_stat_t": "brightness_state_topic", "bri_tpl": "brightness_template",
    "bri_val_tpl": "brightness_value_template",
    "chrg_t": "charging_topic", "chrg_tpl": "charging_template",
    "cln_t": "cleaning_topic", "cln_tpl": "cleaning_template",
    "clr_temp_cmd_tpl": "color_temp_command_template",
    "clr_temp_cmd_t": "color_temp_command_topic",
    "clr_temp_k": "color_temp_kelvin",
    "clr_temp_stat_t": "color_temp_state_topic",
    "clr_temp_tpl": "color_temp_template",
    "clr_temp_val_tpl": "color_temp_value_template",
    "clrm": "color_mode", "clrm_stat_t": "color_mode_state_topic",
    "clrm_val_tpl": "color_mode_value_template",
    "cmd_off_tpl": "command_off_template", "cmd_on_tpl": "command_on_template",
    "cmd_t": "command_topic", "cmd_tpl": "command_template",
    "cmps": "components", "cod_arm_req": "code_arm_required",
    "cod_dis_req": "code_disarm_required",
    "cod_trig_req": "code_trigger_required", "cont_type": "content_type",
    "curr_temp_t": "current_temperature_topic",
    "curr_temp_tpl": "current_temperature_template",
    "dev": "device", "dev_cla": "device_class",
    "dir_cmd_t": "direction_command_topic",
    "dir_cmd_tpl": "direction_command_template",
    "dir_stat_t": "direction_state_topic",
    "dir_val_tpl": "direction_value_template",
    "dock_t": "docked_topic", "dock_tpl": "docked_template",
    "dsp_prc": "display_precision", "e": "encoding",
    "en": "enabled_by_default", "ent_cat": "entity_category",
    "ent_pic": "entity_picture", "err_t": "error_topic",
    "err_tpl": "error_template", "evt_typ": "event_types",
    "exp_aft": "expire_after", "fanspd_t": "fan_speed_topic",
    "fanspd_tpl": "fan_speed_template", "fanspd_lst": "fan_speed_list",
    "flsh_tlng": "flash_time_long", "flsh_tsht": "flash_time_short",
    "fx_cmd_t": "effect_command_topic", "fx_cmd_tpl": "effect_command_template",
    "fx_list": "effect_list", "fx_stat_t": "effect_state_topic",
    "fx_tpl": "effect_template", "fx_val_tpl": "effect_value_template",
    "fan_mode_cmd_t": "fan_mode_command_topic",
    "fan_mode_cmd_tpl": "fan_mode_command_template",
    "fan_mode_stat_t": "fan_mode_state_topic",
    "fan_mode_stat_tpl": "fan_mode_state_template",
    "frc_upd": "force_update", "g_tpl": "green_template",
    "hold_cmd_tpl": "hold_command_template", "hold_cmd_t": "hold_command_topic",
    "hold_stat_tpl": "hold_state_template", "hold_stat_t": "hold_state_topic",
    "hs_cmd_t": "hs_command_topic", "hs_cmd_tpl": "hs_command_template",
    "hs_stat_t": "hs_state_topic", "hs_val_tpl": "hs_value_template",
    "ic": "icon", "img_e": "image_encoding", "img_t": "image_topic",
    "init": "initial", "hum_cmd_t": "target_humidity_command_topic",
    "hum_cmd_tpl": "target_humidity_command_template",
    "hum_stat_t": "target_humidity_state_topic",
    "hum_state_tpl": "target_humidity_state_template",
    "json_attr": "json_attributes", "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template",
    "l_ver_t": "latest_version_topic", "l_ver_tpl": "latest_version_template",
    "lrst_t": "last_reset_topic", "lrst_val_tpl": "last_reset_value_template",
    "max": "max", "max_hum": "max_humidity", "max_k": "max_kelvin",
    "max_mirs": "max_mireds", "max_temp": "max_temp",
    "migr_discvry": "migrate_discovery", "min": "min",
    "min_hum": "min_humidity", "min_k": "min_kelvin", "min_mirs": "min_mireds",
    "min_temp": "min_temp", "mode": "mode",
    "mode_cmd_t": "mode_command_topic", "mode_cmd_tpl": "mode_command_template",
    "mode_stat_t": "mode_state_topic", "mode_stat_tpl": "mode_state_template",
    "modes": "modes", "name": "name", "o": "origin", "obj_id": "object_id",
    "off_dly": "off_delay", "on_cmd_type": "on_command_type",
    "ops": "options", "opt": "optimistic",
    "osc_cmd_t": "oscillation_command_topic",
    "osc_cmd_tpl": "oscillation_command_template",
    "osc_stat_t": "oscillation_state_topic",
    "osc_val_tpl": "oscillation_value_template", "p": "platform",
    "pct_cmd_t": "percentage_command_topic",
    "pct_cmd_tpl": "percentage_command_template",
    "pct_stat_t": "percentage_state_topic",
    "pct_val_tpl": "percentage_value_template", "pl": "payload",
    "pl_arm_away": "payload_arm_away",
    "pl_arm_custom_b": "payload_arm_custom_bypass",
    "pl_arm_home": "payload_arm_home", "pl_arm_nite": "payload_arm_night",
    "pl_arm_vacation": "payload_arm_vacation",
    "pl_avail": "payload_available", "pl_cln_sp": "payload_clean_spot",
    "pl_cls": "payload_close", "pl_dir_fwd": "payload_direction_forward",
    "pl_dir_rev": "payload_direction_reverse", "pl_disarm": "payload_disarm",
    "pl_hi_spd": "payload_high_speed", "pl_home": "payload_home",
    "pl_inst": "payload_install", "pl_loc": "payload_locate",
    "pl_lock": "payload_lock", "pl_lo_spd": "payload_low_speed",
    "pl_med_spd": "payload_medium_speed",
    "pl_not_avail": "payload_not_available",
    "pl_not_home": "payload_not_home", "pl_off": "payload_off",
    "pl_off_spd": "payload_off_speed", "pl_on": "payload_on",
    "pl_open": "payload_open", "pl_osc_off": "payload_oscillation_off",
    "pl_osc_on": "payload_oscillation_on", "pl_paus": "payload_pause",
    "pl_stop": "payload_stop", "pl_strt": "payload_start",
    "pl_prs": "payload_press", "pl_ret": "payload_return_to_base",
    "pl_rst": "payload_reset", "pl_rst_hum": "payload_reset_humidity",
    "pl_rst_mode": "payload_reset_mode",
    "pl_rst_pct": "payload_reset_percentage",
    "pl_rst_pr_mode": "payload_reset_preset_mode",
    "pl_stpa": "payload_start_pause", "pl_toff": "payload_turn_off",
    "pl_ton": "payload_turn_on", "pl_trig": "payload_trigger",
    "pl_unlk": "payload_unlock", "pos": "reports_position",
    "pos_clsd": "position_closed", "pos_open": "position_open",
    "pow_cmd_t": "power_command_topic", "pow_stat_t": "power_state_topic",
    "pow_stat_tpl": "power_state_template",
    "pr_mode_cmd_t": "preset_mode_command_topic",
    "pr_mode_cmd_tpl": "preset_mode_command_template",
    "pr_mode_stat_t": "preset_mode_state_topic",
    "pr_mode_val_tpl": "preset_mode_value_template",
    "pr_modes": "preset_modes", "ptrn": "pattern", "r_tpl": "red_template",
    "rel_s": "release_summary", "rel_u": "release_url", "ret": "retain",
    "rgb_cmd_t": "rgb_command_topic", "rgb_cmd_tpl": "rgb_command_template",
    "rgb_stat_t": "rgb_state_topic", "rgb_val_tpl": "rgb_value_template",
    "rgbw_cmd_t": "rgbw_command_topic", "rgbw_cmd_tpl": "rgbw_command_template",
    "rgbw_stat_t": "rgbw_state_topic", "rgbw_val_tpl": "rgbw_value_template",
    "rgbww_cmd_t": "rgbww_command_topic",
    "rgbww_cmd_tpl": "rgbww_command_template",
    "rgbww_stat_t": "rgbww_state_topic",
    "rgbww_val_tpl": "rgbww_value_template",
    "send_cmd_t": "send_command_topic", "send_if_off": "send_if_off",
    "set_fan_spd_t": "set_fan_speed_topic", "set_pos_t": "set_position_topic",
    "set_pos_tpl": "set_position_template", "pos_t": "position_topic",
    "pos_tpl": "position_template", "spd_cmd_t": "speed_command_topic",
    "spd_stat_t": "speed_state_topic", "spd_rng_min": "speed_range_min",
    "spd_rng_max": "speed_range_max", "spd_val_tpl": "speed_value_template",
    "spds": "speeds", "src_type": "source_type", "stat_cla": "state_class",
    "stat_closing": "state_closing", "stat_clsd": "state_closed",
    "stat_jam": "state_jammed", "stat_locked": "state_locked",
    "stat_locking": "state_locking", "stat_off": "state_off",
    "stat_on": "state_on", "stat_open": "state_open",
    "stat_opening": "state_opening", "stat_stopped": "state_stopped",
    "stat_unlocked": "state_unlocked", "stat_unlocking": "state_unlocking",
    "stat_t": "state_topic", "stat_tpl": "state_template",
    "stat_val_tpl": "state_value_template", "step": "step",
    "stype": "subtype", "sug_dsp_prc": "suggested_display_precision",
    "sup_clrm": "supported_color_modes", "sup_dur": "support_duration",
    "sup_vol": "support_volume_set", "sup_feat": "supported_features",
    "swing_mode_cmd_t": "swing_mode_command_topic",
    "swing_mode_cmd_tpl": "swing_mode_command_template",
    "swing_mode_stat_t": "swing_mode_state_topic",
    "swing_mode_stat_tpl": "swing_mode_state_template", "t": "topic",
    "temp_cmd_t": "temperature_command_topic",
    "temp_cmd_tpl": "temperature_command_template",
    "temp_hi_cmd_t": "temperature_high_command_topic",
    "temp_hi_cmd_tpl": "temperature_high_command_template",
    "temp_hi_stat_t": "temperature_high_state_topic",
    "temp_hi_stat_tpl": "temperature_high_state_template",
    "temp_lo_cmd_t": "temperature_low_command_topic",
    "temp_lo_cmd_tpl": "temperature_low_command_template",
    "temp_lo_stat_t": "temperature_low_state_topic",
    "temp_lo_stat_tpl": "temperature_low_state_template",
    "temp_stat_t": "temperature_state_topic",
    "temp_stat_tpl": "temperature_state_template",
    "temp_unit": "temperature_unit", "tilt_clsd_val": "tilt_closed_value",
    "tilt_cmd_t": "tilt_command_topic", "tilt_cmd_tpl": "tilt_command_template",
    "tilt_inv_stat": "tilt_invert_state", "tilt_max": "tilt_max",
    "tilt_min": "tilt_min", "tilt_opnd_val": "tilt_opened_value",
    "tilt_opt": "tilt_optimistic", "tilt_status_t": "tilt_status_topic",
    "tilt_status_tpl": "tilt_status_template", "tit": "title",
    "uniq_id": "unique_id", "unit_of_meas": "unit_of_measurement",
    "url_t": "url_topic", "url_tpl": "url_template", "val_tpl": "value_template",
    "whit_cmd_t": "white_command_topic", "whit_scl": "white_scale",
    "whit_val_cmd_t": "white_value_command_topic",
    "whit_val_scl": "white_value_scale",
    "whit_val_stat_t": "white_value_state_topic",
    "whit_val_tpl": "white_value_template",
    "xy_cmd_t": "xy_command_topic", "xy_cmd_tpl": "xy_command_template",
    "xy_stat_t": "xy_state_topic", "xy_val_tpl": "xy_value_template",
}

# Source: mqtt.markdown "Supported abbreviations for device registry
# configuration"; core abbreviations.py DEVICE_ABBREVIATIONS.
DEVICE_ABBREVIATIONS = {
    "cu": "configuration_url", "cns": "connections", "ids": "identifiers",
    "name": "name", "mf": "manufacturer", "mdl": "model",
    "mdl_id": "model_id", "hw": "hw_version", "sw": "sw_version",
    "sa": "suggested_area", "sn": "serial_number",
}

# Source: mqtt.markdown "Supported abbreviations for origin info".
ORIGIN_ABBREVIATIONS = {"name": "name", "sw": "sw_version", "url": "support_url"}

# Device registry keys accepted in the "device" block (checked in a stored
# core mqtt/schemas.py: MQTT_ENTITY_DEVICE_INFO_SCHEMA is vol.All(
# cv.deprecated(via_hub -> via_device), vol.Schema({...}),
# validate_device_has_at_least_one_identifier); identifiers: list of
# cv.string, connections: list of [str, str], configuration_url:
# cv.configuration_url).  Source: sensor.mqtt
# page "device" keys; core mqtt schemas (MQTT_ENTITY_DEVICE_INFO_SCHEMA,
# a plain vol.Schema, so other keys are refused; via_hub is the deprecated
# spelling of via_device).
DEVICE_KEYS = {
    "configuration_url", "connections", "hw_version", "identifiers",
    "manufacturer", "model", "model_id", "name", "serial_number",
    "suggested_area", "sw_version", "via_device", "via_hub",
}

# Source: core mqtt/const.py SUPPORTED_COMPONENTS (2025) and the docs'
# "The <component> part in the discovery topic must be one of the supported
# MQTT-platforms".  "device" is device-based discovery.
SUPPORTED_COMPONENTS = {
    "alarm_control_panel", "binary_sensor", "button", "camera", "climate",
    "cover", "device_automation", "device_tracker", "event", "fan",
    "humidifier", "image", "lawn_mower", "light", "lock", "notify", "number",
    "scene", "siren", "select", "sensor", "switch", "tag", "text", "update",
    "vacuum", "valve", "water_heater",
}

# Source: core mqtt/discovery.py TOPIC_MATCHER; docs: node_id and object_id
# "must only consist of characters from the character class [a-zA-Z0-9_-]".
TOPIC_MATCHER = re.compile(
    r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)"
    r"?(?P<object_id>[a-zA-Z0-9_-]+)/config")

# ---------------------------------------------------------------------------
# Sensor device classes, units and state classes.
# Source: home-assistant/core homeassistant/components/sensor/const.py
# (DEVICE_CLASS_UNITS, DEVICE_CLASS_STATE_CLASSES, STATE_CLASS_UNITS; the
# version with MEASUREMENT_ANGLE) with the unit enums of
# homeassistant/const.py 2025.5.0b6.  None in a set = "no unit" allowed.
# "\u00b5" is MICRO SIGN (used by HA for µV, µg, µS/cm, µg/m³); "\u03bc" is
# GREEK SMALL LETTER MU (used by HA for μs).  HA compares exact strings.
_M = "\u00b5"
_PRESSURE = {"Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg", "psi"}
_ENERGY = {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh",
           "cal", "kcal", "Mcal", "Gcal"}
_VOLUME = {"ft³", "CCF", "m³", "L", "mL", "gal", "fl. oz."}
_SPEED = {"Beaufort", "ft/s", "in/s", "m/s", "km/h", "kn", "mph", "mm/s"}
_VFLUX = {"in/d", "in/h", "mm/d", "mm/h"}
_UGM3 = {_M + "g/m³"}
_TEMPERATURE = {"°C", "°F", "K"}
_INFORMATION = {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB",
                "PB", "EB", "ZB", "YB", "KiB", "MiB", "GiB", "TiB", "PiB",
                "EiB", "ZiB", "YiB"}
_DATA_RATE = {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "B/s", "kB/s", "MB/s",
              "GB/s", "KiB/s", "MiB/s", "GiB/s"}

DEVICE_CLASS_UNITS = {
    "apparent_power": {"VA"},
    "aqi": {None},
    "area": {"m²", "cm²", "km²", "mm²", "in²", "ft²", "yd²", "mi²", "ac", "ha"},
    "atmospheric_pressure": _PRESSURE,
    "battery": {"%"},
    "blood_glucose_concentration": {"mg/dL", "mmol/L"},
    "carbon_monoxide": {"ppm"},
    "carbon_dioxide": {"ppm"},
    "conductivity": {"S/cm", _M + "S/cm", "mS/cm"},
    "current": {"mA", "A"},
    "data_rate": _DATA_RATE,
    "data_size": _INFORMATION,
    "distance": {"mm", "cm", "m", "km", "in", "ft", "yd", "mi", "nmi"},
    "duration": {"d", "h", "min", "s", "ms", "\u03bcs"},
    "energy": _ENERGY,
    "energy_distance": {"kWh/100km", "mi/kWh", "km/kWh"},
    "energy_storage": _ENERGY,
    "frequency": {"Hz", "kHz", "MHz", "GHz"},
    "gas": {"CCF", "ft³", "m³", "L"},
    "humidity": {"%"},
    "illuminance": {"lx"},
    "irradiance": {"W/m²", "BTU/(h⋅ft²)"},
    "moisture": {"%"},
    "nitrogen_dioxide": _UGM3,
    "nitrogen_monoxide": _UGM3,
    "nitrous_oxide": _UGM3,
    "ozone": _UGM3,
    "ph": {None},
    "pm1": _UGM3,
    "pm10": _UGM3,
    "pm25": _UGM3,
    "power_factor": {"%", None},
    "power": {"mW", "W", "kW", "MW", "GW", "TW"},
    "precipitation": {"in", "mm", "cm"},
    "precipitation_intensity": _VFLUX,
    "pressure": _PRESSURE,
    "reactive_power": {"var", "kvar"},
    "signal_strength": {"dB", "dBm"},
    "sound_pressure": {"dB", "dBA"},
    "speed": _SPEED | _VFLUX,
    "sulphur_dioxide": _UGM3,
    "temperature": _TEMPERATURE,
    "volatile_organic_compounds": _UGM3,
    "volatile_organic_compounds_parts": {"ppb", "ppm"},
    "voltage": {_M + "V", "mV", "V", "kV", "MV"},
    "volume": _VOLUME,
    "volume_flow_rate": {"m³/h", "m³/s", "ft³/min", "L/h", "L/min", "L/s",
                         "gal/min", "mL/s"},
    "volume_storage": _VOLUME,
    "water": {"CCF", "ft³", "m³", "gal", "L"},
    "weight": {"g", "kg", "mg", _M + "g", "oz", "lb", "st"},
    "wind_direction": {"°"},
    "wind_speed": _SPEED,
}

# SensorDeviceClass members without a DEVICE_CLASS_UNITS entry (any unit
# passes the unit check): date, enum, timestamp, monetary.
NON_NUMERIC_DEVICE_CLASSES = {"date", "enum", "timestamp"}
SENSOR_DEVICE_CLASSES = set(DEVICE_CLASS_UNITS) | NON_NUMERIC_DEVICE_CLASSES \
    | {"monetary"}

_MEAS = {"measurement"}
_ALL_SC = {"measurement", "measurement_angle", "total", "total_increasing"}
_TOTALS = {"total", "total_increasing"}
# Same source, DEVICE_CLASS_STATE_CLASSES.
DEVICE_CLASS_STATE_CLASSES = {dc: _MEAS for dc in DEVICE_CLASS_UNITS}
DEVICE_CLASS_STATE_CLASSES.update({
    "area": _ALL_SC, "data_size": _ALL_SC, "distance": _ALL_SC,
    "duration": _ALL_SC, "precipitation": _ALL_SC,
    "date": set(), "enum": set(), "timestamp": set(),
    "energy": _TOTALS, "gas": _TOTALS, "volume": _TOTALS, "water": _TOTALS,
    "monetary": {"total"},
    "weight": {"measurement", "total", "total_increasing"},
    "wind_direction": {"measurement_angle"},
})
SENSOR_STATE_CLASSES = _ALL_SC
# Same source, STATE_CLASS_UNITS.
STATE_CLASS_UNITS = {"measurement_angle": {"°"}}

# Source: core homeassistant/components/binary_sensor/__init__.py
# BinarySensorDeviceClass; home-assistant.io binary_sensor "Device class".
BINARY_SENSOR_DEVICE_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity",
    "door", "garage_door", "gas", "heat", "light", "lock", "moisture",
    "motion", "moving", "occupancy", "opening", "plug", "power", "presence",
    "problem", "running", "safety", "smoke", "sound", "tamper", "update",
    "vibration", "window",
}
# Source: core switch/__init__.py SwitchDeviceClass, button/__init__.py
# ButtonDeviceClass (docs switch.mqtt, button.mqtt "device_class").
SWITCH_DEVICE_CLASSES = {"outlet", "switch"}
BUTTON_DEVICE_CLASSES = {"identify", "restart", "update"}
# number: NumberDeviceClass mirrors the numeric sensor device classes
# ("these should be aligned with NumberDeviceClass", sensor/const.py); this
# reader uses the sensor tables for number (an approximation).
NUMBER_DEVICE_CLASSES = SENSOR_DEVICE_CLASSES - NON_NUMERIC_DEVICE_CLASSES

PAYLOAD_NONE = "None"   # core mqtt/const.py: payload that sets state None

# Keys whose value is a template (checked for syntax).
_TEMPLATE_KEYS_SUFFIX = ("_template",)


# ---------------------------------------------------------------------------
# Helpers

def _is_str(v):
    return isinstance(v, str)


def _coerce_str(v):
    """cv.string: str, or a number made into a str; None/dict/list refused."""
    if isinstance(v, str):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    return None


def _topic_problems(topic, key, subscribe):
    """valid_subscribe_topic / valid_publish_topic of HA's mqtt util."""
    if not isinstance(topic, str):
        return [f"rejected: {key} must be a string"]
    if topic == "":
        return [f"rejected: {key} is empty"]
    if "\0" in topic:
        return [f"rejected: {key} contains a null character"]
    if len(topic.encode("utf-8")) > 65535:
        return [f"rejected: {key} is longer than 65535 bytes"]
    out = []
    if subscribe:
        levels = topic.split("/")
        for i, lev in enumerate(levels):
            if "#" in lev and (lev != "#" or i != len(levels) - 1):
                out.append(f"rejected: {key} {topic!r}: '#' must be a whole "
                           f"last level")
            if "+" in lev and lev != "+":
                out.append(f"rejected: {key} {topic!r}: '+' must be a whole "
                           f"level")
    elif "#" in topic or "+" in topic:
        out.append(f"rejected: {key} {topic!r}: a publish topic cannot "
                   f"contain wildcards")
    return out


def topic_matches(flt, topic):
    """MQTT topic filter matching ('+' one level, '#' the rest)."""
    fl = flt.split("/")
    tl = topic.split("/")
    for i, f in enumerate(fl):
        if f == "#":
            return True
        if i >= len(tl):
            return False
        if f != "+" and f != tl[i]:
            return False
    return len(fl) == len(tl)


def _decode(payload):
    if isinstance(payload, str):
        return payload
    if payload is None:
        return ""
    try:
        return bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _expand_keys(d, table):
    out = {}
    dup = []
    for k, v in d.items():
        long_k = table.get(k, k)
        if long_k in out and long_k != k:
            dup.append(long_k)
        if long_k in out and long_k == k and k not in table:
            # full form after abbreviated form
            dup.append(long_k)
        out[long_k] = v
    return out, dup


def expand_discovery(payload):
    """Expand abbreviations and '~' as core mqtt/discovery.py does."""
    cfg, _ = _expand_with_notes(payload)
    return cfg


def _expand_with_notes(payload):
    notes = []
    cfg, dup = _expand_keys(payload, ABBREVIATIONS)
    for k in dup:
        notes.append(f"warning: key {k!r} given both abbreviated and in full; "
                     f"HA keeps the later one")
    if isinstance(cfg.get("device"), dict):
        cfg["device"], _ = _expand_keys(cfg["device"], DEVICE_ABBREVIATIONS)
    if isinstance(cfg.get("origin"), dict):
        cfg["origin"], _ = _expand_keys(cfg["origin"], ORIGIN_ABBREVIATIONS)
    if "availability" in cfg:
        av = cfg["availability"]
        lst = av if isinstance(av, list) else [av]
        new = []
        for a in lst:
            new.append(_expand_keys(a, ABBREVIATIONS)[0]
                       if isinstance(a, dict) else a)
        cfg["availability"] = new if isinstance(av, list) else new[0]
    if "~" in cfg:
        base = cfg.pop("~")
        if isinstance(base, str):
            for k, v in list(cfg.items()):
                if isinstance(v, str) and v and k.endswith("topic"):
                    if v[0] == "~":
                        v = base + v[1:]
                    if v[-1] == "~":
                        v = v[:-1] + base
                    cfg[k] = v
            av = cfg.get("availability")
            if av is not None:
                for a in (av if isinstance(av, list) else [av]):
                    if isinstance(a, dict) and isinstance(a.get("topic"), str) \
                            and a["topic"]:
                        t = a["topic"]
                        if t[0] == "~":
                            t = base + t[1:]
                        if t[-1] == "~":
                            t = t[:-1] + base
                        a["topic"] = t
    return cfg, notes


# ---------------------------------------------------------------------------
# Templates

_TPL_TOKEN = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")
_PAIRS = {"{{": "}}", "{%": "%}", "{#": "#}"}


def template_problems(tpl, key="value_template"):
    """Syntax problems HA's cv.template (jinja2 compile) would refuse."""
    if not isinstance(tpl, str):
        if isinstance(tpl, (int, float)) and not isinstance(tpl, bool):
            return []
        return [f"rejected: {key} must be a string"]
    out = []
    opened = None
    start = 0
    for m in _TPL_TOKEN.finditer(tpl):
        tok = m.group(0)
        if opened is None:
            if tok in _PAIRS:
                opened = tok
                start = m.end()
            elif tok == "}}":
                out.append(f"warning: {key} {tpl!r}: stray '}}}}' (jinja "
                           f"prints it literally; unbalanced braces)")
        elif tok == _PAIRS[opened]:
            inner = tpl[start:m.start()]
            if opened == "{{" and not inner.strip():
                out.append(f"rejected: {key} {tpl!r}: empty expression")
            if opened != "{#":
                depth = []
                for ch in inner:
                    if ch in "([{":
                        depth.append(ch)
                    elif ch in ")]}":
                        if not depth or "([{"[")]}".index(ch)] != depth[-1]:
                            depth = None
                            break
                        depth.pop()
                if depth is None or depth:
                    out.append(f"rejected: {key} {tpl!r}: unbalanced brackets "
                               f"in an expression")
            opened = None
    if opened is not None:
        out.append(f"rejected: {key} {tpl!r}: {opened!r} is never closed "
                   f"(unbalanced braces)")
    return out


class _Undef:
    pass


UNDEF = _Undef()


class _TplError(Exception):
    pass


class _TplUnsupported(Exception):
    pass


_EXPR_RE = re.compile(r"\s*(value_json|value)\b")
_ACC_ATTR = re.compile(r"\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_ACC_ITEM = re.compile(r"\s*\[\s*(?:'([^']*)'|\"([^\"]*)\"|(-?\d+))\s*\]")
_FILTER = re.compile(r"\s*\|\s*([A-Za-z_]+)\s*(?:\(([^()]*)\))?")


def _to_float(v):
    if v is UNDEF or v is None or isinstance(v, (dict, list)):
        raise ValueError
    return float(v)


def _apply_filter(name, args, v):
    argv = [a.strip() for a in args.split(",")] if args and args.strip() else []
    if name == "float":
        if len(argv) > 1:
            raise _TplUnsupported
        try:
            return _to_float(v)
        except (ValueError, TypeError):
            if argv:
                return _literal(argv[0])
            raise _TplError("float got invalid input")
    if name == "int":
        if len(argv) > 1:
            raise _TplUnsupported
        try:
            if isinstance(v, str):
                try:
                    return int(v, 10)
                except ValueError:
                    return int(float(v))
            if v is UNDEF or v is None or isinstance(v, (dict, list)):
                raise ValueError
            return int(v)
        except (ValueError, TypeError, OverflowError):
            if argv:
                return _literal(argv[0])
            raise _TplError("int got invalid input")
    if name == "round":
        prec = 0
        method = "common"
        if argv:
            try:
                prec = int(argv[0])
            except ValueError:
                raise _TplUnsupported
        if len(argv) > 1:
            method = argv[1].strip("'\"")
        if len(argv) > 2:
            raise _TplUnsupported
        try:
            f = _to_float(v)
        except (ValueError, TypeError):
            raise _TplError("round got invalid input")
        mult = float(10 ** prec)
        if method == "ceil":
            r = math.ceil(f * mult) / mult
        elif method == "floor":
            r = math.floor(f * mult) / mult
        elif method == "half":
            r = round(f * 2) / 2
        else:
            r = round(f, prec)
        # HA forgiving_round: int when precision is 0
        return int(r) if prec == 0 else r
    raise _TplUnsupported


def _literal(s):
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        raise _TplUnsupported


def _eval_expr(expr, payload):
    m = _EXPR_RE.match(expr)
    if not m:
        raise _TplUnsupported
    pos = m.end()
    if m.group(1) == "value":
        v = payload
    else:
        try:
            v = json.loads(payload)
        except (ValueError, TypeError):
            v = None
            # value_json is not defined; any use is an undefined error
            rest = expr[pos:].strip()
            if rest and rest[0] not in ".[|":
                raise _TplUnsupported
            raise _TplError("value_json is undefined")
    while True:
        m = _ACC_ATTR.match(expr, pos)
        if m:
            key = m.group(1)
            pos = m.end()
            if v is UNDEF:
                raise _TplError("attribute of undefined")
            v = v.get(key, UNDEF) if isinstance(v, dict) else UNDEF
            continue
        m = _ACC_ITEM.match(expr, pos)
        if m:
            pos = m.end()
            if v is UNDEF:
                raise _TplError("item of undefined")
            if m.group(3) is not None:
                idx = int(m.group(3))
                if isinstance(v, list) and -len(v) <= idx < len(v):
                    v = v[idx]
                elif isinstance(v, dict):
                    v = v.get(idx, UNDEF)
                else:
                    v = UNDEF
            else:
                key = m.group(1) if m.group(1) is not None else m.group(2)
                v = v.get(key, UNDEF) if isinstance(v, dict) else UNDEF
            continue
        break
    while True:
        m = _FILTER.match(expr, pos)
        if not m:
            break
        pos = m.end()
        v = _apply_filter(m.group(1), m.group(2), v)
    if expr[pos:].strip():
        raise _TplUnsupported
    return v


def _render_value(v):
    if v is UNDEF:
        return ""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def render_template(tpl, payload):
    """Render HA's value_template subset; see the module docstring."""
    if template_problems(tpl) and any(
            p.startswith("rejected") for p in template_problems(tpl)):
        return ("error", None)
    if "{%" in tpl or "{#" in tpl:
        return ("unsupported", None)
    out = []
    pos = 0
    try:
        for m in re.finditer(r"\{\{(.*?)\}\}", tpl, re.S):
            out.append(tpl[pos:m.start()])
            out.append(_render_value(_eval_expr(m.group(1), payload)))
            pos = m.end()
    except _TplUnsupported:
        return ("unsupported", None)
    except _TplError:
        return ("error", None)
    out.append(tpl[pos:])
    return ("ok", "".join(out))


# ---------------------------------------------------------------------------
# Validation

def _check_common(cfg, component):
    r = []
    # qos: vol.All(vol.Coerce(int), vol.In([0, 1, 2]))
    if "qos" in cfg:
        q = cfg["qos"]
        try:
            qi = int(q) if not isinstance(q, bool) else None
        except (ValueError, TypeError):
            qi = None
        if qi not in (0, 1, 2) or (isinstance(q, float) and q != qi):
            r.append(f"rejected: qos {q!r} is not 0, 1 or 2")
    for k in ("retain", "force_update", "enabled_by_default", "optimistic"):
        if k in cfg and not isinstance(cfg[k], bool) and cfg[k] not in (
                0, 1, "true", "false", "on", "off", "yes", "no", "enable",
                "disable", "True", "False"):
            r.append(f"rejected: {k} {cfg[k]!r} is not a boolean")
    if "entity_category" in cfg and cfg["entity_category"] not in (
            "config", "diagnostic", None):
        r.append(f"rejected: entity_category {cfg['entity_category']!r} is "
                 f"not config or diagnostic")
    if "unique_id" in cfg and _coerce_str(cfg["unique_id"]) is None:
        r.append("rejected: unique_id must be a string")
    if "name" in cfg and cfg["name"] is not None and \
            _coerce_str(cfg["name"]) is None:
        r.append("rejected: name must be a string or null")
    if "object_id" in cfg and _coerce_str(cfg["object_id"]) is None:
        r.append("rejected: object_id must be a string")
    # templates
    for k, v in cfg.items():
        if k.endswith(_TEMPLATE_KEYS_SUFFIX):
            r.extend(template_problems(v, k))
    # topics (other than the per-component required ones)
    for k, v in cfg.items():
        if k.endswith("_topic") and k not in ("availability_topic",):
            r.extend(_topic_problems(v, k, subscribe=not (
                k == "command_topic" or k.endswith("_command_topic"))))
    # availability
    if "availability_topic" in cfg and "availability" in cfg:
        r.append("rejected: availability_topic and availability must not be "
                 "used together")
    if "availability_topic" in cfg:
        r.extend(_topic_problems(cfg["availability_topic"],
                                 "availability_topic", True))
    if "availability" in cfg:
        av = cfg["availability"]
        lst = av if isinstance(av, list) else [av]
        for i, a in enumerate(lst):
            if not isinstance(a, dict):
                r.append(f"rejected: availability[{i}] is not an object")
                continue
            if "topic" not in a:
                r.append(f"rejected: availability[{i}] has no topic")
            else:
                r.extend(_topic_problems(a["topic"], f"availability[{i}].topic",
                                         True))
            for k in ("payload_available", "payload_not_available"):
                if k in a and _coerce_str(a[k]) is None:
                    r.append(f"rejected: availability[{i}].{k} must be a "
                             f"string")
            if "value_template" in a:
                r.extend(template_problems(a["value_template"],
                                           f"availability[{i}].value_template"))
            extra = set(a) - {"topic", "payload_available",
                              "payload_not_available", "value_template"}
            if extra:
                r.append(f"rejected: availability[{i}] has unknown keys "
                         f"{sorted(extra)}")
    for k in ("payload_available", "payload_not_available"):
        if k in cfg and _coerce_str(cfg[k]) is None:
            r.append(f"rejected: {k} must be a string")
    if "availability_mode" in cfg and cfg["availability_mode"] not in (
            "all", "any", "latest"):
        r.append(f"rejected: availability_mode {cfg['availability_mode']!r} "
                 f"is not all, any or latest")
    # device
    if "device" in cfg:
        d = cfg["device"]
        if not isinstance(d, dict):
            r.append("rejected: device must be an object")
        else:
            extra = set(d) - DEVICE_KEYS
            if extra:
                r.append(f"rejected: device has unknown keys {sorted(extra)}")
            ids = d.get("identifiers")
            cns = d.get("connections")
            if ids is not None:
                idl = ids if isinstance(ids, list) else [ids]
                if any(_coerce_str(x) is None for x in idl):
                    r.append("rejected: device.identifiers must be strings")
            if cns is not None:
                if not isinstance(cns, list) or not all(
                        isinstance(c, list) and len(c) == 2 for c in cns):
                    r.append("rejected: device.connections must be a list of "
                             "[type, value] pairs")
            if cns is not None and isinstance(cns, list) and any(
                    isinstance(c, list) and len(c) == 2 and
                    any(_coerce_str(x) is None for x in c) for c in cns):
                r.append("rejected: device.connections values must be "
                         "strings")
            cu = d.get("configuration_url")
            if cu is not None and not (
                    isinstance(cu, str) and (
                        re.match(r"https?://[^/\s]+", cu) or
                        cu.startswith("homeassistant://"))):
                r.append(f"rejected: device.configuration_url {cu!r} is not "
                         f"an http(s):// or homeassistant:// URL")
            if not ids and not cns:
                r.append("rejected: device has neither identifiers nor "
                         "connections (at least one is required)")
            if "unique_id" not in cfg:
                r.append("warning: device given without unique_id: HA "
                         "registers no device for the entity (docs: 'Only "
                         "works when unique_id is set')")
    return r


def _check_sensor(cfg):
    r = []
    if "state_topic" not in cfg:
        r.append("rejected: sensor requires state_topic")
    dc = cfg.get("device_class")
    if dc is not None:
        if not isinstance(dc, str) or dc.lower() not in SENSOR_DEVICE_CLASSES:
            r.append(f"rejected: {dc!r} is not a sensor device_class")
            dc = None
        else:
            dc = dc.lower()
    sc = cfg.get("state_class")
    if sc is not None:
        if not isinstance(sc, str) or sc.lower() not in SENSOR_STATE_CLASSES:
            r.append(f"rejected: {sc!r} is not a state_class")
            sc = None
        else:
            sc = sc.lower()
    unit = cfg.get("unit_of_measurement")
    if unit is not None:
        unit = _coerce_str(unit)
        if unit is None:
            r.append("rejected: unit_of_measurement must be a string")
        elif not unit.strip():
            unit = None      # HA drops a blank unit
    if "last_reset_value_template" in cfg and sc != "total":
        r.append(f"rejected: last_reset_value_template cannot be used with "
                 f"state class {sc!r}")
    opts = cfg.get("options")
    if opts is not None:
        opts_l = opts if isinstance(opts, list) else [opts]
        if not opts_l:
            r.append("rejected: an empty options list is not allowed")
        if sc or unit:
            r.append("rejected: options is not allowed together with "
                     "state_class or unit_of_measurement")
        if dc != "enum":
            r.append(f"rejected: options must be used with device_class enum, "
                     f"got {dc!r}")
    if sc is not None and sc in STATE_CLASS_UNITS and \
            unit not in STATE_CLASS_UNITS[sc]:
        r.append(f"rejected: unit {unit!r} is not valid with state class "
                 f"{sc!r}")
    if dc is not None and unit is not None and dc in DEVICE_CLASS_UNITS and \
            unit not in DEVICE_CLASS_UNITS[dc]:
        r.append(f"rejected: the unit of measurement {unit!r} is not valid "
                 f"together with device class {dc!r} (HA DEVICE_CLASS_UNITS: "
                 f"{sorted(u if u is not None else 'None' for u in DEVICE_CLASS_UNITS[dc])})")
    if dc is not None and unit is None and dc in DEVICE_CLASS_UNITS and \
            None not in DEVICE_CLASS_UNITS[dc]:
        r.append(f"warning: device class {dc!r} without a unit; HA expects "
                 f"one of {sorted(DEVICE_CLASS_UNITS[dc])}")
    if dc is not None and sc is not None and \
            sc not in DEVICE_CLASS_STATE_CLASSES.get(dc, SENSOR_STATE_CLASSES):
        allowed = sorted(DEVICE_CLASS_STATE_CLASSES[dc]) or ["none"]
        r.append(f"warning: state class {sc!r} is impossible with device class "
                 f"{dc!r} (HA DEVICE_CLASS_STATE_CLASSES: {allowed}); HA logs "
                 f"it and raises a repair issue")
    if dc == "enum":
        if opts is None:
            r.append("warning: device_class enum without options (sensor docs: "
                     "'options' must be set for enum)")
        if (sc or unit) and opts is None:
            r.append("warning: device_class enum with unit_of_measurement or "
                     "state_class; HA's sensor refuses numeric options on a "
                     "non-numeric device class")
    if dc in ("date", "timestamp") and (sc or unit):
        r.append(f"warning: device_class {dc} with unit_of_measurement or "
                 f"state_class; HA's sensor treats them as numeric and fails")
    r.extend(_check_expire_after(cfg))
    if "suggested_display_precision" in cfg:
        p = cfg["suggested_display_precision"]
        if isinstance(p, bool) or not isinstance(p, int) or p < 0:
            r.append(f"rejected: suggested_display_precision {p!r} is not a "
                     f"non-negative integer")
    return r


def _check_expire_after(cfg):
    if "expire_after" not in cfg:
        return []
    v = cfg["expire_after"]
    # cv.positive_int = vol.All(vol.Coerce(int), vol.Range(min=0)): "60" and
    # 1.5 (-> 1) pass the coercion; 0 means "never expires".
    try:
        iv = int(v)
    except (ValueError, TypeError, OverflowError):
        return [f"rejected: expire_after {v!r} is not an integer"]
    if iv < 0:
        return [f"rejected: expire_after {v!r} is negative (cv.positive_int)"]
    if isinstance(v, bool) or (isinstance(v, float) and v != iv) or \
            isinstance(v, str):
        return [f"warning: expire_after {v!r} is not a JSON integer; HA "
                f"coerces it to {iv}"]
    return []


def _check_binary_sensor(cfg):
    r = []
    if "state_topic" not in cfg:
        r.append("rejected: binary_sensor requires state_topic")
    dc = cfg.get("device_class")
    if dc is not None and (not isinstance(dc, str) or
                           dc.lower() not in BINARY_SENSOR_DEVICE_CLASSES):
        r.append(f"rejected: {dc!r} is not a binary_sensor device_class")
    for k in ("payload_on", "payload_off"):
        if k in cfg and _coerce_str(cfg[k]) is None:
            r.append(f"rejected: {k} must be a string")
    if "off_delay" in cfg:
        v = cfg["off_delay"]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            r.append(f"rejected: off_delay {v!r} is not a non-negative integer")
    for k in ("unit_of_measurement", "state_class"):
        if k in cfg:
            r.append(f"warning: {k} has no meaning for binary_sensor "
                     f"(ignored by HA)")
    r.extend(_check_expire_after(cfg))
    return r


def _need_command(cfg, comp):
    if "command_topic" not in cfg:
        return [f"rejected: {comp} requires command_topic"]
    return []


def _check_number(cfg):
    r = _need_command(cfg, "number")
    # core mqtt/number.py: DEFAULT_MIN_VALUE 1.0, DEFAULT_MAX_VALUE 100.0
    mn = cfg.get("min", 1.0)
    mx = cfg.get("max", 100.0)
    try:
        if float(mx) <= float(mn):
            r.append(f"rejected: number max {mx!r} must be > min {mn!r}")
    except (ValueError, TypeError):
        r.append("rejected: number min/max must be numbers")
    if "step" in cfg:
        try:
            if float(cfg["step"]) < 1e-3:
                r.append(f"rejected: number step {cfg['step']!r} < 0.001")
        except (ValueError, TypeError):
            r.append("rejected: number step must be a number")
    if "mode" in cfg and cfg["mode"] not in ("auto", "box", "slider"):
        r.append(f"rejected: number mode {cfg['mode']!r}")
    dc = cfg.get("device_class")
    if dc is not None:
        if not isinstance(dc, str) or dc.lower() not in NUMBER_DEVICE_CLASSES:
            r.append(f"rejected: {dc!r} is not a number device_class")
        else:
            unit = _coerce_str(cfg.get("unit_of_measurement"))
            dc = dc.lower()
            if unit is not None and unit.strip() and \
                    dc in DEVICE_CLASS_UNITS and \
                    unit not in DEVICE_CLASS_UNITS[dc]:
                r.append(f"rejected: the unit of measurement {unit!r} is not "
                         f"valid together with device class {dc!r}")
    return r


def _check_select(cfg):
    r = _need_command(cfg, "select")
    if "options" not in cfg:
        r.append("rejected: select requires options")
    else:
        o = cfg["options"]
        ol = o if isinstance(o, list) else [o]
        if any(_coerce_str(x) is None for x in ol):
            r.append("rejected: select options must be strings")
    return r


def _check_switch(cfg):
    r = _need_command(cfg, "switch")
    dc = cfg.get("device_class")
    if dc is not None and str(dc).lower() not in SWITCH_DEVICE_CLASSES:
        r.append(f"rejected: {dc!r} is not a switch device_class")
    return r


def _check_button(cfg):
    r = _need_command(cfg, "button")
    dc = cfg.get("device_class")
    if dc is not None and str(dc).lower() not in BUTTON_DEVICE_CLASSES:
        r.append(f"rejected: {dc!r} is not a button device_class")
    return r


_COMPONENT_CHECKS = {
    "sensor": _check_sensor, "binary_sensor": _check_binary_sensor,
    "number": _check_number, "select": _check_select,
    "switch": _check_switch, "button": _check_button,
}


def _validate_component(component, cfg):
    r = _check_common(cfg, component)
    chk = _COMPONENT_CHECKS.get(component)
    if chk:
        r.extend(chk(cfg))
    return r


def _parse_topic(topic, prefix):
    """-> (component, node_id, object_id) or a violation string."""
    if not isinstance(topic, str) or not topic.startswith(prefix + "/"):
        return f"rejected: topic {topic!r} is not under {prefix!r}/"
    rest = topic[len(prefix) + 1:]
    m = TOPIC_MATCHER.fullmatch(rest)
    if not m:
        return (f"rejected: topic {topic!r} is not <prefix>/<component>/"
                f"[<node_id>/]<object_id>/config with ids of [a-zA-Z0-9_-]")
    return m.group("component"), m.group("node_id"), m.group("object_id")


def _load_payload(payload):
    """-> (dict, None) or (None, violation)."""
    text = _decode(payload)
    if text is None:
        return None, "rejected: payload is not UTF-8"
    try:
        obj = json.loads(text)
    except ValueError as e:
        return None, f"rejected: payload is not JSON ({e})"
    if not isinstance(obj, dict):
        return None, "rejected: payload is not a JSON object"
    return obj, None


def _device_discovery_components(cfg):
    """Device-based discovery -> [(cmp_id, platform, merged cfg)], problems.
    Source: mqtt.markdown "Device discovery payload": 'dev' and 'o'
    required, each 'cmps' entry needs 'p'; shared options apply to all."""
    probs = []
    if "device" not in cfg:
        probs.append("rejected: device-based discovery requires device")
    org = cfg.get("origin")
    if not isinstance(org, dict) or "name" not in org:
        probs.append("rejected: device-based discovery requires origin with "
                     "a name")
    cmps = cfg.get("components")
    out = []
    if not isinstance(cmps, dict) or not cmps:
        probs.append("rejected: device-based discovery requires components")
        return out, probs
    shared = {k: v for k, v in cfg.items() if k != "components"}
    for cid, c in cmps.items():
        if not isinstance(c, dict):
            probs.append(f"rejected: component {cid!r} is not an object")
            continue
        c, _ = _expand_with_notes(c)
        plat = c.get("platform")
        if plat not in SUPPORTED_COMPONENTS:
            probs.append(f"rejected: component {cid!r}: platform {plat!r} is "
                         f"not a supported component")
            continue
        merged = dict(shared)
        merged.update({k: v for k, v in c.items() if k != "platform"})
        out.append((str(cid), plat, merged, len(c) == 1))
    return out, probs


def check_discovery(topic, payload, discovery_prefix="homeassistant"):
    """Violations of one discovery config message ([] = accepted)."""
    t = _parse_topic(topic, discovery_prefix)
    if isinstance(t, str):
        return [t]
    component = t[0]
    if component != "device" and component not in SUPPORTED_COMPONENTS:
        return [f"rejected: unsupported component {component!r}"]
    if payload is None or len(payload) == 0:
        return []      # removal
    obj, err = _load_payload(payload)
    if err:
        return [err]
    cfg, notes = _expand_with_notes(obj)
    if component != "device":
        return notes + _validate_component(component, cfg)
    cmps, probs = _device_discovery_components(cfg)
    out = notes + probs
    for cid, plat, merged, removal in cmps:
        if removal:
            continue
        if plat not in ("device_automation", "tag") and \
                "unique_id" not in merged:
            out.append(f"rejected: component {cid!r} needs unique_id in "
                       f"device-based discovery")
        out.extend(f"{v.split(': ', 1)[0]}: component {cid!r}: "
                   f"{v.split(': ', 1)[1]}"
                   for v in _validate_component(plat, merged))
    return out


# ---------------------------------------------------------------------------
# Model

class _Entity:
    def __init__(self, key, component, cfg, dtopic):
        self.key = key
        self.component = component
        self.dtopic = dtopic
        self.state = "unknown"
        self.last_msg = None
        self.avail = {}
        self.latest = False
        self.set_config(cfg)

    def set_config(self, cfg):
        self.cfg = cfg
        self.unique_id = _coerce_str(cfg.get("unique_id")) \
            if "unique_id" in cfg else None
        self.state_topic = cfg.get("state_topic")
        ea = cfg.get("expire_after")
        self.expire_after = int(ea) if ea is not None else None
        if self.expire_after is not None and self.expire_after <= 0:
            self.expire_after = None     # 0 disables expiry
        avs = []
        if "availability_topic" in cfg:
            avs.append({
                "topic": cfg["availability_topic"],
                "payload_available": _coerce_str(
                    cfg.get("payload_available", "online")),
                "payload_not_available": _coerce_str(
                    cfg.get("payload_not_available", "offline")),
                "value_template": cfg.get("availability_template")})
        elif "availability" in cfg:
            av = cfg["availability"]
            for a in (av if isinstance(av, list) else [av]):
                avs.append({
                    "topic": a["topic"],
                    "payload_available": _coerce_str(
                        a.get("payload_available", "online")),
                    "payload_not_available": _coerce_str(
                        a.get("payload_not_available", "offline")),
                    "value_template": a.get("value_template")})
        self.avail_cfgs = avs
        self.avail = {a["topic"]: self.avail.get(a["topic"], False)
                      for a in avs}
        self.mode = cfg.get("availability_mode", "latest")
        dc = cfg.get("device_class")
        self.device_class = dc.lower() if isinstance(dc, str) else None
        sc = cfg.get("state_class")
        self.state_class = sc.lower() if isinstance(sc, str) else None
        unit = cfg.get("unit_of_measurement")
        unit = _coerce_str(unit) if unit is not None else None
        self.unit = unit if unit and unit.strip() else None

    def numeric_expected(self):
        if self.device_class in NON_NUMERIC_DEVICE_CLASSES:
            return False
        if self.state_class or self.unit or \
                "suggested_display_precision" in self.cfg:
            return True
        return self.device_class is not None

    def on_state(self, payload, now, log):
        text = _decode(payload)
        if text is None:
            log.append(f"{self.key}: state payload is not UTF-8, dropped")
            return
        if self.expire_after:
            self.last_msg = now
        tpl = self.cfg.get("value_template")
        if tpl is not None:
            kind, text = render_template(str(tpl), text)
            if kind == "unsupported":
                self.state = "unsupported-template"
                return
            if kind == "error":
                log.append(f"{self.key}: template error, state kept")
                return
        c = self.component
        if c == "sensor":
            if text == "":
                return
            if text == PAYLOAD_NONE:
                self.state = "unknown"
                return
            if self.numeric_expected():
                try:
                    float(text)
                except ValueError:
                    log.append(f"{self.key}: non-numeric value {text!r} for a "
                               f"numeric sensor, state kept")
                    return
            if self.device_class in ("timestamp", "date"):
                # core mqtt/sensor.py: dt_util.parse_datetime; unparsable ->
                # None (unknown); sensor/__init__.py: a timestamp needs a
                # timezone, stored as UTC isoformat(timespec="seconds").
                try:
                    dt = datetime.datetime.fromisoformat(text)
                except ValueError:
                    log.append(f"{self.key}: {text!r} is not a datetime")
                    self.state = "unknown"
                    return
                if self.device_class == "date":
                    self.state = dt.date().isoformat()
                    return
                if dt.tzinfo is None:
                    log.append(f"{self.key}: timestamp {text!r} has no "
                               f"timezone, state kept")
                    return
                self.state = dt.astimezone(datetime.timezone.utc).isoformat(
                    timespec="seconds")
                return
            if self.device_class == "enum" and "options" in self.cfg and \
                    text not in [str(o) for o in self.cfg["options"]]:
                log.append(f"{self.key}: {text!r} not in options, state kept")
                return
            self.state = text
        elif c in ("binary_sensor", "switch"):
            on = _coerce_str(self.cfg.get("payload_on", "ON"))
            off = _coerce_str(self.cfg.get("payload_off", "OFF"))
            if c == "switch":
                on = _coerce_str(self.cfg.get("state_on", on))
                off = _coerce_str(self.cfg.get("state_off", off))
            if text == "":
                return
            if text == on:
                self.state = "on"
            elif text == off:
                self.state = "off"
            elif text == PAYLOAD_NONE:
                self.state = "unknown"
            else:
                log.append(f"{self.key}: payload {text!r} is neither "
                           f"{on!r} nor {off!r}, ignored")
        elif c == "select":
            opts = [str(o) for o in self.cfg.get("options", [])]
            if text in opts:
                self.state = text
            elif text == PAYLOAD_NONE:
                self.state = "unknown"
            else:
                log.append(f"{self.key}: {text!r} not an option, ignored")
        elif c == "number":
            if text == PAYLOAD_NONE:
                self.state = "unknown"
                return
            try:
                float(text)
            except ValueError:
                log.append(f"{self.key}: non-numeric {text!r}, ignored")
                return
            self.state = text
        else:
            if text != "":
                self.state = text

    def on_avail(self, topic, payload, log):
        text = _decode(payload)
        if text is None:
            return
        for a in self.avail_cfgs:
            if not topic_matches(a["topic"], topic):
                continue
            t = text
            if a.get("value_template") is not None:
                kind, t = render_template(str(a["value_template"]), text)
                if kind != "ok":
                    log.append(f"{self.key}: availability template {kind}, "
                               f"ignored")
                    continue
            if t == a["payload_available"]:
                self.avail[a["topic"]] = True
                self.latest = True
            elif t == a["payload_not_available"]:
                self.avail[a["topic"]] = False
                self.latest = False

    def available(self, now):
        ok = True
        if self.avail_cfgs:
            if self.mode == "all":
                ok = all(self.avail.values())
            elif self.mode == "any":
                ok = any(self.avail.values())
            else:
                ok = self.latest
        if self.expire_after:
            if self.last_msg is None or now >= self.last_msg + self.expire_after:
                ok = False
        return ok


class HAModel:
    """What Home Assistant would show; see the module docstring."""

    def __init__(self, discovery_prefix="homeassistant"):
        self.prefix = discovery_prefix
        self._ents = {}          # (component, discovery_id) -> _Entity
        self._retained = {}      # topic -> payload
        self._now = 0.0
        self.log = []

    # -- input
    def feed(self, topic, payload, retained=False, now=0.0):
        self._now = now
        if payload is None:
            payload = b""
        if retained:
            if len(payload) == 0:
                self._retained.pop(topic, None)
            else:
                self._retained[topic] = payload
        before = list(self._ents.values())
        if topic.startswith(self.prefix + "/") and topic.endswith("/config"):
            self._discovery(topic, payload, now)
        # any entity already subscribed to a matching topic gets it too
        for e in before:
            if e.key in self._ents and self._ents[e.key] is e:
                self._deliver(e, topic, payload, now)

    def _deliver(self, e, topic, payload, now):
        if isinstance(e.state_topic, str) and topic_matches(e.state_topic,
                                                            topic):
            e.on_state(payload, now, self.log)
        if any(topic_matches(a["topic"], topic) for a in e.avail_cfgs):
            e.on_avail(topic, payload, self.log)

    def _discovery(self, topic, payload, now):
        t = _parse_topic(topic, self.prefix)
        if isinstance(t, str):
            self.log.append(f"{topic}: {t}")
            return
        component, node_id, object_id = t
        if component != "device" and component not in SUPPORTED_COMPONENTS:
            self.log.append(f"{topic}: unsupported component {component!r}")
            return
        did = f"{node_id} {object_id}" if node_id else object_id
        if len(payload) == 0:
            # removal: every entity this discovery topic set up
            for k in [k for k, e in self._ents.items() if e.dtopic == topic]:
                del self._ents[k]
            return
        obj, err = _load_payload(payload)
        if err:
            self.log.append(f"{topic}: {err}")
            return
        cfg, _ = _expand_with_notes(obj)
        if component != "device":
            self._apply(component, did, cfg, topic, now)
            return
        cmps, probs = _device_discovery_components(cfg)
        if probs:
            self.log.extend(f"{topic}: {p}" for p in probs)
            if not cmps:
                return
        for cid, plat, merged, removal in cmps:
            key = (plat, f"{did} {cid}")
            if removal:
                self._ents.pop(key, None)
                continue
            self._apply(plat, f"{did} {cid}", merged, topic, now)

    def _apply(self, component, did, cfg, topic, now):
        key = (component, did)
        rej = [v for v in _validate_component(component, cfg)
               if v.startswith("rejected")]
        if rej:
            self.log.append(f"{topic}: config refused: {rej}")
            return
        uid = _coerce_str(cfg.get("unique_id")) if "unique_id" in cfg else None
        if key in self._ents:
            self._ents[key].set_config(cfg)
            return
        if uid is not None and any(e.unique_id == uid and e.component ==
                                   component for e in self._ents.values()):
            self.log.append(f"{topic}: unique_id {uid!r} already exists, "
                            f"ignored (HA: 'ID ... already exists')")
            return
        e = _Entity(key, component, cfg, topic)
        self._ents[key] = e
        # HA subscribes now; the broker replays retained messages.
        for rt, rp in list(self._retained.items()):
            self._deliver(e, rt, rp, now)

    # -- output
    def _ekey(self, e):
        if e.unique_id is not None:
            return e.unique_id
        return f"<no unique_id> {e.component} {e.key[1]}"

    def entities(self, now=None):
        now = self._now if now is None else now
        out = {}
        for e in self._ents.values():
            dev = e.cfg.get("device")
            d = None
            if isinstance(dev, dict) and e.unique_id is not None:
                ids = dev.get("identifiers")
                d = {"identifiers": [str(i) for i in (
                        ids if isinstance(ids, list) else
                        ([] if ids is None else [ids]))],
                     "connections": [list(c) for c in
                                     dev.get("connections") or []],
                     "via_device": dev.get("via_device")}
            av = e.available(now)
            out[self._ekey(e)] = {
                "component": e.component,
                "name": e.cfg.get("name"),
                "device_class": e.device_class,
                "unit": e.unit,
                "state_class": e.state_class,
                "state": e.state,
                "available": av,
                "ha_state": e.state if av else "unavailable",
                "device": d,
                "discovery_topic": e.dtopic,
                "state_topic": e.state_topic,
            }
        return out

    def devices(self, now=None):
        out = {}
        for k, ent in self.entities(now).items():
            d = ent["device"]
            if d is None:
                continue
            if d["identifiers"]:
                dk = d["identifiers"][0]
            elif d["connections"]:
                dk = "connection:%s:%s" % tuple(d["connections"][0])
            else:
                continue
            # find an existing device sharing an identifier or connection
            for ok, ov in out.items():
                if set(ov["identifiers"]) & set(d["identifiers"]) or any(
                        c in ov["connections"] for c in d["connections"]):
                    dk = ok
                    break
            src = None
            for e in self._ents.values():
                if self._ekey(e) == k:
                    src = e.cfg.get("device", {})
            dv = out.setdefault(dk, {
                "identifiers": [], "connections": [], "name": None,
                "manufacturer": None, "model": None, "model_id": None,
                "sw_version": None, "hw_version": None,
                "serial_number": None, "via_device": None, "entities": []})
            for i in d["identifiers"]:
                if i not in dv["identifiers"]:
                    dv["identifiers"].append(i)
            for c in d["connections"]:
                if c not in dv["connections"]:
                    dv["connections"].append(c)
            for f in ("name", "manufacturer", "model", "model_id",
                      "sw_version", "hw_version", "serial_number",
                      "via_device"):
                if src and src.get(f) is not None:
                    dv[f] = src.get(f)
            dv["entities"].append(k)
        return out


# ---------------------------------------------------------------------------
# CLI

def _parse_dump_line(line):
    parts = line.rstrip("\n").split(" ", 2)
    if len(parts) < 2:
        raise ValueError(f"bad line {line!r}")
    topic, ret = parts[0], parts[1]
    raw = parts[2] if len(parts) > 2 else ""
    if raw.startswith("hex:"):
        payload = bytes.fromhex(raw[4:])
    elif raw == "":
        payload = b""
    else:
        payload = json.loads(raw).encode("utf-8")
    return topic, ret == "1", payload


def _cli_check(stream, prefix="homeassistant"):
    model = HAModel(prefix)
    bad = 0
    now = 0.0
    for n, line in enumerate(stream, 1):
        if not line.strip() or line.startswith("#"):
            continue
        topic, ret, payload = _parse_dump_line(line)
        now += 1.0
        if topic.startswith(prefix + "/") and topic.endswith("/config"):
            for v in check_discovery(topic, payload, prefix):
                print(f"line {n}: {topic}: {v}")
                bad += 1
        model.feed(topic, payload, ret, now)
    print(json.dumps({"entities": model.entities(),
                      "devices": model.devices()}, indent=1,
                     ensure_ascii=False))
    return 1 if bad else 0


# ---------------------------------------------------------------------------
# Self-test

def _self_test():
    results = []

    def ok(cond, name):
        results.append((bool(cond), name))

    def J(o):
        return json.dumps(o).encode("utf-8")

    P = "homeassistant"
    # 1-6: examples from home-assistant.io mqtt.markdown "Discovery examples".
    garden = {"name": None, "device_class": "motion",
              "state_topic": "homeassistant/binary_sensor/garden/state",
              "unique_id": "motion01ad",
              "device": {"identifiers": ["01ad"], "name": "Garden"}}
    ok(check_discovery("homeassistant/binary_sensor/garden/config",
                       J(garden)) == [],
       "docs motion detection binary_sensor example accepted")
    bed_t = {"device_class": "temperature",
             "state_topic": "homeassistant/sensor/sensorBedroom/state",
             "unit_of_measurement": "°C",
             "value_template": "{{ value_json.temperature}}",
             "unique_id": "temp01ae",
             "device": {"identifiers": ["bedroom01ae"], "name": "Bedroom",
                        "manufacturer": "Example sensors Ltd.",
                        "model": "Example Sensor", "model_id": "K9",
                        "serial_number": "12AE3010545",
                        "hw_version": "1.01a", "sw_version": "2024.1.0",
                        "configuration_url":
                            "https://example.com/sensor_portal/config"}}
    bed_h = {"device_class": "humidity",
             "state_topic": "homeassistant/sensor/sensorBedroom/state",
             "unit_of_measurement": "%",
             "value_template": "{{ value_json.humidity}}",
             "unique_id": "hum01ae", "device": {"identifiers": ["bedroom01ae"]}}
    ok(check_discovery("homeassistant/sensor/sensorBedroomT/config", J(bed_t))
       == [] and check_discovery("homeassistant/sensor/sensorBedroomH/config",
                                 J(bed_h)) == [],
       "docs bedroom temperature and humidity sensor examples accepted")
    irr = {"name": "Irrigation",
           "command_topic": "homeassistant/switch/irrigation/set",
           "state_topic": "homeassistant/switch/irrigation/state",
           "unique_id": "irr01ad",
           "device": {"identifiers": ["garden01ad"], "name": "Garden"}}
    ok(check_discovery("homeassistant/switch/irrigation/config", J(irr)) == [],
       "docs irrigation switch example accepted")
    abbr = {"~": "homeassistant/switch/irrigation", "name": "garden",
            "cmd_t": "~/set", "stat_t": "~/state"}
    exp = expand_discovery(abbr)
    ok(check_discovery("homeassistant/switch/irrigation/config", J(abbr)) == []
       and exp["command_topic"] == "homeassistant/switch/irrigation/set"
       and exp["state_topic"] == "homeassistant/switch/irrigation/state",
       "docs abbreviations and base topic example: accepted, ~ expanded")
    acurite = {"device_class": "temperature", "unit_of_measurement": "\u00b0C",
               "value_template": "{{ value|float }}",
               "state_topic":
                   "rtl_433/rtl433/devices/Acurite-986/1R/51778/temperature_C",
               "unique_id": "Acurite-986-1R-51778-T",
               "device": {"identifiers": "Acurite-986-1R-51778",
                          "name": "Bathroom", "model": "Acurite",
                          "model_id": "986", "manufacturer": "rtl_433"}}
    ok(check_discovery("homeassistant/sensor/Acurite-986-1R-51778/config",
                       J(acurite)) == [],
       "docs mqtt.publish Acurite example (identifiers as a string) accepted")
    devdisc = {"dev": {"ids": "ea334450945afc", "name": "Kitchen",
                       "mf": "Bla electronics", "mdl": "xya", "sw": "1.0",
                       "sn": "ea334450945afc", "hw": "1.0rev2"},
               "o": {"name": "bla2mqtt", "sw": "2.1",
                     "url": "https://bla2mqtt.example.com/support"},
               "cmps": {"some_unique_component_id1": {
                   "p": "sensor", "device_class": "temperature",
                   "unit_of_measurement": "°C",
                   "value_template": "{{ value_json.temperature}}",
                   "unique_id": "temp01ae_t"}},
               "state_topic": "sensorBedroom/state", "qos": 2}
    ok(check_discovery("homeassistant/device/0AFFD2/config", J(devdisc)) == [],
       "docs device-based discovery example accepted")
    # 7-: each kind of violation
    v = check_discovery("homeassistant/sensor/bad.id/config", J(bed_h))
    ok(v and v[0].startswith("rejected") and "a-zA-Z0-9_-" in v[0],
       "object_id with a '.' rejected")
    ok(check_discovery("homeassistant/sensor/a/b/c/config", J(bed_h)) != [],
       "too many topic levels rejected")
    v = check_discovery("homeassistant/battery/x/config", J(bed_h))
    ok(v and "unsupported component" in v[0], "unsupported component flagged")
    ok(check_discovery("homeassistant/sensor/x/config", b"{not json")[0]
       .startswith("rejected: payload is not JSON"), "non-JSON payload flagged")
    ok("not a JSON object" in check_discovery("homeassistant/sensor/x/config",
                                              b"[1,2]")[0],
       "JSON array payload flagged")
    ok(check_discovery("homeassistant/sensor/x/config", b"") == [] and
       check_discovery("homeassistant/binary_sensor/garden/config", b"") == [],
       "empty payload (removal) accepted")
    s = dict(bed_h)
    del s["state_topic"]
    ok(any("requires state_topic" in x for x in
           check_discovery("homeassistant/sensor/x/config", J(s))),
       "sensor without state_topic rejected")
    b = dict(garden)
    del b["state_topic"]
    ok(any("requires state_topic" in x for x in
           check_discovery("homeassistant/binary_sensor/x/config", J(b))),
       "binary_sensor without state_topic rejected")
    s = dict(bed_h, device_class="hum")
    ok(any("not a sensor device_class" in x for x in
           check_discovery("homeassistant/sensor/x/config", J(s))),
       "unknown sensor device_class rejected")
    b = dict(garden, device_class="voltage")
    ok(any("not a binary_sensor device_class" in x for x in
           check_discovery("homeassistant/binary_sensor/x/config", J(b))),
       "sensor-only device_class on binary_sensor rejected")
    s = dict(bed_h, device_class="power", unit_of_measurement="A")
    s2 = dict(bed_h, device_class="power", unit_of_measurement="BTU/h")
    s3 = dict(bed_h, device_class="voltage", unit_of_measurement="\u03bcV")
    ok(any("not valid together with device class 'power'" in x for x in
           check_discovery("homeassistant/sensor/x/config", J(s)))
       and check_discovery("homeassistant/sensor/x/config", J(s2)) != []
       and check_discovery("homeassistant/sensor/x/config", J(s3)) != [],
       "unit not in DEVICE_CLASS_UNITS rejected (A for power; BTU/h as in "
       "code; Greek mu for voltage)")
    s = dict(bed_h, device_class="energy", unit_of_measurement="kWh",
             state_class="measurement")
    s_ok = dict(s, state_class="total_increasing")
    ok(any("impossible with device class 'energy'" in x for x in
           check_discovery("homeassistant/sensor/x/config", J(s)))
       and check_discovery("homeassistant/sensor/x/config", J(s_ok)) == [],
       "energy needs total/total_increasing")
    s = dict(bed_h, device_class="battery", unit_of_measurement="%",
             state_class="total_increasing")
    s_ok = dict(s, state_class="measurement")
    ok(any("impossible with device class 'battery'" in x for x in
           check_discovery("homeassistant/sensor/x/config", J(s)))
       and check_discovery("homeassistant/sensor/x/config", J(s_ok)) == [],
       "battery: measurement only, % accepted")
    s = dict(bed_h, device_class="enum", options=["a", "b"],
             unit_of_measurement="V")
    s.pop("unit_of_measurement")
    s_unit = dict(s, unit_of_measurement="V")
    s_noopt = {k: v for k, v in s.items() if k != "options"}
    s_opt_nodc = dict(s, device_class=None)
    ok(check_discovery("homeassistant/sensor/x/config", J(s)) == []
       and any("options is not allowed" in x for x in
               check_discovery("homeassistant/sensor/x/config", J(s_unit)))
       and any("without options" in x for x in
               check_discovery("homeassistant/sensor/x/config", J(s_noopt)))
       and any("must be used with device_class enum" in x for x in
               check_discovery("homeassistant/sensor/x/config",
                               J(s_opt_nodc))),
       "enum: options needed, no unit/state_class, options only with enum")
    s = dict(bed_h, state_class="bogus")
    ok(any("not a state_class" in x for x in
           check_discovery("homeassistant/sensor/x/config", J(s))),
       "unknown state_class rejected")
    s = dict(bed_h, device={"name": "x"})
    s2 = dict(bed_h, device={"identifiers": ["a"], "colour": "red"})
    ok(any("neither identifiers nor connections" in x for x in
           check_discovery("homeassistant/sensor/x/config", J(s)))
       and any("unknown keys" in x for x in
               check_discovery("homeassistant/sensor/x/config", J(s2))),
       "device without identifiers/connections, unknown device key flagged")
    s = dict(bed_h, device={"connections": [["mac", "02:00:00:00:00:01"]],
                            "configuration_url": "http://192.0.2.1/"})
    s2 = dict(bed_h, device={"identifiers": ["a"],
                             "configuration_url": "192.0.2.1"})
    s3 = dict(bed_h, device={"connections": [["mac"]]})
    ok(check_discovery("homeassistant/sensor/x/config", J(s)) == []
       and any("configuration_url" in x for x in
               check_discovery("homeassistant/sensor/x/config", J(s2)))
       and any("pairs" in x for x in
               check_discovery("homeassistant/sensor/x/config", J(s3))),
       "device connections and configuration_url checked")
    s = {k: v for k, v in bed_h.items() if k != "unique_id"}
    ok(any("without unique_id" in x for x in
           check_discovery("homeassistant/sensor/x/config", J(s))),
       "device block without unique_id flagged")
    s = dict(bed_h, availability_topic="a/b",
             availability=[{"topic": "a/c"}])
    s2 = dict(bed_h, availability=[{"payload_available": "up"}])
    s3 = dict(bed_h, availability_topic="a/b", availability_mode="most")
    s4 = dict(bed_h, avty=[{"t": "a/c", "pl_avail": "up"}], avty_mode="all")
    ok(any("must not be used together" in x for x in
           check_discovery("homeassistant/sensor/x/config", J(s)))
       and any("has no topic" in x for x in
               check_discovery("homeassistant/sensor/x/config", J(s2)))
       and any("availability_mode" in x for x in
               check_discovery("homeassistant/sensor/x/config", J(s3)))
       and check_discovery("homeassistant/sensor/x/config", J(s4)) == [],
       "availability forms checked (exclusive, topic, mode, abbreviated list)")
    bads = [check_discovery("homeassistant/sensor/x/config",
                            J(dict(bed_h, expire_after=e)))
            for e in (-5, "soon", 1.5)]
    good = [check_discovery("homeassistant/sensor/x/config",
                            J(dict(bed_h, expire_after=e))) for e in (0, 60)]
    ok(bads[0][0].startswith("rejected") and bads[1][0].startswith(
        "rejected") and bads[2][0].startswith("warning") and good == [[], []],
       "expire_after: negative/non-numeric rejected, 1.5 warned (HA "
       "truncates), 0 and 60 accepted")
    s = dict(bed_h, value_template="{{ value_json.humidity }")
    s2 = dict(bed_h, value_template="{{ value_json['humidity' }}")
    s3 = dict(bed_h, value_template="{{ value_json['humidity'] }}")
    ok(any("unbalanced" in x for x in
           check_discovery("homeassistant/sensor/x/config", J(s)))
       and any("unbalanced" in x for x in
               check_discovery("homeassistant/sensor/x/config", J(s2)))
       and check_discovery("homeassistant/sensor/x/config", J(s3)) == [],
       "template braces/brackets checked, value_json['k'] accepted")
    ok(any("qos" in x for x in check_discovery(
        "homeassistant/sensor/x/config", J(dict(bed_h, qos=3)))),
       "qos 3 rejected")
    ok(any("publish topic cannot contain wildcards" in x for x in
           check_discovery("homeassistant/switch/x/config",
                           J(dict(irr, command_topic="a/+/set"))))
       and check_discovery("homeassistant/sensor/x/config",
                           J(dict(bed_h, state_topic="a/+/s"))) == [],
       "wildcard allowed in state_topic, refused in command_topic")
    ok(any("requires command_topic" in x for x in check_discovery(
        "homeassistant/number/x/config", J({"state_topic": "n/s"})))
       and any("must be > min" in x for x in check_discovery(
           "homeassistant/number/x/config",
           J({"command_topic": "n/set", "min": 5, "max": 5})))
       and any("requires options" in x for x in check_discovery(
           "homeassistant/select/x/config", J({"command_topic": "s/set"}))),
       "number/select required keys and min/max checked")
    full = check_discovery("homeassistant/sensor/x/config", J(bed_t))
    ab = {"dev_cla": "temperature",
          "stat_t": "homeassistant/sensor/sensorBedroom/state",
          "unit_of_meas": "°C", "val_tpl": "{{ value_json.temperature}}",
          "uniq_id": "temp01ae",
          "dev": {"ids": ["bedroom01ae"], "name": "Bedroom",
                  "mf": "Example sensors Ltd.", "mdl": "Example Sensor",
                  "mdl_id": "K9", "sn": "12AE3010545", "hw": "1.01a",
                  "sw": "2024.1.0",
                  "cu": "https://example.com/sensor_portal/config"}}
    ok(full == [] and check_discovery("homeassistant/sensor/x/config",
                                      J(ab)) == []
       and expand_discovery(ab) == bed_t,
       "abbreviated payload expands to the full docs payload")
    ok(check_discovery("homeassistant/sensor/x/config",
                       J(dict(bed_h, unit_of_measurement="",
                              device_class=None))) == [],
       "blank unit dropped as HA does")

    # Templates
    pj = '{"temperature":23.20,"humidity":43.70,"a":{"b":[1,2.5]},"s":"7.75"}'
    ok(render_template("{{ value_json.temperature }}", pj) == ("ok", "23.2")
       and render_template("{{ value_json['humidity'] }}", pj) ==
       ("ok", "43.7")
       and render_template("{{ value_json.a.b[1] }}", pj) == ("ok", "2.5"),
       "template: value_json.k, ['k'], nested and index")
    ok(render_template("{{ value_json.s | float }}", pj) == ("ok", "7.75")
       and render_template("{{ value_json.s | float | round(1) }}", pj) ==
       ("ok", "7.8")
       and render_template("{{ value_json.s | round(0) }}", pj) == ("ok", "8")
       and render_template("{{ value_json.s | int }}", pj) == ("ok", "7")
       and render_template("{{ value | float }}", "12") == ("ok", "12.0"),
       "template filters float, round(n), round(0) -> int, int")
    ok(render_template("{{ value_json.t | upper }}", pj)[0] == "unsupported"
       and render_template("{% if value %}x{% endif %}", "1")[0] ==
       "unsupported"
       and render_template("{{ value_json.t }}", "not json")[0] == "error"
       and render_template("{{ value_json.zz | float }}", pj)[0] == "error"
       and render_template("{{ value_json.zz | float(0) }}", pj) ==
       ("ok", "0"),
       "template: unsupported constructs, undefined and defaults")

    # Model
    m = HAModel()
    m.feed("homeassistant/sensor/sensorBedroom/state", J({"temperature": 21.5,
                                                          "humidity": 40}),
           True, 1.0)
    m.feed("homeassistant/sensor/sensorBedroomT/config", J(bed_t), True, 2.0)
    m.feed("homeassistant/sensor/sensorBedroomH/config", J(bed_h), True, 3.0)
    es = m.entities()
    ok(es["temp01ae"]["state"] == "21.5" and es["hum01ae"]["state"] == "40"
       and es["temp01ae"]["unit"] == "°C" and es["temp01ae"]["available"],
       "model: retained state replayed when config arrives")
    m.feed("homeassistant/sensor/sensorBedroom/state", pj.encode(), False, 4.0)
    es = m.entities()
    dv = m.devices()
    ok(es["temp01ae"]["state"] == "23.2" and es["hum01ae"]["state"] == "43.7"
       and list(dv) == ["bedroom01ae"] and dv["bedroom01ae"]["name"] ==
       "Bedroom" and sorted(dv["bedroom01ae"]["entities"]) ==
       ["hum01ae", "temp01ae"],
       "model: state from value_template; one device with both entities")
    m2 = HAModel()
    m2.feed("homeassistant/sensor/x/config", J(dict(bed_h, unique_id="h2")),
            False, 1.0)
    m2.feed("homeassistant/sensor/sensorBedroom/state", b"oops", False, 2.0)
    ok(m2.entities()["h2"]["state"] == "unknown",
       "model: unknown before any usable message; non-JSON keeps state")
    m.feed("homeassistant/sensor/sensorBedroomT/config", b"", True, 5.0)
    ok("temp01ae" not in m.entities() and "hum01ae" in m.entities(),
       "model: empty config removes the entity")
    m.feed("homeassistant/sensor/sensorBedroomH/config", b"", True, 6.0)
    ok(m.entities() == {} and m.devices() == {},
       "model: device disappears with its last entity")
    m = HAModel()
    m.feed("homeassistant/binary_sensor/garden/config", J(garden), True, 0.0)
    st = []
    for p in (b"ON", b"OFF", b"bogus", b"None"):
        m.feed("homeassistant/binary_sensor/garden/state", p, False, 1.0)
        st.append(m.entities()["motion01ad"]["state"])
    m.feed("homeassistant/binary_sensor/g2/config",
           J(dict(garden, unique_id="m2", payload_on="1", payload_off="0",
                  state_topic="g2/state")), True, 2.0)
    m.feed("g2/state", b"1", False, 3.0)
    ok(st == ["on", "off", "off", "unknown"] and
       m.entities()["m2"]["state"] == "on",
       "model: binary_sensor default ON/OFF, custom payload_on/off")
    m.feed("homeassistant/binary_sensor/g3/config",
           J(dict(garden, state_topic="g3/state")), True, 4.0)
    ok(sum(1 for e in m.entities().values()
           if e["discovery_topic"].endswith("g3/config")) == 0
       and any("already exists" in x for x in m.log),
       "model: second entity with a used unique_id is ignored")
    # availability timing
    m = HAModel()
    cfgl = dict(bed_h, unique_id="av", availability_topic="dev/status")
    m.feed("homeassistant/sensor/av/config", J(cfgl), True, 0.0)
    a0 = m.entities()["av"]["available"]
    m.feed("dev/status", b"online", True, 1.0)
    a1 = m.entities()["av"]["available"]
    m.feed("dev/status", b"offline", True, 2.0)
    a2 = m.entities()["av"]
    ok(a0 is False and a1 is True and a2["available"] is False and
       a2["ha_state"] == "unavailable",
       "model: availability_topic: unavailable until online, then offline")
    for mode, expect in (("all", [False, False, True]),
                         ("any", [False, True, True]),
                         ("latest", [False, True, True])):
        m = HAModel()
        c = dict(bed_h, unique_id="am", availability_mode=mode,
                 availability=[{"topic": "d/a"},
                               {"topic": "d/b", "payload_available": "up",
                                "payload_not_available": "down"}])
        m.feed("homeassistant/sensor/am/config", J(c), True, 0.0)
        got = [m.entities()["am"]["available"]]
        m.feed("d/a", b"online", False, 1.0)
        got.append(m.entities()["am"]["available"])
        m.feed("d/b", b"up", False, 2.0)
        got.append(m.entities()["am"]["available"])
        ok(got == expect, f"model: availability_mode {mode}")
    m = HAModel()
    c = dict(bed_h, unique_id="lt", availability=[{"topic": "d/a"},
                                                  {"topic": "d/b"}])
    m.feed("homeassistant/sensor/lt/config", J(c), True, 0.0)
    m.feed("d/a", b"online", False, 1.0)
    m.feed("d/b", b"offline", False, 2.0)
    ok(m.entities()["lt"]["available"] is False,
       "model: availability_mode latest follows the last message")
    # expire_after timing
    m = HAModel()
    c = dict(bed_h, unique_id="ex", expire_after=30)
    m.feed("homeassistant/sensor/ex/config", J(c), True, 100.0)
    e0 = m.entities(100.0)["ex"]["available"]
    m.feed("homeassistant/sensor/sensorBedroom/state", J({"humidity": 50}),
           False, 110.0)
    e1 = m.entities(139.9)["ex"]
    e2 = m.entities(140.0)["ex"]
    m.feed("homeassistant/sensor/sensorBedroom/state", J({"humidity": 51}),
           False, 150.0)
    e3 = m.entities(179.0)["ex"]
    ok(e0 is False and e1["available"] and e1["state"] == "50"
       and not e2["available"] and e2["ha_state"] == "unavailable"
       and e3["available"] and e3["state"] == "51",
       "model: expire_after: unavailable before first value, expires "
       "expire_after s after the last message, back on the next")
    # timestamp sensor
    m = HAModel()
    m.feed("homeassistant/sensor/ts/config",
           J({"state_topic": "t/s", "device_class": "timestamp",
              "unique_id": "ts"}), True, 0.0)
    m.feed("t/s", b"2024-05-01T12:00:00+02:00", False, 1.0)
    t1 = m.entities()["ts"]["state"]
    m.feed("t/s", b"2024-05-01T12:00:00", False, 2.0)
    t2 = m.entities()["ts"]["state"]
    m.feed("t/s", b"yesterday", False, 3.0)
    ok(t1 == "2024-05-01T10:00:00+00:00" and t2 == t1 and
       m.entities()["ts"]["state"] == "unknown",
       "model: timestamp sensor in UTC; no timezone kept; unparsable unknown")
    # unsupported template in the model
    m = HAModel()
    m.feed("homeassistant/sensor/ut/config",
           J(dict(bed_h, unique_id="ut",
                  value_template="{{ value_json.humidity | abs }}")),
           True, 0.0)
    m.feed("homeassistant/sensor/sensorBedroom/state", J({"humidity": 5}),
           False, 1.0)
    ok(m.entities()["ut"]["state"] == "unsupported-template",
       "model: template outside the subset -> unsupported-template")
    # device-based discovery in the model, and component removal
    m = HAModel()
    m.feed("homeassistant/device/0AFFD2/config", J(devdisc), True, 0.0)
    m.feed("sensorBedroom/state", J({"temperature": 19}), False, 1.0)
    e = m.entities()
    dd = dict(devdisc, cmps={"some_unique_component_id1": {"p": "sensor"}})
    m.feed("homeassistant/device/0AFFD2/config", J(dd), True, 2.0)
    ok(e["temp01ae_t"]["state"] == "19" and
       e["temp01ae_t"]["device"]["identifiers"] == ["ea334450945afc"]
       and m.entities() == {},
       "model: device-based discovery entity, removed by a bare platform")
    # a refused config creates nothing
    m = HAModel()
    m.feed("homeassistant/sensor/bad/config",
           J(dict(bed_h, device_class="power", unit_of_measurement="A")),
           True, 0.0)
    ok(m.entities() == {} and m.log, "model: refused config creates nothing")

    # CLI dump lines
    ok(_parse_dump_line('a/b 1 "x y"\n') == ("a/b", True, b"x y")
       and _parse_dump_line("a/b 0 hex:4f4e") == ("a/b", False, b"ON")
       and _parse_dump_line('a/b 1 ""') == ("a/b", True, b""),
       "CLI dump line: JSON string and hex payloads")

    for i, (good_, name) in enumerate(results, 1):
        print(f"{'ok' if good_ else 'not ok'} {i} - {name}")
    print(f"1..{len(results)}")
    return 0 if all(g for g, _ in results) else 1


def main(argv):
    if len(argv) > 1 and argv[1] == "--self-test":
        return _self_test()
    if len(argv) > 1 and argv[1] == "check":
        prefix = argv[2] if len(argv) > 2 else "homeassistant"
        return _cli_check(sys.stdin, prefix)
    print(__doc__)
    print("usage: ha_mqtt_reader.py --self-test | check [prefix] < dump")
    return 0 if len(argv) > 1 and argv[1] in ("-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
