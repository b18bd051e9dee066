/* SPDX-License-Identifier: GPL-2.0 */
/* What every iterator program reads first: the seq_file to print into. Only the fields read; CO-RE
 * relocates them against the running kernel's BTF. */
#ifndef BPFTREE_ITER_H
#define BPFTREE_ITER_H

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

#endif
