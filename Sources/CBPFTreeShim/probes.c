/* Probe targets: tracepoints through tracefs and perf events, raw tracepoints through the kernel's BTF,
 * uprobes through a binary's ELF symbols, kprobes through the kprobe PMU. */
#define _GNU_SOURCE
#include "shim_probes.h"
#include "shim_internal.h"

#include <bpf/btf.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <gelf.h>
#include <libelf.h>
#include <linux/magic.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef TRACEFS_MAGIC
#define TRACEFS_MAGIC 0x74726163
#endif
#ifndef DEBUGFS_MAGIC
#define DEBUGFS_MAGIC 0x64626720
#endif

int bt_tracefs_path(char *out, size_t size)
{
	static const char *const paths[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
	struct statfs fs;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (statfs(paths[i], &fs) == 0 && (fs.f_type == TRACEFS_MAGIC || fs.f_type == DEBUGFS_MAGIC)) {
			snprintf(out, size, "%s", paths[i]);
			return 0;
		}
	}
	return -ENOENT;
}

int bt_tracepoint_id(const char *tracefs, const char *category, const char *name, uint64_t *id)
{
	char path[512], text[32];
	ssize_t got;
	int fd;

	if (strchr(category, '/') || strchr(name, '/') || category[0] == '.' || name[0] == '.')
		return -EINVAL;
	if (snprintf(path, sizeof(path), "%s/events/%s/%s/id", tracefs, category, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	got = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (got <= 0)
		return got < 0 ? -errno : -EINVAL;
	text[got] = 0;
	*id = strtoull(text, NULL, 10);
	return 0;
}

int bt_raw_tracepoint_exists(const char *name)
{
	char typedef_name[256];
	struct btf *btf;
	int found;

	if (snprintf(typedef_name, sizeof(typedef_name), "btf_trace_%s", name) >= (int)sizeof(typedef_name))
		return -ENAMETOOLONG;
	btf = btf__load_vmlinux_btf();
	if (!btf)
		return -errno ? -errno : -ENOENT;
	found = btf__find_by_name_kind(btf, typedef_name, BTF_KIND_TYPEDEF) >= 0;
	btf__free(btf);
	return found;
}

/* Opens ELF file `path` for reading its sections, and gives its stat in `out` (may be NULL): 0, -ENOEXEC
 * (not ELF), -EINVAL (not a regular file) or another -errno. */
static int elf_open(const char *path, int *fd, Elf **elf, struct stat *out)
{
	struct stat st;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOSYS;

	/* O_NONBLOCK: a FIFO given as a binary must be refused, not wait for a writer. */
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (*fd < 0)
		return -errno;
	if (fstat(*fd, &st) < 0) {
		int error = errno;

		close(*fd);
		return -error;
	}
	if (!S_ISREG(st.st_mode)) {
		close(*fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	if (out)
		*out = st;
	*elf = elf_begin(*fd, ELF_C_READ_MMAP, NULL);
	if (!*elf || elf_kind(*elf) != ELF_K_ELF) {
		if (*elf)
			elf_end(*elf);
		close(*fd);
		return -ENOEXEC;
	}
	return 0;
}

/* A file offset, as a uprobe takes it: the symbol's address less its executable segment's load bias. */
static int symbol_file_offset(Elf *elf, GElf_Addr address, uint64_t *offset)
{
	size_t count;

	if (elf_getphdrnum(elf, &count) != 0)
		return -ENOEXEC;
	for (size_t i = 0; i < count; i++) {
		GElf_Phdr header;

		if (!gelf_getphdr(elf, (int)i, &header) || header.p_type != PT_LOAD || !(header.p_flags & PF_X))
			continue;
		if (address >= header.p_vaddr && address < header.p_vaddr + header.p_memsz) {
			*offset = address - header.p_vaddr + header.p_offset;
			return 0;
		}
	}
	return -ENOEXEC;
}

/* Whether ELF symbol `found` is `wanted`, a versioned dynamic one (`name@VERSION`, `name@@VERSION`) too. */
static int symbol_matches(const char *found, const char *wanted)
{
	size_t len = strlen(wanted);

	return strncmp(found, wanted, len) == 0 && (found[len] == 0 || found[len] == '@');
}

int bt_elf_symbol_offset(const char *path, const char *symbol, uint64_t *offset, uint64_t *device, uint64_t *inode)
{
	int fd, result = -ESRCH;
	Elf *elf;
	Elf_Scn *section = NULL;
	struct stat st;
	int opened = elf_open(path, &fd, &elf, &st);

	if (opened < 0)
		return opened;
	*device = st.st_dev;
	*inode = st.st_ino;
	if (!symbol)
		result = 0;
	/* .symtab first (every function of an unstripped binary), then .dynsym (what a library exports). */
	for (int pass = 0; pass < 2 && result == -ESRCH; pass++) {
		Elf64_Word wanted = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;

		section = NULL;
		while ((section = elf_nextscn(elf, section)) && result == -ESRCH) {
			GElf_Shdr header;
			Elf_Data *data;

			if (!gelf_getshdr(section, &header) || header.sh_type != wanted || !header.sh_entsize)
				continue;
			data = elf_getdata(section, NULL);
			for (size_t i = 0; data && i < header.sh_size / header.sh_entsize; i++) {
				GElf_Sym sym;
				const char *name;
				int type;

				if (!gelf_getsym(data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF || !sym.st_value)
					continue;
				type = GELF_ST_TYPE(sym.st_info);
				if (type != STT_FUNC && type != STT_GNU_IFUNC)
					continue;
				name = elf_strptr(elf, header.sh_link, sym.st_name);
				if (name && symbol_matches(name, symbol))
					result = symbol_file_offset(elf, sym.st_value, offset);
			}
		}
	}
	elf_end(elf);
	close(fd);
	return result;
}

int bt_pmu_type(const char *pmu, uint32_t *type, uint32_t *retprobe_bit)
{
	char path[256], text[64];
	FILE *file;
	int ok;

	snprintf(path, sizeof(path), "/sys/bus/event_source/devices/%s/type", pmu);
	file = fopen(path, "re");
	if (!file)
		return -errno;
	ok = fscanf(file, "%u", type) == 1;
	fclose(file);
	if (!ok)
		return -EINVAL;
	*retprobe_bit = 0;
	snprintf(path, sizeof(path), "/sys/bus/event_source/devices/%s/format/retprobe", pmu);
	file = fopen(path, "re");
	if (file) {
		if (fgets(text, sizeof(text), file) && strncmp(text, "config:", 7) == 0)
			*retprobe_bit = (uint32_t)atoi(text + 7);
		fclose(file);
	}
	return 0;
}

static int perf_event_open(struct perf_event_attr *attr, int pid)
{
	/* A probe of every process (pid -1) is counted on one CPU's worth of events: cpu 0 as libbpf does. */
	return neg_errno(syscall(__NR_perf_event_open, attr, pid, pid == -1 ? 0 : -1, -1, PERF_FLAG_FD_CLOEXEC));
}

int bt_perf_tracepoint_open(uint64_t id)
{
	struct perf_event_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_TRACEPOINT;
	attr.config = id;
	return perf_event_open(&attr, -1);
}

int bt_perf_probe_open(uint32_t pmu_type, uint32_t retprobe_bit, int is_return, const char *name, uint64_t offset,
		       int pid)
{
	struct perf_event_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = pmu_type;
	attr.config = is_return ? 1ull << retprobe_bit : 0;
	attr.config1 = (uint64_t)(uintptr_t)name;
	attr.config2 = offset;
	return perf_event_open(&attr, pid > 0 ? pid : -1);
}

int bt_kernel_function_exists(const char *name)
{
	char line[512], symbol[256];
	FILE *file = fopen("/proc/kallsyms", "re");
	int found = 0;

	if (!file)
		return -errno;
	/* Lines are `ADDRESS TYPE NAME[\t[MODULE]]`. */
	while (!found && fgets(line, sizeof(line), file))
		found = sscanf(line, "%*s %*s %255s", symbol) == 1 && strcmp(symbol, name) == 0;
	fclose(file);
	return found;
}

int bt_elf_symbol_offsets(const char *path, const char *pattern, uint64_t *offsets, uint32_t max)
{
	int fd, count = 0;
	Elf *elf;
	Elf_Scn *section = NULL;
	int opened = elf_open(path, &fd, &elf, NULL);

	if (opened < 0)
		return opened;
	/* Every function whose name matches, from .symtab and .dynsym, each file offset once. */
	while ((section = elf_nextscn(elf, section)) && count >= 0) {
		GElf_Shdr header;
		Elf_Data *data;

		if (!gelf_getshdr(section, &header) || (header.sh_type != SHT_SYMTAB && header.sh_type != SHT_DYNSYM) ||
		    !header.sh_entsize)
			continue;
		data = elf_getdata(section, NULL);
		for (size_t i = 0; data && i < header.sh_size / header.sh_entsize && count >= 0; i++) {
			GElf_Sym sym;
			const char *name;
			char plain[256];
			uint64_t offset;
			int type, seen = 0;

			if (!gelf_getsym(data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF || !sym.st_value)
				continue;
			type = GELF_ST_TYPE(sym.st_info);
			name = elf_strptr(elf, header.sh_link, sym.st_name);
			if ((type != STT_FUNC && type != STT_GNU_IFUNC) || !name)
				continue;
			/* A versioned dynamic name matches by its name alone. */
			snprintf(plain, sizeof(plain), "%.*s", (int)strcspn(name, "@"), name);
			if (fnmatch(pattern, plain, 0) != 0 || symbol_file_offset(elf, sym.st_value, &offset) != 0)
				continue;
			for (int j = 0; j < count && !seen; j++)
				seen = offsets[j] == offset;
			if (seen)
				continue;
			if ((uint32_t)count >= max)
				count = -E2BIG;
			else
				offsets[count++] = offset;
		}
	}
	elf_end(elf);
	close(fd);
	return count;
}

int bt_kernel_functions_matching(const char *pattern, char *names, size_t size, uint32_t max)
{
	char line[512], symbol[256], type[8];
	FILE *file = fopen("/proc/kallsyms", "re");
	size_t used = 0;
	int count = 0;

	if (!file)
		return -errno;
	/* Functions of the kernel proper (text symbols without a module), each written NUL-terminated. */
	while (count >= 0 && fgets(line, sizeof(line), file)) {
		size_t len;

		if (sscanf(line, "%*s %7s %255s", type, symbol) != 2 || (type[0] != 't' && type[0] != 'T') || strchr(line, '[') ||
		    fnmatch(pattern, symbol, 0) != 0)
			continue;
		len = strlen(symbol) + 1;
		if ((uint32_t)count >= max || used + len > size) {
			count = -E2BIG;
			break;
		}
		memcpy(names + used, symbol, len);
		used += len;
		count++;
	}
	fclose(file);
	return count;
}
