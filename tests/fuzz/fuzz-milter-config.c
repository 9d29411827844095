/* dkim-milter's readers of administrator- and sender-supplied text: the
 * opendkim.conf parser (Include refused: nothing is read from files), a
 * data set file (flat and pattern) with the host lists built from it, and
 * the From address the SigningTable is looked up with.
 *
 * Input: any bytes, given to each reader.  Every problem is one printable
 * line naming the source; host lists and data sets answer lookups in
 * bounded time; a From address, when one comes out, is "local@domain"
 * with the domain as dkimcore reads it. */
#include "dkim-util.h"
#include "milter-config.h"
#include "milter-dataset.h"
#include "milter-from.h"
#include "milter-hosts.h"
#include "fuzz.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static void
check_problems(const struct milter_problems *problems)
{
	unsigned errors = 0;

	for (size_t i = 0; i < problems->count; i++) {
		const char *line = problems->lines[i];
		size_t len = strlen(line);

		FUZZ_ASSERT(fuzz_unprintable_at(line, len) == len,
			    "problem line %zu has a control byte: \"%s\"", i,
			    line);
		FUZZ_ASSERT(strncmp(line, "error: ", 7) == 0 ||
			    strncmp(line, "warning: ", 9) == 0,
			    "problem line without its kind: \"%s\"", line);
		errors += strncmp(line, "error: ", 7) == 0;
	}
	FUZZ_ASSERT(errors == problems->errors, "%u error lines, %u counted",
		    errors, problems->errors);
}

static void
parse_config(const uint8_t *data, size_t size)
{
	struct milter_problems problems = { 0 };
	struct milter_config config;

	milter_config_init(&config);
	int ret = milter_config_parse(&config, (const char *)data, size,
				      "fuzz.conf", false, &problems);
	FUZZ_ASSERT((ret < 0) == (problems.errors > 0),
		    "parse returned %d with %u errors", ret, problems.errors);
	check_problems(&problems);
	milter_problems_free(&problems);
	milter_config_free(&config);
}

static void
look_up(const struct milter_dataset *set)
{
	static const char *const keys[] = {
		"alice@example.com", "example.com", "", "*", "a@b@c",
	};
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	struct milter_hosts *hosts;
	struct dkim_error error;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		(void)milter_dataset_find(set, keys[i]);
		(void)milter_dataset_find_address(set, keys[i]);
	}
	for (size_t i = 0; i < milter_dataset_count(set); i++) {
		const struct milter_dataset_entry *entry =
			milter_dataset_entry(set, i);
		char **items = milter_dataset_split_value(entry->value);
		for (size_t j = 0; items != NULL && items[j] != NULL; j++)
			FUZZ_ASSERT(items[j][0] != '\0', "an empty value item");
		milter_strings_free(&items);
	}
	if (milter_hosts_new(set, &hosts, &error) < 0) {
		FUZZ_ASSERT(error.text[0] != '\0', "a host list error without text");
		return;
	}
	inet_pton(AF_INET, "192.168.1.1", &in.sin_addr);
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6.sin6_addr);
	(void)milter_hosts_match(hosts, (struct sockaddr *)&in, "mx.example.com");
	(void)milter_hosts_match(hosts, (struct sockaddr *)&in6, "unknown");
	(void)milter_hosts_match(hosts, NULL, NULL);
	(void)milter_hosts_match_everything(hosts);
	milter_hosts_free(&hosts);
}

static void
parse_dataset(const uint8_t *data, size_t size)
{
	static const enum milter_dataset_kind kinds[] = {
		MILTER_DATASET_LIST, MILTER_DATASET_PATTERNS,
	};
	struct milter_dataset *set;
	struct dkim_error error;

	for (size_t i = 0; i < 2; i++) {
		if (milter_dataset_parse_file((const char *)data, size,
					      kinds[i], "fuzz.set", &set,
					      &error) < 0) {
			FUZZ_ASSERT(memchr(data, '\0', size) != NULL,
				    "a data set refused: %s", error.text);
			continue;
		}
		look_up(set);
		milter_dataset_free(&set);
	}
	if (memchr(data, '\0', size) == NULL) {
		char *list = dkim_strndup((const char *)data, size);
		set = milter_dataset_parse_list(list);
		look_up(set);
		milter_dataset_free(&set);
		free(list);
	}
}

static void
parse_from(const uint8_t *data, size_t size)
{
	char *address = milter_from_address((const char *)data, size);

	if (address == NULL)
		return;
	const char *at = strrchr(address, '@');
	FUZZ_ASSERT(at != NULL && at != address, "no local part: \"%s\"",
		    address);
	FUZZ_ASSERT(dkim_domain_syntax_ok(at + 1) ||
		    strchr(at + 1, '.') == NULL,
		    "not a domain: \"%s\"", at + 1);
	for (const char *p = address; *p != '\0'; p++)
		FUZZ_ASSERT((unsigned char)*p >= 0x20 && *p != 0x7f,
			    "a control byte in \"%s\"", address);
	free(address);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse_config(data, size);
	parse_dataset(data, size);
	parse_from(data, size);
	return 0;
}
