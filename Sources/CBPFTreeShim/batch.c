/* The batch syscall program (bpf/batch.bpf.c): loaded with libbpf, its shared area filled and run. */
#define _GNU_SOURCE
#include "shim_batch.h"
#include "shim_token.h"
#include "shim_internal.h"
#include "batch_ops.h"
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <malloc.h>
#include <limits.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

/* ---- batch program ---- */

struct bt_batch {
	struct bpf_object *obj;
	int prog_fd;
	struct bt_batch_area *area;
	size_t area_size;
};

static __thread char *bt_log_buf;
static __thread size_t bt_log_size;

static int bt_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	/* Keep the last warning: it names what failed to load. */
	if (level == LIBBPF_WARN && bt_log_buf && bt_log_size)
		vsnprintf(bt_log_buf, bt_log_size, fmt, args);
	return 0;
}

int bt_batch_open(const void *object, size_t size, struct bt_batch **out, char *message, size_t message_size)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "bpftree_batch");
	struct bt_batch *batch;
	struct bpf_program *prog;
	struct bpf_map *map;
	size_t area_size = 0;
	int err;

	if (message && message_size)
		message[0] = '\0';
	bt_log_buf = message;
	bt_log_size = message_size;
	libbpf_set_print(bt_libbpf_print);

	batch = calloc(1, sizeof(*batch));
	if (!batch)
		return -ENOMEM;
	batch->obj = bpf_object__open_mem(object, size, &opts);
	if (!batch->obj) {
		err = -errno;
		goto fail;
	}
	err = bpf_object__load(batch->obj);
	if (err) {
		err = -errno;
		goto fail;
	}
	prog = bpf_object__find_program_by_name(batch->obj, "bt_batch");
	if (!prog) {
		err = -ENOENT;
		goto fail;
	}
	batch->prog_fd = bpf_program__fd(prog);
	bpf_object__for_each_map(map, batch->obj) {
		const char *name = bpf_map__name(map);
		size_t len = strlen(name);

		if (len >= 4 && strcmp(name + len - 4, ".bss") == 0) {
			/* libbpf 1.1 maps global data onto the kernel map only in load_skeleton; without a
			 * skeleton its copy is private, so map the kernel's memory ourselves. */
			long page = sysconf(_SC_PAGESIZE);
			void *mem;

			area_size = (bpf_map__value_size(map) + page - 1) / page * page;
			mem = mmap(NULL, area_size, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
			if (mem == MAP_FAILED) {
				err = -errno;
				goto fail;
			}
			batch->area = mem;
			batch->area_size = area_size;
		}
	}
	if (!batch->area || area_size < sizeof(struct bt_batch_area)) {
		err = -ENOENT;
		goto fail;
	}
	bt_log_buf = NULL;
	*out = batch;
	return 0;
fail:
	bt_log_buf = NULL;
	if (batch->area)
		munmap(batch->area, batch->area_size);
	bpf_object__close(batch->obj);
	free(batch);
	return err ? err : -EINVAL;
}

void bt_batch_close(struct bt_batch *batch)
{
	if (!batch)
		return;
	munmap(batch->area, batch->area_size);
	bpf_object__close(batch->obj);
	free(batch);
}

uint32_t bt_batch_max_ops(void)
{
	return BT_BATCH_MAX_OPS;
}

uint32_t bt_batch_data_size(void)
{
	return BT_BATCH_DATA_SIZE;
}

uint8_t *bt_batch_data(struct bt_batch *batch)
{
	return batch->area->data;
}

void bt_batch_put_create(struct bt_batch *batch, uint32_t index, uint32_t map_type, uint32_t key_size,
			 uint32_t value_size, uint32_t max_entries, uint32_t map_flags, uint32_t numa_node,
			 uint64_t map_extra, const char *name)
{
	struct bt_op *op = &batch->area->ops[index % BT_BATCH_MAX_OPS];

	memset(op, 0, sizeof(*op));
	op->kind = BT_OP_MAP_CREATE;
	op->map_type = map_type;
	op->key_size = key_size;
	op->value_size = value_size;
	op->max_entries = max_entries;
	op->map_flags = map_flags;
	op->numa_node = numa_node;
	op->map_extra = map_extra;
	if (name)
		strncpy(op->map_name, name, sizeof(op->map_name) - 1);
}

void bt_batch_put_update(struct bt_batch *batch, uint32_t index, uint32_t create_index, uint32_t key_off,
			 uint32_t value_off, uint32_t value_len, uint64_t flags)
{
	struct bt_op *op = &batch->area->ops[index % BT_BATCH_MAX_OPS];

	memset(op, 0, sizeof(*op));
	op->kind = BT_OP_MAP_UPDATE;
	op->ref = create_index;
	op->key_off = key_off;
	op->value_off = value_off;
	op->value_len = value_len;
	op->update_flags = (uint32_t)flags;
}

void bt_batch_put_freeze(struct bt_batch *batch, uint32_t index, uint32_t create_index)
{
	struct bt_op *op = &batch->area->ops[index % BT_BATCH_MAX_OPS];

	memset(op, 0, sizeof(*op));
	op->kind = BT_OP_MAP_FREEZE;
	op->ref = create_index;
}

void bt_batch_put_link(struct bt_batch *batch, uint32_t index, int prog_fd, uint32_t target, uint32_t attach_type,
		       uint32_t flags, const void *args, uint32_t args_len, uint32_t info_off, const void *info,
		       uint32_t info_len)
{
	struct bt_op *op;

	if (index >= BT_BATCH_MAX_OPS)
		return;
	op = &batch->area->ops[index];
	memset(op, 0, sizeof(*op));
	op->kind = BT_OP_LINK_CREATE;
	op->prog_fd = prog_fd;
	/* link_create.target_fd and target_ifindex are one union member. */
	op->target_fd = target;
	op->attach_type = attach_type;
	op->link_flags = flags;
	if (args_len <= sizeof(op->link_args) && args)
		memcpy(op->link_args, args, args_len);
	if (info_len && info_off <= BT_BATCH_DATA_SIZE && info_len <= BT_BATCH_DATA_SIZE - info_off) {
		memcpy(batch->area->data + info_off, info, info_len);
		op->info_off = info_off;
		op->info_len = info_len;
	}
}

void bt_batch_put_raw_tracepoint(struct bt_batch *batch, uint32_t index, int prog_fd, const char *name)
{
	struct bt_op *op;
	uint64_t address = (uint64_t)(uintptr_t)name;

	if (index >= BT_BATCH_MAX_OPS)
		return;
	op = &batch->area->ops[index];
	memset(op, 0, sizeof(*op));
	op->kind = BT_OP_RAW_TP_OPEN;
	op->prog_fd = prog_fd;
	memcpy(op->link_args, &address, sizeof(address));
}

int bt_batch_run(struct bt_batch *batch, uint32_t nops)
{
	struct bt_batch_ctx ctx = { .nops = nops, .token_fd = bt_token_active() };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx));

	if (nops > BT_BATCH_MAX_OPS)
		return -E2BIG;
	if (bpf_prog_test_run_opts(batch->prog_fd, &opts) < 0)
		return -errno;
	if (ctx.magic != BT_BATCH_MAGIC || ctx.ran != nops)
		return -EPROTO;
	return (int)ctx.failed;
}

int32_t bt_batch_result(struct bt_batch *batch, uint32_t index)
{
	return batch->area->results[index % BT_BATCH_MAX_OPS];
}
