/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains the transit agent's decision (kernel-only), shared by its XDP and
 * TC entry points: who sent the frame, whether it may, and where it goes. The entry
 * points only carry the plan out (their verdicts, their encapsulation).
 */
#ifndef MIZAR_AGENT_BPF_H
#define MIZAR_AGENT_BPF_H

#include "overlay.bpf.h"
#include "dataplane_maps.bpf.h"
#include "plugin_hooks.bpf.h"
#include "transit_agent.h"

#define MZ_ARP_REQUEST 1
#define MZ_ARP_REPLY 2

/* ARP for Ethernet and IPv4 (RFC 826). */
struct mz_arp {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[ETH_ALEN];
	__be32 spa;
	__u8 tha[ETH_ALEN];
	__be32 tpa;
} __attribute__((packed));

/* What to do with the frame. */
enum mz_agent_action {
	MZ_AGENT_DO_DROP = 0,
	MZ_AGENT_DO_REPLY, /* rewritten in place into an answer: send it back to the endpoint */
	MZ_AGENT_DO_LOCAL, /* MACs rewritten: hand it to the veth `ifindex` */
	MZ_AGENT_DO_ENCAP, /* encapsulate to `to` and send out of the substrate interface */
	MZ_AGENT_DO_LEAVE, /* out of the substrate interface unencapsulated, routed by the droplet's FIB (SNAT) */
};

struct mz_agent_plan {
	__u32 stat; /* enum mz_agent_stat */
	__u32 action;
	__u32 ifindex;
	__u32 vni;
	__u32 hash;
	__u32 foreign; /* admitted with another source than the endpoint's, for the chain to vouch for */
	struct mz_droplet_addr to;
	const struct mz_droplet *self;
	__u16 from_slot; /* the sender's endpoint_stats slot */
	__u16 to_slot;	 /* a local receiver's (MZ_AGENT_DO_LOCAL) */
};

/*
 * Answers an ARP request for any address of the endpoint's VPC with the gateway MAC
 * (the host-side veth's): peers and the gateway all resolve, nothing is flooded.
 * Returns the counter slot; the frame is rewritten into the reply for MZ_AGENT_ARP_REPLIED.
 */
static __always_inline __u32 mz_answer_arp(struct mz_cursor *c, struct ethhdr *eth,
					   const struct mz_local_endpoint *lep)
{
	struct mz_arp *arp = c->pos;
	__be32 target;

	if ((void *)(arp + 1) > c->end)
		return MZ_AGENT_BAD_ARP;
	if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) ||
	    arp->hlen != ETH_ALEN || arp->plen != 4)
		return MZ_AGENT_BAD_ARP;
	if (!mz_mac_equal(arp->sha, lep->mac))
		return MZ_AGENT_SPOOFED_MAC;
	if (arp->spa != lep->ip && arp->spa != 0) /* 0.0.0.0: a duplicate-address probe */
		return MZ_AGENT_SPOOFED_IP;
	target = arp->tpa;
	if (arp->op != bpf_htons(MZ_ARP_REQUEST) || arp->spa == 0 || target == lep->ip)
		return MZ_AGENT_ARP_IGNORED;
	if (!mz_network_of(lep->vni, target))
		return MZ_AGENT_ARP_IGNORED;

	arp->op = bpf_htons(MZ_ARP_REPLY);
	mz_copy_mac(arp->tha, lep->mac);
	arp->tpa = lep->ip;
	mz_copy_mac(arp->sha, lep->gw_mac);
	arp->spa = target;
	mz_copy_mac(eth->h_dest, lep->mac);
	mz_copy_mac(eth->h_source, lep->gw_mac);
	return MZ_AGENT_ARP_REPLIED;
}

/* A usable learned path to `key`, or NULL when there is none or it is too old. */
static __always_inline const struct mz_direct_path *
mz_direct_path_to(const struct mz_endpoint_key *key, const struct mz_droplet *self)
{
	const struct mz_direct_path *path;

	if (!self->direct_path_max_age_ms)
		return NULL;
	path = bpf_map_lookup_elem(&direct_path, key);
	if (!path || bpf_ktime_get_ns() - path->learned_ns > self->direct_path_max_age_ms * 1000000ULL)
		return NULL;
	return path;
}

