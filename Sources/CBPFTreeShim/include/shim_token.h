/* BPF tokens (token.c, Linux 6.9). */
#ifndef BPFTREE_SHIM_TOKEN_H
#define BPFTREE_SHIM_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/** BPF_TOKEN_CREATE from the root of a delegated bpffs, opened O_RDONLY | O_DIRECTORY; returns the token fd. */
int bt_token_create(int bpffs_root);
/** From now on every BPF_MAP_CREATE, BPF_PROG_LOAD and BPF_BTF_LOAD of this process, libbpf's included,
 *  carries token `fd` (-1: none). */
void bt_token_activate(int fd);
/** The active token's fd, or -1. */
int bt_token_active(void);
/** The id of the mount holding `fd` (statx STATX_MNT_ID), as /proc/self/mountinfo numbers mounts. */
int bt_mount_id(int fd, uint64_t *id);
/** Opens (O_RDONLY | O_DIRECTORY) the root of the mount holding directory `dirfd`, walking up with ".."
 *  while it stays on that mount. Returns the fd or -errno. */
int bt_mount_root_open(int dirfd);

#endif
