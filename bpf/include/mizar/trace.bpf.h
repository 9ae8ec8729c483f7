/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains the trace maps every program that emits events shares (kernel-only):
 * the ring buffer and the count of events it had no room for. The core objects and every
 * plugin define them; user space makes them one of each per droplet (bpf_map__reuse_fd).
 */
#ifndef MIZAR_TRACE_BPF_H
#define MIZAR_TRACE_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "trace.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, MZ_TRACE_RING_BYTES);
} mz_trace_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} mz_trace_lost SEC(".maps");

/* Sends `ev`, stamped now; an event the ring has no room for is counted, never waited for. */
static __always_inline void mz_trace_emit(struct mz_trace_event *ev)
{
	__u64 *lost;

	ev->ts_ns = bpf_ktime_get_ns();
	if (!bpf_ringbuf_output(&mz_trace_events, ev, sizeof(*ev), 0))
		return;
	lost = bpf_map_lookup_elem(&mz_trace_lost, &(__u32){ 0 });
	if (lost)
		(*lost)++;
}

#endif /* MIZAR_TRACE_BPF_H */
