/* Canonicalization (RFC 6376 §3.4): header fields one at a time, and the
 * body as a stream whose memory use does not depend on its size.
 *
 * The body canonicalizers accept LF or CRLF line endings and any chunking:
 * a CR at the end of a chunk is held until the next byte shows whether it
 * ends a line.  Empty lines are held back as a count, since trailing ones
 * are not part of the canonical body. */
#include "dkim-private.h"

#include <stdlib.h>
#include <string.h>

static const char crlf[] = "\r\n";

/* ---- header fields ---- */

static void
canon_header_relaxed(const char *field, size_t len, struct dkim_buf *dest)
{
	const char *colon = memchr(field, ':', len);
	size_t name_end = colon != NULL ? (size_t)(colon - field) : len;
	size_t value_end = len;

	if (value_end >= 2 && field[value_end - 2] == '\r' &&
	    field[value_end - 1] == '\n')
		value_end -= 2;
	if (name_end > value_end)
		name_end = value_end;

	dkim_buf_reserve(dest, value_end + 3);
	char *out = dest->data + dest->len;
	size_t name_len = name_end;
	while (name_len > 0 && dkim_is_wsp((unsigned char)field[name_len - 1]))
		name_len--;
	for (size_t i = 0; i < name_len; i++)
		*out++ = (char)dkim_ascii_lower((unsigned char)field[i]);

	if (colon != NULL) {
		bool wsp_pending = false, started = false;

		*out++ = ':';
		for (size_t i = name_end + 1; i < value_end; i++) {
			unsigned char c = (unsigned char)field[i];

			if (c == '\r' && i + 1 < value_end &&
			    field[i + 1] == '\n') {
				i++; /* unfold */
				continue;
			}
			if (dkim_is_wsp(c)) {
				wsp_pending = true;
				continue;
			}
			if (wsp_pending && started)
				*out++ = ' ';
			wsp_pending = false;
			started = true;
			*out++ = (char)c;
		}
	}
	*out++ = '\r';
	*out++ = '\n';
	dkim_buf_set_length(dest, (size_t)(out - dest->data));
}

void
dkim_canon_header(enum dkim_canon canon, const char *field, size_t len,
		  struct dkim_buf *dest)
{
	if (canon == DKIM_CANON_SIMPLE)
		dkim_buf_append(dest, field, len);
	else
		canon_header_relaxed(field, len, dest);
}

void
dkim_canon_signature_field(enum dkim_canon canon, const char *field,
			   size_t len, size_t b_value_start,
			   size_t b_value_end, struct dkim_buf *dest)
{
	struct dkim_buf without_b = { 0 };

	dkim_buf_append(&without_b, field, b_value_start);
	dkim_buf_append(&without_b, field + b_value_end, len - b_value_end);

	size_t start = dest->len;
	dkim_canon_header(canon, without_b.data, without_b.len, dest);
	if (dest->len - start >= 2 &&
	    memcmp(dest->data + dest->len - 2, crlf, 2) == 0)
		dkim_buf_truncate(dest, dest->len - 2);
	dkim_buf_free(&without_b);
}

void
dkim_header_hash_init(struct dkim_header_hash *hash, enum dkim_canon canon)
{
	memset(hash, 0, sizeof(*hash));
	hash->canon = canon;
	dkim_sha256_init(&hash->sha);
}

void
dkim_header_hash_field(struct dkim_header_hash *hash, const char *field,
		       size_t len)
{
	dkim_buf_truncate(&hash->text, 0);
	dkim_canon_header(hash->canon, field, len, &hash->text);
	dkim_sha256_update(&hash->sha, hash->text.data, hash->text.len);
}

void
dkim_header_hash_stored(struct dkim_header_hash *hash,
			const struct dkim_headers *headers, size_t index)
{
	const struct dkim_header_field *field = &headers->fields[index];

	dkim_header_hash_field(hash, headers->data.data + field->offset,
			       field->len);
}

void
dkim_header_hash_finish(struct dkim_header_hash *hash, const char *sig_field,
			size_t sig_field_len, size_t b_value_start,
			size_t b_value_end,
			unsigned char digest[DKIM_SHA256_LEN])
{
	dkim_buf_truncate(&hash->text, 0);
	dkim_canon_signature_field(hash->canon, sig_field, sig_field_len,
				   b_value_start, b_value_end, &hash->text);
	dkim_sha256_update(&hash->sha, hash->text.data, hash->text.len);
	dkim_sha256_final(&hash->sha, digest);
	dkim_sha256_free(&hash->sha);
	dkim_buf_free(&hash->text);
}

