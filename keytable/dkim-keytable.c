/* OpenDKIM KeyTable and SigningTable files: see dkim-keytable.h. */
#include "dkim-keytable.h"
#include "dkim-util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Strings a table built entry by entry owns (the entries point into
 * them). */
struct owned_strings {
	char **strings;
	size_t count;
};

struct dkim_keytable {
	char *text;		/* the file, cut into the entries' strings */
	struct owned_strings added;
	struct dkim_keytable_entry *entries;
	size_t count;
};

struct dkim_signingtable {
	enum dkim_table_kind kind;
	char *text;
	struct owned_strings added;
	struct dkim_signingtable_entry *entries;
	size_t count;
	/* NULL-terminated; past DKIM_TABLE_MAX_WARNINGS the last one counts
	 * those left out */
	char **warnings;
	size_t warning_count;
	unsigned warnings_left_out;
};

int
dkim_table_spec_parse(const char *spec, enum dkim_table_kind *kind_r,
		      const char **path_r, struct dkim_error *error)
{
	const char *colon = strchr(spec, ':');

	*kind_r = DKIM_TABLE_FILE;
	*path_r = spec;
	if (colon == NULL || spec[0] == '/')
		return 0;
	if (strncmp(spec, "file:", 5) == 0) {
		*path_r = spec + 5;
	} else if (strncmp(spec, "refile:", 7) == 0) {
		*kind_r = DKIM_TABLE_REFILE;
		*path_r = spec + 7;
	} else if (strncmp(spec, "dict:", 5) == 0) {
		*kind_r = DKIM_TABLE_DICT;
		*path_r = spec + 5;
	} else {
		dkim_error_set(error, "unsupported data set '%.*s': only file:, "
			  "refile: and dict: tables can be used (convert the "
			  "others to a file, or serve them through a dict)",
			  (int)(colon - spec + 1), spec);
		return -1;
	}
	if (**path_r == '\0') {
		dkim_error_set(error, "data set '%s' has no %s", spec,
			       *kind_r == DKIM_TABLE_DICT ? "dict name" :
			       "file name");
		return -1;
	}
	return 0;
}

/* A copy of `str` that `owner` frees with the table. */
static char *
owned_strdup(struct owned_strings *owner, const char *str)
{
	owner->strings = dkim_realloc(owner->strings, (owner->count + 1) *
				      sizeof(*owner->strings));
	return owner->strings[owner->count++] = dkim_strdup(str);
}

static void
owned_free(struct owned_strings *owner)
{
	for (size_t i = 0; i < owner->count; i++)
		free(owner->strings[i]);
	free(owner->strings);
}

int
dkim_table_read_file(const char *path, char **text_r, size_t *size_r,
		     struct dkim_error *error)
{
	struct stat st;
	char *text = NULL;
	size_t size = 0;
	ssize_t ret;

	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		dkim_error_set(error, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		dkim_error_set(error, "cannot stat %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		dkim_error_set(error, "%s is not a regular file", path);
		goto fail;
	}
	if (st.st_size > DKIM_TABLE_MAX_FILE_SIZE) {
		dkim_error_set(error, "%s is too large (over %d bytes)", path,
			  DKIM_TABLE_MAX_FILE_SIZE);
		goto fail;
	}
	/* The size may change while reading; read to EOF within the cap. */
	size_t capacity = (size_t)st.st_size + 1;
	text = dkim_malloc(capacity);
	for (;;) {
		if (size + 1 >= capacity) {
			if (capacity > DKIM_TABLE_MAX_FILE_SIZE) {
				dkim_error_set(error, "%s is too large", path);
				goto fail;
			}
			capacity *= 2;
			text = dkim_realloc(text, capacity);
		}
		ret = read(fd, text + size, capacity - size - 1);
		if (ret == 0)
			break;
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			dkim_error_set(error, "cannot read %s: %s", path,
				  strerror(errno));
			goto fail;
		}
		size += (size_t)ret;
	}
	close(fd);
	*text_r = text;
	*size_r = size;
	return 0;
fail:
	free(text);
	close(fd);
	return -1;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Blanks and line breaks: a table line has none of the latter inside, a
 * value from a store may end in one (or hold a PEM key). */
static bool
is_trimmed(char c)
{
	return is_blank(c) || c == '\r' || c == '\n';
}

static char *
trim(char *start, char *end)
{
	while (start < end && is_trimmed(*start))
		start++;
	while (end > start && is_trimmed(end[-1]))
		end--;
	*end = '\0';
	return start;
}

int
dkim_table_for_each_line(char *text, const char *source, bool value_required,
			 dkim_table_line_func *handle, void *context,
			 struct dkim_error *error)
{
	struct dkim_table_line line = { 0 };
	char *next;

