/* Signing (RFC 6376 §5): one pass over the message makes every requested
 * signature.  The body is canonicalized once per body canonicalization
 * and hashed once; each signature then hashes its own header selection.
 * A request makes a DKIM-Signature or, for an ARC seal (arc-sign.c), the
 * ARC-Message-Signature, which differs only in its tags.
 *
 * A field is written folded before it is hashed, with an empty b= value,
 * so what is hashed is exactly what is sent; the b= value is filled in
 * afterwards, and verifiers delete it before hashing (§3.7). */
#include "dkim-private.h"

#include <stdlib.h>
#include <string.h>

/* RFC 6376 §5.4.1, plus the fields a mail administrator expects signed
 * today: Message-ID, the MIME fields that decide how the body is shown,
 * and List-Unsubscribe-Post (RFC 8058), which bulk senders must sign. */
static const char *const default_headers[] = {
	"From", "Reply-To", "Subject", "Date", "To", "Cc",
	"Resent-Date", "Resent-From", "Resent-Sender", "Resent-To",
	"Resent-Cc", "In-Reply-To", "References", "List-Id", "List-Help",
	"List-Unsubscribe", "List-Unsubscribe-Post", "List-Subscribe",
	"List-Post", "List-Owner", "List-Archive", "Message-ID",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding", NULL
};
static const char *const default_oversign[] = { "From", NULL };

struct dkim_signer {
	struct dkim_headers headers;
	bool in_body;
	bool finished;
	struct dkim_body_canons body_canons;
	struct dkim_sign_request *requests;
	size_t request_count;
	struct dkim_arc_sealer *sealer;		/* NULL: no ARC seal */
	struct dkim_buf fields;
};

void
dkim_sign_config_init(struct dkim_sign_config *config)
{
	memset(config, 0, sizeof(*config));
	config->header_canon = DKIM_CANON_RELAXED;
	config->body_canon = DKIM_CANON_RELAXED;
}

dkim_signer *
dkim_signer_new(void)
{
	dkim_signer *signer = dkim_calloc(1, sizeof(*signer));

	/* A signer's input is our own user's message: the same cap as for
	 * verification keeps a runaway header from exhausting memory. */
	dkim_headers_init(&signer->headers, DKIM_DEFAULT_MAX_HEADER_BYTES);
	dkim_body_canons_init(&signer->body_canons);
	return signer;
}

/* Looks at most `count` names, stopping early at a NULL. */
static bool
name_listed(char *const *names, size_t count, const char *name)
{
	for (size_t i = 0; i < count && names[i] != NULL; i++) {
		if (dkim_mem_equal_icase(names[i], strlen(names[i]), name,
					 strlen(name)))
			return true;
	}
	return false;
}

/* Copies a NULL-terminated name list without duplicates; From is put
 * first when `need_from` and it is missing, as §5.4 requires it.  ARC
 * fields take their names in lowercase, the canonical form of the ARC
 * test suite (header names are case-insensitive). */
static char **
copy_names(const char *const *names, bool need_from, bool lowercase)
{
	size_t count = 0, n = 0;

	while (names[count] != NULL)
		count++;
	char **copy = dkim_calloc(count + 2, sizeof(*copy));
	if (need_from && !name_listed((char *const *)names, count, "From"))
		copy[n++] = dkim_strdup(lowercase ? "from" : "From");
	for (size_t i = 0; i < count; i++) {
		if (name_listed(copy, n, names[i]))
			continue;
		copy[n] = dkim_strdup(names[i]);
		if (lowercase)
			dkim_ascii_lowercase(copy[n]);
		n++;
	}
	return copy;
}

static void
free_names(char **names)
{
	for (size_t i = 0; names != NULL && names[i] != NULL; i++)
		free(names[i]);
	free(names);
}

static bool
names_are_valid(const char *const *names, struct dkim_error *error)
{
	for (size_t i = 0; names[i] != NULL; i++) {
		const char *name = names[i];
		bool valid = *name != '\0';

		for (const char *p = name; *p != '\0'; p++) {
			if (*p <= ' ' || *p > '~' || *p == ':')
				valid = false;
		}
		if (!valid) {
			dkim_error_set(error, "invalid header field name '%s'",
				       name);
			return false;
		}
	}
	return true;
}