void
dkim_hash_signed_headers(struct dkim_headers *headers, enum dkim_canon canon,
			 const struct dkim_header_name *names, size_t count,
			 const char *sig_field, size_t sig_field_len,
			 size_t b_value_start, size_t b_value_end,
			 unsigned char digest[DKIM_SHA256_LEN])
{
	ssize_t *indexes = dkim_malloc(count * sizeof(*indexes));
	struct dkim_header_hash hash;

	dkim_header_hash_init(&hash, canon);
	dkim_headers_select(headers, names, count, indexes);
	for (size_t i = 0; i < count; i++) {
		if (indexes[i] >= 0)
			dkim_header_hash_stored(&hash, headers,
						(size_t)indexes[i]);
	}
	dkim_header_hash_finish(&hash, sig_field, sig_field_len,
				b_value_start, b_value_end, digest);
	free(indexes);
}

/* ---- body ---- */

void
dkim_body_canon_init(struct dkim_body_canon *bc, enum dkim_canon canon)
{
	memset(bc, 0, sizeof(*bc));
	bc->canon = canon;
}

struct dkim_body_hash *
dkim_body_canon_hash(struct dkim_body_canon *bc, uint64_t limit)
{
	for (size_t i = 0; i < bc->hash_count; i++) {
		if (bc->hashes[i]->limit == limit)
			return bc->hashes[i];
	}
	struct dkim_body_hash *hash = dkim_calloc(1, sizeof(*hash));
	hash->limit = limit;
	dkim_sha256_init(&hash->sha);
	bc->hashes = dkim_realloc(bc->hashes,
				  (bc->hash_count + 1) * sizeof(*bc->hashes));
	bc->hashes[bc->hash_count++] = hash;
	return hash;
}

static void
emit(struct dkim_body_canon *bc, const void *data, size_t size)
{
	for (size_t i = 0; i < bc->hash_count; i++) {
		struct dkim_body_hash *hash = bc->hashes[i];
		uint64_t room = hash->limit - hash->hashed;
		size_t take = room < size ? (size_t)room : size;

		dkim_sha256_update(&hash->sha, data, take);
		hash->hashed += take;
	}
	bc->length += size;
}

static void
emit_pending_lines(struct dkim_body_canon *bc)
{
	static const char crlfs[] =
		"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";

	while (bc->pending_crlf > 0) {
		unsigned n = bc->pending_crlf < 16 ? bc->pending_crlf : 16;
		emit(bc, crlfs, n * 2);
		bc->pending_crlf -= n;
	}
}

/* Contiguous input bytes that go out unchanged, emitted in one call. */
struct run {
	const char *start, *end;
};

static void
run_flush(struct dkim_body_canon *bc, struct run *run)
{
	if (run->start != NULL)
		emit(bc, run->start, (size_t)(run->end - run->start));
	run->start = run->end = NULL;
}

static void
run_extend(struct run *run, const char *start, const char *end)
{
	if (run->start == NULL)
		run->start = start;
	run->end = end;
}

static void
simple_feed(struct dkim_body_canon *bc, const char *p, const char *end)
{
	struct run run = { NULL, NULL };

	if (bc->cr_pending) {
		bc->cr_pending = false;
		if (p < end && *p == '\n') {
			/* The held CR ends a line whose content (if any) is
			 * already out. */
			if (bc->line_has_content)
				emit(bc, crlf, 2);
			else
				bc->pending_crlf++;
			bc->line_has_content = false;
			p++;
		} else {
			emit_pending_lines(bc);
			emit(bc, "\r", 1);
			bc->line_has_content = true;
		}
	}

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL) {
			/* A partial line: its content goes out now. */
			const char *content_end = end;
			if (content_end[-1] == '\r') {
				bc->cr_pending = true;
				content_end--;
			}
			if (content_end > p) {
				if (!bc->line_has_content) {
					run_flush(bc, &run);
					emit_pending_lines(bc);
				}
				run_extend(&run, p, content_end);
				bc->line_has_content = true;
			}
			break;
		}

		bool has_cr = nl > p && nl[-1] == '\r';
		const char *content_end = has_cr ? nl - 1 : nl;
		if (content_end == p && !bc->line_has_content) {
			run_flush(bc, &run);
			bc->pending_crlf++;
		} else {
			if (bc->pending_crlf > 0) {
				run_flush(bc, &run);
				emit_pending_lines(bc);
			}
			if (has_cr) {
				run_extend(&run, p, nl + 1);
			} else {
				run_extend(&run, p, content_end);
				run_flush(bc, &run);
				emit(bc, crlf, 2);
			}
			bc->line_has_content = false;
		}
		p = nl + 1;
	}
	run_flush(bc, &run);
}

