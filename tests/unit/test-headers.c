/* The header block and its name index: SipHash-2-4 against the paper's
 * vectors and OpenSSL, the per-process key, bottom-up selection against
 * a plain reference on random header blocks, names that all collided in
 * the old unkeyed index, and the limits (security issue, bug 3). */
#include "dkim-private.h"
#include "tap.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

/* xorshift64*: a repeatable stream of test data. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* ---- SipHash ---- */

static uint64_t
openssl_siphash(const unsigned char key[DKIM_SIPHASH_KEY_LEN],
		const unsigned char *data, size_t len)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	EVP_MAC_CTX *ctx = mac == NULL ? NULL : EVP_MAC_CTX_new(mac);
	unsigned int size = 8;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_END,
	};
	unsigned char out[8] = { 0 };
	size_t out_len = 0;
	uint64_t value = 0;

	if (ctx == NULL || !EVP_MAC_init(ctx, key, DKIM_SIPHASH_KEY_LEN,
					 params) ||
	    !EVP_MAC_update(ctx, data, len) ||
	    !EVP_MAC_final(ctx, out, &out_len, sizeof(out)) || out_len != 8)
		tap_diag("OpenSSL SipHash failed");
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	for (int i = 7; i >= 0; i--) /* little-endian, as the paper */
		value = (value << 8) | out[i];
	return value;
}

static void
test_siphash(void)
{
	unsigned char key_bytes[DKIM_SIPHASH_KEY_LEN], data[200];
	struct dkim_siphash_key key;

	/* The paper's key 00..0f and messages 00..(n-1) (Appendix A and
	 * the reference vectors). */
	for (size_t i = 0; i < sizeof(key_bytes); i++)
		key_bytes[i] = (unsigned char)i;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)i;
	dkim_siphash_key_set(&key, key_bytes);
	tap_ok(dkim_siphash(&key, data, 0) == 0x726fdb47dd0e0e31ULL,
	       "SipHash-2-4 of the empty message (reference vector)");
	tap_ok(dkim_siphash(&key, data, 15) == 0xa129ca6149be45e5ULL,
	       "SipHash-2-4 of 15 bytes (the paper's Appendix A)");

	bool all_equal = true;
	for (size_t len = 0; len < sizeof(data); len++) {
		for (size_t i = 0; i < sizeof(key_bytes); i++)
			key_bytes[i] = (unsigned char)rng();
		for (size_t i = 0; i < len; i++)
			data[i] = (unsigned char)rng();
		dkim_siphash_key_set(&key, key_bytes);
		uint64_t got = dkim_siphash(&key, data, len);
		uint64_t want = openssl_siphash(key_bytes, data, len);
		if (got != want) {
			tap_diag("length %zu: %016llx, OpenSSL %016llx", len,
				 (unsigned long long)got,
				 (unsigned long long)want);
			all_equal = false;
		}
	}
	tap_ok(all_equal, "SipHash-2-4 equals OpenSSL's for lengths 0 to %zu",
	       sizeof(data) - 1);

	/* Case folding, byte by byte in a whole word and in the tail: every
	 * byte value at every position of a 13-byte input. */
	bool folded = true;
	for (size_t pos = 0; pos < 13; pos++) {
		for (unsigned c = 0; c < 256; c++) {
			unsigned char text[13], lowered[13];
			for (size_t i = 0; i < sizeof(text); i++)
				text[i] = (unsigned char)rng();
			text[pos] = (unsigned char)c;
			for (size_t i = 0; i < sizeof(text); i++)
				lowered[i] = dkim_ascii_lower(text[i]);
			if (dkim_siphash_icase(&key, text, sizeof(text)) !=
			    dkim_siphash(&key, lowered, sizeof(lowered)))
				folded = false;
		}
	}
	tap_ok(folded, "the case-folding hash is the hash of the lowercased "
	       "bytes, for every byte value");
	tap_ok(dkim_siphash_icase(&key, "Content-TYPE", 12) ==
	       dkim_siphash_icase(&key, "content-type", 12),
	       "field names that differ in case hash alike");
}

/* What `test-headers --print-hash` prints: a hash under this process's
 * key. */
static uint64_t
process_hash(void)
{
	return dkim_siphash(dkim_siphash_process_key(), "From", 4);
}

static uint64_t
hash_in_new_process(void)
{
	unsigned long long value = 0;
	char self[4096];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int fds[2];

	if (len < 0 || pipe(fds) < 0) {
		tap_diag("readlink or pipe failed: %s", strerror(errno));
		return 0;
	}
	self[len] = '\0';
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDOUT_FILENO);
		close(fds[1]);
		execl(self, self, "--print-hash", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	FILE *child = fdopen(fds[0], "r");
	if (child == NULL || fscanf(child, "%llx", &value) != 1)
		tap_diag("%s --print-hash printed no hash", self);
	if (child != NULL)
		fclose(child);
	waitpid(pid, NULL, 0);
	return value;
}

