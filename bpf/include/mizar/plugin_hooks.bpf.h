/* SPDX-License-Identifier: Apache-2.0 */
/* This file contains what only the cores that host chains need (kernel-only): plugins never include it. */
#ifndef MIZAR_PLUGIN_HOOKS_BPF_H
#define MIZAR_PLUGIN_HOOKS_BPF_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>

#include "geneve.h"
#include "plugin_core.bpf.h"
#include "stats.h"
#include "transit_xdp.h"

/*
 * Whether `hook` has a chain, so that a core without one skips filling the context and
 * the tail call (user space sets it after a root is filled and clears it before a root
 * is emptied; either way a frame in between is handled correctly).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MZ_HOOK_MAX);
	__type(key, __u32);
	__type(value, __u32);
} mz_chain_active SEC(".maps");

static __always_inline int mz_chain_is_active(__u32 hook)
{
	__u32 *active = bpf_map_lookup_elem(&mz_chain_active, &hook);

	return active && *active;
}


/* The trace filter user space writes (trace.h): tracing is off while its flags are 0. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mz_trace_filter);
} mz_trace SEC(".maps");

/* The filter while tracing is on, else NULL: the one read tracing costs a packet when off. */
static __always_inline const struct mz_trace_filter *mz_tracing(void)
{
#ifdef MZ_NO_TRACE /* make bench's baseline: the same programs without trace hooks */
	return NULL;
#else
	const struct mz_trace_filter *f = bpf_map_lookup_elem(&mz_trace, &(__u32){ 0 });

	return f && f->flags ? f : NULL;
#endif
}

/* Whether an event of these addresses passes the filter (and its 1-in-N sample). */
static __always_inline int mz_trace_match(const struct mz_trace_filter *f, __u32 vni, __be32 saddr, __be32 daddr)
{
	if (f->vni && f->vni != vni)
		return 0;
	if (f->ip && f->ip != saddr && f->ip != daddr)
		return 0;
	return f->sample <= 1 || bpf_get_prandom_u32() % f->sample == 0;
}

/* Marks a chain's frame for the plugins (and the continuation) when tracing wants it. */
static __always_inline void mz_trace_mark(struct mz_plugin_ctx *pc, const struct iphdr *iph)
{
	const struct mz_trace_filter *f = mz_tracing();

	if (f && mz_trace_match(f, pc->vni, iph->saddr, iph->daddr))
		pc->flags |= MZ_CTX_TRACE | ((f->flags & MZ_TRACE_ALL) ? MZ_CTX_TRACE_ALL : 0);
}

/* The trace flags a continuation works with: those its chain's entry marked. */
static __always_inline __u32 mz_trace_flags_of(const struct mz_plugin_ctx *pc)
{
#ifdef MZ_NO_TRACE
	return 0;
#endif
	if (!pc || !(pc->flags & MZ_CTX_TRACE))
		return 0;
	return MZ_TRACE_ON | ((pc->flags & MZ_CTX_TRACE_ALL) ? MZ_TRACE_ALL : 0);
}

/* What the frame a core program traces is (the `geneve` of the functions below). */
#define MZ_TRACE_FRAME_PLAIN 0	 /* an endpoint's frame: described as it is, whatever its payload claims */
#define MZ_TRACE_FRAME_GENEVE 1	 /* Geneve the program parsed or built: its inner frame is described */
#define MZ_TRACE_FRAME_TRANSIT 2 /* transit XDP's main program: Geneve for this droplet, decapsulated when
				  * delivered; what it passes is the host's own traffic, not traced (the
				  * choice is made here, off the packet path: a live flag there cost ~10 ns) */

/*
 * Fills the event's addresses from the frame in `ctx`, through the load-bytes helper (no
 * bounds to prove; this runs only while tracing): the IPv4 header, or the inner one of a
 * Geneve frame, and its ports.
 */
#define MZ_TRACE_PARSER(name, ctx_type, load)                                                                   \
	static __always_inline void name(ctx_type *ctx, struct mz_trace_event *ev, int geneve)                  \
	{                                                                                                       \
		struct iphdr ip;                                                                                \
		__be16 proto, ports[2];                                                                          \
		__u8 gnv[8], icmp[6];                                                                            \
		__u32 off;                                                                                      \
                                                                                                                \
		if (load(ctx, 12, &proto, 2) || proto != bpf_htons(ETH_P_IP) || load(ctx, 14, &ip, sizeof(ip)) || \
		    ip.ihl < 5)                                                                                 \
			return;                                                                                 \
		off = 14 + ip.ihl * 4;                                                                          \
		/* Only a frame the program itself parsed or built as Geneve is opened: an endpoint's  \
		 * own UDP to 6081 is what it is, whatever its payload claims. */                              \
		if (geneve && ip.protocol == IPPROTO_UDP && !load(ctx, off, ports, 4) &&                       \
		    ports[1] == bpf_htons(MZ_GENEVE_UDP_PORT) && !load(ctx, off + 8, gnv, 8)) {                   \
			if (!ev->vni)                                                                           \
				ev->vni = ((__u32)gnv[4] << 16) | ((__u32)gnv[5] << 8) | gnv[6];                \
			off += 16 + (gnv[0] & 0x3f) * 4; /* the inner Ethernet header */                        \
			if (load(ctx, off + 12, &proto, 2) || proto != bpf_htons(ETH_P_IP) ||                    \
			    load(ctx, off + 14, &ip, sizeof(ip)) || ip.ihl < 5)                                 \
				return;                                                                         \
			off += 14 + ip.ihl * 4;                                                                 \
		}                                                                                               \
		ev->saddr = ip.saddr;                                                                           \
		ev->daddr = ip.daddr;                                                                           \
		ev->proto = ip.protocol;                                                                        \
		if (ip.frag_off & bpf_htons(0x1fff))                                                            \
			return;                                                                                 \
		if ((ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP) && !load(ctx, off, ports, 4)) {  \
			ev->sport = ports[0];                                                                   \
			ev->dport = ports[1];                                                                   \
		} else if (ip.protocol == IPPROTO_ICMP && !load(ctx, off, icmp, 6) && (icmp[0] == 0 || icmp[0] == 8)) { \
			ev->sport = ev->dport = *(__be16 *)&icmp[4];                                            \
		}                                                                                               \
	}

