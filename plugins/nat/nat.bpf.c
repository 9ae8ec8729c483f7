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
 *
 * A translation cannot split: its two entries are made together, neither table evicts,
 * every use checks that the other half names it back (egress starts a half pair over,
 * ingress never delivers on one), and a pair idle for `idle_seconds` is removed whole:
 * by a new flow that needs its port (the delete of the reverse entry decides which CPU
 * may, and BPF_NOEXIST which flow gets the port), or by the library's sweep. A full table
 * refuses new flows; it never takes a port from a flow that still owns it.
 */
#include <mizar/plugin.h>

#include "nat.h"

#ifndef EEXIST
#define EEXIST 17
#endif

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, NAT_MAX_PREFIXES * NAT_GENERATIONS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct nat_external_key);
	__type(value, __u32);
} nat_external SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NAT_MAX_FORWARDS * NAT_GENERATIONS);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* memory for the generation being written only while it is */
	__type(key, struct nat_forward_key);
	__type(value, struct nat_endpoint);
} nat_forwards SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NAT_TABLE_SIZE);
	__type(key, struct nat_flow_key);
	__type(value, struct nat_flow);
} nat_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NAT_TABLE_SIZE);
	__type(key, struct nat_reverse_key);
	__type(value, struct nat_translation);
} nat_reverse SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NAT_GENERATIONS);
	__type(key, __u32);
	__type(value, struct nat_config);
} nat_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nat_generation);
} nat_generation SEC(".maps");

/* How long `t` may stay unused: idleSeconds, or less while it was never answered. */
static __always_inline __u64 idle_ns(const struct nat_config *cfg, const struct nat_translation *t)
{
	__u64 idle = cfg->idle_seconds ? cfg->idle_seconds : NAT_DEFAULT_IDLE_SECONDS;

	if (!(t->flags & NAT_PAIR_ANSWERED) && idle > NAT_UNANSWERED_SECONDS)
		idle = NAT_UNANSWERED_SECONDS;
	return idle * 1000000000ULL;
}

/* Marks a packet of the pair: when, and whether the side that did not open it has spoken. */
static __always_inline void touch(struct nat_translation *t, int from_opener)
{
	__u64 now = bpf_ktime_get_ns();

	/* Rewritten at most once a second: timeouts are tens of seconds, the cache line is shared. */
	if (now - t->last_seen_ns > NAT_REFRESH_NS)
		t->last_seen_ns = now;
	if (!from_opener && !(t->flags & NAT_PAIR_ANSWERED))
		t->flags |= NAT_PAIR_ANSWERED;
}

/* The flow entry's key of the translation `rev` → `t`: the endpoint's side of it. */
static __always_inline void flow_of(struct nat_flow_key *flow, const struct nat_reverse_key *rev,
				    const struct nat_translation *t)
{
	__builtin_memset(flow, 0, sizeof(*flow));
	flow->vni = t->vni;
	flow->src = t->ip;
	flow->dst = rev->remote;
	flow->sport = t->port;
	flow->dport = t->remote_port;
	flow->protocol = rev->protocol;
}

/* The flow entry of `rev` → `t` when it names `rev`'s port back (the pair is whole), or NULL. */
static __always_inline struct nat_flow *partner(const struct nat_reverse_key *rev, const struct nat_translation *t,
						struct nat_flow_key *flow)
{
	struct nat_flow *fwd;

	flow_of(flow, rev, t);
	fwd = bpf_map_lookup_elem(&nat_flows, flow);
	return fwd && fwd->nat_ip == rev->nat_ip && fwd->nat_port == rev->nat_port ? fwd : NULL;
}

/*
 * Removes the pair holding `rev` if it has been idle past its timeout; true when this CPU
 * removed it (the delete succeeds for one caller only), so its port may be claimed again.
 * The clock is read after the entry: another CPU may stamp it at any moment, and a stamp
 * newer than our clock must read as "just used", never as a wrapped, huge idle time.
 */
