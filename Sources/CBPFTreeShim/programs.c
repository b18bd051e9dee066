#define _GNU_SOURCE
#include "bpftree_shim.h"
#include "shim_internal.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <linux/nsfs.h>

/* ---- loading one program of an object with libbpf ---- */

const char *bt_libbpf_version(void)
{
	return libbpf_version_string();
}

static __thread char *bt_prog_log;
static __thread size_t bt_prog_log_size;

/* Appends every warning; when the buffer is full, keeps the tail (where the verifier names the fault). */
static int bt_prog_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char line[4096];
	size_t used, len;

	if (level != LIBBPF_WARN || !bt_prog_log || bt_prog_log_size < 2)
		return 0;
	len = (size_t)vsnprintf(line, sizeof(line), fmt, args);
	if (len >= sizeof(line))
		len = sizeof(line) - 1;
	used = strlen(bt_prog_log);
	if (len >= bt_prog_log_size)
		return 0;
	if (used + len >= bt_prog_log_size) {
		size_t drop = used + len - bt_prog_log_size + 1;

		memmove(bt_prog_log, bt_prog_log + drop, used - drop + 1);
		used -= drop;
	}
	memcpy(bt_prog_log + used, line, len + 1);
	return 0;
}

static uint64_t bt_tag(const unsigned char tag[8])
{
	uint64_t value = 0;

	for (int i = 0; i < 8; i++)
		value = value << 8 | tag[i];
	return value;
}

/* Marks the object's maps (in result->object_maps order) that the loaded program refers to. */
static void mark_used_maps(struct bpf_object *obj, struct bt_prog_load_result *result, const __u32 *ids, __u32 count)
{
	struct bpf_map *map;
	uint32_t index = 0;

	bpf_object__for_each_map(map, obj) {
		struct bpf_map_info info;
		__u32 len = sizeof(info);

		if (index >= result->nr_object_maps)
			break;
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(bpf_map__fd(map), &info, &len) == 0)
			for (__u32 i = 0; i < count; i++)
				if (ids[i] == info.id)
					result->object_maps[index].used = 1;
		index++;
	}
}

