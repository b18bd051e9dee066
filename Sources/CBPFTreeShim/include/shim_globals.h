/* Global variables of an ELF object (globals.c). */
#ifndef BPFTREE_SHIM_GLOBALS_H
#define BPFTREE_SHIM_GLOBALS_H

#include <stddef.h>
#include <stdint.h>

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

#endif
