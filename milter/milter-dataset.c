/* OpenDKIM data sets: see milter-dataset.h. */
#include "milter-dataset.h"
#include "dkim-keytable.h"
#include "dkim-util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct milter_dataset {
	enum milter_dataset_kind kind;
	char *source;
	char *text;		/* the entries' strings point into it */
	struct milter_dataset_entry *entries;
	size_t count;
};

/* Data set types of opendkim(8) that need a database, a directory
 * service or a script: never mistaken for a comma list. */
static const char *const unsupported_types[] = {
	"db", "dsn", "ldap", "ldaps", "ldapi", "lua", "memcache", "erlang",
	"mdb", "repute", "socket",
};

int
milter_dataset_spec(const char *spec, enum milter_dataset_kind *kind_r,
		    const char **path_r, struct dkim_error *error)
{
	size_t type_len = 0;

	*kind_r = MILTER_DATASET_LIST;
	*path_r = NULL;
	while (isalpha((unsigned char)spec[type_len]))
		type_len++;
	if (spec[type_len] == ':') {
		if (type_len == 4 && strncmp(spec, "file", 4) == 0) {
			*path_r = spec + 5;
		} else if (type_len == 6 && strncmp(spec, "refile", 6) == 0) {
			*kind_r = MILTER_DATASET_PATTERNS;
			*path_r = spec + 7;
		} else if (type_len == 3 && strncmp(spec, "csl", 3) == 0) {
			return 0;
		} else {
			for (size_t i = 0; i < DKIM_N_ELEMENTS(unsupported_types);
			     i++) {
				if (strlen(unsupported_types[i]) == type_len &&
				    strncasecmp(spec, unsupported_types[i],
						type_len) == 0) {
					dkim_error_set(error, "data sets of "
						"type %s: are not supported "
						"(only csl:, file: and refile:)"
						"; put the data in a file",
						unsupported_types[i]);
					return -1;
				}
			}
		}
		if (*path_r != NULL && **path_r == '\0') {
			dkim_error_set(error, "data set '%s' names no file",
				       spec);
			return -1;
		}
		return 0;
	}
	size_t len = strlen(spec);
	if (len > 3 && strcmp(spec + len - 3, ".db") == 0) {
		/* opendkim(8): a name ending in ".db" is a Berkeley DB, not
		 * a flat file or a list with one element. */
		dkim_error_set(error, "'%s' names a Berkeley DB data set, which "
			       "is not supported; put the data in a file", spec);
		return -1;
	}
	if (spec[0] == '/')
		*path_r = spec;
	return 0;
}

static struct milter_dataset *
dataset_new(enum milter_dataset_kind kind, const char *source, char *text)
{
	struct milter_dataset *set = dkim_calloc(1, sizeof(*set));

	set->kind = kind;
	set->source = dkim_strdup(source);
	set->text = text;
	return set;
}

static void
dataset_add(struct milter_dataset *set, const char *key, const char *value,
	    unsigned line)
{
	set->entries = dkim_realloc(set->entries,
				    (set->count + 1) * sizeof(*set->entries));
	set->entries[set->count++] = (struct milter_dataset_entry){
		.key = key, .value = value, .line = line,
	};
}

static char *
trim(char *start)
{
	while (dkim_is_wsp((unsigned char)*start))
		start++;
	size_t len = strlen(start);
	while (len > 0 && (dkim_is_wsp((unsigned char)start[len - 1]) ||
			   start[len - 1] == '\r' || start[len - 1] == '\n'))
		start[--len] = '\0';
	return start;
}

struct milter_dataset *
milter_dataset_parse_list(const char *list)
{
	struct milter_dataset *set =
		dataset_new(MILTER_DATASET_LIST, "list", dkim_strdup(list));
	char *next;

	for (char *item = set->text; item != NULL; item = next) {
		char *comma = strchr(item, ',');

		next = comma != NULL ? comma + 1 : NULL;
		if (comma != NULL)
			*comma = '\0';
		char *equals = strchr(item, '=');
		if (equals != NULL)
			*equals = '\0';
		char *key = trim(item);
		char *value = equals != NULL ? trim(equals + 1) : NULL;
		if (*key != '\0')
			dataset_add(set, key, value != NULL && *value != '\0' ?
				    value : NULL, 0);
	}
	return set;
}