int bt_prog_load(const void *object, size_t size, const char *object_name, struct bt_load_program *programs,
		 uint32_t nr_programs, const char *const *map_names, const int *map_fds, uint32_t nr_maps,
		 const struct bt_load_global *globals, uint32_t nr_globals, int keep, struct bt_prog_load_result *result)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = object_name);
	struct bpf_object *obj;
	struct bpf_program *prog, *targets[BT_LOAD_MAX_PROGRAMS] = { 0 };
	struct bpf_map *map;
	__u32 map_ids[BT_PROG_MAX_MAPS];
	int err = 0;

	memset(result, 0, sizeof(*result));
	for (uint32_t i = 0; i < nr_programs; i++)
		programs[i].fd = -1;
	if (nr_programs == 0 || nr_programs > BT_LOAD_MAX_PROGRAMS)
		return -E2BIG;
	bt_prog_log = result->log;
	bt_prog_log_size = sizeof(result->log);
	libbpf_set_print(bt_prog_print);

	obj = bpf_object__open_mem(object, size, &opts);
	if (!obj) {
		err = -errno;
		goto out;
	}
	bpf_object__for_each_program(prog, obj) {
		const char *name = bpf_program__name(prog);
		size_t used = strlen(result->programs);
		int wanted = 0;

		for (uint32_t i = 0; i < nr_programs; i++)
			if (strcmp(name, programs[i].name) == 0) {
				targets[i] = prog;
				wanted = 1;
			}
		if (!wanted)
			bpf_program__set_autoload(prog, false);
		snprintf(result->programs + used, sizeof(result->programs) - used, "%s%s", used ? ", " : "", name);
	}
	bpf_object__for_each_map(map, obj) {
		struct bt_object_map *out;

		/* LIBBPF_PIN_BY_NAME would make libbpf reuse or pin the map at <pin_root_path>/<name>, outside
		 * the anchor: bpftree's bindings are the only source of shared maps. */
		if (bpf_map__set_pin_path(map, NULL) < 0) {
			err = -errno;
			goto close;
		}
		if (result->nr_object_maps >= BT_OBJECT_MAX_MAPS)
			continue;
		out = &result->object_maps[result->nr_object_maps++];
		out->internal = bpf_map__is_internal(map);
		snprintf(out->name, sizeof(out->name), "%s", bpf_map__name(map));
		out->type = bpf_map__type(map);
		out->key_size = bpf_map__key_size(map);
		out->value_size = bpf_map__value_size(map);
	}
	for (uint32_t i = 0; i < nr_programs; i++) {
		struct bpf_program *target = targets[i];

		result->failed = i;
		if (!target) {
			err = -ENOENT;
			goto close;
		}
		if (programs[i].type >= 0) {
			enum bpf_prog_type section = bpf_program__type(target);

			if (section != BPF_PROG_TYPE_UNSPEC && section != (enum bpf_prog_type)programs[i].type) {
				result->type = section;
				err = -EMEDIUMTYPE;
				goto close;
			}
			bpf_program__set_type(target, programs[i].type);
		}
		if (programs[i].attach_type >= 0)
			bpf_program__set_expected_attach_type(target, programs[i].attach_type);
		snprintf(programs[i].section, sizeof(programs[i].section), "%s", bpf_program__section_name(target));
	}
	result->failed = 0;
	for (uint32_t i = 0; i < nr_maps; i++) {
		map = bpf_object__find_map_by_name(obj, map_names[i]);
		if (!map) {
			snprintf(result->log, sizeof(result->log), "%s", map_names[i]);
			err = -ENXIO;
			goto close;
		}
		if (bpf_map__reuse_fd(map, map_fds[i]) < 0) {
			err = -errno;
			goto close;
		}
	}
	err = bt_set_globals(obj, globals, nr_globals, result->log, sizeof(result->log));
	if (err)
		goto close;
	result->loading = 1;
	result->type = bpf_program__type(targets[0]);
	result->expected_attach_type = bpf_program__expected_attach_type(targets[0]);
	if (bpf_object__load(obj) < 0) {
		err = -errno;
		/* libbpf loads in order and stops at the first refusal: the first program without an fd. */
		for (uint32_t i = 0; i < nr_programs; i++)
			if (bpf_program__fd(targets[i]) < 0) {
				result->failed = i;
				result->type = bpf_program__type(targets[i]);
				result->expected_attach_type = bpf_program__expected_attach_type(targets[i]);
				break;
			}
		goto close;
	}
	for (uint32_t i = 0; i < nr_programs; i++) {
		struct bpf_prog_info info;
		__u32 info_len = sizeof(info);
		int fd = bpf_program__fd(targets[i]);

		memset(&info, 0, sizeof(info));
		info.nr_map_ids = BT_PROG_MAX_MAPS;
		info.map_ids = (__u64)(uintptr_t)map_ids;
		if (bpf_obj_get_info_by_fd(fd, &info, &info_len) < 0) {
			err = -errno;
			result->failed = i;
			goto close;
		}
		if (i == 0)
			mark_used_maps(obj, result, map_ids,
				       info.nr_map_ids < BT_PROG_MAX_MAPS ? info.nr_map_ids : BT_PROG_MAX_MAPS);
		programs[i].loaded_type = info.type;
		programs[i].expected_attach_type = bpf_program__expected_attach_type(targets[i]);
		programs[i].tag = bt_tag(info.tag);
		memcpy(programs[i].kernel_name, info.name, sizeof(programs[i].kernel_name));
		if (keep) {
			programs[i].fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
			if (programs[i].fd < 0) {
				err = -errno;
				result->failed = i;
				goto close;
			}
		}
	}
close:
	if (err)
		for (uint32_t i = 0; i < nr_programs; i++)
			if (programs[i].fd >= 0) {
				close(programs[i].fd);
				programs[i].fd = -1;
			}
	bpf_object__close(obj);
out:
	bt_prog_log = NULL;
	return err;
}