	for (char *start = text; start != NULL; start = next) {
		char *end = strchr(start, '\n');

		line.number++;
		next = end != NULL ? end + 1 : NULL;
		if (end == NULL)
			end = start + strlen(start);
		char *comment = memchr(start, '#', (size_t)(end - start));
		if (comment != NULL)
			end = comment;
		char *content = trim(start, end);
		if (*content == '\0')
			continue;

		char *key_end = content;
		while (*key_end != '\0' && !is_blank(*key_end))
			key_end++;
		line.key = content;
		line.value = trim(key_end, key_end + strlen(key_end));
		*key_end = '\0';
		if (*line.value == '\0' && value_required) {
			dkim_error_set(error, "%s line %u: '%s' has no value",
				  source, line.number, line.key);
			return -1;
		}
		if (handle(context, &line, source, error) < 0)
			return -1;
	}
	return 0;
}

/* A NUL-terminated copy of a table's text, which the entries then point
 * into; NULL (and an error) if the text holds a NUL byte. */
static char *
table_text_copy(const char *text, size_t size, const char *source,
		const char *what, struct dkim_error *error)
{
	if (memchr(text, '\0', size) != NULL) {
		dkim_error_set(error, "%s contains a NUL byte: not a %s",
			       source, what);
		return NULL;
	}
	return dkim_strndup(text, size);
}

/* Adds the entry `name` = `value` ("DOMAIN:SELECTOR:KEY", cut in place);
 * `where` names it in errors ("KeyTable line 3", "dict:x entry"). */
static int
keytable_add_entry(struct dkim_keytable *table, const char *name,
		   char *value, unsigned line, const char *where,
		   struct dkim_error *error)
{
	char *domain = value;
	char *selector = strchr(domain, ':');
	char *key = selector == NULL ? NULL : strchr(selector + 1, ':');

	if (key == NULL) {
		dkim_error_set(error, "%s: the value for '%s' must be "
			       "DOMAIN:SELECTOR:KEY", where, name);
		return -1;
	}
	*selector++ = '\0';
	*key++ = '\0';
	domain = trim(domain, domain + strlen(domain));
	selector = trim(selector, selector + strlen(selector));
	key = trim(key, key + strlen(key));
	if (*domain == '\0' || *selector == '\0' || *key == '\0') {
		dkim_error_set(error, "%s: '%s' has an empty domain, selector "
			       "or key", where, name);
		return -1;
	}
	table->entries = dkim_realloc(table->entries,
				  (table->count + 1) * sizeof(*table->entries));
	table->entries[table->count++] = (struct dkim_keytable_entry){
		.name = name, .domain = domain, .selector = selector,
		.key = key, .line = line,
	};
	return 0;
}

static int
keytable_add_line(void *context, const struct dkim_table_line *line,
		  const char *source, struct dkim_error *error)
{
	char where[256];

	snprintf(where, sizeof(where), "%s line %u", source, line->number);
	return keytable_add_entry(context, line->key, line->value,
				  line->number, where, error);
}

struct dkim_keytable *
dkim_keytable_new(void)
{
	return dkim_calloc(1, sizeof(struct dkim_keytable));
}

int
dkim_keytable_add(struct dkim_keytable *table, const char *name,
		  const char *value, const char *source,
		  struct dkim_error *error)
{
	char where[256];

	snprintf(where, sizeof(where), "%s entry", source);
	return keytable_add_entry(table, owned_strdup(&table->added, name),
				  owned_strdup(&table->added, value), 0,
				  where, error);
}

int
dkim_keytable_parse(const char *text, size_t size, const char *source,
		    struct dkim_keytable **table_r, struct dkim_error *error)
{
	struct dkim_keytable *table = dkim_calloc(1, sizeof(*table));

