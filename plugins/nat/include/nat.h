/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains the nat plugin's tables, shared by its BPF program and its Swift
 * library. SNAT (masquerade) rewrites endpoint traffic to destinations outside the
 * overlay to the droplet's address and an allocated port; DNAT forwards a droplet port
 * to an endpoint's port. A translation is a pair: a flow entry (the endpoint side, as the
 * egress hook sees it) and a reverse entry (the outside side, as the ingress hook sees
 * it). Neither table evicts: a pair is made together, checked whole on every use, and
 * removed together once idle for the configured time — by a new flow that needs its port
 * (in BPF), or by the library's sweep (`NAT.sweep`, which transitd runs).
 *
 * The configuration (settings, masquerade prefixes, port forwards) belongs to a generation
 * that `nat_generation` names: a new one is written beside the live one (settings in its
 * slot of `nat_config`, prefixes and forwards keyed by the generation's low bit) and
 * switched to by one write of `nat_generation`, so a packet never meets new forwards beside
 * old settings (the host's `GenerationalConfiguration`, docs/plugins.md). Translations are
 * state, not configuration: a switch keeps them.
 */
#ifndef MIZAR_NAT_H
#define MIZAR_NAT_H

#include <linux/types.h>

#define NAT_OBJECT "nat.bpf.o"
#define NAT_EXTERNAL_MAP "nat_external"
#define NAT_FORWARDS_MAP "nat_forwards"
#define NAT_FLOWS_MAP "nat_flows"
#define NAT_REVERSE_MAP "nat_reverse"
#define NAT_CONFIG_MAP "nat_config"
#define NAT_GENERATION_MAP "nat_generation"

#define NAT_MAX_PREFIXES 4096 /* of one configuration */
#define NAT_MAX_FORWARDS 4096 /* of one configuration */
#define NAT_GENERATIONS 2     /* the live configuration and the one being written */
#define NAT_TABLE_SIZE 262144
#define NAT_PORT_TRIES 16 /* ports tried before a new flow is refused */
#define NAT_DEFAULT_IDLE_SECONDS 300 /* a translation unused this long is removed */

/* Drop reasons. */
enum nat_reason {
	NAT_REASON_NO_PORT = 1,	  /* no free port after NAT_PORT_TRIES tries */
	NAT_REASON_TRUNCATED = 2, /* the L4 header is cut short */
	NAT_REASON_REWRITE = 3,	  /* the rewrite failed */
	NAT_REASON_FRAGMENT = 4,  /* a later fragment of a flow that needs translation */
	NAT_REASON_TABLE_FULL = 5, /* no room for a new translation (tables never evict) */
	NAT_REASON_STALE = 6,	  /* an external frame matched half a translation: never delivered */
};

/* Destinations by VPC: masquerade to them (1), or leave them to the overlay (0). */
struct nat_external_key {
	__u32 prefixlen;  /* 64 + the destination prefix length */
	__u32 generation; /* the configuration generation's low bit */
	__u32 vni;
	__be32 dst;
};

/* An endpoint's connection as the egress hook sees it. */
struct nat_flow_key {
	__u32 vni;
	__be32 src;
	__be32 dst;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 pad[3];
};

/* What its source becomes. */
struct nat_flow {
	__be32 nat_ip;
	__be16 nat_port;
	__u16 pad;
};

/* The same connection as the ingress hook sees its replies arrive. */
struct nat_reverse_key {
	__be32 nat_ip;
	__be32 remote;
	__be16 nat_port;
	__be16 remote_port;
	__u8 protocol;
	__u8 pad[3];
};

/* Value of the reverse table: where the replies go, and when the pair was last used. */
struct nat_translation {
	__u32 vni;
	__be32 ip;	      /* the endpoint */
	__be16 port;	      /* its port (ICMP: its echo id) */
	__be16 remote_port;   /* the flow's destination port as the endpoint sent it (ICMP: its id) */
	__u32 flags;	      /* NAT_PAIR_* */
	__u64 last_seen_ns;   /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) of the pair's last packet, either way */
};

#define NAT_PAIR_INBOUND 0x1 /* made by a port forward: the remote side opened the connection */
#define NAT_PAIR_ANSWERED 0x2 /* the side that did not open it has sent too */
/* A pair never answered is idle after this (or idleSeconds if shorter): floods of one-way flows age fast. */
#define NAT_UNANSWERED_SECONDS 30
#define NAT_REFRESH_NS 1000000000ULL /* a pair's last_seen_ns is rewritten at most this often */
#define NAT_EPHEMERAL_MIN 32768	     /* a droplet's client ports: only these get answers (MZ_CTX_ANSWER) */
#define NAT_PAIR_RACED 100	     /* internal: another CPU made the same flow's pair first */

/* A DNAT target: an endpoint's port. */
struct nat_endpoint {
	__u32 vni;
	__be32 ip;
	__be16 port;
	__u16 pad;
};

/* DNAT: a droplet port forwarded to an endpoint port. */
struct nat_forward_key {
	__u8 protocol;
	__u8 generation; /* the configuration generation's low bit */
	__be16 port;
};

/* The settings of a generation: `nat_config` holds one per low bit (index 0 and 1). */
struct nat_config {
	__be32 external_ip; /* the droplet's address: what SNAT rewrites sources to */
	__u16 port_min;	    /* SNAT ports, host order */
	__u16 port_max;
	__u32 idle_seconds; /* translations unused this long are removed (0: the default) */
	__u32 generation;   /* the generation these settings belong to: its low bit keys its tables */
};

/* The live configuration generation (one entry): written last, it switches the whole configuration. */
struct nat_generation {
	__u32 generation;
};

#endif /* MIZAR_NAT_H */
