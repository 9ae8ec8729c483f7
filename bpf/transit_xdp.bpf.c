// SPDX-License-Identifier: Apache-2.0
/*
 * Transit XDP: the program on a droplet's substrate interface (DESIGN §4, ingress).
 * Traffic that is not Geneve to this droplet passes to the stack. Geneve is delivered
 * to a local endpoint (decapsulated, redirected to its veth, RTS learned into the
 * direct-path cache), bounced to the endpoint's droplet (bouncer role), sent to a
 * bouncer of the destination network (divider role, or a stale direct path), or
 * dropped and counted.
 *
 * The ingress plugin chain (DESIGN §5) sees the decapsulated frame before delivery, and
 * plain IPv4 to the droplet's own address (flagged external: a NAT plugin may claim it
 * for an endpoint). `ingress_root` holds the live chain's first position; while it is
 * empty the tail call falls through and the frame is handled inline, at no cost.
 */
#include "mizar/overlay.bpf.h"
#include "mizar/dataplane_maps.bpf.h"
#include "mizar/plugin_hooks.bpf.h"
#include "mizar/transit_xdp.h"

/*
 * A learned direct path is rewritten at most this often while it stays the same (or every
 * half max age when that is shorter, so that traffic keeps a path from ageing out).
 */
#define MZ_DIRECT_PATH_REFRESH_NS 1000000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mz_transit_stats);
} transit_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} ingress_root SEC(".maps"), transit_root SEC(".maps");

static __always_inline void count(struct mz_transit_stats *s, __u32 slot, __u64 bytes)
{
	if (slot < MZ_TRANSIT_STAT_MAX) { /* bound for the verifier */
		s->slot[slot].packets++;
		s->slot[slot].bytes += bytes;
	}
}

static __always_inline struct mz_transit_stats *stats_get(void)
{
	return bpf_map_lookup_elem(&transit_stats, &(__u32){ 0 });
}

/* Counts what a Geneve packet showed beside its outcome (`learned`: what learn() returned). */
static __always_inline void count_events(struct mz_transit_stats *s, const struct mz_geneve_info *gnv,
					 int learned)
{
	if (gnv->has_rts)
		count(s, MZ_TRANSIT_OPT_RTS, 0);
	if (gnv->unknown_opts)
		count(s, MZ_TRANSIT_OPT_UNKNOWN, 0);
	if (learned > 0)
		count(s, MZ_TRANSIT_LEARNED, 0);
	if (learned > 1)
		count(s, MZ_TRANSIT_LEARNED_NEW, 0);
	else if (learned < 0)
		count(s, MZ_TRANSIT_RTS_UNKNOWN_DROPLET, 0);
}

/*
 * Hands the frame, whose IPv4 header is `iph`, to the chain in `root`; callers have checked
 * that the hook has one. Returns only when the chain could not be entered (its owner gone,
 * the root emptied, or headers past the one-byte offsets plugins address them by): callers
 * fail closed.
 */
static __always_inline void enter_chain(struct xdp_md *ctx, void *root, __u32 hook, __u32 flags, __u32 vni,
					__u32 ifindex, __be32 ip, struct iphdr *iph, __u16 core_stat)
{
	__u32 l3_off = (void *)iph - (void *)(long)ctx->data;
	struct mz_plugin_ctx *pc;

	if (l3_off + iph->ihl * 4 > 0xff)
		return;
	pc = mz_plugin_ctx_begin(hook, flags, vni, ifindex, ip, l3_off, iph, bpf_xdp_get_buff_len(ctx), core_stat);
	if (!pc)
		return;
	mz_trace_mark(pc, iph);
	bpf_tail_call(ctx, root, 0);
}

/* The ingress chain for a frame whose IPv4 header follows its Ethernet header. */
static __always_inline void run_ingress_chain(struct xdp_md *ctx, __u32 flags, __u32 vni, __u32 ifindex,
					      __be32 ip, __u16 core_stat)
{
	struct iphdr *iph = (void *)(long)ctx->data + sizeof(struct ethhdr);

	if ((void *)(iph + 1) <= (void *)(long)ctx->data_end)
		enter_chain(ctx, &ingress_root, MZ_HOOK_INGRESS, flags, vni, ifindex, ip, iph, core_stat);
}

