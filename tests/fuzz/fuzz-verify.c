/* Whole-message verification through the public API, with keys from a
 * custom resolver: DKIM signatures and the ARC chain.
 *
 * Each message is verified in one piece, in random chunks, and, when it
 * has bare LF line ends, with them turned into CRLF (in other random
 * chunks).  dkim.h promises the same results for any chunking and either
 * line ending, so the outcomes must be identical.  Each outcome is also
 * checked against what dkim.h promises: sanitized strings and a verdict
 * that follows the documented order; and the Authentication-Results value
 * of the first (the others' are made of the same results, compared) can
 * not break out of its header field and is recognized by
 * dkim_authres_is_ours().
 *
 * Input:
 *   owner-name value      DNS table lines, in the format of the shared
 *   ...                   corpus (NXDOMAIN, ~~timeout~~, ~~SERVFAIL~~, "")
 *   %% [option ...]       end of the table; options:
 *                           now=UNIXTIME  maxsig=N  maxhdr=BYTES
 *                           partial (accept unsigned body after l=)
 *                           secure | bogus (DNSSEC status of answers)
 *                           id=AUTHSERV-ID
 *   message
 * Without a "%%" line the whole input is the message, and no key exists. */
#include "dkim.h"
#include "fuzz.h"

#include <strings.h>

#define MAX_TABLE_ENTRIES 16
/* Explanations are formatted into 512-byte buffers. */
#define MAX_EXPLANATION 511
/* Sanitized message strings: 255 characters (dkim.h). */
#define MAX_SHOWN 255

struct text {
	const char *data;
	size_t len;
};

struct table_entry {
	struct text name, value;
};

struct fuzz_input {
	struct table_entry entries[MAX_TABLE_ENTRIES];
	size_t entry_count;
	enum dkim_dnssec dnssec;
	struct dkim_verify_config config;
	char authserv_id[64];
	struct text message;
};

static bool
text_is(struct text text, const char *str)
{
	return text.len == strlen(str) && memcmp(text.data, str, text.len) == 0;
}

/* Splits off the next line (without its LF) from *rest. */
static struct text
next_line(struct text *rest)
{
	const char *nl = memchr(rest->data, '\n', rest->len);
	size_t len = nl != NULL ? (size_t)(nl - rest->data) : rest->len;
	struct text line = { rest->data, len };

	rest->data += nl != NULL ? len + 1 : len;
	rest->len -= nl != NULL ? len + 1 : len;
	return line;
}

/* Splits off the next space-separated word from *rest. */
static struct text
next_word(struct text *rest)
{
	while (rest->len > 0 && rest->data[0] == ' ') {
		rest->data++;
		rest->len--;
	}
	struct text word = { rest->data, 0 };
	while (word.len < rest->len && rest->data[word.len] != ' ')
		word.len++;
	rest->data += word.len;
	rest->len -= word.len;
	return word;
}

static unsigned long long
option_number(struct text word, size_t prefix_len)
{
	char digits[24];
	size_t len = word.len - prefix_len;

	if (len >= sizeof(digits))
		len = sizeof(digits) - 1;
	memcpy(digits, word.data + prefix_len, len);
	digits[len] = '\0';
	return strtoull(digits, NULL, 10);
}

static bool
has_prefix(struct text word, const char *prefix)
{
	return word.len >= strlen(prefix) &&
		memcmp(word.data, prefix, strlen(prefix)) == 0;
}

static void
parse_options(struct fuzz_input *input, struct text rest)
{
	for (struct text word = next_word(&rest); word.len > 0;
	     word = next_word(&rest)) {
		if (has_prefix(word, "now="))
			input->config.now =
				(time_t)(option_number(word, 4) % (1ULL << 40));
		else if (has_prefix(word, "maxsig="))
			input->config.max_signatures =
				(unsigned)(option_number(word, 7) % 64);
		else if (has_prefix(word, "maxhdr="))
			input->config.max_header_bytes =
				(size_t)(option_number(word, 7) % (1 << 24));
		else if (text_is(word, "partial"))
			input->config.body_length = DKIM_BODY_LENGTH_ACCEPT;
		else if (text_is(word, "secure"))
			input->dnssec = DKIM_DNSSEC_SECURE;
		else if (text_is(word, "bogus"))
			input->dnssec = DKIM_DNSSEC_BOGUS;
		else if (has_prefix(word, "id=") &&
			 word.len - 3 < sizeof(input->authserv_id)) {
			memcpy(input->authserv_id, word.data + 3, word.len - 3);
			input->authserv_id[word.len - 3] = '\0';
		}
	}
}

