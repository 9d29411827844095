/* Offline resolver: answers from a table file, one record per line:
 *
 *   <owner-name> <whitespace> <TXT value, to the end of the line>
 *
 * '#' or ';' starts a comment line.  Owner names compare
 * case-insensitively without a trailing dot; a name listed twice has two
 * TXT records.  Special values: NXDOMAIN; ~~text~~ is a DNS failure (a
 * timeout when the text says "timed out" or "timeout", otherwise an error
 * such as SERVFAIL); "" is a record holding one empty string.  Names not
 * listed do not exist.  This is the format of the shared test corpora. */
#include "dkim-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct table_entry {
	char *name;
	char *value;
	size_t value_len;
};

struct table {
	struct table_entry *entries;
	size_t count;
};

static char *
lowercase_name(const char *name, size_t len)
{
	if (len > 0 && name[len - 1] == '.')
		len--;
	char *copy = dkim_strndup(name, len);
	dkim_ascii_lowercase(copy);
	return copy;
}

static void
table_add_line(struct table *table, const char *line, size_t len)
{
	size_t name_len = 0, pos;

	while (name_len < len && line[name_len] != ' ' &&
	       line[name_len] != '\t')
		name_len++;
	pos = name_len;
	while (pos < len && (line[pos] == ' ' || line[pos] == '\t'))
		pos++;
	if (name_len == 0)
		return;

	table->entries = dkim_realloc(table->entries,
		(table->count + 1) * sizeof(*table->entries));
	struct table_entry *entry = &table->entries[table->count++];
	entry->name = lowercase_name(line, name_len);
	entry->value = dkim_strndup(line + pos, len - pos);
	entry->value_len = len - pos;
}

static int
table_load(struct table *table, const char *path, struct dkim_error *error)
{
	FILE *file = fopen(path, "r");
	char *line = NULL;
	size_t alloc = 0;
	ssize_t len;

	if (file == NULL) {
		dkim_error_set(error, "cannot open DNS table %s: %s", path,
			       strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &alloc, file)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (len == 0 || line[0] == '#' || line[0] == ';')
			continue;
		table_add_line(table, line, (size_t)len);
	}
	bool failed = ferror(file) != 0;
	free(line);
	fclose(file);
	if (failed) {
		dkim_error_set(error, "cannot read DNS table %s", path);
		return -1;
	}
	return 0;
}

/* Returns true if the value was a special one and set the status. */
static bool
special_value(const struct table_entry *entry, struct dkim_dns_answer *answer)
{
	const char *value = entry->value;
	size_t len = entry->value_len;

	if (strcmp(value, "NXDOMAIN") == 0) {
		answer->status = DKIM_DNS_NOT_FOUND;
		return true;
	}
	if (len >= 4 && strncmp(value, "~~", 2) == 0 &&
	    strcmp(value + len - 2, "~~") == 0) {
		bool timeout = strcasestr(value, "timed out") != NULL ||
			strcasestr(value, "timeout") != NULL;
		answer->status = timeout ? DKIM_DNS_TIMEOUT : DKIM_DNS_ERROR;
		answer->detail = timeout ? "query timed out" :
			"server failure (table entry)";
		return true;
	}
	return false;
}

static void
table_start(dkim_resolver *resolver, struct dkim_dns_query *query)
{
	const struct table *table = dkim_resolver_context(resolver);
	struct dkim_dns_answer *answer = &query->answer;

	answer->status = DKIM_DNS_NOT_FOUND;
	for (size_t i = 0; i < table->count; i++) {
		const struct table_entry *entry = &table->entries[i];

		if (strcmp(entry->name, query->qname) != 0)
			continue;
		if (special_value(entry, answer))
			break;
		answer->status = DKIM_DNS_FOUND;
		if (strcmp(entry->value, "\"\"") == 0)
			dkim_dns_answer_add_record(answer, "", 0, 1);
		else
			dkim_dns_answer_add_record(answer, entry->value,
						   entry->value_len, 1);
	}
	dkim_dns_query_done(query);
}

static void
table_deinit(dkim_resolver *resolver)
{
	struct table *table = dkim_resolver_context(resolver);

	for (size_t i = 0; i < table->count; i++) {
		free(table->entries[i].name);
		free(table->entries[i].value);
	}
	free(table->entries);
	free(table);
}

static const struct dkim_resolver_backend table_backend = {
	.start = table_start,
	.wait = dkim_resolver_sync_wait,
	.deinit = table_deinit,
};

int
dkim_resolver_table_new(const char *path, dkim_resolver **resolver_r,
			struct dkim_error *error)
{
	struct table *table = dkim_calloc(1, sizeof(*table));

	if (table_load(table, path, error) < 0) {
		dkim_resolver *tmp = dkim_resolver_alloc(&table_backend, table);
		dkim_resolver_free(&tmp);
		return -1;
	}
	*resolver_r = dkim_resolver_alloc(&table_backend, table);
	return 0;
}
