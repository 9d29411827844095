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
	DKIM_RESULT_POLICY,	/* refused by local policy */
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
	DKIM_REASON_HEADER_TOO_LARGE,	/* header block over the byte or
					   field cap */
	DKIM_REASON_SIG_TOO_MANY_HEADERS, /* h= lists too many fields */
	DKIM_REASON_HEADER_TOO_MANY_NAMES, /* too many distinct field names */

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
 * character-strings of each record, concatenated.  The result, with
 * everything it points to, stays valid and unchanged until the next
 * dkim_resolver_lookup() on this resolver, or until it is freed:
 * verifications on the resolver meanwhile do not touch it, even when they
 * ask for the same name again after its answer expired or failed. */
struct dkim_dns_result {
	enum dkim_dns_status status;
	enum dkim_dnssec dnssec;
	const char *detail;		/* error text, why a name was not
				 * looked up, or NULL */
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

/* The RSA key sizes the library signs and verifies with: keys under
 * DKIM_RSA_MIN_BITS never pass (RFC 8301), and keys over DKIM_RSA_MAX_BITS
 * are refused, which bounds what one signature check costs. */
#define DKIM_RSA_MIN_BITS 1024
#define DKIM_RSA_MAX_BITS 8192

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
	/* Skip the safety rules below (OpenDKIM's "RequireSafeKeys no"). */
	DKIM_PRIVKEY_ALLOW_UNSAFE = 0x01,
};

/* The error text of a key file refused by the safety rules starts with
 * this, so that a caller can add how to skip them. */
#define DKIM_PRIVKEY_UNSAFE_PREFIX "unsafe key file "

/* Loads a PEM private key (PKCS#1 RSA, PKCS#8 RSA or Ed25519) or a
 * base64 32-byte Ed25519 seed (dkimpy's format).  RSA keys must have at
 * least 1024 bits.
 *
 * Unless DKIM_PRIVKEY_ALLOW_UNSAFE, the file must be safe from other users
 * (OpenDKIM's RequireSafeKeys): it belongs to root or to the effective uid
 * and grants the group and others nothing (mode 0600 or 0400); every
 * directory on the way from "/" (a relative path starts at the working
 * directory's real path) belongs to root or the effective uid and only
 * they may write to it, unless it has the sticky bit (like /tmp); a
 * symbolic link on the way, which is followed, belongs to root or the
 * effective uid, and the directories of its target are checked in turn.
 * Everything is checked on what was opened (openat() one name at a time,
 * fstat()), so nothing can be swapped in between.  The error says what is
 * wrong and the command that fixes it. */
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
 * The author domain
 *
 * What alignment compares a signature's d= with (RFC 7489 §3.2): the
 * domain of the From field's mailbox.  A message has one only when it has
 * exactly one From field and that field holds exactly one mailbox, in
 * valid RFC 5322 §3.4 syntax (obsolete forms included), outside any group,
 * whose domain is a domain name (dot-separated labels of ASCII letters,
 * digits, '-' and '_', the last not all digits; not a domain-literal, no
 * trailing dot).  Anything
 * else has none, since a mail client may show the user another author:
 * a list, a group, text after the address, a control character (a NUL
 * byte included) or a line break that does not fold.  8-bit bytes (RFC
 * 6532 UTF-8, or legacy charsets) are text in display names, comments,
 * quoted strings and local parts.  The verifier, the signer and the
 * plugins all apply this rule.
 * ------------------------------------------------------------------- */

enum dkim_author_status {
	DKIM_AUTHOR_FOUND = 0,
	DKIM_AUTHOR_NO_FROM,		/* the message has no From field */
	DKIM_AUTHOR_MULTIPLE_FROM,	/* several From fields */
	DKIM_AUTHOR_NO_MAILBOX,		/* an empty From field */
	DKIM_AUTHOR_SEVERAL_MAILBOXES,
	DKIM_AUTHOR_GROUP,		/* group syntax (RFC 6854) */
	DKIM_AUTHOR_SYNTAX,		/* not a valid address list */
	DKIM_AUTHOR_NOT_A_DOMAIN,	/* a domain-literal or invalid name */
	DKIM_AUTHOR_DISPUTED,		/* dkim_verifier_dispute_author() */
};

