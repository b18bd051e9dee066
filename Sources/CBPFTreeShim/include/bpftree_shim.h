/* bpftree's C shim: the raw syscalls Swift cannot call directly (bpf(2) with path_fd, openat2, renameat2,
 * fchmodat2, fstatfs) and the batch syscall program runner on top of libbpf. Every function returns
 * 0 (or an fd / count) on success and -errno on failure; none of them touches errno for the caller. */
#ifndef BPFTREE_SHIM_H
#define BPFTREE_SHIM_H

#include <stddef.h>
#include <stdint.h>

/* One header per concern, each beside the C file of the same name. */
#include "shim_fs.h"
#include "shim_objects.h"
#include "shim_maps.h"
#include "shim_batch.h"
#include "shim_token.h"
#include "shim_links.h"
#include "shim_load.h"
#include "shim_globals.h"
#include "shim_targets.h"
#include "shim_probes.h"
#include "shim_signals.h"
#include "shim_features.h"

#endif
