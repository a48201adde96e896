/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One key of the configuration file, as a table row: its name, type,
 * range, default, unit and where it lands in its group's C struct. A
 * neutral header: the config engine (src/config.c) reads the tables, the
 * modules that own a group (the safety layer's safety { }) define theirs
 * here without including config.h, which sits above them.
 */
#include <stddef.h>
#include <stdint.h>

enum conf_type {
	CONF_BOOL,	/* bool */
	CONF_UINT,	/* unsigned integer of .size bytes, value * .scale */
	CONF_INT,	/* signed integer of .size bytes, value * .scale */
	CONF_STRING,	/* char[.size], at most .max characters */
	CONF_ENUM,	/* int: index of the value in .enum_names */
	CONF_UINT_LIST, /* uint8_t[.max] + uint8_t count at .count_offset */
};

struct conf_key {
	const char *name; /* key inside its group */
	enum conf_type type;
	size_t offset;		       /* into the group's struct */
	size_t size;		       /* sizeof the field */
	int64_t min, max;	       /* accepted range in file units; strings/lists: max length */
	int64_t def;		       /* default in file units (numbers, bools, enum index) */
	const char *def_str;	       /* default for strings */
	int64_t scale;		       /* stored = file value * scale (0 means 1) */
	const char *const *enum_names; /* CONF_ENUM: NULL-terminated */
	size_t count_offset;	       /* CONF_UINT_LIST: offset of the uint8_t count */
	const char *unit;	       /* for --check-config ("mV", "ms") */
	const int64_t *choices; /* CONF_UINT, optional: the only values allowed, 0-terminated */
};
