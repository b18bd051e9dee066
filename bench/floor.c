/* Required work bpftree cannot skip, timed alone for bench/run's S1 rows: what the C limit does not do
 * but any tool meeting the mission must.
 *
 *   floor yaml FILE     read FILE, then parse it with the system libyaml (the mission's parser), events only
 *   floor ledger MAPS   the ownership ledger's writes for MAPS new maps, as bpftree makes them: a hash map
 *                       like bpftree_ledger (key 256, value 96, no_prealloc), an intent record then the owned
 *                       record per map, in batches of 1024 (BPF_MAP_UPDATE_BATCH)
 *
 * bench/run times the whole process with `limit run`. */
#include <bpf/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static int parse(const char *path)
{
	/* Read whole, as bpftree does, then parse from memory. */
	FILE *file = fopen(path, "rb");
	if (!file || fseek(file, 0, SEEK_END) != 0) {
		perror(path);
		return 1;
	}
	long size = ftell(file);
	unsigned char *text = malloc(size > 0 ? size : 1);
	rewind(file);
	if (size < 0 || fread(text, 1, size, file) != (size_t)size) {
		perror(path);
		return 1;
	}
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, text, size);
	for (;;) {
		yaml_event_t event;
		if (!yaml_parser_parse(&parser, &event)) {
			fprintf(stderr, "%s: malformed YAML\n", path);
			return 1;
		}
		int done = event.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&event);
		if (done)
			break;
	}
	yaml_parser_delete(&parser);
	fclose(file);
	return 0;
}

static int ledger(int maps)
{
	LIBBPF_OPTS(bpf_map_create_opts, options, .map_flags = BPF_F_NO_PREALLOC);
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bpftree_ledger", 256, 96, 1 << 18, &options);
	if (fd < 0) {
		perror("BPF_MAP_CREATE");
		return 1;
	}
	enum { chunk = 1024 };
	char *keys = calloc(chunk, 256), *values = calloc(chunk, 96);
	for (int state = 0; state < 2; state++) {
		for (int start = 0; start < maps; start += chunk) {
			__u32 count = maps - start < chunk ? maps - start : chunk;
			for (__u32 i = 0; i < count; i++) {
				memset(keys + i * 256, 0, 256);
				snprintf(keys + i * 256, 256, "d%04d/m%02d", (start + i) / 20, (start + i) % 20);
				values[i * 96] = (char)state;
			}
			LIBBPF_OPTS(bpf_map_batch_opts, batch);
			if (bpf_map_update_batch(fd, keys, values, &count, &batch)) {
				perror("BPF_MAP_UPDATE_BATCH");
				return 1;
			}
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "yaml") == 0)
		return parse(argv[2]);
	if (argc == 3 && strcmp(argv[1], "ledger") == 0)
		return ledger(atoi(argv[2]));
	fprintf(stderr, "usage: floor yaml FILE | floor ledger MAPS\n");
	return 2;
}