	table->text = table_text_copy(text, size, source, "KeyTable", error);
	if (table->text == NULL ||
	    dkim_table_for_each_line(table->text, source, true,
				     keytable_add_line, table, error) < 0) {
		dkim_keytable_free(&table);
		return -1;
	}
	*table_r = table;
	return 0;
}

int
dkim_keytable_load(const char *path, struct dkim_keytable **table_r,
		   struct dkim_error *error)
{
	char *text;
	size_t size;

	if (dkim_table_read_file(path, &text, &size, error) < 0)
		return -1;
	int ret = dkim_keytable_parse(text, size, path, table_r, error);
	free(text);
	return ret;
}

const struct dkim_keytable_entry *
dkim_keytable_lookup(const struct dkim_keytable *table, const char *name)
{
	for (size_t i = 0; i < table->count; i++) {
		if (strcasecmp(table->entries[i].name, name) == 0)
			return &table->entries[i];
	}
	return NULL;
}

size_t
dkim_keytable_count(const struct dkim_keytable *table)
{
	return table->count;
}

const struct dkim_keytable_entry *
dkim_keytable_entry(const struct dkim_keytable *table, size_t index)
{
	return index < table->count ? &table->entries[index] : NULL;
}

void
dkim_keytable_free(struct dkim_keytable **_table)
{
	struct dkim_keytable *table = *_table;

	if (table == NULL)
		return;
	*_table = NULL;
	owned_free(&table->added);
	free(table->entries);
	free(table->text);
	free(table);
}

/* ------------------------------------------------------------------ */

/* Adds a warning, or counts it once DKIM_TABLE_MAX_WARNINGS are kept
 * (dkim_signingtable_parse() then adds one that says how many). */
static void __attribute__((format(printf, 3, 4)))
signingtable_warn(struct dkim_signingtable *table, bool counted,
		  const char *fmt, ...)
{
	char text[512];
	va_list args;

	if (counted && table->warning_count >= DKIM_TABLE_MAX_WARNINGS) {
		table->warnings_left_out++;
		return;
	}
	va_start(args, fmt);
	vsnprintf(text, sizeof(text), fmt, args);
	va_end(args);
	table->warnings = dkim_realloc(table->warnings,
		(table->warning_count + 2) * sizeof(*table->warnings));
	table->warnings[table->warning_count++] = dkim_strdup(text);
	table->warnings[table->warning_count] = NULL;
}

static void
check_refile_pattern(struct dkim_signingtable *table, const char *source,
		     unsigned line, const char *pattern)
{
	char why[DKIM_WILDCARD_WARNING_MAX];

	if (dkim_wildcard_unanchored(pattern, why, sizeof(why)))
		signingtable_warn(table, true, "%s line %u: %s", source, line,
				  why);
}

static void
signingtable_append(struct dkim_signingtable *table,
		    struct dkim_signingtable_entry entry)
{
	table->entries = dkim_realloc(table->entries,
				  (table->count + 1) * sizeof(*table->entries));
	table->entries[table->count++] = entry;
}

static int
signingtable_add_line(void *context, const struct dkim_table_line *line,
		      const char *source,
		      struct dkim_error *error __attribute__((unused)))
{
	struct dkim_signingtable *table = context;
	char *keyname = line->value;
	char *end = keyname;

	while (*end != '\0' && !is_blank(*end) && *end != ':')
		end++;
	char *signer = end;
	while (*signer != '\0' && (is_blank(*signer) || *signer == ':'))
		signer++;
	*end = '\0';

