/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file is what a plugin includes (DESIGN §5, docs/plugins.md). A plugin is one
 * function that looks at a frame and returns a verdict:
 *
 *	static __always_inline int my_filter(struct mz_pkt *pkt)
 *	{
 *		struct iphdr *iph = mz_ipv4(pkt);
 *
 *		if (!iph)
 *			return mz_drop(pkt, 1);
 *		return MZ_CONTINUE;
 *	}
 *	MZ_PLUGIN(my_filter)
 *
 * MZ_PLUGIN compiles it twice, as `my_filter_xdp` (XDP hooks) and `my_filter_tc` (the
 * transit agent's TC hook), with the chain plumbing around it: the tail call to the next
 * position (a constant key: user space sets `mz_position` before load), the counters,
 * and the embedded ABI version. Both flavours see the same `struct mz_pkt`.
 */
#ifndef MIZAR_PLUGIN_H
#define MIZAR_PLUGIN_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <stddef.h>

#include "csum.bpf.h"
#include "plugin_core.bpf.h"

/* ICMP (linux/icmp.h drags in libc headers a BPF build lacks). */
#define MZ_ICMP_ECHOREPLY 0
#define MZ_ICMP_ECHO 8
struct mz_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;	 /* echo and echo reply */
	__be16 sequence; /* echo and echo reply */
};

/* Set by user space before load; read-only afterwards, so the verifier sees constants. */
#ifndef MZ_PLUGIN_ABI_BUILT /* only the ABI check's own test defines another */
#define MZ_PLUGIN_ABI_BUILT MZ_PLUGIN_ABI_VERSION
#endif
const volatile __u32 mz_plugin_abi = MZ_PLUGIN_ABI_BUILT;
const volatile __u32 mz_position = 0;	/* this instance's position in its chain */
const volatile __u32 mz_stats_slot = 0; /* its (hook, plugin) counter slot */

/* The chain this instance belongs to: user space points it at the chain being built. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, MZ_PLUGIN_CHAIN_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} mz_chain SEC(".maps");

/* The frame as a plugin sees it, in either flavour. */
struct mz_pkt {
	void *data;
	void *data_end;
	struct mz_plugin_ctx *ctx;
	void *raw;  /* struct xdp_md * or struct __sk_buff * */
	__u32 len;  /* whole frame when the chain started (what the counters add up) */
	__u32 reason;
	__u8 is_skb;
};

#define MZ_CONTINUE MZ_VERDICT_CONTINUE
#define MZ_PASS MZ_VERDICT_PASS

/* Drops the frame; `reason` (0..MZ_PLUGIN_DROP_REASONS-1) is counted on its own. */
static __always_inline int mz_drop(struct mz_pkt *pkt, __u32 reason)
{
	pkt->reason = reason;
	return MZ_VERDICT_DROP;
}

/* The IPv4 header (every frame a chain sees is IPv4), or NULL if it is not in the linear data. */
static __always_inline struct iphdr *mz_ipv4(const struct mz_pkt *pkt)
{
	struct iphdr *iph = pkt->data + (pkt->ctx->l3_off & 0xff);

	if ((void *)(iph + 1) > pkt->data_end)
		return NULL;
	return iph;
}

/* `size` bytes of the L4 header, or NULL (a later fragment, or truncated). */
static __always_inline void *mz_l4(const struct mz_pkt *pkt, __u32 size)
{
	void *l4 = pkt->data + (pkt->ctx->l4_off & 0xff);

	if ((pkt->ctx->flags & MZ_CTX_FRAGMENT) || l4 + size > pkt->data_end)
		return NULL;
	return l4;
}

static __always_inline struct tcphdr *mz_tcp(const struct mz_pkt *pkt)
{
	return pkt->ctx->l4_proto == IPPROTO_TCP ? mz_l4(pkt, sizeof(struct tcphdr)) : NULL;
}