/* Counts a Geneve frame's events before a chain takes it (its continuation counts the outcome). */
static __always_inline void count_events_now(const struct mz_geneve_info *gnv, int learned)
{
	struct mz_transit_stats *stats = stats_get();

	if (stats)
		count_events(stats, gnv, learned);
}

/* A decapsulated overlay frame to the ingress chain. Returns only when it could not be entered. */
static __always_inline void run_overlay_chain(struct xdp_md *ctx, const struct mz_geneve_info *gnv, int learned,
					      __u32 flags, __u32 ifindex, __be32 ip, __u16 core_stat)
{
	count_events_now(gnv, learned);
	run_ingress_chain(ctx, flags, gnv->vni, ifindex, ip, core_stat);
}

/*
 * Plain IPv4 to the droplet itself goes through the ingress chain when there is one. Should
 * the chain be unavailable the frame goes on to the host stack, where it would go without
 * plugins: only a plugin (a NAT port forward) can take it into the overlay.
 */
static __always_inline void run_external_chain(struct xdp_md *ctx, const struct iphdr *iph, __u32 stat)
{
	const struct mz_droplet *self;

	if (!mz_chain_is_active(MZ_HOOK_INGRESS))
		return;
	self = mz_droplet();
	if (self && self->self.ip && iph->daddr == self->self.ip)
		run_ingress_chain(ctx, MZ_CTX_EXTERNAL, 0, 0, 0, stat);
}

/* Maps a Geneve parse error to its counter slot. */
static __always_inline __u32 geneve_err_stat(int err)
{
	switch (err) {
	case MZ_ERR_CRITICAL:
		return MZ_TRANSIT_GENEVE_CRITICAL;
	case MZ_ERR_BAD_OPTION:
		return MZ_TRANSIT_BAD_GENEVE_OPT;
	default:
		return MZ_TRANSIT_BAD_GENEVE;
	}
}

/*
 * Records where the inner source lives; returns 2 when the cache was written for an endpoint
 * it did not hold (an LRU eviction may make room), 1 when an entry was rewritten, 0 when it
 * was fresh already, -1 when the RTS names no known droplet (or not with its MAC): only the
 * droplet table, not a packet, decides where endpoints may be reached.
 */
static __always_inline int learn(__u32 vni, __be32 src, const struct mz_geneve_rts *rts,
				 const struct mz_droplet *self)
{
	struct mz_endpoint_key key = { .vni = vni, .ip = src };
	const struct mz_droplet_addr *known;
	struct mz_direct_path *old, path = {};
	__u64 now = bpf_ktime_get_ns();
	__u64 refresh = self->direct_path_max_age_ms * 500000ULL; /* half the max age, in ns */

	if (refresh > MZ_DIRECT_PATH_REFRESH_NS)
		refresh = MZ_DIRECT_PATH_REFRESH_NS;
	old = bpf_map_lookup_elem(&direct_path, &key);
	if (old && old->droplet.ip == rts->droplet_ip &&
	    mz_mac_equal(old->droplet.mac, rts->droplet_mac) && now - old->learned_ns < refresh)
		return 0;
	if (!MZ_TRUST_UNDERLAY) {
		known = mz_known_droplet(rts->droplet_ip);
		if (!known || !mz_mac_equal(known->mac, rts->droplet_mac))
			return -1;
	}
	path.droplet.ip = rts->droplet_ip;
	mz_copy_mac(path.droplet.mac, rts->droplet_mac);
	path.learned_ns = now;
	/* New only if this CPU's insert made it: two CPUs learning one endpoint count it once. */
	if (!old && !bpf_map_update_elem(&direct_path, &key, &path, BPF_NOEXIST))
		return 2;
	bpf_map_update_elem(&direct_path, &key, &path, BPF_ANY);
	return 1;
}

/* Redirects the (decapsulated) frame to the endpoint's veth. */
static __always_inline int deliver(struct xdp_md *ctx, const struct mz_endpoint *ep)
{
	struct ethhdr *eth = (void *)(long)ctx->data;

	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return XDP_DROP;
	/* The endpoint sees every peer behind its gateway MAC (what the agent's ARP answers). */
	mz_copy_mac(eth->h_dest, ep->mac);
	mz_copy_mac(eth->h_source, ep->gw_mac);
	mz_endpoint_received(ep->stats_slot, bpf_xdp_get_buff_len(ctx));
	return bpf_redirect(ep->ifindex, 0);
}