/* Why there is no author domain, as a short phrase for logs and
 * explanations ("several mailboxes in the From field"); a static string
 * without parentheses or backslashes, safe inside a header comment. */
const char *dkim_author_status_text(enum dkim_author_status status);

/* Reads a From field value: `len` bytes after "From:", which may contain
 * folding line breaks (CRLF or LF, then WSP) and end in one line break.
 * On DKIM_AUTHOR_FOUND, *domain_r receives the lowercased domain,
 * malloc()ed; otherwise NULL.  Never DKIM_AUTHOR_NO_FROM,
 * DKIM_AUTHOR_MULTIPLE_FROM or DKIM_AUTHOR_DISPUTED, which concern the
 * message.  Time is linear in `len`. */
enum dkim_author_status dkim_author_domain(const char *value, size_t len,
					   char **domain_r);
/* As dkim_author_domain(), and on DKIM_AUTHOR_FOUND also the mailbox's
 * local part in *local_part_r (when not NULL): the text it stands for,
 * without CFWS, quotes and quoted-pair backslashes ("\"j doe\"" gives
 * `j doe`; WSP inside a quoted string stays, a TAB included), malloc()ed,
 * possibly empty; otherwise NULL.  For a signer that matches whole
 * addresses (a SigningTable, who may sign which From). */
enum dkim_author_status dkim_author_address(const char *value, size_t len,
					    char **local_part_r,
					    char **domain_r);

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

/* The most signatures one message can make a verifier evaluate. */
#define DKIM_MAX_SIGNATURES_LIMIT 100