enum relaxed_class {
	RC_PLAIN = 0,
	RC_WSP,
	RC_CR,
	RC_LF,
};

static const unsigned char relaxed_class[256] = {
	[' '] = RC_WSP, ['\t'] = RC_WSP, ['\r'] = RC_CR, ['\n'] = RC_LF,
};

struct out_buf {
	char data[4096];
	size_t len;
};

static void
out_flush(struct dkim_body_canon *bc, struct out_buf *out)
{
	emit(bc, out->data, out->len);
	out->len = 0;
}

static void
out_append(struct dkim_body_canon *bc, struct out_buf *out,
	   const char *data, size_t size)
{
	if (out->len + size > sizeof(out->data)) {
		out_flush(bc, out);
		if (size > sizeof(out->data)) {
			emit(bc, data, size);
			return;
		}
	}
	memcpy(out->data + out->len, data, size);
	out->len += size;
}

/* Content (a non-whitespace run) arrives: the held empty lines and a
 * whitespace run before it become real. */
static void
relaxed_content(struct dkim_body_canon *bc, struct out_buf *out,
		const char *data, size_t size)
{
	if (!bc->line_has_content) {
		if (bc->pending_crlf > 0) {
			out_flush(bc, out);
			emit_pending_lines(bc);
		}
		bc->line_has_content = true;
	}
	if (bc->wsp_pending) {
		out_append(bc, out, " ", 1);
		bc->wsp_pending = false;
	}
	out_append(bc, out, data, size);
}

static void
relaxed_line_end(struct dkim_body_canon *bc, struct out_buf *out)
{
	if (bc->line_has_content)
		out_append(bc, out, crlf, 2);
	else
		bc->pending_crlf++;
	bc->line_has_content = false;
	bc->wsp_pending = false;
}

/* The byte-level relaxed canonicalizer: handles any input, including
 * lines that span chunks.  Stops after the first line end when
 * `one_line` is set. */
static const char *
relaxed_bytes(struct dkim_body_canon *bc, struct out_buf *out, const char *p,
	      const char *end, bool one_line)
{
	if (bc->cr_pending && p < end) {
		bc->cr_pending = false;
		if (*p == '\n') {
			relaxed_line_end(bc, out);
			return p + 1;
		}
		relaxed_content(bc, out, "\r", 1);
	}
	while (p < end) {
		const char *start = p;

		while (p < end && relaxed_class[(unsigned char)*p] == RC_PLAIN)
			p++;
		if (p > start)
			relaxed_content(bc, out, start, (size_t)(p - start));
		if (p == end)
			break;

		switch (relaxed_class[(unsigned char)*p]) {
		case RC_WSP:
			bc->wsp_pending = true;
			p++;
			break;
		case RC_LF:
			relaxed_line_end(bc, out);
			p++;
			if (one_line)
				return p;
			break;
		case RC_CR:
			if (p + 1 == end) {
				bc->cr_pending = true;
				p++;
			} else if (p[1] == '\n') {
				relaxed_line_end(bc, out);
				p += 2;
				if (one_line)
					return p;
			} else {
				relaxed_content(bc, out, p, 1);
				p++;
			}
			break;
		}
	}
	return p;
}

/* Marks (sets the high bit of) the bytes of `word` equal to `c`, eight
 * bytes at a time.  The byte just above a match may be marked wrongly
 * (the subtraction borrows): that only sends a line down the careful
 * path, so it costs time, never correctness. */
static inline uint64_t
bytes_equal(uint64_t word, unsigned char c)
{
	const uint64_t ones = 0x0101010101010101ULL;
	uint64_t x = word ^ (ones * c);

	return (x - ones) & ~x & 0x8080808080808080ULL;
}

/* True if the line may hold whitespace that relaxed canonicalization
 * rewrites: a tab, or a run of spaces. */
static bool
has_wsp_to_reduce(const char *line, size_t len)
{
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t word;

		memcpy(&word, line + i, sizeof(word));
		uint64_t spaces = bytes_equal(word, ' ');
		/* Adjacent bytes in memory are adjacent in the word, in
		 * either byte order. */
		if (bytes_equal(word, '\t') != 0 ||
		    (spaces & (spaces >> 8)) != 0 ||
		    (i > 0 && line[i - 1] == ' ' && line[i] == ' '))
			return true;
	}
	for (; i < len; i++) {
		if (line[i] == '\t' ||
		    (line[i] == ' ' && i > 0 && line[i - 1] == ' '))
			return true;
	}
	return false;
}

/* Most lines of real mail need nothing but their trailing whitespace
 * removed: a whole line without a tab or a double space is copied as it
 * is.  Others go through relaxed_bytes(). */
