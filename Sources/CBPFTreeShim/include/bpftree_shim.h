/* bpftree's C shim: the raw syscalls Swift cannot call directly (bpf(2) with path_fd, openat2, renameat2,
 * fchmodat2, fstatfs) and the batch syscall program runner on top of libbpf. Every function returns
 * 0 (or an fd / count) on success and -errno on failure; none of them touches errno for the caller. */
#ifndef BPFTREE_SHIM_H
#define BPFTREE_SHIM_H

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

/* ---- objects pinned in bpffs ---- */

/** BPF_OBJ_PIN of `fd` at `name`, relative to `dirfd` (BPF_F_PATH_FD, Linux 6.5). */
int bt_obj_pin_at(int dirfd, const char *name, int fd);
/** What `bt_pin_open` found at the name, filled whenever the name exists. */
struct bt_pin_stat {
	uint64_t inode;
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
};
/** BPF_OBJ_GET of the pin `name` in `dirfd` without following a symlink: returns a new fd, -ELOOP for a
 *  symlink, -EISDIR for a directory, -EINVAL for another kind of file; `out` (may be NULL) gets its stat. */
int bt_pin_open(int dirfd, const char *name, struct bt_pin_stat *out);
/** `bt_pin_open` without the stat. */
int bt_obj_get_at(int dirfd, const char *name);

enum bt_object_kind { BT_OBJECT_UNKNOWN = 0, BT_OBJECT_MAP = 1, BT_OBJECT_PROG = 2, BT_OBJECT_LINK = 3 };
/** Kind of the BPF object behind `fd`, from its anon-inode name in /proc/self/fd (as bpftool does). */
int bt_fd_object_kind(int fd);

struct bt_map_info {
	uint32_t type;
	uint32_t id;
	uint32_t key_size;
	uint32_t value_size;
	uint32_t max_entries;
	uint32_t map_flags;
	uint64_t map_extra;
	char name[16];
	int32_t frozen; /* from /proc/self/fdinfo; -1 when unknown */
};
/** BPF_OBJ_GET_INFO_BY_FD for a map fd, plus the frozen state. */
int bt_map_info_by_fd(int fd, struct bt_map_info *info);

/* ---- maps from user space: the ledger, migration, and the programs that use a map ---- */

/** BPF_MAP_CREATE through libbpf; returns the new fd. */
int bt_map_create(uint32_t type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
		  uint32_t flags);
int bt_map_update(int fd, const void *key, const void *value, uint64_t flags);
/** BPF_MAP_LOOKUP_ELEM. */
int bt_map_lookup(int fd, const void *key, void *value);
/** BPF_MAP_DELETE_ELEM; a missing key is not an error. */
int bt_map_delete(int fd, const void *key);
/** BPF_MAP_UPDATE_BATCH of `count` keys and values laid out back to back. */
int bt_map_update_batch(int fd, const void *keys, const void *values, uint32_t count, uint64_t flags);
/** BPF_MAP_DELETE_BATCH of `count` keys of `key_size` bytes laid out back to back; missing keys are not an error. */
int bt_map_delete_batch(int fd, const void *keys, uint32_t key_size, uint32_t count);
/** BPF_MAP_GET_NEXT_KEY: the key after `key` (NULL: the first) into `next`; -ENOENT past the last. */
int bt_map_get_next_key(int fd, const void *key, void *next);
/** BPF_MAP_LOOKUP_BATCH: up to *count entries after the batch token `in` (NULL: from the start) into keys and
 *  values; the next token goes to `out` (token buffers hold 8 bytes). Returns 0, or -ENOENT once the
 *  map is exhausted (with the last entries in *count). */
int bt_map_lookup_batch(int fd, void *in, void *out, void *keys, void *values, uint32_t *count);
/** Counts the entries of a map by walking its keys (BPF_MAP_GET_NEXT_KEY). */
int bt_map_count(int fd, uint32_t key_size, uint64_t *count);
/** Copies every entry of `src` into `dst` (same key size and value length, per-CPU values whole);
 *  writes how many entries were copied. */
int bt_map_copy(int src, int dst, uint32_t key_size, uint32_t value_len, uint64_t *copied);
/** BPF_MAP_FREEZE. */
int bt_map_freeze(int fd);

/** The loaded program with the next id after `after`: its id, name and up to `max_maps` map ids.
 *  Returns 0, -ENOENT after the last, or -errno. Programs that vanish meanwhile are skipped. */
int bt_prog_next(uint32_t after, uint32_t *id, char name[16], uint32_t *map_ids, uint32_t max_maps, uint32_t *nr_maps);

