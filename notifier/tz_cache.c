/*
 * tz_cache.c: the zones a process uses, loaded from tzdata into one cache (stage: all
 * that read local time: plan, admit, send, simulate, the subscriber checks).
 *
 * The notifier loads every zone of the directory at start-up (tzcache_load_all), so
 * that no zone in use is read from a file inside the event loop (a name not loaded
 * then, such as one under posix/, is still looked up on disk); SIGHUP re-reads them in place
 * (tzcache_reload), so that a tzdata update needs no restart and every zone pointer
 * handed out stays valid. Lookups go through an open-addressing index of the names.
 * Zone files are untrusted: tz_parse.c checks them whole.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "tz.h"
#include "tz_int.h"

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_FILE_MAX (256 * 1024)  /* real TZif files are under 4 KiB */
#define TZ_WALK_DEPTH 3           /* America/Argentina/Buenos_Aires */

struct tzcache {
	char *dir;
	size_t max, n, cap;
	struct tz **zones;
	uint32_t *slots;      /* index of the names: zone number + 1, 0 = empty */
	size_t nslots;        /* a power of two, more than twice n */
	int walked;           /* tzcache_load_all ran: a reload walks the directory too */
};

static void tz_free(struct tz *z)
{
	if (z == NULL)
		return;
	free(z->trans);
	free(z->trans_type);
	free(z->types);
	free(z);
}

/* name := segment ('/' segment)*, segment := [A-Za-z0-9_+-]+, at most TZ_NAME_MAX.
 * '.' is not allowed at all, so "." and ".." cannot appear. */
static int tz_name_ok(const char *name)
{
	size_t i, seg = 0;
	int c;

	for (i = 0; name[i] != '\0'; i++) {
		if (i >= TZ_NAME_MAX)
			return 0;
		c = (unsigned char)name[i];
		if (c == '/') {
			if (seg == 0)
				return 0;
			seg = 0;
		} else if (tz_is_alpha(c) || tz_is_digit(c) || c == '_' || c == '+' || c == '-') {
			seg++;
		} else {
			return 0;
		}
	}
	return seg > 0;
}

