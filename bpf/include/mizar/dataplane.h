/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains the data-plane tables shared by transit XDP, the transit agent
 * and user space (MizarDataplane): keys, values, flags, names and default sizes.
 */
#ifndef MIZAR_DATAPLANE_H
#define MIZAR_DATAPLANE_H

#include <linux/types.h>

#include "stats.h"

/* Map names: both programs define every table; user space shares one set per droplet. */
#define MZ_DROPLET_MAP "droplet"
#define MZ_ENDPOINTS_MAP "endpoints"
#define MZ_LOCAL_ENDPOINTS_MAP "local_endpoints"
#define MZ_NETWORKS_MAP "networks"
#define MZ_VPCS_MAP "vpcs"
#define MZ_DIRECT_PATH_MAP "direct_path"
#define MZ_DROPLETS_MAP "droplets"
#define MZ_DROPLET_INDEX_MAP ".data.droplet_index" /* a data section: its one value is `struct mz_droplet_index` */
#define MZ_ENDPOINT_STATS_MAP "endpoint_stats" /* per CPU, by an endpoint's stats_slot (0: none) */

/* Default sizes; user space sets the real ones at load time. */
#define MZ_DEFAULT_ENDPOINTS 1048576	/* per bouncer, allocated on insert (no prealloc) */
#define MZ_DEFAULT_LOCAL_ENDPOINTS 4096 /* endpoints hosted by one droplet */
#define MZ_DEFAULT_NETWORKS 65536
#define MZ_DEFAULT_VPCS 16384
#define MZ_DEFAULT_DIRECT_PATHS 65536 /* LRU: preallocated, keep it modest */
#define MZ_DEFAULT_DROPLETS 65536     /* droplets of the cluster: who may send Geneve */
#define MZ_DEFAULT_ENDPOINT_STATS 1024 /* counter slots of local endpoints (slot 0 counts nothing) */
#define MZ_ENDPOINT_DROP_REASONS 32    /* an endpoint's drops by agent counter slot */

/* Bouncers of one network and dividers of one VPC held inline (chosen by flow hash). */
#define MZ_MAX_BOUNCERS 16
#define MZ_MAX_DIVIDERS 16

/*
 * Bytes the overlay adds in front of an endpoint's frame: outer Ethernet, IPv4, UDP,
 * Geneve and the RTS option (66). It is also the MTU overhead: the outer IP packet
 * carries outer UDP, Geneve, RTS (32) and the inner Ethernet header (14) besides
 * the inner IP packet, so endpoint MTU = substrate MTU - 66 (1434 on 1500, 8934 on 9000).
 */
#define MZ_ENCAP_OVERHEAD 66 /* 14 + 20 + 8 + 8 + 4 + 12 */
#define MZ_MTU_OVERHEAD 66 /* = MZ_ENCAP_OVERHEAD */
#define MZ_OUTER_TTL 64

/* Underlay address of a droplet: the overlay assumes an L2 underlay segment or a gateway MAC. */
struct mz_droplet_addr {
	__be32 ip;
	__u8 mac[6];
	__u8 pad[2];
};

/*
 * `droplets` holds every droplet of the cluster (this one too), keyed by underlay IPv4
 * address, valued by its struct mz_droplet_addr: Geneve is accepted only from these, an
 * RTS is learned only when it names one of them with its MAC, and endpoints' frames
 * leaving the overlay may not go to them.
 */

/*
 * `droplet_index` answers "is this a droplet?" for most addresses without a hash lookup:
 * a slot per last octet of an address names the droplet ending in it. When several
 * droplets end in the same octet, the slot says so and those addresses are looked up in
 * `droplets`. User space writes it with `droplets` (added there first, removed after).
 * It is a global in its own data section (one map shared by the objects, like a table):
 * the programs read a slot with one load from an address fixed at load time, no lookup.
 */
#define MZ_DROPLET_INDEX_SLOTS 256
#define MZ_DROPLET_SLOT_SHARED 0x80000000u /* others end in this octet too: ask `droplets` (the word's sign bit) */
/* An empty slot holds an address that cannot end in its octet: 0, but 255.255.255.255 in
 * slot 0 (where 0.0.0.0 would find 0). */
#define MZ_DROPLET_SLOT_EMPTY(slot) ((slot) == 0 ? 0xffffffffull : 0ull)

/* A slot: the droplet's address (as on the wire) in the low 32 bits, MZ_DROPLET_SLOT_SHARED
 * in the high 32, read by the programs in one load and compared whole with an address.
 * User space writes the index whole, and the kernel's copy does not promise each word in
 * one store: so a changed slot goes old|SHARED, new|SHARED, new, each pass changing the
 * flag's byte alone or the address under the flag (`Droplet.writeDropletIndex`). */
struct mz_droplet_slot {
	__u64 word;
};
struct mz_droplet_index {
	struct mz_droplet_slot slot[MZ_DROPLET_INDEX_SLOTS];
};

