/* Declarations shared between the dkimcore source files.  Not installed. */
#ifndef DKIM_PRIVATE_H
#define DKIM_PRIVATE_H

#include "dkim.h"
#include "dkim-util.h"

#include <openssl/types.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#define DKIM_SHA256_LEN 32
#define DKIM_ED25519_KEY_LEN 32
#define DKIM_ED25519_SIG_LEN 64
/* Longest domain name in text form, without the final dot (RFC 1035). */
#define DKIM_MAX_DOMAIN_NAME 253
/* Longest sanitized string kept from a message (d=, s=, i=, ...). */
#define DKIM_MAX_SHOWN 255

/* What one message may make the library do.  dkim-verify(1), LIMITS,
 * lists every limit a message can reach; keep it in step.
 *
 * The header block: its bytes (the verifier's default for
 * dkim_verify_config.max_header_bytes, and the signer's cap), its fields,
 * and the distinct names among them.  Past any of them the rest of the
 * header block is dropped (dkim_headers.overflow).  Real mail has a few
 * dozen names; the cap on them also bounds every index lookup, whatever
 * the hash does (headers.c). */
#define DKIM_DEFAULT_MAX_HEADER_BYTES (4 * 1024 * 1024)
#define DKIM_MAX_HEADER_FIELDS 100000
#define DKIM_MAX_FIELD_NAMES 1000
/* Entries in a signature's h= (rspamd has the same cap): a few dozen in
 * real mail, twice that when every field is oversigned. */
#define DKIM_MAX_SIGNED_HEADERS 1000

/* ---- text helpers (text.c) ---- */
bool dkim_mem_equal_icase(const char *a, size_t a_len, const char *b,
			  size_t b_len);
/* Copies `src` keeping printable US-ASCII only (others become '?'),
 * truncated to DKIM_MAX_SHOWN characters with "...". */
char *dkim_sanitize(const char *src, size_t len);
/* Syntax of d= and s= (RFC 6376 §3.5): dot-separated labels of letters,
 * digits, '-' and '_'.  A domain needs at least two labels. */
bool dkim_domain_is_valid(const char *str, size_t len);
bool dkim_selector_is_valid(const char *str, size_t len);
/* True if `sub` equals `domain` or is a subdomain of it (icase). */
bool dkim_domain_is_within(const char *sub, size_t sub_len,
			   const char *domain, size_t domain_len);
/* With text[pos] == '(', the position just after the matching ')' of
 * an RFC 5322 comment (nested comments and quoted-pairs included), or len
 * when it is not closed. */
size_t dkim_skip_comment(const char *text, size_t len, size_t pos);
/* "2023-10-24 20:58:47 UTC" */
void dkim_format_time(time_t t, char *dest, size_t size);

/* ---- base64 (base64.c) ---- */
/* Decodes RFC 2045 base64, ignoring FWS (SP, HTAB, CR, LF).  Returns a
 * malloc()ed buffer, or NULL if the input is not valid base64. */
unsigned char *dkim_base64_decode(const char *src, size_t len,
				  size_t *size_r);
/* Appends the base64 encoding of data, without line breaks. */
void dkim_base64_encode(struct dkim_buf *dest, const void *data, size_t size);

/* ---- tag lists, RFC 6376 §3.2 (taglist.c) ---- */
#define DKIM_MAX_TAGS 64

struct dkim_tag {
	const char *name;
	size_t name_len;
	const char *value;	/* without surrounding FWS */
	size_t value_len;
	/* Offsets in the parsed text of everything between '=' and the
	 * terminating ';' (or the end): what b= removal deletes. */
	size_t raw_value_start, raw_value_end;
};

struct dkim_taglist {
	struct dkim_tag tags[DKIM_MAX_TAGS];
	unsigned count;
};

enum dkim_taglist_error {
	DKIM_TAGLIST_OK = 0,
	DKIM_TAGLIST_SYNTAX,
	DKIM_TAGLIST_DUPLICATE,
};

/* On error, `error` explains where. */
enum dkim_taglist_error dkim_taglist_parse(const char *text, size_t len,
					   struct dkim_taglist *list_r,
					   struct dkim_error *error);
const struct dkim_tag *dkim_taglist_find(const struct dkim_taglist *list,
					 const char *name);