int
dkim_sign_request_init(struct dkim_sign_request *req,
		       enum dkim_signature_kind kind,
		       const struct dkim_sign_config *config,
		       struct dkim_error *error)
{
	const char *const *headers = config->headers != NULL ?
		config->headers : default_headers;
	const char *const *oversign = config->oversign != NULL ?
		config->oversign : default_oversign;
	bool arc = kind != DKIM_SIG_DKIM;

	memset(req, 0, sizeof(*req));
	if (config->key == NULL) {
		dkim_error_set(error, "no signing key");
		return -1;
	}
	if (config->domain == NULL ||
	    !dkim_domain_is_valid(config->domain, strlen(config->domain))) {
		dkim_error_set(error, "invalid signing domain '%s'",
			       config->domain != NULL ? config->domain : "");
		return -1;
	}
	if (config->selector == NULL ||
	    !dkim_selector_is_valid(config->selector,
				    strlen(config->selector))) {
		dkim_error_set(error, "invalid selector '%s'",
			       config->selector != NULL ? config->selector : "");
		return -1;
	}
	if (config->identity != NULL) {
		const char *at = strrchr(config->identity, '@');
		if (at == NULL ||
		    !dkim_domain_is_within(at + 1, strlen(at + 1),
					   config->domain,
					   strlen(config->domain))) {
			dkim_error_set(error, "identity '%s' is not within "
				       "d=%s", config->identity, config->domain);
			return -1;
		}
	}
	if (!names_are_valid(headers, error) ||
	    !names_are_valid(oversign, error))
		return -1;

	req->kind = kind;
	req->domain = dkim_strdup(config->domain);
	req->selector = dkim_strdup(config->selector);
	req->identity = config->identity != NULL ?
		dkim_strdup(config->identity) : NULL;
	req->key = config->key;
	req->header_canon = config->header_canon;
	req->body_canon = config->body_canon;
	req->headers = copy_names(headers, true, arc);
	req->oversign = copy_names(oversign, false, arc);
	req->body_length = config->body_length;
	req->timestamp = config->timestamp != 0 ? config->timestamp :
		time(NULL);
	req->expire_secs = config->expire_secs;
	return 0;
}

void
dkim_sign_request_start(struct dkim_sign_request *req,
			struct dkim_body_canons *bcs)
{
	req->body = &bcs->by_canon[req->body_canon];
	req->body_hash = dkim_body_canons_hash(bcs, req->body_canon,
					       UINT64_MAX);
}

void
dkim_sign_request_clear(struct dkim_sign_request *req)
{
	free(req->domain);
	free(req->selector);
	free(req->identity);
	free_names(req->headers);
	free_names(req->oversign);
	memset(req, 0, sizeof(*req));
}

int
dkim_signer_add(dkim_signer *signer, const struct dkim_sign_config *config,
		struct dkim_error *error)
{
	struct dkim_sign_request req;

	if (signer->in_body || signer->headers.data.len > 0) {
		dkim_error_set(error, "signatures must be added before the "
			       "message is fed");
		return -1;
	}
	if (dkim_sign_request_init(&req, DKIM_SIG_DKIM, config, error) < 0)
		return -1;
	signer->requests = dkim_realloc(signer->requests,
		(signer->request_count + 1) * sizeof(*signer->requests));
	signer->requests[signer->request_count++] = req;
	return 0;
}

int
dkim_signer_add_arc_seal(dkim_signer *signer,
			 const struct dkim_arc_seal_config *config,
			 struct dkim_error *error)
{
	if (signer->in_body || signer->headers.data.len > 0) {
		dkim_error_set(error, "an ARC seal must be added before the "
			       "message is fed");
		return -1;
	}
	if (signer->sealer != NULL) {
		dkim_error_set(error, "a message gets one ARC set per hop");
		return -1;
	}
	signer->sealer = dkim_arc_sealer_new(config, error);
	return signer->sealer != NULL ? 0 : -1;
}

