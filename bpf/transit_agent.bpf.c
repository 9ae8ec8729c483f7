// SPDX-License-Identifier: Apache-2.0
/*
 * Transit agent: the program on the host-side veth of every endpoint of a droplet
 * (DESIGN §4, egress). One instance serves all endpoints: the endpoint is found by
 * the ingress ifindex. It answers ARP, drops spoofed frames, redirects to endpoints
 * on this droplet and encapsulates the rest in Geneve with RTS: to the destination's
 * droplet (direct path), to a bouncer of the network, or to a divider of the VPC.
 */
#include "mizar/overlay.bpf.h"
#include "mizar/dataplane_maps.bpf.h"
#include "mizar/transit_agent.h"

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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mz_agent_stats);
} agent_stats SEC(".maps");

/*
 * Answers an ARP request for any address of the endpoint's VPC with the gateway MAC
 * (the host-side veth's): peers and the gateway all resolve, nothing is flooded.
 * Returns the counter slot; the frame is rewritten into the reply for MZ_AGENT_ARP_REPLIED.
 */
static __always_inline __u32 answer_arp(struct mz_cursor *c, struct ethhdr *eth,
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
direct_path_to(const struct mz_endpoint_key *key, const struct mz_droplet *self)
{
	const struct mz_direct_path *path;

	if (!self->direct_path_max_age_ms)
		return NULL;
	path = bpf_map_lookup_elem(&direct_path, key);
	if (!path || bpf_ktime_get_ns() - path->learned_ns > self->direct_path_max_age_ms * 1000000ULL)
		return NULL;
	return path;
}

SEC("xdp.frags")
int transit_agent(struct xdp_md *ctx)
{
	struct mz_cursor cur = mz_cursor_init(ctx);
	const struct mz_local_endpoint *lep;
	const struct mz_droplet_addr *to_ptr = NULL;
	struct mz_droplet_addr to;
	const struct mz_endpoint *ep;
	const struct mz_droplet *self;
	const struct mz_network *net;
	const struct mz_vpc *vpc;
	const struct mz_direct_path *path;
	struct mz_agent_stats *stats;
	struct mz_endpoint_key key;
	struct ethhdr *eth;
	struct iphdr *iph;
	__u32 stat, hash, ifindex = ctx->ingress_ifindex, len = cur.len;
	int ret, same_net, action = XDP_DROP;

	lep = bpf_map_lookup_elem(&local_endpoints, &ifindex);
	if (!lep) {
		stat = MZ_AGENT_UNKNOWN_PORT;
		goto out;
	}
	ret = mz_parse_eth(&cur, &eth);
	if (ret < 0) {
		stat = MZ_AGENT_BAD_ETH;
		goto out;
	}
	if (!mz_mac_equal(eth->h_source, lep->mac)) {
		stat = MZ_AGENT_SPOOFED_MAC;
		goto out;
	}
	if (ret == ETH_P_ARP) {
		stat = answer_arp(&cur, eth, lep);
		if (stat == MZ_AGENT_ARP_REPLIED)
			action = XDP_TX;
		goto out;
	}
	if (ret != ETH_P_IP) {
		stat = MZ_AGENT_UNSUPPORTED;
		goto out;
	}
	if (eth->h_dest[0] & 1) {
		stat = MZ_AGENT_BROADCAST;
		goto out;
	}
	if (mz_parse_ipv4(&cur, &iph) < 0) {
		stat = MZ_AGENT_BAD_IPV4;
		goto out;
	}
	if (iph->saddr != lep->ip) {
		stat = MZ_AGENT_SPOOFED_IP;
		goto out;
	}
	self = mz_droplet();
	if (!self) {
		stat = MZ_AGENT_NO_ROUTE;
		goto out;
	}

	key.vni = lep->vni;
	key.ip = iph->daddr;
	same_net = mz_same_network(iph->saddr, iph->daddr, lep->net_plen);
	/* Routing to another network is an IP hop. */
	if (!same_net && mz_ipv4_decrement_ttl(iph) < 0) {
		stat = MZ_AGENT_TTL_EXPIRED;
		goto out;
	}
	ep = bpf_map_lookup_elem(&endpoints, &key);
	if (ep && (ep->flags & MZ_ENDPOINT_LOCAL)) {
		mz_copy_mac(eth->h_dest, ep->mac);
		mz_copy_mac(eth->h_source, ep->gw_mac);
		action = bpf_redirect(ep->ifindex, 0);
		stat = MZ_AGENT_LOCAL;
		goto out;
	}
	hash = mz_flow_hash(iph, cur.end);
	if (same_net) {
		if (ep) { /* this droplet bounces the network: it knows the way */
			to_ptr = &ep->droplet;
			stat = MZ_AGENT_DIRECT;
		} else if ((path = direct_path_to(&key, self))) {
			to_ptr = &path->droplet;
			stat = MZ_AGENT_DIRECT;
		} else {
			net = mz_network_of(key.vni, key.ip);
			if (!net) {
				stat = MZ_AGENT_NO_ROUTE;
				goto out;
			}
			to_ptr = mz_pick(net->bouncers, net->bouncer_count, MZ_MAX_BOUNCERS, hash);
			stat = to_ptr ? MZ_AGENT_TO_BOUNCER : MZ_AGENT_NO_BOUNCER;
		}
	} else {
		/* Inter-network traffic always crosses a divider (inter-network ACL lives there). */
		if (!mz_network_of(key.vni, key.ip)) {
			stat = MZ_AGENT_NO_ROUTE;
			goto out;
		}
		vpc = bpf_map_lookup_elem(&vpcs, &key.vni);
		to_ptr = vpc ? mz_pick(vpc->dividers, vpc->divider_count, MZ_MAX_DIVIDERS, hash) : NULL;
		stat = to_ptr ? MZ_AGENT_TO_DIVIDER : MZ_AGENT_NO_DIVIDER;
	}
	if (!to_ptr)
		goto out;
	if (self->mtu && len + MZ_ENCAP_OVERHEAD > self->mtu + sizeof(struct ethhdr)) {
		stat = MZ_AGENT_TOO_BIG;
		goto out;
	}
	to = *to_ptr;
	if (mz_encap(ctx, self, &to, key.vni, hash) < 0) {
		stat = MZ_AGENT_ENCAP_FAILED;
		goto out;
	}
	action = bpf_redirect(self->ifindex, 0);
out:
	stats = bpf_map_lookup_elem(&agent_stats, &(__u32){ 0 });
	if (stats && stat < MZ_AGENT_STAT_MAX) { /* bound for the verifier */
		stats->slot[stat].packets++;
		stats->slot[stat].bytes += len;
	}
	return action;
}

/* For the endpoint's end of the veth: frames redirected into a veth need an XDP peer. */
SEC("xdp.frags")
int veth_peer(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
