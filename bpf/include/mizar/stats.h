/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains the counter value shared by every per-CPU statistics map, and the
 * shape of the lists that name their slots. A list is an X-macro of rows
 * X(SUFFIX, "name", kind, "what it counts"): the C enum, user space's names, each slot's
 * verdict and its documentation all come from that one row.
 */
#ifndef MIZAR_STATS_H
#define MIZAR_STATS_H

#include <linux/types.h>

/* One slot of a per-CPU counter array: user space sums it over CPUs. */
struct mz_counter {
	__u64 packets;
	__u64 bytes;
};

/* What the program does with a packet counted in a slot; events are counted beside an outcome. */
enum mz_stat_kind {
	MZ_STAT_PASS = 0, /* to the kernel stack */
	MZ_STAT_TX,	  /* back out of the interface it came in on */
	MZ_STAT_REDIRECT, /* out of another interface */
	MZ_STAT_DROP,
	MZ_STAT_EVENT, /* not an outcome: counted beside one */
};

/* One row of a slot list, for user space (BPF programs only need the enum). */
struct mz_stat_info {
	const char *name;
	enum mz_stat_kind kind;
	const char *doc;
};

/* Row expanders for the lists: the enum, and a lookup by slot for user space. */
#define MZ_STAT_ENUMERATOR(id, name, kind, doc) id,
#define MZ_STAT_INFO_CASE(id, name, kind, doc) \
	case id:                                \
		return (struct mz_stat_info){ name, kind, doc };

_Static_assert(sizeof(struct mz_counter) == 16, "mz_counter is two u64");

#endif /* MIZAR_STATS_H */
