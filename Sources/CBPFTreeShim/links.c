/* Pinned programs and links as the kernel reports them (link info, a tcx hook's order, an XDP mode),
 * and detaching and moving links. */
#define _GNU_SOURCE
#include "shim_links.h"
#include "shim_internal.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

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

int bt_link_info_by_id(uint32_t id, struct bt_link_info *out)
{
	int fd = bpf_link_get_fd_by_id(id);
	int result;

	if (fd < 0)
		return -errno;
	result = bt_link_info_by_fd(fd, out);
	close(fd);
	return result;
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