static int
file_add_line(void *context, const struct dkim_table_line *line,
	      const char *source __attribute__((unused)),
	      struct dkim_error *error __attribute__((unused)))
{
	dataset_add(context, line->key,
		    line->value[0] != '\0' ? line->value : NULL, line->number);
	return 0;
}

int
milter_dataset_parse_file(const char *text, size_t size,
			  enum milter_dataset_kind kind, const char *source,
			  struct milter_dataset **set_r,
			  struct dkim_error *error)
{
	if (memchr(text, '\0', size) != NULL) {
		dkim_error_set(error, "%s contains a NUL byte: not a data set "
			       "file", source);
		return -1;
	}
	struct milter_dataset *set =
		dataset_new(kind, source, dkim_strndup(text, size));
	/* The line handler cannot fail: a key alone is an entry. */
	(void)dkim_table_for_each_line(set->text, source, false,
				       file_add_line, set, error);
	*set_r = set;
	return 0;
}

int
milter_dataset_open(const char *spec, struct milter_dataset **set_r,
		    struct dkim_error *error)
{
	enum milter_dataset_kind kind;
	const char *path;
	char *text;
	size_t size;

	if (milter_dataset_spec(spec, &kind, &path, error) < 0)
		return -1;
	if (path == NULL) {
		*set_r = milter_dataset_parse_list(
			strncmp(spec, "csl:", 4) == 0 ? spec + 4 : spec);
		return 0;
	}
	if (dkim_table_read_file(path, &text, &size, error) < 0)
		return -1;
	int ret = milter_dataset_parse_file(text, size, kind, path, set_r,
					    error);
	free(text);
	return ret;
}

void
milter_dataset_free(struct milter_dataset **_set)
{
	struct milter_dataset *set = *_set;

	if (set == NULL)
		return;
	*_set = NULL;
	free(set->entries);
	free(set->text);
	free(set->source);
	free(set);
}

size_t
milter_dataset_count(const struct milter_dataset *set)
{
	return set->count;
}

const struct milter_dataset_entry *
milter_dataset_entry(const struct milter_dataset *set, size_t index)
{
	return index < set->count ? &set->entries[index] : NULL;
}

enum milter_dataset_kind
milter_dataset_kind(const struct milter_dataset *set)
{
	return set->kind;
}

const char *
milter_dataset_source(const struct milter_dataset *set)
{
	return set->source;
}

const struct milter_dataset_entry *
milter_dataset_find(const struct milter_dataset *set, const char *key)
{
	for (size_t i = 0; i < set->count; i++) {
		const char *entry_key = set->entries[i].key;

		if (set->kind == MILTER_DATASET_PATTERNS ?
		    dkim_wildcard_match(entry_key, key) :
		    strcasecmp(entry_key, key) == 0)
			return &set->entries[i];
	}
	return NULL;
}

const struct milter_dataset_entry *
milter_dataset_find_address(const struct milter_dataset *set,
			    const char *address)
{
	const struct milter_dataset_entry *entry =
		milter_dataset_find(set, address);
	const char *at = strrchr(address, '@');

	if (entry != NULL || at == NULL)
		return entry;
	if ((entry = milter_dataset_find(set, at + 1)) != NULL)
		return entry;
	for (const char *dot = strchr(at + 1, '.'); dot != NULL && entry == NULL;
	     dot = strchr(dot + 1, '.'))
		entry = milter_dataset_find(set, dot);
	return entry;
}

char **
milter_dataset_split_value(const char *value)
{
	static const char separators[] = ":, \t";
	char **items = NULL;
	size_t count = 0;

	while (value != NULL && *value != '\0') {
		size_t len = strcspn(value, separators);

		if (len > 0) {
			items = dkim_realloc(items,
					     (count + 2) * sizeof(*items));
			items[count++] = dkim_strndup(value, len);
			items[count] = NULL;
		}
		value += len;
		value += strspn(value, separators);
	}
	return items;
}

void
milter_strings_free(char ***_strings)
{
	char **strings = *_strings;

	if (strings == NULL)
		return;
	*_strings = NULL;
	for (size_t i = 0; strings[i] != NULL; i++)
		free(strings[i]);
	free(strings);
}