struct dkim_verify_config {
	/* Signatures evaluated per message, from the top (default 5);
	 * more than DKIM_MAX_SIGNATURES_LIMIT count as that many. */
	unsigned max_signatures;
	/* Smallest RSA key accepted; values below DKIM_RSA_MIN_BITS count
	 * as DKIM_RSA_MIN_BITS. */
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
 *   policy     else if any signature was refused by policy (several
 *              From fields, or a valid signature leaving body text
 *              unsigned);
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
/* The message's author domain (see "The author domain" below), valid as
 * long as the verifier, or NULL when it has none; then
 * dkim_verifier_author_status() tells why, and the Authentication-Results
 * value says it too. */
const char *dkim_verifier_from_domain(const dkim_verifier *verifier);
enum dkim_author_status
dkim_verifier_author_status(const dkim_verifier *verifier);
/* For a caller that reads the From field itself, as the user's mail
 * client will, and finds another author (or none): after this the
 * message has no author domain (DKIM_AUTHOR_DISPUTED, unless it had none
 * already), so no signature aligns.  On a finished verifier. */
void dkim_verifier_dispute_author(dkim_verifier *verifier);
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

/* Authentication-Results fields that arrive with a message claiming our
 * authserv-id are forged (or stale) and must be removed (RFC 8601 §5).
 * What matters is what readers make of a field (Sieve scripts, mail
 * clients, people, programs with header parsers of their own), and they
 * differ, so the rule is wide on purpose: whatever a reasonable reader
 * could take for a field of ours is one.  No legitimate field carries our
 * authserv-id, so removing a doubtful one costs nothing.  Look-alike
 * characters outside US-ASCII are not recognized.
 *
 * True if the Authentication-Results value `value` (`len` bytes: what
 * follows the colon, folding included; any byte may occur, NUL too) names
 * `authserv_id`:
 * - leading CFWS is skipped: SP, HTAB, CR, LF and comments (nested, with
 *   quoted-pairs; a comment never closed hides the rest of the value);
 * - the authserv-id's text is then a quoted-string's content (quoted-pairs
 *   resolved, up to the closing quote or the end), or else the bytes up to
 *   the next SP, HTAB, CR, LF, '(' or ';';
 * - the value is ours when a reading of that text equals `authserv_id`
 *   compared as domain names (US-ASCII case-insensitively, trailing dots
 *   ignored on both sides; an empty id is nobody's): the text up to its
 *   first byte that cannot be part of an RFC 2045 token (a control, SP,
 *   8-bit or tspecial byte, e.g. a NUL, '/' or '"'), or the same once its
 *   control characters (0x00-0x1F, 0x7F), which nobody sees, are deleted;
 *   or, for a quoted-string, its whole content with the control characters
 *   deleted (an id with a tspecial, "mx;1", can only be written quoted).
 * For mx.example.com, values beginning with these are ours:
 *     mx.example.com;        MX.Example.COM.;       (x) "mx.example.com";
 *     mx.example.com<NUL>x;  mx.exa<NUL>mple.com;   mx.example.com/x;
 * and these are not:
 *     mx.example.com.evil;   mx.example.comx;       (mx.example.com) x; */
bool dkim_authres_is_ours(const char *value, size_t len,
			  const char *authserv_id);

/* Removes the Authentication-Results fields of ours from a message's
 * header block as it streams by.  The header block is split as readers
 * split it: lines end at LF; a field is a line that does not begin with SP
 * or HTAB (or the first line, whatever it begins with) and the lines that
 * do; the block ends at the first empty line (LF or CRLF alone), or with
 * the message.  A field is ours when:
 * - its name, the bytes before its first ':' with every SP and control
 *   character deleted, is "Authentication-Results" in any case (obsolete
 *   syntax allows WSP before the colon, RFC 5322 §4.5; folding, CRs and
 *   NULs there are invisible to some readers), and the rest of the field
 *   is a value of ours by dkim_authres_is_ours(); or
 * - the same holds for one of its pieces, for readers (Python's email
 *   package among them) that end a line at a bare CR: the field split at
 *   every CR followed by neither LF nor SP nor HTAB.
 * Each field is examined in its first `max_field_bytes` bytes (at least
 * 1; the verifier's max_header_bytes is a good value).  A longer one is
 * ours also when what was left unexamined could make it ours: a name cut
 * short that may still become Authentication-Results, an authserv-id cut
 * short.  Work is linear in the header size, memory bounded by
 * max_field_bytes.
 *
 * Every byte of the fields that are kept is passed to `output` (may be
 * NULL), in order and unchanged; the empty line and the body never are.
 * authserv_id is copied. */
typedef struct dkim_authres_filter dkim_authres_filter;
typedef void dkim_authres_output_func(void *context, const void *data,
				      size_t size);

dkim_authres_filter *
dkim_authres_filter_new(const char *authserv_id, size_t max_field_bytes,
			dkim_authres_output_func *output, void *context);
/* Feeds the next bytes of the message, from its first.  Returns how many
 * belong to the header block, the empty line that ends it included: fewer
 * than `size` when the block ends within these bytes, and 0 to any call
 * after it has ended. */
size_t dkim_authres_filter_feed(dkim_authres_filter *filter,
				const void *data, size_t size);
/* Call once the header block has ended or the message has (a message
 * without an empty line is all header).  Returns the size of the header
 * fields: the offset of the empty line, where the rest of the message
 * starts. */
uint64_t dkim_authres_filter_finish(dkim_authres_filter *filter);
/* After finish: how many fields were removed. */
size_t dkim_authres_filter_removed(const dkim_authres_filter *filter);
/* After finish: the topmost field of the header block (its bytes, as far
 * as examined) when it was removed, else NULL.  Valid until the filter is
 * freed. */
const char *dkim_authres_filter_removed_top(const dkim_authres_filter *filter,
					    size_t *len_r);
void dkim_authres_filter_free(dkim_authres_filter **filter);

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
/* Computes the signatures.  Fails for a message without an author domain
 * (no From field, several, or one without exactly one valid mailbox: see
 * "The author domain"; an ARC seal alone needs only exactly one From
 * field), for a header block over a limit of dkim-verify(1), LIMITS (the
 * verifier's default byte cap, the field count, distinct field names), and
 * when the message repeats the fields to sign so often that h= would list
 * more fields than verifiers accept. */
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
 * complete and their structure is checked (RFC 8617 §5.2 steps 1-3);
 * then, for a sound chain, the newest set first, stopping at the first
 * failure: the key queries of the newest ARC-Message-Signature and
 * ARC-Seal start then, the body hashes of the newest AMSs (at most
 * DKIM_ARC_MAX_AMS_CHECKS) are computed alongside DKIM's, and at the end
 * the newest AMS is checked, then every seal newest first (an older
 * seal's key is looked up only after the newer seals verified), then
 * the older AMSs for oldest-pass.  Sealing happens in the signer's pass:
 * one ARC set is added, whose cv= is the status of the arriving chain
 * (see dkim_arc_seal_config.authres).
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

/* The most ARC sets a message can carry (RFC 8617 §5.2); a chain that
 * may pass gets every seal checked, up to this many. */
#define DKIM_ARC_MAX_SETS 50
/* The most ARC-Message-Signatures checked per message, newest first:
 * each may cost a key lookup and a body hash.  The newest decides
 * whether the chain can pass; the older ones only give oldest-pass. */
#define DKIM_ARC_MAX_AMS_CHECKS 5

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
	 * the message is unchanged.  Only the newest DKIM_ARC_MAX_AMS_CHECKS
	 * AMSs are checked: with more sets, it is at least
	 * sets - DKIM_ARC_MAX_AMS_CHECKS + 1. */
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
	 * dkim_authres_is_ours()).
	 *
	 * The seal's cv= is the status of the arriving chain.  Its
	 * structure (RFC 8617 §5.2 steps 1-3) is always checked here; the
	 * first arc= result of these results is this hop's check on
	 * arrival, before any change it made (a list that tags the Subject
	 * breaks the arriving AMS on purpose), and may only make the seal
	 * worse than the structure allows, never better:
	 *   - a chain whose newest seal says cv=fail gets no new set
	 *     (RFC 8617 §5.1), whatever was recorded;
	 *   - a chain whose structure fails is sealed cv=fail, whatever
	 *     was recorded;
	 *   - a recorded arc=fail is sealed cv=fail;
	 *   - a recorded arc=pass over a sound chain is sealed cv=pass
	 *     without checking the signatures again;
	 *   - a recorded arc=none without a chain is sealed cv=none;
	 *   - otherwise (no arc= result, one that is not none, pass or
	 *     fail, arc=pass without a chain, arc=none over one) the chain
	 *     is validated here, and its status is sealed.
	 * The ARC-Authentication-Results then says arc= with the cv= of
	 * the seal: the recorded arc= result when that was sealed, else
	 * the seal's own in its place. */
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
/* After dkim_signer_finish(): the cv= the new seal carries (see
 * dkim_arc_seal_config.authres; DKIM_RESULT_NONE without a seal
 * request).  `result_r` (may be NULL) receives what is known of the
 * arriving chain, as dkim_verifier_arc() gives it: its structure's
 * failure, or the validation's details, or for a recorded result sealed
 * as it is, cv=none with the sets counted.  `sealed_r` (may be NULL)
 * tells whether a set was added: not for a chain whose newest seal
 * already says cv=fail (RFC 8617 §5.1). */
enum dkim_result dkim_signer_arc(const dkim_signer *signer,
				 const struct dkim_arc_result **result_r,
				 bool *sealed_r);

#ifdef __cplusplus
}
#endif

#endif
