/* The KeyTable and SigningTable as dkim-keys reads and changes them: files
 * (changed by writing a new file and renaming it over the old one, so a
 * signing process sees the old table or the new, never a part) or a
 * Dovecot dict (through doveadm-dict.h), in the layout of
 * dkim-keyed-table.h. */
#ifndef KEYS_TABLES_H
#define KEYS_TABLES_H

#include "dkim.h"
#include "dkim-keytable.h"
#include "doveadm-dict.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* dkim-keys' own notes about a key: in a KeyTable file the comment at the
 * end of the key's line, "# dkim-keys: NOTE"; in a dict the value of
 * dkim/note/NAME.  NOTE is "name=value" words. */
#define KEYS_NOTE_MARK "# dkim-keys:"
#define KEYS_NOTE_CREATED "created"		/* made by rotate */
#define KEYS_NOTE_RETIRED "retired"		/* switched away from */
#define KEYS_NOTE_REMOVE_AFTER "remove-after"	/* end of the grace */

struct keys_key {
	char *name;
	char *domain;
	char *selector;
	char *key;		/* the file, or the key itself */
	bool key_is_file;
	char *note;		/* "" when there is none */
};

struct keys_signing {
	char *pattern;
	char **keynames;	/* NULL-terminated */
};

struct keys_table_options {
	const char *doveadm;		/* program for dict tables */
	const char *doveadm_config;	/* its -c, or NULL */
};

struct keys_tables;

/* Opens (and reads) the two tables, given as the submission plugin takes
 * them: "[file:|refile:]PATH" or "dict:NAME". */
int keys_tables_open(const char *keytable, const char *signingtable,
		     const struct keys_table_options *options,
		     struct keys_tables **tables_r, struct dkim_error *error);
void keys_tables_free(struct keys_tables **tables);

/* True when the KeyTable is a dict (new keys are stored in it, in PEM). */
bool keys_tables_keys_in_dict(const struct keys_tables *tables);

const struct keys_key *keys_tables_keys(const struct keys_tables *tables,
					size_t *count_r);
const struct keys_signing *
keys_tables_signing(const struct keys_tables *tables, size_t *count_r);
/* The key of that name (case-insensitively), or NULL. */
const struct keys_key *keys_tables_find(const struct keys_tables *tables,
					const char *name);
/* True when a SigningTable entry names the key. */
bool keys_tables_key_in_use(const struct keys_tables *tables,
			    const char *name);

/* Changes; each is written at once.  Returns 0, or -1 with error set. */
int keys_tables_add_key(struct keys_tables *tables,
			const struct keys_key *key, struct dkim_error *error);
int keys_tables_set_note(struct keys_tables *tables, const char *name,
			 const char *note, struct dkim_error *error);
int keys_tables_remove_key(struct keys_tables *tables, const char *name,
			   struct dkim_error *error);
/* Every SigningTable entry naming `old_name` names `new_name` instead
 * (once); with old_name NULL, `new_name` is added to the entry for
 * `domain` (a new entry if there is none: "DOMAIN" in a file: or dict:
 * table, "*@DOMAIN" in a refile: one).  *changed_r lists the patterns of
 * the entries changed (NULL-terminated, free with
 * dkim_table_strings_free()). */
int keys_tables_switch(struct keys_tables *tables, const char *old_name,
		       const char *new_name, const char *domain,
		       char ***changed_r, struct dkim_error *error);

/* "name=value" of a note, malloc()ed; NULL if absent. */
char *keys_note_get(const char *note, const char *name);
/* The note with name=value set (replaced or added), malloc()ed. */
char *keys_note_set(const char *note, const char *name, const char *value);

/* Times in notes: "2026-12-08T10:00:00Z" (UTC). */
void keys_format_time(time_t t, char buf[32]);
bool keys_parse_time(const char *text, time_t *t_r);

#endif
