/* The tables dkim-keys works on: see keys-tables.h. */
#include "keys-tables.h"
#include "dkim-keyed-table.h"
#include "dkim-util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DICT_SHARED "shared/"

/* A new table file holds key file names and patterns, nothing secret, and
 * the signing processes (another uid) must read it. */
#define NEW_TABLE_MODE 0644

/* One table: a file, kept as its lines, or a dict. */
struct keys_store {
	enum dkim_table_kind kind;
	const char *spec;		/* as given, for messages */
	const char *path;		/* file: its name; dict: its name */
	struct doveadm_dict dict;
	char **lines;			/* file: the lines, without '\n' */
	size_t line_count;
};

struct keys_tables {
	struct keys_store keys_store, signing_store;
	struct keys_key *keys;
	size_t key_count;
	size_t *key_lines;		/* file: the line of each key */
	struct keys_signing *signing;
	size_t signing_count;
	size_t *signing_lines;		/* file: the line of each entry */
};

/* ---- notes and times ---- */

char *
keys_note_get(const char *note, const char *name)
{
	size_t name_len = strlen(name);

	for (const char *p = note; *p != '\0';) {
		while (*p == ' ')
			p++;
		size_t len = strcspn(p, " ");
		if (len > name_len && strncmp(p, name, name_len) == 0 &&
		    p[name_len] == '=')
			return dkim_strndup(p + name_len + 1,
					    len - name_len - 1);
		p += len;
	}
	return NULL;
}

char *
keys_note_set(const char *note, const char *name, const char *value)
{
	struct dkim_buf buf = { 0 };
	size_t name_len = strlen(name);

	dkim_buf_append_str(&buf, "");
	for (const char *p = note; *p != '\0';) {
		while (*p == ' ')
			p++;
		size_t len = strcspn(p, " ");
		if (len > 0 && !(len > name_len &&
				 strncmp(p, name, name_len) == 0 &&
				 p[name_len] == '=')) {
			if (buf.len > 0)
				dkim_buf_append_c(&buf, ' ');
			dkim_buf_append(&buf, p, len);
		}
		p += len;
	}
	dkim_buf_printf(&buf, "%s%s=%s", buf.len > 0 ? " " : "", name, value);
	return dkim_buf_steal(&buf);
}

void
keys_format_time(time_t t, char buf[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

bool
keys_parse_time(const char *text, time_t *t_r)
{
	struct tm tm = { 0 };
	const char *end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);

	if (end == NULL || *end != '\0')
		return false;
	*t_r = timegm(&tm);
	return true;
}

/* ---- reading ---- */

static void
model_free(struct keys_tables *tables)
{
	for (size_t i = 0; i < tables->key_count; i++) {
		struct keys_key *key = &tables->keys[i];
		free(key->name);
		free(key->domain);
		free(key->selector);
		free(key->key);
		free(key->note);
	}
	free(tables->keys);
	free(tables->key_lines);
	for (size_t i = 0; i < tables->signing_count; i++) {
		free(tables->signing[i].pattern);
		dkim_table_strings_free(&tables->signing[i].keynames);
	}
	free(tables->signing);
	free(tables->signing_lines);
	tables->keys = NULL;
	tables->key_lines = NULL;
	tables->signing = NULL;
	tables->signing_lines = NULL;
	tables->key_count = tables->signing_count = 0;
}

static void
lines_free(struct keys_store *store)
{
	for (size_t i = 0; i < store->line_count; i++)
		free(store->lines[i]);
	free(store->lines);
	store->lines = NULL;
	store->line_count = 0;
}

/* Reads a table file into its lines; a missing file is an empty table. */
static int
file_read_lines(struct keys_store *store, struct dkim_error *error)
{
	FILE *file = fopen(store->path, "r");
	char *line = NULL;
	size_t size = 0;
	ssize_t len;

	lines_free(store);
	if (file == NULL) {
		if (errno == ENOENT)
			return 0;
		dkim_error_set(error, "cannot open %s: %s", store->path,
			       strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &size, file)) >= 0) {
		if (memchr(line, '\0', (size_t)len) != NULL) {
			dkim_error_set(error, "%s contains a NUL byte: not a "
				       "table", store->path);
			free(line);
			fclose(file);
			return -1;
		}
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		store->lines = dkim_realloc(store->lines,
			(store->line_count + 1) * sizeof(*store->lines));
		store->lines[store->line_count++] = dkim_strdup(line);
	}
	bool failed = ferror(file);
	free(line);
	fclose(file);
	if (failed) {
		dkim_error_set(error, "cannot read %s", store->path);
		return -1;
	}
	return 0;
}

