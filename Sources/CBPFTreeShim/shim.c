#define _GNU_SOURCE
#include "bpftree_shim.h"
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

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef BPF_F_PATH_FD
#define BPF_F_PATH_FD (1U << 14)
#endif

static int neg_errno(long ret)
{
	return ret < 0 ? -errno : (int)ret;
}

const char *bt_errno_name(int error)
{
	return strerrorname_np(error);
}

int bt_getdents(int fd, void *buffer, size_t size)
{
	long ret;

	do
		ret = syscall(SYS_getdents64, fd, buffer, size);
	while (ret < 0 && errno == EINTR);
	return neg_errno(ret);
}

/* BPF_OBJ_PIN / BPF_OBJ_GET attr with path_fd: the 6.1 uapi headers on Debian 12 lack the field. */
struct bt_obj_attr {
	uint64_t pathname;
	uint32_t bpf_fd;
	uint32_t file_flags;
	int32_t path_fd;
	uint32_t pad;
};

int bt_obj_pin_at(int dirfd, const char *name, int fd)
{
	struct bt_obj_attr attr = {
		.pathname = (uint64_t)(uintptr_t)name,
		.bpf_fd = (uint32_t)fd,
		.file_flags = BPF_F_PATH_FD,
		.path_fd = dirfd,
	};
	return neg_errno(syscall(SYS_bpf, BPF_OBJ_PIN, &attr, sizeof(attr)));
}

int bt_obj_get_at(int dirfd, const char *name)
{
	struct bt_obj_attr attr = {
		.pathname = (uint64_t)(uintptr_t)name,
		.file_flags = BPF_F_PATH_FD,
		.path_fd = dirfd,
	};
	return neg_errno(syscall(SYS_bpf, BPF_OBJ_GET, &attr, sizeof(attr)));
}

int bt_fd_object_kind(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	if (strcmp(target, "anon_inode:bpf-map") == 0)
		return BT_OBJECT_MAP;
	if (strcmp(target, "anon_inode:bpf-prog") == 0)
		return BT_OBJECT_PROG;
	/* "bpf_link" before Linux 6.x renamed it "bpf-link". */
	if (strcmp(target, "anon_inode:bpf-link") == 0 || strcmp(target, "anon_inode:bpf_link") == 0)
		return BT_OBJECT_LINK;
	return BT_OBJECT_UNKNOWN;
}

static int fdinfo_frozen(int fd)
{
	char path[64], line[128];
	int frozen = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "frozen:", 7) == 0) {
			frozen = atoi(line + 7) != 0;
			break;
		}
	}
	fclose(f);
	return frozen;
}

int bt_map_info_by_fd(int fd, struct bt_map_info *out)
{
	struct bpf_map_info info;
	uint32_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return -errno;
	memset(out, 0, sizeof(*out));
	out->type = info.type;
	out->id = info.id;
	out->key_size = info.key_size;
	out->value_size = info.value_size;
	out->max_entries = info.max_entries;
	out->map_flags = info.map_flags;
	out->map_extra = info.map_extra;
	memcpy(out->name, info.name, sizeof(out->name));
	out->name[sizeof(out->name) - 1] = '\0';
	out->frozen = fdinfo_frozen(fd);
	return 0;
}

struct bt_open_how {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};

int bt_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve)
{
	struct bt_open_how how = { .flags = flags, .mode = mode, .resolve = resolve };
	long ret;

	do
		ret = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (ret < 0 && errno == EINTR);
	return neg_errno(ret);
}

int bt_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)
{
	return neg_errno(syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags));
}

/* chmod through /proc/self/fd of an O_PATH descriptor of the entry itself (never a lookup of its name
 * by path, never following a symlink): for seccomp profiles older than Linux 6.6 that answer fchmodat2
 * with ENOSYS or EPERM (podman's and Docker's defaults). */
static int bt_chmod_by_descriptor(int dirfd, const char *path, uint32_t mode, int flags)
{
	char proc[64];
	struct stat st;
	int fd, ret;

	if ((flags & BT_AT_EMPTY_PATH) && path[0] == '\0')
		fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	else
		fd = openat(dirfd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
	} else if (S_ISLNK(st.st_mode)) {
		ret = -ELOOP;
	} else {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		ret = chmod(proc, mode) < 0 ? -errno : 0;
	}
	close(fd);
	return ret;
}

int bt_fchmodat2(int dirfd, const char *path, uint32_t mode, int flags)
{
	int ret = neg_errno(syscall(SYS_fchmodat2, dirfd, path, mode, flags));

	if (ret == -ENOSYS || ret == -EPERM)
		return bt_chmod_by_descriptor(dirfd, path, mode, flags);
	return ret;
}

int bt_fstatfs_type(int fd, int64_t *type)
{
	struct statfs st;

	if (fstatfs(fd, &st) < 0)
		return -errno;
	*type = (int64_t)st.f_type;
	return 0;
}

