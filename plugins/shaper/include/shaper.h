/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains the shaper plugin's table, shared by its BPF program and its Swift
 * library: one token bucket per (VPC, endpoint, direction), refilled at `rate` bytes per
 * second up to `burst` bytes. A frame takes its length in tokens or is dropped.
 */
#ifndef MIZAR_SHAPER_H
#define MIZAR_SHAPER_H

#include <linux/types.h>
#include <linux/bpf.h>

#define SHAPER_OBJECT "shaper.bpf.o"
#define SHAPER_BUCKETS_MAP "shaper_buckets"
#define SHAPER_MAX_BUCKETS 65536
/* Rates above this (100 Gbit/s) would overflow the refill arithmetic. */
#define SHAPER_MAX_RATE 12500000000ULL

enum shaper_reason {
	SHAPER_REASON_RATE = 1, /* no tokens left: rate-limited */
};

enum shaper_direction { SHAPER_EGRESS = 0, SHAPER_INGRESS = 1 };

struct shaper_key {
	__u32 vni;
	__be32 ip;
	__u32 direction;
};

struct shaper_bucket {
	struct bpf_spin_lock lock; /* buckets are shared by every CPU */
	__u32 pad;
	__u64 rate;   /* bytes per 2^30 ns (bytes per second * 2^30 / 10^9): no division per frame */
	__u64 burst;  /* bytes */
	__u64 tokens; /* bytes */
	__u64 last_ns;
};

#endif /* MIZAR_SHAPER_H */
