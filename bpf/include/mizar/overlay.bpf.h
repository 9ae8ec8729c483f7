/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains the overlay helpers (kernel-only): checksums, the flow hash,
 * Geneve encapsulation with RTS, and the outer rewrite of a bounce.
 */
#ifndef MIZAR_OVERLAY_BPF_H
#define MIZAR_OVERLAY_BPF_H

#include "csum.bpf.h"
#include "parsing.bpf.h"
#include "dataplane.h"

#define MZ_IP_DF 0x4000

/* Everything the encapsulation puts in front of the inner frame (MZ_ENCAP_OVERHEAD bytes). */
struct mz_encap_hdr {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
	struct mz_geneve_hdr gnv;
	struct mz_geneve_opt opt;
	struct mz_geneve_rts rts;
} __attribute__((packed));

_Static_assert(sizeof(struct mz_encap_hdr) == MZ_ENCAP_OVERHEAD, "encap header size");

/* Checksum of an option-less IPv4 header (its check field must be 0). */
static __always_inline __u16 mz_ipv4_csum(const struct iphdr *iph)
{
	const __u16 *w = (const __u16 *)iph;
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)sizeof(*iph) / 2; i++)
		sum += w[i];
	return mz_csum_fold(sum);
}

/* Decrements the TTL with an incremental checksum update; -1 when it would reach 0. */
static __always_inline int mz_ipv4_decrement_ttl(struct iphdr *iph)
{
	__u16 *word = (__u16 *)&iph->ttl; /* ttl and protocol share one 16-bit word */
	__u16 old = *word;

	if (iph->ttl <= 1)
		return -1;
	iph->ttl--;
	mz_csum_replace2(&iph->check, old, *word);
	return 0;
}

static __always_inline __u32 mz_mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/*
 * Hash of the inner flow: addresses and protocol, plus the ports of a TCP/UDP packet
 * that is not a fragment (every fragment of a datagram hashes alike). Symmetric: a reply
 * hashes as its request, so both directions pick the same divider and bouncer (a
 * stateful transit chain sees the whole flow).
 */
static __always_inline __u32 mz_flow_hash(const struct iphdr *iph, const void *end)
{
	__u32 lo = iph->saddr < iph->daddr ? iph->saddr : iph->daddr;
	__u32 h = mz_mix32(lo ^ mz_mix32((iph->saddr ^ iph->daddr ^ lo) + iph->protocol));
	const __u16 *ports;
	__u16 plo, phi;

	if ((iph->protocol == IPPROTO_TCP || iph->protocol == IPPROTO_UDP) &&
	    !(iph->frag_off & bpf_htons(MZ_IP_MF | MZ_IP_OFFSET))) {
		ports = (const void *)iph + iph->ihl * 4;
		if ((const void *)(ports + 2) <= end) {
			plo = ports[0] < ports[1] ? ports[0] : ports[1];
			phi = ports[0] ^ ports[1] ^ plo;
			h = mz_mix32(h ^ ((__u32)plo << 16 | phi));
		}
	}
	return h;
}

static __always_inline void mz_copy_mac(__u8 *dst, const __u8 *src)
{
	__builtin_memcpy(dst, src, ETH_ALEN);
}

static __always_inline int mz_mac_equal(const __u8 *a, const __u8 *b)
{
	return *(const __u32 *)a == *(const __u32 *)b && *(const __u16 *)(a + 4) == *(const __u16 *)(b + 4);
}

