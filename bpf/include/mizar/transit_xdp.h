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
 * Slots of struct mz_transit_stats. Slots below MZ_TRANSIT_OPT_RTS are outcomes:
 * every packet lands in exactly one. Later slots count events beside the outcome.
 */
enum mz_transit_stat {
	/* XDP_PASS: the droplet's own traffic. */
	MZ_TRANSIT_NON_IPV4 = 0,  /* ARP, IPv6, ... */
	MZ_TRANSIT_NON_UDP,	  /* IPv4 that is not UDP */
	MZ_TRANSIT_IPV4_FRAGMENT, /* non-first fragment: no L4 header to read */
	MZ_TRANSIT_NON_GENEVE,	  /* UDP to another port */
	MZ_TRANSIT_NOT_FOR_DROPLET, /* Geneve to another IP (or droplet not configured) */
	/* Forwarded. */
	MZ_TRANSIT_DELIVERED, /* decapsulated and redirected to a local endpoint */
	MZ_TRANSIT_BOUNCED,   /* bouncer: sent to the endpoint's droplet (XDP_TX) */
	MZ_TRANSIT_DIVIDED,   /* divider: sent to a bouncer of the destination network */
	MZ_TRANSIT_FALLBACK,  /* stale direct path: endpoint not here, sent to a bouncer */
	/* XDP_DROP: malformed. */
	MZ_TRANSIT_BAD_ETH,	    /* truncated Ethernet header */
	MZ_TRANSIT_BAD_IPV4,	    /* truncated, IHL < 5, or total length past the frame */
	MZ_TRANSIT_BAD_UDP,	    /* truncated UDP header */
	MZ_TRANSIT_BAD_GENEVE,	    /* truncated header or unknown version */
	MZ_TRANSIT_BAD_GENEVE_OPT,  /* option TLV truncated or longer than the options */
	MZ_TRANSIT_GENEVE_CRITICAL, /* unknown option with the critical bit */
	MZ_TRANSIT_GENEVE_PROTO,    /* payload is not an Ethernet frame */
	MZ_TRANSIT_BAD_INNER,	    /* inner Ethernet or IPv4 header truncated or malformed */
	MZ_TRANSIT_INNER_NON_IPV4,  /* inner frame is not IPv4 */
	MZ_TRANSIT_INNER_TTL,	    /* inner TTL 0 */
	/* XDP_DROP: nowhere to send it. */
	MZ_TRANSIT_UNKNOWN_ENDPOINT, /* bouncer of the network does not know the endpoint */
	MZ_TRANSIT_NO_NETWORK,	     /* no network of the VPC holds the destination */
	MZ_TRANSIT_NO_BOUNCER,	     /* the network has no bouncer */
	MZ_TRANSIT_STALE,	     /* bounced here for an endpoint that is gone */
	MZ_TRANSIT_OUTER_TTL,	     /* forwarded too often: a loop between droplets */
	MZ_TRANSIT_NOT_LOCAL,	     /* after the ingress plugins, not for an endpoint here */
	/* Events. */
	MZ_TRANSIT_OPT_RTS,	/* option: valid Return To Sender */
	MZ_TRANSIT_OPT_UNKNOWN, /* option: unknown, skipped */
	MZ_TRANSIT_LEARNED,	/* direct path learned or refreshed from an RTS */
	MZ_TRANSIT_INGRESS_CHAIN, /* handed to the ingress plugin chain (outcome counted after it) */
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