static __always_inline int reclaim(const struct nat_config *cfg, const struct nat_reverse_key *rev)
{
	struct nat_translation *t = bpf_map_lookup_elem(&nat_reverse, rev), old;
	struct nat_flow_key flow;
	__s64 quiet;

	if (!t)
		return 0;
	quiet = (__s64)(bpf_ktime_get_ns() - *(volatile __u64 *)&t->last_seen_ns);
	if (quiet <= (__s64)idle_ns(cfg, t))
		return 0;
	old = *t;
	if (bpf_map_delete_elem(&nat_reverse, rev))
		return 0;
	if (partner(rev, &old, &flow))
		bpf_map_delete_elem(&nat_flows, &flow);
	return 1;
}

/*
 * Makes both halves of a translation: the reverse entry first (claimed with BPF_NOEXIST,
 * so a port another pair owns is never taken; an idle pair is reclaimed first), then the
 * flow entry. Returns 0, -EEXIST when the port is taken, or the drop reason.
 */
static __always_inline int pair(const struct nat_config *cfg, const struct nat_reverse_key *rev,
				const struct nat_flow_key *flow, const struct nat_translation *fresh)
{
	struct nat_flow value = { .nat_ip = rev->nat_ip, .nat_port = rev->nat_port };
	long err = bpf_map_update_elem(&nat_reverse, rev, fresh, BPF_NOEXIST);

	if (err == -EEXIST && reclaim(cfg, rev))
		err = bpf_map_update_elem(&nat_reverse, rev, fresh, BPF_NOEXIST);
	if (err == -EEXIST)
		return -EEXIST;
	if (err)
		return NAT_REASON_TABLE_FULL;
	err = bpf_map_update_elem(&nat_flows, flow, &value, BPF_NOEXIST);
	if (err) {
		bpf_map_delete_elem(&nat_reverse, rev);
		/* Another CPU made this flow's pair first: egress uses that one, ingress drops. */
		return err == -EEXIST ? NAT_PAIR_RACED : NAT_REASON_TABLE_FULL;
	}
	return 0;
}

/* Claims a port for a new connection and makes its translation; returns 0 or the drop reason. */
static __always_inline int allocate(const struct nat_config *cfg, const struct nat_flow_key *flow)
{
	struct nat_reverse_key rev = {
		.nat_ip = cfg->external_ip,
		.remote = flow->dst,
		.remote_port = flow->dport,
		.protocol = flow->protocol,
	};
	struct nat_translation fresh = {
		.vni = flow->vni,
		.ip = flow->src,
		.port = flow->sport,
		.remote_port = flow->dport,
		.last_seen_ns = bpf_ktime_get_ns(),
	};
	__u32 range = cfg->port_max - cfg->port_min + 1;
	__u32 hash = flow->src ^ (flow->sport << 16) ^ flow->dst ^ flow->dport ^ bpf_get_prandom_u32();
	int i, reason;

	if (!range || cfg->port_max < cfg->port_min)
		return NAT_REASON_NO_PORT;
	for (i = 0; i < NAT_PORT_TRIES; i++) {
		rev.nat_port = bpf_htons(cfg->port_min + (hash + i) % range);
		/* An ICMP echo id stands for both ports: the reply carries it unchanged. */
		if (flow->protocol == IPPROTO_ICMP)
			rev.remote_port = rev.nat_port;
		reason = pair(cfg, &rev, flow, &fresh);
		if (reason == NAT_PAIR_RACED)
			return 0; /* the flow entry another CPU made is there */
		if (reason != -EEXIST)
			return reason; /* made, or no room for it */
	}
	return NAT_REASON_NO_PORT;
}

/* The reverse entry of a flow's translation when it names the flow back (whole), or NULL. */
static __always_inline struct nat_translation *own_reverse(const struct nat_flow_key *flow, const struct nat_flow *fwd)
{
	struct nat_reverse_key rev = {
		.nat_ip = fwd->nat_ip,
		.remote = flow->dst,
		.nat_port = fwd->nat_port,
		.remote_port = flow->protocol == IPPROTO_ICMP ? fwd->nat_port : flow->dport,
		.protocol = flow->protocol,
	};
	struct nat_translation *t = bpf_map_lookup_elem(&nat_reverse, &rev);

	return t && t->vni == flow->vni && t->ip == flow->src && t->port == flow->sport ? t : NULL;
}