int
dkim_signer_set_arc_authres(dkim_signer *signer, const char *authres,
			    struct dkim_error *error)
{
	if (signer->sealer == NULL || signer->finished) {
		dkim_error_set(error, signer->sealer == NULL ?
			       "no ARC seal was asked for" :
			       "the signer has finished already");
		return -1;
	}
	return dkim_arc_sealer_set_authres(signer->sealer, &signer->headers,
					   authres, error);
}

static void
start_body(dkim_signer *signer)
{
	signer->in_body = true;
	for (size_t i = 0; i < signer->request_count; i++)
		dkim_sign_request_start(&signer->requests[i],
					&signer->body_canons);
	if (signer->sealer != NULL)
		dkim_arc_sealer_start(signer->sealer, &signer->headers,
				      &signer->body_canons);
}

void
dkim_signer_feed(dkim_signer *signer, const void *data, size_t size)
{
	if (signer->finished)
		return;
	if (!signer->in_body) {
		size_t used = dkim_headers_feed(&signer->headers, data, size);

		if (!signer->headers.complete)
			return;
		start_body(signer);
		data = (const char *)data + used;
		size -= used;
	}
	dkim_body_canons_feed(&signer->body_canons, data, size);
}

/* ---- writing and signing a field ---- */

/* How often a configured field is listed in h=: as often as it occurs,
 * bottom-up order being implied; an oversigned one once more, so that no
 * instance can be added unnoticed. */
static size_t
signed_times(const struct dkim_headers *headers,
	     const struct dkim_sign_request *req, const char *name)
{
	size_t times = dkim_headers_count_name(headers, name, strlen(name));

	return name_listed(req->oversign, SIZE_MAX, name) ? times + 1 : times;
}

/* The h= list, or NULL if it would be longer than verifiers accept
 * (DKIM_MAX_SIGNED_HEADERS): the message repeats a signed field too
 * often. */
static struct dkim_header_name *
signed_names(const struct dkim_headers *headers,
	     const struct dkim_sign_request *req, size_t *count_r,
	     struct dkim_error *error)
{
	size_t count = 0, alloc = 16;
	struct dkim_header_name *names = dkim_malloc(alloc * sizeof(*names));

	for (size_t i = 0; req->headers[i] != NULL; i++) {
		const char *name = req->headers[i];
		size_t times = signed_times(headers, req, name);

		if (count + times > DKIM_MAX_SIGNED_HEADERS) {
			for (i++; req->headers[i] != NULL; i++)
				times += signed_times(headers, req,
						      req->headers[i]);
			dkim_error_set(error, "h= would list %zu header "
				       "fields, more than the %u verifiers "
				       "accept: the message repeats signed "
				       "fields too often", count + times,
				       DKIM_MAX_SIGNED_HEADERS);
			free(names);
			return NULL;
		}
		for (; times > 0; times--) {
			if (count == alloc) {
				alloc *= 2;
				names = dkim_realloc(names,
						     alloc * sizeof(*names));
			}
			names[count].name = name;
			names[count].len = strlen(name);
			count++;
		}
	}
	*count_r = count;
	return names;
}

const char *
dkim_sign_algorithm_name(const dkim_privkey *key)
{
	return key->type == DKIM_KEY_ED25519 ? "ed25519-sha256" : "rsa-sha256";
}

static const char *
canon_name(enum dkim_canon canon)
{
	return canon == DKIM_CANON_RELAXED ? "relaxed" : "simple";
}

void
dkim_sign_b_slot(struct dkim_folder *folder, struct dkim_unsigned_field *field,
		 bool last, size_t line_limit)
{
	dkim_fold_tag(folder, "b=");
	field->b_pos = field->text.len;
	field->b_column = folder->column;
	field->b_width = line_limit;
	if (!last) {
		/* The tags after b= start on a new line, so the value can be
		 * put in without moving them; the ';' must still fit. */
		dkim_fold_append(folder, ";", 1, false);
		dkim_fold_break(folder);
		field->b_width--;
	}
}

int
dkim_sign_fill_b(struct dkim_unsigned_field *field, const dkim_privkey *key,
		 const unsigned char digest[DKIM_SHA256_LEN],
		 struct dkim_error *error)
{
	struct dkim_buf b64 = { 0 }, signed_text = { 0 };
	struct dkim_folder folder = { &signed_text, field->b_column };
	size_t sig_len;
	unsigned char *sig = dkim_privkey_sign(key, digest, &sig_len);