/* The process key: one within a process, another in each new process
 * (2^-64 odds of a false failure). */
static void
test_process_key(void)
{
	uint64_t here = process_hash();

	tap_ok(dkim_siphash_process_key() == dkim_siphash_process_key() &&
	       process_hash() == here, "one key for the whole process");
	uint64_t first = hash_in_new_process();
	uint64_t second = hash_in_new_process();
	tap_ok(first != 0 && second != 0 && first != second &&
	       first != here && second != here,
	       "each process draws its own key");
}

/* ---- the index ---- */

/* A header block built field by field, with the names kept for the
 * reference selection. */
struct block {
	struct dkim_buf text;
	char **names;		/* NULL for a line without a name */
	size_t count;
};

static void
block_add(struct block *block, const char *name, const char *value)
{
	block->names = realloc(block->names,
			       (block->count + 1) * sizeof(*block->names));
	block->names[block->count++] = name == NULL ? NULL : strdup(name);
	if (name != NULL)
		dkim_buf_printf(&block->text, "%s: %s\r\n", name, value);
	else
		dkim_buf_printf(&block->text, "%s\r\n", value);
}

static void
block_free(struct block *block)
{
	for (size_t i = 0; i < block->count; i++)
		free(block->names[i]);
	free(block->names);
	dkim_buf_free(&block->text);
	memset(block, 0, sizeof(*block));
}

/* Parses the block fed in chunks of random sizes, and a body line. */
static void
parse_block(struct dkim_headers *headers, const struct block *block,
	    size_t max_bytes)
{
	struct dkim_buf message = { 0 };
	size_t pos = 0;

	dkim_buf_append(&message, block->text.data, block->text.len);
	dkim_buf_append_str(&message, "\r\nbody\r\n");
	dkim_headers_init(headers, max_bytes);
	while (pos < message.len && !headers->complete) {
		size_t n = 1 + (size_t)(rng() % 97);
		if (n > message.len - pos)
			n = message.len - pos;
		pos += dkim_headers_feed(headers, message.data + pos, n);
	}
	dkim_headers_finish(headers);
	dkim_buf_free(&message);
}

/* RFC 6376 §5.4.2 the plain way: the k-th request for a name takes the
 * k-th field of that name counting from the bottom. */
static ssize_t
reference_select(const struct block *block, const struct dkim_header_name *names,
		 size_t index)
{
	size_t earlier = 0;

	for (size_t i = 0; i < index; i++) {
		if (dkim_mem_equal_icase(names[i].name, names[i].len,
					 names[index].name, names[index].len))
			earlier++;
	}
	for (size_t i = block->count; i > 0; i--) {
		const char *name = block->names[i - 1];
		if (name != NULL &&
		    dkim_mem_equal_icase(name, strlen(name), names[index].name,
					 names[index].len) && earlier-- == 0)
			return (ssize_t)(i - 1);
	}
	return -1;
}

static size_t
reference_count(const struct block *block, const char *name)
{
	size_t count = 0;

	for (size_t i = 0; i < block->count; i++) {
		if (block->names[i] != NULL &&
		    strcasecmp(block->names[i], name) == 0)
			count++;
	}
	return count;
}

/* Selects `names` twice (the cursors start afresh each time) and checks
 * both against the reference; true if all agree. */
static bool
selection_matches(struct dkim_headers *headers, const struct block *block,
		  const struct dkim_header_name *names, size_t count)
{
	ssize_t *got = calloc(count, sizeof(*got));
	bool ok = true;

	for (int round = 0; round < 2 && ok; round++) {
		dkim_headers_select(headers, names, count, got);
		for (size_t i = 0; i < count && ok; i++) {
			ssize_t want = reference_select(block, names, i);
			if (got[i] != want) {
				tap_diag("request %zu (%.*s): field %zd, "
					 "expected %zd", i, (int)names[i].len,
					 names[i].name, got[i], want);
				ok = false;
			}
		}
	}
	free(got);
	return ok;
}

static void
random_case(char *name)
{
	for (char *p = name; *p != '\0'; p++) {
		if (rng() % 2 == 0 && *p >= 'a' && *p <= 'z')
			*p = (char)(*p - ('a' - 'A'));
	}
}

/* Random blocks: names drawn unevenly from a pool in random case, folded
 * values, lines without a name; requests for present and absent names,
 * more often than they occur. */
