// SPDX-License-Identifier: Apache-2.0
/* Test object: one map of each type MizarBPF wraps, and a program that counts into one. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct lpm_key {
	__u32 prefixlen;
	__u32 addr;
};

#define MAP(name, kind, k, v, n)                                                                   \
	struct {                                                                                   \
		__uint(type, kind);                                                                \
		__uint(max_entries, n);                                                            \
		__type(key, k);                                                                    \
		__type(value, v);                                                                  \
	} name SEC(".maps")

MAP(test_hash, BPF_MAP_TYPE_HASH, __u32, __u64, 200000);
MAP(test_array, BPF_MAP_TYPE_ARRAY, __u32, __u64, 16);
MAP(test_lru, BPF_MAP_TYPE_LRU_HASH, __u32, __u64, 64);
MAP(test_percpu_hash, BPF_MAP_TYPE_PERCPU_HASH, __u32, __u64, 64);
MAP(test_percpu_array, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, 4);
MAP(test_lru_percpu, BPF_MAP_TYPE_LRU_PERCPU_HASH, __u32, __u64, 64);

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, __u32);
} test_lpm SEC(".maps");

/* Counts every packet in slot 0 of test_percpu_array, then returns what test_array[0] says. */
SEC("xdp")
int count_packets(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&test_percpu_array, &zero);
	__u64 *verdict = bpf_map_lookup_elem(&test_array, &zero);

	if (n)
		(*n)++;
	return verdict && *verdict ? (int)*verdict : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
