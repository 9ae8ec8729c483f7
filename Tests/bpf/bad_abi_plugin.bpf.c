// SPDX-License-Identifier: Apache-2.0
/* Test plugin built for a plugin ABI that does not exist: user space must refuse it. */
#define MZ_PLUGIN_ABI_BUILT 99
#include <mizar/plugin.h>

static __always_inline int bad_abi(struct mz_pkt *pkt)
{
	return MZ_CONTINUE;
}

MZ_PLUGIN(bad_abi)