/*
 * Emits a core program's decision on the frame in `ctx` when `flags` (the filter's, or a
 * chain entry's mark) want it; `f` NULL means the frame already matched. The work is a
 * subprogram of its own: the packet path holds only the filter read and, while tracing,
 * a call (inlined, its code and stack would weigh on every packet).
 */
#define MZ_TRACE_CORE(name, ctx_type, parse)                                                                    \
	static __attribute__((noinline, unused)) int name##_emit(ctx_type *ctx, const struct mz_trace_filter *f,  \
								  __u32 flags, struct mz_trace_event *ev, int geneve) \
	{                                                                                                       \
		if (!(flags & MZ_TRACE_ALL) && ev->verdict != MZ_STAT_DROP)                                     \
			return 0;                                                                               \
		if (geneve == MZ_TRACE_FRAME_TRANSIT) {                                                         \
			if (ev->verdict == MZ_STAT_PASS)                                                        \
				return 0;                                                                       \
			geneve = ev->reason != MZ_TRANSIT_DELIVERED;                                            \
		}                                                                                               \
		parse(ctx, ev, geneve);                                                                         \
		if (f && !mz_trace_match(f, ev->vni, ev->saddr, ev->daddr))                                     \
			return 0;                                                                               \
		mz_trace_emit(ev);                                                                              \
		return 0;                                                                                       \
	}                                                                                                       \
	static __always_inline void name(ctx_type *ctx, const struct mz_trace_filter *f, __u32 flags, __u8 source, \
					 __u16 reason, __u8 kind, __u32 ifindex, __u32 vni, __u32 len, int geneve) \
	{                                                                                                       \
		struct mz_trace_event ev = { .vni = vni, .ifindex = ifindex, .len = len, .reason = reason,       \
					     .source = source, .verdict = kind };                               \
                                                                                                                \
		name##_emit(ctx, f, flags, &ev, geneve);                                                        \
	}

MZ_TRACE_PARSER(mz_trace_parse_xdp, struct xdp_md, bpf_xdp_load_bytes)
MZ_TRACE_PARSER(mz_trace_parse_skb, struct __sk_buff, bpf_skb_load_bytes)
MZ_TRACE_CORE(mz_trace_xdp, struct xdp_md, mz_trace_parse_xdp)
MZ_TRACE_CORE(mz_trace_skb, struct __sk_buff, mz_trace_parse_skb)

/* What an XDP or TC return code does with the frame, as a counter slot's kind says it. */
static __always_inline __u8 mz_xdp_kind(int action)
{
	return action == XDP_DROP ? MZ_STAT_DROP : action == XDP_TX ? MZ_STAT_TX : action == XDP_REDIRECT ? MZ_STAT_REDIRECT : MZ_STAT_PASS;
}

static __always_inline __u8 mz_tc_kind(int action)
{
	return action == TC_ACT_SHOT ? MZ_STAT_DROP : action == TC_ACT_REDIRECT ? MZ_STAT_REDIRECT : MZ_STAT_PASS;
}

/*
 * Traces an XDP or TC program's outcome: against the filter (one map read when tracing is
 * off), or — `pc` given, a chain's continuation — as the chain's entry marked the frame.
 * `geneve`: what the frame is (MZ_TRACE_FRAME_*).
 */
#define MZ_TRACE_OUTCOME(name, ctx_type, trace, kind)                                                           \
	static __always_inline void name(ctx_type *ctx, const struct mz_plugin_ctx *pc, __u8 source, __u16 reason, \
					 int action, __u32 ifindex, __u32 vni, __u32 len, int geneve)           \
	{                                                                                                       \
		const struct mz_trace_filter *f = pc ? NULL : mz_tracing();                                     \
		__u32 flags = pc ? mz_trace_flags_of(pc) : f ? f->flags : 0;                                    \
                                                                                                                \
		if (flags)                                                                                      \
			trace(ctx, f, flags, source, reason, kind(action), ifindex, vni, len, geneve);          \
	}

MZ_TRACE_OUTCOME(mz_trace_xdp_outcome, struct xdp_md, mz_trace_xdp, mz_xdp_kind)
MZ_TRACE_OUTCOME(mz_trace_skb_outcome, struct __sk_buff, mz_trace_skb, mz_tc_kind)

#endif /* MIZAR_PLUGIN_HOOKS_BPF_H */
