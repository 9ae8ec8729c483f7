/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains what tracing shares with user space (docs/observability.md): the
 * filter the daemon writes, and the event the core programs and plugins emit into a ring
 * buffer for each decision on matching traffic. Tracing is off while the filter's flags
 * are 0; then a program reads the filter once per packet and nothing else.
 */
#ifndef MIZAR_TRACE_H
#define MIZAR_TRACE_H

#include <linux/types.h>

#define MZ_TRACE_MAP "mz_trace"		      /* cores: array[1] of struct mz_trace_filter */
#define MZ_TRACE_EVENTS_MAP "mz_trace_events" /* cores and plugins: ring buffer of struct mz_trace_event */
#define MZ_TRACE_LOST_MAP "mz_trace_lost"     /* cores and plugins: per-CPU __u64, events the ring had no room for */
#define MZ_TRACE_RING_BYTES (1 << 20)
#define MZ_TRACE_WAKEUP_BYTES (64 << 10) /* a reader blocked in poll is woken once this much waits */

/* struct mz_trace_filter.flags */
#define MZ_TRACE_ON 0x1	 /* tracing: drops of matching frames */
#define MZ_TRACE_ALL 0x2 /* every decision on matching frames, not only drops */

struct mz_trace_filter {
	__u32 flags;
	__u32 vni;    /* only this VPC (0: any) */
	__be32 ip;    /* only frames from or to this (inner) address (0: any) */
	__u32 sample; /* one matching frame in `sample` (0 or 1: all) */
};

/* Who decided. */
enum mz_trace_source {
	MZ_TRACE_TRANSIT = 1, /* transit XDP: reason is an enum mz_transit_stat */
	MZ_TRACE_AGENT,	      /* the transit agent: reason is an enum mz_agent_stat */
	MZ_TRACE_PLUGIN,      /* a plugin: reason is its code, slot its (hook, plugin) counter slot */
};

struct mz_trace_event {
	__u64 ts_ns;	/* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u32 vni;	/* 0 when unknown (an endpoint's frame dropped before admission) */
	__be32 saddr;	/* the (inner) IPv4 header's; 0 when the frame has none */
	__be32 daddr;
	__be16 sport;	/* TCP/UDP ports, the ICMP echo id as both; 0 otherwise */
	__be16 dport;
	__u32 ifindex;	/* the endpoint's host-side veth when the program knows it, else 0 */
	__u32 len;	/* the frame's length */
	__u16 reason;
	__u16 slot;
	__u8 source;	/* enum mz_trace_source */
	__u8 hook;	/* enum mz_hook (plugins) */
	__u8 verdict;	/* core: enum mz_stat_kind; plugin: enum mz_verdict */
	__u8 proto;	/* IPPROTO_* of the (inner) IPv4 header */
};

_Static_assert(sizeof(struct mz_trace_event) == 40, "mz_trace_event layout");

#endif /* MIZAR_TRACE_H */
