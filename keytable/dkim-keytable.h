/*
 * OpenDKIM's KeyTable and SigningTable, read from the same files an
 * OpenDKIM installation uses, with OpenDKIM's semantics (opendkim.conf(5)).
 *
 * Plain C without Dovecot dependencies, so it is unit-tested on its own
 * (tests/unit/test-keytable.c).  Errors are reported in a struct
 * dkim_error (dkim.h), naming the file and line.
 *
 * KeyTable: one entry per line, "KEYNAME DOMAIN:SELECTOR:KEY".  DOMAIN "%"
 * stands for the sender's domain.  KEY is a file when it starts with "/",
 * "./" or "../" (a "%" in it is replaced by the sender's domain), otherwise
 * the private key itself (base64, one line).  The sender's domain is put
 * in for '%' only when it is a valid domain name (see
 * dkim_keytable_select()).
 *
 * SigningTable: one entry per line, "PATTERN KEYNAME [SIGNER]" (KEYNAME and
 * SIGNER may also be separated by ':').  KEYNAME "%" stands for the sender's
 * domain; every "%" in SIGNER (the i= value) is replaced by it.  With
 * "refile:" the PATTERN is a wildcard ('*' matches any run of characters)
 * matched against the From address, in file order.  A plain "file:" table
 * is looked up as OpenDKIM does: "user@host", "host", "user@.parent" for
 * each parent domain, ".parent" for each parent domain, "user@*", "*".
 *
 * Comments start with '#' and run to the end of the line.  Names, patterns
 * and addresses are compared case-insensitively.
 *
 * "dict:NAME" tables are not files but a key-value store that answers one
 * key at a time (a Dovecot dict, for the submission plugin): the program
 * fetches the entries one address needs into tables built with
 * dkim_keytable_new() and dkim_signingtable_new() (dkim-keyed-table.h
 * does it, with a cache), and selects from them with the same rules.
 * Such a SigningTable is looked up by dkim_dict_signing_keys().
 */
#ifndef DKIM_KEYTABLE_H
#define DKIM_KEYTABLE_H

#include "dkim.h"

#include <stdbool.h>
#include <stddef.h>

enum dkim_table_kind {
	DKIM_TABLE_FILE = 0,	/* "file:PATH" or a bare path */
	DKIM_TABLE_REFILE,	/* "refile:PATH": wildcard patterns */
	DKIM_TABLE_DICT,	/* "dict:NAME": one key at a time */
};

/* Splits a table setting "[file:|refile:]PATH" or "dict:NAME" (what NAME
 * means is up to the program that reads the dict).  Other OpenDKIM data
 * set types (db:, dsn:, ldap:, csl: ...) are refused with an
 * explanation.  *path_r points into spec. */
int dkim_table_spec_parse(const char *spec, enum dkim_table_kind *kind_r,
			  const char **path_r, struct dkim_error *error);

/* Largest table file read, to bound memory on a mistaken path. */
#define DKIM_TABLE_MAX_FILE_SIZE (64 * 1024 * 1024)

/* Reads a whole regular file of at most DKIM_TABLE_MAX_FILE_SIZE bytes
 * into a malloc()ed, NUL-terminated buffer (*size_r excludes the NUL).
 * Every OpenDKIM flat-file data set is read this way. */
int dkim_table_read_file(const char *path, char **text_r, size_t *size_r,
			 struct dkim_error *error);

/* One non-empty line of an OpenDKIM flat file ("file:" or "refile:"): the
 * first word and the rest, both trimmed; '#' starts a comment. */
struct dkim_table_line {
	unsigned number;
	char *key;
	char *value;		/* "" when missing */
};

typedef int dkim_table_line_func(void *context,
				 const struct dkim_table_line *line,
				 const char *source, struct dkim_error *error);

/* Cuts `text` (NUL-terminated, modified in place: the line's strings point
 * into it) into lines and calls `handle` for each non-empty one, stopping
 * at the first that fails.  With `value_required`, a line that is only a
 * key is an error naming `source` and the line. */
int dkim_table_for_each_line(char *text, const char *source,
			     bool value_required, dkim_table_line_func *handle,
			     void *context, struct dkim_error *error);

