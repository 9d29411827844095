/* The header block: read from a stream, kept with CRLF line endings, split
 * into fields, and indexed by name for bottom-up selection (RFC 6376
 * §5.4.2).  Memory is bounded by max_bytes, DKIM_MAX_HEADER_FIELDS and
 * DKIM_MAX_FIELD_NAMES; beyond them the rest of the header block is
 * scanned but dropped and `overflow` says which limit was reached.
 *
 * The index is the one place where the sender chooses the keys of a hash
 * table: a hash the sender can predict lets them send thousands of names
 * that all land on one slot, and make each lookup walk all of them (70
 * seconds of CPU for a 4 MiB header block, security issue, bug 3).  So
 * the hash is keyed with a per-process secret (SipHash), and the
 * distinct-name cap bounds each probe at DKIM_MAX_FIELD_NAMES slots even
 * if the hash were beaten. */
#include "dkim-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for the few dozen names of ordinary mail without growing. */
#define INITIAL_SLOTS 64

struct dkim_name_slot {
	uint64_t hash;
	ssize_t last;		/* bottom-most field with this name; -1: empty */
	ssize_t cursor;		/* next field to select, bottom-up */
	size_t count;
};

static void DKIM_ATTR_FORMAT(3, 4)
set_overflow(struct dkim_headers *headers, enum dkim_reason reason,
	     const char *fmt, ...)
{
	va_list args;

	headers->overflow = reason;
	headers->in_field = false;
	va_start(args, fmt);
	vsnprintf(headers->overflow_text, sizeof(headers->overflow_text),
		  fmt, args);
	va_end(args);
}

static void
store(struct dkim_headers *headers, const void *data, size_t size)
{
	if (headers->overflow != DKIM_REASON_NONE)
		return;
	if (headers->data.len + size > headers->max_bytes) {
		set_overflow(headers, DKIM_REASON_HEADER_TOO_LARGE,
			     "the header block is larger than %zu bytes",
			     headers->max_bytes);
		return;
	}
	dkim_buf_append(&headers->data, data, size);
}

/* ftext (RFC 5322 §3.6.8): printable US-ASCII except colon. */
static bool
is_ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

static size_t
field_name_length(const char *field, size_t len)
{
	const char *colon = memchr(field, ':', len);
	const char *eol = memchr(field, '\r', len);

	if (colon == NULL || (eol != NULL && eol < colon))
		return 0;
	size_t name_len = (size_t)(colon - field);
	while (name_len > 0 && dkim_is_wsp((unsigned char)field[name_len - 1]))
		name_len--;
	for (size_t i = 0; i < name_len; i++) {
		if (!is_ftext((unsigned char)field[i]))
			return 0;
	}
	return name_len;
}

/* ---- name index ---- */

static uint64_t
name_hash(const struct dkim_headers *headers, const char *name, size_t len)
{
	return dkim_siphash_icase(headers->hash_key, name, len);
}

/* The slot of the name, or the empty slot where it would go.  The table
 * is never full, and holds at most DKIM_MAX_FIELD_NAMES names: so many
 * steps at most, and with a hash no sender can aim, one or two. */
static struct dkim_name_slot *
slot_find(const struct dkim_headers *headers, const char *name, size_t len,
	  uint64_t hash)
{
	size_t mask = headers->slot_count - 1;

	for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
		struct dkim_name_slot *slot = &headers->slots[i];
		if (slot->last < 0)
			return slot; /* empty */
		const struct dkim_header_field *field =
			&headers->fields[slot->last];
		if (slot->hash == hash &&
		    dkim_mem_equal_icase(headers->data.data + field->offset,
					 field->name_len, name, len))
			return slot;
	}
}

static void
resize_slots(struct dkim_headers *headers, size_t slot_count)
{
	struct dkim_name_slot *old = headers->slots;
	size_t old_count = headers->slot_count, mask = slot_count - 1;

	headers->slots = dkim_malloc(slot_count * sizeof(*headers->slots));
	headers->slot_count = slot_count;
	for (size_t i = 0; i < slot_count; i++)
		headers->slots[i].last = -1;
	/* The names are distinct: each goes to the first empty slot. */
	for (size_t i = 0; i < old_count; i++) {
		if (old[i].last < 0)
			continue;
		size_t j = (size_t)old[i].hash & mask;
		while (headers->slots[j].last >= 0)
			j = (j + 1) & mask;
		headers->slots[j] = old[i];
	}
	free(old);
}

/* Adds the last field to the index; false if its name is one too many. */
static bool
index_field(struct dkim_headers *headers, size_t index)
{
	struct dkim_header_field *field = &headers->fields[index];
	const char *name = headers->data.data + field->offset;

	field->prev_same_name = -1;
	if (field->name_len == 0)
		return true;
	if (headers->slots == NULL)
		resize_slots(headers, INITIAL_SLOTS);

	uint64_t hash = name_hash(headers, name, field->name_len);
	struct dkim_name_slot *slot =
		slot_find(headers, name, field->name_len, hash);
	if (slot->last < 0) {
		if (headers->name_count == DKIM_MAX_FIELD_NAMES)
			return false;
		headers->name_count++;
		if (headers->name_count * 2 > headers->slot_count) {
			resize_slots(headers, headers->slot_count * 2);
			slot = slot_find(headers, name, field->name_len, hash);
		}
		slot->hash = hash;
		slot->count = 0;
	}
	field->prev_same_name = slot->last;
	slot->last = (ssize_t)index;
	slot->count++;
	return true;
}

