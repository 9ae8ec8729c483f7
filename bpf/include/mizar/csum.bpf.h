/* SPDX-License-Identifier: Apache-2.0 */
/* This file contains the Internet checksum helpers (kernel-only): folding and RFC 1624 updates. */
#ifndef MIZAR_CSUM_BPF_H
#define MIZAR_CSUM_BPF_H

#include <linux/types.h>

static __always_inline __u16 mz_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* RFC 1624 incremental update of `check` for a 32-bit field changing from `from` to `to`. */
static __always_inline void mz_csum_replace4(__sum16 *check, __u32 from, __u32 to)
{
	__u32 sum = (__u16)~*check;

	sum += (__u16)~from + (__u16)~(from >> 16) + (to & 0xffff) + (to >> 16);
	*check = mz_csum_fold(sum);
}

static __always_inline void mz_csum_replace2(__sum16 *check, __u16 from, __u16 to)
{
	__u32 sum = (__u16)~*check;

	sum += (__u16)~from + to;
	*check = mz_csum_fold(sum);
}

#endif /* MIZAR_CSUM_BPF_H */