static char *
file_text(const struct keys_store *store, size_t *size_r)
{
	struct dkim_buf buf = { 0 };

	dkim_buf_append_str(&buf, "");
	for (size_t i = 0; i < store->line_count; i++)
		dkim_buf_printf(&buf, "%s\n", store->lines[i]);
	*size_r = buf.len;
	return dkim_buf_steal(&buf);
}

/* The note of a KeyTable file line: what follows KEYS_NOTE_MARK. */
static char *
line_note(const char *line)
{
	const char *mark = strstr(line, KEYS_NOTE_MARK);

	if (mark == NULL)
		return dkim_strdup("");
	mark += strlen(KEYS_NOTE_MARK);
	while (*mark == ' ')
		mark++;
	char *note = dkim_strdup(mark);
	size_t len = strlen(note);
	while (len > 0 && (note[len - 1] == ' ' || note[len - 1] == '\r'))
		note[--len] = '\0';
	return note;
}

static void
add_model_key(struct keys_tables *tables,
	      const struct dkim_keytable_entry *entry, const char *note,
	      size_t line)
{
	tables->keys = dkim_realloc(tables->keys, (tables->key_count + 1) *
				    sizeof(*tables->keys));
	tables->key_lines = dkim_realloc(tables->key_lines,
		(tables->key_count + 1) * sizeof(*tables->key_lines));
	tables->keys[tables->key_count] = (struct keys_key){
		.name = dkim_strdup(entry->name),
		.domain = dkim_strdup(entry->domain),
		.selector = dkim_strdup(entry->selector),
		.key = dkim_strdup(entry->key),
		.key_is_file = dkim_keytable_key_is_file(entry->key),
		.note = dkim_strdup(note),
	};
	tables->key_lines[tables->key_count++] = line;
}

static void
add_model_signing(struct keys_tables *tables, const char *pattern,
		  char **keynames, size_t line)
{
	tables->signing = dkim_realloc(tables->signing,
		(tables->signing_count + 1) * sizeof(*tables->signing));
	tables->signing_lines = dkim_realloc(tables->signing_lines,
		(tables->signing_count + 1) * sizeof(*tables->signing_lines));
	tables->signing[tables->signing_count] = (struct keys_signing){
		.pattern = dkim_strdup(pattern), .keynames = keynames,
	};
	tables->signing_lines[tables->signing_count++] = line;
}

/* Reads the table file again; returns its text (NULL on failure). */
static char *
file_reread(struct keys_store *store, size_t *size_r,
	    struct dkim_error *error)
{
	return file_read_lines(store, error) < 0 ? NULL :
		file_text(store, size_r);
}

static int
read_file_keys(struct keys_tables *tables, struct dkim_error *error)
{
	struct keys_store *store = &tables->keys_store;
	struct dkim_keytable *table;
	size_t size;
	char *text = file_reread(store, &size, error);

	if (text == NULL)
		return -1;
	int ret = dkim_keytable_parse(text, size, store->path, &table, error);
	free(text);
	if (ret < 0)
		return -1;
	for (size_t i = 0; i < dkim_keytable_count(table); i++) {
		const struct dkim_keytable_entry *entry =
			dkim_keytable_entry(table, i);
		char *note = line_note(store->lines[entry->line - 1]);

		add_model_key(tables, entry, note, entry->line - 1);
		free(note);
	}
	dkim_keytable_free(&table);
	return 0;
}

