/* Loading the programs of an ELF object with libbpf (load.c). */
#ifndef BPFTREE_SHIM_LOAD_H
#define BPFTREE_SHIM_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include "shim_links.h"

/** The version of the libbpf this process runs with ("v1.1"). */
const char *bt_libbpf_version(void);

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

#endif
