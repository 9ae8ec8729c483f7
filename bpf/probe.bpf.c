// SPDX-License-Identifier: Apache-2.0
/* Probe programs: capability checks, baselines and the live-frames traffic source. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "mizar/probe.h"

const volatile __u32 probe_verdict_value = XDP_PASS;
const volatile __u32 probe_redirect_ifindex = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} probe_chain SEC(".maps");

SEC("xdp.frags")
int probe_verdict(struct xdp_md *ctx)
{
	return probe_verdict_value;
}

SEC("xdp.frags")
int probe_tail(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &probe_chain, 0);
	return MZ_PROBE_TAIL_MISSED;
}

SEC("xdp.frags")
int probe_redirect(struct xdp_md *ctx)
{
	return bpf_redirect(probe_redirect_ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
