/* What this kernel has, from its own BTF: the string section of /sys/kernel/btf/vmlinux names every
 * member of the uapi enums (BPF_LINK_TYPE_TCX, BPF_PROG_TYPE_NETFILTER, BPF_TOKEN_CREATE, ...) the kernel
 * was built with. Read raw: no type is parsed, so this costs one read of a few MB. */
#define _GNU_SOURCE
#include "shim_features.h"
#include "shim_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/btf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_at(int fd, void *buf, size_t len, off_t offset)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, offset + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

int bt_vmlinux_btf_strings(char **out, size_t *len)
{
	struct btf_header header;
	char *strings;
	int fd, ret;

	*out = NULL;
	*len = 0;
	fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = read_at(fd, &header, sizeof(header), 0);
	if (ret == 0 && (header.magic != BTF_MAGIC || header.hdr_len < sizeof(header) || header.str_len > (64u << 20)))
		ret = -EINVAL;
	if (ret == 0) {
		strings = malloc(header.str_len + 1);
		if (!strings) {
			ret = -ENOMEM;
		} else if ((ret = read_at(fd, strings, header.str_len, (off_t)header.hdr_len + header.str_off)) < 0) {
			free(strings);
		} else {
			strings[header.str_len] = '\0';
			*out = strings;
			*len = header.str_len;
		}
	}
	close(fd);
	return ret;
}
