/* dkim_authres_filter, which removes the Authentication-Results fields of
 * ours from a header block as it streams by.
 *
 * Input: an option byte, then a message.  Option bits 0-1 choose how much
 * of each field is examined (7, 40, 300 bytes or 1 MiB), bits 2-7 the size
 * of the chunks the message is fed in (1 to 64 bytes).  Besides memory
 * errors: fed in chunks or in one piece, the filter gives the same result;
 * the header size and the bytes kept are consistent with the input (all of
 * the header when nothing is removed); filtering the kept fields again
 * removes nothing and keeps them all; and a field of ours put on top is
 * always removed and handed back as the topmost. */
#include "dkim.h"
#include "fuzz.h"

#define AUTHSERV_ID "mx.example.net"
#define FORGED "Authentication-Results: " AUTHSERV_ID "; dkim=pass\r\n"

struct bytes {
	uint8_t *data;
	size_t len, size;
};

static void
bytes_append(void *context, const void *data, size_t size)
{
	struct bytes *bytes = context;

	if (bytes->len + size > bytes->size) {
		/* grown geometrically: kept bytes may come one by one */
		bytes->size = 2 * (bytes->len + size);
		bytes->data = realloc(bytes->data, bytes->size);
		FUZZ_ASSERT(bytes->data != NULL, "out of memory");
	}
	memcpy(bytes->data + bytes->len, data, size);
	bytes->len += size;
}

struct result {
	struct bytes kept;
	size_t consumed;
	uint64_t header_size;
	size_t removed;
	bool top_removed;
};

static void
run(const uint8_t *message, size_t len, size_t max_field, size_t chunk,
    struct result *result)
{
	dkim_authres_filter *filter;
	size_t top_len;

	memset(result, 0, sizeof(*result));
	filter = dkim_authres_filter_new(AUTHSERV_ID, max_field, bytes_append,
					 &result->kept);
	for (size_t pos = 0; pos < len; pos += chunk) {
		size_t size = len - pos < chunk ? len - pos : chunk;
		size_t used = dkim_authres_filter_feed(filter, message + pos,
						       size);

		FUZZ_ASSERT(used <= size, "more than fed was consumed");
		result->consumed += used;
		if (used < size) {
			FUZZ_ASSERT(dkim_authres_filter_feed(filter,
					message + pos + used, size - used) == 0,
				    "bytes consumed after the header block");
			break;
		}
	}
	result->header_size = dkim_authres_filter_finish(filter);
	result->removed = dkim_authres_filter_removed(filter);
	result->top_removed =
		dkim_authres_filter_removed_top(filter, &top_len) != NULL;
	dkim_authres_filter_free(&filter);
}

static bool
same(const struct result *a, const struct result *b)
{
	return a->consumed == b->consumed &&
		a->header_size == b->header_size &&
		a->removed == b->removed && a->top_removed == b->top_removed &&
		a->kept.len == b->kept.len &&
		(a->kept.len == 0 ||
		 memcmp(a->kept.data, b->kept.data, a->kept.len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t max_fields[] = { 7, 40, 300, 1 << 20 };
	struct result whole, chunked, again, forged;

	if (size == 0)
		return 0;
	size_t max_field = max_fields[data[0] & 3];
	size_t chunk = (size_t)(data[0] >> 2) + 1;
	const uint8_t *message = data + 1;
	size_t len = size - 1;

	run(message, len, max_field, len > 0 ? len : 1, &whole);
	run(message, len, max_field, chunk, &chunked);
	FUZZ_ASSERT(same(&whole, &chunked),
		    "fed in chunks of %zu, the result differs", chunk);

	FUZZ_ASSERT(whole.header_size <= len && whole.consumed <= len &&
		    whole.header_size <= whole.consumed &&
		    whole.consumed - whole.header_size <= 2,
		    "header size %llu, consumed %zu of %zu",
		    (unsigned long long)whole.header_size, whole.consumed, len);
	FUZZ_ASSERT(whole.kept.len <= whole.header_size,
		    "more kept than the header holds");
	FUZZ_ASSERT(whole.removed > 0 || (whole.kept.len == whole.header_size &&
		    (whole.kept.len == 0 ||
		     memcmp(whole.kept.data, message, whole.kept.len) == 0)),
		    "nothing removed, yet the header was not kept as it is");
	FUZZ_ASSERT(whole.removed > 0 || !whole.top_removed,
		    "a topmost field removed, yet none counted");

	run(whole.kept.data, whole.kept.len, max_field, chunk, &again);
	FUZZ_ASSERT(again.removed == 0 && again.kept.len == whole.kept.len &&
		    (again.kept.len == 0 ||
		     memcmp(again.kept.data, whole.kept.data,
			    again.kept.len) == 0),
		    "filtering the kept fields again changes them");

	uint8_t *with_forged = malloc(strlen(FORGED) + len);
	FUZZ_ASSERT(with_forged != NULL, "out of memory");
	memcpy(with_forged, FORGED, strlen(FORGED));
	if (len > 0)
		memcpy(with_forged + strlen(FORGED), message, len);
	run(with_forged, strlen(FORGED) + len, max_field, chunk, &forged);
	FUZZ_ASSERT(forged.removed >= 1 && forged.top_removed,
		    "a field of ours on top was kept");

	free(with_forged);
	free(whole.kept.data);
	free(chunked.kept.data);
	free(again.kept.data);
	free(forged.kept.data);
	return 0;
}
