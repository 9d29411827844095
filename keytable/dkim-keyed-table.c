/* Tables from a key-value store, with a TTL cache: see dkim-keyed-table.h. */
#include "dkim-keyed-table.h"
#include "dkim-util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One looked-up key of one store. */
struct cache_entry {
	struct cache_entry *next;	/* in its bucket */
	char *id;			/* store name, '\0', key */
	size_t id_size;
	char *value;			/* NULL: the store has no such key */
	time_t fetched;
	size_t bytes;			/* what it counts against the bound */
};

struct dkim_keyed_cache {
	struct cache_entry **buckets;
	size_t bucket_count;		/* a power of two */
	size_t count;
	size_t bytes;
	/* Mixed into the hash: the keys come from mail (From addresses),
	 * so nobody should be able to predict which ones collide. */
	uint64_t seed;
	unsigned lookup_count;
};

#define INITIAL_BUCKETS 64

/* FNV-1a over the seed and the id. */
static uint64_t
hash_id(const struct dkim_keyed_cache *cache, const char *id, size_t size)
{
	uint64_t hash = 0xcbf29ce484222325ULL ^ cache->seed;

	for (size_t i = 0; i < size; i++) {
		hash ^= (unsigned char)id[i];
		hash *= 0x100000001b3ULL;
	}
	return hash ^ (hash >> 29);
}

static uint64_t
random_seed(const void *address)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return ((uint64_t)now.tv_nsec << 32) ^ (uint64_t)now.tv_sec ^
		(uint64_t)(uintptr_t)address;
}

struct dkim_keyed_cache *
dkim_keyed_cache_new(void)
{
	struct dkim_keyed_cache *cache = dkim_calloc(1, sizeof(*cache));

	cache->bucket_count = INITIAL_BUCKETS;
	cache->buckets = dkim_calloc(cache->bucket_count,
				     sizeof(*cache->buckets));
	cache->seed = random_seed(cache);
	return cache;
}

static void
entry_free(struct cache_entry *entry)
{
	free(entry->id);
	free(entry->value);
	free(entry);
}

/* Removes the entries `drop` selects (every one when it is NULL). */
static void
cache_remove(struct dkim_keyed_cache *cache,
	     bool (*drop)(const struct cache_entry *entry, time_t now,
			  unsigned ttl_secs),
	     time_t now, unsigned ttl_secs)
{
	for (size_t i = 0; i < cache->bucket_count; i++) {
		struct cache_entry **link = &cache->buckets[i];

		while (*link != NULL) {
			struct cache_entry *entry = *link;

			if (drop != NULL && !drop(entry, now, ttl_secs)) {
				link = &entry->next;
				continue;
			}
			*link = entry->next;
			cache->count--;
			cache->bytes -= entry->bytes;
			entry_free(entry);
		}
	}
}

void
dkim_keyed_cache_free(struct dkim_keyed_cache **_cache)
{
	struct dkim_keyed_cache *cache = *_cache;

	if (cache == NULL)
		return;
	*_cache = NULL;
	cache_remove(cache, NULL, 0, 0);
	free(cache->buckets);
	free(cache);
}

unsigned
dkim_keyed_cache_lookup_count(const struct dkim_keyed_cache *cache)
{
	return cache->lookup_count;
}

static bool
entry_fresh(const struct cache_entry *entry, time_t now, unsigned ttl_secs)
{
	/* a clock that went back makes nothing fresh */
	return now >= entry->fetched &&
		(uint64_t)(now - entry->fetched) < ttl_secs;
}

static bool
entry_expired(const struct cache_entry *entry, time_t now,
	      unsigned ttl_secs)
{
	return !entry_fresh(entry, now, ttl_secs);
}

static struct cache_entry **
cache_find(struct dkim_keyed_cache *cache, const char *id, size_t id_size)
{
	uint64_t hash = hash_id(cache, id, id_size);
	struct cache_entry **link =
		&cache->buckets[hash & (cache->bucket_count - 1)];

	while (*link != NULL && ((*link)->id_size != id_size ||
				 memcmp((*link)->id, id, id_size) != 0))
		link = &(*link)->next;
	return link;
}

static void
cache_grow(struct dkim_keyed_cache *cache)
{
	size_t old_count = cache->bucket_count;
	struct cache_entry **old = cache->buckets;

	cache->bucket_count *= 2;
	cache->buckets = dkim_calloc(cache->bucket_count,
				     sizeof(*cache->buckets));
	for (size_t i = 0; i < old_count; i++) {
		while (old[i] != NULL) {
			struct cache_entry *entry = old[i];
			uint64_t hash = hash_id(cache, entry->id,
						entry->id_size);
			struct cache_entry **bucket = &cache->buckets[
				hash & (cache->bucket_count - 1)];

			old[i] = entry->next;
			entry->next = *bucket;
			*bucket = entry;
		}
	}
	free(old);
}