static __always_inline struct udphdr *mz_udp(const struct mz_pkt *pkt)
{
	return pkt->ctx->l4_proto == IPPROTO_UDP ? mz_l4(pkt, sizeof(struct udphdr)) : NULL;
}

static __always_inline struct mz_icmphdr *mz_icmp(const struct mz_pkt *pkt)
{
	return pkt->ctx->l4_proto == IPPROTO_ICMP ? mz_l4(pkt, sizeof(struct mz_icmphdr)) : NULL;
}

/*
 * Source and destination ports of TCP/UDP (network order), the ICMP echo id as both for
 * echo and echo reply, zeros otherwise. Returns 0 when the frame has such an identity.
 */
static __always_inline int mz_ports(const struct mz_pkt *pkt, __be16 *sport, __be16 *dport)
{
	__be16 *ports;
	struct mz_icmphdr *icmp;

	*sport = *dport = 0;
	if (pkt->ctx->l4_proto == IPPROTO_TCP || pkt->ctx->l4_proto == IPPROTO_UDP) {
		ports = mz_l4(pkt, 2 * sizeof(__be16));
		if (!ports)
			return -1;
		*sport = ports[0];
		*dport = ports[1];
		return 0;
	}
	icmp = mz_icmp(pkt);
	if (icmp && (icmp->type == MZ_ICMP_ECHO || icmp->type == MZ_ICMP_ECHOREPLY)) {
		*sport = *dport = icmp->id;
		return 0;
	}
	return -1;
}

/*
 * Rewriting headers. These keep every checksum right in both flavours: XDP frames carry
 * complete checksums (updated incrementally, RFC 1624); at TC an skb may carry a partial
 * L4 checksum (offload), which only the kernel's csum helpers handle. At TC they move
 * the packet data: re-read header pointers (mz_ipv4, mz_l4, ...) after calling them.
 */

/* Offset of the L4 checksum for TCP/UDP/ICMP, 0 when the frame has none to fix. */
static __always_inline __u32 mz_l4_csum_off(const struct mz_pkt *pkt)
{
	if (pkt->ctx->flags & MZ_CTX_FRAGMENT)
		return 0;
	switch (pkt->ctx->l4_proto) {
	case IPPROTO_TCP:
		return pkt->ctx->l4_off + offsetof(struct tcphdr, check);
	case IPPROTO_UDP:
		return pkt->ctx->l4_off + offsetof(struct udphdr, check);
	case IPPROTO_ICMP:
		return pkt->ctx->l4_off + offsetof(struct mz_icmphdr, checksum);
	}
	return 0;
}

/* Points the packet view at the skb's data again (after a helper moved it). */
static __always_inline void mz_pkt_reload(struct mz_pkt *pkt)
{
	if (pkt->is_skb) {
		pkt->data = (void *)(long)((struct __sk_buff *)pkt->raw)->data;
		pkt->data_end = (void *)(long)((struct __sk_buff *)pkt->raw)->data_end;
	}
}

/*
 * XDP: updates the L4 checksum at `l4` for a field changing from `from` to `to` (a 16-bit
 * field zero-extended: ones' complement does not see the difference). A UDP checksum of 0
 * means none and stays none; an update never leaves UDP with 0. Returns 0 or -1.
 */
static __always_inline int mz_l4_csum_update(const struct mz_pkt *pkt, __u32 l4, __u32 from, __u32 to)
{
	__sum16 *check = pkt->data + (l4 & 0xff);
	int udp = pkt->ctx->l4_proto == IPPROTO_UDP;

	if ((void *)(check + 1) > pkt->data_end)
		return -1;
	if (udp && !*check)
		return 0;
	mz_csum_replace4(check, from, to);
	if (udp && !*check)
		*check = 0xffff;
	return 0;
}