bool dkim_tag_value_is(const struct dkim_tag *tag, const char *value);
/* Iterates over a colon-separated list inside a tag value (h=, key h=,
 * s=, t=), trimming FWS around each element.  Start with *pos = 0. */
bool dkim_tag_list_next(const struct dkim_tag *tag, size_t *pos,
			const char **item_r, size_t *item_len_r);

/* ---- SipHash-2-4 (siphash.c) ---- */
#define DKIM_SIPHASH_KEY_LEN 16

struct dkim_siphash_key {
	uint64_t k0, k1;
};

/* The key from its 16 bytes, as the SipHash paper orders them. */
void dkim_siphash_key_set(struct dkim_siphash_key *key,
			  const unsigned char bytes[DKIM_SIPHASH_KEY_LEN]);
uint64_t dkim_siphash(const struct dkim_siphash_key *key, const void *data,
		      size_t len);
/* The SipHash of the data with its ASCII letters lowercased. */
uint64_t dkim_siphash_icase(const struct dkim_siphash_key *key,
			    const void *data, size_t len);
/* A random key, made once per process from getrandom() (the process
 * aborts if the kernel has no randomness to give).  Read-only, so safe to
 * share between threads. */
const struct dkim_siphash_key *dkim_siphash_process_key(void);

/* ---- SHA-256 and public-key primitives (crypto.c) ---- */
struct dkim_sha256 {
	EVP_MD_CTX *ctx;
};

void dkim_sha256_init(struct dkim_sha256 *hash);
void dkim_sha256_update(struct dkim_sha256 *hash, const void *data,
			size_t size);
void dkim_sha256_final(struct dkim_sha256 *hash,
		       unsigned char digest[DKIM_SHA256_LEN]);
void dkim_sha256_free(struct dkim_sha256 *hash);

struct dkim_pubkey {
	enum dkim_key_type type;
	unsigned bits;
	/* RSA: big-endian modulus and exponent; Ed25519: the raw key. */
	unsigned char *modulus;
	size_t modulus_len;
	unsigned char *exponent;
	size_t exponent_len;
	unsigned char ed25519[DKIM_ED25519_KEY_LEN];
};

enum dkim_verify_status {
	DKIM_VERIFY_OK = 0,
	DKIM_VERIFY_BAD_SIGNATURE,
	DKIM_VERIFY_BAD_LENGTH,	/* signature size does not fit the key */
	DKIM_VERIFY_INTERNAL,	/* crypto library failure */
};

/* Checks a DKIM signature over the SHA-256 digest of the signed header
 * data: RSASSA-PKCS1-v1_5 for RSA, Ed25519 over the digest (RFC 8463). */
enum dkim_verify_status
dkim_pubkey_verify(const struct dkim_pubkey *key,
		   const unsigned char digest[DKIM_SHA256_LEN],
		   const unsigned char *sig, size_t sig_len);
/* Decodes a DER RSA public key, SubjectPublicKeyInfo or bare PKCS#1
 * RSAPublicKey, into key->modulus/exponent/bits. */
bool dkim_rsa_pubkey_from_der(struct dkim_pubkey *key,
			      const unsigned char *der, size_t der_len);

struct dkim_privkey {
	enum dkim_key_type type;
	unsigned bits;
	void *pkey;	/* EVP_PKEY */
};

/* Signs the SHA-256 digest of the signed header data.  Returns a
 * malloc()ed signature, or NULL on a crypto library failure. */
unsigned char *dkim_privkey_sign(const struct dkim_privkey *key,
				 const unsigned char digest[DKIM_SHA256_LEN],
				 size_t *sig_len_r);

/* ---- DKIM-Signature, ARC-Message-Signature and ARC-Seal parsing
 * (signature.c) ---- */
enum dkim_signature_kind {
	DKIM_SIG_DKIM = 0,
	DKIM_SIG_ARC_MESSAGE,	/* AMS: i= is the instance, no v= */
	DKIM_SIG_ARC_SEAL,	/* AS: cv=, no h= or bh=, always relaxed */
};

struct dkim_header_name {
	const char *name;	/* points into the signature's field copy */
	size_t len;
};

struct dkim_signature {
	enum dkim_signature_kind kind;
	char *field;		/* NUL-terminated copy of the whole field */
	size_t field_len;
	/* Set when the field cannot be used; the rest may be partial. */
	enum dkim_reason error;
	char *error_text;

