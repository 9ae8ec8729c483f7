// SPDX-License-Identifier: Apache-2.0
/*
 * nat: SNAT/masquerade for endpoints reaching outside the overlay, DNAT port forwarding
 * from the droplet to endpoints (include/nat.h has the tables).
 *
 * Egress: a frame of a known connection gets its translated source; a new one to a
 * masqueraded destination gets the droplet's address and a free port (the reverse entry
 * is claimed with BPF_NOEXIST, so two CPUs never share a port). Either way the frame is
 * flagged to leave the overlay. Ingress (external frames to the droplet): replies get the
 * endpoint back as destination, forwarded ports get theirs, and the frame is claimed for
 * the endpoint's VPC so the core delivers it. Checksums are fixed by plugin.h.
 */
#include <mizar/plugin.h>

#include "nat.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, NAT_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct nat_external_key);
	__type(value, __u32);
} nat_external SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NAT_MAX_FORWARDS);
	__type(key, struct nat_forward_key);
	__type(value, struct nat_endpoint);
} nat_forwards SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NAT_TABLE_SIZE);
	__type(key, struct nat_flow_key);
	__type(value, struct nat_flow);
} nat_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NAT_TABLE_SIZE);
	__type(key, struct nat_reverse_key);
	__type(value, struct nat_endpoint);
} nat_reverse SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nat_config);
} nat_config SEC(".maps");

/* Claims a port for a new connection; returns it (network order) or 0. */
static __always_inline __be16 allocate(const struct nat_config *cfg, const struct nat_flow_key *flow,
				       const struct nat_endpoint *ep)
{
	struct nat_reverse_key rev = {
		.nat_ip = cfg->external_ip,
		.remote = flow->dst,
		.remote_port = flow->dport,
		.protocol = flow->protocol,
	};
	__u32 range = cfg->port_max - cfg->port_min + 1;
	__u32 hash = flow->src ^ (flow->sport << 16) ^ flow->dst ^ flow->dport ^ bpf_get_prandom_u32();
	int i;

	if (!range || cfg->port_max < cfg->port_min)
		return 0;
	for (i = 0; i < NAT_PORT_TRIES; i++) {
		rev.nat_port = bpf_htons(cfg->port_min + (hash + i) % range);
		/* An ICMP echo id stands for both ports: the reply carries it unchanged. */
		if (flow->protocol == IPPROTO_ICMP)
			rev.remote_port = rev.nat_port;
		if (!bpf_map_update_elem(&nat_reverse, &rev, ep, BPF_NOEXIST))
			return rev.nat_port;
	}
	return 0;
}

static __always_inline int egress(struct mz_pkt *pkt, const struct nat_config *cfg, struct nat_flow_key *flow)
{
	struct nat_external_key ext = { .prefixlen = 64, .vni = flow->vni, .dst = flow->dst };
	struct nat_endpoint ep = { .vni = flow->vni, .ip = flow->src, .port = flow->sport };
	const struct nat_flow *known;
	struct nat_flow fresh;
	__u32 *masquerade;

	known = bpf_map_lookup_elem(&nat_flows, flow);
	if (!known) {
		masquerade = bpf_map_lookup_elem(&nat_external, &ext);
		if (!masquerade || !*masquerade)
			return MZ_CONTINUE; /* overlay traffic */
		if (pkt->ctx->flags & MZ_CTX_FRAGMENT)
			return mz_drop(pkt, NAT_REASON_FRAGMENT);
		fresh.nat_ip = cfg->external_ip;
		fresh.nat_port = allocate(cfg, flow, &ep);
		fresh.pad = 0;
		if (!fresh.nat_port)
			return mz_drop(pkt, NAT_REASON_NO_PORT);
		bpf_map_update_elem(&nat_flows, flow, &fresh, BPF_ANY);
		known = &fresh;
	}
	if (mz_set_ipv4_addr(pkt, 0, known->nat_ip) || mz_set_l4_port(pkt, 0, known->nat_port))
		return mz_drop(pkt, NAT_REASON_REWRITE);
	pkt->ctx->flags |= MZ_CTX_LEAVE;
	return MZ_CONTINUE;
}

static __always_inline int ingress(struct mz_pkt *pkt, const struct nat_config *cfg, const struct nat_flow_key *in)
{
	struct nat_reverse_key rev = {
		.nat_ip = in->dst,
		.remote = in->src,
		.nat_port = in->dport,
		.remote_port = in->sport,
		.protocol = in->protocol,
	};
	struct nat_forward_key fwd = { .protocol = in->protocol, .port = in->dport };
	const struct nat_endpoint *ep;
	struct nat_flow_key reply;
	struct nat_flow back;

	ep = bpf_map_lookup_elem(&nat_reverse, &rev);
	if (!ep && in->dst == cfg->external_ip && in->protocol != IPPROTO_ICMP) {
		ep = bpf_map_lookup_elem(&nat_forwards, &fwd);
		if (ep) {
			/* The endpoint's replies leave as the forwarded port. */
			reply.vni = ep->vni;
			reply.src = ep->ip;
			reply.dst = in->src;
			reply.sport = ep->port;
			reply.dport = in->sport;
			reply.protocol = in->protocol;
			__builtin_memset(reply.pad, 0, sizeof(reply.pad));
			back.nat_ip = in->dst;
			back.nat_port = in->dport;
			back.pad = 0;
			bpf_map_update_elem(&nat_flows, &reply, &back, BPF_ANY);
			bpf_map_update_elem(&nat_reverse, &rev, ep, BPF_ANY);
		}
	}
	if (!ep)
		return MZ_CONTINUE; /* the droplet's own traffic */
	if (mz_set_ipv4_addr(pkt, 1, ep->ip) || mz_set_l4_port(pkt, 1, ep->port))
		return mz_drop(pkt, NAT_REASON_REWRITE);
	pkt->ctx->vni = ep->vni; /* claimed: the core delivers it to the endpoint */
	return MZ_CONTINUE;
}

static __always_inline int nat(struct mz_pkt *pkt)
{
	const struct nat_config *cfg = bpf_map_lookup_elem(&nat_config, &(__u32){ 0 });
	struct nat_flow_key flow = {};
	struct iphdr *iph;

	if (!cfg || !cfg->external_ip)
		return MZ_CONTINUE; /* not configured */
	if (pkt->ctx->hook == MZ_HOOK_INGRESS && !(pkt->ctx->flags & MZ_CTX_EXTERNAL))
		return MZ_CONTINUE; /* overlay traffic to an endpoint */
	iph = mz_ipv4(pkt);
	if (!iph)
		return mz_drop(pkt, NAT_REASON_TRUNCATED);
	flow.vni = pkt->ctx->vni;
	flow.src = iph->saddr;
	flow.dst = iph->daddr;
	flow.protocol = pkt->ctx->l4_proto;
	if (!(pkt->ctx->flags & MZ_CTX_FRAGMENT) && mz_ports(pkt, &flow.sport, &flow.dport) < 0) {
		if (flow.protocol == IPPROTO_TCP || flow.protocol == IPPROTO_UDP)
			return mz_drop(pkt, NAT_REASON_TRUNCATED);
		return MZ_CONTINUE; /* ICMP errors and other protocols are not translated */
	}
	if (pkt->ctx->hook == MZ_HOOK_EGRESS)
		return egress(pkt, cfg, &flow);
	return ingress(pkt, cfg, &flow);
}

MZ_PLUGIN(nat)
