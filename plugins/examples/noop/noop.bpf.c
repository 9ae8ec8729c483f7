// SPDX-License-Identifier: Apache-2.0
/*
 * noop: the smallest plugin there is. Every frame continues; what it costs is the chain's
 * own price per stage (context, counters, tail call), which `make bench` measures with it.
 */
#include <mizar/plugin.h>

static __always_inline int noop(struct mz_pkt *pkt)
{
	return MZ_CONTINUE;
}

MZ_PLUGIN(noop)
