/* libbpf as seen from Swift: its headers plus a few shims for what Swift cannot call. */
#ifndef CLIBBPF_H
#define CLIBBPF_H

#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <stddef.h>
#include <sys/vfs.h>
#include <net/if.h>

/* Starts collecting libbpf's messages on this thread (they are silent otherwise). */
void mz_libbpf_capture_begin(void);
/* Stops collecting and returns what was said (caller frees), or NULL. */
char *mz_libbpf_capture_end(void);

/*
 * Writes a `const volatile` global of an opened, not yet loaded object.
 * Returns 0, -ENOENT (no such variable), -EINVAL (size differs) or -EBUSY (loaded).
 */
int mz_bpf_object_set_rodata(struct bpf_object *obj, const char *name, const void *value,
			     size_t size);
/* Reads a `const volatile` global of an opened, not yet loaded object; same returns. */
int mz_bpf_object_get_rodata(struct bpf_object *obj, const char *name, void *value, size_t size);

/* A map made outside any object (bpf_map_create with default options): fd or -errno. */
int mz_map_create(enum bpf_map_type type, const char *name, __u32 key_size, __u32 value_size,
		  __u32 max_entries);

/* bpf_link_create() for XDP with the given XDP_FLAGS_* mode. */
int mz_xdp_link_create(int prog_fd, int ifindex, __u32 xdp_flags);

/* BPF_PROG_TEST_RUN for XDP: one call with every option, since Swift can't use LIBBPF_OPTS. */
struct mz_test_run {
	const void *data_in;
	__u32 data_size_in;
	void *data_out;      /* NULL in live-frames mode */
	__u32 data_size_out; /* in: capacity, out: length */
	__u32 ingress_ifindex;
	__u32 rx_queue;
	__u32 repeat;
	__u32 flags;
	__u32 batch_size;
	__u32 retval;   /* out */
	__u32 duration; /* out: ns per repetition */
};
/*
 * A TC classifier in direct-action mode on the clsact hook of `ifindex` (created when
 * missing), ingress or egress; replaces what holds the same handle/priority. 0 or -errno.
 */
int mz_tc_attach(int ifindex, int ingress, int prog_fd, __u32 handle, __u32 priority);
int mz_tc_detach(int ifindex, int ingress, __u32 handle, __u32 priority);
/* The id of the program at handle/priority, 0 when none. */
int mz_tc_query(int ifindex, int ingress, __u32 handle, __u32 priority, __u32 *prog_id);

int mz_xdp_test_run(int prog_fd, struct mz_test_run *run);
/* BPF_PROG_TEST_RUN of a TC program; ingress_ifindex becomes skb->dev. */
int mz_skb_test_run(int prog_fd, struct mz_test_run *run);

/* Info of a map, program or link fd, 0 or -errno. */
int mz_map_info(int fd, struct bpf_map_info *info);
int mz_prog_info(int fd, struct bpf_prog_info *info);

/* bpf_xdp_query() reduced to what Swift needs. */
int mz_xdp_query(int ifindex, __u8 *attach_mode, __u32 *prog_id, __u32 *drv_id, __u32 *skb_id);

/* Batch operations with the default flags. */
int mz_map_update_batch(int fd, const void *keys, const void *values, __u32 *count);
int mz_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values,
			__u32 *count);

#endif