static void
test_random_selection(void)
{
	bool selected = true, counted = true;

	for (int round = 0; round < 50 && selected && counted; round++) {
		struct block block = { .count = 0 };
		struct dkim_headers headers;
		char name[32];

		for (int i = 0; i < 300; i++) {
			unsigned pick = (unsigned)(rng() % 40);
			if (pick < 3) { /* a few names that come back often */
				snprintf(name, sizeof(name), "received");
			} else if (pick == 3 && i > 0) {
				block_add(&block, NULL, "a line without colon");
				continue;
			} else {
				snprintf(name, sizeof(name), "x-name-%u",
					 (unsigned)(rng() % 60));
			}
			random_case(name);
			block_add(&block, name, rng() % 4 == 0 ?
				  "folded\r\n\tvalue" : "value");
		}
		parse_block(&headers, &block, DKIM_DEFAULT_MAX_HEADER_BYTES);

		struct dkim_header_name requests[400];
		char request_text[400][32];
		for (size_t i = 0; i < DKIM_N_ELEMENTS(requests); i++) {
			unsigned pick = (unsigned)(rng() % 80);
			if (pick < 10)
				snprintf(request_text[i], 32, "Received");
			else
				snprintf(request_text[i], 32, "X-Name-%u",
					 pick); /* 60 to 79: absent */
			random_case(request_text[i]);
			requests[i].name = request_text[i];
			requests[i].len = strlen(request_text[i]);
		}
		selected = selection_matches(&headers, &block, requests,
					     DKIM_N_ELEMENTS(requests));
		for (unsigned i = 0; i < 80 && counted; i++) {
			snprintf(name, sizeof(name), "x-NAME-%u", i);
			counted = dkim_headers_count_name(&headers, name,
							  strlen(name)) ==
				reference_count(&block, name);
		}
		block_free(&block);
		dkim_headers_free(&headers);
	}
	tap_ok(selected, "bottom-up selection agrees with the reference on "
	       "random header blocks");
	tap_ok(counted, "field counts by name agree with the reference");
}

static void
test_many_duplicates(void)
{
	struct block block = { .count = 0 };
	struct dkim_headers headers;
	struct dkim_header_name requests[1001];

	for (int i = 0; i < 5000; i++)
		block_add(&block, i % 2 == 0 ? "Received" : "RECEIVED",
			  "from somewhere");
	block_add(&block, "From", "a@example.com");
	parse_block(&headers, &block, DKIM_DEFAULT_MAX_HEADER_BYTES);
	tap_is_int(dkim_headers_count_name(&headers, "received", 8), 5000,
		   "5,000 fields of one name counted");
	for (size_t i = 0; i < DKIM_N_ELEMENTS(requests); i++) {
		requests[i].name = i == 500 ? "from" : "received";
		requests[i].len = strlen(requests[i].name);
	}
	tap_ok(selection_matches(&headers, &block, requests,
				 DKIM_N_ELEMENTS(requests)),
	       "1,001 requests among 5,000 duplicates: the bottom ones, in "
	       "order");
	block_free(&block);
	dkim_headers_free(&headers);

	for (int i = 0; i < 3; i++)
		block_add(&block, "X", "three");
	parse_block(&headers, &block, DKIM_DEFAULT_MAX_HEADER_BYTES);
	struct dkim_header_name five[5];
	for (size_t i = 0; i < 5; i++)
		five[i] = (struct dkim_header_name){ "x", 1 };
	ssize_t got[5];
	dkim_headers_select(&headers, five, 5, got);
	tap_ok(got[0] == 2 && got[1] == 1 && got[2] == 0 && got[3] == -1 &&
	       got[4] == -1, "requests beyond the fields select nothing");
	block_free(&block);
	dkim_headers_free(&headers);
}

/* The old index: FNV-1a, its slot the low bits. */
static uint32_t
old_index_hash(const char *name)
{
	uint32_t hash = 2166136261u;

	for (const char *p = name; *p != '\0'; p++)
		hash = (hash ^ dkim_ascii_lower((unsigned char)*p)) * 16777619u;
	return hash;
}

/* DKIM_MAX_FIELD_NAMES names that all took one slot of the old index
 * (4,096 slots for the 2,000 fields here), and more such names absent
 * from the block: right answers, and the cap met exactly. */