static int
read_file_signing(struct keys_tables *tables, struct dkim_error *error)
{
	struct keys_store *store = &tables->signing_store;
	struct dkim_signingtable *table;
	size_t size;
	char *text = file_reread(store, &size, error);

	if (text == NULL)
		return -1;
	int ret = dkim_signingtable_parse(text, size, store->kind, store->path,
					  &table, error);
	free(text);
	if (ret < 0)
		return -1;
	for (size_t i = 0; i < dkim_signingtable_count(table); i++) {
		const struct dkim_signingtable_entry *entry =
			dkim_signingtable_entry(table, i);
		char **keynames = dkim_calloc(2, sizeof(*keynames));

		keynames[0] = dkim_strdup(entry->keyname);
		add_model_signing(tables, entry->pattern, keynames,
				  entry->line - 1);
	}
	dkim_signingtable_free(&table);
	return 0;
}

static const char *
dict_suffix(const char *key, const char *prefix)
{
	size_t len = strlen(DICT_SHARED) + strlen(prefix);

	return strlen(key) > len ? key + len : NULL;
}

static int
read_dict_keys(struct keys_tables *tables, struct dkim_error *error)
{
	struct keys_store *store = &tables->keys_store;
	struct doveadm_dict_row *rows, *notes;
	size_t count, note_count;

	if (doveadm_dict_iter(&store->dict, DICT_SHARED DKIM_KEYED_KEY_PREFIX,
			      &rows, &count, error) < 0)
		return -1;
	if (doveadm_dict_iter(&store->dict, DICT_SHARED DKIM_KEYED_NOTE_PREFIX,
			      &notes, &note_count, error) < 0) {
		doveadm_dict_rows_free(&rows, count);
		return -1;
	}
	struct dkim_keytable *table = dkim_keytable_new();
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++) {
		const char *name = dict_suffix(rows[i].key,
					       DKIM_KEYED_KEY_PREFIX);
		const char *note = "";

		if (name == NULL)
			continue;
		for (size_t j = 0; j < note_count; j++) {
			const char *note_name = dict_suffix(
				notes[j].key, DKIM_KEYED_NOTE_PREFIX);
			if (note_name != NULL && strcmp(note_name, name) == 0)
				note = notes[j].value;
		}
		ret = dkim_keytable_add(table, name, rows[i].value,
					store->spec, error);
		if (ret == 0) {
			size_t last = dkim_keytable_count(table) - 1;
			add_model_key(tables, dkim_keytable_entry(table, last),
				      note, 0);
		}
	}
	dkim_keytable_free(&table);
	doveadm_dict_rows_free(&rows, count);
	doveadm_dict_rows_free(&notes, note_count);
	return ret;
}

static int
read_dict_signing(struct keys_tables *tables, struct dkim_error *error)
{
	struct keys_store *store = &tables->signing_store;
	struct doveadm_dict_row *rows;
	size_t count;

	if (doveadm_dict_iter(&store->dict,
			      DICT_SHARED DKIM_KEYED_SIGNING_PREFIX, &rows,
			      &count, error) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		const char *pattern = dict_suffix(rows[i].key,
						  DKIM_KEYED_SIGNING_PREFIX);
		if (pattern != NULL) {
			add_model_signing(tables, pattern,
				dkim_keyed_names_parse(rows[i].value), 0);
		}
	}
	doveadm_dict_rows_free(&rows, count);
	return 0;
}

static int
tables_read(struct keys_tables *tables, struct dkim_error *error)
{
	model_free(tables);
	if ((tables->keys_store.kind == DKIM_TABLE_DICT ?
	     read_dict_keys(tables, error) :
	     read_file_keys(tables, error)) < 0)
		return -1;
	return tables->signing_store.kind == DKIM_TABLE_DICT ?
		read_dict_signing(tables, error) :
		read_file_signing(tables, error);
}

static int
store_init(struct keys_store *store, const char *spec,
	   const struct keys_table_options *options, struct dkim_error *error)
{
	store->spec = spec;
	if (dkim_table_spec_parse(spec, &store->kind, &store->path,
				  error) < 0)
		return -1;
	if (store->kind == DKIM_TABLE_DICT) {
		doveadm_dict_init(&store->dict, options->doveadm,
				  options->doveadm_config, store->path);
	}
	return 0;
}

int
keys_tables_open(const char *keytable, const char *signingtable,
		 const struct keys_table_options *options,
		 struct keys_tables **tables_r, struct dkim_error *error)
{
	struct keys_tables *tables = dkim_calloc(1, sizeof(*tables));

