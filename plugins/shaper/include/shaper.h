/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains the shaper plugin's table, shared by its BPF program and its Swift
 * library: one token bucket per (VPC, endpoint, direction), refilled at `rate` bytes per
 * second up to `burst` bytes. A frame takes its length in tokens or is dropped.
 *
 * Buckets are keyed by the low bit of the configuration generation `shaper_generation`
 * names: a new set of limits is written beside the live one and switched to by one write,
 * so a packet never meets part of a configuration (the host's `GenerationalConfiguration`,
 * docs/plugins.md). A switch starts every bucket full.
 */
#ifndef MIZAR_SHAPER_H
#define MIZAR_SHAPER_H

#include <linux/types.h>

#define SHAPER_OBJECT "shaper.bpf.o"
#define SHAPER_BUCKETS_MAP "shaper_buckets"
#define SHAPER_GENERATION_MAP "shaper_generation"
#define SHAPER_MAX_BUCKETS 65536 /* of one configuration */
#define SHAPER_GENERATIONS 2	 /* the live configuration and the one being written */
/* Rates the cost arithmetic covers: 1 kbit/s to 100 Gbit/s, frames up to 256 KiB. */
#define SHAPER_MIN_RATE 125ULL
#define SHAPER_MAX_RATE 12500000000ULL

enum shaper_reason {
	SHAPER_REASON_RATE = 1, /* no tokens left: rate-limited */
};

enum shaper_direction { SHAPER_EGRESS = 0, SHAPER_INGRESS = 1 };

struct shaper_key {
	__u32 vni;
	__be32 ip;
	__u32 direction;
	__u32 generation; /* the configuration generation's low bit */
};

/* The live configuration generation (one entry): written last, it switches every bucket. */
struct shaper_generation {
	__u32 generation;
};

/*
 * The bucket as GCRA keeps it: a token bucket in time. `tat` is when the bucket would be
 * full again; a frame of `len` bytes pushes it `len * ns_per_byte` later and conforms when
 * that lands at most `burst_ns` ahead of now. One compare-and-swap per frame, no lock.
 */
struct shaper_bucket {
	__u64 tat;	       /* ns, bpf_ktime_get_ns clock */
	__u64 ns_per_byte_q20; /* ns per byte, times 2^20 */
	__u64 burst_ns;	       /* the burst, as time at the rate */
	__u64 rate;	       /* bytes per second, for readers */
};

#endif /* MIZAR_SHAPER_H */
