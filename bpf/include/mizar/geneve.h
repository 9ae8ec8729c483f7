/* SPDX-License-Identifier: Apache-2.0 */
/* This file contains the Geneve wire format of DESIGN §3, shared by BPF and user space. */
#ifndef MIZAR_GENEVE_H
#define MIZAR_GENEVE_H

#include <linux/types.h>

#define MZ_GENEVE_UDP_PORT 6081
#define MZ_GENEVE_PROTO_ETH 0x6558 /* Transparent Ethernet Bridging */
#define MZ_GENEVE_VERSION 0

/* Option class of this project, bytes 01 11 on the wire. */
#define MZ_GENEVE_OPT_CLASS 0x0111
/* Option type with the critical bit: an unknown critical option is fatal. */
#define MZ_GENEVE_OPT_CRITICAL 0x80
/* Return To Sender: the droplet hosting the inner source endpoint. */
#define MZ_GENEVE_OPT_RTS 0x48
#define MZ_GENEVE_OPT_RTS_WORDS 3

/* Outer UDP source port range, chosen by a hash of the inner 5-tuple. */
#define MZ_GENEVE_SPORT_MIN 32768
#define MZ_GENEVE_SPORT_MAX 61000

/* Fixed Geneve header (RFC 8926 §3.4). */
struct mz_geneve_hdr {
	__u8 ver_optlen; /* version:2, options length in 4-byte words:6 */
	__u8 flags;      /* O:1, C:1, reserved:6 */
	__be16 proto;
	__u8 vni[3];
	__u8 reserved;
};

/* Option TLV header; `len` counts 4-byte words after this header. */
struct mz_geneve_opt {
	__be16 opt_class;
	__u8 type;
	__u8 len; /* reserved:3, length:5 */
};

/* Body of the RTS option (12 bytes). */
struct mz_geneve_rts {
	__be32 droplet_ip;
	__u8 droplet_mac[6];
	__u8 zero[2];
};

#define MZ_GENEVE_OPTLEN(h) ((h)->ver_optlen & 0x3f)
#define MZ_GENEVE_VER(h) ((h)->ver_optlen >> 6)
#define MZ_GENEVE_OPT_WORDS(o) ((o)->len & 0x1f)

_Static_assert(sizeof(struct mz_geneve_hdr) == 8, "geneve header is 8 bytes");
_Static_assert(sizeof(struct mz_geneve_opt) == 4, "geneve option header is 4 bytes");
_Static_assert(sizeof(struct mz_geneve_rts) == MZ_GENEVE_OPT_RTS_WORDS * 4, "RTS body is 3 words");

#endif /* MIZAR_GENEVE_H */