long bt_raise_nofile_limit(void)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
		return -errno;
	if (limit.rlim_cur < limit.rlim_max) {
		limit.rlim_cur = limit.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
			getrlimit(RLIMIT_NOFILE, &limit);
	}
	return limit.rlim_cur > (rlim_t)LONG_MAX ? LONG_MAX : (long)limit.rlim_cur;
}

int bt_num_possible_cpus(void)
{
	return libbpf_num_possible_cpus();
}

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

void bt_batch_put_cgroup_exists(struct bt_batch *batch, uint32_t index, uint64_t cgroup_id)
{
	struct bt_op *op = &batch->area->ops[index % BT_BATCH_MAX_OPS];

	memset(op, 0, sizeof(*op));
	op->kind = BT_OP_CGROUP_EXISTS;
	op->map_extra = cgroup_id;
}

void bt_batch_put_link(struct bt_batch *batch, uint32_t index, int prog_fd, int target_fd, uint32_t attach_type,
		       uint32_t info_off, const void *info, uint32_t info_len)
{
	struct bt_op *op;

	if (index >= BT_BATCH_MAX_OPS)
		return;
	op = &batch->area->ops[index];
	memset(op, 0, sizeof(*op));
	op->kind = BT_OP_LINK_CREATE;
	op->prog_fd = prog_fd;
	op->target_fd = target_fd;
	op->attach_type = attach_type;
	if (info_len && info_off <= BT_BATCH_DATA_SIZE && info_len <= BT_BATCH_DATA_SIZE - info_off) {
		memcpy(batch->area->data + info_off, info, info_len);
		op->info_off = info_off;
		op->info_len = info_len;
	}
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

/* ---- maps from user space ---- */

int bt_map_create(uint32_t type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
		  uint32_t flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
	int fd = bpf_map_create((enum bpf_map_type)type, name, key_size, value_size, max_entries, &opts);

	return fd < 0 ? -errno : fd;
}

int bt_map_update(int fd, const void *key, const void *value, uint64_t flags)
{
	return bpf_map_update_elem(fd, key, value, flags) < 0 ? -errno : 0;
}

int bt_map_lookup(int fd, const void *key, void *value)
{
	return bpf_map_lookup_elem(fd, key, value) < 0 ? -errno : 0;
}

int bt_map_delete(int fd, const void *key)
{
	if (bpf_map_delete_elem(fd, key) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int bt_map_update_batch(int fd, const void *keys, const void *values, uint32_t count, uint64_t flags)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = flags);
	__u32 n = count;

	if (count == 0)
		return 0;
	return bpf_map_update_batch(fd, keys, values, &n, &opts) < 0 ? -errno : 0;
}

int bt_map_lookup_batch(int fd, void *in, void *out, void *keys, void *values, uint32_t *count)
{
	__u32 n = *count;
	int ret = bpf_map_lookup_batch(fd, in, out, keys, values, &n, NULL);

	*count = n;
	return ret < 0 ? -errno : 0;
}

int bt_map_count(int fd, uint32_t key_size, uint64_t *count)
{
	uint8_t key[512], next[512];
	void *prev = NULL;

	*count = 0;
	if (key_size > sizeof(key))
		return -E2BIG;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		(*count)++;
	}
	return errno == ENOENT ? 0 : -errno;
}

int bt_map_copy(int src, int dst, uint32_t key_size, uint32_t value_len, uint64_t *copied)
{
	uint8_t key[512], next[512];
	void *prev = NULL, *value;
	int ret = 0;

	*copied = 0;
	if (key_size > sizeof(key))
		return -E2BIG;
	value = malloc(value_len ? value_len : 1);
	if (!value)
		return -ENOMEM;
	while (bpf_map_get_next_key(src, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		if (bpf_map_lookup_elem(src, key, value) < 0) {
			if (errno == ENOENT) /* deleted meanwhile */
				continue;
			ret = -errno;
			break;
		}
		if (bpf_map_update_elem(dst, key, value, BPF_ANY) < 0) {
			ret = -errno;
			break;
		}
		(*copied)++;
	}
	if (ret == 0 && errno != ENOENT)
		ret = -errno;
	free(value);
	return ret;
}

int bt_map_freeze(int fd)
{
	return bpf_map_freeze(fd) < 0 ? -errno : 0;
}

int bt_prog_next(uint32_t after, uint32_t *id, char name[16], uint32_t *map_ids, uint32_t max_maps, uint32_t *nr_maps)
{
	__u32 next = after;

	for (;;) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int fd;

		if (bpf_prog_get_next_id(next, &next) < 0)
			return -errno;
		fd = bpf_prog_get_fd_by_id(next);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		memset(&info, 0, sizeof(info));
		info.nr_map_ids = max_maps;
		info.map_ids = (__u64)(uintptr_t)map_ids;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
			int error = errno;

			close(fd);
			return -error;
		}
		close(fd);
		*id = info.id;
		memcpy(name, info.name, 16);
		*nr_maps = info.nr_map_ids < max_maps ? info.nr_map_ids : max_maps;
		return 0;
	}
}

void bt_release_free_memory(void)
{
	malloc_trim(0);
}