/* The ownership ledger: a hash map pinned at the anchor, key = anchor-relative path (NUL padded). */
#define BT_LEDGER_PATH_SIZE 256
#define BT_LEDGER_MANIFEST_SIZE 64
#define BT_LEDGER_OWNER_SIZE 64
/* A ledger record. Ledgers made before owners end after `manifest` (96 bytes); bpftree reads them and
 * moves them to this layout at its first write. */
struct bt_ledger_value {
	uint64_t inode;
	uint64_t pending_inode;
	uint64_t fingerprint;
	uint32_t kind;
	uint32_t state;
	char manifest[BT_LEDGER_MANIFEST_SIZE];
	char owner[BT_LEDGER_OWNER_SIZE];
};

/* ---- file system ---- */

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

/* ---- the batch syscall program (bpf/batch.bpf.c, layout in bpf/batch_ops.h) ---- */

struct bt_batch;

/** Loads the batch program from an ELF object in memory. On failure writes libbpf's last message. */
int bt_batch_open(const void *object, size_t size, struct bt_batch **out, char *message, size_t message_size);
void bt_batch_close(struct bt_batch *batch);
uint32_t bt_batch_max_ops(void);
uint32_t bt_batch_data_size(void);
/** The program's data area: key and value bytes referenced by update ops. */
uint8_t *bt_batch_data(struct bt_batch *batch);
void bt_batch_put_create(struct bt_batch *batch, uint32_t index, uint32_t map_type, uint32_t key_size,
			 uint32_t value_size, uint32_t max_entries, uint32_t map_flags, uint32_t numa_node,
			 uint64_t map_extra, const char *name);
void bt_batch_put_update(struct bt_batch *batch, uint32_t index, uint32_t create_index, uint32_t key_off,
			 uint32_t value_off, uint32_t value_len, uint64_t flags);
void bt_batch_put_freeze(struct bt_batch *batch, uint32_t index, uint32_t create_index);
/** Op `index`: does cgroup `cgroup_id` exist? (result 1 yes, 0 no) */
void bt_batch_put_cgroup_exists(struct bt_batch *batch, uint32_t index, uint64_t cgroup_id);
/** Op `index`: LINK_CREATE of program `prog_fd` on `target` (a cgroup, namespace or perf event fd, an
 *  interface index for XDP and tcx, 0 for an iterator) with `attach_type` and `flags` (XDP: the mode; tcx:
 *  the position); `args`: link_create's bytes after flags (at most 48: a tcx link's relative_id, a
 *  uprobe_multi's pointers into this process's memory, which must stay valid until the run);
 *  `info`/`info_len`: the iterator's bpf_iter_link_info, copied into the data area at `info_off` (len 0:
 *  none; then args apply). */
void bt_batch_put_link(struct bt_batch *batch, uint32_t index, int prog_fd, uint32_t target, uint32_t attach_type,
		       uint32_t flags, const void *args, uint32_t args_len, uint32_t info_off, const void *info,
		       uint32_t info_len);
/** Op `index`: BPF_RAW_TRACEPOINT_OPEN of program `prog_fd` at tracepoint `name`, read from this
 *  process's memory when the batch runs (it must stay valid until then). */
void bt_batch_put_raw_tracepoint(struct bt_batch *batch, uint32_t index, int prog_fd, const char *name);
/** Runs ops [0, nops) in one BPF_PROG_TEST_RUN; returns the number of failed ops or -errno. */
int bt_batch_run(struct bt_batch *batch, uint32_t nops);
/** Result of op `index` after a run: an fd for a create, 0 for update/freeze, or -errno. */
int32_t bt_batch_result(struct bt_batch *batch, uint32_t index);

/* ---- BPF tokens (token.c, Linux 6.9) ---- */

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

/* ---- programs and links (programs.c) ---- */

/** The version of the libbpf this process runs with ("v1.1"). */
const char *bt_libbpf_version(void);

#define BT_PROG_MAX_MAPS 64
#define BT_OBJECT_MAX_MAPS 32

struct bt_object_map {
	char name[64];
	uint32_t type;
	uint32_t key_size;
	uint32_t value_size;
	/** The loaded program refers to it (it is among the program's map ids). */
	uint32_t used;
	/** One of the object's global data sections (`.rodata`, `.data`, `.bss`, ...). */
	uint32_t internal;
};

/** One program of an object to load: `name`, and `type`/`attach_type` set when >= 0 (in); what the kernel
 *  made of it (out). */
struct bt_load_program {
	const char *name;
	int32_t type;
	int32_t attach_type;
	/** Its fd when asked to keep it, else -1. */
	int fd;
	/** As loaded: type, expected attach type, the kernel's tag (first byte most significant), name. */
	uint32_t loaded_type;
	uint32_t expected_attach_type;
	uint64_t tag;
	char kernel_name[16];
	/** The program's ELF section name, e.g. `iter/task` (truncated to 63 bytes). */
	char section[64];
};

