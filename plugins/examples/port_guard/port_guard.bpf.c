// SPDX-License-Identifier: Apache-2.0
/*
 * port_guard: an example plugin (docs/plugins.md). Drops TCP and UDP frames whose
 * destination port is in `port_guard_ports`, counting each drop under the reason code
 * stored with the port. Everything else continues down the chain.
 */
#include <mizar/plugin.h>

/* Destination port (network order) -> drop reason code (1..15). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __be16);
	__type(value, __u32);
} port_guard_ports SEC(".maps");

/* Reason for a TCP/UDP header cut short: a guard that cannot read the port does not guess. */
#define PORT_GUARD_TRUNCATED 15

static __always_inline int port_guard(struct mz_pkt *pkt)
{
	__be16 sport, dport;
	__u32 *reason;

	if (pkt->ctx->l4_proto != IPPROTO_TCP && pkt->ctx->l4_proto != IPPROTO_UDP)
		return MZ_CONTINUE;
	if (pkt->ctx->flags & MZ_CTX_FRAGMENT)
		return MZ_CONTINUE; /* later fragments carry no ports */
	if (mz_ports(pkt, &sport, &dport) < 0)
		return mz_drop(pkt, PORT_GUARD_TRUNCATED);
	reason = bpf_map_lookup_elem(&port_guard_ports, &dport);
	if (reason)
		return mz_drop(pkt, *reason);
	return MZ_CONTINUE;
}

MZ_PLUGIN(port_guard)
