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
 * an egress plugin drops it, in that plugin's counters); MZ_STAT_EVENT slots count beside it.
 * The kinds are the XDP entry's verdicts (at TC an ARP answer is a redirect).
 */
#define MZ_AGENT_STATS(X)                                                                                    \
	/* Forwarded. */                                                                                     \
	X(MZ_AGENT_LOCAL, "local", MZ_STAT_REDIRECT, "redirected to an endpoint on this droplet")             \
	X(MZ_AGENT_TO_BOUNCER, "to_bouncer", MZ_STAT_REDIRECT, "encapsulated to a bouncer of the network (with RTS)") \
	X(MZ_AGENT_DIRECT, "direct_path", MZ_STAT_REDIRECT, "encapsulated straight to the destination's droplet") \
	X(MZ_AGENT_TO_DIVIDER, "to_divider", MZ_STAT_REDIRECT, "encapsulated to a divider: another network of the VPC") \
	X(MZ_AGENT_ARP_REPLIED, "arp_replied", MZ_STAT_TX, "ARP request answered on the spot")                \
	X(MZ_AGENT_LEFT_OVERLAY, "left_overlay", MZ_STAT_REDIRECT,                                            \
	  "an egress plugin made it leave the overlay (SNAT): routed out unencapsulated")                    \
	/* Dropped: the endpoint's fault. */                                                                 \
	X(MZ_AGENT_SPOOFED_MAC, "spoofed_mac", MZ_STAT_DROP, "source MAC (or ARP sender MAC) is not the endpoint's") \
	X(MZ_AGENT_SPOOFED_IP, "spoofed_ip", MZ_STAT_DROP, "source IP (or ARP sender IP) is not the endpoint's") \
	X(MZ_AGENT_BAD_ETH, "bad_ethernet", MZ_STAT_DROP, "truncated Ethernet header")                        \
	X(MZ_AGENT_BAD_IPV4, "bad_ipv4", MZ_STAT_DROP, "truncated or malformed IPv4 header")                  \
	X(MZ_AGENT_BAD_ARP, "bad_arp", MZ_STAT_DROP, "truncated ARP or not Ethernet/IPv4 ARP")                \
	X(MZ_AGENT_UNSUPPORTED, "unsupported_protocol", MZ_STAT_DROP, "neither IPv4 nor ARP (IPv6, LLDP, ...)") \
	X(MZ_AGENT_BROADCAST, "broadcast", MZ_STAT_DROP, "IPv4 to a broadcast or multicast MAC: never flooded") \
	X(MZ_AGENT_TTL_EXPIRED, "ttl_expired", MZ_STAT_DROP, "routed to another network with TTL <= 1")       \
	X(MZ_AGENT_TOO_BIG, "too_big", MZ_STAT_DROP, "the encapsulated frame would exceed the substrate MTU")  \
	X(MZ_AGENT_ARP_IGNORED, "arp_ignored", MZ_STAT_DROP, "ARP reply, gratuitous ARP, or a target outside the VPC") \
	X(MZ_AGENT_UNDERLAY_REFUSED, "underlay_refused", MZ_STAT_DROP,                                        \
	  "would leave the overlay towards a droplet's address or UDP 6081 on the underlay")                 \
	/* Dropped: nowhere to send it. */                                                                   \
	X(MZ_AGENT_UNKNOWN_PORT, "unknown_port", MZ_STAT_DROP, "arrived on a veth with no endpoint configured") \
	X(MZ_AGENT_NO_ROUTE, "no_route", MZ_STAT_DROP, "destination in no network of the VPC")                \
	X(MZ_AGENT_NO_BOUNCER, "no_bouncer", MZ_STAT_DROP, "the network has no bouncer")                      \
	X(MZ_AGENT_NO_DIVIDER, "no_divider", MZ_STAT_DROP, "the VPC has no divider")                          \
	X(MZ_AGENT_ENCAP_FAILED, "encap_failed", MZ_STAT_DROP, "no headroom for the outer headers")            \
	X(MZ_AGENT_CHAIN_UNAVAILABLE, "chain_unavailable", MZ_STAT_DROP,                                      \
	  "the egress chain is marked active but could not be entered (fails closed)")                       \
	/* Events. */                                                                                        \
	X(MZ_AGENT_EGRESS_CHAIN, "egress_chain", MZ_STAT_EVENT,                                               \
	  "handed to the egress plugin chain (the outcome is counted after it)")

enum mz_agent_stat {
	MZ_AGENT_STATS(MZ_STAT_ENUMERATOR) MZ_AGENT_STAT_MAX,
};

struct mz_agent_stats {
	struct mz_counter slot[MZ_AGENT_STAT_MAX];
};

#ifndef __bpf__
/* A slot's name, verdict and meaning (name NULL past the last slot). */
static inline struct mz_stat_info mz_agent_stat_info(__u32 slot)
{
	switch (slot) {
		MZ_AGENT_STATS(MZ_STAT_INFO_CASE)
	}
	return (struct mz_stat_info){ 0 };
}
#endif

#endif /* MIZAR_TRANSIT_AGENT_H */
