/* Canonicalization: the RFC 6376 §3.4.6 example, edge cases of both
 * algorithms, and the streaming promise: any chunking and either line
 * ending give the same body hash. */
#include "dkim-private.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static void
canon_header_is(enum dkim_canon canon, const char *field, const char *expected,
		const char *name)
{
	struct dkim_buf out = { 0 };

	dkim_canon_header(canon, field, strlen(field), &out);
	tap_is_str(out.data, expected, name);
	dkim_buf_free(&out);
}

/* Canonicalizes and hashes a body fed in pieces of the given sizes
 * (cycled; none = all at once). */
static void
canon_body(enum dkim_canon canon, const char *body, size_t len,
	   const size_t *chunks, size_t chunk_count, uint64_t *length_r,
	   unsigned char digest[DKIM_SHA256_LEN])
{
	struct dkim_body_canon bc;
	size_t pos = 0, i = 0;

	dkim_body_canon_init(&bc, canon);
	struct dkim_body_hash *hash = dkim_body_canon_hash(&bc, UINT64_MAX);
	while (pos < len) {
		size_t n = chunk_count == 0 ? len : chunks[i++ % chunk_count];
		if (n > len - pos)
			n = len - pos;
		dkim_body_canon_feed(&bc, body + pos, n);
		pos += n;
	}
	dkim_body_canon_finish(&bc);
	*length_r = bc.length;
	memcpy(digest, hash->digest, DKIM_SHA256_LEN);
	dkim_body_canon_free(&bc);
}

static void
sha256_of(const char *data, size_t len, unsigned char digest[DKIM_SHA256_LEN])
{
	struct dkim_sha256 sha;

	dkim_sha256_init(&sha);
	dkim_sha256_update(&sha, data, len);
	dkim_sha256_final(&sha, digest);
	dkim_sha256_free(&sha);
}

static void
body_is(enum dkim_canon canon, const char *body, const char *expected,
	const char *name)
{
	unsigned char got[DKIM_SHA256_LEN], want[DKIM_SHA256_LEN];
	uint64_t length;

	canon_body(canon, body, strlen(body), NULL, 0, &length, got);
	sha256_of(expected, strlen(expected), want);
	tap_ok(memcmp(got, want, sizeof(got)) == 0 &&
	       length == strlen(expected), "%s", name);
}

static void
test_headers(void)
{
	/* RFC 6376 §3.4.6 */
	canon_header_is(DKIM_CANON_RELAXED, "A: X\r\n", "a:X\r\n",
			"relaxed: name lowercased");
	canon_header_is(DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n",
			"relaxed: unfolded, WSP runs and trailing WSP");
	canon_header_is(DKIM_CANON_SIMPLE, "B : Y\t\r\n\tZ  \r\n",
			"B : Y\t\r\n\tZ  \r\n", "simple: unchanged");
	canon_header_is(DKIM_CANON_RELAXED, "Subject:\r\n", "subject:\r\n",
			"relaxed: empty value");
	canon_header_is(DKIM_CANON_RELAXED, "X:  a \r\n  b\r\n", "x:a b\r\n",
			"relaxed: leading WSP of the value removed");
}

static void
test_body_examples(void)
{
	/* RFC 6376 §3.4.6: " C \r\nD \t E\r\n\r\n\r\n" */
	const char *body = " C \r\nD \t E\r\n\r\n\r\n";

	body_is(DKIM_CANON_RELAXED, body, " C\r\nD E\r\n",
		"relaxed: RFC 6376 example");
	body_is(DKIM_CANON_SIMPLE, body, " C \r\nD \t E\r\n",
		"simple: RFC 6376 example");
	body_is(DKIM_CANON_SIMPLE, "", "\r\n", "simple: empty body is CRLF");
	body_is(DKIM_CANON_SIMPLE, "\r\n\r\n", "\r\n",
		"simple: only empty lines is CRLF");
	body_is(DKIM_CANON_RELAXED, "", "", "relaxed: empty body is empty");
	body_is(DKIM_CANON_RELAXED, " \t\r\n\r\n", "",
		"relaxed: whitespace-only lines are empty");
	body_is(DKIM_CANON_SIMPLE, "abc", "abc\r\n",
		"simple: missing final CRLF added");
	body_is(DKIM_CANON_RELAXED, "abc  ", "abc\r\n",
		"relaxed: trailing WSP and missing CRLF");
	body_is(DKIM_CANON_SIMPLE, "a\nb\n\n", "a\r\nb\r\n",
		"simple: LF line endings");
	body_is(DKIM_CANON_SIMPLE, "a\rb\r\n", "a\rb\r\n",
		"simple: a bare CR is content");
	body_is(DKIM_CANON_RELAXED, "a \r b\r\n", "a \r b\r\n",
		"relaxed: a bare CR is content between WSP");
	body_is(DKIM_CANON_SIMPLE, "x\r", "x\r\r\n",
		"simple: a final bare CR is content");
	body_is(DKIM_CANON_SIMPLE, "\r\n\r\nx\r\n\r\n", "\r\n\r\nx\r\n",
		"simple: inner empty lines kept, trailing dropped");
	/* The relaxed fast path scans eight bytes at a time. */
	body_is(DKIM_CANON_RELAXED, "1234567  890\r\n", "1234567 890\r\n",
		"relaxed: a space run across an 8-byte boundary");
	body_is(DKIM_CANON_RELAXED, "12345678901234\t5\r\n",
		"12345678901234 5\r\n", "relaxed: a tab in the second word");
	body_is(DKIM_CANON_RELAXED, "a !b c!d  e !f\r\n", "a !b c!d e !f\r\n",
		"relaxed: '!' after a space (a possible false mark)");
}