	if (sig == NULL) {
		dkim_error_set(error, "signing failed in the crypto library");
		return -1;
	}
	dkim_base64_encode(&b64, sig, sig_len);
	dkim_buf_append(&signed_text, field->text.data, field->b_pos);
	dkim_fold_base64(&folder, b64.data, b64.len, field->b_width);
	dkim_buf_append(&signed_text, field->text.data + field->b_pos,
			field->text.len - field->b_pos);
	dkim_buf_free(&field->text);
	field->text = signed_text;
	dkim_buf_free(&b64);
	free(sig);
	return 0;
}

static void
write_bh(struct dkim_folder *folder, const struct dkim_sign_request *req)
{
	struct dkim_buf tag = { 0 };

	dkim_buf_append_str(&tag, "bh=");
	dkim_base64_encode(&tag, req->body_hash->digest, DKIM_SHA256_LEN);
	dkim_buf_append_c(&tag, ';');
	dkim_fold_tag(folder, tag.data);
	dkim_buf_free(&tag);
}

/* RFC 6376 §3.5, in the order of its examples, b= last. */
static void
write_dkim_tags(struct dkim_folder *folder, struct dkim_unsigned_field *field,
		const struct dkim_sign_request *req,
		const struct dkim_header_name *names, size_t name_count)
{
	dkim_fold_start(folder, &field->text, "DKIM-Signature");
	dkim_fold_tag(folder, "v=1;");
	dkim_fold_tagf(folder, "a=%s;", dkim_sign_algorithm_name(req->key));
	dkim_fold_tagf(folder, "c=%s/%s;", canon_name(req->header_canon),
		       canon_name(req->body_canon));
	dkim_fold_tagf(folder, "d=%s;", req->domain);
	dkim_fold_tagf(folder, "s=%s;", req->selector);
	if (req->identity != NULL)
		dkim_fold_tagf(folder, "i=%s;", req->identity);
	dkim_fold_tagf(folder, "t=%lld;", (long long)req->timestamp);
	if (req->expire_secs != 0)
		dkim_fold_tagf(folder, "x=%lld;", (long long)req->timestamp +
			       (long long)req->expire_secs);
	if (req->body_length)
		dkim_fold_tagf(folder, "l=%llu;",
			       (unsigned long long)req->body->length);
	dkim_fold_header_list(folder, names, name_count);
	write_bh(folder, req);
	dkim_sign_b_slot(folder, field, true, DKIM_FOLD_WIDTH);
}

/* RFC 8617 §4.1.2, with the tags sorted by name: the canonical form the
 * ARC test suite assumes, so that seals are reproducible.  The ARC-Seal
 * signs this field in relaxed form, where a fold inside b= would count
 * as a space: so b= gets a line of its own and is folded only where
 * RFC 5322 requires it, for RSA keys of nearly 6,000 bits or more. */
static void
write_ams_tags(struct dkim_folder *folder, struct dkim_unsigned_field *field,
	       const struct dkim_sign_request *req,
	       const struct dkim_header_name *names, size_t name_count,
	       unsigned instance)
{
	dkim_fold_start(folder, &field->text, "ARC-Message-Signature");
	dkim_fold_tagf(folder, "a=%s;", dkim_sign_algorithm_name(req->key));
	dkim_fold_break(folder);
	dkim_sign_b_slot(folder, field, false, DKIM_LINE_LIMIT);
	write_bh(folder, req);
	dkim_fold_tagf(folder, "c=%s/%s;", canon_name(req->header_canon),
		       canon_name(req->body_canon));
	dkim_fold_tagf(folder, "d=%s;", req->domain);
	dkim_fold_header_list(folder, names, name_count);
	dkim_fold_tagf(folder, "i=%u;", instance);
	dkim_fold_tagf(folder, "s=%s;", req->selector);
	dkim_fold_tagf(folder, "t=%lld", (long long)req->timestamp);
}