	if (store_init(&tables->keys_store, keytable, options, error) < 0 ||
	    store_init(&tables->signing_store, signingtable, options,
		       error) < 0 ||
	    tables_read(tables, error) < 0) {
		keys_tables_free(&tables);
		return -1;
	}
	*tables_r = tables;
	return 0;
}

void
keys_tables_free(struct keys_tables **_tables)
{
	struct keys_tables *tables = *_tables;

	if (tables == NULL)
		return;
	*_tables = NULL;
	model_free(tables);
	lines_free(&tables->keys_store);
	lines_free(&tables->signing_store);
	doveadm_dict_deinit(&tables->keys_store.dict);
	doveadm_dict_deinit(&tables->signing_store.dict);
	free(tables);
}

bool
keys_tables_keys_in_dict(const struct keys_tables *tables)
{
	return tables->keys_store.kind == DKIM_TABLE_DICT;
}

const struct keys_key *
keys_tables_keys(const struct keys_tables *tables, size_t *count_r)
{
	*count_r = tables->key_count;
	return tables->keys;
}

const struct keys_signing *
keys_tables_signing(const struct keys_tables *tables, size_t *count_r)
{
	*count_r = tables->signing_count;
	return tables->signing;
}

static size_t
key_index(const struct keys_tables *tables, const char *name)
{
	for (size_t i = 0; i < tables->key_count; i++) {
		if (strcasecmp(tables->keys[i].name, name) == 0)
			return i;
	}
	return (size_t)-1;
}

const struct keys_key *
keys_tables_find(const struct keys_tables *tables, const char *name)
{
	size_t i = key_index(tables, name);

	return i == (size_t)-1 ? NULL : &tables->keys[i];
}

static bool
names_contain(char *const *names, const char *name)
{
	for (; *names != NULL; names++) {
		if (strcasecmp(*names, name) == 0)
			return true;
	}
	return false;
}

bool
keys_tables_key_in_use(const struct keys_tables *tables, const char *name)
{
	for (size_t i = 0; i < tables->signing_count; i++) {
		if (names_contain(tables->signing[i].keynames, name))
			return true;
	}
	return false;
}

/* ---- writing ---- */

/* Writes the store's lines to a new file beside it, with the old file's
 * mode and owner, and renames it over the old one. */
static int
file_write(const struct keys_store *store, struct dkim_error *error)
{
	struct stat st;
	bool exists = stat(store->path, &st) == 0;
	char *temp = dkim_strdup_printf("%s.dkim-keys.XXXXXX", store->path);
	size_t size;
	char *text = file_text(store, &size);
	int fd = mkstemp(temp);

	if (fd < 0) {
		dkim_error_set(error, "cannot create %s: %s", temp,
			       strerror(errno));
		goto fail;
	}
	if (fchmod(fd, exists ? (st.st_mode & 07777) : NEW_TABLE_MODE) < 0 ||
	    (exists && geteuid() == 0 &&
	     fchown(fd, st.st_uid, st.st_gid) < 0) ||
	    write(fd, text, size) != (ssize_t)size || fsync(fd) < 0) {
		dkim_error_set(error, "cannot write %s: %s", temp,
			       strerror(errno));
		close(fd);
		unlink(temp);
		goto fail;
	}
	if (close(fd) < 0 || rename(temp, store->path) < 0) {
		dkim_error_set(error, "cannot replace %s: %s", store->path,
			       strerror(errno));
		unlink(temp);
		goto fail;
	}
	free(text);
	free(temp);
	return 0;
fail:
	free(text);
	free(temp);
	return -1;
}

static void
lines_append(struct keys_store *store, char *line)
{
	store->lines = dkim_realloc(store->lines, (store->line_count + 1) *
				    sizeof(*store->lines));
	store->lines[store->line_count++] = line;
}

static char *
dict_key(const char *prefix, const char *name)
{
	return dkim_strdup_printf(DICT_SHARED "%s%s", prefix, name);
}

static int
dict_set(struct keys_store *store, const char *prefix, const char *name,
	 const char *value, struct dkim_error *error)
{
	char *key = dict_key(prefix, name);
	int ret = doveadm_dict_set(&store->dict, key, value, error);

	free(key);
	return ret;
}

