/* Probe targets: tracefs, ELF symbols, kallsyms, perf events (probes.c). */
#ifndef BPFTREE_SHIM_PROBES_H
#define BPFTREE_SHIM_PROBES_H

#include <stddef.h>
#include <stdint.h>

/** Where tracefs is mounted (/sys/kernel/tracing, or below debugfs), or -ENOENT. */
int bt_tracefs_path(char *out, size_t size);
/** The perf event id of tracepoint `category`/`name` (tracefs `events/CATEGORY/NAME/id`), or -errno. */
int bt_tracepoint_id(const char *tracefs, const char *category, const char *name, uint64_t *id);
/** 1 when the kernel's BTF has raw tracepoint `name` (its `btf_trace_NAME` typedef), 0 when not, or -errno. */
int bt_raw_tracepoint_exists(const char *name);
/** The file offset of function `symbol` of ELF file `path` (.symtab, then .dynsym), as a uprobe takes it
 *  (`symbol` NULL: only checks that it is an ELF file), and the device and inode of the file it was read
 *  from: -ENOEXEC not an ELF file, -EINVAL not a regular file (a FIFO is never waited for), -ESRCH no such
 *  function, or another -errno. */
int bt_elf_symbol_offset(const char *path, const char *symbol, uint64_t *offset, uint64_t *device, uint64_t *inode);
/** The file offsets of the functions of ELF file `path` whose names match shell pattern `pattern`
 *  (fnmatch; .symtab and .dynsym, each offset once), at most `max` (more: -E2BIG). Returns how many, or
 *  -ENOEXEC (not an ELF file) or another -errno. */
int bt_elf_symbol_offsets(const char *path, const char *pattern, uint64_t *offsets, uint32_t max);
/** The kernel functions (text symbols of /proc/kallsyms outside modules) whose names match shell pattern
 *  `pattern`, written NUL-terminated one after another into `names` (`size` bytes), at most `max` (more:
 *  -E2BIG). Returns how many, or -errno. */
int bt_kernel_functions_matching(const char *pattern, char *names, size_t size, uint32_t max);
/** 1 when /proc/kallsyms lists kernel function `name`, 0 when not, or -errno. */
int bt_kernel_function_exists(const char *name);
/** The perf event type of PMU `pmu` (`uprobe`, `kprobe`) and the config bit of its retprobe, or -errno. */
int bt_pmu_type(const char *pmu, uint32_t *type, uint32_t *retprobe_bit);
/** perf_event_open of tracepoint `id`, for every process. Returns the fd or -errno. */
int bt_perf_tracepoint_open(uint64_t id);
/** perf_event_open of a probe of PMU `pmu_type`: a uprobe on file `name` at `offset`, or a kprobe on
 *  function `name` + `offset`; of process `pid` (0: every process). Returns the fd or -errno. */
int bt_perf_probe_open(uint32_t pmu_type, uint32_t retprobe_bit, int is_return, const char *name, uint64_t offset,
		       int pid);

#endif
