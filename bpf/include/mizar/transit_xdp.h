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
 * Slots of struct mz_transit_stats: every packet lands in exactly one outcome slot;
 * MZ_STAT_EVENT slots count what a packet showed beside its outcome.
 */
#define MZ_TRANSIT_STATS(X)                                                                                   \
	/* The droplet's own traffic. */                                                                      \
	X(MZ_TRANSIT_NON_IPV4, "non_ipv4", MZ_STAT_PASS, "ARP, IPv6, ...")                                     \
	X(MZ_TRANSIT_NON_UDP, "non_udp", MZ_STAT_PASS, "IPv4 that is not UDP")                                 \
	X(MZ_TRANSIT_IPV4_FRAGMENT, "ipv4_fragment", MZ_STAT_PASS, "non-first fragment: no L4 header to read") \
	X(MZ_TRANSIT_NON_GENEVE, "non_geneve", MZ_STAT_PASS, "UDP to another port")                            \
	X(MZ_TRANSIT_NOT_FOR_DROPLET, "not_for_droplet", MZ_STAT_PASS,                                         \
	  "Geneve to another IP (or the droplet is not configured)")                                          \
	/* Forwarded. */                                                                                      \
	X(MZ_TRANSIT_DELIVERED, "delivered", MZ_STAT_REDIRECT, "decapsulated and redirected to a local endpoint") \
	X(MZ_TRANSIT_BOUNCED, "bounced", MZ_STAT_TX, "bouncer: sent to the endpoint's droplet")               \
	X(MZ_TRANSIT_DIVIDED, "divided", MZ_STAT_TX, "divider: sent to a bouncer of the destination network") \
	X(MZ_TRANSIT_FALLBACK, "fallback_to_bouncer", MZ_STAT_TX,                                              \
	  "stale direct path: the endpoint is not here, sent to a bouncer")                                   \
	/* Malformed; outer headers the stack judges itself, the overlay's are dropped. */                   \
	X(MZ_TRANSIT_BAD_ETH, "bad_ethernet", MZ_STAT_PASS, "truncated Ethernet header")                       \
	X(MZ_TRANSIT_BAD_IPV4, "bad_ipv4", MZ_STAT_PASS, "truncated, IHL < 5, or total length past the frame") \
	X(MZ_TRANSIT_BAD_UDP, "bad_udp", MZ_STAT_PASS, "truncated UDP header")                                 \
	X(MZ_TRANSIT_BAD_GENEVE, "bad_geneve", MZ_STAT_DROP, "truncated Geneve header or unknown version")     \
	X(MZ_TRANSIT_BAD_GENEVE_OPT, "bad_geneve_option", MZ_STAT_DROP,                                        \
	  "option TLV truncated or longer than the options")                                                  \
	X(MZ_TRANSIT_GENEVE_CRITICAL, "geneve_critical_option", MZ_STAT_DROP,                                  \
	  "unknown option with the critical bit")                                                             \
	X(MZ_TRANSIT_GENEVE_PROTO, "geneve_not_ethernet", MZ_STAT_DROP, "payload is not an Ethernet frame")    \
	X(MZ_TRANSIT_BAD_INNER, "bad_inner", MZ_STAT_DROP, "inner Ethernet or IPv4 header truncated or malformed") \
	X(MZ_TRANSIT_INNER_NON_IPV4, "inner_non_ipv4", MZ_STAT_DROP, "inner frame is not IPv4")                \
	X(MZ_TRANSIT_INNER_TTL, "inner_ttl_zero", MZ_STAT_DROP, "inner TTL 0")                                 \
	/* Refused. */                                                                                        \
	X(MZ_TRANSIT_GENEVE_FROM_UNKNOWN_SOURCE, "geneve_from_unknown_source", MZ_STAT_DROP,                   \
	  "Geneve to this droplet from an outer source that is no known droplet")                             \
	X(MZ_TRANSIT_CHAIN_UNAVAILABLE, "chain_unavailable", MZ_STAT_DROP,                                     \
	  "the ingress chain is marked active but could not be entered (fails closed)")                       \
	/* Nowhere to send it. */                                                                             \
	X(MZ_TRANSIT_UNKNOWN_ENDPOINT, "unknown_endpoint", MZ_STAT_DROP,                                       \
	  "the bouncer of the network does not know the endpoint")                                            \
	X(MZ_TRANSIT_NO_NETWORK, "no_network", MZ_STAT_DROP, "no network of the VPC holds the destination")    \
	X(MZ_TRANSIT_NO_BOUNCER, "no_bouncer", MZ_STAT_DROP, "the network has no bouncer")                     \
	X(MZ_TRANSIT_STALE, "stale_endpoint", MZ_STAT_DROP, "bounced here for an endpoint that is gone")       \
	X(MZ_TRANSIT_OUTER_TTL, "outer_ttl_expired", MZ_STAT_DROP, "forwarded too often: a loop between droplets") \
	X(MZ_TRANSIT_NOT_LOCAL, "not_local_after_plugins", MZ_STAT_DROP,                                       \
	  "after the ingress plugins, not for an endpoint here")                                              \
	/* Events. */                                                                                         \
	X(MZ_TRANSIT_OPT_RTS, "option_rts", MZ_STAT_EVENT, "option: valid Return To Sender")                   \
	X(MZ_TRANSIT_OPT_UNKNOWN, "option_unknown", MZ_STAT_EVENT, "option: unknown, skipped")                 \
	X(MZ_TRANSIT_LEARNED, "direct_path_learned", MZ_STAT_EVENT, "direct path learned or refreshed from an RTS") \
	X(MZ_TRANSIT_LEARNED_NEW, "direct_path_new", MZ_STAT_EVENT,                                            \
	  "direct path learned for an endpoint the cache did not hold (beside direct_path_learned)")          \
	X(MZ_TRANSIT_RTS_UNKNOWN_DROPLET, "rts_unknown_droplet", MZ_STAT_EVENT,                                \
	  "RTS not learned: it names no known droplet, or another MAC than the droplet's")                    \
	X(MZ_TRANSIT_INGRESS_CHAIN, "ingress_chain", MZ_STAT_EVENT,                                            \
	  "handed to the ingress plugin chain (the outcome is counted after it)")                             \
	X(MZ_TRANSIT_TRANSIT_CHAIN, "transit_chain", MZ_STAT_EVENT,                                            \
	  "a divided frame handed to the transit plugin chain (the outcome is counted after it)")

enum mz_transit_stat {
	MZ_TRANSIT_STATS(MZ_STAT_ENUMERATOR) MZ_TRANSIT_STAT_MAX,
};

/*
 * The single value of the transit_stats per-CPU array: all slots together, so a packet
 * costs one map lookup however many slots it moves.
 */
struct mz_transit_stats {
	struct mz_counter slot[MZ_TRANSIT_STAT_MAX];
};

#ifndef __bpf__
/* A slot's name, verdict and meaning (name NULL past the last slot). */
static inline struct mz_stat_info mz_transit_stat_info(__u32 slot)
{
	switch (slot) {
		MZ_TRANSIT_STATS(MZ_STAT_INFO_CASE)
	}
	return (struct mz_stat_info){ 0 };
}
#endif

#endif /* MIZAR_TRANSIT_XDP_H */
