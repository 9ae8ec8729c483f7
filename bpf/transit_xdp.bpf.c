// SPDX-License-Identifier: Apache-2.0
/*
 * Transit XDP: the program on a droplet's substrate interface (DESIGN §4, ingress).
 * This first version parses Ethernet/IPv4/UDP/Geneve, counts each packet by
 * outcome and passes everything to the stack.
 */
#include "mizar/parsing.bpf.h"
#include "mizar/transit_xdp.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mz_transit_stats);
} transit_stats SEC(".maps");

static __always_inline void count(struct mz_transit_stats *s, __u32 slot, __u64 bytes)
{
	if (slot < MZ_TRANSIT_STAT_MAX) { /* bound for the verifier */
		s->slot[slot].packets++;
		s->slot[slot].bytes += bytes;
	}
}

/* Maps a Geneve parse error to its counter slot. */
static __always_inline __u32 geneve_err_stat(int err)
{
	switch (err) {
	case MZ_ERR_CRITICAL:
		return MZ_TRANSIT_GENEVE_CRITICAL;
	case MZ_ERR_BAD_OPTION:
		return MZ_TRANSIT_BAD_GENEVE_OPT;
	default:
		return MZ_TRANSIT_BAD_GENEVE;
	}
}

SEC("xdp.frags")
int transit_xdp(struct xdp_md *ctx)
{
	struct mz_cursor cur = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	struct mz_geneve_info gnv = {};
	struct mz_transit_stats *stats;
	struct ethhdr *eth, *inner;
	struct udphdr *udp;
	struct iphdr *iph;
	__u32 stat;
	int ret;

	ret = mz_parse_eth(&cur, &eth);
	if (ret < 0) {
		stat = MZ_TRANSIT_BAD_ETH;
		goto out;
	}
	if (ret != ETH_P_IP) {
		stat = MZ_TRANSIT_NON_IPV4;
		goto out;
	}
	ret = mz_parse_ipv4(&cur, &iph);
	if (ret < 0) {
		stat = MZ_TRANSIT_BAD_IPV4;
		goto out;
	}
	if (ret != IPPROTO_UDP) {
		stat = MZ_TRANSIT_NON_UDP;
		goto out;
	}
	if (mz_ipv4_is_later_fragment(iph)) {
		stat = MZ_TRANSIT_IPV4_FRAGMENT;
		goto out;
	}
	ret = mz_parse_udp(&cur, &udp);
	if (ret < 0) {
		stat = MZ_TRANSIT_BAD_UDP;
		goto out;
	}
	if (ret != MZ_GENEVE_UDP_PORT) {
		stat = MZ_TRANSIT_NON_GENEVE;
		goto out;
	}
	ret = mz_parse_geneve(&cur, &gnv);
	if (ret < 0) {
		stat = geneve_err_stat(ret);
		goto out;
	}
	if (ret != MZ_GENEVE_PROTO_ETH) {
		stat = MZ_TRANSIT_GENEVE_PROTO;
		goto out;
	}
	if (mz_parse_eth(&cur, &inner) < 0) {
		stat = MZ_TRANSIT_BAD_INNER;
		goto out;
	}
	stat = MZ_TRANSIT_GENEVE;
out:
	stats = bpf_map_lookup_elem(&transit_stats, &(__u32){0});
	if (stats) {
		count(stats, stat, bpf_xdp_get_buff_len(ctx));
		/* Options count only for packets that parsed whole. */
		if (stat == MZ_TRANSIT_GENEVE && gnv.has_rts)
			count(stats, MZ_TRANSIT_OPT_RTS, 0);
		if (stat == MZ_TRANSIT_GENEVE && gnv.unknown_opts)
			count(stats, MZ_TRANSIT_OPT_UNKNOWN, 0);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
