/* ARC sealing (RFC 8617 §5.1): this hop's ARC set, made in the pass that
 * makes the DKIM signatures.
 *
 * When the header block is complete, this hop's results are taken and
 * the structure of the chain the message arrived with is checked, as the
 * verifier does it (arc-verify.c); the new set's instance follows the
 * highest one found.  The new seal's cv= is the arriving chain's status:
 * what this hop recorded on arrival (an arc= result) when that fits the
 * structure, else the validation, whose key queries and body hashes then
 * start as the verifier's do (the rule is in dkim.h, at
 * dkim_arc_seal_config.authres).  The set is an
 * ARC-Authentication-Results carrying this hop's Authentication-Results,
 * an ARC-Message-Signature (a signature request of sign.c) and the
 * ARC-Seal over the sets.  A chain whose newest seal already says
 * cv=fail is not extended (§5.1); a failed chain is sealed with cv=fail
 * over the new set alone (§5.1.2), so that a broken chain's sets, which
 * may lack fields, are never hashed.  The fields are written in the
 * canonical form of the ARC test suite (tags sorted by name), so that a
 * seal is reproducible. */
#include "dkim-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char authres_name[] = "Authentication-Results";

/* This hop's results: the authserv-id, then each resinfo. */
struct resinfos {
	char **texts;
	size_t count;
};

struct dkim_arc_sealer {
	struct dkim_sign_request ams;
	char *authres;		/* the given A-R value, or NULL */
	char *authserv_id;	/* whose A-R fields to take, or NULL */
	dkim_resolver *resolver;
	struct dkim_verify_config verify;
	struct dkim_arc_chain chain;

	/* Known at the end of the header block, or when this hop's results
	 * are given later (dkim_arc_sealer_set_authres()): those results
	 * (or why there are none), the arc= result among them, and whether
	 * the chain must be validated to know the seal's cv=. */
	bool started;		/* the header block has ended */
	bool chain_sound;	/* dkim_arc_chain_collect() */
	bool checks_started;	/* dkim_arc_chain_start_checks() */
	struct resinfos results;
	bool has_results;
	struct dkim_error results_error;
	bool has_recorded;
	enum dkim_result recorded;
	bool validate;

	enum dkim_result cv;	/* what the new seal carries */
	bool sealed;
};

void
dkim_arc_seal_config_init(struct dkim_arc_seal_config *config)
{
	memset(config, 0, sizeof(*config));
	config->header_canon = DKIM_CANON_RELAXED;
	config->body_canon = DKIM_CANON_RELAXED;
}

/* ---- the Authentication-Results payload ---- */

static void
resinfos_free(struct resinfos *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->texts[i]);
	free(list->texts);
	memset(list, 0, sizeof(*list));
}

static bool
has_control(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') ||
		    c == 0x7f)
			return true;
	}
	return false;
}

static void
add_resinfo(struct resinfos *list, struct dkim_buf *text)
{
	if (text->len > 0 && text->data[text->len - 1] == ' ')
		dkim_buf_truncate(text, text->len - 1);
	if (text->len == 0)
		return;
	list->texts = dkim_realloc(list->texts,
				   (list->count + 1) * sizeof(*list->texts));
	list->texts[list->count++] = dkim_buf_steal(text);
}

/* Splits an Authentication-Results value at the ';' outside quoted
 * strings and comments.  Whitespace runs become one space, which is all
 * relaxed canonicalization keeps of them anyway; empty parts vanish. */
