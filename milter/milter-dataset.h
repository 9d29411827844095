/*
 * OpenDKIM's data sets (opendkim(8), DATA SETS), the types dkim-milter
 * reads: a comma-separated list ("csl:a,b", or any value without a type
 * that does not start with '/'), a flat file ("file:PATH" or "/PATH": one
 * entry per line, "KEY [VALUE]", '#' comments) and a pattern file
 * ("refile:PATH": the keys are wildcards, '*' matching any run of
 * characters, tried in file order).  A list element "key=value" has a
 * value.  Database, LDAP, Lua and the other types are refused by name,
 * never read as a list.
 *
 * KeyTable and SigningTable are data sets too; they are read by the
 * keytable library (dkim-keytable.h), which the submission plugin shares.
 */
#ifndef MILTER_DATASET_H
#define MILTER_DATASET_H

#include "dkim.h"

#include <stdbool.h>
#include <stddef.h>

enum milter_dataset_kind {
	MILTER_DATASET_LIST,		/* csl: or file: keys, exact */
	MILTER_DATASET_PATTERNS,	/* refile: wildcard keys */
};

struct milter_dataset_entry {
	const char *key;
	const char *value;	/* NULL when the entry has none */
	unsigned line;		/* in the file; 0 in a list */
};

struct milter_dataset;

/* What a specification names: a file to read (*path_r points into spec),
 * or, with *path_r NULL, a list in the specification itself.  Fails for
 * the types dkim-milter does not read. */
int milter_dataset_spec(const char *spec, enum milter_dataset_kind *kind_r,
			const char **path_r, struct dkim_error *error);

/* Opens a data set: parses a list, or reads and parses the file now. */
int milter_dataset_open(const char *spec, struct milter_dataset **set_r,
			struct dkim_error *error);

/* The parsers behind milter_dataset_open(), on text in memory (`source`
 * names it in errors). */
struct milter_dataset *milter_dataset_parse_list(const char *list);
int milter_dataset_parse_file(const char *text, size_t size,
			      enum milter_dataset_kind kind,
			      const char *source,
			      struct milter_dataset **set_r,
			      struct dkim_error *error);

void milter_dataset_free(struct milter_dataset **set);

/* The entries in order, and where they came from ("list" or the file). */
size_t milter_dataset_count(const struct milter_dataset *set);
const struct milter_dataset_entry *
milter_dataset_entry(const struct milter_dataset *set, size_t index);
enum milter_dataset_kind milter_dataset_kind(const struct milter_dataset *set);
const char *milter_dataset_source(const struct milter_dataset *set);

/* The first entry whose key is `key` (case-insensitively) or, in a
 * pattern file, whose pattern matches it; NULL if none. */
const struct milter_dataset_entry *
milter_dataset_find(const struct milter_dataset *set, const char *key);

/* OpenDKIM's lookup of an address in a data set (ResignMailTo): the full
 * address, then its domain, then ".parent" for each parent domain. */
const struct milter_dataset_entry *
milter_dataset_find_address(const struct milter_dataset *set,
			    const char *address);

/* A value's items: OpenDKIM separates them with ':' in files; ',' and
 * blanks are taken too.  Returns a NULL-terminated malloc()ed array of
 * malloc()ed strings (free with milter_strings_free()); NULL for none. */
char **milter_dataset_split_value(const char *value);
void milter_strings_free(char ***strings);

#endif
