/* SPDX-License-Identifier: Apache-2.0 */
/* This file contains what transit XDP shares with user space: names and counter slots. */
#ifndef MIZAR_TRANSIT_XDP_H
#define MIZAR_TRANSIT_XDP_H

#include "stats.h"

/* Names user space looks up; the BPF object must define exactly these. */
#define MZ_TRANSIT_XDP_OBJECT "transit_xdp.bpf.o"
#define MZ_TRANSIT_XDP_PROG "transit_xdp"
#define MZ_TRANSIT_STATS_MAP "transit_stats"

/*
 * Slots of struct mz_transit_stats. Slots below MZ_TRANSIT_OPT_RTS
 * are outcomes: every packet lands in exactly one. Slots from
 * MZ_TRANSIT_OPT_RTS on count Geneve options seen, beside the outcome.
 */
enum mz_transit_stat {
	MZ_TRANSIT_NON_IPV4 = 0,    /* ARP, IPv6, ...: the host's own traffic */
	MZ_TRANSIT_NON_UDP,         /* IPv4 that is not UDP */
	MZ_TRANSIT_IPV4_FRAGMENT,   /* non-first fragment: no L4 header to read */
	MZ_TRANSIT_NON_GENEVE,      /* UDP to another port */
	MZ_TRANSIT_GENEVE,          /* well-formed Geneve carrying Ethernet */
	MZ_TRANSIT_BAD_ETH,         /* truncated Ethernet header */
	MZ_TRANSIT_BAD_IPV4,        /* truncated, IHL < 5, or total length past the frame */
	MZ_TRANSIT_BAD_UDP,         /* truncated UDP header */
	MZ_TRANSIT_BAD_GENEVE,      /* truncated header or unknown version */
	MZ_TRANSIT_BAD_GENEVE_OPT,  /* option TLV truncated or longer than the options */
	MZ_TRANSIT_GENEVE_CRITICAL, /* unknown option with the critical bit */
	MZ_TRANSIT_GENEVE_PROTO,    /* payload is not an Ethernet frame */
	MZ_TRANSIT_BAD_INNER,       /* inner Ethernet header truncated */
	MZ_TRANSIT_OPT_RTS,         /* option: valid Return To Sender */
	MZ_TRANSIT_OPT_UNKNOWN,     /* option: unknown, skipped */
	MZ_TRANSIT_STAT_MAX,
};

/*
 * The single value of the transit_stats per-CPU array: all slots together, so a packet
 * costs one map lookup however many slots it moves.
 */
struct mz_transit_stats {
	struct mz_counter slot[MZ_TRANSIT_STAT_MAX];
};

#endif /* MIZAR_TRANSIT_XDP_H */
