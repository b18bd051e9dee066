/* Op layout shared by the batch syscall program (bpf/batch.bpf.c) and the user-space shim
 * (Sources/CBPFTreeShim). User space writes ops and data into the program's global data (.bss, mmapped),
 * runs the program once with BPF_PROG_TEST_RUN, and reads one result per op back. */
#ifndef BPFTREE_BATCH_OPS_H
#define BPFTREE_BATCH_OPS_H

#include <linux/types.h>

/* Capacity of one run. Bounded so the .bss stays well under KMALLOC_MAX_SIZE (4 MiB). */
#define BT_BATCH_MAX_OPS 8192
#define BT_BATCH_DATA_SIZE (1u << 20)

enum bt_op_kind {
	BT_OP_MAP_CREATE = 1, /* result: new map fd (in the caller's fd table) or -errno */
	BT_OP_MAP_UPDATE = 2, /* ref: index of the create op; key/value taken from bt_data */
	BT_OP_MAP_FREEZE = 3, /* ref: index of the create op */
	BT_OP_LINK_CREATE = 5, /* prog_fd, target_fd, attach_type, link_flags; info_off/info_len: the
				* iterator's bpf_iter_link_info in bt_data (len 0: none), else link_args;
				* result: new link fd or -errno */
	BT_OP_RAW_TP_OPEN = 6, /* prog_fd; link_args: the tracepoint name's address in the caller's memory
				* (the kernel copies it from user memory; the program runs in the caller's
				* context); result: new link fd or -errno */
};

/* Bytes of link_create after flags: a tcx link's relative_id, a uprobe_multi's user pointers. */
#define BT_LINK_ARGS_SIZE 48

struct bt_op {
	__u32 kind;
	__u32 ref;
	/* BT_OP_MAP_CREATE */
	__u32 map_type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 map_flags;
	__u32 numa_node;
	__u64 map_extra;
	char map_name[16];
	/* BT_OP_MAP_UPDATE: offsets into bt_data; value_len is the full value as the kernel copies it
	 * (round_up(value_size, 8) * possible CPUs for per-CPU maps). */
	__u32 key_off;
	__u32 value_off;
	__u32 value_len;
	__u32 update_flags;
	/* BT_OP_LINK_CREATE: fds in the caller's fd table (the program runs in its context). */
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 link_flags;
	__u32 info_off;
	__u32 info_len;
	/* link_create's union after flags when there is no info (user pointers are the caller's). */
	__u8 link_args[BT_LINK_ARGS_SIZE];
};

/* The program's global data: the only variable in its .bss, so user space finds it at offset 0 of the
 * mmapped .bss map. */
struct bt_batch_area {
	struct bt_op ops[BT_BATCH_MAX_OPS];
	__s32 results[BT_BATCH_MAX_OPS];
	__u8 data[BT_BATCH_DATA_SIZE];
};

/* The program's ctx (BPF_PROG_TEST_RUN copies it back). */
struct bt_batch_ctx {
	__u32 nops;  /* in: ops to run */
	__u32 ran;   /* out: ops attempted */
	__u32 failed; /* out: ops whose result is negative */
	__u32 magic; /* out: BT_BATCH_MAGIC, proves the program ran */
	__s32 token_fd; /* in: a BPF token for map creation (in the caller's fd table), or -1 */
};

#define BT_BATCH_MAGIC 0xb7f7ee01u

#endif