/* ---- inspecting pinned programs and links ---- */

int bt_prog_info_by_fd(int fd, struct bt_prog_info *out)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	memset(out, 0, sizeof(*out));
	info.nr_map_ids = BT_PROG_MAX_MAPS;
	info.map_ids = (__u64)(uintptr_t)out->map_ids;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return -errno;
	out->id = info.id;
	out->type = info.type;
	out->tag = bt_tag(info.tag);
	memcpy(out->name, info.name, sizeof(out->name));
	out->nr_map_ids = info.nr_map_ids < BT_PROG_MAX_MAPS ? info.nr_map_ids : BT_PROG_MAX_MAPS;
	return 0;
}

int bt_link_detach(int link_fd)
{
	return bpf_link_detach(link_fd) < 0 ? -errno : 0;
}

int bt_link_update(int link_fd, int prog_fd, uint32_t old_prog_id)
{
	LIBBPF_OPTS(bpf_link_update_opts, opts, .flags = BPF_F_REPLACE);
	int old = bpf_prog_get_fd_by_id(old_prog_id), err;

	if (old < 0)
		return -errno;
	opts.old_prog_fd = old;
	err = bpf_link_update(link_fd, prog_fd, &opts) < 0 ? -errno : 0;
	close(old);
	return err;
}

int bt_prog_fd_by_id(uint32_t id)
{
	int fd = bpf_prog_get_fd_by_id(id);

	return fd < 0 ? -errno : fd;
}

int bt_map_fd_by_id(uint32_t id)
{
	int fd = bpf_map_get_fd_by_id(id);

	return fd < 0 ? -errno : fd;
}

int bt_xdp_mode(uint32_t ifindex, uint32_t prog_id, uint32_t *flags)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, opts);
	int err = bpf_xdp_query((int)ifindex, 0, &opts);

	if (err < 0)
		return err;
	/* XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE, XDP_FLAGS_HW_MODE. */
	*flags = opts.drv_prog_id == prog_id ? 1u << 2 : opts.skb_prog_id == prog_id ? 1u << 1
		: opts.hw_prog_id == prog_id ? 1u << 3 : 0;
	return 0;
}

/* uprobe_multi (6.8 link info, unknown to 6.1 headers): {path, offsets, ref_ctr_offsets, cookies,
 * path_size, count, flags, pid} where the union starts; `count`: from a first answer. */
static int bt_uprobe_multi_link_info(int fd, __u32 count, struct bt_link_info *out)
{
	_Alignas(8) unsigned char info[256];
	__u32 len = sizeof(info), path_size = sizeof(out->probe_name);
	__u64 path = (__u64)(uintptr_t)out->probe_name, offsets = 0, *buffer = NULL;
	uint64_t hash = 0xcbf29ce484222325ull;

	if (count && count <= BT_PROBE_MAX_OFFSETS) {
		buffer = calloc(count, sizeof(*buffer));
		if (!buffer)
			return -ENOMEM;
		offsets = (__u64)(uintptr_t)buffer;
	}
	memset(info, 0, sizeof(info));
	memcpy(info + 16, &path, sizeof(path));
	memcpy(info + 48, &path_size, sizeof(path_size));
	if (offsets) {
		memcpy(info + 24, &offsets, sizeof(offsets));
		memcpy(info + 52, &count, sizeof(count));
	}
	if (bpf_obj_get_info_by_fd(fd, info, &len) < 0) {
		int error = -errno;

		free(buffer);
		return error;
	}
	memcpy(&out->probe_count, info + 52, sizeof(out->probe_count));
	memcpy(&out->probe_flags, info + 56, sizeof(out->probe_flags));
	memcpy(&out->probe_pid, info + 60, sizeof(out->probe_pid));
	for (__u32 i = 0; buffer && i < count; i++)
		for (int byte = 0; byte < 8; byte++) {
			hash ^= (buffer[i] >> (8 * byte)) & 0xff;
			hash *= 0x100000001b3ull;
		}
	out->probe_offsets_digest = buffer ? hash : 0;
	free(buffer);
	return 0;
}