	if (table->kind == DKIM_TABLE_REFILE)
		check_refile_pattern(table, source, line->number, line->key);
	signingtable_append(table, (struct dkim_signingtable_entry){
		.pattern = line->key, .keyname = keyname,
		.signer = *signer == '\0' ? NULL : signer,
		.line = line->number,
	});
	return 0;
}

struct dkim_signingtable *
dkim_signingtable_new(enum dkim_table_kind kind)
{
	struct dkim_signingtable *table = dkim_calloc(1, sizeof(*table));

	table->kind = kind;
	return table;
}

void
dkim_signingtable_add(struct dkim_signingtable *table, const char *pattern,
		      const char *keyname, const char *signer)
{
	signingtable_append(table, (struct dkim_signingtable_entry){
		.pattern = owned_strdup(&table->added, pattern),
		.keyname = owned_strdup(&table->added, keyname),
		.signer = signer == NULL ? NULL :
			owned_strdup(&table->added, signer),
	});
}

int
dkim_signingtable_parse(const char *text, size_t size,
			enum dkim_table_kind kind, const char *source,
			struct dkim_signingtable **table_r,
			struct dkim_error *error)
{
	struct dkim_signingtable *table = dkim_calloc(1, sizeof(*table));

	table->kind = kind;
	table->text = table_text_copy(text, size, source, "SigningTable",
				      error);
	if (table->text == NULL ||
	    dkim_table_for_each_line(table->text, source, true,
				     signingtable_add_line, table,
				     error) < 0) {
		dkim_signingtable_free(&table);
		return -1;
	}
	if (table->warnings_left_out > 0) {
		signingtable_warn(table, false, "%s: %u more lines with such "
				  "patterns", source, table->warnings_left_out);
	}
	*table_r = table;
	return 0;
}

const char *const *
dkim_signingtable_warnings(const struct dkim_signingtable *table)
{
	static const char *const none[] = { NULL };

	return table->warnings != NULL ?
		(const char *const *)table->warnings : none;
}

int
dkim_signingtable_load(const char *path, enum dkim_table_kind kind,
		       struct dkim_signingtable **table_r,
		       struct dkim_error *error)
{
	char *text;
	size_t size;

	if (dkim_table_read_file(path, &text, &size, error) < 0)
		return -1;
	int ret = dkim_signingtable_parse(text, size, kind, path, table_r,
					  error);
	free(text);
	return ret;
}

size_t
dkim_signingtable_count(const struct dkim_signingtable *table)
{
	return table->count;
}

const struct dkim_signingtable_entry *
dkim_signingtable_entry(const struct dkim_signingtable *table, size_t index)
{
	return index < table->count ? &table->entries[index] : NULL;
}

void
dkim_signingtable_free(struct dkim_signingtable **_table)
{
	struct dkim_signingtable *table = *_table;

	if (table == NULL)
		return;
	*_table = NULL;
	for (size_t i = 0; i < table->warning_count; i++)
		free(table->warnings[i]);
	free(table->warnings);
	owned_free(&table->added);
	free(table->entries);
	free(table->text);
	free(table);
}

bool
dkim_wildcard_match(const char *pattern, const char *text)
{
	/* Iterative matching with backtracking to the last '*': linear in
	 * practice, and never recursive on hostile input. */
	const char *star = NULL, *star_text = NULL;

	while (*text != '\0') {
		if (*pattern == '*') {
			star = pattern++;
			star_text = text;
		} else if (*pattern != '\0' &&
			   tolower((unsigned char)*pattern) ==
			   tolower((unsigned char)*text)) {
			pattern++;
			text++;
		} else if (star != NULL) {
			pattern = star + 1;
			text = ++star_text;
		} else {
			return false;
		}
	}
	while (*pattern == '*')
		pattern++;
	return *pattern == '\0';
}

static bool
is_domain_label_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_';
}

bool
dkim_wildcard_unanchored(const char *pattern, char *text, size_t size)
{
	const char *at = strrchr(pattern, '@');
	const char *domain_part = at == NULL ? pattern : at + 1;
	const char *star = strchr(domain_part, '*');

	while (star != NULL && !is_domain_label_char(star[1]))
		star = strchr(star + 1, '*');
	if (star == NULL)
		return false;
	const char *rest = star + 1;
	if (star != domain_part || strchr(rest, '*') != NULL) {
		snprintf(text, size, "in the pattern '%s', the '*' before "
			 "'%.*s' also matches names that merely end in it; "
			 "put '@' or '.' right after a '*' that stands for "
			 "whole labels", pattern, (int)strcspn(rest, "*"),
			 rest);
		return true;
	}
	/* "*tenant.com" or "joe@*tenant.com" */
	int prefix_len = (int)(star - pattern);
	snprintf(text, size, "the pattern '%s' also matches other domains "
		 "ending in '%s', such as evil-%s; anchor it: '%.*s%s%s' "
		 "matches that domain, '%.*s*.%s' its subdomains (give both "
		 "for both)", pattern, rest, rest, prefix_len, pattern,
		 prefix_len == 0 ? "*@" : "", rest, prefix_len, pattern, rest);
	return true;
}

