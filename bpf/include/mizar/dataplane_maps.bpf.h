/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains the data-plane maps (kernel-only). Transit XDP and the transit
 * agent both include it; user space creates one set per droplet with the first
 * object it loads and hands the same maps to the second (bpf_map__reuse_fd).
 * max_entries here are defaults: user space sets the real sizes before load.
 */
#ifndef MIZAR_DATAPLANE_MAPS_BPF_H
#define MIZAR_DATAPLANE_MAPS_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "dataplane.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mz_droplet);
} droplet SEC(".maps");

/* Hash without preallocation: a bouncer's million endpoints cost memory only when present. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MZ_DEFAULT_ENDPOINTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct mz_endpoint_key);
	__type(value, struct mz_endpoint);
} endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MZ_DEFAULT_LOCAL_ENDPOINTS);
	__type(key, __u32); /* ifindex of the host-side veth */
	__type(value, struct mz_local_endpoint);
} local_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MZ_DEFAULT_NETWORKS);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* required by LPM tries */
	__type(key, struct mz_network_key);
	__type(value, struct mz_network);
} networks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MZ_DEFAULT_VPCS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); /* VNI */
	__type(value, struct mz_vpc);
} vpcs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MZ_DEFAULT_DIRECT_PATHS);
	__type(key, struct mz_endpoint_key);
	__type(value, struct mz_direct_path);
} direct_path SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MZ_DEFAULT_DROPLETS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __be32); /* underlay IPv4 address */
	__type(value, struct mz_droplet_addr);
} droplets SEC(".maps");

/* Benchmarks' baseline only (`*_trusting.bpf.o`): the underlay checks compile out. A
 * build-time switch, so the programs in service do not pay a load for it per packet. */
#ifndef MZ_TRUST_UNDERLAY
#define MZ_TRUST_UNDERLAY 0
#endif

static __always_inline const struct mz_droplet *mz_droplet(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&droplet, &zero);
}

/* The known droplet at underlay address `ip`, or NULL. */
static __always_inline const struct mz_droplet_addr *mz_known_droplet(__be32 ip)
{
	return bpf_map_lookup_elem(&droplets, &ip);
}

/* `droplet_index` (dataplane.h): user space shares and writes the section's map like a table. */
struct mz_droplet_index mz_droplet_index SEC(".data.droplet_index") = {
	.slot = { [0] = { .word = MZ_DROPLET_SLOT_EMPTY(0) } },
};

/* True when `ip` is the address of a known droplet: one load, unless another droplet ends
 * in the same octet (then a lookup in `droplets`). */
static __always_inline int mz_is_droplet(__be32 ip)
{
	const struct mz_droplet_slot *slot = &mz_droplet_index.slot[bpf_ntohl(ip) & (MZ_DROPLET_INDEX_SLOTS - 1)];
	/* Read once: user space rewrites the slot under the running program. */
	__u64 word = *(volatile const __u64 *)&slot->word;

	/* A shared slot never equals an address: its sign bit sends every address to the hash. */
	if (word == (__u32)ip)
		return 1;
	return (__s64)word < 0 && mz_known_droplet(ip);
}

/* The network of the VPC holding `ip` (longest prefix), or NULL. */
static __always_inline const struct mz_network *mz_network_of(__u32 vni, __be32 ip)
{
	struct mz_network_key key = { .prefixlen = 64, .vni = vni, .ip = ip };

	return bpf_map_lookup_elem(&networks, &key);
}

/* True when a and b share the first plen bits (same network). */
static __always_inline int mz_same_network(__be32 a, __be32 b, __u8 plen)
{
	__u32 mask = plen >= 32 ? 0xffffffff : plen ? ~((1u << (32 - plen)) - 1) : 0;

	return ((bpf_ntohl(a) ^ bpf_ntohl(b)) & mask) == 0;
}

/*
 * One of `count` droplets chosen by `hash`; NULL when there is none. `max` is a power
 * of two: the mask bounds the index for the verifier (user space never stores count > max).
 */
static __always_inline const struct mz_droplet_addr *
mz_pick(const struct mz_droplet_addr *set, __u32 count, __u32 max, __u32 hash)
{
	if (count == 0)
		return NULL;
	return &set[(hash % count) & (max - 1)];
}

/*
 * With a transit chain, the divider that judges a flow with an end on divider `self`
 * when the flow hashes to `self` (whose frames to itself would never come back from the
 * wire): the next divider of the VPC's list. The agent sends that end's frames there and
 * transit XDP relays the other end's there, so both directions meet one chain. NULL when
 * the flow hashes elsewhere (that divider judges it) or the VPC has no other divider.
 */
static __always_inline const struct mz_droplet_addr *mz_peer_divider(const struct mz_vpc *vpc, __u32 hash, __be32 self)
{
	__u32 k;

	/* No upper check: the masks bound the indices (user space never stores more than the maximum). */
	if (vpc->divider_count < 2)
		return NULL;
	k = (hash % vpc->divider_count) & (MZ_MAX_DIVIDERS - 1);
	if (vpc->dividers[k].ip != self)
		return NULL;
	return &vpc->dividers[((k + 1) % vpc->divider_count) & (MZ_MAX_DIVIDERS - 1)];
}

/* Per-endpoint counters (struct mz_endpoint_stats), by the slot user space gives each local endpoint. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MZ_DEFAULT_ENDPOINT_STATS);
	__type(key, __u32);
	__type(value, struct mz_endpoint_stats);
} endpoint_stats SEC(".maps");

/* The counters of endpoint slot `slot`, or NULL for slot 0 (an endpoint that is not counted). */
static __always_inline struct mz_endpoint_stats *mz_endpoint_stats_of(__u16 slot)
{
	__u32 key = slot;

#ifdef MZ_NO_ENDPOINT_STATS /* make bench's baseline: the same programs without per-endpoint counters */
	return NULL;
#endif
	return slot ? bpf_map_lookup_elem(&endpoint_stats, &key) : NULL;
}

/* A frame delivered to the endpoint of `slot`. */
static __always_inline void mz_endpoint_received(__u16 slot, __u64 bytes)
{
	struct mz_endpoint_stats *s = mz_endpoint_stats_of(slot);

	if (s) {
		s->received.packets++;
		s->received.bytes += bytes;
	}
}

#endif /* MIZAR_DATAPLANE_MAPS_BPF_H */
