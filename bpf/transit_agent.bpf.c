// SPDX-License-Identifier: Apache-2.0
/*
 * Transit agent: the program on the host-side veth of every endpoint of a droplet
 * (DESIGN §4, egress). One instance serves all endpoints: the endpoint is found by the
 * ifindex the frame arrived on. It answers ARP, drops spoofed frames, redirects to
 * endpoints on this droplet and encapsulates the rest in Geneve with RTS: to the
 * destination's droplet (direct path), to a bouncer of the network, or to a divider.
 *
 * Two entry points share the decision (agent.bpf.h): `transit_agent` in XDP and
 * `transit_agent_tc` at TC ingress. The TC one keeps the endpoint's GSO/TSO and
 * checksum offload across the encapsulation (bpf_skb_adjust_room marks the skb as a
 * UDP tunnel), which is what TCP throughput needs; see docs/transit-agent.md.
 *
 * Admitted IPv4 goes through the egress plugin chain before routing (DESIGN §5): the
 * roots hold the live chain's first position, one per flavour; while a root is empty the
 * tail call falls through and the frame is routed inline.
 */
#include <linux/pkt_cls.h>

#include "mizar/agent.bpf.h"

/* Header bytes the TC entry makes linear before parsing: Ethernet, IPv4 with options, ports. */
#define MZ_TC_PULL_LEN 128

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mz_agent_stats);
} agent_stats SEC(".maps");

/* Where the egress chain starts, for each entry's program type. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} egress_root SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} egress_root_tc SEC(".maps");

_Static_assert(MZ_AGENT_STAT_MAX <= MZ_ENDPOINT_DROP_REASONS, "an endpoint's drops are kept by agent slot");

static __always_inline void count(__u32 stat, __u64 bytes)
{
	struct mz_agent_stats *stats = bpf_map_lookup_elem(&agent_stats, &(__u32){ 0 });

	if (stats && stat < MZ_AGENT_STAT_MAX) { /* bound for the verifier */
		stats->slot[stat].packets++;
		stats->slot[stat].bytes += bytes;
	}
}

/* True when the encapsulated frame would not fit the substrate MTU. */
static __always_inline int too_big(const struct mz_droplet *self, __u32 frame_len)
{
	return self->mtu && frame_len + MZ_ENCAP_OVERHEAD > self->mtu + sizeof(struct ethhdr);
}

/*
 * XDP: sends a frame leaving the overlay out of the interface the droplet's FIB routes
 * it to, with the next hop's MAC. -1 when there is no route, no neighbour entry yet (XDP
 * cannot ask for one), or forwarding is off on the substrate interface (the FIB helper
 * insists on it). The TC agent has none of these limits (bpf_redirect_neigh).
 */
static __always_inline int leave_xdp(struct xdp_md *ctx, const struct mz_droplet *self)
{
	struct ethhdr *eth = (void *)(long)ctx->data;
	struct iphdr *iph = (void *)(eth + 1);
	struct bpf_fib_lookup fib = {};

	if ((void *)(iph + 1) > (void *)(long)ctx->data_end)
		return -1;
	fib.family = 2; /* AF_INET */
	fib.tos = iph->tos;
	fib.l4_protocol = iph->protocol;
	fib.tot_len = bpf_ntohs(iph->tot_len);
	fib.ipv4_src = iph->saddr;
	fib.ipv4_dst = iph->daddr;
	fib.ifindex = self->ifindex;
	/* As the droplet's own output: the endpoint's veth need not forward. */
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), BPF_FIB_LOOKUP_OUTPUT) != BPF_FIB_LKUP_RET_SUCCESS)
		return -1;
	mz_copy_mac(eth->h_dest, fib.dmac);
	mz_copy_mac(eth->h_source, fib.smac);
	return bpf_redirect(fib.ifindex, 0);
}

