// SPDX-License-Identifier: Apache-2.0
/*
 * shaper: a token bucket per endpoint and direction (include/shaper.h). The bucket of the
 * endpoint the frame belongs to (sender at egress, receiver at ingress) is refilled for
 * the time since its last frame and charged the frame's length under its spin lock, so
 * every CPU sees one bucket. Frames without tokens are dropped as rate-limited.
 */
#include <mizar/plugin.h>

#include "shaper.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHAPER_MAX_BUCKETS);
	__type(key, struct shaper_key);
	__type(value, struct shaper_bucket);
} shaper_buckets SEC(".maps");

#define NSEC_PER_SEC 1000000000ULL

static __always_inline int shaper(struct mz_pkt *pkt)
{
	const struct mz_plugin_ctx *c = pkt->ctx;
	struct shaper_key key = {
		.vni = c->vni,
		.ip = c->endpoint_ip,
		.direction = c->hook == MZ_HOOK_EGRESS ? SHAPER_EGRESS : SHAPER_INGRESS,
	};
	struct shaper_bucket *b;
	__u64 now, elapsed, tokens;
	int allowed;

	if (c->flags & MZ_CTX_EXTERNAL)
		return MZ_CONTINUE;
	b = bpf_map_lookup_elem(&shaper_buckets, &key);
	if (!b)
		return MZ_CONTINUE; /* not shaped */
	now = bpf_ktime_get_ns();
	bpf_spin_lock(&b->lock);
	elapsed = now - b->last_ns;
	if (elapsed >= NSEC_PER_SEC || !b->last_ns) /* idle for a second: a full bucket */
		tokens = b->burst;
	else
		tokens = b->tokens + ((elapsed * b->rate) >> 30);
	if (tokens > b->burst)
		tokens = b->burst;
	allowed = tokens >= pkt->len;
	if (allowed)
		tokens -= pkt->len;
	b->tokens = tokens;
	b->last_ns = now;
	bpf_spin_unlock(&b->lock);
	return allowed ? MZ_CONTINUE : mz_drop(pkt, SHAPER_REASON_RATE);
}

MZ_PLUGIN(shaper)
