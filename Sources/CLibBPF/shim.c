// Shims over libbpf for calls Swift cannot make directly (varargs, option macros, BTF walks).
#include "CLibBPF.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static __thread char *capture_buf;
static __thread size_t capture_len;
static __thread int capture_on;

static int mz_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	va_list again;
	int n;

	if (!capture_on) {
		if (level != LIBBPF_DEBUG && getenv("MIZAR_LIBBPF_DEBUG"))
			return vfprintf(stderr, fmt, args);
		return 0;
	}
	if (level == LIBBPF_DEBUG)
		return 0;
	/* Measure first: a verifier log arrives as one message of many kilobytes. */
	va_copy(again, args);
	n = vsnprintf(NULL, 0, fmt, args);
	if (n <= 0) {
		va_end(again);
		return n;
	}
	char *grown = realloc(capture_buf, capture_len + n + 1);
	if (!grown) {
		va_end(again);
		return 0;
	}
	capture_buf = grown;
	vsnprintf(capture_buf + capture_len, n + 1, fmt, again);
	va_end(again);
	capture_len += n;
	return n;
}

void mz_libbpf_capture_begin(void)
{
	static int installed;

	if (!__atomic_exchange_n(&installed, 1, __ATOMIC_SEQ_CST))
		libbpf_set_print(mz_print);
	free(capture_buf);
	capture_buf = NULL;
	capture_len = 0;
	capture_on = 1;
}

char *mz_libbpf_capture_end(void)
{
	char *out = capture_buf;

	capture_on = 0;
	capture_buf = NULL;
	capture_len = 0;
	return out;
}

/* The bytes of `const volatile` variable `name` in libbpf's image of .rodata, before load. */
static void *rodata_var(struct bpf_object *obj, const char *name, size_t size, int *err)
{
	const struct btf_var_secinfo *vs;
	const struct btf_type *sec, *var;
	struct bpf_map *map;
	const struct btf *btf;
	size_t map_size;
	void *data;
	int id, i;

	*err = -ENOENT;
	btf = bpf_object__btf(obj);
	if (!btf)
		return NULL;
	bpf_object__for_each_map(map, obj) {
		if (!bpf_map__is_internal(map))
			continue;
		const char *mname = bpf_map__name(map);
		size_t mlen = strlen(mname);
		if (mlen < 7 || strcmp(mname + mlen - 7, ".rodata") != 0)
			continue;
		if (bpf_map__fd(map) >= 0) {
			*err = -EBUSY;
			return NULL;
		}
		id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
		if (id < 0)
			return NULL;
		sec = btf__type_by_id(btf, id);
		vs = btf_var_secinfos(sec);
		for (i = 0; i < btf_vlen(sec); i++, vs++) {
			var = btf__type_by_id(btf, vs->type);
			if (strcmp(btf__name_by_offset(btf, var->name_off), name) != 0)
				continue;
			*err = -EINVAL;
			if (vs->size != size)
				return NULL;
			/* Before load the initial value is libbpf's writable image of .rodata. */
			data = (void *)bpf_map__initial_value(map, &map_size);
			if (!data || vs->offset + size > map_size)
				return NULL;
			*err = 0;
			return (char *)data + vs->offset;
		}
	}
	return NULL;
}

int mz_bpf_object_set_rodata(struct bpf_object *obj, const char *name, const void *value,
			     size_t size)
{
	int err;
	void *var = rodata_var(obj, name, size, &err);

	if (var)
		memcpy(var, value, size);
	return err;
}

int mz_bpf_object_get_rodata(struct bpf_object *obj, const char *name, void *value, size_t size)
{
	int err;
	void *var = rodata_var(obj, name, size, &err);

	if (var)
		memcpy(value, var, size);
	return err;
}

int mz_map_create(enum bpf_map_type type, const char *name, __u32 key_size, __u32 value_size,
		  __u32 max_entries)
{
	int fd = bpf_map_create(type, name, key_size, value_size, max_entries, NULL);

	return fd < 0 ? -errno : fd;
}