static void
split_resinfos(const char *value, size_t len, struct resinfos *list)
{
	struct dkim_buf part = { 0 };
	unsigned comment_depth = 0;
	bool quoted = false, escaped = false;

	for (size_t i = 0; i < len; i++) {
		char c = value[i];
		bool wsp = c == ' ' || c == '\t' || c == '\r' || c == '\n';

		if (escaped) {
			escaped = false;
		} else if (c == '\\' && (quoted || comment_depth > 0)) {
			escaped = true;
		} else if (quoted) {
			quoted = c != '"';
		} else if (c == '"') {
			quoted = comment_depth == 0;
		} else if (c == '(') {
			comment_depth++;
		} else if (c == ')' && comment_depth > 0) {
			comment_depth--;
		} else if (c == ';' && comment_depth == 0) {
			add_resinfo(list, &part);
			continue;
		}
		if (wsp) {
			if (part.len > 0 && part.data[part.len - 1] != ' ')
				dkim_buf_append_c(&part, ' ');
		} else {
			dkim_buf_append_c(&part, c);
		}
	}
	add_resinfo(list, &part);
	dkim_buf_free(&part);
}

/* This hop's results: the given value, or every Authentication-Results
 * field of the message that carries our authserv-id, in order (what
 * dkimpy does and the ARC test suite expects).  The first element is
 * the authserv-id. */
static int
collect_resinfos(const struct dkim_arc_sealer *sealer,
		 const struct dkim_headers *headers, struct resinfos *list,
		 struct dkim_error *error)
{
	if (sealer->authres != NULL) {
		split_resinfos(sealer->authres, strlen(sealer->authres), list);
		return 0;
	}
	list->texts = dkim_malloc(sizeof(*list->texts));
	list->texts[list->count++] = dkim_strdup(sealer->authserv_id);
	for (size_t i = 0; i < headers->count; i++) {
		if (!dkim_headers_name_is(headers, i, authres_name))
			continue;
		const struct dkim_header_field *field = &headers->fields[i];
		const char *text = dkim_headers_field(headers, i);
		size_t value_start = field->name_len + 1;
		const char *value = text + value_start;
		size_t len = field->len - value_start;

		if (!dkim_authres_is_ours(value, len, sealer->authserv_id))
			continue;
		if (has_control(value, len)) {
			dkim_error_set(error, "an %s field of %s has control "
				       "characters", authres_name,
				       sealer->authserv_id);
			return -1;
		}
		struct resinfos field_list = { NULL, 0 };
		split_resinfos(value, len, &field_list);
		/* Its first element is our authserv-id again. */
		for (size_t j = 1; j < field_list.count; j++) {
			list->texts = dkim_realloc(list->texts,
				(list->count + 1) * sizeof(*list->texts));
			list->texts[list->count++] = field_list.texts[j];
			field_list.texts[j] = NULL;
		}
		resinfos_free(&field_list);
	}
	if (list->count == 1) {
		dkim_error_set(error, "no %s field of %s to record in the "
			       "ARC set", authres_name, sealer->authserv_id);
		return -1;
	}
	return 0;
}

static bool
is_method(const char *resinfo, const char *method)
{
	size_t len = strlen(method);

	if (strncasecmp(resinfo, method, len) != 0)
		return false;
	resinfo += len;
	while (*resinfo == ' ')
		resinfo++;
	return *resinfo == '=';
}

/* The chain status this hop recorded on arrival: the first arc= result
 * among its own results, if it is none, pass or fail.  That is what the
 * seal carries when the structure allows it (RFC 8617 §5.1): a list that
 * edits the message breaks the arriving AMS on purpose, and validating
 * the edited message here would find cv=fail. */
static bool
recorded_chain_status(const struct resinfos *list, enum dkim_result *cv_r)
{
	for (size_t i = 1; i < list->count; i++) {
		const char *value = list->texts[i];

		if (!is_method(value, "arc"))
			continue;
		value = strchr(value, '=') + 1;
		while (*value == ' ')
			value++;
		char word[16];
		size_t len = strcspn(value, " ;(\t");
		if (len >= sizeof(word))
			return false;
		memcpy(word, value, len);
		word[len] = '\0';
		return dkim_result_parse(word, cv_r) &&
			(*cv_r == DKIM_RESULT_PASS || *cv_r == DKIM_RESULT_FAIL ||
			 *cv_r == DKIM_RESULT_NONE);
	}
	return false;
}

