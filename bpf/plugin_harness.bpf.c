// SPDX-License-Identifier: Apache-2.0
/*
 * Plugin harness: a core for plugin chains without a droplet (the SDK's PluginHarness).
 * The entry parses Ethernet and IPv4, starts the context from `harness_input` as a droplet
 * would, and tail-calls the chain of the hook the input names; the continuation copies the
 * context the chain left into `harness_output` and returns the "forward" verdict.
 */
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

#include "mizar/parsing.bpf.h"
#include "mizar/plugin_hooks.bpf.h"
#include "mizar/plugin_harness.h"

#define ROOT(name)                                   \
	struct {                                     \
		__uint(type, BPF_MAP_TYPE_PROG_ARRAY); \
		__uint(max_entries, 1);              \
		__type(key, __u32);                  \
		__type(value, __u32);                \
	} name SEC(".maps")

ROOT(harness_ingress);
ROOT(harness_egress);
ROOT(harness_egress_tc);
ROOT(harness_transit);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mz_plugin_ctx);
} harness_input SEC(".maps"), harness_output SEC(".maps");

/* Starts the context; NULL when the frame is not IPv4 (a chain only ever sees IPv4). */
static __always_inline struct mz_plugin_ctx *begin(struct mz_cursor *cur)
{
	const struct mz_plugin_ctx *in = bpf_map_lookup_elem(&harness_input, &(__u32){ 0 });
	struct mz_plugin_ctx *ctx;
	struct ethhdr *eth;
	struct iphdr *iph;

	if (!in || mz_parse_eth(cur, &eth) != ETH_P_IP || mz_parse_ipv4(cur, &iph) < 0)
		return NULL;
	/* Like a droplet's core, the harness fills the context only for a live chain... */
	if (!mz_chain_is_active(in->hook)) {
		ctx = mz_plugin_ctx_get();
		if (ctx) /* ...but still reports the context the frame had */
			*ctx = *in;
		return ctx;
	}
	ctx = mz_plugin_ctx_begin(in->hook, in->flags, in->vni, in->ifindex, in->endpoint_ip,
				  (void *)iph - (void *)eth, iph, cur->len, 0);
	if (ctx) {
		ctx->net_plen = in->net_plen;
		mz_trace_mark(ctx, iph);
	}
	return ctx;
}

static __always_inline void finish(void)
{
	struct mz_plugin_ctx *ctx = mz_plugin_ctx_get();

	if (ctx)
		bpf_map_update_elem(&harness_output, &(__u32){ 0 }, ctx, BPF_ANY);
}

SEC("xdp.frags")
int harness_continue_xdp(struct xdp_md *xdp)
{
	finish();
	return MZ_HARNESS_XDP_FORWARD;
}

SEC("tc")
int harness_continue_tc(struct __sk_buff *skb)
{
	finish();
	return MZ_HARNESS_TC_FORWARD;
}

SEC("xdp.frags")
int harness_xdp(struct xdp_md *xdp)
{
	struct mz_cursor cur = mz_cursor_init(xdp);
	struct mz_plugin_ctx *ctx = begin(&cur);

	if (!ctx)
		return XDP_ABORTED;
	if (ctx->hook == MZ_HOOK_INGRESS)
		bpf_tail_call(xdp, &harness_ingress, 0);
	else if (ctx->hook == MZ_HOOK_TRANSIT)
		bpf_tail_call(xdp, &harness_transit, 0);
	else
		bpf_tail_call(xdp, &harness_egress, 0);
	finish(); /* no chain */
	return MZ_HARNESS_XDP_FORWARD;
}

SEC("tc")
int harness_tc(struct __sk_buff *skb)
{
	struct mz_cursor cur;
	struct mz_plugin_ctx *ctx;

	bpf_skb_pull_data(skb, skb->len < 128 ? skb->len : 128);
	cur = mz_cursor_init_skb(skb);
	ctx = begin(&cur);
	if (!ctx)
		return TC_ACT_UNSPEC;
	bpf_tail_call(skb, &harness_egress_tc, 0);
	finish();
	return MZ_HARNESS_TC_FORWARD;
}

char LICENSE[] SEC("license") = "GPL";
