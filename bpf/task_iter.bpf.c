// SPDX-License-Identifier: GPL-2.0
/* Lists the processes of the machine (examples/task-iter):
 *   list_tasks   iter/task: a pinned task iterator; reading the pin prints "pid tid comm" per thread.
 * Built with scripts/build-bpf.sh (manifests name the object file). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "iter.h"

char LICENSE[] SEC("license") = "GPL";

/* Only the fields read here; CO-RE relocates them against the running kernel's BTF. */
struct task_struct {
	int pid;
	int tgid;
	char comm[16];
} __attribute__((preserve_access_index));

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));

SEC("iter/task")
int list_tasks(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	/* Called once more with no task at the end of the walk. */
	if (!task)
		return 0;
	BPF_SEQ_PRINTF(seq, "%d %d %s\n", task->tgid, task->pid, task->comm);
	return 0;
}