/* A body exercising every state: WSP runs at chunk edges, CR LF split
 * across chunks, empty and whitespace-only lines, bare CRs. */
static char *
tricky_body(bool crlf, size_t *len_r)
{
	static const char *const lines[] = {
		"Hello  world \t", "", "  indented", "\t", "bare\rcr", "",
		"trailing   ", "x", "", "", "last line", "", "",
	};
	size_t cap = 64 * 1024, len = 0;
	char *body = malloc(cap);

	for (unsigned round = 0; round < 200; round++) {
		for (size_t i = 0; i < DKIM_N_ELEMENTS(lines); i++) {
			size_t n = strlen(lines[i]);
			memcpy(body + len, lines[i], n);
			len += n;
			if (crlf)
				body[len++] = '\r';
			body[len++] = '\n';
		}
	}
	*len_r = len;
	return body;
}

static void
test_chunking(void)
{
	size_t crlf_len, lf_len;
	char *crlf_body = tricky_body(true, &crlf_len);
	char *lf_body = tricky_body(false, &lf_len);

	srand(6376);
	for (int canon = 0; canon < 2; canon++) {
		unsigned char whole[DKIM_SHA256_LEN], lf[DKIM_SHA256_LEN];
		uint64_t whole_len, lf_length;
		bool same = true;

		canon_body(canon, crlf_body, crlf_len, NULL, 0, &whole_len,
			   whole);
		canon_body(canon, lf_body, lf_len, NULL, 0, &lf_length, lf);
		tap_ok(memcmp(whole, lf, sizeof(whole)) == 0 &&
		       whole_len == lf_length,
		       "%s: LF input hashes like CRLF input",
		       canon == DKIM_CANON_RELAXED ? "relaxed" : "simple");

		for (int trial = 0; trial < 200 && same; trial++) {
			size_t chunks[16];
			unsigned char got[DKIM_SHA256_LEN];
			uint64_t got_len;

			for (size_t i = 0; i < DKIM_N_ELEMENTS(chunks); i++)
				chunks[i] = 1 + (size_t)rand() %
					(trial % 2 == 0 ? 7 : 300);
			canon_body(canon, trial % 3 == 0 ? lf_body : crlf_body,
				   trial % 3 == 0 ? lf_len : crlf_len, chunks,
				   DKIM_N_ELEMENTS(chunks), &got_len, got);
			same = memcmp(got, whole, sizeof(got)) == 0 &&
				got_len == whole_len;
		}
		tap_ok(same, "%s: 200 random chunkings give one hash",
		       canon == DKIM_CANON_RELAXED ? "relaxed" : "simple");
	}
	free(crlf_body);
	free(lf_body);
}

static void
test_length_limit(void)
{
	struct dkim_body_canon bc;
	unsigned char want[DKIM_SHA256_LEN];

	dkim_body_canon_init(&bc, DKIM_CANON_SIMPLE);
	struct dkim_body_hash *limited = dkim_body_canon_hash(&bc, 5);
	struct dkim_body_hash *whole = dkim_body_canon_hash(&bc, UINT64_MAX);
	tap_ok(dkim_body_canon_hash(&bc, 5) == limited,
	       "hashes with the same limit are shared");
	dkim_body_canon_feed(&bc, "abc\r\ndef\r\n", 10);
	dkim_body_canon_finish(&bc);
	sha256_of("abc\r\n", 5, want);
	tap_ok(memcmp(limited->digest, want, sizeof(want)) == 0,
	       "l=5 hashes the first 5 canonical bytes");
	tap_is_int(whole->hashed, 10, "the whole body is 10 bytes");
	tap_is_int(bc.length, 10, "canonical length counted past the limit");
	dkim_body_canon_free(&bc);
}

int
main(void)
{
	test_headers();
	test_body_examples();
	test_chunking();
	test_length_limit();
	return tap_done();
}