/* Carries the plan out in XDP and counts it. */
static __always_inline int act_xdp(struct xdp_md *ctx, struct mz_agent_plan *plan, __u32 len, const struct mz_plugin_ctx *pc)
{
	int action = XDP_DROP;

	switch (plan->action) {
	case MZ_AGENT_DO_REPLY:
		action = XDP_TX;
		break;
	case MZ_AGENT_DO_LOCAL:
		action = bpf_redirect(plan->ifindex, 0);
		break;
	case MZ_AGENT_DO_LEAVE:
		action = leave_xdp(ctx, plan->self);
		if (action < 0) {
			action = XDP_DROP;
			plan->stat = MZ_AGENT_NO_ROUTE;
		}
		break;
	case MZ_AGENT_DO_ENCAP:
		if (too_big(plan->self, len)) {
			plan->stat = MZ_AGENT_TOO_BIG;
		} else if (mz_encap_xdp(ctx, plan->self, &plan->to, plan->vni, plan->hash) < 0) {
			plan->stat = MZ_AGENT_ENCAP_FAILED;
		} else {
			action = bpf_redirect(plan->self->ifindex, 0);
		}
		break;
	}
	count(plan->stat, len);
	mz_agent_count_endpoint(plan, action != XDP_DROP, len);
	mz_trace_xdp_outcome(ctx, pc, MZ_TRACE_AGENT, plan->stat, action, ctx->ingress_ifindex, plan->vni, len,
			     plan->action == MZ_AGENT_DO_ENCAP && action == XDP_REDIRECT);
	return action;
}

SEC("xdp.frags")
int transit_agent(struct xdp_md *ctx)
{
	struct mz_cursor cur = mz_cursor_init(ctx);
	const struct mz_local_endpoint *lep;
	struct mz_agent_plan plan = {};
	struct ethhdr *eth;
	struct iphdr *iph;

	if (mz_agent_admit(&cur, ctx->ingress_ifindex, &plan, &lep, &eth, &iph)) {
		if (mz_chain_is_active(MZ_HOOK_EGRESS)) {
			if (mz_agent_chain_ctx(&cur, ctx->ingress_ifindex, lep, eth, iph, &plan))
				bpf_tail_call(ctx, &egress_root, 0);
			/* The chain could not be entered: never around it. */
			plan.stat = MZ_AGENT_CHAIN_UNAVAILABLE;
		} else if (!plan.foreign) {
			/* No chain: route inline (a foreign source stays dropped as spoofed). */
			mz_agent_route(&cur, eth, iph, lep, iph->daddr, &plan);
		}
	}
	return act_xdp(ctx, &plan, cur.len, NULL);
}

/* The last position of every XDP egress chain. */
SEC("xdp.frags")
int egress_continue(struct xdp_md *ctx)
{
	struct mz_cursor cur = mz_cursor_init(ctx);
	struct mz_plugin_ctx *pc = mz_plugin_ctx_get();
	struct mz_agent_plan plan = {};

	mz_agent_resume(&cur, pc, &plan);
	count(MZ_AGENT_EGRESS_CHAIN, 0);
	return act_xdp(ctx, &plan, cur.len, pc);
}

/*
 * TC: inserts the outer headers after the endpoint's Ethernet header, which becomes the
 * outer one; the inner Ethernet header is written after Geneve. The skb is marked as a
 * UDP tunnel carrying Ethernet, so a GSO skb is segmented (and checksummed) after it.
 */
static __always_inline int encap_skb(struct __sk_buff *skb, struct mz_agent_plan *p)
{
	const __u64 flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
			    BPF_F_ADJ_ROOM_ENCAP_L2_ETH | BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN);
	struct encap {
		struct mz_encap_hdr outer;
		struct ethhdr inner;
	} __attribute__((packed)) * h;
	struct ethhdr *eth = (void *)(long)skb->data, inner;
	__u32 frame_len = skb->len;

	if ((void *)(eth + 1) > (void *)(long)skb->data_end)
		return -1;
	inner = *eth;
	if (bpf_skb_adjust_room(skb, sizeof(*h) - ETH_HLEN, BPF_ADJ_ROOM_MAC, flags))
		return -1;
	/* The room is made in the linear head: write the headers in place. */
	h = (void *)(long)skb->data;
	if ((void *)(h + 1) > (void *)(long)skb->data_end)
		return -1;
	h->inner = inner;
	mz_fill_encap(&h->outer, p->self, &p->to, p->vni, p->hash, frame_len);
	return 0;
}

