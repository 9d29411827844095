/* Tables from a key-value store (dkim-keyed-table.h): what a dict holds is
 * not ours to trust (a panel, an SQL INSERT, a typo), so every value must
 * give a defined result.
 *
 * Input: "ADDRESS\n", then the value the store gives for every
 * dkim/signing/ key, a NUL byte, and the value for every dkim/key/ key
 * (without a NUL: none for the keys).  The tables are built through the
 * cache and a selection is made from them, as the submission plugin does;
 * the key-name list format must survive being written and read again. */
#include "dkim-keyed-table.h"
#include "dkim-util.h"
#include "fuzz.h"

struct fuzz_store {
	const char *signing, *key;	/* NULL: the store has none */
};

static int
fuzz_lookup(void *context, const char *key, const char **value_r,
	    struct dkim_error *error)
{
	const struct fuzz_store *store = context;
	const char *value = strncmp(key, DKIM_KEYED_SIGNING_PREFIX,
				    strlen(DKIM_KEYED_SIGNING_PREFIX)) == 0 ?
		store->signing : store->key;

	FUZZ_ASSERT(strchr(key, '/') != NULL && key[strlen(key) - 1] != '/',
		    "looked up a key without a name: \"%s\"", key);
	(void)error;
	if (value == NULL)
		return 0;
	*value_r = value;
	return 1;
}

static void
check_lookup_order(const char *address)
{
	char **keys = dkim_dict_signing_keys(address);
	size_t count = 0;

	for (char **key = keys; *key != NULL; key++, count++) {
		FUZZ_ASSERT(**key != '\0', "an empty lookup key");
		FUZZ_ASSERT(strchr(*key, '/') == NULL, "a lookup key with '/'");
		for (const char *p = *key; *p != '\0'; p++)
			FUZZ_ASSERT(*p < 'A' || *p > 'Z',
				    "a lookup key not in lowercase: %s", *key);
	}
	FUZZ_ASSERT(count > 0 && strcmp(keys[count - 1], "*") == 0,
		    "the lookup does not end with \"*\"");
	dkim_table_strings_free(&keys);
}

static void
check_names(const char *value)
{
	char **names = dkim_keyed_names_parse(value);

	for (char **name = names; *name != NULL; name++) {
		FUZZ_ASSERT(**name != '\0', "an empty key name");
		FUZZ_ASSERT(strpbrk(*name, ", \t\r\n") == NULL,
			    "a separator inside a key name");
	}
	char *formatted = dkim_keyed_names_format((const char *const *)names);
	char **again = dkim_keyed_names_parse(formatted);
	size_t i = 0;
	for (; names[i] != NULL; i++) {
		FUZZ_ASSERT(again[i] != NULL && strcmp(names[i], again[i]) == 0,
			    "name %zu changed when written and read again", i);
	}
	FUZZ_ASSERT(again[i] == NULL, "names added when read again");
	dkim_table_strings_free(&again);
	free(formatted);
	dkim_table_strings_free(&names);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *input = dkim_strndup((const char *)data, size);
	size_t len = strlen(input);	/* up to the first NUL */
	char *newline = strchr(input, '\n');
	struct fuzz_store store = { 0 };

	if (newline == NULL) {
		free(input);
		return 0;
	}
	*newline = '\0';
	const char *address = input;
	store.signing = newline + 1;
	/* the key value: the bytes after the first NUL, up to the next one */
	char *key_value = len < size ?
		dkim_strndup((const char *)data + len + 1, size - len - 1) : NULL;
	store.key = key_value;

	check_lookup_order(address);
	check_names(store.signing);

	struct dkim_keyed_store backend = {
		.name = "dict:fuzz", .lookup = fuzz_lookup, .context = &store,
	};
	struct dkim_keyed_cache *cache = dkim_keyed_cache_new();
	struct dkim_keyed_reader reader = {
		.cache = cache, .store = &backend, .now = 1000, .ttl_secs = 60,
	};
	struct dkim_signingtable *signing = NULL;
	struct dkim_keytable *keys = NULL;
	struct dkim_key_choice *choices = NULL;
	struct dkim_error error;
	size_t count = 0;

	for (int all = 0; all < 2; all++) {
		if (dkim_keyed_signingtable(&reader, address, all != 0,
					    &signing, &error) == 0 &&
		    dkim_keyed_keytable(&reader, signing, address, all != 0,
					&keys, &error) == 0 &&
		    dkim_keytable_select(signing, keys, address, all != 0,
					 &choices, &count, &error) ==
		    DKIM_KEYTABLE_SELECT_OK) {
			for (size_t i = 0; i < count; i++) {
				FUZZ_ASSERT(*choices[i].domain != '\0' &&
					    *choices[i].selector != '\0' &&
					    *choices[i].key != '\0',
					    "a choice with an empty part");
			}
		}
		dkim_key_choices_free(&choices, count);
		count = 0;
		dkim_signingtable_free(&signing);
		dkim_keytable_free(&keys);
	}
	FUZZ_ASSERT(dkim_keyed_cache_lookup_count(cache) > 0,
		    "the store was never asked");
	dkim_keyed_cache_free(&cache);
	free(key_value);
	free(input);
	return 0;
}
