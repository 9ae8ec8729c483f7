// SPDX-License-Identifier: Apache-2.0
/* Test plugin the verifier must reject: it reads the packet without a bounds check. */
#include <mizar/plugin.h>

static __always_inline int bad_verifier(struct mz_pkt *pkt)
{
	struct iphdr *iph = pkt->data + 14;

	return iph->ttl ? MZ_CONTINUE : mz_drop(pkt, 1);
}

MZ_PLUGIN(bad_verifier)