/*
 * Admits a frame the endpoint behind veth `ifindex` sent. Returns 1 for IPv4 that may go
 * on (the egress chain, then routing) with `lep`, `eth` and `iph` set; 0 when the plan is
 * final (an ARP answer, or a drop).
 */
static __always_inline int mz_agent_admit(struct mz_cursor *cur, __u32 ifindex, struct mz_agent_plan *p,
					  const struct mz_local_endpoint **lepp, struct ethhdr **ethp,
					  struct iphdr **iphp)
{
	const struct mz_local_endpoint *lep;
	struct ethhdr *eth;
	struct iphdr *iph;
	int ret;

	p->action = MZ_AGENT_DO_DROP;
	lep = bpf_map_lookup_elem(&local_endpoints, &ifindex);
	if (!lep) {
		p->stat = MZ_AGENT_UNKNOWN_PORT;
		return 0;
	}
	p->from_slot = lep->stats_slot;
	ret = mz_parse_eth(cur, &eth);
	if (ret < 0) {
		p->stat = MZ_AGENT_BAD_ETH;
		return 0;
	}
	if (!mz_mac_equal(eth->h_source, lep->mac)) {
		p->stat = MZ_AGENT_SPOOFED_MAC;
		return 0;
	}
	if (ret == ETH_P_ARP) {
		p->stat = mz_answer_arp(cur, eth, lep);
		if (p->stat == MZ_AGENT_ARP_REPLIED)
			p->action = MZ_AGENT_DO_REPLY;
		return 0;
	}
	if (ret != ETH_P_IP) {
		p->stat = MZ_AGENT_UNSUPPORTED;
		return 0;
	}
	if (eth->h_dest[0] & 1) {
		p->stat = MZ_AGENT_BROADCAST;
		return 0;
	}
	if (mz_parse_ipv4(cur, &iph) < 0) {
		p->stat = MZ_AGENT_BAD_IPV4;
		return 0;
	}
	if (iph->saddr != lep->ip) {
		/* Without a chain nobody can vouch for another source (a passthrough VIP). */
		p->stat = MZ_AGENT_SPOOFED_IP;
		if (!mz_chain_is_active(MZ_HOOK_EGRESS))
			return 0;
		p->foreign = 1;
	}
	p->self = mz_droplet();
	if (!p->self) {
		p->stat = MZ_AGENT_NO_ROUTE;
		return 0;
	}
	*lepp = lep;
	*ethp = eth;
	*iphp = iph;
	return 1;
}

/*
 * An inter-network frame whose flow hashes to this droplet as the VPC's divider: sent to its
 * own address it would never come back from the wire. Without a transit chain it is divided
 * here — to the destination's droplet when this droplet bounces its network, else to a
 * bouncer of that network. A transit chain runs only in transit XDP: the frame then goes to
 * the flow's peer divider (mz_peer_divider, where transit XDP relays the other direction),
 * or is dropped when the VPC has no other divider (never around the chain).
 */
static __always_inline const struct mz_droplet_addr *mz_divide_here(const struct mz_vpc *vpc, const struct mz_network *net,
								     const struct mz_endpoint *ep, struct mz_agent_plan *p)
{
	const struct mz_droplet_addr *to;

	if (!mz_chain_is_active(MZ_HOOK_TRANSIT)) {
		if (ep) { /* this droplet bounces the network: it knows the way */
			p->stat = MZ_AGENT_DIRECT;
			return &ep->droplet;
		}
		to = mz_pick(net->bouncers, net->bouncer_count, MZ_MAX_BOUNCERS, p->hash);
		/* This droplet bounces the network and does not know the destination. */
		if (to && to->ip == p->self->self.ip)
			to = NULL;
		p->stat = to ? MZ_AGENT_TO_BOUNCER : MZ_AGENT_NO_ROUTE;
		return to;
	}
	to = mz_peer_divider(vpc, p->hash, p->self->self.ip);
	if (!to)
		p->stat = MZ_AGENT_CHAIN_UNAVAILABLE;
	return to;
}

/*
 * Routes an admitted frame of endpoint `lep` towards `dst`: its destination, or the
 * endpoint an egress plugin steers it to (the inner header keeps its destination).
 */
