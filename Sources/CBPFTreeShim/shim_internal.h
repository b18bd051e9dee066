/* Shared by the shim's C files (not part of the module's interface). */
#ifndef BPFTREE_SHIM_INTERNAL_H
#define BPFTREE_SHIM_INTERNAL_H

#include <errno.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef BPF_F_PATH_FD
#define BPF_F_PATH_FD (1U << 14)
#endif

/* A syscall's return value, or -errno when it failed. */
static inline int neg_errno(long ret)
{
	return ret < 0 ? -errno : (int)ret;
}

#endif
