/* Shared by the shim's C files (not part of the module's interface). */
#ifndef BPFTREE_SHIM_INTERNAL_H
#define BPFTREE_SHIM_INTERNAL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef BPF_F_PATH_FD
#define BPF_F_PATH_FD (1U << 14)
#endif
/* BPF_LINK_TYPE_TCX (Linux 6.6; Debian 12's headers are 6.1). */
#define BT_LINK_TYPE_TCX 11
/* BPF_LINK_TYPE_NETKIT (Linux 6.7): its info has tcx's layout. */
#define BT_LINK_TYPE_NETKIT 13
/* BPF_LINK_TYPE_UPROBE_MULTI (Linux 6.6). */
#define BT_LINK_TYPE_UPROBE_MULTI 12
/* BPF_LINK_TYPE_NETFILTER (Linux 6.4). */
#define BT_LINK_TYPE_NETFILTER 10
/* BPF_LINK_TYPE_SOCKMAP (Linux 6.10). */
#define BT_LINK_TYPE_SOCKMAP 14
/* BPF_LINK_TYPE_KPROBE_MULTI (Linux 5.18). */
#define BT_LINK_TYPE_KPROBE_MULTI 8

struct bpf_object;
struct bt_load_global;
/* Writes globals into an opened object's data (globals.c). */
int bt_set_globals(struct bpf_object *obj, const struct bt_load_global *globals, uint32_t count, char *fault,
		   size_t fault_size);

/* A program tag (8 bytes) as one big-endian number. */
static inline uint64_t bt_tag(const unsigned char tag[8])
{
	uint64_t value = 0;

	for (int i = 0; i < 8; i++)
		value = value << 8 | tag[i];
	return value;
}

/* A syscall's return value, or -errno when it failed. */
static inline int neg_errno(long ret)
{
	return ret < 0 ? -errno : (int)ret;
}

#endif
