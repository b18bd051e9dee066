/* A BPF object's global variables (.rodata, .data, .bss and their named variants): listed from the
 * object's BTF for validation, and written into libbpf's copy of the section before the object loads. */
#define _GNU_SOURCE
#include "shim_globals.h"
#include "shim_load.h"
#include "shim_internal.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_data_section(const char *name)
{
	return strncmp(name, ".rodata", 7) == 0 || strncmp(name, ".data", 5) == 0 || strncmp(name, ".bss", 4) == 0;
}

/* Appends the C spelling of type `id` to `out` (cut at `size`). */
static void type_name(const struct btf *btf, __u32 id, char *out, size_t size)
{
	const struct btf_type *t = btf__type_by_id(btf, id);
	size_t used = strlen(out);

	if (!t || used + 1 >= size)
		return;
	switch (btf_kind(t)) {
	case BTF_KIND_CONST:
		snprintf(out + used, size - used, "const ");
		type_name(btf, t->type, out, size);
		return;
	case BTF_KIND_VOLATILE:
		snprintf(out + used, size - used, "volatile ");
		type_name(btf, t->type, out, size);
		return;
	case BTF_KIND_ARRAY: {
		const struct btf_array *array = btf_array(t);

		type_name(btf, array->type, out, size);
		used = strlen(out);
		snprintf(out + used, size - used, "[%u]", array->nelems);
		return;
	}
	case BTF_KIND_PTR:
		type_name(btf, t->type, out, size);
		used = strlen(out);
		snprintf(out + used, size - used, " *");
		return;
	case BTF_KIND_STRUCT:
		snprintf(out + used, size - used, "struct %s", btf__name_by_offset(btf, t->name_off));
		return;
	case BTF_KIND_UNION:
		snprintf(out + used, size - used, "union %s", btf__name_by_offset(btf, t->name_off));
		return;
	case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64:
		snprintf(out + used, size - used, "enum %s", btf__name_by_offset(btf, t->name_off));
		return;
	default: {
		const char *name = btf__name_by_offset(btf, t->name_off);

		/* C's spelling of what <stdbool.h> and BPF programs call bool. */
		snprintf(out + used, size - used, "%s", name && strcmp(name, "_Bool") == 0 ? "bool" : name);
	}
	}
}

/* What one element of `id` is, with typedefs and qualifiers skipped. */
static void describe_element(const struct btf *btf, __u32 id, struct bt_global_var *out)
{
	const struct btf_type *t = btf__type_by_id(btf, btf__resolve_type(btf, id));

	out->kind = 0;
	if (!t)
		return;
	if (btf_is_int(t)) {
		__u8 encoding = btf_int_encoding(t);

		if (btf_int_offset(t) != 0 || btf_int_bits(t) != t->size * 8 || t->size > 8)
			return;
		out->kind = encoding & BTF_INT_BOOL ? 2 : 1;
		out->is_signed = (encoding & BTF_INT_SIGNED) != 0;
		out->elem_size = t->size;
	} else if (btf_is_enum(t) || btf_is_enum64(t)) {
		out->kind = 3;
		out->is_signed = btf_kflag(t);
		out->elem_size = t->size;
	}
}

/* The next non-static variable of the object's data sections after (*type_id, *index), starting from
 * *type_id = 0: its section's name and its place there. Returns NULL after the last. */
static const struct btf_type *next_global(const struct btf *btf, __u32 *type_id, __u16 *index, const char **section,
					  const struct btf_var_secinfo **place)
{
	for (; btf && *type_id < btf__type_cnt(btf); (*type_id)++, *index = 0) {
		const struct btf_type *sec = btf__type_by_id(btf, *type_id);

		if (*type_id == 0 || !btf_is_datasec(sec))
			continue;
		*section = btf__name_by_offset(btf, sec->name_off);
		if (!*section || !is_data_section(*section))
			continue;
		while (*index < btf_vlen(sec)) {
			const struct btf_var_secinfo *info = &btf_var_secinfos(sec)[(*index)++];
			const struct btf_type *var = btf__type_by_id(btf, info->type);

			if (var && btf_is_var(var) && btf_var(var)->linkage != BTF_VAR_STATIC) {
				*place = info;
				return var;
			}
		}
	}
	return NULL;
}