/* Value of the one-entry `droplet` array: this droplet. */
struct mz_droplet {
	struct mz_droplet_addr self;
	__u32 ifindex;		      /* substrate interface: encapsulated frames leave here */
	__u32 mtu;		      /* substrate MTU: larger encapsulated frames are dropped */
	__u32 direct_path_max_age_ms; /* learned paths older than this are not used; 0: never used */
	__u32 reserved;		      /* was a generation of `droplets`; kept so pinned tables still fit */
};

/* Key of `endpoints` and `direct_path`: an endpoint IP inside a VPC. */
struct mz_endpoint_key {
	__u32 vni;
	__be32 ip;
};

#define MZ_ENDPOINT_LOCAL 0x1 /* hosted on this droplet: deliver to ifindex */

/*
 * Value of `endpoints`: on a bouncer, every endpoint of its networks (where to bounce);
 * on every droplet, its own endpoints (where to deliver).
 */
struct mz_endpoint {
	struct mz_droplet_addr droplet; /* the droplet hosting it */
	__u8 mac[6];			/* the endpoint's MAC */
	__u8 flags;			/* MZ_ENDPOINT_* */
	__u8 net_plen;			/* prefix length of its network */
	__u32 ifindex;			/* local: the host-side veth */
	__u8 gw_mac[6];			/* local: the host-side veth's MAC, the endpoint's gateway/peer MAC */
	__u16 stats_slot;		/* local: its slot of endpoint_stats (0: not counted) */
};

/* Value of `local_endpoints`, keyed by the host-side veth's ifindex: what the agent enforces. */
struct mz_local_endpoint {
	__u32 vni;
	__be32 ip;
	__u8 mac[6];
	__u8 net_plen;
	__u8 flags;
	__u8 gw_mac[6];
	__u16 stats_slot; /* its slot of endpoint_stats (0: not counted) */
};

/*
 * Value of `endpoint_stats` (per CPU): one local endpoint's traffic, as its agent and
 * transit XDP saw it. One array lookup per frame that has an endpoint.
 */
struct mz_endpoint_stats {
	struct mz_counter sent;	    /* its frames the agent forwarded (another endpoint, a droplet, out of the overlay) */
	struct mz_counter received; /* frames delivered to it (from transit XDP or another local endpoint) */
	struct mz_counter dropped;  /* its frames the agent dropped */
	__u64 drop_reason[MZ_ENDPOINT_DROP_REASONS]; /* those drops by the agent's counter slot */
};

/* Key of the `networks` LPM trie: prefixlen counts the 32 VNI bits plus the CIDR bits. */
struct mz_network_key {
	__u32 prefixlen;
	__u32 vni;
	__be32 ip;
};

#define MZ_NETWORK_BOUNCER_HERE 0x1 /* this droplet bounces the network: it is authoritative */

/* Value of `networks`: a network's bouncers. */
struct mz_network {
	__u32 flags;
	__u32 bouncer_count;
	struct mz_droplet_addr bouncers[MZ_MAX_BOUNCERS];
};

#define MZ_VPC_DIVIDER_HERE 0x1 /* this droplet divides the VPC */

/* Value of `vpcs`, keyed by VNI: the VPC's dividers. */
struct mz_vpc {
	__u32 flags;
	__u32 divider_count;
	struct mz_droplet_addr dividers[MZ_MAX_DIVIDERS];
};

/* Value of the `direct_path` LRU: where an endpoint was last seen (from RTS). */
struct mz_direct_path {
	struct mz_droplet_addr droplet;
	__u32 pad;
	__u64 learned_ns; /* bpf_ktime_get_ns() when learned or last refreshed */
};

_Static_assert((MZ_MAX_BOUNCERS & (MZ_MAX_BOUNCERS - 1)) == 0, "a power of two (index mask)");
_Static_assert((MZ_MAX_DIVIDERS & (MZ_MAX_DIVIDERS - 1)) == 0, "a power of two (index mask)");
_Static_assert(MZ_DROPLET_INDEX_SLOTS == 256, "one slot per last octet (index mask)");
_Static_assert(MZ_DROPLET_SLOT_SHARED == 0x80000000u, "the shared flag is the sign bit of a slot's word");
_Static_assert(MZ_MTU_OVERHEAD == MZ_ENCAP_OVERHEAD, "the header overhead is the MTU overhead");
_Static_assert(sizeof(struct mz_droplet_addr) == 12, "droplet address is 12 bytes");
_Static_assert(sizeof(struct mz_droplet) == 28, "droplet config layout");
_Static_assert(sizeof(struct mz_endpoint_key) == 8, "endpoint key layout");
_Static_assert(sizeof(struct mz_endpoint) == 32, "endpoint layout");
_Static_assert(sizeof(struct mz_local_endpoint) == 24, "local endpoint layout");
_Static_assert(sizeof(struct mz_network_key) == 12, "network key layout");
_Static_assert(sizeof(struct mz_direct_path) == 24, "direct path layout");

#endif /* MIZAR_DATAPLANE_H */