/* Stores a fresh answer (value NULL: none) and returns its entry. */
static struct cache_entry *
cache_put(struct dkim_keyed_cache *cache, const char *id, size_t id_size,
	  char *value, time_t now, unsigned ttl_secs)
{
	struct cache_entry **link = cache_find(cache, id, id_size);
	size_t bytes = sizeof(struct cache_entry) + id_size +
		(value == NULL ? 0 : strlen(value) + 1);

	if (*link != NULL) {
		struct cache_entry *old = *link;

		*link = old->next;
		cache->count--;
		cache->bytes -= old->bytes;
		entry_free(old);
	}
	if (cache->bytes + bytes > DKIM_KEYED_CACHE_MAX_BYTES) {
		cache_remove(cache, entry_expired, now, ttl_secs);
		if (cache->bytes + bytes > DKIM_KEYED_CACHE_MAX_BYTES)
			cache_remove(cache, NULL, 0, 0);
	}
	if (cache->count >= cache->bucket_count)
		cache_grow(cache);

	struct cache_entry *entry = dkim_calloc(1, sizeof(*entry));
	entry->id = dkim_memdup(id, id_size);
	entry->id_size = id_size;
	entry->value = value;
	entry->fetched = now;
	entry->bytes = bytes;
	link = cache_find(cache, id, id_size);
	entry->next = *link;
	*link = entry;
	cache->count++;
	cache->bytes += bytes;
	return entry;
}

int
dkim_keyed_lookup(const struct dkim_keyed_reader *reader, const char *key,
		  const char **value_r, struct dkim_error *error)
{
	struct dkim_keyed_cache *cache = reader->cache;
	const struct dkim_keyed_store *store = reader->store;
	size_t name_len = strlen(store->name), key_len = strlen(key);
	size_t id_size = name_len + 1 + key_len;
	char *id = dkim_malloc(id_size);
	const char *value = NULL;

	memcpy(id, store->name, name_len + 1);
	memcpy(id + name_len + 1, key, key_len);
	struct cache_entry *entry = *cache_find(cache, id, id_size);
	if (entry == NULL ||
	    !entry_fresh(entry, reader->now, reader->ttl_secs)) {
		struct dkim_error store_error;
		int ret;

		cache->lookup_count++;
		ret = store->lookup(store->context, key, &value,
				    &store_error);
		if (ret < 0) {
			dkim_error_set(error, "%s: cannot look up %s: %s",
				       store->name, key, store_error.text);
			free(id);
			return -1;
		}
		if (ret > 0 && strlen(value) > DKIM_KEYED_MAX_VALUE_SIZE) {
			dkim_error_set(error, "%s: the value of %s is longer "
				       "than %d bytes", store->name, key,
				       DKIM_KEYED_MAX_VALUE_SIZE);
			free(id);
			return -1;
		}
		entry = cache_put(cache, id, id_size,
				  ret > 0 ? dkim_strdup(value) : NULL,
				  reader->now, reader->ttl_secs);
	}
	free(id);
	*value_r = entry->value;
	return entry->value != NULL ? 1 : 0;
}

/* A key name as the store's keys may hold it: lowercase, no '/' (the
 * keys are paths), no control characters.  NULL (and error) otherwise. */
static char *
store_key_name(const struct dkim_keyed_store *store, const char *name,
	       struct dkim_error *error)
{
	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f) {
			dkim_error_set(error, "%s: the key name '%.64s' cannot "
				       "be looked up (it holds a '/' or a "
				       "control character)", store->name,
				       name);
			return NULL;
		}
	}
	char *lower = dkim_strdup(name);
	dkim_ascii_lowercase(lower);
	return lower;
}

static bool
is_list_separator(char c)
{
	return c == ',' || dkim_is_wsp((unsigned char)c) || c == '\r' ||
		c == '\n';
}

char **
dkim_keyed_names_parse(const char *value)
{
	size_t count = 0;
	char **names = dkim_calloc(strlen(value) / 2 + 2, sizeof(*names));

	for (const char *p = value; *p != '\0';) {
		while (is_list_separator(*p))
			p++;
		const char *end = p;
		while (*end != '\0' && !is_list_separator(*end))
			end++;
		if (end > p) {
			names[count] = dkim_strndup(p, (size_t)(end - p));
			dkim_ascii_lowercase(names[count++]);
		}
		p = end;
	}
	return names;
}