/* Sets the IPv4 source (dst = 0) or destination (dst = 1) address. Returns 0 or -1. */
static __always_inline int mz_set_ipv4_addr(struct mz_pkt *pkt, int dst, __be32 addr)
{
	struct iphdr *iph = mz_ipv4(pkt);
	__u32 field = pkt->ctx->l3_off + (dst ? offsetof(struct iphdr, daddr) : offsetof(struct iphdr, saddr));
	__u32 l4 = mz_l4_csum_off(pkt);
	int pseudo = pkt->ctx->l4_proto != IPPROTO_ICMP; /* ICMP's checksum has no pseudo-header */
	__be32 old;

	if (!iph)
		return -1;
	old = dst ? iph->daddr : iph->saddr;
	if (pkt->is_skb) {
		struct __sk_buff *skb = pkt->raw;
		__u64 flags = BPF_F_PSEUDO_HDR | sizeof(addr) |
			      (pkt->ctx->l4_proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0);

		if (l4 && pseudo && bpf_l4_csum_replace(skb, l4, old, addr, flags))
			return -1;
		if (bpf_l3_csum_replace(skb, pkt->ctx->l3_off + offsetof(struct iphdr, check), old, addr, sizeof(addr)) ||
		    bpf_skb_store_bytes(skb, field, &addr, sizeof(addr), 0))
			return -1;
		mz_pkt_reload(pkt);
		return 0;
	}
	if (dst)
		iph->daddr = addr;
	else
		iph->saddr = addr;
	mz_csum_replace4(&iph->check, old, addr);
	return l4 && pseudo ? mz_l4_csum_update(pkt, l4, old, addr) : 0;
}

/*
 * Sets the TCP/UDP source (dst = 0) or destination (dst = 1) port, or the ICMP echo id
 * (either `dst`). Returns 0, or -1 when the frame has no such field.
 */
static __always_inline int mz_set_l4_port(struct mz_pkt *pkt, int dst, __be16 port)
{
	__u32 l4 = mz_l4_csum_off(pkt), field;
	__be16 *at, old;

	if (!l4)
		return -1;
	field = pkt->ctx->l4_off + (pkt->ctx->l4_proto == IPPROTO_ICMP ? offsetof(struct mz_icmphdr, id) : dst ? 2 : 0);
	at = pkt->data + (field & 0xff);
	if ((void *)(at + 1) > pkt->data_end)
		return -1;
	old = *at;
	if (pkt->is_skb) {
		struct __sk_buff *skb = pkt->raw;
		__u64 flags = sizeof(port) | (pkt->ctx->l4_proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0);

		if (bpf_l4_csum_replace(skb, l4, old, port, flags) || bpf_skb_store_bytes(skb, field, &port, sizeof(port), 0))
			return -1;
		mz_pkt_reload(pkt);
		return 0;
	}
	*at = port;
	return mz_l4_csum_update(pkt, l4, old, port);
}

/* Chain plumbing below: plugins do not call it. */

static __always_inline void mz_plugin_count(__u32 verdict, __u32 reason, __u64 bytes)
{
	__u32 slot = mz_stats_slot;
	struct mz_plugin_stats *s = bpf_map_lookup_elem(&mz_plugin_stats, &slot);

	if (!s || verdict >= MZ_VERDICT_MAX) /* bounds for the verifier */
		return;
	s->verdict[verdict].packets++;
	s->verdict[verdict].bytes += bytes;
	if (verdict == MZ_VERDICT_DROP) {
		reason &= MZ_PLUGIN_DROP_REASONS - 1;
		s->reason[reason].packets++;
		s->reason[reason].bytes += bytes;
	}
}