static __always_inline void mz_agent_route(struct mz_cursor *cur, struct ethhdr *eth, struct iphdr *iph,
					   const struct mz_local_endpoint *lep, __be32 dst,
					   struct mz_agent_plan *p)
{
	const struct mz_droplet_addr *to = NULL;
	const struct mz_direct_path *path;
	const struct mz_endpoint *ep;
	const struct mz_network *net;
	const struct mz_vpc *vpc;
	struct mz_endpoint_key key;
	int same_net;

	key.vni = lep->vni;
	key.ip = dst;
	p->vni = lep->vni;
	same_net = mz_same_network(iph->saddr, dst, lep->net_plen);
	/* Routing to another network is an IP hop. */
	if (!same_net && mz_ipv4_decrement_ttl(iph) < 0) {
		p->stat = MZ_AGENT_TTL_EXPIRED;
		return;
	}
	ep = bpf_map_lookup_elem(&endpoints, &key);
	if (ep && (ep->flags & MZ_ENDPOINT_LOCAL)) {
		mz_copy_mac(eth->h_dest, ep->mac);
		mz_copy_mac(eth->h_source, ep->gw_mac);
		p->ifindex = ep->ifindex;
		p->to_slot = ep->stats_slot;
		p->stat = MZ_AGENT_LOCAL;
		p->action = MZ_AGENT_DO_LOCAL;
		return;
	}
	p->hash = mz_flow_hash(iph, cur->end);
	if (same_net) {
		if (ep) { /* this droplet bounces the network: it knows the way */
			to = &ep->droplet;
			p->stat = MZ_AGENT_DIRECT;
		} else if ((path = mz_direct_path_to(&key, p->self))) {
			to = &path->droplet;
			p->stat = MZ_AGENT_DIRECT;
		} else {
			net = mz_network_of(key.vni, key.ip);
			if (!net) {
				p->stat = MZ_AGENT_NO_ROUTE;
				return;
			}
			to = mz_pick(net->bouncers, net->bouncer_count, MZ_MAX_BOUNCERS, p->hash);
			p->stat = to ? MZ_AGENT_TO_BOUNCER : MZ_AGENT_NO_BOUNCER;
		}
	} else {
		/* Inter-network traffic always crosses a divider (inter-network ACL lives there). */
		net = mz_network_of(key.vni, key.ip);
		if (!net) {
			p->stat = MZ_AGENT_NO_ROUTE;
			return;
		}
		vpc = bpf_map_lookup_elem(&vpcs, &key.vni);
		to = vpc ? mz_pick(vpc->dividers, vpc->divider_count, MZ_MAX_DIVIDERS, p->hash) : NULL;
		p->stat = to ? MZ_AGENT_TO_DIVIDER : MZ_AGENT_NO_DIVIDER;
		if (to && vpc && to->ip == p->self->self.ip)
			to = mz_divide_here(vpc, net, ep, p);
	}
	if (to) {
		p->to = *to;
		p->action = MZ_AGENT_DO_ENCAP;
	}
}

/*
 * Fills the chain context for an admitted frame when the egress chain is active (the
 * caller checked); NULL only when the context cannot be had.
 */
static __always_inline struct mz_plugin_ctx *mz_agent_chain_ctx(const struct mz_cursor *cur, __u32 ifindex,
								const struct mz_local_endpoint *lep,
								struct ethhdr *eth, struct iphdr *iph,
								const struct mz_agent_plan *p)
{
	struct mz_plugin_ctx *pc;

	pc = mz_plugin_ctx_begin(MZ_HOOK_EGRESS, p->foreign ? MZ_CTX_FOREIGN_SOURCE : 0, lep->vni, ifindex, lep->ip,
				 (void *)iph - (void *)eth, iph, cur->len, 0);
	if (pc) {
		pc->net_plen = lep->net_plen;
		mz_trace_mark(pc, iph);
	}
	return pc;
}

/* The 32 bits from frag_off on (frag_off, ttl, protocol), as on the wire: the fragment
 * offset and the protocol, and their value for UDP that is not a later fragment. */
#define MZ_UNDERLAY_UDP_MASK bpf_htonl(((__u32)MZ_IP_OFFSET << 16) | 0xff)
#define MZ_UNDERLAY_UDP_WORD bpf_htonl(IPPROTO_UDP)

