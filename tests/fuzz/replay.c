// SPDX-License-Identifier: MIT
/*
 * Replays a fuzz corpus through a libFuzzer harness without libFuzzer, so
 * `make test` exercises every committed input under the sanitizers.
 * Usage: replay_X DIR|FILE...   Prints one TAP line per input.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count;

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long size;

	if (!f) {
		printf("not ok %d - %s: cannot open\n", ++count, path);
		return 1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		printf("not ok %d - %s: cannot size\n", ++count, path);
		return 1;
	}
	/* an exact-size heap copy so ASan catches reads past the input */
	buf = malloc(size ? (size_t)size : 1);
	if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
		free(buf);
		fclose(f);
		printf("not ok %d - %s: cannot read\n", ++count, path);
		return 1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)size);
	free(buf);
	printf("ok %d - %s\n", ++count, path);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir)
{
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	int bad = 0;
	DIR *d = opendir(dir);

	if (!d) {
		printf("not ok %d - %s: cannot open directory\n", ++count, dir);
		return 1;
	}
	while ((de = readdir(d))) {
		char **grown;

		if (de->d_name[0] == '.')
			continue;
		grown = realloc(names, (n + 1) * sizeof(*names));
		if (!grown || asprintf(&grown[n], "%s/%s", dir, de->d_name) < 0) {
			free(grown ? grown : names);
			closedir(d);
			printf("not ok %d - out of memory\n", ++count);
			return 1;
		}
		names = grown;
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp);
	for (size_t i = 0; i < n; i++) {
		bad |= replay_file(names[i]);
		free(names[i]);
	}
	free(names);
	if (n == 0) {
		printf("not ok %d - %s: empty corpus\n", ++count, dir);
		bad = 1;
	}
	return bad;
}

int main(int argc, char **argv)
{
	int bad = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			bad |= replay_dir(argv[i]);
		else
			bad |= replay_file(argv[i]);
	}
	printf("1..%d\n", count);
	return bad;
}
