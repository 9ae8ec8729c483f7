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

/*
 * Sends `ev`, stamped now; an event the ring has no room for is counted, never waited for.
 * The reader is woken only once MZ_TRACE_WAKEUP_BYTES wait (it polls on its own besides):
 * a wakeup per event would cost the producer more than the event.
 */
static __always_inline void mz_trace_emit(struct mz_trace_event *ev)
{
	__u64 flags = bpf_ringbuf_query(&mz_trace_events, BPF_RB_AVAIL_DATA) >= MZ_TRACE_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP
												 : BPF_RB_NO_WAKEUP;
	__u64 *lost;

	ev->ts_ns = bpf_ktime_get_ns();
	if (!bpf_ringbuf_output(&mz_trace_events, ev, sizeof(*ev), flags))
		return;
	lost = bpf_map_lookup_elem(&mz_trace_lost, &(__u32){ 0 });
	if (lost)
		(*lost)++;
}

#endif /* MIZAR_TRACE_BPF_H */