struct match_state {
	const struct dkim_signingtable_entry **matches;
	size_t max_matches;
	size_t count;
};

static void
match_add(struct match_state *state,
	  const struct dkim_signingtable_entry *entry)
{
	if (state->count < state->max_matches)
		state->matches[state->count] = entry;
	state->count++;
}

/* Adds the entries whose pattern equals `key`; returns true if any. */
static bool
match_exact(const struct dkim_signingtable *table, const char *key,
	    struct match_state *state)
{
	bool found = false;

	for (size_t i = 0; i < table->count; i++) {
		if (strcasecmp(table->entries[i].pattern, key) == 0) {
			match_add(state, &table->entries[i]);
			found = true;
		}
	}
	return found;
}

static void
match_refile(const struct dkim_signingtable *table, const char *address,
	     bool all_matches, struct match_state *state)
{
	const char *winner = NULL;

	for (size_t i = 0; i < table->count; i++) {
		const struct dkim_signingtable_entry *entry =
			&table->entries[i];

		if (winner != NULL && !all_matches) {
			/* the winning pattern's other lines only */
			if (strcasecmp(entry->pattern, winner) == 0)
				match_add(state, entry);
		} else if (dkim_wildcard_match(entry->pattern, address)) {
			match_add(state, entry);
			winner = entry->pattern;
		}
	}
}

/* OpenDKIM's lookup order for plain tables (opendkim.conf(5),
 * SigningTable). */
static void
match_file(const struct dkim_signingtable *table, const char *address,
	   bool all_matches, struct match_state *state)
{
	const char *at = strrchr(address, '@');
	size_t local_len = at == NULL ? 0 : (size_t)(at - address);
	const char *domain = at == NULL ? address : at + 1;
	size_t key_size = strlen(address) + 3;
	char *key = dkim_malloc(key_size);

#define TRY(...) do { \
	snprintf(key, key_size, __VA_ARGS__); \
	if (match_exact(table, key, state) && !all_matches) \
		goto done; \
	} while (0)

	TRY("%s", address);
	TRY("%s", domain);
	for (const char *dot = strchr(domain, '.'); dot != NULL;
	     dot = strchr(dot + 1, '.'))
		TRY("%.*s@%s", (int)local_len, address, dot);
	for (const char *dot = strchr(domain, '.'); dot != NULL;
	     dot = strchr(dot + 1, '.'))
		TRY("%s", dot);
	TRY("%.*s@*", (int)local_len, address);
	TRY("*");
#undef TRY
done:
	free(key);
}

char **
dkim_dict_signing_keys(const char *address)
{
	char *lower = dkim_strdup(address);
	const char *at = strrchr(lower, '@');
	const char *domain = at == NULL ? lower : at + 1;
	/* the address, the domain, at most one per dot, "*", NULL */
	size_t max = 4, count = 0;

	dkim_ascii_lowercase(lower);
	for (const char *p = domain; *p != '\0'; p++)
		max += *p == '.' ? 1 : 0;
	char **keys = dkim_calloc(max, sizeof(*keys));
	if (at != NULL)
		keys[count++] = dkim_strdup(lower);
	keys[count++] = dkim_strdup(domain);
	for (const char *dot = strchr(domain, '.'); dot != NULL;
	     dot = strchr(dot + 1, '.')) {
		if (dot[1] != '\0')
			keys[count++] = dkim_strdup(dot + 1);
	}
	keys[count++] = dkim_strdup("*");
	free(lower);

	/* leave out what cannot be a store key */
	size_t kept = 0;
	for (size_t i = 0; i < count; i++) {
		if (keys[i][0] == '\0' || strchr(keys[i], '/') != NULL)
			free(keys[i]);
		else
			keys[kept++] = keys[i];
	}
	keys[kept] = NULL;
	return keys;
}