int bt_object_globals(const void *object, size_t size, const char *object_name, struct bt_global_var *out,
		      uint32_t max, uint32_t *count)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = object_name);
	const struct btf_var_secinfo *place;
	const struct btf_type *var;
	const char *section;
	struct bpf_object *obj;
	struct btf *btf;
	__u32 type_id = 0;
	__u16 index = 0;

	*count = 0;
	obj = bpf_object__open_mem(object, size, &opts);
	if (!obj)
		return -errno;
	btf = bpf_object__btf(obj);
	while ((var = next_global(btf, &type_id, &index, &section, &place))) {
		const struct btf_type *resolved;
		struct bt_global_var *entry;

		if ((*count)++ >= max)
			continue;
		entry = &out[*count - 1];
		memset(entry, 0, sizeof(*entry));
		snprintf(entry->name, sizeof(entry->name), "%s", btf__name_by_offset(btf, var->name_off));
		snprintf(entry->section, sizeof(entry->section), "%s", section);
		type_name(btf, var->type, entry->type_name, sizeof(entry->type_name));
		entry->size = place->size;
		resolved = btf__type_by_id(btf, btf__resolve_type(btf, var->type));
		if (resolved && btf_is_array(resolved)) {
			const struct btf_array *array = btf_array(resolved);

			entry->is_array = 1;
			entry->count = array->nelems;
			describe_element(btf, array->type, entry);
			if (entry->elem_size * entry->count != entry->size)
				entry->kind = 0;
		} else {
			describe_element(btf, var->type, entry);
			if (entry->elem_size != entry->size)
				entry->kind = 0;
		}
	}
	bpf_object__close(obj);
	return 0;
}

/* Writes `value` at `place` of the initial value of the internal map libbpf made for `section` (named
 * `<object prefix><section>`). Returns 0, -ENOKEY (no such map) or the -errno of setting it. */
static int write_global(struct bpf_object *obj, const char *section, const struct btf_var_secinfo *place,
			const struct bt_load_global *global)
{
	size_t section_len = strlen(section);
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);
		size_t len = strlen(name), data_size = 0;
		const void *data;
		char *copy;
		int err;

		if (!bpf_map__is_internal(map) || len < section_len || strcmp(name + len - section_len, section) != 0)
			continue;
		data = bpf_map__initial_value(map, &data_size);
		if (!data || place->offset + place->size > data_size)
			continue;
		copy = malloc(data_size);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, data, data_size);
		memcpy(copy + place->offset, global->value, global->size);
		err = bpf_map__set_initial_value(map, copy, data_size);
		free(copy);
		return err;
	}
	return -ENOKEY;
}

int bt_set_globals(struct bpf_object *obj, const struct bt_load_global *globals, uint32_t count, char *fault,
		   size_t fault_size)
{
	struct btf *btf = bpf_object__btf(obj);

	for (uint32_t g = 0; g < count; g++) {
		const struct btf_var_secinfo *place;
		const struct btf_type *var;
		const char *section;
		__u32 type_id = 0;
		__u16 index = 0;
		int err = -ENOKEY;

		while ((var = next_global(btf, &type_id, &index, &section, &place))) {
			if (strcmp(btf__name_by_offset(btf, var->name_off), globals[g].name) != 0)
				continue;
			err = place->size == globals[g].size ? write_global(obj, section, place, &globals[g]) : -EMSGSIZE;
			break;
		}
		if (err) {
			snprintf(fault, fault_size, "%s", globals[g].name);
			return err;
		}
	}
	return 0;
}