/* ------------------------------------------------------------------ */

struct dkim_keytable;

struct dkim_keytable_entry {
	const char *name;
	const char *domain;	/* "%" = the sender's domain */
	const char *selector;
	const char *key;	/* file name or inline key */
	unsigned line;		/* 0 for an entry from dkim_keytable_add() */
};

/* `source` names the text in error messages (normally the file name). */
int dkim_keytable_parse(const char *text, size_t size, const char *source,
			struct dkim_keytable **table_r,
			struct dkim_error *error);
int dkim_keytable_load(const char *path, struct dkim_keytable **table_r,
		       struct dkim_error *error);
/* An empty KeyTable, for entries from a key-value store. */
struct dkim_keytable *dkim_keytable_new(void);
/* Adds the entry `name` with the value "DOMAIN:SELECTOR:KEY" as a store
 * holds it: KEY (with the whitespace around it removed) may also be a PEM
 * private key, line breaks and all.  `source` names the store in
 * errors.  The table keeps copies. */
int dkim_keytable_add(struct dkim_keytable *table, const char *name,
		      const char *value, const char *source,
		      struct dkim_error *error);
/* The first entry with this name, or NULL. */
const struct dkim_keytable_entry *
dkim_keytable_lookup(const struct dkim_keytable *table, const char *name);
/* The entries in table order: count, and the one at index (< count). */
size_t dkim_keytable_count(const struct dkim_keytable *table);
const struct dkim_keytable_entry *
dkim_keytable_entry(const struct dkim_keytable *table, size_t index);
/* True if an entry's KEY names a file ("/", "./" or "../" first), false
 * if it is the key itself. */
bool dkim_keytable_key_is_file(const char *key);
void dkim_keytable_free(struct dkim_keytable **table);

/* ------------------------------------------------------------------ */

struct dkim_signingtable;

struct dkim_signingtable_entry {
	const char *pattern;
	const char *keyname;	/* "%" = the sender's domain */
	const char *signer;	/* i= template, or NULL */
	unsigned line;		/* 0 for an entry from dkim_signingtable_add() */
};

int dkim_signingtable_parse(const char *text, size_t size,
			    enum dkim_table_kind kind, const char *source,
			    struct dkim_signingtable **table_r,
			    struct dkim_error *error);
int dkim_signingtable_load(const char *path, enum dkim_table_kind kind,
			   struct dkim_signingtable **table_r,
			   struct dkim_error *error);
/* The entries in table order: count, and the one at index (< count). */
size_t dkim_signingtable_count(const struct dkim_signingtable *table);
const struct dkim_signingtable_entry *
dkim_signingtable_entry(const struct dkim_signingtable *table, size_t index);

/* An empty SigningTable of this kind, for entries from a key-value store
 * (DKIM_TABLE_DICT). */
struct dkim_signingtable *dkim_signingtable_new(enum dkim_table_kind kind);
/* Adds an entry (copies of the strings; signer may be NULL). */
void dkim_signingtable_add(struct dkim_signingtable *table,
			   const char *pattern, const char *keyname,
			   const char *signer);

/* The keys a DKIM_TABLE_DICT SigningTable is looked up with for a From
 * address (local@domain), in this order: the address, the domain, each
 * parent domain (so "example.com" also applies to mail from
 * sub.example.com unless that has an entry of its own), then "*".  All
 * lowercase; a key that would hold a '/' (a local part with one) is left
 * out, since the store's keys are paths.  Returns a NULL-terminated
 * array; free it with dkim_table_strings_free(). */
char **dkim_dict_signing_keys(const char *address);
/* Frees a NULL-terminated array of strings and sets *strings to NULL. */
void dkim_table_strings_free(char ***strings);

/* Most warnings kept for one table; one more then counts the rest. */
#define DKIM_TABLE_MAX_WARNINGS 10

/* What is legal but probably not meant, found while parsing, as a
 * NULL-terminated list of texts naming the file and line, for the caller
 * to report once per load.  The table owns them.  Today these are the
 * refile: patterns that dkim_wildcard_unanchored() finds: "*tenant.com"
 * also matches evil-tenant.com (as in OpenDKIM). */