/* Carries the plan out at TC and counts it. */
static __always_inline int act_tc(struct __sk_buff *skb, struct mz_agent_plan *plan, __u32 len, const struct mz_plugin_ctx *pc)
{
	int action = TC_ACT_SHOT;

	switch (plan->action) {
	case MZ_AGENT_DO_REPLY:
		action = bpf_redirect(skb->ifindex, 0); /* back out towards the endpoint */
		break;
	case MZ_AGENT_DO_LOCAL:
		action = bpf_redirect(plan->ifindex, 0);
		break;
	case MZ_AGENT_DO_LEAVE:
		/* The kernel picks the route's next hop and resolves (or queues for) its MAC. */
		action = bpf_redirect_neigh(plan->self->ifindex, NULL, 0, 0);
		break;
	case MZ_AGENT_DO_ENCAP:
		/* A GSO skb becomes segments sized for the endpoint's MTU, which leaves the room. */
		if (!skb->gso_size && too_big(plan->self, len)) {
			plan->stat = MZ_AGENT_TOO_BIG;
		} else if (encap_skb(skb, plan) < 0) {
			plan->stat = MZ_AGENT_ENCAP_FAILED;
		} else {
			action = bpf_redirect(plan->self->ifindex, 0);
		}
		break;
	}
	count(plan->stat, len);
	mz_agent_count_endpoint(plan, action != TC_ACT_SHOT, len);
	mz_trace_skb_outcome(skb, pc, MZ_TRACE_AGENT, plan->stat, action, skb->ifindex, plan->vni, len,
			     plan->action == MZ_AGENT_DO_ENCAP && action == TC_ACT_REDIRECT);
	return action;
}

SEC("tc")
int transit_agent_tc(struct __sk_buff *skb)
{
	const struct mz_local_endpoint *lep;
	struct mz_agent_plan plan = {};
	struct mz_cursor cur;
	struct ethhdr *eth;
	struct iphdr *iph;
	__u32 len = skb->len;

	/* Headers must be linear and writable for direct access; the payload may stay paged. */
	bpf_skb_pull_data(skb, len < MZ_TC_PULL_LEN ? len : MZ_TC_PULL_LEN);
	cur = mz_cursor_init_skb(skb);

	if (mz_agent_admit(&cur, skb->ifindex, &plan, &lep, &eth, &iph)) {
		if (mz_chain_is_active(MZ_HOOK_EGRESS)) {
			if (mz_agent_chain_ctx(&cur, skb->ifindex, lep, eth, iph, &plan))
				bpf_tail_call(skb, &egress_root_tc, 0);
			plan.stat = MZ_AGENT_CHAIN_UNAVAILABLE;
		} else if (!plan.foreign) {
			mz_agent_route(&cur, eth, iph, lep, iph->daddr, &plan);
		}
	}
	return act_tc(skb, &plan, len, NULL);
}

/* The last position of every TC egress chain. */
SEC("tc")
int egress_continue_tc(struct __sk_buff *skb)
{
	struct mz_cursor cur = mz_cursor_init_skb(skb);
	struct mz_plugin_ctx *pc = mz_plugin_ctx_get();
	struct mz_agent_plan plan = {};

	mz_agent_resume(&cur, pc, &plan);
	count(MZ_AGENT_EGRESS_CHAIN, 0);
	return act_tc(skb, &plan, skb->len, pc);
}

/* For the endpoint's end of the veth: frames redirected into a veth need an XDP peer. */
SEC("xdp.frags")
int veth_peer(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