/* Fills the outer headers for an inner frame of `inner_len` bytes, from this droplet to `to`. */
static __always_inline void mz_fill_encap(struct mz_encap_hdr *h, const struct mz_droplet *self,
					  const struct mz_droplet_addr *to, __u32 vni, __u32 hash,
					  __u32 inner_len)
{
	mz_copy_mac(h->eth.h_dest, to->mac);
	mz_copy_mac(h->eth.h_source, self->self.mac);
	h->eth.h_proto = bpf_htons(ETH_P_IP);

	h->ip.version = 4;
	h->ip.ihl = 5;
	h->ip.tos = 0;
	h->ip.tot_len = bpf_htons(inner_len + sizeof(*h) - sizeof(h->eth));
	h->ip.id = 0;
	h->ip.frag_off = bpf_htons(MZ_IP_DF);
	h->ip.ttl = MZ_OUTER_TTL;
	h->ip.protocol = IPPROTO_UDP;
	h->ip.check = 0;
	h->ip.saddr = self->self.ip;
	h->ip.daddr = to->ip;
	h->ip.check = mz_ipv4_csum((const void *)h + offsetof(struct mz_encap_hdr, ip));

	h->udp.source = bpf_htons(MZ_GENEVE_SPORT_MIN + hash % (MZ_GENEVE_SPORT_MAX - MZ_GENEVE_SPORT_MIN + 1));
	h->udp.dest = bpf_htons(MZ_GENEVE_UDP_PORT);
	h->udp.len = bpf_htons(inner_len + sizeof(*h) - sizeof(h->eth) - sizeof(h->ip));
	h->udp.check = 0;

	h->gnv.ver_optlen = (MZ_GENEVE_VERSION << 6) | ((sizeof(h->opt) + sizeof(h->rts)) / 4);
	h->gnv.flags = 0;
	h->gnv.proto = bpf_htons(MZ_GENEVE_PROTO_ETH);
	h->gnv.vni[0] = vni >> 16;
	h->gnv.vni[1] = vni >> 8;
	h->gnv.vni[2] = vni;
	h->gnv.reserved = 0;

	h->opt.opt_class = bpf_htons(MZ_GENEVE_OPT_CLASS);
	h->opt.type = MZ_GENEVE_OPT_RTS;
	h->opt.len = MZ_GENEVE_OPT_RTS_WORDS;
	h->rts.droplet_ip = self->self.ip;
	mz_copy_mac(h->rts.droplet_mac, self->self.mac);
	h->rts.zero[0] = 0;
	h->rts.zero[1] = 0;
}

/*
 * XDP: wraps the frame at ctx->data in Ethernet/IPv4/UDP/Geneve with this droplet's RTS,
 * addressed to `to`. Returns 0 or -1 (no headroom). Packet pointers are invalid afterwards.
 */
static __always_inline int mz_encap_xdp(struct xdp_md *ctx, const struct mz_droplet *self,
					const struct mz_droplet_addr *to, __u32 vni, __u32 hash)
{
	__u32 inner_len = bpf_xdp_get_buff_len(ctx);
	struct mz_encap_hdr *h;

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(*h)))
		return -1;
	h = (void *)(long)ctx->data;
	if ((void *)(h + 1) > (void *)(long)ctx->data_end)
		return -1;
	mz_fill_encap(h, self, to, vni, hash, inner_len);
	return 0;
}

/*
 * Readdresses an encapsulated packet from this droplet to `to` (bouncer, divider,
 * fallback): outer MACs, outer IPs, TTL. The RTS option stays: it names the droplet of
 * the inner source. Returns -1 when the outer TTL runs out (a loop between droplets).
 */
static __always_inline int mz_readdress(struct ethhdr *eth, struct iphdr *iph,
					const struct mz_droplet *self,
					const struct mz_droplet_addr *to)
{
	if (mz_ipv4_decrement_ttl(iph) < 0)
		return -1;
	mz_csum_replace4(&iph->check, iph->saddr, self->self.ip);
	iph->saddr = self->self.ip;
	mz_csum_replace4(&iph->check, iph->daddr, to->ip);
	iph->daddr = to->ip;
	mz_copy_mac(eth->h_dest, to->mac);
	mz_copy_mac(eth->h_source, self->self.mac);
	return 0;
}

#endif /* MIZAR_OVERLAY_BPF_H */