static struct dkim_name_slot *
index_lookup(const struct dkim_headers *headers, const char *name, size_t len)
{
	if (headers->slots == NULL || len == 0)
		return NULL;
	struct dkim_name_slot *slot =
		slot_find(headers, name, len, name_hash(headers, name, len));
	return slot->last < 0 ? NULL : slot;
}

/* ---- fields ---- */

static void
finish_field(struct dkim_headers *headers)
{
	if (!headers->in_field || headers->overflow != DKIM_REASON_NONE)
		return;
	headers->in_field = false;
	if (headers->count == DKIM_MAX_HEADER_FIELDS) {
		set_overflow(headers, DKIM_REASON_HEADER_TOO_LARGE,
			     "the header block has more than %u fields",
			     DKIM_MAX_HEADER_FIELDS);
		return;
	}
	if (headers->count == headers->alloc) {
		headers->alloc = headers->alloc == 0 ? 32 : headers->alloc * 2;
		headers->fields = dkim_realloc(headers->fields,
			headers->alloc * sizeof(*headers->fields));
	}
	struct dkim_header_field *field = &headers->fields[headers->count];
	field->offset = headers->field_start;
	field->len = headers->data.len - headers->field_start;
	field->name_len = field_name_length(headers->data.data + field->offset,
					    field->len);
	if (!index_field(headers, headers->count)) {
		set_overflow(headers, DKIM_REASON_HEADER_TOO_MANY_NAMES,
			     "the header block has more than %u distinct "
			     "field names", DKIM_MAX_FIELD_NAMES);
		return;
	}
	headers->count++;
}

static void
start_field(struct dkim_headers *headers)
{
	finish_field(headers);
	if (headers->overflow)
		return;
	headers->field_start = headers->data.len;
	headers->in_field = true;
}

static void
end_of_headers(struct dkim_headers *headers)
{
	finish_field(headers);
	headers->complete = true;
}

/* ---- the splitter's events (field-split.c) ---- */

static void
splitter_field_start(void *context)
{
	start_field(context);
}

/* Stores a line with CRLF line endings, whichever the message uses. */
static void
splitter_line(void *context, const char *data, size_t size)
{
	struct dkim_headers *headers = context;

	if (size == 0 || data[size - 1] != '\n') {
		store(headers, data, size);
		return;
	}
	store(headers, data, size - 1);
	/* The line's first byte is always stored before its LF, so a CR
	 * before the LF (even from an earlier chunk) is last. */
	if (headers->data.len > 0 &&
	    headers->data.data[headers->data.len - 1] == '\r')
		store(headers, "\n", 1);
	else
		store(headers, "\r\n", 2);
}

static void
splitter_header_end(void *context)
{
	struct dkim_headers *headers = context;

	/* the input ended inside a line */
	if (!headers->splitter.at_line_start)
		store(headers, "\r\n", 2);
	end_of_headers(headers);
}

static const struct dkim_field_splitter_vfuncs header_store_vfuncs = {
	.field_start = splitter_field_start,
	.line = splitter_line,
	.header_end = splitter_header_end,
};

void
dkim_headers_init(struct dkim_headers *headers, size_t max_bytes)
{
	memset(headers, 0, sizeof(*headers));
	headers->max_bytes = max_bytes;
	headers->hash_key = dkim_siphash_process_key();
	dkim_field_splitter_init(&headers->splitter, &header_store_vfuncs,
				 headers);
}

size_t
dkim_headers_feed(struct dkim_headers *headers, const void *data, size_t size)
{
	return dkim_field_splitter_feed(&headers->splitter, data, size);
}

void
dkim_headers_finish(struct dkim_headers *headers)
{
	dkim_field_splitter_finish(&headers->splitter);
}

const char *
dkim_headers_field(const struct dkim_headers *headers, size_t i)
{
	return headers->data.data + headers->fields[i].offset;
}

bool
dkim_headers_name_is(const struct dkim_headers *headers, size_t i,
		     const char *name)
{
	const struct dkim_header_field *field = &headers->fields[i];

	return dkim_mem_equal_icase(headers->data.data + field->offset,
				    field->name_len, name, strlen(name));
}

size_t
dkim_headers_count_name(const struct dkim_headers *headers, const char *name,
			size_t name_len)
{
	const struct dkim_name_slot *slot =
		index_lookup(headers, name, name_len);

	return slot == NULL ? 0 : slot->count;
}

void
dkim_headers_select(struct dkim_headers *headers,
		    const struct dkim_header_name *names, size_t count,
		    ssize_t *indexes_r)
{
	for (size_t i = 0; i < headers->slot_count; i++)
		headers->slots[i].cursor = headers->slots[i].last;

	for (size_t i = 0; i < count; i++) {
		struct dkim_name_slot *slot =
			index_lookup(headers, names[i].name, names[i].len);

		if (slot == NULL || slot->cursor < 0) {
			indexes_r[i] = -1; /* a null string (§5.4.2) */
			continue;
		}
		indexes_r[i] = slot->cursor;
		slot->cursor = headers->fields[slot->cursor].prev_same_name;
	}
}

void
dkim_headers_free(struct dkim_headers *headers)
{
	dkim_buf_free(&headers->data);
	free(headers->fields);
	free(headers->slots);
	headers->fields = NULL;
	headers->slots = NULL;
	headers->count = headers->alloc = 0;
	headers->slot_count = headers->name_count = 0;
}
