/* Loaded tables and keys, reloaded on change: see dkim-keytable-cache.h. */
#include "dkim-keytable-cache.h"
#include "dkim-util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum cache_kind {
	CACHE_KEYTABLE,
	CACHE_SIGNINGTABLE,
	CACHE_PRIVKEY,
};

/* What identifies one version of a file. */
struct file_version {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct cache_entry {
	enum cache_kind kind;
	char *name;		/* file name, or inline key data */
	unsigned variant;	/* table kind or privkey flags */
	bool is_file;
	struct file_version version;
	void *object;
};

struct retired_object {
	enum cache_kind kind;
	void *object;
};

struct dkim_keytable_cache {
	struct cache_entry *entries;
	size_t count;
	struct retired_object *retired;
	size_t retired_count;
	unsigned load_count;
};

static void
object_free(enum cache_kind kind, void *object)
{
	switch (kind) {
	case CACHE_KEYTABLE: {
		struct dkim_keytable *table = object;
		dkim_keytable_free(&table);
		break;
	}
	case CACHE_SIGNINGTABLE: {
		struct dkim_signingtable *table = object;
		dkim_signingtable_free(&table);
		break;
	}
	case CACHE_PRIVKEY: {
		dkim_privkey *key = object;
		dkim_privkey_free(&key);
		break;
	}
	}
}

struct dkim_keytable_cache *
dkim_keytable_cache_new(void)
{
	return dkim_calloc(1, sizeof(struct dkim_keytable_cache));
}

void
dkim_keytable_cache_release(struct dkim_keytable_cache *cache)
{
	for (size_t i = 0; i < cache->retired_count; i++)
		object_free(cache->retired[i].kind, cache->retired[i].object);
	free(cache->retired);
	cache->retired = NULL;
	cache->retired_count = 0;
}

void
dkim_keytable_cache_free(struct dkim_keytable_cache **_cache)
{
	struct dkim_keytable_cache *cache = *_cache;

	if (cache == NULL)
		return;
	*_cache = NULL;
	dkim_keytable_cache_release(cache);
	for (size_t i = 0; i < cache->count; i++) {
		object_free(cache->entries[i].kind, cache->entries[i].object);
		free(cache->entries[i].name);
	}
	free(cache->entries);
	free(cache);
}

unsigned
dkim_keytable_cache_load_count(const struct dkim_keytable_cache *cache)
{
	return cache->load_count;
}

static void
retire(struct dkim_keytable_cache *cache, struct cache_entry *entry)
{
	cache->retired = dkim_realloc(cache->retired, (cache->retired_count + 1) *
				  sizeof(*cache->retired));
	cache->retired[cache->retired_count++] = (struct retired_object){
		.kind = entry->kind, .object = entry->object,
	};
	free(entry->name);
	*entry = cache->entries[--cache->count];
}

static struct cache_entry *
find(struct dkim_keytable_cache *cache, enum cache_kind kind,
     const char *name, unsigned variant)
{
	for (size_t i = 0; i < cache->count; i++) {
		struct cache_entry *entry = &cache->entries[i];

		if (entry->kind == kind && entry->variant == variant &&
		    strcmp(entry->name, name) == 0)
			return entry;
	}
	return NULL;
}

static bool
version_equal(const struct file_version *a, const struct file_version *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
		a->mtime.tv_sec == b->mtime.tv_sec &&
		a->mtime.tv_nsec == b->mtime.tv_nsec &&
		a->ctime.tv_sec == b->ctime.tv_sec &&
		a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* base64 DER (PKCS#8, then PKCS#1) or an Ed25519 seed, as an OpenDKIM
 * KeyTable may hold it inline. */
static int
parse_inline_key(const char *data, dkim_privkey **key_r,
		 struct dkim_error *error)
{
	static const char *const labels[] = { "PRIVATE KEY", "RSA PRIVATE KEY" };
	size_t len = strlen(data);

	if (dkim_privkey_parse(data, len, key_r, NULL) == 0)
		return 0;
	for (size_t i = 0; i < DKIM_N_ELEMENTS(labels); i++) {
		struct dkim_buf pem = { 0 };

		/* PEM wants lines of at most 64 base64 characters */
		dkim_buf_printf(&pem, "-----BEGIN %s-----\n", labels[i]);
		for (size_t pos = 0; pos < len; pos += 64)
			dkim_buf_printf(&pem, "%.64s\n", data + pos);
		dkim_buf_printf(&pem, "-----END %s-----\n", labels[i]);
		int ret = dkim_privkey_parse(pem.data, pem.len, key_r, NULL);
		dkim_buf_free(&pem);
		if (ret == 0)
			return 0;
	}
	dkim_error_set(error, "an inline KeyTable key is neither base64 DER "
		  "(PKCS#8 or PKCS#1) nor a base64 Ed25519 seed");
	return -1;
}

static int
load(enum cache_kind kind, const char *name, unsigned variant, bool is_file,
     void **object_r, struct dkim_error *error)
{
	switch (kind) {
	case CACHE_KEYTABLE:
		return dkim_keytable_load(name,
			(struct dkim_keytable **)object_r, error);
	case CACHE_SIGNINGTABLE:
		return dkim_signingtable_load(name,
			(enum dkim_table_kind)variant,
			(struct dkim_signingtable **)object_r, error);
	case CACHE_PRIVKEY:
		if (!is_file)
			return parse_inline_key(name,
				(dkim_privkey **)object_r, error);
		return dkim_privkey_load(name, variant,
					 (dkim_privkey **)object_r, error);
	}
	abort();
}

/* *loaded_r tells whether this call loaded the object (a first load or a
 * reload). */
static int
get(struct dkim_keytable_cache *cache, enum cache_kind kind,
    const char *name, unsigned variant, bool is_file, void **object_r,
    bool *loaded_r, struct dkim_error *error)
{
	struct cache_entry *entry = find(cache, kind, name, variant);
	struct file_version version = { 0 };
	struct stat st;

	*loaded_r = false;
	if (is_file) {
		if (stat(name, &st) < 0) {
			dkim_error_set(error, "cannot access %s: %s", name,
				  strerror(errno));
			if (entry != NULL)
				retire(cache, entry);
			return -1;
		}
		version = (struct file_version){
			.dev = st.st_dev, .ino = st.st_ino, .size = st.st_size,
			.mtime = st.st_mtim, .ctime = st.st_ctim,
		};
	}
	if (entry != NULL) {
		if (!is_file || version_equal(&entry->version, &version)) {
			*object_r = entry->object;
			return 0;
		}
		retire(cache, entry);
	}

	/* The version is taken before loading: if the file changes while it
	 * is read, the next call sees a difference and loads it again. */
	void *object;
	cache->load_count++;
	if (load(kind, name, variant, is_file, &object, error) < 0)
		return -1;
	cache->entries = dkim_realloc(cache->entries,
				  (cache->count + 1) * sizeof(*cache->entries));
	cache->entries[cache->count++] = (struct cache_entry){
		.kind = kind, .variant = variant, .is_file = is_file,
		.name = dkim_strdup(name),
		.version = version, .object = object,
	};
	*object_r = object;
	*loaded_r = true;
	return 0;
}

int
dkim_keytable_cache_keytable(struct dkim_keytable_cache *cache,
			     const char *path,
			     const struct dkim_keytable **table_r,
			     struct dkim_error *error)
{
	void *object;
	bool loaded;

	if (get(cache, CACHE_KEYTABLE, path, 0, true, &object, &loaded,
		error) < 0)
		return -1;
	*table_r = object;
	return 0;
}

int
dkim_keytable_cache_signingtable(struct dkim_keytable_cache *cache,
				 const char *path, enum dkim_table_kind kind,
				 const struct dkim_signingtable **table_r,
				 bool *loaded_r, struct dkim_error *error)
{
	void *object;

	if (get(cache, CACHE_SIGNINGTABLE, path, kind, true, &object,
		loaded_r, error) < 0)
		return -1;
	*table_r = object;
	return 0;
}

int
dkim_keytable_cache_privkey(struct dkim_keytable_cache *cache,
			    const char *key, bool key_is_file, unsigned flags,
			    const dkim_privkey **key_r,
			    struct dkim_error *error)
{
	void *object;
	bool loaded;

	if (get(cache, CACHE_PRIVKEY, key, flags, key_is_file, &object,
		&loaded, error) < 0)
		return -1;
	*key_r = object;
	return 0;
}
