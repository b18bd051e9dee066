/* What links attach to outside the bpffs: cgroups and network namespaces (targets.c). */
#ifndef BPFTREE_SHIM_TARGETS_H
#define BPFTREE_SHIM_TARGETS_H

#include <stddef.h>
#include <stdint.h>

/** Opens a cgroup v2 directory (O_RDONLY | O_DIRECTORY, not following a final symlink) and returns its fd
 *  and inode (= cgroup id), or -errno. */
int bt_cgroup_open(const char *path, uint64_t *id);

/** Opens a network namespace file (e.g. /proc/PID/ns/net, /run/netns/NAME: O_RDONLY, checked to be on
 *  nsfs) and returns its fd and inode (the namespace's id), or -errno (-ENOTTY: not a namespace file,
 *  -EINVAL: a namespace of another kind). */
int bt_netns_open(const char *path, uint64_t *inode);

#endif