	/* Sanitized copies, for results (NULL when absent). */
	char *domain;
	char *selector;
	char *identity;
	char *identity_domain;	/* the part of i= after the last '@' */
	char *algorithm;
	char *b_text;

	/* Parsed values, valid when error == DKIM_REASON_NONE. */
	const char *domain_raw;	/* points into field */
	size_t domain_len;
	enum dkim_key_type key_type;
	enum dkim_canon header_canon, body_canon;
	struct dkim_header_name *signed_headers;
	size_t signed_header_count;
	unsigned char *b;
	size_t b_len;
	unsigned char bh[DKIM_SHA256_LEN];
	bool has_length;
	uint64_t length;
	time_t timestamp, expiration;	/* 0 when absent */
	/* The part of field that b= removal deletes. */
	size_t b_value_start, b_value_end;

	/* ARC only: the instance (0 when missing or malformed, even if
	 * other tags fail) and an ARC-Seal's cv= (NONE, PASS or FAIL). */
	unsigned instance;
	enum dkim_result chain_status;
};

/* Parses one DKIM-Signature field (the whole "name: value" with CRLF
 * endings) and checks everything that can be checked without the key,
 * the message or the clock. */
void dkim_signature_parse(struct dkim_signature *sig, const char *field,
			  size_t len);
/* The same for any kind of field. */
void dkim_signature_parse_kind(struct dkim_signature *sig,
			       enum dkim_signature_kind kind,
			       const char *field, size_t len);
void dkim_signature_fail(struct dkim_signature *sig, enum dkim_reason reason,
			 const char *fmt, ...) DKIM_ATTR_FORMAT(3, 4);
void dkim_signature_clear(struct dkim_signature *sig);

/* ---- header fields as readers split them (field-split.c) ----
 * Lines end at LF.  A line that starts with SP or HTAB continues the field
 * above it (one before any field starts a field of its own).  The header
 * block ends at the first empty line (LF, or CR LF, alone) or at the end of
 * the input; a line that starts with a bare CR followed by anything else is
 * a nameless field of its own.  The verifier's header store (headers.c) and
 * the Authentication-Results filter (authres-filter.c) both read a header
 * block this way, so they always see the same fields. */
struct dkim_field_splitter_vfuncs {
	/* A field starts; its bytes follow in line(). */
	void (*field_start)(void *context);
	/* Bytes of the current field as they came, a line's LF included;
	 * a line may come in several calls. */
	void (*line)(void *context, const char *data, size_t size);
	/* The header block ended (once). */
	void (*header_end)(void *context);
};

struct dkim_field_splitter {
	const struct dkim_field_splitter_vfuncs *v;
	void *context;
	uint64_t offset;	/* bytes consumed so far */
	/* After header_end(): the bytes before the empty line (or all of
	 * them, at the end of the input). */
	uint64_t header_size;
	bool at_line_start;	/* the last byte consumed was an LF */
	bool cr_at_line_start;	/* a line began with CR: is it empty? */
	bool in_field;		/* a field has started */
	bool ended;
};

void dkim_field_splitter_init(struct dkim_field_splitter *splitter,
			      const struct dkim_field_splitter_vfuncs *v,
			      void *context);
/* Consumes header bytes; returns how many were used.  Fewer than `size`
 * means the header block ended (header_end() was called) and the rest is
 * body. */
size_t dkim_field_splitter_feed(struct dkim_field_splitter *splitter,
				const void *data, size_t size);
/* Ends the input: a header block without an empty line ends here. */
void dkim_field_splitter_finish(struct dkim_field_splitter *splitter);

/* ---- header block (headers.c) ---- */
struct dkim_header_field {
	size_t offset;		/* in dkim_headers.data */
	size_t len;		/* including the final CRLF */
	size_t name_len;	/* 0 if the line has no colon */
	ssize_t prev_same_name;	/* index of the field above with the same
				   name, or -1 */
};

struct dkim_name_slot;