char *
dkim_keyed_names_format(const char *const *names)
{
	struct dkim_buf buf = { 0 };

	dkim_buf_append_str(&buf, "");
	for (size_t i = 0; names[i] != NULL; i++) {
		if (i > 0)
			dkim_buf_append_str(&buf, ", ");
		dkim_buf_append_str(&buf, names[i]);
	}
	return dkim_buf_steal(&buf);
}

/* Adds an entry for each name in the list `value`. */
static int
add_signing_list(struct dkim_signingtable *table,
		 const struct dkim_keyed_store *store, const char *pattern,
		 const char *value, struct dkim_error *error)
{
	char **names = dkim_keyed_names_parse(value);
	int ret = 0;

	for (char **name = names; *name != NULL && ret == 0; name++) {
		char *keyname = store_key_name(store, *name, error);

		if (keyname == NULL) {
			ret = -1;
		} else {
			dkim_signingtable_add(table, pattern, keyname, NULL);
			free(keyname);
		}
	}
	dkim_table_strings_free(&names);
	return ret;
}

int
dkim_keyed_signingtable(const struct dkim_keyed_reader *reader,
			const char *address, bool all_matches,
			struct dkim_signingtable **table_r,
			struct dkim_error *error)
{
	struct dkim_signingtable *table =
		dkim_signingtable_new(DKIM_TABLE_DICT);
	char **keys = dkim_dict_signing_keys(address);
	int ret = 0;

	for (char **key = keys; *key != NULL && ret == 0; key++) {
		char *store_key = dkim_strdup_printf(
			DKIM_KEYED_SIGNING_PREFIX "%s", *key);
		const char *value;

		ret = dkim_keyed_lookup(reader, store_key, &value, error);
		free(store_key);
		if (ret > 0) {
			ret = add_signing_list(table, reader->store, *key,
					       value, error);
			if (ret == 0 && !all_matches)
				break;
		}
	}
	dkim_table_strings_free(&keys);
	if (ret < 0) {
		dkim_signingtable_free(&table);
		return -1;
	}
	*table_r = table;
	return 0;
}

/* The key name an entry asks for; NULL when it is '%' and the sender's
 * domain cannot stand for it (dkim_keytable_select() says why). */
static const char *
entry_keyname(const struct dkim_signingtable_entry *entry,
	      const char *domain)
{
	if (strcmp(entry->keyname, "%") != 0)
		return entry->keyname;
	return dkim_domain_syntax_ok(domain) ? domain : NULL;
}

static int
add_key(struct dkim_keytable *table, const struct dkim_keyed_reader *reader,
	const char *name, struct dkim_error *error)
{
	char *keyname = store_key_name(reader->store, name, error);

	if (keyname == NULL)
		return -1;
	if (dkim_keytable_lookup(table, keyname) != NULL) {
		free(keyname);
		return 0;
	}
	char *store_key = dkim_strdup_printf(DKIM_KEYED_KEY_PREFIX "%s",
					     keyname);
	const char *value;
	int ret = dkim_keyed_lookup(reader, store_key, &value, error);
	if (ret > 0) {
		ret = dkim_keytable_add(table, keyname, value,
					reader->store->name, error);
	}
	free(store_key);
	free(keyname);
	return ret < 0 ? -1 : 0;
}

int
dkim_keyed_keytable(const struct dkim_keyed_reader *reader,
		    const struct dkim_signingtable *signingtable,
		    const char *address, bool all_matches,
		    struct dkim_keytable **table_r, struct dkim_error *error)
{
	const char *at = strrchr(address, '@');
	char *domain = dkim_strdup(at == NULL ? address : at + 1);
	struct dkim_keytable *table = dkim_keytable_new();
	int ret = 0;

	dkim_ascii_lowercase(domain);
	size_t count = dkim_signingtable_match(signingtable, address,
					       all_matches, NULL, 0);
	const struct dkim_signingtable_entry **matches =
		dkim_malloc((count + 1) * sizeof(*matches));
	dkim_signingtable_match(signingtable, address, all_matches, matches,
				count);
	for (size_t i = 0; i < count && ret == 0; i++) {
		const char *name = entry_keyname(matches[i], domain);

		if (name != NULL)
			ret = add_key(table, reader, name, error);
	}
	free(matches);
	free(domain);
	if (ret < 0) {
		dkim_keytable_free(&table);
		return -1;
	}
	*table_r = table;
	return 0;
}
