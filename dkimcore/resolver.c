/* The resolver front end shared by all backends: a cache of answers by
 * query name (honouring TTLs where the backend has them), sharing of
 * in-flight queries, and bounded waiting. */
#include "dkim-private.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Past this many cached names, answers not in flight are dropped, so a
 * long-lived process keeps bounded memory. */
#define DKIM_RESOLVER_MAX_CACHED 10000
#define DKIM_RESOLVER_BUCKETS 1024

struct dkim_resolver {
	const struct dkim_resolver_backend *backend;
	void *context;
	struct dkim_dns_query *buckets[DKIM_RESOLVER_BUCKETS];
	size_t query_count;
	struct dkim_dns_result timeout_result;
	/* What the last dkim_resolver_lookup() returned, kept alive. */
	struct dkim_dns_query *last_lookup;

	dkim_dns_lookup_func *lookup;
	void *lookup_context;
};

uint64_t
dkim_monotonic_msecs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- answers ---- */

void
dkim_dns_answer_add_record(struct dkim_dns_answer *answer, const void *txt,
			   size_t len, unsigned string_count)
{
	size_t n = answer->record_count;

	answer->records = dkim_realloc(answer->records,
				       (n + 1) * sizeof(*answer->records));
	answer->string_counts = dkim_realloc(answer->string_counts,
		(n + 1) * sizeof(*answer->string_counts));
	memset(&answer->records[n], 0, sizeof(answer->records[n]));
	dkim_buf_append(&answer->records[n], txt, len);
	answer->string_counts[n] = string_count;
	answer->record_count++;
}

void
dkim_dns_answer_add(struct dkim_dns_answer *answer, const void *txt,
		    size_t len)
{
	dkim_dns_answer_add_record(answer, txt, len, 1);
}

void
dkim_dns_answer_set_dnssec(struct dkim_dns_answer *answer,
			   enum dkim_dnssec dnssec)
{
	answer->dnssec = dnssec;
}

void
dkim_dns_answer_set_detail(struct dkim_dns_answer *answer,
			   const char *detail)
{
	answer->detail = detail;
}

void
dkim_dns_answer_clear(struct dkim_dns_answer *answer)
{
	for (size_t i = 0; i < answer->record_count; i++)
		dkim_buf_free(&answer->records[i]);
	free(answer->records);
	free(answer->string_counts);
	memset(answer, 0, sizeof(*answer));
}

/* ---- queries and the cache ---- */

/* Senders choose the names (d= and s=), and the cache outlives their
 * messages: with a hash they could predict, a few hundred messages could
 * pile all DKIM_RESOLVER_MAX_CACHED names into one chain, which every
 * later lookup would walk.  Keyed, as the header index is (headers.c). */
static size_t
bucket_of(const char *qname)
{
	return dkim_siphash(dkim_siphash_process_key(), qname, strlen(qname)) %
		DKIM_RESOLVER_BUCKETS;
}

static void
query_free(struct dkim_dns_query *query)
{
	dkim_dns_answer_clear(&query->answer);
	free(query->record_texts);
	free(query->record_lengths);
	free(query->qname);
	free(query);
}

/* Drops answers nobody holds; queries in flight or referenced by a
 * verifier (a sender can make us look up any number of names while a
 * message still uses its answers) stay. */
static void
evict_answered(dkim_resolver *resolver)
{
	for (size_t i = 0; i < DKIM_RESOLVER_BUCKETS; i++) {
		struct dkim_dns_query **link = &resolver->buckets[i];
		while (*link != NULL) {
			struct dkim_dns_query *query = *link;
			if (query->pending || query->refcount > 0) {
				link = &query->next;
				continue;
			}
			*link = query->next;
			query_free(query);
			resolver->query_count--;
		}
	}
}

/* Takes an answered query out of the cache; its holders keep it, and the
 * last dkim_dns_query_release() frees it. */
static void
detach(dkim_resolver *resolver, struct dkim_dns_query *query)
{
	struct dkim_dns_query **link =
		&resolver->buckets[bucket_of(query->qname)];

	while (*link != query)
		link = &(*link)->next;
	*link = query->next;
	query->next = NULL;
	query->detached = true;
	resolver->query_count--;
}

/* Lowercase, without a trailing dot: the cache key. */
static char *
normalize_qname(const char *qname)
{
	size_t len = strlen(qname);

	if (len > 0 && qname[len - 1] == '.')
		len--;
	char *key = dkim_strndup(qname, len);
	dkim_ascii_lowercase(key);
	return key;
}

static bool
answer_is_reusable(const struct dkim_dns_query *query)
{
	if (query->pending)
		return true;
	if (query->answer.status != DKIM_DNS_FOUND &&
	    query->answer.status != DKIM_DNS_NOT_FOUND)
		return false; /* temporary failures are retried */
	return query->expires_msecs == 0 ||
		query->expires_msecs > dkim_monotonic_msecs();
}

struct dkim_dns_query *
dkim_resolver_start(dkim_resolver *resolver, const char *qname)
{
	char *key = normalize_qname(qname);
	size_t bucket = bucket_of(key);
	struct dkim_dns_query *query;

	for (query = resolver->buckets[bucket]; query != NULL;
	     query = query->next) {
		if (strcmp(query->qname, key) == 0)
			break;
	}
	if (query != NULL && answer_is_reusable(query)) {
		free(key);
		query->refcount++;
		return query;
	}
	if (query != NULL && query->refcount == 0) {
		/* an expired or failed answer that nobody holds: ask again */
		free(key);
		dkim_dns_answer_clear(&query->answer);
		query->refcount = 1;
	} else {
		/* An expired or failed answer still held (by a verifier, or
		 * as the last dkim_resolver_lookup() result) must not change
		 * under its holder: it leaves the cache and lives on until
		 * its last release, and the name is asked again in a new
		 * query. */
		if (query != NULL)
			detach(resolver, query);
		if (resolver->query_count >= DKIM_RESOLVER_MAX_CACHED)
			evict_answered(resolver);
		query = dkim_calloc(1, sizeof(*query));
		query->qname = key;
		query->resolver = resolver;
		query->next = resolver->buckets[bucket];
		query->refcount = 1;
		resolver->buckets[bucket] = query;
		resolver->query_count++;
	}
	query->pending = true;
	resolver->backend->start(resolver, query);
	return query;
}