SEC("xdp.frags")
int transit_xdp(struct xdp_md *ctx)
{
	struct mz_cursor cur = mz_cursor_init(ctx);
	const struct mz_droplet_addr *to = NULL;
	struct mz_geneve_info gnv = {};
	const struct mz_endpoint *ep;
	const struct mz_droplet *self;
	const struct mz_network *net;
	const struct mz_vpc *vpc;
	struct mz_transit_stats *stats;
	struct ethhdr *eth, *inner;
	struct iphdr *iph, *inner_ip;
	struct udphdr *udp;
	struct mz_endpoint_key key;
	struct mz_geneve_rts *rts;
	__u32 stat, len = cur.len;
	int ret, action = XDP_PASS, learned = 0, geneve_ok = 0;
	int events_counted = 0, straight;

	ret = mz_parse_eth(&cur, &eth);
	if (ret < 0) {
		stat = MZ_TRANSIT_BAD_ETH;
		goto out;
	}
	if (ret != ETH_P_IP) {
		stat = MZ_TRANSIT_NON_IPV4;
		goto out;
	}
	ret = mz_parse_ipv4(&cur, &iph);
	if (ret < 0) {
		stat = MZ_TRANSIT_BAD_IPV4;
		goto out;
	}
	if (ret != IPPROTO_UDP) {
		stat = MZ_TRANSIT_NON_UDP;
		goto external;
	}
	if (mz_ipv4_is_later_fragment(iph)) {
		stat = MZ_TRANSIT_IPV4_FRAGMENT;
		goto external;
	}
	ret = mz_parse_udp(&cur, &udp);
	if (ret < 0) {
		stat = MZ_TRANSIT_BAD_UDP;
		goto out;
	}
	if (ret != MZ_GENEVE_UDP_PORT) {
		stat = MZ_TRANSIT_NON_GENEVE;
		goto external;
	}
	self = mz_droplet();
	if (!self || !self->self.ip || iph->daddr != self->self.ip) {
		stat = MZ_TRANSIT_NOT_FOR_DROPLET;
		goto out;
	}

	/* From here on the packet is the overlay's: what is not forwarded is dropped. */
	action = XDP_DROP;
	/* Only droplets of the cluster speak Geneve to it (DESIGN §6: fail closed). */
	if (!MZ_TRUST_UNDERLAY && !mz_is_droplet(iph->saddr)) {
		stat = MZ_TRANSIT_GENEVE_FROM_UNKNOWN_SOURCE;
		goto out;
	}
	ret = mz_parse_geneve(&cur, &gnv);
	if (ret < 0) {
		stat = geneve_err_stat(ret);
		goto out;
	}
	geneve_ok = 1;
	if (ret != MZ_GENEVE_PROTO_ETH) {
		stat = MZ_TRANSIT_GENEVE_PROTO;
		goto out;
	}
	ret = mz_parse_eth(&cur, &inner);
	if (ret < 0) {
		stat = MZ_TRANSIT_BAD_INNER;
		goto out;
	}
	if (ret != ETH_P_IP) {
		stat = MZ_TRANSIT_INNER_NON_IPV4;
		goto out;
	}
	if (mz_parse_ipv4(&cur, &inner_ip) < 0) {
		stat = MZ_TRANSIT_BAD_INNER;
		goto out;
	}
	if (inner_ip->ttl == 0) {
		stat = MZ_TRANSIT_INNER_TTL;
		goto out;
	}

	key.vni = gnv.vni;
	key.ip = inner_ip->daddr;
	ep = bpf_map_lookup_elem(&endpoints, &key);
	/*
	 * An inter-network frame sent here straight from its source's droplet (the RTS names the
	 * outer source, or there is none) was sent to a divider: with a transit chain it meets
	 * the chain here even when this droplet hosts or bounces its destination, or no longer
	 * divides the VPC in its own view. A frame another divider judged comes relayed (its RTS
	 * names another droplet) and is not judged twice. When this droplet hosts the
	 * destination and the flow hashed to it, its replies go to the flow's peer divider
	 * (agent.bpf.h): the frame is relayed there, RTS naming this droplet, to be judged with them.
	 */
	straight = !gnv.has_rts || gnv.rts.droplet_ip == iph->saddr;
	if (ep && straight && !mz_same_network(inner_ip->saddr, inner_ip->daddr, ep->net_plen) && mz_chain_is_active(MZ_HOOK_TRANSIT)) {
		vpc = (ep->flags & MZ_ENDPOINT_LOCAL) ? bpf_map_lookup_elem(&vpcs, &gnv.vni) : NULL;
		/* Only a frame with an RTS is relayed: it names this droplet on the way, and the peer
		 * then judges it as straight (one without would come back here, straight again). */
		to = vpc && gnv.has_rts ? mz_peer_divider(vpc, mz_flow_hash(inner_ip, cur.end), self->self.ip) : NULL;
		if (to) {
			stat = MZ_TRANSIT_DIVIDED;
			goto relay;
		}
		goto judge;
	}
	if (ep && (ep->flags & MZ_ENDPOINT_LOCAL)) {
		/* Only intra-network paths are learned: inter-network flows keep the divider. */
		if (gnv.has_rts && self->direct_path_max_age_ms && gnv.rts.droplet_ip != self->self.ip &&
		    mz_same_network(inner_ip->saddr, inner_ip->daddr, ep->net_plen))
			learned = learn(gnv.vni, inner_ip->saddr, &gnv.rts, self);
		stat = MZ_TRANSIT_BAD_INNER;
		if (bpf_xdp_adjust_head(ctx, (void *)inner - (void *)eth))
			goto out;
		if (mz_chain_is_active(MZ_HOOK_INGRESS)) {
			events_counted = 1;
			run_overlay_chain(ctx, &gnv, learned, 0, ep->ifindex, key.ip, MZ_TRANSIT_DELIVERED);
			stat = MZ_TRANSIT_CHAIN_UNAVAILABLE; /* never around the chain */
			goto out;
		}
		action = deliver(ctx, ep);
		if (action == XDP_REDIRECT)
			stat = MZ_TRANSIT_DELIVERED;
		goto out;
	}
	if (ep) { /* bouncer: the endpoint table knows its droplet */
		to = &ep->droplet;
		stat = MZ_TRANSIT_BOUNCED;
		goto forward;
	}
	net = mz_network_of(gnv.vni, inner_ip->daddr);
	if (!net) {
		stat = MZ_TRANSIT_NO_NETWORK;
		/* Not an endpoint's address (a passthrough VIP?): a plugin may steer it to one here. */
		if (mz_chain_is_active(MZ_HOOK_INGRESS)) {
			if (bpf_xdp_adjust_head(ctx, (void *)inner - (void *)eth)) {
				stat = MZ_TRANSIT_BAD_INNER;
				goto out;
			}
			events_counted = 1;
			run_overlay_chain(ctx, &gnv, learned, MZ_CTX_UNKNOWN_DESTINATION, 0, 0, MZ_TRANSIT_NO_NETWORK);
			stat = MZ_TRANSIT_CHAIN_UNAVAILABLE;
		}
		goto out;
	}
	if (net->flags & MZ_NETWORK_BOUNCER_HERE) {
		stat = MZ_TRANSIT_UNKNOWN_ENDPOINT;
		goto out;
	}
	vpc = bpf_map_lookup_elem(&vpcs, &gnv.vni);
	if (vpc && (vpc->flags & MZ_VPC_DIVIDER_HERE)) {
		stat = MZ_TRANSIT_DIVIDED;
		/* Inter-network policy lives here (DESIGN §4): the transit chain sees the inner frame. */
		if (mz_chain_is_active(MZ_HOOK_TRANSIT))
			goto judge;
	} else if (gnv.has_rts && gnv.rts.droplet_ip == iph->saddr) {
		/* Sent straight here by its source droplet: a stale direct path, not a loop; or,
		 * between networks, sent to a divider this droplet no longer is (judged all the same). */
		stat = MZ_TRANSIT_FALLBACK;
		if (mz_chain_is_active(MZ_HOOK_TRANSIT) && mz_network_of(gnv.vni, inner_ip->saddr) != net)
			goto judge;
	} else {
		stat = MZ_TRANSIT_STALE;
		goto out;
	}
	/* The outer source port is already a hash of the inner flow. */
	to = mz_pick(net->bouncers, net->bouncer_count, MZ_MAX_BOUNCERS, bpf_ntohs(udp->source));
	if (!to) {
		stat = MZ_TRANSIT_NO_BOUNCER;
		goto out;
	}
forward:
	if (mz_readdress(eth, iph, self, to) < 0) {
		stat = MZ_TRANSIT_OUTER_TTL;
		goto out;
	}
	action = XDP_TX;
	goto out;
judge:
	events_counted = 1;
	count_events_now(&gnv, learned);
	enter_chain(ctx, &transit_root, MZ_HOOK_TRANSIT, 0, gnv.vni, 0, inner_ip->daddr, inner_ip, MZ_TRANSIT_DIVIDED);
	stat = MZ_TRANSIT_CHAIN_UNAVAILABLE; /* never around the chain */
	goto out;
relay:
	rts = (void *)(long)ctx->data + (gnv.rts_off & 0x3ff);
	if ((void *)(rts + 1) > (void *)(long)ctx->data_end) {
		stat = MZ_TRANSIT_BAD_GENEVE;
		goto out;
	}
	rts->droplet_ip = self->self.ip;
	mz_copy_mac(rts->droplet_mac, self->self.mac);
	udp->check = 0; /* the payload changed; 0 is "no checksum", as the agents send */
	goto forward;
external:
	run_external_chain(ctx, iph, stat);
out:
	stats = stats_get();
	if (stats) {
		count(stats, stat, len);
		/* Options count for packets whose Geneve header parsed whole. */
		if (geneve_ok && !events_counted)
			count_events(stats, &gnv, learned);
	}
	mz_trace_xdp_outcome(ctx, NULL, MZ_TRACE_TRANSIT, stat, action, 0, geneve_ok ? gnv.vni : 0, len, MZ_TRACE_FRAME_TRANSIT);
	return action;
}