/*
 * True when a frame leaving the overlay would reach the overlay's own underlay: a
 * droplet's address (any protocol: transitd, Geneve, the host itself) — unless a plugin
 * says it answers a connection that side opened (a port forward from a droplet) — or UDP
 * 6081 anywhere. `cur` stands after the IPv4 header. A UDP header that cannot be read
 * counts as the overlay port; a later fragment has none, its first fragment was judged.
 */
static __always_inline int mz_agent_to_underlay(struct mz_cursor *cur, const struct iphdr *iph, __u32 flags)
{
	const struct udphdr *udp = cur->pos;
	__u32 word;

	if (MZ_TRUST_UNDERLAY)
		return 0;
	/* This droplet is in `droplets` (and so in the index) like every other. */
	if (!(flags & MZ_CTX_ANSWER) && mz_is_droplet(iph->daddr))
		return 1;
	/* One load for "UDP, and not a later fragment": frag_off, ttl and protocol as they lie. */
	word = *(const __u32 *)((const void *)iph + offsetof(struct iphdr, frag_off));
	if ((word & MZ_UNDERLAY_UDP_MASK) != MZ_UNDERLAY_UDP_WORD)
		return 0;
	return (void *)(udp + 1) > cur->end || udp->dest == bpf_htons(MZ_GENEVE_UDP_PORT);
}

/* After the egress chain: plans the frame as the plugins left it. */
static __always_inline void mz_agent_resume(struct mz_cursor *cur, const struct mz_plugin_ctx *pc,
					    struct mz_agent_plan *p)
{
	const struct mz_local_endpoint *lep;
	struct ethhdr *eth;
	struct iphdr *iph;

	p->action = MZ_AGENT_DO_DROP;
	p->stat = MZ_AGENT_UNKNOWN_PORT;
	if (!pc || !(lep = bpf_map_lookup_elem(&local_endpoints, &pc->ifindex)))
		return;
	p->from_slot = lep->stats_slot;
	p->stat = MZ_AGENT_BAD_IPV4;
	if (mz_parse_eth(cur, &eth) != ETH_P_IP || mz_parse_ipv4(cur, &iph) < 0)
		return;
	p->stat = MZ_AGENT_SPOOFED_IP;
	if ((pc->flags & MZ_CTX_FOREIGN_SOURCE) && !(pc->flags & MZ_CTX_SOURCE_VOUCHED))
		return;
	p->stat = MZ_AGENT_NO_ROUTE;
	p->self = mz_droplet();
	if (!p->self)
		return;
	if (pc->flags & MZ_CTX_LEAVE) {
		if (mz_agent_to_underlay(cur, iph, pc->flags)) {
			p->stat = MZ_AGENT_UNDERLAY_REFUSED;
			return;
		}
		/* Leaving the overlay is a routed hop through the droplet. */
		if (mz_ipv4_decrement_ttl(iph) < 0) {
			p->stat = MZ_AGENT_TTL_EXPIRED;
			return;
		}
		p->stat = MZ_AGENT_LEFT_OVERLAY;
		p->action = MZ_AGENT_DO_LEAVE;
		return;
	}
	mz_agent_route(cur, eth, iph, lep, (pc->flags & MZ_CTX_STEER) ? pc->steer_ip : iph->daddr, p);
}

/*
 * Counts a frame of the endpoint in `p->from_slot` by its outcome: forwarded (sent), or
 * dropped under its counter slot; and a local delivery for the receiver. An ARP answer is
 * neither. `forwarded`: the program's return code sends the frame on.
 */
static __always_inline void mz_agent_count_endpoint(const struct mz_agent_plan *p, int forwarded, __u64 bytes)
{
	struct mz_endpoint_stats *s = mz_endpoint_stats_of(p->from_slot);

	if (s && forwarded && p->action != MZ_AGENT_DO_REPLY) {
		s->sent.packets++;
		s->sent.bytes += bytes;
	} else if (s && !forwarded) {
		s->dropped.packets++;
		s->dropped.bytes += bytes;
		s->drop_reason[p->stat & (MZ_ENDPOINT_DROP_REASONS - 1)]++;
	}
	if (forwarded && p->action == MZ_AGENT_DO_LOCAL)
		mz_endpoint_received(p->to_slot, bytes);
}

#endif /* MIZAR_AGENT_BPF_H */
