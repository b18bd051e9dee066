/* The batch syscall program (batch.c; bpf/batch.bpf.c, layout in bpf/batch_ops.h). */
#ifndef BPFTREE_SHIM_BATCH_H
#define BPFTREE_SHIM_BATCH_H

#include <stddef.h>
#include <stdint.h>

struct bt_batch;

/** Loads the batch program from an ELF object in memory. On failure writes libbpf's last message. */
int bt_batch_open(const void *object, size_t size, struct bt_batch **out, char *message, size_t message_size);
void bt_batch_close(struct bt_batch *batch);
uint32_t bt_batch_max_ops(void);
uint32_t bt_batch_data_size(void);
/** The program's data area: key and value bytes referenced by update ops. */
uint8_t *bt_batch_data(struct bt_batch *batch);
void bt_batch_put_create(struct bt_batch *batch, uint32_t index, uint32_t map_type, uint32_t key_size,
			 uint32_t value_size, uint32_t max_entries, uint32_t map_flags, uint32_t numa_node,
			 uint64_t map_extra, const char *name);
void bt_batch_put_update(struct bt_batch *batch, uint32_t index, uint32_t create_index, uint32_t key_off,
			 uint32_t value_off, uint32_t value_len, uint64_t flags);
void bt_batch_put_freeze(struct bt_batch *batch, uint32_t index, uint32_t create_index);
/** Op `index`: LINK_CREATE of program `prog_fd` on `target` (a cgroup, namespace or perf event fd, an
 *  interface index for XDP and tcx, 0 for an iterator) with `attach_type` and `flags` (XDP: the mode; tcx:
 *  the position); `args`: link_create's bytes after flags (at most 48: a tcx link's relative_id, a
 *  uprobe_multi's pointers into this process's memory, which must stay valid until the run);
 *  `info`/`info_len`: the iterator's bpf_iter_link_info, copied into the data area at `info_off` (len 0:
 *  none; then args apply). */
void bt_batch_put_link(struct bt_batch *batch, uint32_t index, int prog_fd, uint32_t target, uint32_t attach_type,
		       uint32_t flags, const void *args, uint32_t args_len, uint32_t info_off, const void *info,
		       uint32_t info_len);
/** Op `index`: BPF_RAW_TRACEPOINT_OPEN of program `prog_fd` at tracepoint `name`, read from this
 *  process's memory when the batch runs (it must stay valid until then). */
void bt_batch_put_raw_tracepoint(struct bt_batch *batch, uint32_t index, int prog_fd, const char *name);
/** Runs ops [0, nops) in one BPF_PROG_TEST_RUN; returns the number of failed ops or -errno. */
int bt_batch_run(struct bt_batch *batch, uint32_t nops);
/** Result of op `index` after a run: an fd for a create, 0 for update/freeze, or -errno. */
int32_t bt_batch_result(struct bt_batch *batch, uint32_t index);

#endif