void
dkim_dns_query_release(struct dkim_dns_query **_query)
{
	struct dkim_dns_query *query = *_query;

	if (query == NULL)
		return;
	*_query = NULL;
	if (--query->refcount == 0 && query->detached)
		query_free(query);
}

void
dkim_dns_query_done(struct dkim_dns_query *query)
{
	struct dkim_dns_answer *answer = &query->answer;

	query->pending = false;
	query->expires_msecs = !answer->has_ttl ? 0 :
		dkim_monotonic_msecs() + (uint64_t)answer->ttl * 1000 + 1;

	free(query->record_texts);
	free(query->record_lengths);
	query->record_texts = dkim_calloc(answer->record_count + 1,
					  sizeof(*query->record_texts));
	query->record_lengths = dkim_calloc(answer->record_count + 1,
					    sizeof(*query->record_lengths));
	for (size_t i = 0; i < answer->record_count; i++) {
		query->record_texts[i] = answer->records[i].data != NULL ?
			answer->records[i].data : "";
		query->record_lengths[i] = answer->records[i].len;
	}
	query->result.status = answer->status;
	query->result.dnssec = answer->dnssec;
	query->result.detail = answer->detail;
	query->result.record_count = answer->record_count;
	query->result.records = query->record_texts;
	query->result.record_lengths = query->record_lengths;
	query->result.string_counts = answer->string_counts;
}

bool
dkim_resolver_wait(dkim_resolver *resolver, struct dkim_dns_query *query,
		   uint64_t deadline_msecs)
{
	while (query->pending) {
		uint64_t now = dkim_monotonic_msecs();
		if (now >= deadline_msecs)
			return false;
		resolver->backend->wait(resolver,
					(unsigned)(deadline_msecs - now));
	}
	return true;
}

const struct dkim_dns_result *
dkim_resolver_lookup(dkim_resolver *resolver, const char *qname,
		     unsigned timeout_msecs)
{
	dkim_dns_query_release(&resolver->last_lookup);
	struct dkim_dns_query *query = dkim_resolver_start(resolver, qname);

	resolver->last_lookup = query;
	if (!dkim_resolver_wait(resolver, query,
				dkim_monotonic_msecs() + timeout_msecs)) {
		resolver->timeout_result.status = DKIM_DNS_TIMEOUT;
		resolver->timeout_result.detail = "no answer in time";
		return &resolver->timeout_result;
	}
	return &query->result;
}

/* ---- construction ---- */

dkim_resolver *
dkim_resolver_alloc(const struct dkim_resolver_backend *backend,
		    void *context)
{
	dkim_resolver *resolver = dkim_calloc(1, sizeof(*resolver));

	resolver->backend = backend;
	resolver->context = context;
	return resolver;
}

void *
dkim_resolver_context(dkim_resolver *resolver)
{
	return resolver->context;
}

int
dkim_resolver_new(const struct dkim_resolver_config *config,
		  dkim_resolver **resolver_r, struct dkim_error *error)
{
	*resolver_r = NULL;
	if (config->table != NULL) {
		if (config->forward != NULL || config->trust_anchor != NULL) {
			dkim_error_set(error, "a DNS table excludes a "
				       "forwarder and a trust anchor");
			return -1;
		}
		return dkim_resolver_table_new(config->table, resolver_r,
					       error);
	}
	return dkim_resolver_unbound_new(config, resolver_r, error);
}

static void
custom_start(dkim_resolver *resolver, struct dkim_dns_query *query)
{
	query->answer.status = resolver->lookup(resolver->lookup_context,
						query->qname, &query->answer);
	dkim_dns_query_done(query);
}

void
dkim_resolver_sync_wait(dkim_resolver *resolver, unsigned msecs)
{
	(void)resolver;
	(void)msecs;
}

static void
custom_deinit(dkim_resolver *resolver)
{
	(void)resolver;
}

static const struct dkim_resolver_backend custom_backend = {
	.start = custom_start,
	.wait = dkim_resolver_sync_wait,
	.deinit = custom_deinit,
};

dkim_resolver *
dkim_resolver_new_custom(dkim_dns_lookup_func *lookup, void *context)
{
	dkim_resolver *resolver = dkim_resolver_alloc(&custom_backend, NULL);

	resolver->lookup = lookup;
	resolver->lookup_context = context;
	return resolver;
}

void
dkim_resolver_free(dkim_resolver **resolver_p)
{
	dkim_resolver *resolver = *resolver_p;

	if (resolver == NULL)
		return;
	/* The backend goes first: it may still hold pending queries.  Every
	 * verifier using this resolver is gone, so the last lookup's is the
	 * only reference left (to a query in the cache, or to one that left
	 * it and is freed here). */
	resolver->backend->deinit(resolver);
	dkim_dns_query_release(&resolver->last_lookup);
	for (size_t i = 0; i < DKIM_RESOLVER_BUCKETS; i++) {
		while (resolver->buckets[i] != NULL) {
			struct dkim_dns_query *query = resolver->buckets[i];
			resolver->buckets[i] = query->next;
			query_free(query);
		}
	}
	free(resolver);
	*resolver_p = NULL;
}