static __always_inline int egress(struct mz_pkt *pkt, const struct nat_config *cfg, struct nat_flow_key *flow)
{
	struct nat_external_key ext = { .prefixlen = 96, .generation = cfg->generation & 1, .vni = flow->vni, .dst = flow->dst };
	struct nat_translation *t = NULL;
	struct nat_flow *known;
	__u32 *masquerade;
	int reason;

	known = bpf_map_lookup_elem(&nat_flows, flow);
	if (known && !(t = own_reverse(flow, known))) {
		bpf_map_delete_elem(&nat_flows, flow); /* half a translation: start over */
		known = NULL;
	}
	if (known) {
		touch(t, !(t->flags & NAT_PAIR_INBOUND)); /* the endpoint opened it, unless a forward did */
		/* A reply on a forward may go back to a droplet that opened it, from an ephemeral port
		 * only: one spoofed packet "from" a droplet's SSH or API port must not open a way there. */
		if ((t->flags & NAT_PAIR_INBOUND) && bpf_ntohs(flow->dport) >= NAT_EPHEMERAL_MIN)
			pkt->ctx->flags |= MZ_CTX_ANSWER;
	}
	if (!known) {
		masquerade = bpf_map_lookup_elem(&nat_external, &ext);
		if (!masquerade || !*masquerade)
			return MZ_CONTINUE; /* overlay traffic */
		if (pkt->ctx->flags & MZ_CTX_FRAGMENT)
			return mz_drop(pkt, NAT_REASON_FRAGMENT);
		reason = allocate(cfg, flow);
		if (reason)
			return mz_drop(pkt, reason);
		known = bpf_map_lookup_elem(&nat_flows, flow);
		if (!known)
			return mz_drop(pkt, NAT_REASON_STALE);
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
	struct nat_forward_key fwd = { .protocol = in->protocol, .generation = cfg->generation & 1, .port = in->dport };
	const struct nat_endpoint *target;
	struct nat_translation *t, fresh = {};
	struct nat_flow_key flow;
	__be32 ip;
	__be16 port;
	__u32 vni;
	int reason;

	t = bpf_map_lookup_elem(&nat_reverse, &rev);
	if (t) {
		if (!partner(&rev, t, &flow))
			return mz_drop(pkt, NAT_REASON_STALE); /* half a translation: never delivered */
		touch(t, t->flags & NAT_PAIR_INBOUND);
		vni = t->vni;
		ip = t->ip;
		port = t->port;
	} else {
		if (in->dst != cfg->external_ip || in->protocol == IPPROTO_ICMP)
			return MZ_CONTINUE; /* the droplet's own traffic */
		target = bpf_map_lookup_elem(&nat_forwards, &fwd);
		if (!target)
			return MZ_CONTINUE;
		/* A forwarded port: the translation of the endpoint's replies, made now. */
		fresh.vni = vni = target->vni;
		fresh.ip = ip = target->ip;
		fresh.port = port = target->port;
		fresh.remote_port = in->sport;
		fresh.flags = NAT_PAIR_INBOUND;
		fresh.last_seen_ns = bpf_ktime_get_ns();
		flow_of(&flow, &rev, &fresh);
		reason = pair(cfg, &rev, &flow, &fresh);
		if (reason)
			return mz_drop(pkt, reason == -EEXIST || reason == NAT_PAIR_RACED ? NAT_REASON_STALE : reason);
	}
	if (mz_set_ipv4_addr(pkt, 1, ip) || mz_set_l4_port(pkt, 1, port))
		return mz_drop(pkt, NAT_REASON_REWRITE);
	pkt->ctx->vni = vni; /* claimed: the core delivers it to the endpoint */
	return MZ_CONTINUE;
}

static __always_inline int nat(struct mz_pkt *pkt)
{
	const struct nat_generation *live;
	const struct nat_config *cfg;
	struct nat_flow_key flow = {};
	struct iphdr *iph;

	if (pkt->ctx->hook == MZ_HOOK_INGRESS && !(pkt->ctx->flags & MZ_CTX_EXTERNAL))
		return MZ_CONTINUE; /* overlay traffic to an endpoint */
	live = bpf_map_lookup_elem(&nat_generation, &(__u32){ 0 });
	cfg = bpf_map_lookup_elem(&nat_config, &(__u32){ live ? live->generation & 1 : 0 });
	if (!cfg || !cfg->external_ip)
		return MZ_CONTINUE; /* not configured */
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