/* Writes words separated by spaces, breaking lines between them. */
static void
fold_words(struct dkim_folder *folder, const char *text, bool last)
{
	const char *word = text;

	while (*word != '\0') {
		const char *end = strchr(word, ' ');
		size_t len = end != NULL ? (size_t)(end - word) : strlen(word);
		struct dkim_buf piece = { 0 };

		dkim_buf_append(&piece, word, len);
		if (end == NULL && !last)
			dkim_buf_append_c(&piece, ';');
		dkim_fold_append(folder, piece.data, piece.len, true);
		dkim_buf_free(&piece);
		word = end != NULL ? end + 1 : word + len;
	}
}

/* Whether the AAR takes a resinfo of this hop's results: not a bare
 * "none", nor an arc= result when the seal's own takes its place. */
static bool
aar_takes(const char *resinfo, bool own_arc)
{
	return strcasecmp(resinfo, "none") != 0 &&
		!(own_arc && is_method(resinfo, "arc"));
}

/* RFC 8617 §4.1.1: "i=N; " and the Authentication-Results payload, with
 * arc= saying the cv= of the seal: the recorded result when that is what
 * the seal carries, else the seal's own instead of any arc= result. */
static void
write_aar(struct dkim_buf *out, unsigned instance, enum dkim_result cv,
	  const struct resinfos *list, bool recorded_sealed)
{
	struct dkim_folder folder;
	bool own_arc = !recorded_sealed;
	size_t last = 0;

	for (size_t i = 1; i < list->count; i++) {
		if (aar_takes(list->texts[i], own_arc))
			last = i;
	}
	dkim_fold_start(&folder, out, "ARC-Authentication-Results");
	dkim_fold_tagf(&folder, "i=%u;", instance);
	fold_words(&folder, list->texts[0], false);
	if (own_arc) {
		dkim_fold_tagf(&folder, "arc=%s%s", dkim_result_name(cv),
			       last > 0 ? ";" : "");
	}
	for (size_t i = 1; i <= last; i++) {
		if (aar_takes(list->texts[i], own_arc))
			fold_words(&folder, list->texts[i], i == last);
	}
	dkim_buf_append_str(out, "\r\n");
}

/* ---- the seal ---- */

bool
dkim_arc_seal_digest(const struct dkim_arc_chain *chain,
		     const struct dkim_headers *headers, unsigned older_sets,
		     const char *aar, const char *ams,
		     const struct dkim_unsigned_field *seal,
		     unsigned char digest[DKIM_SHA256_LEN])
{
	struct dkim_header_hash hash;

	dkim_header_hash_init(&hash, DKIM_CANON_RELAXED);
	bool complete = dkim_arc_chain_hash_sets(chain, headers, older_sets,
						 &hash);
	dkim_header_hash_field(&hash, aar, strlen(aar));
	dkim_header_hash_field(&hash, ams, strlen(ams));
	dkim_header_hash_finish(&hash, seal->text.data, seal->text.len,
				seal->b_pos, seal->b_pos, digest);
	return complete;
}

/* RFC 8617 §4.1.3, tags sorted by name. */
static int
write_seal(const struct dkim_arc_sealer *sealer,
	   const struct dkim_headers *headers, unsigned instance,
	   const char *aar, const char *ams, struct dkim_buf *out,
	   struct dkim_error *error)
{
	const struct dkim_sign_request *req = &sealer->ams;
	struct dkim_unsigned_field seal = { .text = { 0 } };
	struct dkim_folder folder;
	unsigned char digest[DKIM_SHA256_LEN];
	int ret = -1;

	dkim_fold_start(&folder, &seal.text, "ARC-Seal");
	dkim_fold_tagf(&folder, "a=%s;", dkim_sign_algorithm_name(req->key));
	dkim_sign_b_slot(&folder, &seal, false, DKIM_FOLD_WIDTH);
	dkim_fold_tagf(&folder, "cv=%s;", dkim_result_name(sealer->cv));
	dkim_fold_tagf(&folder, "d=%s;", req->domain);
	dkim_fold_tagf(&folder, "i=%u;", instance);
	dkim_fold_tagf(&folder, "s=%s;", req->selector);
	dkim_fold_tagf(&folder, "t=%lld", (long long)req->timestamp);