/* Reads the whole of path into *out (caller frees). */
static int tz_read_file(const char *path, const char *name, unsigned char **out,
    size_t *len, struct err *err)
{
	struct stat st;
	unsigned char *buf = NULL;
	size_t got = 0;
	ssize_t r;
	int fd, rc = -1;

	/* O_NONBLOCK: a FIFO planted under the directory must not hang the loop */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return err_set(err, ERR_INPUT, "not_found", "tz",
			    "%s: unknown time zone", name);
		return err_set(err, ERR_TEMP, "not_found", "tz", "%s: %s", name,
		    strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		err_set(err, ERR_INPUT, "not_found", "tz", "%s: not a zone file", name);
		goto end;
	}
	if (st.st_size > TZ_FILE_MAX) {
		err_set(err, ERR_INPUT, "bad_tzif", "tz", "%s: file too large", name);
		goto end;
	}
	buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (buf == NULL) {
		err_set(err, ERR_NOMEM, "nomem", "tz", "%s: out of memory", name);
		goto end;
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err_set(err, ERR_TEMP, "not_found", "tz", "%s: %s", name,
			    strerror(errno));
			goto end;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*out = buf;
	*len = got;
	buf = NULL;
	rc = 0;
end:
	free(buf);
	close(fd);
	return rc;
}

/* Loads one zone from the cache's directory; UTC is built in when the file is absent. */
static struct tz *tz_load(const struct tzcache *c, const char *name, struct err *err)
{
	struct tz *z;
	struct err e;
	unsigned char *data = NULL;
	size_t len = 0;
	char path[4096];
	int n;

	err_clear(&e);
	z = calloc(1, sizeof(*z));
	if (z == NULL) {
		err_set(err, ERR_NOMEM, "nomem", "tz", "%s: out of memory", name);
		return NULL;
	}
	memcpy(z->name, name, strlen(name) + 1);
	n = snprintf(path, sizeof(path), "%s/%s", c->dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		err_set(&e, ERR_INPUT, "not_found", "tz", "%s: path too long", name);
		goto fail;
	}
	if (tz_read_file(path, name, &data, &len, &e) != 0) {
		if (e.kind == ERR_INPUT && strcmp(e.code, "not_found") == 0 &&
		    (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)) {
			z->types = calloc(1, sizeof(*z->types));
			if (z->types == NULL) {
				err_set(&e, ERR_NOMEM, "nomem", "tz", "%s: out of memory",
				    name);
				goto fail;
			}
			z->ntypes = 1;
			memcpy(z->types[0].abbr, "UTC", 4);
			return z;
		}
		goto fail;
	}
	if (tzif_parse(data, len, z, &e) != 0)
		goto fail;
	free(data);
	return z;
fail:
	if (err != NULL)
		*err = e;
	free(data);
	tz_free(z);
	return NULL;
}

struct tzcache *tzcache_new(const char *tzdir, size_t max_zones)
{
	struct tzcache *c;
	const char *env;

	if (max_zones == 0 || max_zones > UINT32_MAX - 1)
		return NULL;
	if (tzdir == NULL) {
		env = getenv("TZDIR");
		tzdir = env != NULL && env[0] != '\0' ? env : TZ_DEFAULT_DIR;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->dir = strdup(tzdir);
	if (c->dir == NULL) {
		free(c);
		return NULL;
	}
	c->max = max_zones;
	return c;
}

size_t tzcache_count(const struct tzcache *c)
{
	return c != NULL ? c->n : 0;
}

void tzcache_free(struct tzcache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		tz_free(c->zones[i]);
	free(c->zones);
	free(c->slots);
	free(c->dir);
	free(c);
}

static uint32_t
name_hash(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h;
}

/* The zone named name, or NULL. */
static struct tz *
index_find(const struct tzcache *c, const char *name)
{
	size_t i, mask = c->nslots - 1;

	if (c->nslots == 0)
		return NULL;
	for (i = name_hash(name) & mask; c->slots[i] != 0; i = (i + 1) & mask)
		if (strcmp(c->zones[c->slots[i] - 1]->name, name) == 0)
			return c->zones[c->slots[i] - 1];
	return NULL;
}

/* Indexes zone k, growing the index first when it would be more than half full. */
static int
index_add(struct tzcache *c, size_t k)
{
	size_t i, j, mask;

	if (2 * (c->n + 1) > c->nslots) {
		size_t ns = c->nslots ? c->nslots * 2 : 64;
		uint32_t *s = calloc(ns, sizeof(*s));

		if (s == NULL)
			return -1;
		free(c->slots);
		c->slots = s;
		c->nslots = ns;
		for (j = 0; j < c->n; j++)   /* every zone but k, which is added below */
			if (j != k) {
				for (i = name_hash(c->zones[j]->name) & (ns - 1); s[i] != 0;
				    i = (i + 1) & (ns - 1))
					;
				s[i] = (uint32_t)j + 1;
			}
	}
	mask = c->nslots - 1;
	for (i = name_hash(c->zones[k]->name) & mask; c->slots[i] != 0; i = (i + 1) & mask)
		;
	c->slots[i] = (uint32_t)k + 1;
	return 0;
}

const struct tz *tz_get(struct tzcache *c, const char *name, struct err *err)
{
	struct tz *z, **grown;
	size_t cap;

	if (c == NULL || name == NULL || !tz_name_ok(name)) {
		err_set(err, ERR_INPUT, "bad_value", "tz", "not a time zone name");
		return NULL;
	}
	if ((z = index_find(c, name)) != NULL)
		return z;
	if (c->n == c->max) {
		err_set(err, ERR_PERM, "cache_full", "tz", "%s: %zu zones already loaded",
		    name, c->max);
		return NULL;
	}
	if (c->n == c->cap) {
		cap = c->cap ? c->cap * 2 : 8;
		if (cap > c->max || cap < c->cap)
			cap = c->max;
		grown = cap > SIZE_MAX / sizeof(*grown) ? NULL :
		    realloc(c->zones, cap * sizeof(*grown));
		if (grown == NULL) {
			err_set(err, ERR_NOMEM, "nomem", "tz", "%s: out of memory", name);
			return NULL;
		}
		c->zones = grown;
		c->cap = cap;
	}
	z = tz_load(c, name, err);
	if (z == NULL)
		return NULL;
	c->zones[c->n] = z;
	if (index_add(c, c->n) < 0) {
		tz_free(z);
		err_set(err, ERR_NOMEM, "nomem", "tz", "%s: out of memory", name);
		return NULL;
	}
	c->n++;
	return z;
}

/*
 * Loads every zone file under dir/rel (depth levels left): regular files whose name
 * is a zone name and whose content is a valid TZif file; the rest (tables, the
 * posix/ and right/ copies, anything else) is skipped. -1 only when the cache is
 * full or out of memory.
 */
static int
walk(struct tzcache *c, const char *rel, int depth, struct err *err)
{
	char path[4096], name[TZ_NAME_MAX + 1];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc = 0, n;

	n = snprintf(path, sizeof(path), "%s%s%s", c->dir, rel[0] ? "/" : "", rel);
	if (n < 0 || (size_t)n >= sizeof(path) || (d = opendir(path)) == NULL)
		return 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		struct err e;

		if (de->d_name[0] == '.' || (rel[0] == '\0' &&
		    (strcmp(de->d_name, "posix") == 0 || strcmp(de->d_name, "right") == 0)))
			continue;
		n = snprintf(name, sizeof(name), "%s%s%s", rel, rel[0] ? "/" : "",
		    de->d_name);
		if (n < 0 || (size_t)n >= sizeof(name) || !tz_name_ok(name) ||
		    fstatat(dirfd(d), de->d_name, &st, 0) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth > 0)
				rc = walk(c, name, depth - 1, err);
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		err_clear(&e);
		if (tz_get(c, name, &e) == NULL &&
		    (strcmp(e.code, "cache_full") == 0 || strcmp(e.code, "nomem") == 0)) {
			if (err != NULL)
				*err = e;
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}

int tzcache_load_all(struct tzcache *c, struct err *err)
{
	if (c == NULL)
		return err_set(err, ERR_INPUT, "bad_value", "tz", "no cache");
	if (walk(c, "", TZ_WALK_DEPTH, err) < 0 ||
	    tz_get(c, "UTC", err) == NULL || tz_get(c, "Etc/UTC", err) == NULL)
		return -1;
	c->walked = 1;
	return 0;
}

int tzcache_reload(struct tzcache *c, struct err *err)
{
	size_t i;

	if (c == NULL)
		return err_set(err, ERR_INPUT, "bad_value", "tz", "no cache");
	for (i = 0; i < c->n; i++) {
		struct tz *old = c->zones[i], *z = tz_load(c, old->name, NULL), keep;

		if (z == NULL)   /* gone or broken now: the zone as it was stays */
			continue;
		/* in place: whoever holds the zone's pointer sees the new rules */
		keep = *old;
		*old = *z;
		*z = keep;
		tz_free(z);
	}
	return c->walked ? tzcache_load_all(c, err) : 0;
}