int mz_xdp_link_create(int prog_fd, int ifindex, __u32 xdp_flags)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = xdp_flags);
	int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);

	return fd < 0 ? -errno : fd;
}

static struct bpf_tc_hook tc_hook(int ifindex, int ingress)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	return hook;
}

int mz_tc_attach(int ifindex, int ingress, int prog_fd, __u32 handle, __u32 priority)
{
	struct bpf_tc_hook hook = tc_hook(ifindex, ingress);
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .handle = handle, .priority = priority,
		    .flags = BPF_TC_F_REPLACE);
	int err = bpf_tc_hook_create(&hook);

	if (err && err != -EEXIST)
		return err;
	return bpf_tc_attach(&hook, &opts);
}

int mz_tc_detach(int ifindex, int ingress, __u32 handle, __u32 priority)
{
	struct bpf_tc_hook hook = tc_hook(ifindex, ingress);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);

	return bpf_tc_detach(&hook, &opts);
}

int mz_tc_query(int ifindex, int ingress, __u32 handle, __u32 priority, __u32 *prog_id)
{
	struct bpf_tc_hook hook = tc_hook(ifindex, ingress);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);
	int err = bpf_tc_query(&hook, &opts);

	*prog_id = err ? 0 : opts.prog_id;
	/* An empty slot answers ENOENT, or EINVAL once the last filter of the hook is gone. */
	return err == -ENOENT || err == -EINVAL ? 0 : err;
}

/* BPF_PROG_TEST_RUN with `ctx` as the program's context (xdp_md or __sk_buff). */
static int test_run(int prog_fd, struct mz_test_run *run, void *ctx, size_t ctx_size)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = run->data_in,
		.data_size_in = run->data_size_in,
		.data_out = run->data_out,
		.data_size_out = run->data_size_out,
		.ctx_in = ctx,
		.ctx_size_in = ctx_size,
		.repeat = run->repeat,
		.flags = run->flags,
		.batch_size = run->batch_size,
	);
	int err = bpf_prog_test_run_opts(prog_fd, &opts);

	if (err)
		return -errno;
	run->retval = opts.retval;
	run->duration = opts.duration;
	run->data_size_out = opts.data_size_out;
	return 0;
}

int mz_xdp_test_run(int prog_fd, struct mz_test_run *run)
{
	struct xdp_md ctx = {
		.data = 0,
		.data_end = run->data_size_in,
		.ingress_ifindex = run->ingress_ifindex,
		.rx_queue_index = run->rx_queue,
	};

	return test_run(prog_fd, run, &ctx, sizeof(ctx));
}

int mz_map_info(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, len);
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
}

int mz_prog_info(int fd, struct bpf_prog_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, len);
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
}

int mz_xdp_query(int ifindex, __u8 *attach_mode, __u32 *prog_id, __u32 *drv_id, __u32 *skb_id)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, opts);
	int err = bpf_xdp_query(ifindex, 0, &opts);

	if (err)
		return err < 0 ? err : -err;
	*attach_mode = opts.attach_mode;
	*prog_id = opts.prog_id;
	*drv_id = opts.drv_prog_id;
	*skb_id = opts.skb_prog_id;
	return 0;
}

int mz_map_update_batch(int fd, const void *keys, const void *values, __u32 *count)
{
	return bpf_map_update_batch(fd, keys, values, count, NULL) ? -errno : 0;
}

int mz_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values,
			__u32 *count)
{
	return bpf_map_lookup_batch(fd, in_batch, out_batch, keys, values, count, NULL) ? -errno
										      : 0;
}

int mz_skb_test_run(int prog_fd, struct mz_test_run *run)
{
	/* skb->dev is the device `ifindex` names (when > 1), in the caller's netns. */
	struct __sk_buff ctx = { .ifindex = run->ingress_ifindex };

	run->flags = 0;
	run->batch_size = 0;
	return test_run(prog_fd, run, &ctx, sizeof(ctx));
}
