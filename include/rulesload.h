/*
 * rulesload.h: read a folder of rule files and compile it (stage: start-up, reload).
 *
 * The only place rule files are read. Used at start, on SIGHUP and by
 * `notifier --check-rules DIR`. A set that fails to compile never replaces a working
 * one: the caller keeps its old set when this returns NULL.
 */
#ifndef DEALPUSH_RULESLOAD_H
#define DEALPUSH_RULESLOAD_H

#include <stddef.h>

#include "err.h"
#include "rules.h"

/* One rule file as read: "dir/name.rules" and its bytes (not NUL-terminated). */
struct rulesload_file {
	char *path;
	char *text;
	size_t len;
};

/*
 * Reads every "*.rules" file directly in dir, in name order, into a new array the
 * caller frees with rulesload_files_free (dir NULL: none). A folder or file that
 * cannot be read, or a file larger than RULE_SOURCE_MAX, is an error (ERR_INPUT,
 * naming the path); *files is then NULL. Returns 0 or -1.
 */
int rulesload_read(const char *dir, struct rulesload_file **files, size_t *n,
    struct err *err);

/* Frees what rulesload_read returned. */
void rulesload_files_free(struct rulesload_file *files, size_t n);

/*
 * Compiles every "*.rules" file directly in dir, in name order (dir NULL: no files,
 * the built-in default rule). Returns the new set, or NULL with *err filled and, for
 * compile errors, every error appended to diags (file names are "dir/name").
 * A folder that cannot be read, a file that cannot be read or is larger than
 * RULE_SOURCE_MAX is an error too (ERR_INPUT, naming the path).
 */
struct rule_set *rulesload_dir(const char *dir, struct rule_diags *diags,
    struct err *err);

/* rulesload_dir for a command line: every error (file, line, column) and their count
 * printed on stderr, prog naming the program in other messages. The set, or NULL. */
struct rule_set *rulesload_dir_print(const char *dir, const char *prog);

/*
 * `notifier --check-rules DIR` (start-up only: it prints): compiles dir, prints
 * "DIR: N rules, no errors" on stdout, or every error (file, line, column) and their
 * count on stderr, prog naming the program in other messages. Returns the exit
 * status: 0 when the folder compiles, else 1.
 */
int rulesload_check(const char *dir, const char *prog);

#endif