static int
dict_unset(struct keys_store *store, const char *prefix, const char *name,
	   struct dkim_error *error)
{
	char *key = dict_key(prefix, name);
	int ret = doveadm_dict_unset(&store->dict, key, error);

	free(key);
	return ret;
}

int
keys_tables_add_key(struct keys_tables *tables, const struct keys_key *key,
		    struct dkim_error *error)
{
	struct keys_store *store = &tables->keys_store;
	int ret;

	if (store->kind == DKIM_TABLE_DICT) {
		char *value = dkim_strdup_printf("%s:%s:%s", key->domain,
						 key->selector, key->key);
		ret = dict_set(store, DKIM_KEYED_KEY_PREFIX, key->name, value,
			       error);
		free(value);
		if (ret == 0 && key->note[0] != '\0')
			ret = dict_set(store, DKIM_KEYED_NOTE_PREFIX,
				       key->name, key->note, error);
	} else {
		lines_append(store, dkim_strdup_printf("%s %s:%s:%s%s%s",
			key->name, key->domain, key->selector, key->key,
			key->note[0] != '\0' ? " " KEYS_NOTE_MARK " " : "",
			key->note));
		ret = file_write(store, error);
	}
	return ret < 0 ? -1 : tables_read(tables, error);
}

int
keys_tables_set_note(struct keys_tables *tables, const char *name,
		     const char *note, struct dkim_error *error)
{
	struct keys_store *store = &tables->keys_store;
	size_t i = key_index(tables, name);
	int ret;

	if (i == (size_t)-1) {
		dkim_error_set(error, "no key %s in %s", name, store->spec);
		return -1;
	}
	if (store->kind == DKIM_TABLE_DICT) {
		ret = dict_set(store, DKIM_KEYED_NOTE_PREFIX,
			       tables->keys[i].name, note, error);
	} else {
		char **line = &store->lines[tables->key_lines[i]];
		char *mark = strstr(*line, KEYS_NOTE_MARK);
		size_t keep = mark != NULL ? (size_t)(mark - *line) :
			strlen(*line);

		while (keep > 0 && ((*line)[keep - 1] == ' ' ||
				    (*line)[keep - 1] == '\t'))
			keep--;
		char *changed = dkim_strdup_printf("%.*s " KEYS_NOTE_MARK " %s",
						   (int)keep, *line, note);
		free(*line);
		*line = changed;
		ret = file_write(store, error);
	}
	return ret < 0 ? -1 : tables_read(tables, error);
}

int
keys_tables_remove_key(struct keys_tables *tables, const char *name,
		       struct dkim_error *error)
{
	struct keys_store *store = &tables->keys_store;
	size_t i = key_index(tables, name);
	int ret;

	if (i == (size_t)-1) {
		dkim_error_set(error, "no key %s in %s", name, store->spec);
		return -1;
	}
	if (store->kind == DKIM_TABLE_DICT) {
		ret = dict_unset(store, DKIM_KEYED_KEY_PREFIX,
				 tables->keys[i].name, error);
		if (ret == 0)
			ret = dict_unset(store, DKIM_KEYED_NOTE_PREFIX,
					 tables->keys[i].name, error);
	} else {
		size_t line = tables->key_lines[i];

		free(store->lines[line]);
		memmove(&store->lines[line], &store->lines[line + 1],
			(store->line_count - line - 1) * sizeof(*store->lines));
		store->line_count--;
		ret = file_write(store, error);
	}
	return ret < 0 ? -1 : tables_read(tables, error);
}

/* The SigningTable line with its key name replaced. */
static char *
line_with_keyname(const char *line, const char *keyname)
{
	const char *p = line;

	while (*p == ' ' || *p == '\t')
		p++;
	p += strcspn(p, " \t");			/* the pattern */
	p += strspn(p, " \t");
	size_t start = (size_t)(p - line);
	size_t len = strcspn(p, " \t:#\r");	/* the key name */
	return dkim_strdup_printf("%.*s%s%s", (int)start, line, keyname,
				  p + len);
}