	if (!dkim_arc_seal_digest(&sealer->chain, headers,
				  sealer->cv == DKIM_RESULT_PASS ?
				  instance - 1 : 0, aar, ams, &seal, digest)) {
		dkim_error_set(error, "cannot seal cv=pass over ARC sets "
			       "that failed the structure check");
	} else {
		ret = dkim_sign_fill_b(&seal, req->key, digest, error);
	}
	if (ret == 0) {
		dkim_buf_append(out, seal.text.data, seal.text.len);
		dkim_buf_append_str(out, "\r\n");
	}
	dkim_buf_free(&seal.text);
	return ret;
}

/* ---- the sealer ---- */

static bool
is_arc_field_name(const char *name)
{
	return strncasecmp(name, "ARC-", 4) == 0;
}

/* Written into the AAR as it is: a plain token, nothing that could end
 * the value or the field. */
static bool
is_authserv_id(const char *id)
{
	if (*id == '\0')
		return false;
	for (const char *p = id; *p != '\0'; p++) {
		if (*p <= ' ' || *p > '~' || *p == ';' || *p == '"' ||
		    *p == '(' || *p == ')')
			return false;
	}
	return true;
}

/* A complete Authentication-Results value: printable, with at least the
 * authserv-id. */
static int
check_authres(const char *authres, struct dkim_error *error)
{
	struct resinfos list = { NULL, 0 };
	size_t len = strlen(authres);
	bool bad = has_control(authres, len);

	if (!bad) {
		split_resinfos(authres, len, &list);
		bad = list.count == 0;
		resinfos_free(&list);
	}
	if (bad) {
		dkim_error_set(error, "invalid Authentication-Results value "
			       "for the ARC set: '%s'", authres);
		return -1;
	}
	return 0;
}

static int
check_config(const struct dkim_arc_seal_config *config,
	     struct dkim_error *error)
{
	if (config->resolver == NULL) {
		dkim_error_set(error, "an ARC seal needs a resolver, to "
			       "validate the chain the message arrives with");
		return -1;
	}
	if ((config->authres == NULL) == (config->authserv_id == NULL)) {
		dkim_error_set(error, "an ARC seal needs either this hop's "
			       "Authentication-Results value or the "
			       "authserv-id of its fields in the message");
		return -1;
	}
	if (config->authserv_id != NULL &&
	    !is_authserv_id(config->authserv_id)) {
		dkim_error_set(error, "invalid authserv-id '%s'",
			       config->authserv_id);
		return -1;
	}
	if (config->key != NULL && dkim_privkey_type(config->key) !=
	    DKIM_KEY_RSA) {
		dkim_error_set(error, "ARC seals need an RSA key: validators "
			       "accept rsa-sha256 (RFC 8617)");
		return -1;
	}
	for (size_t i = 0; config->headers != NULL &&
	     config->headers[i] != NULL; i++) {
		if (is_arc_field_name(config->headers[i])) {
			dkim_error_set(error, "%s cannot be signed by the "
				       "ARC-Message-Signature: the ARC-Seal "
				       "covers the ARC fields",
				       config->headers[i]);
			return -1;
		}
	}
	if (config->authres != NULL && check_authres(config->authres, error) < 0)
		return -1;
	return 0;
}

struct dkim_arc_sealer *
dkim_arc_sealer_new(const struct dkim_arc_seal_config *config,
		    struct dkim_error *error)
{
	struct dkim_sign_config sign;

	if (check_config(config, error) < 0)
		return NULL;
	dkim_sign_config_init(&sign);
	sign.domain = config->domain;
	sign.selector = config->selector;
	sign.key = config->key;
	sign.header_canon = config->header_canon;
	sign.body_canon = config->body_canon;
	sign.headers = config->headers;
	sign.oversign = config->oversign;
	sign.timestamp = config->timestamp;

