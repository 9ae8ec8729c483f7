// SPDX-License-Identifier: Apache-2.0
/*
 * Bench plugin: writes the saved original headers back over the frame, so that test-run
 * repetitions (which reuse the buffer a rewriting plugin changed) all see the same input.
 * Measured as chain [X, restore] against [noop, restore]: its own cost cancels out.
 */
#include <mizar/plugin.h>

#define RESTORE_LEN 54 /* Ethernet + IPv4 + TCP, or more than Ethernet + IPv4 + UDP */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[RESTORE_LEN]);
} restore_frame SEC(".maps");

static __always_inline int restore(struct mz_pkt *pkt)
{
	__u8 *saved = bpf_map_lookup_elem(&restore_frame, &(__u32){ 0 });

	if (!saved)
		return mz_drop(pkt, 1);
	if (pkt->is_skb)
		bpf_skb_store_bytes(pkt->raw, 0, saved, RESTORE_LEN, 0);
	else
		bpf_xdp_store_bytes(pkt->raw, 0, saved, RESTORE_LEN);
	return MZ_CONTINUE;
}

MZ_PLUGIN(restore)