static void
parse_table_line(struct fuzz_input *input, struct text line)
{
	struct text name = next_word(&line);

	if (line.len > 0 && line.data[line.len - 1] == '\r')
		line.len--;
	if (name.len == 0 || input->entry_count == MAX_TABLE_ENTRIES)
		return;
	while (line.len > 0 && (line.data[0] == ' ' || line.data[0] == '\t')) {
		line.data++;
		line.len--;
	}
	if (name.len > 0 && name.data[name.len - 1] == '.')
		name.len--;
	input->entries[input->entry_count].name = name;
	input->entries[input->entry_count].value = line;
	input->entry_count++;
}

static void
parse_input(struct fuzz_input *input, const uint8_t *data, size_t size)
{
	struct text all = { (const char *)data, size }, rest = all;

	memset(input, 0, sizeof(*input));
	dkim_verify_config_init(&input->config);
	input->config.now = 1700000000;
	strcpy(input->authserv_id, "mx.example.net");
	while (rest.len > 0) {
		struct text line = next_line(&rest);
		if (has_prefix(line, "%%")) {
			line.data += 2;
			line.len -= 2;
			parse_options(input, line);
			input->message = rest;
			return;
		}
		parse_table_line(input, line);
	}
	/* No "%%" line: what looked like a table is the message. */
	input->entry_count = 0;
	input->message = all;
}

/* ---- the resolver ---- */

static enum dkim_dns_status
lookup(void *context, const char *qname, struct dkim_dns_answer *answer)
{
	const struct fuzz_input *input = context;
	enum dkim_dns_status status = DKIM_DNS_NOT_FOUND;

	dkim_dns_answer_set_dnssec(answer, input->dnssec);
	for (size_t i = 0; i < input->entry_count; i++) {
		const struct table_entry *entry = &input->entries[i];
		struct text value = entry->value;

		if (entry->name.len != strlen(qname) ||
		    strncasecmp(entry->name.data, qname, entry->name.len) != 0)
			continue;
		if (text_is(value, "NXDOMAIN"))
			return DKIM_DNS_NOT_FOUND;
		if (has_prefix(value, "~~")) {
			bool timeout = memmem(value.data, value.len, "time",
					      4) != NULL;
			dkim_dns_answer_set_detail(answer, "fuzz table failure");
			return timeout ? DKIM_DNS_TIMEOUT : DKIM_DNS_ERROR;
		}
		if (text_is(value, "\"\""))
			value.len = 0;
		dkim_dns_answer_add(answer, value.data, value.len);
		status = DKIM_DNS_FOUND;
	}
	return status;
}

/* ---- feeding ---- */

/* xorshift64, seeded from the input so that a crash reproduces. */
static uint64_t
next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static void
feed_in_chunks(dkim_verifier *verifier, const char *data, size_t size,
	       uint64_t *random)
{
	while (size > 0) {
		uint64_t r = next_random(random);
		/* Many tiny chunks, to split CRLFs and field names. */
		size_t chunk = (r & 3) == 0 ? 1 + (r >> 2) % 4096 :
			1 + (r >> 2) % 8;
		if (chunk > size)
			chunk = size;
		dkim_verifier_feed(verifier, data, chunk);
		data += chunk;
		size -= chunk;
	}
}

/* LF line ends become CRLF; existing CRLFs stay. */
static char *
to_crlf(struct text message, size_t *size_r)
{
	char *out = malloc(message.len * 2 + 1);
	size_t len = 0;

	FUZZ_ASSERT(out != NULL, "out of memory");

	for (size_t i = 0; i < message.len; i++) {
		if (message.data[i] == '\n' &&
		    (i == 0 || message.data[i - 1] != '\r'))
			out[len++] = '\r';
		out[len++] = message.data[i];
	}
	*size_r = len;
	return out;
}

/* ---- checking one outcome ---- */