/*
 * The last position of every ingress chain: delivers to the endpoint the frame is now
 * addressed to (a plugin may have rewritten it) or steered to, or passes an external
 * frame no plugin claimed to the stack.
 */
SEC("xdp.frags")
int ingress_continue(struct xdp_md *ctx)
{
	struct mz_cursor cur = mz_cursor_init(ctx);
	struct mz_plugin_ctx *pc = mz_plugin_ctx_get();
	struct mz_transit_stats *stats;
	const struct mz_endpoint *ep;
	struct mz_endpoint_key key;
	__u32 stat = MZ_TRANSIT_BAD_INNER;
	struct ethhdr *eth;
	struct iphdr *iph;
	int action = XDP_DROP;

	if (!pc)
		goto out;
	if ((pc->flags & MZ_CTX_EXTERNAL) && !pc->vni) {
		stat = pc->core_stat;
		action = XDP_PASS;
		goto out;
	}
	if (mz_parse_eth(&cur, &eth) != ETH_P_IP || mz_parse_ipv4(&cur, &iph) < 0)
		goto out;
	key.vni = pc->vni;
	key.ip = (pc->flags & MZ_CTX_STEER) ? pc->steer_ip : iph->daddr;
	ep = bpf_map_lookup_elem(&endpoints, &key);
	/* An address no plugin steered keeps the outcome it had (no_network). */
	stat = (pc->flags & (MZ_CTX_UNKNOWN_DESTINATION | MZ_CTX_STEER)) == MZ_CTX_UNKNOWN_DESTINATION ? pc->core_stat
												  : MZ_TRANSIT_NOT_LOCAL;
	if (!ep || !(ep->flags & MZ_ENDPOINT_LOCAL))
		goto out;
	action = deliver(ctx, ep);
	stat = action == XDP_REDIRECT ? MZ_TRANSIT_DELIVERED : MZ_TRANSIT_BAD_INNER;
out:
	stats = stats_get();
	if (stats) {
		count(stats, stat, cur.len);
		count(stats, MZ_TRANSIT_INGRESS_CHAIN, 0);
	}
	if (pc)
		mz_trace_xdp_outcome(ctx, pc, MZ_TRACE_TRANSIT, stat, action, 0, pc->vni, cur.len, MZ_TRACE_FRAME_PLAIN);
	return action;
}