static void
relaxed_feed(struct dkim_body_canon *bc, const char *p, const char *end)
{
	struct out_buf out;

	out.len = 0;
	while (p < end) {
		bool at_line_start = !bc->line_has_content &&
			!bc->wsp_pending && !bc->cr_pending;
		const char *nl = at_line_start ?
			memchr(p, '\n', (size_t)(end - p)) : NULL;

		if (nl == NULL) {
			p = relaxed_bytes(bc, &out, p, end, true);
			continue;
		}
		const char *content_end = nl;
		if (content_end > p && content_end[-1] == '\r')
			content_end--;
		while (content_end > p && dkim_is_wsp((unsigned char)content_end[-1]))
			content_end--;
		size_t len = (size_t)(content_end - p);
		if (has_wsp_to_reduce(p, len)) {
			p = relaxed_bytes(bc, &out, p, nl + 1, true);
			continue;
		}
		if (len == 0) {
			bc->pending_crlf++;
		} else {
			if (bc->pending_crlf > 0) {
				out_flush(bc, &out);
				emit_pending_lines(bc);
			}
			out_append(bc, &out, p, len);
			out_append(bc, &out, crlf, 2);
		}
		p = nl + 1;
	}
	out_flush(bc, &out);
}

void
dkim_body_canon_feed(struct dkim_body_canon *bc, const void *data,
		     size_t size)
{
	const char *p = data;

	if (size == 0 || bc->finished)
		return;
	if (bc->canon == DKIM_CANON_SIMPLE)
		simple_feed(bc, p, p + size);
	else
		relaxed_feed(bc, p, p + size);
}

void
dkim_body_canon_finish(struct dkim_body_canon *bc)
{
	if (bc->finished)
		return;
	if (bc->cr_pending) {
		/* A CR at the very end is content, not a line break. */
		bc->cr_pending = false;
		if (bc->canon == DKIM_CANON_SIMPLE) {
			emit_pending_lines(bc);
			emit(bc, "\r", 1);
			bc->line_has_content = true;
		} else {
			struct out_buf out;

			out.len = 0;
			relaxed_content(bc, &out, "\r", 1);
			out_flush(bc, &out);
		}
	}
	/* A last line without line break gets one (§3.4.3, §3.4.4). */
	if (bc->line_has_content)
		emit(bc, crlf, 2);
	/* The simple canonical form of an empty body is one CRLF. */
	if (bc->canon == DKIM_CANON_SIMPLE && bc->length == 0)
		emit(bc, crlf, 2);
	bc->line_has_content = false;
	for (size_t i = 0; i < bc->hash_count; i++)
		dkim_sha256_final(&bc->hashes[i]->sha, bc->hashes[i]->digest);
	bc->finished = true;
}

void
dkim_body_canon_free(struct dkim_body_canon *bc)
{
	for (size_t i = 0; i < bc->hash_count; i++) {
		dkim_sha256_free(&bc->hashes[i]->sha);
		free(bc->hashes[i]);
	}
	free(bc->hashes);
	bc->hashes = NULL;
	bc->hash_count = 0;
}

/* ---- one body canonicalizer per canonicalization ---- */

void
dkim_body_canons_init(struct dkim_body_canons *bcs)
{
	for (size_t i = 0; i < DKIM_N_ELEMENTS(bcs->by_canon); i++) {
		dkim_body_canon_init(&bcs->by_canon[i], (enum dkim_canon)i);
		bcs->used[i] = false;
	}
}

struct dkim_body_hash *
dkim_body_canons_hash(struct dkim_body_canons *bcs, enum dkim_canon canon,
		      uint64_t limit)
{
	bcs->used[canon] = true;
	return dkim_body_canon_hash(&bcs->by_canon[canon], limit);
}

void
dkim_body_canons_feed(struct dkim_body_canons *bcs, const void *data,
		      size_t size)
{
	for (size_t i = 0; i < DKIM_N_ELEMENTS(bcs->by_canon); i++) {
		if (bcs->used[i])
			dkim_body_canon_feed(&bcs->by_canon[i], data, size);
	}
}

void
dkim_body_canons_finish(struct dkim_body_canons *bcs)
{
	for (size_t i = 0; i < DKIM_N_ELEMENTS(bcs->by_canon); i++) {
		if (bcs->used[i])
			dkim_body_canon_finish(&bcs->by_canon[i]);
	}
}

void
dkim_body_canons_free(struct dkim_body_canons *bcs)
{
	for (size_t i = 0; i < DKIM_N_ELEMENTS(bcs->by_canon); i++)
		dkim_body_canon_free(&bcs->by_canon[i]);
}
