/* SPDX-License-Identifier: Apache-2.0 */
/* This file contains the counter value shared by every per-CPU statistics map. */
#ifndef MIZAR_STATS_H
#define MIZAR_STATS_H

#include <linux/types.h>

/* One slot of a per-CPU counter array: user space sums it over CPUs. */
struct mz_counter {
	__u64 packets;
	__u64 bytes;
};

_Static_assert(sizeof(struct mz_counter) == 16, "mz_counter is two u64");

#endif /* MIZAR_STATS_H */
