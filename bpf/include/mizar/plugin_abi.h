/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains the plugin ABI that user space shares (DESIGN §5): the context a
 * chain's stages pass along, the counters every plugin keeps, and the names user space
 * looks up in a plugin object. A change here that moves a field bumps the ABI version.
 */
#ifndef MIZAR_PLUGIN_ABI_H
#define MIZAR_PLUGIN_ABI_H

#include "stats.h"

/* Embedded in every plugin object; user space refuses an object built for another. */
#define MZ_PLUGIN_ABI_VERSION 1

#define MZ_PLUGIN_MAX_CHAIN 16	    /* plugins on one hook */
#define MZ_PLUGIN_CHAIN_SLOTS 32    /* positions of a chain array: the plugins, then the core */
#define MZ_PLUGIN_STATS_SLOTS 64    /* (hook, plugin) counter slots of a droplet */
#define MZ_PLUGIN_DROP_REASONS 16   /* reason codes a plugin may give a drop: 0..15 */

/* Names user space looks up: in every plugin object ... */
#define MZ_PLUGIN_CTX_MAP "mz_plugin_ctx"
#define MZ_PLUGIN_STATS_MAP "mz_plugin_stats"
#define MZ_CHAIN_ACTIVE_MAP "mz_chain_active" /* cores only: array by enum mz_hook, 1 while a chain is installed */
#define MZ_PLUGIN_CHAIN_MAP "mz_chain"
#define MZ_PLUGIN_ABI_VAR "mz_plugin_abi"
#define MZ_PLUGIN_POSITION_VAR "mz_position"
#define MZ_PLUGIN_SLOT_VAR "mz_stats_slot"
#define MZ_PLUGIN_XDP_SUFFIX "_xdp" /* entry `<name>` is compiled as <name>_xdp and <name>_tc */
#define MZ_PLUGIN_TC_SUFFIX "_tc"
/* ... and in the core objects: where each hook's chain starts, and what follows it. */
#define MZ_INGRESS_ROOT_MAP "ingress_root"     /* transit XDP (XDP) */
#define MZ_TRANSIT_ROOT_MAP "transit_root"     /* transit XDP on a divider (XDP) */
#define MZ_EGRESS_ROOT_MAP "egress_root"       /* transit agent, XDP entry */
#define MZ_EGRESS_ROOT_TC_MAP "egress_root_tc" /* transit agent, TC entry */
#define MZ_INGRESS_CONTINUE_PROG "ingress_continue"
#define MZ_TRANSIT_CONTINUE_PROG "transit_continue"
#define MZ_EGRESS_CONTINUE_PROG "egress_continue"
#define MZ_EGRESS_CONTINUE_TC_PROG "egress_continue_tc"

enum mz_hook {
	MZ_HOOK_EGRESS = 0, /* transit agent: the endpoint's frame, before encapsulation */
	MZ_HOOK_INGRESS,    /* transit XDP: the inner frame, before local delivery */
	MZ_HOOK_TRANSIT,    /* transit XDP of a divider: an inter-network frame, still encapsulated
			     * (l3_off is the inner IPv4 header's), before it goes to a bouncer */
	MZ_HOOK_MAX,
};

/* What a plugin decided; also the slots of its counters. */
enum mz_verdict {
	MZ_VERDICT_CONTINUE = 0, /* on to the next position */
	MZ_VERDICT_DROP,	 /* dropped, with a reason code */
	MZ_VERDICT_PASS,	 /* handed to the kernel stack as it is; the chain ends */
	MZ_VERDICT_ABORTED,	 /* the next position was empty (never in a chain the manager built) */
	MZ_VERDICT_MAX,
};

/* Flags of struct mz_plugin_ctx. */
#define MZ_CTX_EXTERNAL 0x1 /* ingress: plain IPv4 to the droplet, not from the overlay (vni 0) */
#define MZ_CTX_FRAGMENT 0x2 /* a later IPv4 fragment: there is no L4 header at l4_off */
#define MZ_CTX_LEAVE 0x4    /* set by a plugin at egress: leave the overlay via the droplet's stack */
#define MZ_CTX_STEER 0x8    /* set by a plugin: route (egress) or deliver (ingress) to endpoint steer_ip */
#define MZ_CTX_FOREIGN_SOURCE 0x10 /* egress: the source is not the endpoint's address: dropped unless vouched for */
#define MZ_CTX_SOURCE_VOUCHED 0x20 /* set by a plugin at egress: that source is legitimate (a VIP it serves) */
#define MZ_CTX_UNKNOWN_DESTINATION 0x40 /* ingress: the destination is in no network of the VPC: dropped unless steered */
#define MZ_CTX_ANSWER 0x80 /* set by a plugin at egress with LEAVE: the frame answers a connection the remote side
			    * opened (a port forward), so it may leave towards a droplet's address (never to UDP 6081) */
#define MZ_CTX_TRACE 0x100     /* set by the core: tracing wants this frame's drops (trace.h); plugins emit events */
#define MZ_CTX_TRACE_ALL 0x200 /* with MZ_CTX_TRACE: every decision, not only drops */

/*
 * What the core tells the chain about the frame, one per CPU (a chain runs to its end on
 * one CPU). Offsets are from the start of the frame, which is the endpoint's Ethernet
 * header at both hooks. Plugins may set vni (claiming an external frame for an endpoint),
 * flags LEAVE/STEER and steer_ip; the rest is the core's.
 */
struct mz_plugin_ctx {
	__u32 abi;	    /* MZ_PLUGIN_ABI_VERSION of the core */
	__u32 hook;	    /* enum mz_hook */
	__u32 flags;	    /* MZ_CTX_* */
	__u32 vni;	    /* the VPC; 0 for an external frame no plugin claimed */
	__u32 ifindex;	    /* host-side veth of the endpoint: sender (egress), receiver (ingress) */
	__be32 endpoint_ip; /* that endpoint's address (0 when none) */
	__be32 steer_ip;
	__u32 len;	    /* frame length when the chain started */
	__u16 l3_off;
	__u16 l4_off;
	__u8 l4_proto;	    /* IPPROTO_* */
	__u8 net_plen;	    /* prefix length of the endpoint's network (egress) */
	__u16 core_stat;    /* the core's own bookkeeping across the chain */
};

/* One (hook, plugin) slot of mz_plugin_stats, per CPU. */
struct mz_plugin_stats {
	struct mz_counter verdict[MZ_VERDICT_MAX];
	struct mz_counter reason[MZ_PLUGIN_DROP_REASONS]; /* drops by reason code */
};

#endif /* MIZAR_PLUGIN_ABI_H */
