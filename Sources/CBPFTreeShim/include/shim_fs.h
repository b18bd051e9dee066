/* File-system calls Swift cannot make directly, and process limits (fs.c). */
#ifndef BPFTREE_SHIM_FS_H
#define BPFTREE_SHIM_FS_H

#include <stddef.h>
#include <stdint.h>

/* GNU-only constants Swift's Glibc module does not export. */
enum {
	BT_O_PATH = 010000000,
	BT_AT_EMPTY_PATH = 0x1000,
	BT_AT_SYMLINK_NOFOLLOW = 0x100,
	BT_RENAME_NOREPLACE = 1,
	BT_RENAME_EXCHANGE = 2,
};

/** The errno's symbolic name, e.g. "ENOENT" (strerrorname_np), or NULL. */
const char *bt_errno_name(int error);

/** getdents64(2) into `buffer`; returns bytes read, 0 at the end, or -errno. */
int bt_getdents(int fd, void *buffer, size_t size);

/** openat2(2) with the given open flags, mode and RESOLVE_* flags. */
int bt_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
/** renameat2(2). */
int bt_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);
/** fchmodat2(2) (Linux 6.6), which honours AT_SYMLINK_NOFOLLOW. */
int bt_fchmodat2(int dirfd, const char *path, uint32_t mode, int flags);
/** f_type of the file system holding `fd` (fstatfs(2)); works on O_PATH fds. */
int bt_fstatfs_type(int fd, int64_t *type);
/** Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force. */
long bt_raise_nofile_limit(void);
/** Number of possible CPUs (the multiplier of per-CPU map values). */
int bt_num_possible_cpus(void);
/** malloc_trim(0): returns freed heap memory to the kernel. */
void bt_release_free_memory(void);

#endif