/** A global variable of `.rodata`, `.data` or `.bss` set before loading: its whole value. */
struct bt_load_global {
	const char *name;
	const void *value;
	uint32_t size;
};

#define BT_LOAD_MAX_PROGRAMS 32

struct bt_prog_load_result {
	/** How far it got: 0 opening the object, 1 loading the programs. */
	uint32_t loading;
	/** The program at fault (an index of the request) when loading failed. */
	uint32_t failed;
	/** On -EMEDIUMTYPE: the type the failed program's section name gives; on a refused load, the type and
	 *  expected attach type it was loaded as. */
	uint32_t type;
	uint32_t expected_attach_type;
	/** The object's own maps and global data sections; `used`: the first program refers to it. */
	uint32_t nr_object_maps;
	struct bt_object_map object_maps[BT_OBJECT_MAX_MAPS];
	/** On -ENOENT: the object's program names, comma separated. */
	char programs[512];
	/** libbpf's warnings, in order (on a failed load: the verifier's log); the tail when long. On -ENXIO
	 *  the map name, on -ENOKEY the global's name, on -EMSGSIZE the global's name whose size differs. */
	char log[4096];
};

/** Opens an ELF object (its bytes) with libbpf and loads `programs` together in one load (the object's maps
 *  are shared by them; the other programs are not loaded): each with its type and attach type set where
 *  given (a type the section name gives must agree, else -EMEDIUMTYPE), the object's maps named in
 *  `map_names` using `map_fds` instead of their own (an unknown name: -ENXIO), and `globals` written
 *  into the object's data before loading (-ENOKEY: no such variable; -EMSGSIZE: another size). `keep`:
 *  leave the programs open in their `fd`. Returns 0, -ENOENT (no such program), or the -errno of the
 *  failed step. */
int bt_prog_load(const void *object, size_t size, const char *object_name, struct bt_load_program *programs,
		 uint32_t nr_programs, const char *const *map_names, const int *map_fds, uint32_t nr_maps,
		 const struct bt_load_global *globals, uint32_t nr_globals, int keep, struct bt_prog_load_result *result);

/** A variable of an object's `.rodata*`, `.data*` or `.bss*` section, as its BTF says. */
struct bt_global_var {
	char name[64];
	char section[64];
	/** The C type as BTF spells it (truncated). */
	char type_name[96];
	uint32_t size;
	/** 0: not settable (struct, pointer, float, ...), 1: integer, 2: bool, 3: enum. */
	uint32_t kind;
	uint32_t is_signed;
	uint32_t elem_size;
	/** The element count of an array, 0 for a scalar. */
	uint32_t count;
	uint32_t is_array;
};

/** The global variables of an ELF object (its bytes), at most `max` of them in `out`; `*count` is how many
 *  there are. Returns 0 or the -errno of opening the object. */
int bt_object_globals(const void *object, size_t size, const char *object_name, struct bt_global_var *out,
		      uint32_t max, uint32_t *count);

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

/** BPF_PROG_QUERY of tcx hook `attach_type` of interface `ifindex`: the programs and their links (0: a
 *  program attached without one), first to last, at most `max`; `count` gets how many there are.
 *  Returns 0 or -errno (-ENOSPC: more than `max`). */
int bt_tcx_query(uint32_t ifindex, uint32_t attach_type, uint32_t *prog_ids, uint32_t *link_ids, uint32_t max,
		 uint32_t *count);

/** Opens a cgroup v2 directory (O_RDONLY | O_DIRECTORY, not following a final symlink) and returns its fd
 *  and inode (= cgroup id), or -errno. */
int bt_cgroup_open(const char *path, uint64_t *id);

/** Opens a network namespace file (e.g. /proc/PID/ns/net, /run/netns/NAME: O_RDONLY, checked to be on
 *  nsfs) and returns its fd and inode (the namespace's id), or -errno (-ENOTTY: not a namespace file,
 *  -EINVAL: a namespace of another kind). */
int bt_netns_open(const char *path, uint64_t *inode);

/* ---- probe targets (probes.c) ---- */

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

/** Makes SIGHUP, SIGTERM and SIGINT only counted, until the service installs its own handling: the
 *  service calls this first thing, so that a signal at start-up neither kills it nor is lost. */
void bt_hold_signals(void);
/** How many SIGTERM/SIGINT (`stop` != 0) or SIGHUP were counted by bt_hold_signals' handler. */
int bt_held_signal_count(int stop);

#endif