/* Folded: lines joined by CRLF + TAB; flat: one line. */
static void
check_authres(const char *value, bool folded, const char *authserv_id)
{
	size_t len = strlen(value);

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		if (folded && c == '\r' && strncmp(value + i, "\r\n\t", 3) == 0) {
			i += 2;
			continue;
		}
		FUZZ_ASSERT(c >= 0x20 && c <= 0x7e,
			    "%s Authentication-Results value has byte 0x%02x "
			    "at offset %zu: %s", folded ? "folded" : "flat",
			    c, i, value);
	}
	FUZZ_ASSERT(dkim_authres_is_ours(value, len, authserv_id),
		    "our own Authentication-Results (%s) is not ours", value);
}

/* The order documented for dkim_verifier_verdict(). */
static enum dkim_result
expected_verdict(const dkim_verifier *verifier)
{
	static const enum dkim_result order[] = {
		DKIM_RESULT_PASS, DKIM_RESULT_TEMPERROR, DKIM_RESULT_FAIL,
		DKIM_RESULT_POLICY, DKIM_RESULT_PERMERROR,
	};
	size_t count = dkim_verifier_signature_count(verifier);

	for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++) {
		for (size_t i = 0; i < count; i++) {
			if (dkim_verifier_signature(verifier, i)->result ==
			    order[o])
				return order[o];
		}
	}
	return count == 0 ? DKIM_RESULT_NONE : DKIM_RESULT_NEUTRAL;
}

static void
check_signature(const struct dkim_signature_result *sig)
{
	FUZZ_ASSERT(sig->result != DKIM_RESULT_NONE,
		    "an evaluated signature has no result");
	if (sig->result == DKIM_RESULT_PASS) {
		FUZZ_ASSERT(sig->reason == DKIM_REASON_NONE &&
			    sig->explanation == NULL,
			    "pass with a reason (%s)", sig->explanation);
	} else {
		FUZZ_ASSERT(sig->reason != DKIM_REASON_NONE &&
			    sig->explanation != NULL,
			    "%s without a reason", dkim_result_name(sig->result));
	}
	fuzz_check_shown(sig->explanation, MAX_EXPLANATION, "explanation");
	fuzz_check_shown(sig->domain, MAX_SHOWN, "d=");
	fuzz_check_shown(sig->selector, MAX_SHOWN, "s=");
	fuzz_check_shown(sig->identity, MAX_SHOWN, "i=");
	fuzz_check_shown(sig->algorithm, MAX_SHOWN, "a=");
	fuzz_check_shown(sig->b, MAX_SHOWN, "b=");
}

static const char *
shown(const char *text)
{
	return text != NULL ? text : "-";
}

/* The ARC chain: a consistent, sanitized result, described for comparison
 * (ARC validation runs in the same pass, so chunking and line ends must not
 * change it either). */
static void
describe_arc(const dkim_verifier *verifier, FILE *out)
{
	const struct dkim_arc_result *arc;
	enum dkim_result cv = dkim_verifier_arc(verifier, &arc);

	FUZZ_ASSERT(cv == DKIM_RESULT_NONE || cv == DKIM_RESULT_PASS ||
		    cv == DKIM_RESULT_FAIL, "ARC cv=%s", dkim_result_name(cv));
	FUZZ_ASSERT(cv != DKIM_RESULT_FAIL || (arc->reason != DKIM_REASON_NONE &&
					       arc->explanation != NULL),
		    "ARC fail without a reason");
	fuzz_check_shown(arc->explanation, MAX_EXPLANATION, "ARC explanation");
	fuzz_check_shown(arc->seal_domain, MAX_SHOWN, "ARC seal d=");
	fprintf(out, "arc=%s %s %s sets=%u oldest-pass=%u failed=%u d=%s\n",
		dkim_result_name(cv), dkim_reason_name(arc->reason),
		arc->explanation != NULL ? arc->explanation : "-", arc->sets,
		arc->oldest_pass, arc->failed_instance,
		arc->seal_domain != NULL ? arc->seal_domain : "-");
}

/* Checks the Authentication-Results value, folded and flat. */
static void
check_authres_value(const dkim_verifier *verifier, const char *authserv_id)
{
	char *folded = dkim_authres_value(verifier, authserv_id,
					  DKIM_AUTHRES_FOLD);
	char *flat = dkim_authres_value(verifier, authserv_id, 0);

	if (authserv_id[fuzz_unprintable_at(authserv_id,
					    strlen(authserv_id))] == '\0' &&
	    authserv_id[0] != '\0') {
		check_authres(folded, true, authserv_id);
		check_authres(flat, false, authserv_id);
	}
	free(folded);
	free(flat);
}