/* Emits the plugin's decision on a frame the core marked for tracing (trace.h). */
static __always_inline void mz_trace_plugin(const struct mz_pkt *pkt, __u32 verdict)
{
	struct mz_trace_event ev = {
		.vni = pkt->ctx->vni,
		.ifindex = pkt->ctx->ifindex,
		.len = pkt->len,
		.reason = verdict == MZ_VERDICT_DROP ? pkt->reason & (MZ_PLUGIN_DROP_REASONS - 1) : 0,
		.slot = mz_stats_slot,
		.source = MZ_TRACE_PLUGIN,
		.hook = pkt->ctx->hook,
		.verdict = verdict,
		.proto = pkt->ctx->l4_proto,
	};
	struct mz_pkt now = *pkt;
	struct iphdr *iph;

	/* The plugin's helpers may have moved the data: the verifier forgets every packet pointer then. */
	if (now.is_skb) {
		now.data = (void *)(long)((struct __sk_buff *)now.raw)->data;
		now.data_end = (void *)(long)((struct __sk_buff *)now.raw)->data_end;
	} else {
		now.data = (void *)(long)((struct xdp_md *)now.raw)->data;
		now.data_end = (void *)(long)((struct xdp_md *)now.raw)->data_end;
	}
	iph = mz_ipv4(&now);
	if (iph) {
		ev.saddr = iph->saddr;
		ev.daddr = iph->daddr;
	}
	mz_ports(&now, &ev.sport, &ev.dport);
	mz_trace_emit(&ev);
}

/* Runs the plugin function, counts its verdict, and traces it when the core asked. */
#define MZ_PLUGIN_RUN(fn, pkt)                                                    \
	({                                                                        \
		int __v = MZ_VERDICT_ABORTED;                                     \
		if ((pkt).ctx) {                                                  \
			(pkt).len = (pkt).ctx->len;                               \
			__v = fn(&(pkt));                                         \
		}                                                                 \
		if (__v < 0 || __v > MZ_VERDICT_PASS) /* a plugin's mistake */   \
			__v = mz_drop(&(pkt), MZ_PLUGIN_DROP_REASONS - 1);        \
		mz_plugin_count(__v, (pkt).reason, (pkt).len);                    \
		if ((pkt).ctx && ((pkt).ctx->flags & MZ_CTX_TRACE) &&             \
		    (__v == MZ_VERDICT_DROP || ((pkt).ctx->flags & MZ_CTX_TRACE_ALL))) \
			mz_trace_plugin(&(pkt), __v);                             \
		__v;                                                              \
	})

#define MZ_PLUGIN(fn)                                                             \
	char _license[] SEC("license") = "GPL";                                   \
	SEC("xdp.frags") int fn##_xdp(struct xdp_md *xdp)                         \
	{                                                                         \
		struct mz_pkt pkt = {                                             \
			.data = (void *)(long)xdp->data,                          \
			.data_end = (void *)(long)xdp->data_end,                  \
			.ctx = mz_plugin_ctx_get(),                               \
			.raw = xdp,                                               \
			.len = 0,                                                 \
		};                                                                \
		int v = MZ_PLUGIN_RUN(fn, pkt);                                   \
		if (v == MZ_VERDICT_CONTINUE) {                                   \
			bpf_tail_call(xdp, &mz_chain, mz_position + 1);           \
			mz_plugin_count(MZ_VERDICT_ABORTED, 0, pkt.len);          \
			return XDP_DROP;                                          \
		}                                                                 \
		return v == MZ_VERDICT_PASS ? XDP_PASS : XDP_DROP;                \
	}                                                                         \
	SEC("tc") int fn##_tc(struct __sk_buff *skb)                              \
	{                                                                         \
		struct mz_pkt pkt = {                                             \
			.data = (void *)(long)skb->data,                          \
			.data_end = (void *)(long)skb->data_end,                  \
			.ctx = mz_plugin_ctx_get(),                               \
			.raw = skb,                                               \
			.len = 0,                                                 \
			.is_skb = 1,                                              \
		};                                                                \
		int v = MZ_PLUGIN_RUN(fn, pkt);                                   \
		if (v == MZ_VERDICT_CONTINUE) {                                   \
			bpf_tail_call(skb, &mz_chain, mz_position + 1);           \
			mz_plugin_count(MZ_VERDICT_ABORTED, 0, pkt.len);          \
			return TC_ACT_SHOT;                                       \
		}                                                                 \
		return v == MZ_VERDICT_PASS ? TC_ACT_OK : TC_ACT_SHOT;            \
	}

#endif /* MIZAR_PLUGIN_H */
