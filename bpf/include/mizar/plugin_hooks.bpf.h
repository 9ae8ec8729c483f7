/* SPDX-License-Identifier: Apache-2.0 */
/* This file contains what only the cores that host chains need (kernel-only): plugins never include it. */
#ifndef MIZAR_PLUGIN_HOOKS_BPF_H
#define MIZAR_PLUGIN_HOOKS_BPF_H

#include "plugin_core.bpf.h"

/*
 * Whether `hook` has a chain, so that a core without one skips filling the context and
 * the tail call (user space sets it after a root is filled and clears it before a root
 * is emptied; either way a frame in between is handled correctly).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MZ_HOOK_MAX);
	__type(key, __u32);
	__type(value, __u32);
} mz_chain_active SEC(".maps");

static __always_inline int mz_chain_is_active(__u32 hook)
{
	__u32 *active = bpf_map_lookup_elem(&mz_chain_active, &hook);

	return active && *active;
}

#endif /* MIZAR_PLUGIN_HOOKS_BPF_H */