struct dkim_headers {
	struct dkim_buf data;	/* header block with CRLF line endings */
	struct dkim_header_field *fields;
	size_t count, alloc;
	size_t max_bytes;
	/* DKIM_REASON_NONE, or the limit past which the rest of the header
	 * block was dropped: HEADER_TOO_LARGE for max_bytes or
	 * DKIM_MAX_HEADER_FIELDS, HEADER_TOO_MANY_NAMES for
	 * DKIM_MAX_FIELD_NAMES; overflow_text says which, for results. */
	enum dkim_reason overflow;
	char overflow_text[80];
	bool complete;		/* blank line (or end of input) seen */

	/* streaming state */
	struct dkim_field_splitter splitter;
	size_t field_start;	/* offset of the field being stored */
	bool in_field;		/* a field is being stored */

	/* Name index for bottom-up selection, filled as fields arrive:
	 * open addressing on a keyed hash, at most half full. */
	const struct dkim_siphash_key *hash_key;
	struct dkim_name_slot *slots;
	size_t slot_count;
	size_t name_count;	/* distinct names */
};

void dkim_headers_init(struct dkim_headers *headers, size_t max_bytes);
/* Consumes header bytes; returns how many were used.  Fewer than `size`
 * means the header block ended and the rest is body. */
size_t dkim_headers_feed(struct dkim_headers *headers, const void *data,
			 size_t size);
/* Ends the input: a header block without a blank line ends here. */
void dkim_headers_finish(struct dkim_headers *headers);
const char *dkim_headers_field(const struct dkim_headers *headers, size_t i);
bool dkim_headers_name_is(const struct dkim_headers *headers, size_t i,
			  const char *name);
/* Fields named `name` (any case). */
size_t dkim_headers_count_name(const struct dkim_headers *headers,
			       const char *name, size_t name_len);

/* Bottom-up selection (RFC 6376 §5.4.2): for each name, returns the index
 * of the field to hash, or -1 for a name with no (further) instance. */
void dkim_headers_select(struct dkim_headers *headers,
			 const struct dkim_header_name *names, size_t count,
			 ssize_t *indexes_r);
void dkim_headers_free(struct dkim_headers *headers);

/* ---- canonicalization (canon.c) ---- */
/* Appends the canonical form of one header field (name, colon, value,
 * CRLF). */
void dkim_canon_header(enum dkim_canon canon, const char *field, size_t len,
		       struct dkim_buf *dest);
/* The DKIM-Signature field itself as it enters the header hash: with the
 * b= value deleted and no trailing CRLF (RFC 6376 §3.7). */
void dkim_canon_signature_field(enum dkim_canon canon, const char *field,
				size_t len, size_t b_value_start,
				size_t b_value_end, struct dkim_buf *dest);

/* A header hash built field by field (RFC 6376 §3.7): the signed fields
 * in order, then the signature field itself.  DKIM selects the fields by
 * name; an ARC-Seal takes the ARC sets by instance (RFC 8617 §5.1.1). */
struct dkim_header_hash {
	enum dkim_canon canon;
	struct dkim_sha256 sha;
	struct dkim_buf text;	/* the canonical form of one field */
};

void dkim_header_hash_init(struct dkim_header_hash *hash, enum dkim_canon canon);
/* Hashes one whole field (name, colon, value, CRLF) in canonical form. */
void dkim_header_hash_field(struct dkim_header_hash *hash, const char *field,
			    size_t len);
void dkim_header_hash_stored(struct dkim_header_hash *hash,
			     const struct dkim_headers *headers, size_t index);
/* Hashes the signature field with its b= value (at [b_value_start,
 * b_value_end)) deleted and no final CRLF, gives the digest and frees
 * the hash. */
void dkim_header_hash_finish(struct dkim_header_hash *hash,
			     const char *sig_field, size_t sig_field_len,
			     size_t b_value_start, size_t b_value_end,
			     unsigned char digest[DKIM_SHA256_LEN]);

/* The header hash of a DKIM-Signature or ARC-Message-Signature: the
 * fields named in `names`, selected bottom-up, then the signature field
 * itself. */
void dkim_hash_signed_headers(struct dkim_headers *headers,
			      enum dkim_canon canon,
			      const struct dkim_header_name *names,
			      size_t count, const char *sig_field,
			      size_t sig_field_len, size_t b_value_start,
			      size_t b_value_end,
			      unsigned char digest[DKIM_SHA256_LEN]);

