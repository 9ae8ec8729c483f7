// SPDX-License-Identifier: Apache-2.0
/*
 * Test plugin: shifts its stamp (a nibble from its config map) into the IPv4 ID, so the
 * ID a frame leaves with spells the order of the chain it crossed (a, b, c -> 0x0abc).
 * Stamp 0xf drops, 0xe passes. The header checksum is updated, so real traffic crosses it.
 */
#include <mizar/plugin.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} stamp SEC(".maps");

static __always_inline int stamp_plugin(struct mz_pkt *pkt)
{
	struct iphdr *iph = mz_ipv4(pkt);
	__u32 *value = bpf_map_lookup_elem(&stamp, &(__u32){ 0 });

	if (!iph || !value)
		return mz_drop(pkt, 1);
	if (*value == 0xf)
		return mz_drop(pkt, 3);
	if (*value == 0xe)
		return MZ_PASS;
	__be16 id = bpf_htons((bpf_ntohs(iph->id) << 4) | (*value & 0xf));

	mz_csum_replace2(&iph->check, iph->id, id);
	iph->id = id;
	return MZ_CONTINUE;
}

MZ_PLUGIN(stamp_plugin)
