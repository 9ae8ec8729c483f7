/* SPDX-License-Identifier: Apache-2.0 */
/* This file contains what the transit agent shares with user space: names and counter slots. */
#ifndef MIZAR_TRANSIT_AGENT_H
#define MIZAR_TRANSIT_AGENT_H

#include "stats.h"

#define MZ_TRANSIT_AGENT_OBJECT "transit_agent.bpf.o"
#define MZ_TRANSIT_AGENT_PROG "transit_agent"       /* XDP entry */
#define MZ_TRANSIT_AGENT_TC_PROG "transit_agent_tc" /* TC ingress entry */
/* XDP_PASS program for the endpoint's side of the veth: redirected frames need an XDP peer. */
#define MZ_VETH_PEER_PROG "veth_peer"
#define MZ_AGENT_STATS_MAP "agent_stats"

/*
 * Slots of struct mz_agent_stats: every packet lands in exactly one outcome slot (or, when
 * an egress plugin drops it, in that plugin's counters). Later slots count events.
 */
enum mz_agent_stat {
	/* Forwarded. */
	MZ_AGENT_LOCAL = 0,   /* redirected to an endpoint on this droplet */
	MZ_AGENT_TO_BOUNCER,  /* encapsulated to a bouncer of the network (with RTS) */
	MZ_AGENT_DIRECT,      /* encapsulated straight to the destination's droplet */
	MZ_AGENT_TO_DIVIDER,  /* encapsulated to a divider: another network of the VPC */
	MZ_AGENT_ARP_REPLIED, /* ARP request answered on the spot (XDP_TX) */
	MZ_AGENT_LEFT_OVERLAY, /* an egress plugin made it leave the overlay (SNAT): routed out unencapsulated */
	/* Dropped: the endpoint's fault. */
	MZ_AGENT_SPOOFED_MAC, /* source MAC (or ARP sender MAC) is not the endpoint's */
	MZ_AGENT_SPOOFED_IP,  /* source IP (or ARP sender IP) is not the endpoint's */
	MZ_AGENT_BAD_ETH,     /* truncated Ethernet header */
	MZ_AGENT_BAD_IPV4,    /* truncated or malformed IPv4 header */
	MZ_AGENT_BAD_ARP,     /* truncated ARP or not Ethernet/IPv4 ARP */
	MZ_AGENT_UNSUPPORTED, /* neither IPv4 nor ARP (IPv6, LLDP, ...) */
	MZ_AGENT_BROADCAST,   /* IPv4 to a broadcast or multicast MAC: never flooded */
	MZ_AGENT_TTL_EXPIRED, /* routed to another network with TTL <= 1 */
	MZ_AGENT_TOO_BIG,     /* the encapsulated frame would exceed the substrate MTU */
	MZ_AGENT_ARP_IGNORED, /* ARP reply, gratuitous ARP, or a target outside the VPC */
	/* Dropped: nowhere to send it. */
	MZ_AGENT_UNKNOWN_PORT, /* arrived on a veth with no endpoint configured */
	MZ_AGENT_NO_ROUTE,     /* destination in no network of the VPC */
	MZ_AGENT_NO_BOUNCER,   /* the network has no bouncer */
	MZ_AGENT_NO_DIVIDER,   /* the VPC has no divider */
	MZ_AGENT_ENCAP_FAILED, /* no headroom for the outer headers */
	/* Events. */
	MZ_AGENT_EGRESS_CHAIN, /* handed to the egress plugin chain (outcome counted after it) */
	MZ_AGENT_STAT_MAX,
};

struct mz_agent_stats {
	struct mz_counter slot[MZ_AGENT_STAT_MAX];
};

#endif /* MIZAR_TRANSIT_AGENT_H */