/* One body hash: SHA-256 of the first `limit` canonical body bytes. */
struct dkim_body_hash {
	struct dkim_sha256 sha;
	uint64_t limit;		/* UINT64_MAX: whole body */
	uint64_t hashed;
	unsigned char digest[DKIM_SHA256_LEN];
};

struct dkim_body_canon {
	enum dkim_canon canon;
	struct dkim_body_hash **hashes;
	size_t hash_count;
	uint64_t length;	/* canonical body bytes so far */
	unsigned pending_crlf;	/* empty lines held back */
	bool line_has_content;
	bool wsp_pending;	/* relaxed: whitespace run inside a line */
	bool cr_pending;	/* input ended on CR */
	bool finished;
};

void dkim_body_canon_init(struct dkim_body_canon *bc, enum dkim_canon canon);
/* Returns the hash for this limit, sharing one if it exists. */
struct dkim_body_hash *dkim_body_canon_hash(struct dkim_body_canon *bc,
					    uint64_t limit);
void dkim_body_canon_feed(struct dkim_body_canon *bc, const void *data,
			  size_t size);
void dkim_body_canon_finish(struct dkim_body_canon *bc);
void dkim_body_canon_free(struct dkim_body_canon *bc);

/* One body canonicalizer per canonicalization; only those some hash was
 * asked of are fed, so an unused one costs nothing. */
struct dkim_body_canons {
	struct dkim_body_canon by_canon[2];	/* by enum dkim_canon */
	bool used[2];
};

void dkim_body_canons_init(struct dkim_body_canons *bcs);
struct dkim_body_hash *dkim_body_canons_hash(struct dkim_body_canons *bcs,
					     enum dkim_canon canon,
					     uint64_t limit);
void dkim_body_canons_feed(struct dkim_body_canons *bcs, const void *data,
			   size_t size);
void dkim_body_canons_finish(struct dkim_body_canons *bcs);
void dkim_body_canons_free(struct dkim_body_canons *bcs);

/* ---- the author domain (from.c) ---- */
/* That of a complete header block: as dkim_author_domain() gives it for
 * the single From field, or DKIM_AUTHOR_NO_FROM or _MULTIPLE_FROM. */
enum dkim_author_status dkim_headers_author(struct dkim_headers *headers,
					   char **domain_r);

/* ---- DNS (resolver.c) ---- */
struct dkim_dns_answer {
	enum dkim_dns_status status;
	enum dkim_dnssec dnssec;
	const char *detail;
	struct dkim_buf *records;	/* one per TXT record */
	unsigned *string_counts;
	size_t record_count;
	/* The answer's TTL; without one it is kept for the resolver's life. */
	bool has_ttl;
	unsigned ttl;
};

void dkim_dns_answer_add_record(struct dkim_dns_answer *answer,
				const void *txt, size_t len,
				unsigned string_count);
void dkim_dns_answer_clear(struct dkim_dns_answer *answer);

struct dkim_dns_query;

struct dkim_resolver_backend {
	/* Starts a lookup.  A synchronous backend answers at once and
	 * calls dkim_dns_query_done() before returning. */
	void (*start)(dkim_resolver *resolver, struct dkim_dns_query *query);
	/* Waits up to `msecs` for answers to arrive and delivers them with
	 * dkim_dns_query_done(). */
	void (*wait)(dkim_resolver *resolver, unsigned msecs);
	void (*deinit)(dkim_resolver *resolver);
};

struct dkim_dns_query {
	struct dkim_dns_query *next;	/* in the resolver's hash chain */
	dkim_resolver *resolver;
	char *qname;
	struct dkim_dns_answer answer;
	struct dkim_dns_result result;	/* public view of answer */
	const char **record_texts;	/* for result.records */
	size_t *record_lengths;		/* for result.record_lengths */
	bool pending;
	/* Out of the cache (its answer expired or failed while held, and
	 * the name was asked again): freed by the last release. */
	bool detached;
	uint64_t expires_msecs;		/* 0 = never */
	int async_id;			/* backend's handle */
	unsigned refcount;		/* holders besides the cache */
};

dkim_resolver *dkim_resolver_alloc(const struct dkim_resolver_backend *backend,
				   void *context);