/*
 * The last position of every transit chain: divides the frame as the plugins left it (its
 * inner destination may have been rewritten) — delivered when this droplet hosts the
 * destination (through the ingress chain, if there is one), bounced to its droplet when
 * this droplet bounces its network, else sent to a bouncer of the destination's network.
 */
SEC("xdp.frags")
int transit_continue(struct xdp_md *ctx)
{
	struct mz_cursor cur = mz_cursor_init(ctx);
	const struct mz_droplet_addr *to;
	struct mz_plugin_ctx *pc;
	struct mz_geneve_info gnv = {};
	const struct mz_endpoint *ep;
	const struct mz_droplet *self;
	const struct mz_network *net;
	struct mz_transit_stats *stats;
	struct mz_endpoint_key key;
	struct iphdr *iph, *inner_ip;
	struct ethhdr *eth, *inner;
	struct udphdr *udp;
	__u32 stat = MZ_TRANSIT_BAD_INNER, frame = MZ_TRACE_FRAME_GENEVE;
	int action = XDP_DROP, chain_counted = 0;

	if (mz_parse_eth(&cur, &eth) != ETH_P_IP || mz_parse_ipv4(&cur, &iph) != IPPROTO_UDP ||
	    mz_parse_udp(&cur, &udp) != MZ_GENEVE_UDP_PORT || mz_parse_geneve(&cur, &gnv) != MZ_GENEVE_PROTO_ETH ||
	    mz_parse_eth(&cur, &inner) != ETH_P_IP || mz_parse_ipv4(&cur, &inner_ip) < 0)
		goto out;
	self = mz_droplet();
	stat = MZ_TRANSIT_NO_NETWORK;
	if (!self)
		goto out;
	key.vni = gnv.vni;
	key.ip = inner_ip->daddr;
	ep = bpf_map_lookup_elem(&endpoints, &key);
	if (ep && (ep->flags & MZ_ENDPOINT_LOCAL)) {
		stat = MZ_TRANSIT_BAD_INNER;
		if (bpf_xdp_adjust_head(ctx, (void *)inner - (void *)eth))
			goto out;
		frame = MZ_TRACE_FRAME_PLAIN;
		if (mz_chain_is_active(MZ_HOOK_INGRESS)) {
			/* This chain's pass is counted now: the ingress continuation counts the outcome. */
			stats = stats_get();
			if (stats)
				count(stats, MZ_TRANSIT_TRANSIT_CHAIN, 0);
			chain_counted = 1;
			run_ingress_chain(ctx, 0, gnv.vni, ep->ifindex, key.ip, MZ_TRANSIT_DELIVERED);
			stat = MZ_TRANSIT_CHAIN_UNAVAILABLE; /* never around the chain */
			goto out;
		}
		action = deliver(ctx, ep);
		stat = action == XDP_REDIRECT ? MZ_TRANSIT_DELIVERED : MZ_TRANSIT_BAD_INNER;
		goto out;
	}
	if (ep) { /* this droplet bounces the destination's network */
		to = &ep->droplet;
		stat = MZ_TRANSIT_OUTER_TTL;
		if (mz_readdress(eth, iph, self, to) < 0)
			goto out;
		stat = MZ_TRANSIT_BOUNCED;
		action = XDP_TX;
		goto out;
	}
	net = mz_network_of(gnv.vni, inner_ip->daddr);
	if (!net)
		goto out;
	to = mz_pick(net->bouncers, net->bouncer_count, MZ_MAX_BOUNCERS, bpf_ntohs(udp->source));
	stat = MZ_TRANSIT_NO_BOUNCER;
	if (!to)
		goto out;
	stat = MZ_TRANSIT_OUTER_TTL;
	if (mz_readdress(eth, iph, self, to) < 0)
		goto out;
	stat = MZ_TRANSIT_DIVIDED;
	action = XDP_TX;
out:
	stats = stats_get();
	if (stats) {
		count(stats, stat, cur.len);
		if (!chain_counted)
			count(stats, MZ_TRANSIT_TRANSIT_CHAIN, 0);
	}
	pc = mz_plugin_ctx_get();
	if (pc)
		mz_trace_xdp_outcome(ctx, pc, MZ_TRACE_TRANSIT, stat, action, 0, gnv.vni, cur.len, frame);
	return action;
}

char LICENSE[] SEC("license") = "GPL";