void
dkim_table_strings_free(char ***_strings)
{
	char **strings = *_strings;

	if (strings == NULL)
		return;
	*_strings = NULL;
	for (char **string = strings; *string != NULL; string++)
		free(*string);
	free(strings);
}

static void
match_dict(const struct dkim_signingtable *table, const char *address,
	   bool all_matches, struct match_state *state)
{
	char **keys = dkim_dict_signing_keys(address);

	for (char **key = keys; *key != NULL; key++) {
		if (match_exact(table, *key, state) && !all_matches)
			break;
	}
	dkim_table_strings_free(&keys);
}

size_t
dkim_signingtable_match(const struct dkim_signingtable *table,
			const char *address, bool all_matches,
			const struct dkim_signingtable_entry **matches,
			size_t max_matches)
{
	struct match_state state = {
		.matches = matches, .max_matches = max_matches,
	};

	switch (table->kind) {
	case DKIM_TABLE_FILE:
		match_file(table, address, all_matches, &state);
		break;
	case DKIM_TABLE_REFILE:
		match_refile(table, address, all_matches, &state);
		break;
	case DKIM_TABLE_DICT:
		match_dict(table, address, all_matches, &state);
		break;
	}
	return state.count;
}

/* ------------------------------------------------------------------ */

/* `template` with every '%' replaced by `domain`. */
static char *
expand_domain(const char *template, const char *domain)
{
	size_t domain_len = strlen(domain), len = 0;

	for (const char *p = template; *p != '\0'; p++)
		len += *p == '%' ? domain_len : 1;
	char *ret = dkim_malloc(len + 1), *out = ret;
	for (const char *p = template; *p != '\0'; p++) {
		if (*p == '%') {
			memcpy(out, domain, domain_len);
			out += domain_len;
		} else {
			*out++ = *p;
		}
	}
	*out = '\0';
	return ret;
}

/* RFC 6376 §3.5 i=: the identity's domain is d= or a subdomain of it. */
static bool
identity_within(const char *identity, const char *domain)
{
	const char *at = strrchr(identity, '@');

	if (at == NULL)
		return false;
	const char *id_domain = at + 1;
	size_t id_len = strlen(id_domain), len = strlen(domain);
	if (id_len == len)
		return strcasecmp(id_domain, domain) == 0;
	return id_len > len && id_domain[id_len - len - 1] == '.' &&
		strcasecmp(id_domain + id_len - len, domain) == 0;
}

bool
dkim_keytable_key_is_file(const char *key)
{
	return key[0] == '/' || strncmp(key, "./", 2) == 0 ||
		strncmp(key, "../", 3) == 0;
}

void
dkim_key_choices_free(struct dkim_key_choice **_choices, size_t count)
{
	struct dkim_key_choice *choices = *_choices;

	if (choices == NULL)
		return;
	*_choices = NULL;
	for (size_t i = 0; i < count; i++) {
		free(choices[i].keyname);
		free(choices[i].domain);
		free(choices[i].selector);
		free(choices[i].key);
		free(choices[i].identity);
	}
	free(choices);
}

/* At most this much of a refused sender's domain is quoted in errors. */
#define SENDER_DOMAIN_SHOWN 64

/* The sender's domain, put in for '%', may only be a domain name: it comes
 * from the message, and in a key file name "../" or "/" would reach files
 * outside the key directory.  `what` names the entry with the '%'. */
static bool
sender_domain_ok(const char *domain, const char *what,
		 struct dkim_error *error)
{
	if (dkim_domain_syntax_ok(domain))
		return true;
	dkim_error_set(error, "the From domain '%.*s%s' is not a valid domain "
		       "name, so it cannot stand for '%%' in %s: no key "
		       "applies", SENDER_DOMAIN_SHOWN, domain,
		       strlen(domain) > SENDER_DOMAIN_SHOWN ? "..." : "", what);
	return false;
}

static bool
keytable_entry_uses_domain(const struct dkim_keytable_entry *key)
{
	return strcmp(key->domain, "%") == 0 || strchr(key->key, '%') != NULL;
}

/* "SigningTable line 3 (pattern)", or "SigningTable entry pattern" for
 * one from a store. */