	struct dkim_arc_sealer *sealer = dkim_calloc(1, sizeof(*sealer));
	if (dkim_sign_request_init(&sealer->ams, DKIM_SIG_ARC_MESSAGE, &sign,
				   error) < 0) {
		free(sealer);
		return NULL;
	}
	if (config->authres != NULL)
		sealer->authres = dkim_strdup(config->authres);
	else
		sealer->authserv_id = dkim_strdup(config->authserv_id);
	sealer->resolver = config->resolver;
	if (config->verify != NULL)
		sealer->verify = *config->verify;
	else
		dkim_verify_config_init(&sealer->verify);
	if (sealer->verify.min_rsa_bits < DKIM_RSA_MIN_BITS)
		sealer->verify.min_rsa_bits = DKIM_RSA_MIN_BITS;
	return sealer;
}

/* Whether a recorded chain status may be sealed as it is over a chain
 * whose structure passed: it may make the seal worse than the structure
 * allows, never better (dkim_arc_seal_config.authres in dkim.h). */
static bool
recorded_fits(enum dkim_result recorded, unsigned sets)
{
	switch (recorded) {
	case DKIM_RESULT_FAIL:
		return true;
	case DKIM_RESULT_PASS:
		return sets > 0;
	default:
		return sets == 0;
	}
}

/* This hop's results, and from them and the chain's structure, where the
 * seal's cv= comes from. */
static void
decide_cv(struct dkim_arc_sealer *sealer, const struct dkim_headers *headers)
{
	const struct dkim_arc_chain *chain = &sealer->chain;

	resinfos_free(&sealer->results);
	sealer->has_results = collect_resinfos(sealer, headers,
		&sealer->results, &sealer->results_error) == 0;
	sealer->has_recorded = sealer->has_results &&
		recorded_chain_status(&sealer->results, &sealer->recorded);
	sealer->validate = false;
	if (!sealer->chain_sound) {
		/* Broken, or ended already: no signature is worth checking,
		 * and no older set may be hashed. */
		sealer->cv = DKIM_RESULT_FAIL;
	} else if (sealer->has_recorded &&
		   recorded_fits(sealer->recorded, chain->count)) {
		sealer->cv = sealer->recorded;
	} else if (chain->count == 0) {
		sealer->cv = DKIM_RESULT_NONE;
	} else {
		sealer->validate = true;
	}
}

int
dkim_arc_sealer_set_authres(struct dkim_arc_sealer *sealer,
			    const struct dkim_headers *headers,
			    const char *authres, struct dkim_error *error)
{
	if (check_authres(authres, error) < 0)
		return -1;
	free(sealer->authres);
	free(sealer->authserv_id);
	sealer->authres = dkim_strdup(authres);
	sealer->authserv_id = NULL;
	if (sealer->started)
		decide_cv(sealer, headers);
	return 0;
}

void
dkim_arc_sealer_start(struct dkim_arc_sealer *sealer,
		      const struct dkim_headers *headers,
		      struct dkim_body_canons *bcs)
{
	struct dkim_arc_chain *chain = &sealer->chain;

	sealer->started = true;
	sealer->chain_sound = dkim_arc_chain_collect(chain, headers);
	decide_cv(sealer, headers);
	/* The checks start now, while the body streams by, for any sound
	 * chain that sealing would not refuse: this hop's results, and with
	 * them the need to validate, may still come after the body. */
	if (sealer->chain_sound && chain->count > 0 &&
	    chain->count < DKIM_ARC_MAX_SETS &&
	    (sealer->validate || !sealer->has_results)) {
		dkim_arc_chain_start_checks(chain, sealer->resolver, bcs);
		sealer->checks_started = true;
	}
	dkim_sign_request_start(&sealer->ams, bcs);
}

/* Validates the arriving chain; false (with `error` set) when that
 * cannot be done now. */
