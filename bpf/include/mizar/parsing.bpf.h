/* SPDX-License-Identifier: Apache-2.0 */
/* This file contains cursor-based header parsers (kernel-only), after xdp-tutorial. */
#ifndef MIZAR_PARSING_BPF_H
#define MIZAR_PARSING_BPF_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "geneve.h"

/* Geneve options parsed before giving up; the cap exists for the verifier. */
#ifndef MZ_GENEVE_MAX_OPTS
#define MZ_GENEVE_MAX_OPTS 8
#endif

#define MZ_IP_MF 0x2000
#define MZ_IP_OFFSET 0x1fff

/* Parse errors: negative so that callers can tell them from protocols. */
enum mz_parse_err {
	MZ_ERR_TRUNCATED = -1,
	MZ_ERR_MALFORMED = -2,
	MZ_ERR_CRITICAL = -3,
	MZ_ERR_BAD_OPTION = -4,
};

/*
 * Where the next header starts and where the linear packet data ends. With
 * multi-buffer frames (xdp.frags) the packet continues past `end`: `len` is its
 * whole length, so length fields are checked against it, headers against `end`.
 */
struct mz_cursor {
	void *pos;
	void *end;
	void *start;
	__u32 len;
};

/* TC: the cursor over an skb (headers in its linear part). */
static __always_inline struct mz_cursor mz_cursor_init_skb(struct __sk_buff *skb)
{
	struct mz_cursor c = {
		.pos = (void *)(long)skb->data,
		.end = (void *)(long)skb->data_end,
		.start = (void *)(long)skb->data,
		.len = skb->len,
	};
	return c;
}

static __always_inline struct mz_cursor mz_cursor_init(struct xdp_md *ctx)
{
	struct mz_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
		.start = (void *)(long)ctx->data,
		.len = bpf_xdp_get_buff_len(ctx),
	};
	return c;
}

/* What the Geneve option walk found. */
struct mz_geneve_info {
	__u32 vni;
	__u8 has_rts;
	__u8 unknown_opts;
	__u16 rts_off; /* where the RTS body is in the packet (a relay rewrites it) */
	struct mz_geneve_rts rts;
};

/* Returns the EtherType (host order) or MZ_ERR_TRUNCATED. */
static __always_inline int mz_parse_eth(struct mz_cursor *c, struct ethhdr **eth)
{
	struct ethhdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return MZ_ERR_TRUNCATED;
	c->pos = h + 1;
	*eth = h;
	return bpf_ntohs(h->h_proto);
}

/* Returns the IP protocol, MZ_ERR_TRUNCATED or MZ_ERR_MALFORMED. */
static __always_inline int mz_parse_ipv4(struct mz_cursor *c, struct iphdr **iph)
{
	struct iphdr *h = c->pos;
	__u32 hlen, tot;

	if ((void *)(h + 1) > c->end)
		return MZ_ERR_TRUNCATED;
	if (h->version != 4 || h->ihl < 5)
		return MZ_ERR_MALFORMED;
	hlen = h->ihl * 4;
	if (c->pos + hlen > c->end)
		return MZ_ERR_TRUNCATED;
	tot = bpf_ntohs(h->tot_len);
	if (tot < hlen)
		return MZ_ERR_MALFORMED;
	/* Ethernet padding may follow the datagram; a datagram past the frame may not. */
	if ((__u32)(c->pos - c->start) + tot > c->len)
		return MZ_ERR_TRUNCATED;
	c->pos += hlen;
	*iph = h;
	return h->protocol;
}

static __always_inline int mz_ipv4_is_later_fragment(const struct iphdr *iph)
{
	return (bpf_ntohs(iph->frag_off) & MZ_IP_OFFSET) != 0;
}

/* Returns the UDP destination port (host order) or MZ_ERR_TRUNCATED. */
static __always_inline int mz_parse_udp(struct mz_cursor *c, struct udphdr **udph)
{
	struct udphdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return MZ_ERR_TRUNCATED;
	c->pos = h + 1;
	*udph = h;
	return bpf_ntohs(h->dest);
}

/* Reads one option TLV at c->pos; returns its total length or an error. */
static __always_inline int mz_parse_geneve_opt(struct mz_cursor *c, void *opts_end,
					       struct mz_geneve_info *info)
{
	struct mz_geneve_opt *o = c->pos;
	struct mz_geneve_rts *rts;
	__u32 len;

	if ((void *)(o + 1) > opts_end || (void *)(o + 1) > c->end)
		return MZ_ERR_BAD_OPTION;
	len = sizeof(*o) + MZ_GENEVE_OPT_WORDS(o) * 4;
	if (c->pos + len > opts_end)
		return MZ_ERR_BAD_OPTION;

	if (o->opt_class == bpf_htons(MZ_GENEVE_OPT_CLASS) && o->type == MZ_GENEVE_OPT_RTS) {
		rts = (void *)(o + 1);
		if (MZ_GENEVE_OPT_WORDS(o) != MZ_GENEVE_OPT_RTS_WORDS || (void *)(rts + 1) > c->end)
			return MZ_ERR_BAD_OPTION;
		info->rts = *rts;
		info->has_rts = 1;
		info->rts_off = (void *)rts - c->start;
	} else if (o->type & MZ_GENEVE_OPT_CRITICAL) {
		return MZ_ERR_CRITICAL;
	} else {
		info->unknown_opts++;
	}
	return len;
}

/*
 * Parses the Geneve header and walks its options as TLVs.
 * Returns the payload protocol (host order) or a negative mz_parse_err;
 * on success c->pos is the start of the payload.
 */
static __always_inline int mz_parse_geneve(struct mz_cursor *c, struct mz_geneve_info *info)
{
	struct mz_geneve_hdr *g = c->pos;
	void *opts_end;
	int i, len;

	if ((void *)(g + 1) > c->end)
		return MZ_ERR_TRUNCATED;
	if (MZ_GENEVE_VER(g) != MZ_GENEVE_VERSION)
		return MZ_ERR_MALFORMED;
	info->vni = (g->vni[0] << 16) | (g->vni[1] << 8) | g->vni[2];
	opts_end = (void *)(g + 1) + MZ_GENEVE_OPTLEN(g) * 4;
	c->pos = g + 1;

	for (i = 0; i < MZ_GENEVE_MAX_OPTS; i++) { /* bounded for the verifier */
		if (c->pos >= opts_end)
			break;
		len = mz_parse_geneve_opt(c, opts_end, info);
		if (len < 0)
			return len;
		c->pos += len;
	}
	/*
	 * Checked after the walk, not before: had the compiler seen
	 * opts_end <= end it would drop the per-option end checks the verifier needs.
	 */
	if (opts_end > c->end)
		return MZ_ERR_BAD_OPTION;
	/* Options past the cap are skipped unless the header flags a critical one. */
	if (c->pos < opts_end && (g->flags & 0x40))
		return MZ_ERR_CRITICAL;
	c->pos = opts_end;
	return bpf_ntohs(g->proto);
}

#endif /* MIZAR_PARSING_BPF_H */
