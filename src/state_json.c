/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: replaced by the JSON module. */
