// SPDX-License-Identifier: Apache-2.0
/*
 * Bench object: random lookups in a droplet's endpoint table (user space hands it the
 * droplet's `endpoints` map). Keys are 10.0.0.0 + [0, lookup_count) in VNI 100, so each
 * run touches scattered entries the way real traffic does, not one cached key.
 */
#include "mizar/dataplane_maps.bpf.h"

#define LOOKUPS_PER_RUN 64

const volatile __u32 lookup_count = 1;
const volatile __u32 lookup_vni = 100;

SEC("xdp")
int endpoint_lookup(struct xdp_md *ctx)
{
	struct mz_endpoint_key key = { .vni = lookup_vni };
	int i;

	for (i = 0; i < LOOKUPS_PER_RUN; i++) {
		key.ip = bpf_htonl(0x0a000000 + bpf_get_prandom_u32() % lookup_count);
		/* XDP_PASS only when every key was present: the bench checks it. */
		if (!bpf_map_lookup_elem(&endpoints, &key))
			return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
