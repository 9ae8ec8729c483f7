// SPDX-License-Identifier: Apache-2.0
/*
 * port_guard: drops TCP and UDP frames to the destination ports in its table; everything
 * else continues down the chain. One configuration map and named drop reasons: the shape
 * `mizarctl plugin new` starts a plugin from (docs/plugins.md).
 */
#include <mizar/plugin.h>

/* The configuration: destination port (network order) -> protocol blocked on it
 * (IPPROTO_TCP, IPPROTO_UDP, or 0 for both). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __be16);
	__type(value, __u8);
} port_guard_ports SEC(".maps");

/* Drop reasons; their names are in port_guard.plugin.yaml (`reasons:`). */
#define PORT_GUARD_BLOCKED 1
#define PORT_GUARD_TRUNCATED 2

static __always_inline int port_guard(struct mz_pkt *pkt)
{
	__u8 proto = pkt->ctx->l4_proto, *blocked;
	__be16 sport, dport;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return MZ_CONTINUE;
	if (pkt->ctx->flags & MZ_CTX_FRAGMENT)
		return MZ_CONTINUE; /* later fragments carry no ports */
	if (mz_ports(pkt, &sport, &dport) < 0)
		return mz_drop(pkt, PORT_GUARD_TRUNCATED); /* a guard that cannot read the port does not guess */
	blocked = bpf_map_lookup_elem(&port_guard_ports, &dport);
	if (blocked && (*blocked == 0 || *blocked == proto))
		return mz_drop(pkt, PORT_GUARD_BLOCKED);
	return MZ_CONTINUE;
}

MZ_PLUGIN(port_guard)