const char *const *
dkim_signingtable_warnings(const struct dkim_signingtable *table);

/* Which entries apply to a From address (local@domain):
 *
 *   all_matches = false: the first matching pattern (in file order for
 *     refile:, in lookup order for file: and dict:) wins, with every line
 *     that has that same pattern; so two lines "*@example.com rsa-key" and
 *     "*@example.com ed25519-key" give two signatures, and a later
 *     catch-all "*" does not add a third.
 *   all_matches = true: every matching line (OpenDKIM's
 *     "MultipleSignatures yes").
 *
 * Stores up to `max_matches` entries in `matches` and returns how many
 * matched in total. */
size_t dkim_signingtable_match(const struct dkim_signingtable *table,
			       const char *address, bool all_matches,
			       const struct dkim_signingtable_entry **matches,
			       size_t max_matches);
/* The entries in file order. */
size_t dkim_signingtable_count(const struct dkim_signingtable *table);
const struct dkim_signingtable_entry *
dkim_signingtable_entry(const struct dkim_signingtable *table, size_t index);
void dkim_signingtable_free(struct dkim_signingtable **table);

/* True if `text` matches the wildcard `pattern` as a whole ('*' matches
 * any run of characters, everything else itself, case-insensitively).
 * Also used for the dkim_sign_from address patterns. */
bool dkim_wildcard_match(const char *pattern, const char *text);

/* Room for a text of dkim_wildcard_unanchored() that quotes a pattern of
 * up to 100 characters (twice) whole. */
#define DKIM_WILDCARD_WARNING_MAX 512

/* Whether `pattern` is legal but probably not meant: a '*' in its domain
 * part (after the last '@', or all of it without one) that runs straight
 * into a label, as in "*tenant.com", also matches longer names that merely
 * end in it (evil-tenant.com).  A '*' before '@' or '.', a lone '*', and a
 * '*' in the local part (which cannot reach into the domain) are anchored.
 * If so, writes why and the anchored forms into `text` (`size` bytes, cut
 * when longer) and returns true.  For the SigningTable's refile: patterns
 * and the dkim_sign_from / SignFromTable patterns alike. */
bool dkim_wildcard_unanchored(const char *pattern, char *text, size_t size);

/* ------------------------------------------------------------------ */

/* One signature to make, with every '%' already replaced. */
struct dkim_key_choice {
	char *keyname;
	char *domain;		/* d= */
	char *selector;		/* s= */
	char *key;		/* file name, or the key itself */
	bool key_is_file;
	char *identity;		/* i=, or NULL (dropped if not within d=) */
};

enum dkim_keytable_select_result {
	/* A configuration mistake (error set). */
	DKIM_KEYTABLE_SELECT_ERROR = -1,
	/* *choices_r holds the signatures; *count_r may be 0 (no entry
	 * matches). */
	DKIM_KEYTABLE_SELECT_OK = 0,
	/* An entry that applies puts the sender's domain in for '%', but it
	 * is not a valid domain name (dkim_domain_syntax_ok(): labels of
	 * letters, digits, '-' and '_', so no '/', no "..", at most 253
	 * characters).  The sender's doing, not the administrator's: no key
	 * applies (*count_r is 0), and `error` says why. */
	DKIM_KEYTABLE_SELECT_BAD_DOMAIN = 1,
};

/* The signatures the tables ask for on a message from `address`
 * (local@domain), in table order, without duplicate key names.  Returns a
 * dkim_keytable_select_result.  A SigningTable entry naming a key that the
 * KeyTable lacks is an error: it is a configuration mistake that must not
 * silently leave mail unsigned.  Either every signature the matching
 * entries ask for is chosen, or none. */
int dkim_keytable_select(const struct dkim_signingtable *signingtable,
			 const struct dkim_keytable *keytable,
			 const char *address, bool all_matches,
			 struct dkim_key_choice **choices_r, size_t *count_r,
			 struct dkim_error *error);
void dkim_key_choices_free(struct dkim_key_choice **choices, size_t count);

#endif
