// SPDX-License-Identifier: GPL-2.0
/* Batch syscall program: creates, fills and freezes maps and creates links inside the kernel, one
 * BPF_PROG_TEST_RUN for a whole batch. Pinning is not possible from here (bpf_sys_bpf refuses OBJ_PIN), so
 * user space pins the fds this program leaves in its fd table. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "batch_ops.h"

#define EINVAL 22
#define ECANCELED 125

char LICENSE[] SEC("license") = "GPL";

struct bt_batch_area bt_area;

#define bt_ops bt_area.ops
#define bt_results bt_area.results
#define bt_data bt_area.data

struct bt_state {
	__u32 ran;
	__u32 failed;
	__s32 token_fd;
};

/* BPF_MAP_CREATE's attr up to map_token_fd (Linux 6.9; the 6.1 uapi headers here end at map_extra). */
struct bt_map_create_attr {
	__u32 map_type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 map_flags;
	__u32 inner_map_fd;
	__u32 numa_node;
	char map_name[16];
	__u32 map_ifindex;
	__u32 btf_fd;
	__u32 btf_key_type_id;
	__u32 btf_value_type_id;
	__u32 btf_vmlinux_value_type_id;
	__u64 map_extra;
	__s32 value_type_btf_obj_fd;
	__s32 map_token_fd;
};

#define BT_F_TOKEN_FD (1U << 16)

/* token_fd >= 0: a BPF token in the caller's fd table, which the kernel checks instead of CAP_BPF. */
static long create_map(struct bt_op *op, __s32 token_fd)
{
	struct bt_map_create_attr attr = {};

	attr.map_type = op->map_type;
	attr.key_size = op->key_size;
	attr.value_size = op->value_size;
	attr.max_entries = op->max_entries;
	attr.map_flags = op->map_flags;
	attr.numa_node = op->numa_node;
	attr.map_extra = op->map_extra;
	__builtin_memcpy(attr.map_name, op->map_name, sizeof(attr.map_name));
	if (token_fd >= 0) {
		attr.map_flags |= BT_F_TOKEN_FD;
		attr.map_token_fd = token_fd;
	}
	return bpf_sys_bpf(BPF_MAP_CREATE, &attr, sizeof(attr));
}

/* The fd of the map created by op `ref`, or -errno when that op failed or ref is not an earlier op. */
static long ref_fd(__u32 i, __u32 ref)
{
	if (ref >= i || ref >= BT_BATCH_MAX_OPS)
		return -EINVAL;
	if (bt_ops[ref].kind != BT_OP_MAP_CREATE)
		return -EINVAL;
	if (bt_results[ref] < 0)
		return -ECANCELED;
	return bt_results[ref];
}

static long update_elem(__u32 i, struct bt_op *op)
{
	union bpf_attr attr = {};
	long fd = ref_fd(i, op->ref);
	__u32 key_size, key_off = op->key_off, value_off = op->value_off, value_len = op->value_len;

	if (fd < 0)
		return fd;
	key_size = bt_ops[op->ref & (BT_BATCH_MAX_OPS - 1)].key_size;
	/* The kernel copies key_size and value_len bytes from these addresses: keep both inside bt_data. */
	if (key_off > BT_BATCH_DATA_SIZE || key_size > BT_BATCH_DATA_SIZE - key_off)
		return -EINVAL;
	if (value_off > BT_BATCH_DATA_SIZE || value_len > BT_BATCH_DATA_SIZE - value_off)
		return -EINVAL;
	attr.map_fd = fd;
	attr.key = key_size ? (__u64)(unsigned long)&bt_data[key_off] : 0;
	attr.value = (__u64)(unsigned long)&bt_data[value_off];
	attr.flags = op->update_flags;
	return bpf_sys_bpf(BPF_MAP_UPDATE_ELEM, &attr, sizeof(attr));
}

static long freeze_map(__u32 i, struct bt_op *op)
{
	union bpf_attr attr = {};
	long fd = ref_fd(i, op->ref);

	if (fd < 0)
		return fd;
	attr.map_fd = fd;
	return bpf_sys_bpf(BPF_MAP_FREEZE, &attr, sizeof(attr));
}

/* A link of a program (fd) to a cgroup or namespace (target fd), an interface (target ifindex, with a tcx
 * link's relative_id) or an iterator (bpf_iter_link_info in bt_data). */
static long create_link(struct bt_op *op)
{
	union bpf_attr attr = {};
	__u32 off = op->info_off, len = op->info_len;

	attr.link_create.prog_fd = op->prog_fd;
	attr.link_create.target_fd = op->target_fd;
	attr.link_create.attach_type = op->attach_type;
	attr.link_create.flags = op->link_flags;
	if (len) {
		/* The kernel copies len bytes from this address: keep them inside bt_data. */
		if (off > BT_BATCH_DATA_SIZE || len > BT_BATCH_DATA_SIZE - off)
			return -EINVAL;
		attr.link_create.iter_info = (__u64)(unsigned long)&bt_data[off];
		attr.link_create.iter_info_len = len;
	} else {
		/* The union (tcx, perf_event, uprobe_multi: 6.6 and later) starts where 6.1 headers put
		 * target_btf_id. */
		__builtin_memcpy(&attr.link_create.target_btf_id, op->link_args, BT_LINK_ARGS_SIZE);
	}
	return bpf_sys_bpf(BPF_LINK_CREATE, &attr, sizeof(attr));
}

/* A raw tracepoint link: its name is read from the caller's memory, as BPF_RAW_TRACEPOINT_OPEN reads it. */
static long open_raw_tracepoint(struct bt_op *op)
{
	union bpf_attr attr = {};

	__builtin_memcpy(&attr.raw_tracepoint.name, op->link_args, sizeof(__u64));
	attr.raw_tracepoint.prog_fd = op->prog_fd;
	return bpf_sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &attr, sizeof(attr));
}

static long run_op(__u32 i, struct bt_state *st)
{
	struct bt_op *op;
	long ret;

	if (i >= BT_BATCH_MAX_OPS)
		return 1;
	op = &bt_ops[i];
	switch (op->kind) {
	case BT_OP_MAP_CREATE:
		ret = create_map(op, st->token_fd);
		break;
	case BT_OP_MAP_UPDATE:
		ret = update_elem(i, op);
		break;
	case BT_OP_MAP_FREEZE:
		ret = freeze_map(i, op);
		break;
	case BT_OP_LINK_CREATE:
		ret = create_link(op);
		break;
	case BT_OP_RAW_TP_OPEN:
		ret = open_raw_tracepoint(op);
		break;
	default:
		ret = -EINVAL;
	}
	bt_results[i] = ret;
	st->ran++;
	if (ret < 0)
		st->failed++;
	return 0;
}

SEC("syscall")
int bt_batch(struct bt_batch_ctx *ctx)
{
	struct bt_state st = { .token_fd = ctx->token_fd };
	__u32 n = ctx->nops;

	if (n > BT_BATCH_MAX_OPS)
		n = BT_BATCH_MAX_OPS;
	bpf_loop(n, run_op, &st, 0);
	ctx->ran = st.ran;
	ctx->failed = st.failed;
	ctx->magic = BT_BATCH_MAGIC;
	return 0;
}
