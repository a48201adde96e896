/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Frames are built byte by byte (house style H8): never cast a struct onto
 * the wire. Signed values go through the unsigned helpers with an explicit
 * cast at the call site.
 */
#include <stdint.h>

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v & 0xff);
	p[1] = (uint8_t)(v >> 8);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)(v & 0xff);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)(v & 0xffff));
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, (uint16_t)(v >> 16));
	put_be16(p + 2, (uint16_t)(v & 0xffff));
}

static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)get_le16(p) | ((uint32_t)get_le16(p + 2) << 16);
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)get_be16(p) << 16) | (uint32_t)get_be16(p + 2);
}

/* Clamp a wide signed value into the range of the field that carries it. */
static inline int16_t clamp_s16(int64_t v)
{
	return (int16_t)(v < INT16_MIN ? INT16_MIN : v > INT16_MAX ? INT16_MAX : v);
}

static inline uint16_t clamp_u16(int64_t v)
{
	return (uint16_t)(v < 0 ? 0 : v > UINT16_MAX ? UINT16_MAX : v);
}

static inline uint8_t clamp_u8(int64_t v)
{
	return (uint8_t)(v < 0 ? 0 : v > UINT8_MAX ? UINT8_MAX : v);
}
