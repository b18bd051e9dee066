/* What this kernel has, from its BTF (features.c). */
#ifndef BPFTREE_SHIM_FEATURES_H
#define BPFTREE_SHIM_FEATURES_H

#include <stddef.h>

/** The string section of /sys/kernel/btf/vmlinux, NUL-separated, in `*out` (malloc'd, the caller frees)
 *  of `*len` bytes: 0 or -errno (-ENOENT: a kernel built without BTF). */
int bt_vmlinux_btf_strings(char **out, size_t *len);

#endif
