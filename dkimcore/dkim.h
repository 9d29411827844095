/*
 * dkimcore: DKIM signing and verification (RFC 6376, RFC 8301, RFC 8463)
 * with Authentication-Results output (RFC 8601, RFC 6008), and ARC chain
 * validation and sealing (RFC 8617) in the same pass.
 *
 * The library is streaming: a message is fed in chunks of any size, and
 * memory stays bounded whatever the message size (only the header block is
 * kept, up to a configurable cap).  It has no global mutable state: any
 * number of resolvers, verifiers and signers may live in one process.  An
 * object is not safe for concurrent use from several threads; give each
 * thread its own resolver.  Loaded private keys (dkim_privkey) are
 * read-only after loading and may be shared between threads.
 *
 * Every string the library hands out that was taken from a message (d=, s=,
 * i=, explanations quoting them) has been sanitized: printable US-ASCII
 * only, bounded length.  It is safe to log and to put into header fields.
 *
 * Error reporting: functions that can fail for a reason worth showing to a
 * human take a `struct dkim_error *` and fill its text.  It may be NULL.
 */
#ifndef DKIM_H
#define DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dkim_error {
	char text[256];
};

/* printf into error->text, truncating; a NULL error is ignored.  For code
 * built on the library that reports through the same structure (the
 * KeyTable library, the tools). */