void *dkim_resolver_context(dkim_resolver *resolver);
/* Returns the (possibly cached or shared) query for qname and starts it
 * if needed.  The resolver owns it; the caller holds a reference, which
 * keeps it out of cache eviction, until dkim_dns_query_release(). */
struct dkim_dns_query *dkim_resolver_start(dkim_resolver *resolver,
					   const char *qname);
/* Drops the caller's reference (no-op for NULL) and clears the pointer. */
void dkim_dns_query_release(struct dkim_dns_query **query);
/* Waits until the query is answered or the deadline (CLOCK_MONOTONIC,
 * msecs) passes.  Returns false on timeout. */
bool dkim_resolver_wait(dkim_resolver *resolver, struct dkim_dns_query *query,
			uint64_t deadline_msecs);
void dkim_dns_query_done(struct dkim_dns_query *query);
/* The wait() of backends that answer synchronously: never anything to
 * wait for. */
void dkim_resolver_sync_wait(dkim_resolver *resolver, unsigned msecs);
uint64_t dkim_monotonic_msecs(void);

/* Backends */
int dkim_resolver_unbound_new(const struct dkim_resolver_config *config,
			      dkim_resolver **resolver_r,
			      struct dkim_error *error);
int dkim_resolver_table_new(const char *path, dkim_resolver **resolver_r,
			    struct dkim_error *error);

/* ---- judging one signature field (sigcheck.c) ----
 * The steps DKIM-Signature, ARC-Message-Signature and ARC-Seal
 * verification share.  Each returns false (or NULL) after recording the
 * reason and an explanation that is not yet sanitized. */
struct dkim_check {
	enum dkim_reason reason;	/* DKIM_REASON_NONE while all is well */
	char text[512];
	/* What is known about the key, for results. */
	enum dkim_dnssec dnssec;
	enum dkim_key_type key_type;
	unsigned key_bits;
	bool key_testing;
};

void dkim_check_fail(struct dkim_check *check, enum dkim_reason reason,
		     const char *fmt, ...) DKIM_ATTR_FORMAT(3, 4);
/* "<s>._domainkey.<d>", malloc()ed; for a field parsed without error. */
char *dkim_signature_qname(const struct dkim_signature *sig);
/* x= and t= against `now`, tolerating `clock_drift` seconds. */
bool dkim_check_times(struct dkim_check *check,
		      const struct dkim_signature *sig, time_t now,
		      unsigned clock_drift);
/* Waits for the key query and checks that the key record fits the
 * signature.  Returns the key, to be freed with dkim_pubkey_free(). */
dkim_pubkey *dkim_check_key(struct dkim_check *check, dkim_resolver *resolver,
			    struct dkim_dns_query *query, const char *qname,
			    const struct dkim_signature *sig,
			    unsigned min_rsa_bits, uint64_t deadline_msecs);
/* l= against the canonical body length, then bh= against the hash. */
bool dkim_check_body(struct dkim_check *check,
		     const struct dkim_signature *sig,
		     const struct dkim_body_canon *body,
		     const struct dkim_body_hash *body_hash);
/* b= against the header hash. */
bool dkim_check_digest(struct dkim_check *check,
		       const struct dkim_signature *sig,
		       const dkim_pubkey *key,
		       const unsigned char digest[DKIM_SHA256_LEN]);

/* ---- result names (result.c) ---- */
const char *dkim_key_type_name(enum dkim_key_type type);
/* The result a signature gets for this reason. */
enum dkim_result dkim_reason_result(enum dkim_reason reason);

/* ---- our own Authentication-Results fields (authres.c) ---- */
/* The rule of dkim_authres_filter_new() for one header field: `field` is
 * the whole field (name, colon, value, line endings), or with !complete
 * only its first `len` bytes, when a doubt the rest could settle counts as
 * ours. */
bool dkim_authres_field_is_ours(const char *field, size_t len, bool complete,
				const char *authserv_id);

/* ---- folded fields (fold.c) ---- */
#define DKIM_FOLD_WIDTH 78	/* what lines should stay within */
#define DKIM_LINE_LIMIT 998	/* what they must (RFC 5322 §2.1.1) */

struct dkim_folder {
	struct dkim_buf *buf;
	size_t column;		/* of the next character */
};

/* Appends "Name:"; the first tag then follows after a space. */
void dkim_fold_start(struct dkim_folder *folder, struct dkim_buf *buf,
		     const char *name);
