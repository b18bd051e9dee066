/* Pinned programs and links as the kernel reports them, detaching and moving links (links.c). */
#ifndef BPFTREE_SHIM_LINKS_H
#define BPFTREE_SHIM_LINKS_H

#include <stddef.h>
#include <stdint.h>

#define BT_PROG_MAX_MAPS 64
#define BT_OBJECT_MAX_MAPS 32

struct bt_prog_info {
	uint32_t id;
	uint32_t type;
	uint64_t tag;
	char name[16];
	uint32_t nr_map_ids;
	uint32_t map_ids[BT_PROG_MAX_MAPS];
};

/** BPF_OBJ_GET_INFO_BY_FD of a program. */
int bt_prog_info_by_fd(int fd, struct bt_prog_info *out);

struct bt_link_info {
	uint32_t id;
	uint32_t type;
	uint32_t prog_id;
	/** Cgroup links. */
	uint32_t attach_type;
	/** Cgroup links and cgroup iterators. */
	uint64_t cgroup_id;
	/** XDP and tcx links: the interface's index (0 once the interface is gone); tcx sets attach_type. */
	uint32_t ifindex;
	/** Network namespace links: the namespace's inode (0 once it is gone); attach_type is set too. */
	uint32_t netns_ino;
	/** Iterators: the target's name and, for cgroup iterators, the order. */
	uint32_t iter_order;
	char iter_target[32];
	/** Perf event links: `enum bpf_perf_event_type` (1 uprobe, 2 uretprobe, 3 kprobe, 4 kretprobe,
	 *  5 tracepoint) and the probe's offset (a uprobe's in its file, a kprobe's in its function). */
	uint32_t perf_event_type;
	uint64_t probe_offset;
	/** Raw tracepoint, perf event and uprobe_multi links: the tracepoint's, function's or (uprobes)
	 *  file's name. */
	char probe_name[256];
	/** uprobe_multi links: how many offsets, their FNV-1a digest (little-endian u64s, in order; 0 when
	 *  more than BT_PROBE_MAX_OFFSETS), flags (1: return probes) and process (0: every one). */
	uint32_t probe_count;
	uint64_t probe_offsets_digest;
	uint32_t probe_flags;
	uint32_t probe_pid;
	/** Map iterators and sockmap links: the map's id. */
	uint32_t map_id;
	/** task, task_file and task_vma iterators: the one thread or process they walk (0: every one). */
	uint32_t task_tid;
	uint32_t task_pid;
	/** Netfilter links: NFPROTO_*, NF_INET_*, the priority and the flags. */
	uint32_t nf_family;
	uint32_t nf_hook;
	int32_t nf_priority;
	uint32_t nf_flags;
};

#define BT_PROBE_MAX_OFFSETS 4096

/** BPF_LINK_DETACH of link `link_fd`. Returns 0 or -errno. */
int bt_link_detach(int link_fd);

/** BPF_LINK_UPDATE of link `link_fd` to program `prog_fd`, with BPF_F_REPLACE: refused (-EPERM) unless
 *  the link holds program `old_prog_id`. Returns 0 or -errno. */
int bt_link_update(int link_fd, int prog_fd, uint32_t old_prog_id);

/** BPF_PROG_GET_FD_BY_ID and BPF_MAP_GET_FD_BY_ID (CAP_SYS_ADMIN): a new fd, or -errno. */
int bt_prog_fd_by_id(uint32_t id);
int bt_map_fd_by_id(uint32_t id);

/** The XDP_FLAGS_*_MODE in which program `prog_id` is attached to interface `ifindex` (netlink), 0 when
 *  it is not attached there. Returns 0 or -errno. */
int bt_xdp_mode(uint32_t ifindex, uint32_t prog_id, uint32_t *flags);

/** BPF_OBJ_GET_INFO_BY_FD of a link. */
int bt_link_info_by_fd(int fd, struct bt_link_info *out);
/** The same of link `id`, by BPF_LINK_GET_FD_BY_ID (CAP_SYS_ADMIN; no path is looked up). */
int bt_link_info_by_id(uint32_t id, struct bt_link_info *out);

/** BPF_PROG_QUERY of tcx hook `attach_type` of interface `ifindex`: the programs and their links (0: a
 *  program attached without one), first to last, at most `max`; `count` gets how many there are.
 *  Returns 0 or -errno (-ENOSPC: more than `max`). */
int bt_tcx_query(uint32_t ifindex, uint32_t attach_type, uint32_t *prog_ids, uint32_t *link_ids, uint32_t max,
		 uint32_t *count);

#endif