static void
test_old_collisions(void)
{
	enum { ABSENT = 200, REQUESTS = 2 * DKIM_MAX_FIELD_NAMES };
	struct block block = { .count = 0 };
	struct dkim_headers headers;
	static char names[DKIM_MAX_FIELD_NAMES + ABSENT][16];
	struct dkim_header_name *requests = calloc(REQUESTS, sizeof(*requests));
	size_t found = 0;

	for (unsigned serial = 0; found < DKIM_N_ELEMENTS(names); serial++) {
		snprintf(names[found], sizeof(names[found]), "x-%x", serial);
		if ((old_index_hash(names[found]) & 4095) == 0)
			found++;
	}
	for (size_t i = 0; i < DKIM_MAX_FIELD_NAMES; i++) {
		block_add(&block, names[i], "v");
		block_add(&block, names[i], "again");
	}
	parse_block(&headers, &block, DKIM_DEFAULT_MAX_HEADER_BYTES);
	tap_ok(headers.overflow == DKIM_REASON_NONE &&
	       headers.count == 2 * DKIM_MAX_FIELD_NAMES,
	       "%u names that shared one slot in the old index, each twice: "
	       "all kept", DKIM_MAX_FIELD_NAMES);
	/* Present names from the last, each three times (once too many),
	 * between absent ones. */
	for (size_t i = 0; i < REQUESTS; i++) {
		const char *name = i % 2 == 1 ?
			names[DKIM_MAX_FIELD_NAMES + (i / 2) % ABSENT] :
			names[DKIM_MAX_FIELD_NAMES - 1 - (i / 6)];
		requests[i] = (struct dkim_header_name){ name, strlen(name) };
	}
	tap_ok(selection_matches(&headers, &block, requests, REQUESTS),
	       "selection among them, and of absent ones like them, is right");
	block_free(&block);
	dkim_headers_free(&headers);
	free(requests);
}

static void
test_limits(void)
{
	struct block block = { .count = 0 };
	struct dkim_headers headers;
	char name[32];

	for (unsigned i = 0; i < DKIM_MAX_FIELD_NAMES; i++) {
		snprintf(name, sizeof(name), "X-Field-%u", i);
		block_add(&block, name, "a");
		snprintf(name, sizeof(name), "x-FIELD-%u", i);
		block_add(&block, name, "b");
		block_add(&block, NULL, "a line without colon");
	}
	parse_block(&headers, &block, DKIM_DEFAULT_MAX_HEADER_BYTES);
	tap_ok(headers.overflow == DKIM_REASON_NONE &&
	       headers.name_count == DKIM_MAX_FIELD_NAMES,
	       "%u distinct names (in two cases each, with nameless lines): "
	       "within the cap", DKIM_MAX_FIELD_NAMES);
	dkim_headers_free(&headers);

	block_add(&block, "One-Too-Many", "c");
	block_add(&block, "From", "after the cap");
	parse_block(&headers, &block, DKIM_DEFAULT_MAX_HEADER_BYTES);
	tap_ok(headers.overflow == DKIM_REASON_HEADER_TOO_MANY_NAMES &&
	       headers.count == 3 * DKIM_MAX_FIELD_NAMES &&
	       dkim_headers_count_name(&headers, "From", 4) == 0 &&
	       headers.complete,
	       "one name more: the rest of the block is dropped");
	tap_is_str(headers.overflow_text,
		   "the header block has more than 1000 distinct field names",
		   "which limit, in words");
	block_free(&block);
	dkim_headers_free(&headers);

	for (unsigned i = 0; i < DKIM_MAX_HEADER_FIELDS; i++)
		block_add(&block, "R", "");
	parse_block(&headers, &block, SIZE_MAX);
	tap_ok(headers.overflow == DKIM_REASON_NONE &&
	       headers.count == DKIM_MAX_HEADER_FIELDS,
	       "%u fields: within the cap", DKIM_MAX_HEADER_FIELDS);
	dkim_headers_free(&headers);
	block_add(&block, "R", "");
	parse_block(&headers, &block, SIZE_MAX);
	tap_ok(headers.overflow == DKIM_REASON_HEADER_TOO_LARGE &&
	       headers.count == DKIM_MAX_HEADER_FIELDS,
	       "one field more: too large");
	tap_is_str(headers.overflow_text,
		   "the header block has more than 100000 fields",
		   "which limit, in words");
	block_free(&block);
	dkim_headers_free(&headers);

	block_add(&block, "Subject", "fifty bytes, give or take a few, with CRLF");
	block_add(&block, "Subject", "and as many again, past the cap of 64");
	parse_block(&headers, &block, 64);
	tap_ok(headers.overflow == DKIM_REASON_HEADER_TOO_LARGE &&
	       headers.count == 1, "past max_bytes: too large");
	tap_is_str(headers.overflow_text,
		   "the header block is larger than 64 bytes",
		   "which limit, in words");
	block_free(&block);
	dkim_headers_free(&headers);
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--print-hash") == 0) {
		printf("%016llx\n", (unsigned long long)process_hash());
		return 0;
	}
	test_siphash();
	test_process_key();
	test_random_selection();
	test_many_duplicates();
	test_old_collisions();
	test_limits();
	return tap_done();
}