/* Checks one verifier and describes its outcome, for comparison: all
 * that its Authentication-Results value is made of. */
static char *
check_outcome(const dkim_verifier *verifier)
{
	size_t count = dkim_verifier_signature_count(verifier);
	const char *from = dkim_verifier_from_domain(verifier);
	char *summary = NULL;
	size_t summary_size;
	FILE *out = open_memstream(&summary, &summary_size);

	FUZZ_ASSERT(out != NULL, "open_memstream failed");
	FUZZ_ASSERT(dkim_verifier_verdict(verifier) ==
		    expected_verdict(verifier), "verdict %s does not follow "
		    "the documented order",
		    dkim_result_name(dkim_verifier_verdict(verifier)));
	if (from != NULL) {
		fuzz_check_shown(from, MAX_SHOWN, "From domain");
		for (const char *p = from; *p != '\0'; p++)
			FUZZ_ASSERT(*p < 'A' || *p > 'Z',
				    "From domain %s is not lowercase", from);
	}

	fprintf(out, "verdict=%s skipped=%zu from=%s\n",
		dkim_result_name(dkim_verifier_verdict(verifier)),
		dkim_verifier_skipped_signatures(verifier),
		from != NULL ? from : "-");
	for (size_t i = 0; i < count; i++) {
		const struct dkim_signature_result *sig =
			dkim_verifier_signature(verifier, i);

		check_signature(sig);
		fprintf(out, "%s %s %s d=%s i=%s s=%s a=%s b=%s key=%d/%u "
			"dnssec=%d testing=%d t=%lld x=%lld aligned=%d\n",
			dkim_result_name(sig->result),
			dkim_reason_name(sig->reason),
			sig->explanation != NULL ? sig->explanation : "-",
			shown(sig->domain), shown(sig->identity),
			shown(sig->selector), shown(sig->algorithm),
			shown(sig->b),
			sig->key_type, sig->key_bits, sig->dnssec,
			sig->key_testing, (long long)sig->timestamp,
			(long long)sig->expiration,
			dkim_domains_aligned(from, sig->domain));
	}
	describe_arc(verifier, out);
	fclose(out);
	return summary;
}

/* Verifies in one piece, or in random chunks; the one piece's
 * Authentication-Results value is checked. */
static char *
verify(const struct fuzz_input *input, dkim_resolver *resolver,
       const char *message, size_t size, uint64_t *random)
{
	dkim_verifier *verifier = dkim_verifier_new(&input->config, resolver);

	if (random == NULL)
		dkim_verifier_feed(verifier, message, size);
	else
		feed_in_chunks(verifier, message, size, random);
	dkim_verifier_finish(verifier);
	char *summary = check_outcome(verifier);
	if (random == NULL)
		check_authres_value(verifier, input->authserv_id);
	dkim_verifier_free(&verifier);
	return summary;
}

static uint64_t
seed_of(const uint8_t *data, size_t size)
{
	uint64_t hash = 14695981039346656037ULL;

	for (size_t i = 0; i < size; i++)
		hash = (hash ^ data[i]) * 1099511628211ULL;
	return hash != 0 ? hash : 1;
}

static void
assert_same(const char *what, const char *got, const char *expected)
{
	FUZZ_ASSERT(strcmp(got, expected) == 0,
		    "%s changes the outcome:\n--- one piece:\n%s--- %s:\n%s",
		    what, expected, what, got);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input input;
	uint64_t random = seed_of(data, size);
	size_t crlf_size;

	parse_input(&input, data, size);
	/* One resolver for all runs: the later ones use its cache. */
	dkim_resolver *resolver = dkim_resolver_new_custom(lookup, &input);
	char *whole = verify(&input, resolver, input.message.data,
			     input.message.len, NULL);
	char *chunked = verify(&input, resolver, input.message.data,
			       input.message.len, &random);
	assert_same("chunking", chunked, whole);
	free(chunked);

	char *crlf = to_crlf(input.message, &crlf_size);
	if (crlf_size != input.message.len) {
		char *crlf_chunked = verify(&input, resolver, crlf, crlf_size,
					    &random);
		assert_same("LF to CRLF", crlf_chunked, whole);
		free(crlf_chunked);
	}
	free(crlf);
	free(whole);
	dkim_resolver_free(&resolver);
	return 0;
}
