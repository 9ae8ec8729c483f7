// SPDX-License-Identifier: Apache-2.0
/*
 * Bench object: what failing closed costs a packet (issue 13), measured alone. Runs the
 * hot paths' own checks CHECKS_PER_RUN times on the frame it is given, over a droplet's
 * tables (user space hands it `droplets` and `droplet_index`), or the same loop without
 * them (`check_mode` 0) as the baseline:
 *   1: transit XDP's "is the outer source a droplet?" (a Geneve frame from one),
 *   2: the agent's "would this frame leaving the overlay reach the underlay?" (a droplet's
 *      address, or UDP 6081) on a frame for an outside host.
 */
#include "mizar/agent.bpf.h"

#define CHECKS_PER_RUN 64

const volatile __u32 check_mode = 0;

SEC("xdp")
int droplet_check(struct xdp_md *ctx)
{
	struct mz_cursor start = mz_cursor_init(ctx), cur;
	struct ethhdr *eth;
	struct iphdr *iph;
	int i;

	if (mz_parse_eth(&start, &eth) != ETH_P_IP || mz_parse_ipv4(&start, &iph) < 0)
		return XDP_ABORTED;
	/* Unrolled: straight-line checks, as on the hot path. A check that does not say what it
	 * should (a droplet; not the underlay) ends the run with XDP_DROP: the bench wants PASS. */
#pragma clang loop unroll(full)
	for (i = 0; i < CHECKS_PER_RUN; i++) {
		cur = start;
		if (check_mode == 1) {
			if (!mz_is_droplet(iph->saddr))
				return XDP_DROP;
		} else if (check_mode == 2) {
			if (mz_agent_to_underlay(&cur, iph, 0))
				return XDP_DROP;
		} else if (!iph->saddr || cur.pos == cur.end) { /* the loop, its loads and its cursor, nothing else */
			return XDP_DROP;
		}
		barrier_var(cur.pos);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
