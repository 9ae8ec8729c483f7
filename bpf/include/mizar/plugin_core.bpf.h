/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains the maps every stage of a chain shares (kernel-only): the per-CPU
 * context and the plugin counters (and, through trace.bpf.h, the trace ring). The core
 * objects and every plugin define them; user space makes them one map per droplet
 * (bpf_map__reuse_fd).
 */
#ifndef MIZAR_PLUGIN_CORE_BPF_H
#define MIZAR_PLUGIN_CORE_BPF_H

#include <linux/bpf.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>

#include "plugin_abi.h"
#include "trace.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mz_plugin_ctx);
} mz_plugin_ctx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MZ_PLUGIN_STATS_SLOTS);
	__type(key, __u32);
	__type(value, struct mz_plugin_stats);
} mz_plugin_stats SEC(".maps");

/* This CPU's chain context (never NULL for a one-entry array, but the verifier asks). */
static __always_inline struct mz_plugin_ctx *mz_plugin_ctx_get(void)
{
	return bpf_map_lookup_elem(&mz_plugin_ctx, &(__u32){ 0 });
}

/*
 * The core fills the context before it tail-calls a hook's chain; `iph` lies at `l3_off`
 * in the frame. Returns NULL only if the map is missing a value.
 */
static __always_inline struct mz_plugin_ctx *
mz_plugin_ctx_begin(__u32 hook, __u32 flags, __u32 vni, __u32 ifindex, __be32 endpoint_ip,
		    __u16 l3_off, const struct iphdr *iph, __u32 len, __u16 core_stat)
{
	struct mz_plugin_ctx *ctx = mz_plugin_ctx_get();

	if (!ctx)
		return NULL;
	ctx->abi = MZ_PLUGIN_ABI_VERSION;
	ctx->hook = hook;
	ctx->flags = flags | ((iph->frag_off & bpf_htons(0x1fff)) ? MZ_CTX_FRAGMENT : 0);
	ctx->vni = vni;
	ctx->ifindex = ifindex;
	ctx->endpoint_ip = endpoint_ip;
	ctx->steer_ip = 0;
	ctx->len = len;
	ctx->l3_off = l3_off;
	ctx->l4_off = l3_off + iph->ihl * 4;
	ctx->l4_proto = iph->protocol;
	ctx->net_plen = 0;
	ctx->core_stat = core_stat;
	return ctx;
}

#endif /* MIZAR_PLUGIN_CORE_BPF_H */