/* Continues the field on a new line (CRLF TAB). */
void dkim_fold_break(struct dkim_folder *folder);
/* Appends text, first breaking the line if it would not fit. */
void dkim_fold_append(struct dkim_folder *folder, const char *text,
		      size_t len, bool space_before);
/* Appends a tag (or any word), after a space unless at a line start. */
void dkim_fold_tag(struct dkim_folder *folder, const char *text);
void dkim_fold_tagf(struct dkim_folder *folder, const char *fmt, ...)
	DKIM_ATTR_FORMAT(2, 3);
/* "h=a:b:c;", breaking only after a colon. */
void dkim_fold_header_list(struct dkim_folder *folder,
			   const struct dkim_header_name *names, size_t count);
/* A base64 value, which may break anywhere, in lines of at most `width`
 * characters. */
void dkim_fold_base64(struct dkim_folder *folder, const char *text,
		      size_t len, size_t width);

/* ---- signing internals (sign.c) ---- */
/* One DKIM-Signature or ARC-Message-Signature to make. */
struct dkim_sign_request {
	enum dkim_signature_kind kind;	/* DKIM or ARC_MESSAGE */
	char *domain;
	char *selector;
	char *identity;
	const dkim_privkey *key;
	enum dkim_canon header_canon, body_canon;
	char **headers;		/* deduplicated, From first if missing */
	char **oversign;
	bool body_length;
	time_t timestamp;
	unsigned long expire_secs;
	const struct dkim_body_canon *body;	/* set by _start() */
	struct dkim_body_hash *body_hash;
};

/* Checks the configuration and copies it. */
int dkim_sign_request_init(struct dkim_sign_request *req,
			   enum dkim_signature_kind kind,
			   const struct dkim_sign_config *config,
			   struct dkim_error *error);
/* At the end of the header block: asks for the body hash. */
void dkim_sign_request_start(struct dkim_sign_request *req,
			     struct dkim_body_canons *bcs);
/* After the body: appends the signed field, ending in CRLF, to `out`.
 * `instance` is an AMS's i=.  Fails when h= would list more than
 * DKIM_MAX_SIGNED_HEADERS fields. */
int dkim_sign_request_make(const struct dkim_sign_request *req,
			   struct dkim_headers *headers, unsigned instance,
			   struct dkim_buf *out, struct dkim_error *error);
void dkim_sign_request_clear(struct dkim_sign_request *req);
/* a= for the key: "rsa-sha256" or "ed25519-sha256". */
const char *dkim_sign_algorithm_name(const dkim_privkey *key);

/* A field written with an empty b= value, hashed as it is, and then
 * given its b= value in place. */
struct dkim_unsigned_field {
	struct dkim_buf text;
	size_t b_pos;		/* where the b= value goes */
	size_t b_column;	/* the column there */
	size_t b_width;		/* the longest line the value may make */
};

/* Writes "b=" and notes the place of its value, which is to keep its
 * lines within `line_limit` (DKIM_FOLD_WIDTH or DKIM_LINE_LIMIT).  Unless
 * b= is the last tag, the value is followed by ';' and the tags after it
 * start on a new line, so that the value can be put in without refolding
 * them. */
void dkim_sign_b_slot(struct dkim_folder *folder,
		      struct dkim_unsigned_field *field, bool last,
		      size_t line_limit);
/* Signs the header hash and puts the folded b= value in its place. */
int dkim_sign_fill_b(struct dkim_unsigned_field *field,
		     const dkim_privkey *key,
		     const unsigned char digest[DKIM_SHA256_LEN],
		     struct dkim_error *error);

/* ---- ARC chain validation (arc-verify.c) ---- */
/* An ARC-Message-Signature or ARC-Seal of a set. */
struct dkim_arc_member {
	ssize_t index;			/* header field, -1 when missing */
	struct dkim_signature sig;
	char *qname;
	struct dkim_dns_query *query;	/* NULL when not looked up */
};

struct dkim_arc_set {
	ssize_t aar;			/* header field, -1 when missing */
	struct dkim_arc_member ams, as;
	/* The AMS's body hash, NULL when it was not asked for. */
	const struct dkim_body_canon *body_canon;
	struct dkim_body_hash *body_hash;
};