static void
entry_name(char *what, size_t size, const char *table, unsigned line,
	   const char *name)
{
	if (line > 0)
		snprintf(what, size, "%s line %u (%s)", table, line, name);
	else
		snprintf(what, size, "%s entry %s", table, name);
}

/* Adds the signature `match` asks for; returns a dkim_keytable_select()
 * result. */
static int
add_choice(const struct dkim_signingtable_entry *match,
	   const struct dkim_keytable *keytable, const char *domain,
	   struct dkim_key_choice **choices, size_t *count,
	   struct dkim_error *error)
{
	char what[128];

	entry_name(what, sizeof(what), "SigningTable", match->line,
		   match->pattern);
	if (strcmp(match->keyname, "%") == 0 &&
	    !sender_domain_ok(domain, what, error))
		return DKIM_KEYTABLE_SELECT_BAD_DOMAIN;
	const char *keyname = strcmp(match->keyname, "%") == 0 ?
		domain : match->keyname;
	for (size_t j = 0; j < *count; j++) {
		if (strcasecmp((*choices)[j].keyname, keyname) == 0)
			return DKIM_KEYTABLE_SELECT_OK;	/* already chosen */
	}
	const struct dkim_keytable_entry *key =
		dkim_keytable_lookup(keytable, keyname);
	if (key == NULL) {
		dkim_error_set(error, "%s names key '%s', which is not in the "
			       "KeyTable", what, keyname);
		return DKIM_KEYTABLE_SELECT_ERROR;
	}
	if (match->signer != NULL && strchr(match->signer, '%') != NULL &&
	    !sender_domain_ok(domain, what, error))
		return DKIM_KEYTABLE_SELECT_BAD_DOMAIN;
	entry_name(what, sizeof(what), "KeyTable", key->line, key->name);
	if (keytable_entry_uses_domain(key) &&
	    !sender_domain_ok(domain, what, error))
		return DKIM_KEYTABLE_SELECT_BAD_DOMAIN;

	*choices = dkim_realloc(*choices, (*count + 1) * sizeof(**choices));
	struct dkim_key_choice *choice = &(*choices)[(*count)++];
	choice->keyname = dkim_strdup(keyname);
	choice->domain = strcmp(key->domain, "%") == 0 ?
		dkim_strdup(domain) : dkim_strdup(key->domain);
	choice->selector = dkim_strdup(key->selector);
	choice->key = expand_domain(key->key, domain);
	choice->key_is_file = dkim_keytable_key_is_file(key->key);
	choice->identity = NULL;
	if (match->signer != NULL) {
		char *identity = expand_domain(match->signer, domain);
		/* OpenDKIM leaves out an i= that conflicts with d= rather
		 * than making a signature that fails. */
		if (identity_within(identity, choice->domain))
			choice->identity = identity;
		else
			free(identity);
	}
	return DKIM_KEYTABLE_SELECT_OK;
}

int
dkim_keytable_select(const struct dkim_signingtable *signingtable,
		     const struct dkim_keytable *keytable,
		     const char *address, bool all_matches,
		     struct dkim_key_choice **choices_r, size_t *count_r,
		     struct dkim_error *error)
{
	const char *at = strrchr(address, '@');
	char *domain = dkim_strdup(at == NULL ? address : at + 1);
	struct dkim_key_choice *choices = NULL;
	size_t count = 0;
	int ret = DKIM_KEYTABLE_SELECT_OK;

	for (char *p = domain; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);

	size_t match_count = dkim_signingtable_match(signingtable, address,
						     all_matches, NULL, 0);
	const struct dkim_signingtable_entry **matches =
		dkim_malloc((match_count + 1) * sizeof(*matches));
	dkim_signingtable_match(signingtable, address, all_matches,
				matches, match_count);

	for (size_t i = 0; i < match_count &&
	     ret == DKIM_KEYTABLE_SELECT_OK; i++) {
		ret = add_choice(matches[i], keytable, domain, &choices,
				 &count, error);
	}
	free(matches);
	free(domain);
	if (ret != DKIM_KEYTABLE_SELECT_OK) {
		/* all the signatures asked for, or none */
		dkim_key_choices_free(&choices, count);
		count = 0;
	}
	*choices_r = choices;
	*count_r = count;
	return ret;
}