static void
changed_add(char ***changed, size_t *count, const char *pattern)
{
	*changed = dkim_realloc(*changed, (*count + 2) * sizeof(**changed));
	(*changed)[(*count)++] = dkim_strdup(pattern);
	(*changed)[*count] = NULL;
}

/* The list with old_name replaced by new_name (or new_name added), once. */
static char *
list_switched(char *const *names, const char *old_name, const char *new_name)
{
	size_t count = 0;

	while (names[count] != NULL)
		count++;
	const char **list = dkim_calloc(count + 2, sizeof(*list));
	size_t kept = 0;
	bool added = false;
	for (size_t i = 0; i < count; i++) {
		const char *name = names[i];

		if (old_name != NULL && strcasecmp(name, old_name) == 0)
			name = new_name;
		if (strcasecmp(name, new_name) == 0) {
			if (added)
				continue;
			added = true;
		}
		list[kept++] = name;
	}
	if (!added)
		list[kept++] = new_name;
	char *value = dkim_keyed_names_format(list);
	free(list);
	return value;
}

static int
switch_file(struct keys_tables *tables, const char *old_name,
	    const char *new_name, const char *domain, char ***changed,
	    size_t *changed_count, struct dkim_error *error)
{
	struct keys_store *store = &tables->signing_store;

	for (size_t i = 0; i < tables->signing_count && old_name != NULL;
	     i++) {
		if (!names_contain(tables->signing[i].keynames, old_name))
			continue;
		char **line = &store->lines[tables->signing_lines[i]];
		char *replaced = line_with_keyname(*line, new_name);
		free(*line);
		*line = replaced;
		changed_add(changed, changed_count,
			    tables->signing[i].pattern);
	}
	if (old_name == NULL) {
		char *pattern = dkim_strdup_printf("%s%s",
			store->kind == DKIM_TABLE_REFILE ? "*@" : "", domain);
		lines_append(store, dkim_strdup_printf("%s %s", pattern,
						       new_name));
		changed_add(changed, changed_count, pattern);
		free(pattern);
	}
	return *changed_count == 0 ? 0 : file_write(store, error);
}

static int
switch_dict(struct keys_tables *tables, const char *old_name,
	    const char *new_name, const char *domain, char ***changed,
	    size_t *changed_count, struct dkim_error *error)
{
	struct keys_store *store = &tables->signing_store;
	char *const no_names[] = { NULL };
	char *const *domain_names = no_names;

	for (size_t i = 0; i < tables->signing_count; i++) {
		const struct keys_signing *entry = &tables->signing[i];

		if (old_name == NULL) {
			if (strcasecmp(entry->pattern, domain) == 0)
				domain_names = entry->keynames;
			continue;
		}
		if (!names_contain(entry->keynames, old_name))
			continue;
		char *value = list_switched(entry->keynames, old_name,
					    new_name);
		int ret = dict_set(store, DKIM_KEYED_SIGNING_PREFIX,
				   entry->pattern, value, error);
		free(value);
		if (ret < 0)
			return -1;
		changed_add(changed, changed_count, entry->pattern);
	}
	if (old_name == NULL) {
		char *value = list_switched(domain_names, NULL, new_name);
		char *pattern = dkim_strdup(domain);
		dkim_ascii_lowercase(pattern);
		int ret = dict_set(store, DKIM_KEYED_SIGNING_PREFIX, pattern,
				   value, error);
		free(value);
		if (ret == 0)
			changed_add(changed, changed_count, pattern);
		free(pattern);
		if (ret < 0)
			return -1;
	}
	return 0;
}

int
keys_tables_switch(struct keys_tables *tables, const char *old_name,
		   const char *new_name, const char *domain,
		   char ***changed_r, struct dkim_error *error)
{
	char **changed = dkim_calloc(1, sizeof(*changed));
	size_t count = 0;
	int ret = tables->signing_store.kind == DKIM_TABLE_DICT ?
		switch_dict(tables, old_name, new_name, domain, &changed,
			    &count, error) :
		switch_file(tables, old_name, new_name, domain, &changed,
			    &count, error);

	if (ret == 0)
		ret = tables_read(tables, error);
	if (ret < 0) {
		dkim_table_strings_free(&changed);
		return -1;
	}
	*changed_r = changed;
	return 0;
}
