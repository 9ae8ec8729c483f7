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

SEC("xdp.frags")
int transit_agent(struct xdp_md *ctx)
{
	struct mz_cursor cur = mz_cursor_init(ctx);
	struct mz_agent_plan plan = {};
	int action = XDP_DROP;

	mz_agent_decide(&cur, ctx->ingress_ifindex, &plan);
	switch (plan.action) {
	case MZ_AGENT_DO_REPLY:
		action = XDP_TX;
		break;
	case MZ_AGENT_DO_LOCAL:
		action = bpf_redirect(plan.ifindex, 0);
		break;
	case MZ_AGENT_DO_ENCAP:
		if (too_big(plan.self, cur.len)) {
			plan.stat = MZ_AGENT_TOO_BIG;
		} else if (mz_encap_xdp(ctx, plan.self, &plan.to, plan.vni, plan.hash) < 0) {
			plan.stat = MZ_AGENT_ENCAP_FAILED;
		} else {
			action = bpf_redirect(plan.self->ifindex, 0);
		}
		break;
	}
	count(plan.stat, cur.len);
	return action;
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

SEC("tc")
int transit_agent_tc(struct __sk_buff *skb)
{
	struct mz_agent_plan plan = {};
	struct mz_cursor cur;
	__u32 len = skb->len;
	int action = TC_ACT_SHOT;

	/* Headers must be linear and writable for direct access; the payload may stay paged. */
	bpf_skb_pull_data(skb, len < MZ_TC_PULL_LEN ? len : MZ_TC_PULL_LEN);
	cur = mz_cursor_init_skb(skb);

	mz_agent_decide(&cur, skb->ifindex, &plan);
	switch (plan.action) {
	case MZ_AGENT_DO_REPLY:
		action = bpf_redirect(skb->ifindex, 0); /* back out towards the endpoint */
		break;
	case MZ_AGENT_DO_LOCAL:
		action = bpf_redirect(plan.ifindex, 0);
		break;
	case MZ_AGENT_DO_ENCAP:
		/* A GSO skb becomes segments sized for the endpoint's MTU, which leaves the room. */
		if (!skb->gso_size && too_big(plan.self, len)) {
			plan.stat = MZ_AGENT_TOO_BIG;
		} else if (encap_skb(skb, &plan) < 0) {
			plan.stat = MZ_AGENT_ENCAP_FAILED;
		} else {
			action = bpf_redirect(plan.self->ifindex, 0);
		}
		break;
	}
	count(plan.stat, len);
	return action;
}

/* For the endpoint's end of the veth: frames redirected into a veth need an XDP peer. */
SEC("xdp.frags")
int veth_peer(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