int
dkim_sign_request_make(const struct dkim_sign_request *req,
		       struct dkim_headers *headers, unsigned instance,
		       struct dkim_buf *out, struct dkim_error *error)
{
	struct dkim_unsigned_field field = { .text = { 0 } };
	struct dkim_folder folder;
	unsigned char digest[DKIM_SHA256_LEN];
	size_t name_count;
	struct dkim_header_name *names = signed_names(headers, req,
						      &name_count, error);

	if (names == NULL)
		return -1;
	if (req->kind == DKIM_SIG_DKIM)
		write_dkim_tags(&folder, &field, req, names, name_count);
	else
		write_ams_tags(&folder, &field, req, names, name_count,
			       instance);
	dkim_hash_signed_headers(headers, req->header_canon, names, name_count,
				 field.text.data, field.text.len, field.b_pos,
				 field.b_pos, digest);
	int ret = dkim_sign_fill_b(&field, req->key, digest, error);
	if (ret == 0) {
		dkim_buf_append(out, field.text.data, field.text.len);
		dkim_buf_append_str(out, "\r\n");
	}
	dkim_buf_free(&field.text);
	free(names);
	return ret;
}

int
dkim_signer_finish(dkim_signer *signer, struct dkim_error *error)
{
	if (signer->finished) {
		dkim_error_set(error, "signer already finished");
		return -1;
	}
	signer->finished = true;
	if (!signer->in_body) {
		dkim_headers_finish(&signer->headers);
		start_body(signer);
	}
	dkim_body_canons_finish(&signer->body_canons);
	if (signer->headers.overflow != DKIM_REASON_NONE) {
		dkim_error_set(error, "%s", signer->headers.overflow_text);
		return -1;
	}
	if (signer->headers.data.len > 0 &&
	    dkim_is_wsp((unsigned char)signer->headers.data.data[0])) {
		/* It would continue the last field prepended to it, and
		 * break that field's signature. */
		dkim_error_set(error, "the header block starts with a folded "
			       "line: malformed message");
		return -1;
	}

	/* A DKIM signature without an author domain, or for one some
	 * readers see and others not, would lend d= to whatever a reader
	 * makes of the From field.  An ARC seal vouches for the chain, not
	 * for the author: it needs only the one From field RFC 5322 asks
	 * for. */
	char *author;
	enum dkim_author_status author_status =
		dkim_headers_author(&signer->headers, &author);
	free(author);
	if (signer->request_count > 0 ?
	    author_status != DKIM_AUTHOR_FOUND :
	    author_status == DKIM_AUTHOR_NO_FROM ||
	    author_status == DKIM_AUTHOR_MULTIPLE_FROM) {
		dkim_error_set(error, "no author domain (%s): refusing to "
			       "sign", dkim_author_status_text(author_status));
		return -1;
	}
	/* The ARC set goes on top: its seal is the last word of this hop. */
	if (signer->sealer != NULL &&
	    dkim_arc_sealer_finish(signer->sealer, &signer->headers,
				   &signer->fields, error) < 0)
		return -1;
	for (size_t i = 0; i < signer->request_count; i++) {
		if (dkim_sign_request_make(&signer->requests[i],
					   &signer->headers, 0,
					   &signer->fields, error) < 0)
			return -1;
	}
	return 0;
}

const char *
dkim_signer_fields(const dkim_signer *signer)
{
	return signer->fields.data != NULL ? signer->fields.data : "";
}

enum dkim_result
dkim_signer_arc(const dkim_signer *signer,
		const struct dkim_arc_result **result_r, bool *sealed_r)
{
	return dkim_arc_sealer_result(signer->sealer, result_r, sealed_r);
}

void
dkim_signer_free(dkim_signer **signer_p)
{
	dkim_signer *signer = *signer_p;

	if (signer == NULL)
		return;
	for (size_t i = 0; i < signer->request_count; i++)
		dkim_sign_request_clear(&signer->requests[i]);
	dkim_arc_sealer_free(&signer->sealer);
	dkim_body_canons_free(&signer->body_canons);
	dkim_headers_free(&signer->headers);
	dkim_buf_free(&signer->fields);
	free(signer->requests);
	free(signer);
	*signer_p = NULL;
}