static bool
validate_chain(struct dkim_arc_sealer *sealer, struct dkim_headers *headers,
	       struct dkim_error *error)
{
	const struct dkim_verify_config *verify = &sealer->verify;
	struct dkim_arc_context context = {
		.headers = headers,
		.resolver = sealer->resolver,
		.config = verify,
		.now = verify->now != 0 ? verify->now : time(NULL),
		.deadline_msecs = dkim_monotonic_msecs() +
			verify->dns_timeout_msecs,
	};
	const struct dkim_arc_result *result = &sealer->chain.result;

	dkim_arc_chain_finish(&sealer->chain, &context);
	if (result->cv == DKIM_RESULT_FAIL &&
	    dkim_reason_result(result->reason) == DKIM_RESULT_TEMPERROR) {
		/* Sealing cv=fail now would break the chain for good. */
		dkim_error_set(error, "cannot validate the ARC chain now, "
			       "try again later: %s", result->explanation);
		return false;
	}
	sealer->cv = result->cv;
	return true;
}

int
dkim_arc_sealer_finish(struct dkim_arc_sealer *sealer,
		       struct dkim_headers *headers, struct dkim_buf *fields,
		       struct dkim_error *error)
{
	const struct dkim_arc_chain *chain = &sealer->chain;
	struct dkim_buf aar = { 0 }, ams = { 0 };

	if (!sealer->has_results) {
		if (error != NULL)
			*error = sealer->results_error;
		return -1;
	}
	if (chain->result.reason == DKIM_REASON_ARC_CHAIN_FAILED)
		return 0;	/* the chain ended already: no new set */
	if (chain->count == DKIM_ARC_MAX_SETS) {
		dkim_error_set(error, "the message already has %u ARC sets, "
			       "the most there can be (RFC 8617 section 4.2.1)",
			       DKIM_ARC_MAX_SETS);
		return -1;
	}
	if (sealer->validate && !sealer->checks_started) {
		/* results with an arc= result at the end of the header block,
		 * replaced after the body by results without one */
		dkim_error_set(error, "cannot validate the ARC chain: this "
			       "hop's results came after the body without an "
			       "arc= result");
		return -1;
	}
	if (sealer->validate && !validate_chain(sealer, headers, error))
		return -1;

	unsigned instance = chain->count + 1;
	write_aar(&aar, instance, sealer->cv, &sealer->results,
		  sealer->has_recorded && sealer->cv == sealer->recorded);
	int ret = dkim_sign_request_make(&sealer->ams, headers, instance, &ams,
					 error);
	if (ret == 0)
		ret = write_seal(sealer, headers, instance, aar.data, ams.data,
				 fields, error);
	if (ret == 0) {
		dkim_buf_append(fields, ams.data, ams.len);
		dkim_buf_append(fields, aar.data, aar.len);
		sealer->sealed = true;
	}
	dkim_buf_free(&aar);
	dkim_buf_free(&ams);
	return ret;
}

enum dkim_result
dkim_arc_sealer_result(const struct dkim_arc_sealer *sealer,
		       const struct dkim_arc_result **result_r,
		       bool *sealed_r)
{
	static const struct dkim_arc_result no_seal = { 0 };
	const struct dkim_arc_result *result = sealer != NULL ?
		&sealer->chain.result : &no_seal;

	if (result_r != NULL)
		*result_r = result;
	if (sealed_r != NULL)
		*sealed_r = sealer != NULL && sealer->sealed;
	return sealer != NULL && sealer->sealed ? sealer->cv : result->cv;
}

void
dkim_arc_sealer_free(struct dkim_arc_sealer **sealer_p)
{
	struct dkim_arc_sealer *sealer = *sealer_p;

	if (sealer == NULL)
		return;
	dkim_sign_request_clear(&sealer->ams);
	dkim_arc_chain_free(&sealer->chain);
	resinfos_free(&sealer->results);
	free(sealer->authres);
	free(sealer->authserv_id);
	free(sealer);
	*sealer_p = NULL;
}