/* A raw tracepoint's or perf event's name, through a buffer placed where that type takes it: the union
 * (at 16) for a raw tracepoint, perf_event's own union (at 24) for a perf event (6.6 layout). */
static int bt_named_link_info(int fd, __u32 type, struct bt_link_info *out)
{
	_Alignas(8) unsigned char info[256];
	__u32 len = sizeof(info), name_len = sizeof(out->probe_name);
	__u32 name_at = type == BPF_LINK_TYPE_RAW_TRACEPOINT ? 16 : 24;
	__u64 address = (__u64)(uintptr_t)out->probe_name;

	memset(info, 0, sizeof(info));
	memcpy(info + name_at, &address, sizeof(address));
	memcpy(info + name_at + 8, &name_len, sizeof(name_len));
	if (bpf_obj_get_info_by_fd(fd, info, &len) < 0)
		return -errno;
	if (type == BPF_LINK_TYPE_PERF_EVENT) {
		__u32 offset;

		memcpy(&out->perf_event_type, info + 16, sizeof(out->perf_event_type));
		memcpy(&offset, info + 36, sizeof(offset));
		out->probe_offset = offset;
	}
	return 0;
}

int bt_link_info_by_fd(int fd, struct bt_link_info *out)
{
	struct bpf_link_info info;
	/* Room for what kernels newer than the 6.1 headers report (a uprobe_multi's count at 52). */
	_Alignas(8) unsigned char raw[256];
	__u32 len = sizeof(raw);

	memset(out, 0, sizeof(*out));
	/* First without any buffer: link kinds read pointers at different places of the union (a
	 * kprobe_multi link would write its addresses through an iterator's name pointer). */
	memset(raw, 0, sizeof(raw));
	if (bpf_obj_get_info_by_fd(fd, raw, &len) < 0)
		return -errno;
	memcpy(&info, raw, sizeof(info));
	out->id = info.id;
	out->type = info.type;
	out->prog_id = info.prog_id;
	switch (info.type) {
	case BPF_LINK_TYPE_CGROUP:
		out->cgroup_id = info.cgroup.cgroup_id;
		out->attach_type = info.cgroup.attach_type;
		break;
	case BPF_LINK_TYPE_ITER:
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		info.iter.target_name = (__u64)(uintptr_t)out->iter_target;
		info.iter.target_name_len = sizeof(out->iter_target);
		if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
			return -errno;
		if (strcmp(out->iter_target, "cgroup") == 0) {
			out->cgroup_id = info.iter.cgroup.cgroup_id;
			out->iter_order = info.iter.cgroup.order;
		} else if (strcmp(out->iter_target, "bpf_map_elem") == 0 || strcmp(out->iter_target, "sockmap") == 0) {
			out->map_id = info.iter.map.map_id;
		} else if (strncmp(out->iter_target, "task", 4) == 0) {
			out->task_tid = info.iter.task.tid;
			out->task_pid = info.iter.task.pid;
		}
		break;
	case BPF_LINK_TYPE_NETNS:
		out->netns_ino = info.netns.netns_ino;
		out->attach_type = info.netns.attach_type;
		break;
	case BPF_LINK_TYPE_XDP:
		out->ifindex = info.xdp.ifindex;
		break;
	case BPF_LINK_TYPE_TRACING:
		out->attach_type = info.tracing.attach_type;
		break;
	case BPF_LINK_TYPE_RAW_TRACEPOINT:
	case BPF_LINK_TYPE_PERF_EVENT:
		return bt_named_link_info(fd, info.type, out);
	case BT_LINK_TYPE_UPROBE_MULTI: {
		__u32 count;

		memcpy(&count, raw + 52, sizeof(count));
		return bt_uprobe_multi_link_info(fd, count, out);
	}
	case BT_LINK_TYPE_KPROBE_MULTI: {
		/* kprobe_multi (6.6 info): {addrs, count, flags, ...} where the union starts. */
		__u32 words[2];

		memcpy(words, raw + 24, sizeof(words));
		out->probe_count = words[0];
		out->probe_flags = words[1];
		break;
	}
	case BT_LINK_TYPE_SOCKMAP: {
		/* sockmap (6.10, unknown to 6.1 headers): map_id, attach_type where the union starts. */
		__u32 words[2];

		memcpy(words, (const char *)&info + offsetof(struct bpf_link_info, xdp), sizeof(words));
		out->map_id = words[0];
		out->attach_type = words[1];
		break;
	}
	case BT_LINK_TYPE_NETFILTER: {
		/* netfilter (6.4, unknown to 6.1 headers): pf, hooknum, priority, flags where the union starts. */
		__u32 words[4];

		memcpy(words, (const char *)&info + offsetof(struct bpf_link_info, xdp), sizeof(words));
		out->nf_family = words[0];
		out->nf_hook = words[1];
		memcpy(&out->nf_priority, &words[2], sizeof(out->nf_priority));
		out->nf_flags = words[3];
		break;
	}
	case BT_LINK_TYPE_TCX:
	case BT_LINK_TYPE_NETKIT: {
		/* tcx (6.6) and netkit (6.7), unknown to 6.1 headers: ifindex and attach_type, where xdp.ifindex starts. */
		__u32 words[2];

		memcpy(words, (const char *)&info + offsetof(struct bpf_link_info, xdp), sizeof(words));
		out->ifindex = words[0];
		out->attach_type = words[1];
		break;
	}
	default:
		break;
	}
	return 0;
}