void dkim_error_set(struct dkim_error *error, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------------
 * Results
 * ------------------------------------------------------------------- */

/* RFC 8601 §2.7.1 result keywords for the "dkim" method. */
enum dkim_result {
	DKIM_RESULT_NONE = 0,	/* no signature */
	DKIM_RESULT_PASS,
	DKIM_RESULT_FAIL,	/* signature or body hash does not verify */
	DKIM_RESULT_POLICY,	/* valid, but refused by local policy */
	DKIM_RESULT_NEUTRAL,
	DKIM_RESULT_TEMPERROR,	/* temporary (DNS) failure */
	DKIM_RESULT_PERMERROR,	/* unusable signature or key */
};

/* Returns the RFC 8601 keyword, e.g. "pass". */
const char *dkim_result_name(enum dkim_result result);
/* Parses a keyword (case-insensitive).  Returns false if unknown. */
bool dkim_result_parse(const char *name, enum dkim_result *result_r);

/* Why a signature did not pass.  Each code has a stable machine-readable
 * name (dkim_reason_name(), e.g. "body-hash-mismatch"); the per-signature
 * explanation text adds the details. */
enum dkim_reason {
	DKIM_REASON_NONE = 0,

	/* permerror: the signature field */
	DKIM_REASON_SIG_SYNTAX,		/* malformed tag list or tag value */
	DKIM_REASON_SIG_DUPLICATE_TAG,
	DKIM_REASON_SIG_MISSING_TAG,
	DKIM_REASON_SIG_VERSION,	/* v= missing or not 1 */
	DKIM_REASON_ALGORITHM_SHA1,	/* rsa-sha1, refused per RFC 8301 */
	DKIM_REASON_ALGORITHM_UNKNOWN,
	DKIM_REASON_CANON_UNKNOWN,
	DKIM_REASON_QUERY_METHOD,	/* q= other than dns/txt */
	DKIM_REASON_FROM_NOT_SIGNED,	/* h= lacks From */
	DKIM_REASON_IDENTITY_MISMATCH,	/* i= not within d= */
	DKIM_REASON_BAD_BODY_LENGTH,	/* l= malformed or beyond the body */
	DKIM_REASON_EXPIRED,		/* x= in the past */
	DKIM_REASON_FUTURE,		/* t= in the future */
	DKIM_REASON_EXPIRY_BEFORE_TIMESTAMP, /* x= not after t= */
	DKIM_REASON_HEADER_TOO_LARGE,	/* header block over the cap */

	/* permerror: the key */
	DKIM_REASON_KEY_NOT_FOUND,	/* NXDOMAIN or no TXT record */
	DKIM_REASON_KEY_MULTIPLE,	/* several TXT records */
	DKIM_REASON_KEY_SYNTAX,
	DKIM_REASON_KEY_REVOKED,	/* empty p= */
	DKIM_REASON_KEY_VERSION,
	DKIM_REASON_KEY_TYPE_MISMATCH,	/* key k= does not match a= */
	DKIM_REASON_KEY_TYPE_UNKNOWN,
	DKIM_REASON_KEY_HASH_MISMATCH,	/* key h= excludes sha256 */
	DKIM_REASON_KEY_SERVICE,	/* key s= excludes email */
	DKIM_REASON_KEY_STRICT_IDENTITY, /* key t=s, i= is a subdomain */
	DKIM_REASON_KEY_TOO_SMALL,
	DKIM_REASON_KEY_TOO_LARGE,
	DKIM_REASON_KEY_DATA,		/* p= does not decode to a key */
	DKIM_REASON_DNSSEC_BOGUS,

	/* temperror */
	DKIM_REASON_DNS_TIMEOUT,
	DKIM_REASON_DNS_ERROR,		/* SERVFAIL and the like */

	/* fail */
	DKIM_REASON_BODY_HASH_MISMATCH,
	DKIM_REASON_SIGNATURE_MISMATCH,

	/* policy */
	DKIM_REASON_MULTIPLE_FROM,
	DKIM_REASON_PARTIAL_BODY,	/* l= leaves body content unsigned */

	/* temperror: a local failure (out of memory, crypto library) */
	DKIM_REASON_INTERNAL,

	/* ARC chain validation (RFC 8617 §5.2) fails: */
	DKIM_REASON_ARC_STRUCTURE,	/* sets incomplete, duplicated, out of
					   order, or a seal's cv= misplaced */
	DKIM_REASON_ARC_CHAIN_FAILED,	/* the newest seal says cv=fail */
};

const char *dkim_reason_name(enum dkim_reason reason);

enum dkim_dnssec {
	DKIM_DNSSEC_OFF = 0,	/* no trust anchor: not validated */
	DKIM_DNSSEC_INSECURE,	/* validated: the zone is not signed */
	DKIM_DNSSEC_SECURE,
	DKIM_DNSSEC_BOGUS,	/* validation failed: never passes */
};

const char *dkim_dnssec_name(enum dkim_dnssec dnssec);

enum dkim_key_type {
	DKIM_KEY_NONE = 0,
	DKIM_KEY_RSA,
	DKIM_KEY_ED25519,
};

/* ---------------------------------------------------------------------
 * DNS
 *
 * A resolver looks up TXT records and caches the answers (positive and
 * NXDOMAIN, not temporary failures) for its whole life.  Three built-in
 * kinds: libunbound with the system's resolv.conf, libunbound forwarding
 * to a given server, and an offline table file.  A caller may also supply
 * its own lookup function.
 * ------------------------------------------------------------------- */

typedef struct dkim_resolver dkim_resolver;

enum dkim_dns_status {
	DKIM_DNS_FOUND = 0,	/* one or more TXT records */
	DKIM_DNS_NOT_FOUND,	/* NXDOMAIN, or the name has no TXT record */
	DKIM_DNS_ERROR,		/* SERVFAIL, REFUSED, network error */
	DKIM_DNS_TIMEOUT,
};

struct dkim_resolver_config {
	/* Forward queries to this server, "ADDR[@PORT]" (e.g. a local
	 * unbound, or a test server).  NULL: the system resolver. */
	const char *forward;
	/* File with the DNSSEC trust anchor (DS or DNSKEY records in zone
	 * file format).  NULL: no validation (DKIM_DNSSEC_OFF). */
	const char *trust_anchor;
	/* Answer from this table instead of DNS (see dkim-verify(1) for the
	 * format).  Excludes forward and trust_anchor. */
	const char *table;
};

int dkim_resolver_new(const struct dkim_resolver_config *config,
		      dkim_resolver **resolver_r, struct dkim_error *error);

/* A custom lookup: fill the answer with dkim_dns_answer_add() and return
 * its status.  `detail` may be set to a short static text for errors. */
struct dkim_dns_answer;
typedef enum dkim_dns_status
dkim_dns_lookup_func(void *context, const char *qname,
		     struct dkim_dns_answer *answer);
void dkim_dns_answer_add(struct dkim_dns_answer *answer,
			 const void *txt, size_t len);
void dkim_dns_answer_set_dnssec(struct dkim_dns_answer *answer,
				enum dkim_dnssec dnssec);
void dkim_dns_answer_set_detail(struct dkim_dns_answer *answer,
				const char *detail);

dkim_resolver *dkim_resolver_new_custom(dkim_dns_lookup_func *lookup,
					void *context);
void dkim_resolver_free(dkim_resolver **resolver);

/* A synchronous lookup (used by dkim-testkey).  The records are the TXT
 * character-strings of each record, concatenated.  The result stays valid
 * until the next dkim_resolver_lookup() on this resolver, or until it is
 * freed. */
struct dkim_dns_result {
	enum dkim_dns_status status;
	enum dkim_dnssec dnssec;
	const char *detail;		/* error text, or NULL */
	size_t record_count;
	const char *const *records;	/* NUL-terminated */
	const size_t *record_lengths;	/* may contain NUL bytes */
	const unsigned *string_counts;	/* TXT strings per record */
};

const struct dkim_dns_result *
dkim_resolver_lookup(dkim_resolver *resolver, const char *qname,
		     unsigned timeout_msecs);

/* ---------------------------------------------------------------------
 * Public keys (key records, RFC 6376 §3.6.1)
 * ------------------------------------------------------------------- */

struct dkim_key_record {
	enum dkim_key_type type;
	unsigned bits;		/* RSA modulus size; 256 for Ed25519 */
	bool revoked;		/* empty p= */
	bool testing;		/* t=y */
	bool strict_identity;	/* t=s */
	bool allows_sha256;	/* h= absent or lists sha256 */
	bool email_service;	/* s= absent, "*" or lists email */
};

/* Parses a key record.  On error returns the reason (a KEY_* code) and
 * explains it; on success DKIM_REASON_NONE.  `key_r` may be NULL (syntax
 * check only); otherwise it receives the key, to be freed with
 * dkim_pubkey_free().  A revoked key parses successfully with
 * record->revoked set and *key_r NULL. */
typedef struct dkim_pubkey dkim_pubkey;
enum dkim_reason dkim_key_record_parse(const char *txt, size_t len,
				       struct dkim_key_record *record_r,
				       dkim_pubkey **key_r,
				       struct dkim_error *error);
void dkim_pubkey_free(dkim_pubkey **key);

/* ---------------------------------------------------------------------
 * Private keys
 * ------------------------------------------------------------------- */

typedef struct dkim_privkey dkim_privkey;

enum dkim_privkey_flags {
	/* Accept a key file readable by group or others (OpenDKIM's
	 * "RequireSafeKeys no").  Refused by default. */
	DKIM_PRIVKEY_ALLOW_UNSAFE = 0x01,
};

/* Loads a PEM private key (PKCS#1 RSA, PKCS#8 RSA or Ed25519) or a
 * base64 32-byte Ed25519 seed (dkimpy's format).  RSA keys must have at
 * least 1024 bits. */
int dkim_privkey_load(const char *path, unsigned flags,
		      dkim_privkey **key_r, struct dkim_error *error);
int dkim_privkey_parse(const void *data, size_t len, dkim_privkey **key_r,
		       struct dkim_error *error);
enum dkim_key_type dkim_privkey_type(const dkim_privkey *key);
unsigned dkim_privkey_bits(const dkim_privkey *key);
/* The DNS record value for the public half: "v=DKIM1; k=rsa; p=...".
 * Returns a malloc()ed string. */
char *dkim_privkey_public_record(const dkim_privkey *key);
/* True if the public key matches the private key. */
bool dkim_privkey_matches(const dkim_privkey *key, const dkim_pubkey *pub);
void dkim_privkey_free(dkim_privkey **key);

/* ---------------------------------------------------------------------
 * Verification
 * ------------------------------------------------------------------- */

typedef struct dkim_verifier dkim_verifier;

enum dkim_body_length_policy {
	/* A signature whose l= leaves body content unsigned is "policy". */
	DKIM_BODY_LENGTH_REFUSE_PARTIAL = 0,
	/* Accept it (RFC 6376 semantics; l= is honoured either way). */
	DKIM_BODY_LENGTH_ACCEPT,
};

struct dkim_verify_config {
	/* Signatures evaluated per message, from the top (default 5). */
	unsigned max_signatures;
	/* Smallest RSA key accepted; values below 1024 count as 1024. */
	unsigned min_rsa_bits;
	/* Total time to wait for DNS per message, in ms (default 5000). */
	unsigned dns_timeout_msecs;
	/* Tolerated clock difference for t= and x=, seconds (default 300). */
	unsigned clock_drift;
	/* Verification time; 0 = now. */
	time_t now;
	enum dkim_body_length_policy body_length;
	/* Cap on the stored header block (default 4 MiB). */
	size_t max_header_bytes;
	/* Also validate the ARC chain (default true); see dkim_verifier_arc(). */
	bool arc;
};

void dkim_verify_config_init(struct dkim_verify_config *config);

/* What is known about one evaluated signature. */
struct dkim_signature_result {
	enum dkim_result result;
	enum dkim_reason reason;	/* DKIM_REASON_NONE on pass */
	const char *explanation;	/* human text; NULL on pass */
	/* Tag values, NULL when absent or unparsable. */
	const char *domain;		/* d= */
	const char *selector;		/* s= */
	const char *identity;		/* i= (decoded), or NULL */
	const char *algorithm;		/* a= */
	const char *b;			/* b= without whitespace */
	enum dkim_key_type key_type;
	unsigned key_bits;		/* 0 if no key was obtained */
	enum dkim_dnssec dnssec;
	bool key_testing;		/* key t=y */
	time_t timestamp;		/* t=, or 0 */
	time_t expiration;		/* x=, or 0 */
};

/* The resolver must outlive the verifier.  One verifier per message. */
dkim_verifier *dkim_verifier_new(const struct dkim_verify_config *config,
				 dkim_resolver *resolver);
/* Feed the raw message (header, blank line, body) in chunks of any
 * size.  LF and CRLF line endings are both accepted. */
void dkim_verifier_feed(dkim_verifier *verifier, const void *data,
			size_t size);
/* Ends the message, waits for the outstanding DNS answers (within the
 * configured time) and computes the results. */
void dkim_verifier_finish(dkim_verifier *verifier);

/* The message verdict:
 *   pass       if any signature passes;
 *   temperror  else if any signature hit a temporary DNS failure
 *              (retrying later may change the verdict);
 *   fail       else if any signature was checked and did not match;
 *   policy     else if any signature was valid but refused by policy;
 *   permerror  else if there were signatures (all unusable);
 *   none       if there is no DKIM-Signature field. */
enum dkim_result dkim_verifier_verdict(const dkim_verifier *verifier);
/* Folds one signature's result into a verdict by the order above; start
 * from DKIM_RESULT_NONE.  For verdicts over a chosen set of signatures. */
enum dkim_result dkim_verdict_add(enum dkim_result verdict,
				  enum dkim_result result);
size_t dkim_verifier_signature_count(const dkim_verifier *verifier);
const struct dkim_signature_result *
dkim_verifier_signature(const dkim_verifier *verifier, size_t index);
/* DKIM-Signature fields beyond max_signatures, not evaluated. */
size_t dkim_verifier_skipped_signatures(const dkim_verifier *verifier);
/* The domain of the message's single From address, lowercased, or NULL
 * (no From, several From fields, or unparsable). */
const char *dkim_verifier_from_domain(const dkim_verifier *verifier);
void dkim_verifier_free(dkim_verifier **verifier);

/* Syntax of a signing domain (d=: at least two labels) and of a selector
 * (s=): dot-separated labels of letters, digits, '-' and '_'. */
bool dkim_domain_syntax_ok(const char *domain);
bool dkim_selector_syntax_ok(const char *selector);

/* True when the two domains align in the relaxed DMARC sense (RFC 7489
 * §3.1.1): equal organizational domains, using the public suffix list. */
bool dkim_domains_aligned(const char *domain1, const char *domain2);

/* ---------------------------------------------------------------------
 * Authentication-Results (RFC 8601)
 * ------------------------------------------------------------------- */

enum dkim_authres_flags {
	/* Fold the value onto several lines (CRLF + TAB) of at most 78
	 * characters, for printing the complete field. */
	DKIM_AUTHRES_FOLD = 0x01,
};

/* Returns the field value (without "Authentication-Results:"), one
 * dkim= entry per evaluated signature, or "dkim=none", then an arc=
 * entry when the message has ARC sets (RFC 8617 §7.2; with
 * header.oldest-pass on pass, with a reason on fail).  malloc()ed. */
char *dkim_authres_value(const dkim_verifier *verifier,
			 const char *authserv_id, unsigned flags);

/* True if the Authentication-Results field value names this authserv-id
 * (compared as RFC 8601 §5 requires).  Used to strip forged fields. */
bool dkim_authres_is_ours(const char *value, size_t len,
			  const char *authserv_id);

/* ---------------------------------------------------------------------
 * Signing
 * ------------------------------------------------------------------- */

typedef struct dkim_signer dkim_signer;

enum dkim_canon {
	DKIM_CANON_SIMPLE = 0,
	DKIM_CANON_RELAXED,
};

/* Parses "relaxed/simple", "relaxed" (= relaxed/simple) etc. */
bool dkim_canon_parse(const char *text, enum dkim_canon *header_r,
		      enum dkim_canon *body_r);

struct dkim_sign_config {
	const char *domain;		/* d= */
	const char *selector;		/* s= */
	const dkim_privkey *key;	/* the algorithm follows the key */
	const char *identity;		/* i=, or NULL */
	enum dkim_canon header_canon;	/* default relaxed */
	enum dkim_canon body_canon;	/* default relaxed */
	/* Header fields to sign when present, NULL-terminated; NULL for the
	 * default set (RFC 6376 §5.4.1 plus Message-ID and MIME fields). */
	const char *const *headers;
	/* Fields signed once more than they occur, so none can be added;
	 * NULL for the default {"From"}. */
	const char *const *oversign;
	bool body_length;		/* add l= */
	time_t timestamp;		/* t=; 0 = now */
	unsigned long expire_secs;	/* x= = t= + this; 0 = no x= */
};

void dkim_sign_config_init(struct dkim_sign_config *config);

dkim_signer *dkim_signer_new(void);
/* Adds one signature to make.  Strings and key must stay valid until
 * dkim_signer_finish() returns. */
int dkim_signer_add(dkim_signer *signer,
		    const struct dkim_sign_config *config,
		    struct dkim_error *error);
void dkim_signer_feed(dkim_signer *signer, const void *data, size_t size);
/* Computes the signatures.  Fails for a message with no From field or
 * with several, and for a header block over the cap. */
int dkim_signer_finish(dkim_signer *signer, struct dkim_error *error);
/* The fields to prepend to the message, each folded at 78 characters and
 * ending in CRLF: the ARC set if one was made (dkim_signer_add_arc_seal()),
 * then the DKIM-Signature fields in the order added.  The new fields do
 * not cover each other. */
const char *dkim_signer_fields(const dkim_signer *signer);
void dkim_signer_free(dkim_signer **signer);

/* ---------------------------------------------------------------------
 * ARC: the Authenticated Received Chain (RFC 8617)
 *
 * Validation happens in the verifier's single pass (dkim_verify_config
 * .arc): the ARC fields are sorted into sets when the header block is
 * complete, their key queries start then, and the body hashes of the
 * ARC-Message-Signatures are computed alongside DKIM's.  Sealing happens
 * in the signer's pass: the chain the message arrived with is validated
 * the same way, its status becomes the new seal's cv=, and one ARC set
 * is added.
 *
 * ARC-Message-Signature and ARC-Seal fields are read as RFC 8617 and
 * the ARC test suite (ValiMail) have them: no v=, i= is the instance
 * (1 to DKIM_ARC_MAX_SETS), an AMS without c= is relaxed/relaxed, the
 * algorithms are DKIM's (rsa-sha256, and ed25519-sha256 as an extension;
 * rsa-sha1 fails), and keys are checked as for DKIM (RSA under 1024 bits
 * fails).  A temporary failure makes the chain fail with reason
 * DKIM_REASON_DNS_TIMEOUT, DKIM_REASON_DNS_ERROR or DKIM_REASON_INTERNAL:
 * retrying later may change that.
 * ------------------------------------------------------------------- */

/* The most ARC sets a message can carry (RFC 8617 §5.2). */
#define DKIM_ARC_MAX_SETS 50

struct dkim_arc_result {
	/* The chain validation status: DKIM_RESULT_NONE (no ARC sets),
	 * DKIM_RESULT_PASS or DKIM_RESULT_FAIL. */
	enum dkim_result cv;
	enum dkim_reason reason;	/* why it failed, else _NONE */
	const char *explanation;	/* human text on fail, else NULL */
	unsigned sets;			/* highest instance found */
	/* On pass, RFC 8617 §5.2's oldest-pass: 0 when every
	 * ARC-Message-Signature still validates, else the lowest instance
	 * whose AMS (and all newer ones) still validate, i.e. how far back
	 * the message is unchanged. */
	unsigned oldest_pass;
	unsigned failed_instance;	/* the failing set, or 0 */
	const char *seal_domain;	/* d= of the newest ARC-Seal, or NULL */
};

/* The chain validation status of a finished verifier (DKIM_RESULT_NONE
 * when the configuration turned ARC off).  `result_r` (may be NULL)
 * receives the details, valid as long as the verifier. */
enum dkim_result dkim_verifier_arc(const dkim_verifier *verifier,
				   const struct dkim_arc_result **result_r);

struct dkim_arc_seal_config {
	const char *domain;		/* d= of the AMS and the AS */
	const char *selector;		/* s= */
	/* An RSA key: ARC validators accept rsa-sha256. */
	const dkim_privkey *key;
	/* This hop's results for the ARC-Authentication-Results, one of:
	 * a complete Authentication-Results value ("authserv-id;
	 * resinfo; ..."), or the authserv-id whose Authentication-Results
	 * fields in the message are merged, in order (they must be this
	 * hop's own: remove forged ones first, RFC 8601 §5, see
	 * dkim_authres_is_ours()).  When these results carry an arc=
	 * result (this hop's check of the chain on arrival, before any
	 * change it made), the seal carries it as cv=; otherwise the chain
	 * is validated here and an arc= result is added. */
	const char *authres;
	const char *authserv_id;
	/* The AMS: c= (default relaxed/relaxed), h= (NULL for the
	 * signer's default set; ARC fields are refused) and oversigned
	 * fields (NULL for {"From"}). */
	enum dkim_canon header_canon, body_canon;
	const char *const *headers;
	const char *const *oversign;
	time_t timestamp;		/* t=; 0 = now */
	/* Validating the arriving chain: the resolver (required) and the
	 * verification settings (NULL for the defaults). */
	dkim_resolver *resolver;
	const struct dkim_verify_config *verify;
};

void dkim_arc_seal_config_init(struct dkim_arc_seal_config *config);

/* Asks the signer to seal the message with one ARC set, on top of any
 * DKIM signatures.  Strings and key must stay valid until
 * dkim_signer_finish() returns, the resolver until the signer is freed.
 * dkim_signer_finish() then also fails when the arriving chain cannot be
 * validated now (a temporary failure, see below: sealing cv=fail would
 * break the chain for good), when the message has DKIM_ARC_MAX_SETS sets
 * already, or when no Authentication-Results of authserv_id are found. */
int dkim_signer_add_arc_seal(dkim_signer *signer,
			     const struct dkim_arc_seal_config *config,
			     struct dkim_error *error);
/* Gives the ARC seal asked for this hop's results only now, as a
 * complete Authentication-Results value (see dkim_arc_seal_config
 * .authres), replacing what dkim_signer_add_arc_seal() was given: for a
 * hop that verifies the message in the same pass and knows its results
 * once the body is read (a milter).  Between dkim_signer_add_arc_seal()
 * and dkim_signer_finish(); the string is copied.  Fails for an invalid
 * value and without a seal request. */
int dkim_signer_set_arc_authres(dkim_signer *signer, const char *authres,
				struct dkim_error *error);
/* After dkim_signer_finish(): the cv= the new seal carries (the recorded
 * arc= result, or the validation, whose details `result_r` gives as
 * dkim_verifier_arc() does; DKIM_RESULT_NONE without a seal request).  `sealed_r` (may be
 * NULL) tells whether a set was added: not for a chain whose newest seal
 * already says cv=fail (RFC 8617 §5.1). */
enum dkim_result dkim_signer_arc(const dkim_signer *signer,
				 const struct dkim_arc_result **result_r,
				 bool *sealed_r);

#ifdef __cplusplus
}
#endif

#endif