/* Zero-initialized before use. */
struct dkim_arc_chain {
	struct dkim_arc_set *sets;	/* [i - 1] is instance i */
	unsigned count;			/* highest instance seen (N) */
	/* Steps 1-3 passed: sets 1..N each have their three fields. */
	bool sound;
	bool decided;			/* the result is final */
	struct dkim_arc_result result;
	char *explanation;
};

/* What validating the signatures needs. */
struct dkim_arc_context {
	struct dkim_headers *headers;
	dkim_resolver *resolver;
	const struct dkim_verify_config *config;	/* clock, key size */
	time_t now;
	uint64_t deadline_msecs;
};

/* Steps 1-3 of RFC 8617 §5.2 on a complete header block: sorts the ARC
 * fields into sets and checks their structure.  False when the chain
 * failed already (the reason is in chain->result); true for a chain that
 * is sound (chain->sound) or absent (decided, cv=none). */
bool dkim_arc_chain_collect(struct dkim_arc_chain *chain,
			    const struct dkim_headers *headers);
/* For a sound chain that collect() left undecided: starts the key
 * queries of the newest set and asks for the body hashes of the
 * ARC-Message-Signatures that may be checked.  Before any body byte is
 * fed. */
void dkim_arc_chain_start_checks(struct dkim_arc_chain *chain,
				 dkim_resolver *resolver,
				 struct dkim_body_canons *bcs);
/* Both, when the header block is complete (the verifier's call). */
void dkim_arc_chain_start(struct dkim_arc_chain *chain,
			  const struct dkim_headers *headers,
			  dkim_resolver *resolver,
			  struct dkim_body_canons *bcs);
/* After the body: the remaining steps, giving chain->result. */
void dkim_arc_chain_finish(struct dkim_arc_chain *chain,
			   const struct dkim_arc_context *context);
/* Hashes the first `count` sets in the order an ARC-Seal signs them
 * (RFC 8617 §5.1.1): oldest first, each as AAR, AMS, AS.  Only a sound
 * chain has all those fields: for any other, or a count beyond N,
 * nothing is hashed and false is returned. */
bool dkim_arc_chain_hash_sets(const struct dkim_arc_chain *chain,
			      const struct dkim_headers *headers,
			      unsigned count, struct dkim_header_hash *hash);
void dkim_arc_chain_free(struct dkim_arc_chain *chain);

/* ---- ARC sealing (arc-sign.c) ---- */
struct dkim_arc_sealer;

struct dkim_arc_sealer *
dkim_arc_sealer_new(const struct dkim_arc_seal_config *config,
		    struct dkim_error *error);
/* dkim_signer_set_arc_authres() for the sealer; `headers` are the
 * signer's, read so far. */
int dkim_arc_sealer_set_authres(struct dkim_arc_sealer *sealer,
				const struct dkim_headers *headers,
				const char *authres, struct dkim_error *error);
/* At the end of the header block. */
void dkim_arc_sealer_start(struct dkim_arc_sealer *sealer,
			   const struct dkim_headers *headers,
			   struct dkim_body_canons *bcs);
/* After the body: validates the arriving chain and appends the new set
 * (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results) to
 * `fields`, or nothing for a chain already broken. */
int dkim_arc_sealer_finish(struct dkim_arc_sealer *sealer,
			   struct dkim_headers *headers,
			   struct dkim_buf *fields, struct dkim_error *error);
/* dkim_signer_arc() for a sealer that may be NULL. */
enum dkim_result
dkim_arc_sealer_result(const struct dkim_arc_sealer *sealer,
		       const struct dkim_arc_result **result_r,
		       bool *sealed_r);
void dkim_arc_sealer_free(struct dkim_arc_sealer **sealer);
/* What an ARC-Seal being made signs (RFC 8617 §5.1.1): the first
 * `older_sets` sets of `chain`, then this hop's AAR and AMS, then `seal`
 * with an empty b= value.  False when those sets are not all there to hash
 * (a chain that did not pass the structure check). */
bool dkim_arc_seal_digest(const struct dkim_arc_chain *chain,
			  const struct dkim_headers *headers,
			  unsigned older_sets, const char *aar,
			  const char *ams,
			  const struct dkim_unsigned_field *seal,
			  unsigned char digest[DKIM_SHA256_LEN]);

#endif