int bt_tcx_query(uint32_t ifindex, uint32_t attach_type, uint32_t *prog_ids, uint32_t *link_ids, uint32_t max,
		 uint32_t *count)
{
	/* attr.query (6.6 layout, unknown to 6.1 headers): target_ifindex, attach_type, query_flags,
	 * attach_flags, prog_ids, count, pad, prog_attach_flags, link_ids, link_attach_flags, revision. */
	_Alignas(8) unsigned char attr[128];
	__u64 progs = (__u64)(uintptr_t)prog_ids, links = (__u64)(uintptr_t)link_ids;

	memset(attr, 0, sizeof(attr));
	memcpy(attr + 0, &ifindex, sizeof(ifindex));
	memcpy(attr + 4, &attach_type, sizeof(attach_type));
	memcpy(attr + 16, &progs, sizeof(progs));
	memcpy(attr + 24, &max, sizeof(max));
	memcpy(attr + 40, &links, sizeof(links));
	if (syscall(__NR_bpf, BPF_PROG_QUERY, attr, 64) < 0)
		return -errno;
	memcpy(count, attr + 24, sizeof(*count));
	return 0;
}

int bt_cgroup_open(const char *path, uint64_t *id)
{
	struct stat st;
	/* RESOLVE_NO_SYMLINKS (0x04): no symlink anywhere on the way, not only at its end, redirects a link. */
	int fd = bt_openat2(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0x04);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		int error = errno;

		close(fd);
		return -error;
	}
	*id = st.st_ino;
	return fd;
}

int bt_netns_open(const char *path, uint64_t *inode)
{
	struct statfs fs;
	struct stat st;
	char proc[64];
	/* Opened O_PATH first, which opens nothing: a FIFO or a device given as a namespace must be refused,
	 * not block or act. Only an nsfs file is then opened for real, through its own descriptor. */
	int fd = open(path, O_PATH | O_CLOEXEC), file;

	if (fd < 0)
		return -errno;
	if (fstatfs(fd, &fs) < 0) {
		int error = errno;

		close(fd);
		return -error;
	}
	if (fs.f_type != NSFS_MAGIC) {
		close(fd);
		return -ENOTTY;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	file = open(proc, O_RDONLY | O_CLOEXEC);
	close(fd);
	if (file < 0)
		return -errno;
	fd = file;
	if (fstat(fd, &st) < 0) {
		int error = errno;

		close(fd);
		return -error;
	}
	if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
		close(fd);
		return -EINVAL;
	}
	*inode = st.st_ino;
	return fd;
}
