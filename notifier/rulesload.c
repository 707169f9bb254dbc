/*
 * rulesload.c: read a folder of rule files and compile it (stage: start-up, reload).
 *
 * Blocking file I/O, allowed only at start-up and reload. Must never hand back a
 * half-compiled set: it is all files or nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rulesload.h"


static int
name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rulesload_file *)a)->path, ((const struct rulesload_file *)b)->path);
}

static int
has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

/* Reads the whole of path (at most RULE_SOURCE_MAX bytes) into f. */
static int
read_file(struct rulesload_file *f, struct err *err)
{
	FILE *fp = fopen(f->path, "rb");
	size_t cap = 4096, n = 0, r;
	char *buf = NULL, *nb;

	if (fp == NULL)
		return err_set(err, ERR_INPUT, "unreadable", f->path, "%s: %s", f->path,
		    strerror(errno));
	for (;;) {
		if ((nb = realloc(buf, cap)) == NULL) {
			fclose(fp);
			free(buf);
			return err_set(err, ERR_NOMEM, "no_memory", f->path, "out of memory");
		}
		buf = nb;
		r = fread(buf + n, 1, cap - n, fp);
		n += r;
		if (n > RULE_SOURCE_MAX) {
			fclose(fp);
			free(buf);
			return err_set(err, ERR_INPUT, "too_large", f->path,
			    "%s: larger than %d bytes", f->path, RULE_SOURCE_MAX);
		}
		if (r == 0)
			break;
		if (n == cap)
			cap *= 2;
	}
	if (ferror(fp)) {
		fclose(fp);
		free(buf);
		return err_set(err, ERR_INPUT, "unreadable", f->path, "%s: read error",
		    f->path);
	}
	fclose(fp);
	f->text = buf;
	f->len = n;
	return 0;
}

int
rulesload_read(const char *dir, struct rulesload_file **filesp, size_t *np,
    struct err *err)
{
	struct rulesload_file *files = NULL, *nf;
	struct dirent *de;
	size_t n = 0, cap = 0, i, plen;
	DIR *d = NULL;

	*filesp = NULL;
	*np = 0;
	if (dir == NULL)
		return 0;
	if ((d = opendir(dir)) == NULL)
		return err_set(err, ERR_INPUT, "unreadable", dir, "%s: %s", dir,
		    strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !has_suffix(de->d_name, ".rules"))
			continue;
		if (n == RULE_RULES_MAX) {
			err_set(err, ERR_INPUT, "too_many", dir, "%s: more than %d rule files",
			    dir, RULE_RULES_MAX);
			goto fail;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nf = realloc(files, cap * sizeof(*files))) == NULL)
				goto oom;
			files = nf;
		}
		plen = strlen(dir) + strlen(de->d_name) + 2;
		memset(&files[n], 0, sizeof(files[n]));
		if ((files[n].path = malloc(plen)) == NULL)
			goto oom;
		snprintf(files[n].path, plen, "%s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	d = NULL;
	if (n > 0)
		qsort(files, n, sizeof(*files), name_cmp);
	for (i = 0; i < n; i++)
		if (read_file(&files[i], err) < 0)
			goto fail;
	*filesp = files;
	*np = n;
	return 0;
oom:
	err_set(err, ERR_NOMEM, "no_memory", dir, "out of memory");
fail:
	if (d != NULL)
		closedir(d);
	rulesload_files_free(files, n);
	return -1;
}

void
rulesload_files_free(struct rulesload_file *files, size_t n)
{
	size_t i;

	for (i = 0; files != NULL && i < n; i++) {
		free(files[i].path);
		free(files[i].text);
	}
	free(files);
}

struct rule_set *
rulesload_dir(const char *dir, struct rule_diags *diags, struct err *err)
{
	struct rulesload_file *files;
	struct rule_source *src;
	struct rule_set *rs = NULL;
	size_t n, i;

	if (rulesload_read(dir, &files, &n, err) < 0)
		return NULL;
	if ((src = calloc(n + 1, sizeof(*src))) == NULL) {
		err_set(err, ERR_NOMEM, "no_memory", dir, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		src[i].name = files[i].path;
		src[i].text = files[i].text;
		src[i].len = files[i].len;
	}
	rs = rule_compile(src, n, diags, err);
out:
	free(src);
	rulesload_files_free(files, n);
	return rs;
}

struct rule_set *
rulesload_dir_print(const char *dir, const char *prog)
{
	struct rule_diags diags;
	struct rule_set *rs;
	struct err err;
	char *text;
	size_t need;

	rule_diags_init(&diags);
	err_clear(&err);
	if ((rs = rulesload_dir(dir, &diags, &err)) != NULL)
		return rs;
	if (diags.n == 0) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		return NULL;
	}
	need = rule_diags_format(&diags, NULL, 0) + 1;
	if ((text = malloc(need)) != NULL) {
		rule_diags_format(&diags, text, need);
		fputs(text, stderr);
		free(text);
	}
	fprintf(stderr, "%zu error%s\n", diags.n, diags.n == 1 ? "" : "s");
	rule_diags_free(&diags);
	return NULL;
}

int
rulesload_check(const char *dir, const char *prog)
{
	struct rule_set *rs = rulesload_dir_print(dir, prog);

	if (rs == NULL)
		return 1;
	printf("%s: %zu rules, no errors\n", dir, rule_set_count(rs));
	rule_set_free(rs);
	return 0;
}
