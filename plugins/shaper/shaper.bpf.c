// SPDX-License-Identifier: Apache-2.0
/*
 * shaper: a token bucket per endpoint and direction (include/shaper.h), kept as GCRA: the
 * bucket of the endpoint the frame belongs to (sender at egress, receiver at ingress) is
 * charged the frame's length with one compare-and-swap, so every CPU shares one bucket
 * without a lock. Frames without tokens are dropped as rate-limited.
 */
#include <mizar/plugin.h>

#include "shaper.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHAPER_MAX_BUCKETS * SHAPER_GENERATIONS);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* memory for the generation being written only while it is */
	__type(key, struct shaper_key);
	__type(value, struct shaper_bucket);
} shaper_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shaper_generation);
} shaper_generation SEC(".maps");

#define SHAPER_CAS_TRIES 4

static __always_inline int shaper(struct mz_pkt *pkt)
{
	const struct mz_plugin_ctx *c = pkt->ctx;
	const struct shaper_generation *live;
	struct shaper_key key = {
		.vni = c->vni,
		.ip = c->endpoint_ip,
		.direction = c->hook == MZ_HOOK_EGRESS ? SHAPER_EGRESS : SHAPER_INGRESS,
	};
	struct shaper_bucket *b;
	__u64 now, cost, old, next;
	int i;

	if (c->flags & MZ_CTX_EXTERNAL)
		return MZ_CONTINUE;
	live = bpf_map_lookup_elem(&shaper_generation, &(__u32){ 0 });
	key.generation = live ? live->generation & 1 : 0;
	b = bpf_map_lookup_elem(&shaper_buckets, &key);
	if (!b)
		return MZ_CONTINUE; /* not shaped */
	now = bpf_ktime_get_ns();
	cost = ((__u64)(pkt->len & 0x3ffff) * b->ns_per_byte_q20) >> 20;
	for (i = 0; i < SHAPER_CAS_TRIES; i++) {
		old = b->tat;
		next = (old > now ? old : now) + cost;
		if (next - now > b->burst_ns)
			break; /* no tokens */
		if (__sync_val_compare_and_swap(&b->tat, old, next) == old)
			return MZ_CONTINUE;
	}
	return mz_drop(pkt, SHAPER_REASON_RATE);
}

MZ_PLUGIN(shaper)
