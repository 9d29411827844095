/* One message through the milter: see milter-message.h. */
#include "milter-message.h"
#include "dkim-util.h"
#include "milter-from.h"
#include "milter-keys.h"
#include "milter-log.h"
#include "milter-sign.h"
#include "milter-verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* An own key's DNS record, answered without DNS to recognize our own
 * signature (the submission plugin may have signed before relaying). */
struct own_record {
	char *qname;
	char *record;
};

struct milter_message {
	const struct milter_config *config;
	char *authserv_id, *login, *queue_id, *client;
	bool internal;

	/* the first recipient in ResignMailTo, and its entry's value */
	char *forward_to, *forward_keyname;

	enum milter_route route;
	bool route_decided;

	/* the header block as the signer sees it: without the fields this
	 * milter deletes */
	struct dkim_buf headers;
	bool headers_overflow;
	unsigned from_count;
	char *from_value;
	unsigned signature_count, authres_count;
	struct milter_removal *removals;
	size_t removal_count;

	dkim_resolver *resolver;	/* pooled: verifying and sealing */
	dkim_verifier *verifier;	/* the message as it arrived */
	struct milter_plan plan;
	bool holds_keys;
	dkim_signer *signer;
	/* our own signatures already on the message */
	dkim_resolver *own_resolver;
	dkim_verifier *own_check;
	struct own_record *own_records;
	size_t own_record_count;

	/* a verification that could not start: On-InternalError */
	bool verify_failed;
	/* decided at the end of the header, applied at the end */
	bool quarantine_unauthorized;
};

static void DKIM_ATTR_FORMAT(3, 4)
msg_log(const struct milter_message *msg, enum milter_log_level level,
	const char *fmt, ...)
{
	char text[1536];
	va_list args;

	va_start(args, fmt);
	vsnprintf(text, sizeof(text), fmt, args);
	va_end(args);
	milter_log(level, "%s: %s", msg->queue_id != NULL ? msg->queue_id :
		   "NOQUEUE", text);
}

static char *
shown_dup(const char *text)
{
	char shown[MILTER_SHOWN_MAX + 4];

	return text != NULL ? dkim_strdup(milter_shown(shown, text)) : NULL;
}

struct milter_message *
milter_message_new(const struct milter_message_params *params)
{
	struct milter_message *msg = dkim_calloc(1, sizeof(*msg));

	msg->config = params->config;
	msg->authserv_id = dkim_strdup(params->authserv_id);
	msg->login = params->login != NULL && params->login[0] != '\0' ?
		dkim_strdup(params->login) : NULL;
	msg->queue_id = shown_dup(params->queue_id);
	msg->client = shown_dup(params->client);
	msg->internal = params->internal;
	return msg;
}

void
milter_message_set_queue_id(struct milter_message *msg, const char *queue_id)
{
	if (msg->queue_id == NULL && queue_id != NULL)
		msg->queue_id = shown_dup(queue_id);
}

void
milter_message_free(struct milter_message **_msg)
{
	struct milter_message *msg = *_msg;

	if (msg == NULL)
		return;
	*_msg = NULL;
	dkim_signer_free(&msg->signer);
	dkim_verifier_free(&msg->verifier);
	dkim_verifier_free(&msg->own_check);
	dkim_resolver_free(&msg->own_resolver);
	milter_resolver_put(&msg->resolver);
	milter_plan_free(&msg->plan);
	/* after the signer, the last user of the keys */
	if (msg->holds_keys)
		milter_keys_end();
	for (size_t i = 0; i < msg->own_record_count; i++) {
		free(msg->own_records[i].qname);
		free(msg->own_records[i].record);
	}
	free(msg->own_records);
	free(msg->removals);
	dkim_buf_free(&msg->headers);
	free(msg->from_value);
	free(msg->forward_to);
	free(msg->forward_keyname);
	free(msg->authserv_id);
	free(msg->login);
	free(msg->queue_id);
	free(msg->client);
	free(msg);
}

void
milter_changes_free(struct milter_changes *changes)
{
	for (size_t i = 0; i < changes->insertion_count; i++) {
		free(changes->insertions[i].name);
		free(changes->insertions[i].value);
	}
	free(changes->insertions);
	free(changes->removals);
	memset(changes, 0, sizeof(*changes));
}

/* ---- the envelope and the header ---- */

void
milter_message_recipient(struct milter_message *msg, const char *address)
{
	const struct milter_dataset *set = msg->config->resign_mail_to;
	const struct milter_dataset_entry *entry;

	if (set == NULL || msg->forward_to != NULL)
		return;
	size_t len = strlen(address);
	if (len >= 2 && address[0] == '<' && address[len - 1] == '>') {
		address++;
		len -= 2;
	}
	char *plain = dkim_strndup(address, len);
	if ((entry = milter_dataset_find_address(set, plain)) != NULL) {
		msg->forward_to = plain;
		msg->forward_keyname = entry->value != NULL ?
			dkim_strdup(entry->value) : NULL;
	} else {
		free(plain);
	}
}

/* name ":" value CRLF, with the value's line breaks as CRLF. */
static void
append_field(struct dkim_buf *buf, const char *name, const char *value,
	     bool leading_space)
{
	dkim_buf_append_str(buf, name);
	dkim_buf_append_c(buf, ':');
	if (!leading_space)
		dkim_buf_append_c(buf, ' ');
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '\n' && (p == value || p[-1] != '\r'))
			dkim_buf_append_c(buf, '\r');
		dkim_buf_append_c(buf, *p);
	}
	dkim_buf_append(buf, "\r\n", 2);
}

static void
add_removal(struct milter_message *msg, const char *name, unsigned index)
{
	msg->removals = dkim_realloc(msg->removals,
		(msg->removal_count + 1) * sizeof(*msg->removals));
	msg->removals[msg->removal_count++] =
		(struct milter_removal){ .name = name, .index = index };
}

static void
start_verifying(struct milter_message *msg)
{
	struct dkim_error error;

	msg->resolver = milter_resolver_get(&error);
	if (msg->resolver == NULL) {
		msg_log(msg, MILTER_LOG_ERROR, "cannot verify: %s",
			error.text);
		msg->verify_failed = true;
		return;
	}
	msg->verifier = milter_verifier_new(msg->config, msg->resolver);
}

/* Everything the route depends on is known once the header starts: the
 * client, the login and the recipients. */
static void
decide_route(struct milter_message *msg)
{
	if (msg->route_decided)
		return;
	msg->route_decided = true;
	msg->route = milter_route(msg->config, msg->login != NULL,
				  msg->internal, msg->forward_to != NULL);
	if (msg->route == MILTER_ROUTE_VERIFY ||
	    msg->route == MILTER_ROUTE_FORWARD)
		start_verifying(msg);
}

void
milter_message_header(struct milter_message *msg, const char *name,
		      const char *value, bool leading_space)
{
	const struct milter_config *config = msg->config;
	bool keep = true;

	decide_route(msg);
	if (msg->route == MILTER_ROUTE_NONE)
		return;
	if (strcasecmp(name, "From") == 0 && msg->from_count++ == 0)
		msg->from_value = dkim_strdup(value);
	if (strcasecmp(name, "DKIM-Signature") == 0) {
		msg->signature_count++;
		if (config->remove_old_signatures &&
		    msg->route == MILTER_ROUTE_SIGN) {
			add_removal(msg, "DKIM-Signature",
				    msg->signature_count);
			keep = false;
		}
	}
	if (strcasecmp(name, "Authentication-Results") == 0) {
		msg->authres_count++;
		/* RFC 8601 §5: at the border, ours can only be forged. */
		if (msg->route != MILTER_ROUTE_SIGN &&
		    dkim_authres_is_ours(value, strlen(value),
					 msg->authserv_id)) {
			add_removal(msg, "Authentication-Results",
				    msg->authres_count);
			keep = false;
		}
	}

	struct dkim_buf field = { 0 };
	append_field(&field, name, value, leading_space);
	if (msg->verifier != NULL)
		dkim_verifier_feed(msg->verifier, field.data, field.len);
	if (keep && msg->route != MILTER_ROUTE_VERIFY &&
	    !msg->headers_overflow) {
		if (msg->headers.len + field.len >
		    config->verify_config.max_header_bytes)
			msg->headers_overflow = true;
		else
			dkim_buf_append(&msg->headers, field.data, field.len);
	}
	dkim_buf_free(&field);
}

/* ---- the end of the header: what to do ---- */

static enum milter_status
reply_with(struct milter_reply *reply, enum milter_action action,
	   const char *reject_xcode, const char *tempfail_xcode,
	   const char *text)
{
	reply->text = text;
	if (action == MILTER_ACTION_REJECT) {
		reply->code = "550";
		reply->xcode = reject_xcode;
		return MILTER_STATUS_REJECT;
	}
	reply->code = "451";
	reply->xcode = tempfail_xcode;
	return MILTER_STATUS_TEMPFAIL;
}

/* Who sent it, for the log: "login=NAME" or "client=NAME [ADDR]". */
static const char *
log_sender(const struct milter_message *msg, char *buf, size_t size)
{
	char shown[MILTER_SHOWN_MAX + 4];

	if (msg->login != NULL)
		snprintf(buf, size, "login=%s", milter_shown(shown, msg->login));
	else
		snprintf(buf, size, "client=%s", msg->client != NULL ?
			 msg->client : "?");
	return buf;
}

/* The single From address, or NULL and why not (problem_r). */
static char *
message_from(const struct milter_message *msg, char *problem,
	     size_t problem_size)
{
	char shown[MILTER_SHOWN_MAX + 4];
	char *from = NULL;

	if (msg->headers_overflow)
		snprintf(problem, problem_size, "the header block is over %zu "
			 "bytes", msg->config->verify_config.max_header_bytes);
	else if (msg->from_count == 0)
		snprintf(problem, problem_size, "the message has no From "
			 "field");
	else if (msg->from_count > 1)
		snprintf(problem, problem_size, "the message has %u From "
			 "fields", msg->from_count);
	else if ((from = milter_from_address(msg->from_value,
					     strlen(msg->from_value))) == NULL)
		snprintf(problem, problem_size, "From is not one valid "
			 "mailbox: %s", milter_shown(shown, msg->from_value));
	return from;
}

static enum dkim_dns_status
own_lookup(void *context, const char *qname, struct dkim_dns_answer *answer)
{
	const struct milter_message *msg = context;

	for (size_t i = 0; i < msg->own_record_count; i++) {
		if (strcasecmp(msg->own_records[i].qname, qname) == 0) {
			dkim_dns_answer_add(answer, msg->own_records[i].record,
				strlen(msg->own_records[i].record));
			return DKIM_DNS_FOUND;
		}
	}
	return DKIM_DNS_NOT_FOUND;
}

/* A message that already carries DKIM-Signature fields may carry ours:
 * they are checked against our keys' public halves, without DNS. */
static void
start_own_check(struct milter_message *msg)
{
	const struct milter_keyset *keys = &msg->plan.keys;
	struct dkim_verify_config config = msg->config->verify_config;

	if (msg->signature_count == 0 || msg->config->remove_old_signatures)
		return;
	msg->own_records = dkim_calloc(keys->count, sizeof(*msg->own_records));
	for (size_t i = 0; i < keys->count; i++) {
		msg->own_records[i].qname = dkim_strdup_printf(
			"%s._domainkey.%s", keys->keys[i].selector,
			keys->keys[i].domain);
		msg->own_records[i].record =
			dkim_privkey_public_record(keys->keys[i].key);
	}
	msg->own_record_count = keys->count;
	msg->own_resolver = dkim_resolver_new_custom(own_lookup, msg);
	config.arc = false;
	msg->own_check = dkim_verifier_new(&config, msg->own_resolver);
}

static int
add_signatures(struct milter_message *msg, struct dkim_error *error)
{
	const struct milter_config *config = msg->config;
	struct dkim_sign_config sign;

	for (size_t i = 0; i < msg->plan.keys.count; i++) {
		const struct milter_key *key = &msg->plan.keys.keys[i];

		dkim_sign_config_init(&sign);
		sign.domain = key->domain;
		sign.selector = key->selector;
		sign.identity = key->identity;
		sign.key = key->key;
		sign.header_canon = config->header_canon;
		sign.body_canon = config->body_canon;
		sign.headers = (const char *const *)config->sign_headers;
		sign.oversign = (const char *const *)config->oversign_headers;
		sign.expire_secs = config->signature_ttl;
		if (dkim_signer_add(msg->signer, &sign, error) < 0)
			return -1;
	}
	if (msg->plan.seal != NULL) {
		struct dkim_arc_seal_config seal;

		dkim_arc_seal_config_init(&seal);
		seal.domain = msg->plan.seal->domain;
		seal.selector = msg->plan.seal->selector;
		seal.key = msg->plan.seal->key;
		/* this hop's results come with the verification, at the
		 * end: dkim_signer_set_arc_authres() */
		seal.authserv_id = msg->authserv_id;
		seal.headers = (const char *const *)config->sign_headers;
		seal.oversign = (const char *const *)config->oversign_headers;
		seal.resolver = msg->resolver;
		seal.verify = &config->verify_config;
		if (dkim_signer_add_arc_seal(msg->signer, &seal, error) < 0)
			return -1;
	}
	return 0;
}

/* A failure to sign: On-SignatureError. */
static enum milter_status
signing_failed(struct milter_message *msg, const char *why,
	       struct milter_reply *reply)
{
	enum milter_action action =
		msg->config->on[MILTER_ON_SIGNATURE_ERROR];
	char sender[MILTER_SHOWN_MAX + 64];

	msg_log(msg, MILTER_LOG_ERROR, "signing failed (%s): %s; %s",
		log_sender(msg, sender, sizeof(sender)), why,
		action == MILTER_ACTION_ACCEPT ? "passed on unsigned "
		"(On-SignatureError accept)" : "told the client to try again "
		"later (On-SignatureError tempfail)");
	if (action == MILTER_ACTION_ACCEPT)
		return msg->route == MILTER_ROUTE_FORWARD ?
			MILTER_STATUS_CONTINUE : MILTER_STATUS_ACCEPT;
	return reply_with(reply, action, "5.7.1", "4.3.0", "Message could "
			  "not be DKIM-signed, try again later");
}

static enum milter_status
start_signing(struct milter_message *msg, struct milter_reply *reply)
{
	struct dkim_error error;

	msg->signer = dkim_signer_new();
	if (add_signatures(msg, &error) < 0) {
		dkim_signer_free(&msg->signer);
		return signing_failed(msg, error.text, reply);
	}
	if (msg->route == MILTER_ROUTE_SIGN)
		start_own_check(msg);
	dkim_signer_feed(msg->signer, msg->headers.data, msg->headers.len);
	dkim_signer_feed(msg->signer, "\r\n", 2);
	if (msg->own_check != NULL) {
		dkim_verifier_feed(msg->own_check, msg->headers.data,
				   msg->headers.len);
		dkim_verifier_feed(msg->own_check, "\r\n", 2);
	}
	return MILTER_STATUS_CONTINUE;
}

static enum milter_status
unauthorized(struct milter_message *msg, struct milter_reply *reply)
{
	enum milter_action action =
		msg->config->on[MILTER_ON_UNAUTHORIZED_FROM];
	char sender[MILTER_SHOWN_MAX + 64];

	msg_log(msg, MILTER_LOG_INFO, "not signed (%s): %s; %s",
		log_sender(msg, sender, sizeof(sender)), msg->plan.reason,
		milter_action_name(action));
	switch (action) {
	case MILTER_ACTION_ACCEPT:
		return MILTER_STATUS_ACCEPT;
	case MILTER_ACTION_QUARANTINE:
		msg->quarantine_unauthorized = true;
		return MILTER_STATUS_CONTINUE;
	default:
		return reply_with(reply, action, "5.7.1", "4.7.1", "From "
				  "address not permitted for this user");
	}
}

static enum milter_status
plan_own(struct milter_message *msg, struct milter_reply *reply)
{
	char problem[512], sender[MILTER_SHOWN_MAX + 64];
	char *from = message_from(msg, problem, sizeof(problem));
	enum milter_plan_outcome outcome;

	milter_keys_begin();
	msg->holds_keys = true;
	outcome = milter_plan_own(msg->config, msg->login, from, problem,
				  &msg->plan);
	free(from);
	switch (outcome) {
	case MILTER_PLAN_SIGN:
		return start_signing(msg, reply);
	case MILTER_PLAN_UNAUTHORIZED:
		return unauthorized(msg, reply);
	case MILTER_PLAN_FAILED:
		return signing_failed(msg, msg->plan.reason, reply);
	case MILTER_PLAN_UNSIGNED:
		break;
	}
	if (msg->config->log_why)
		msg_log(msg, MILTER_LOG_INFO, "not signed (%s): %s",
			log_sender(msg, sender, sizeof(sender)),
			msg->plan.reason);
	return MILTER_STATUS_ACCEPT;
}

static enum milter_status
plan_forward(struct milter_message *msg, struct milter_reply *reply)
{
	char problem[512];
	char *from = message_from(msg, problem, sizeof(problem));
	enum milter_plan_outcome outcome;

	milter_keys_begin();
	msg->holds_keys = true;
	outcome = milter_plan_forward(msg->config, msg->forward_to,
				      msg->forward_keyname, from, problem,
				      &msg->plan);
	free(from);
	if (msg->resolver == NULL)
		outcome = MILTER_PLAN_UNSIGNED;	/* verify_failed decides */
	switch (outcome) {
	case MILTER_PLAN_SIGN:
		return start_signing(msg, reply);
	case MILTER_PLAN_FAILED:
		return signing_failed(msg, msg->plan.reason, reply);
	case MILTER_PLAN_UNAUTHORIZED:
	case MILTER_PLAN_UNSIGNED:
		break;
	}
	if (msg->config->log_why && msg->plan.reason[0] != '\0')
		msg_log(msg, MILTER_LOG_INFO, "forwarded mail not sealed: %s",
			msg->plan.reason);
	return MILTER_STATUS_CONTINUE;
}

enum milter_status
milter_message_end_of_header(struct milter_message *msg,
			     struct milter_reply *reply)
{
	decide_route(msg);
	if (msg->verifier != NULL)
		dkim_verifier_feed(msg->verifier, "\r\n", 2);
	switch (msg->route) {
	case MILTER_ROUTE_NONE:
		return MILTER_STATUS_ACCEPT;
	case MILTER_ROUTE_SIGN:
		return plan_own(msg, reply);
	case MILTER_ROUTE_FORWARD:
		return plan_forward(msg, reply);
	case MILTER_ROUTE_VERIFY:
		break;
	}
	return MILTER_STATUS_CONTINUE;
}

void
milter_message_body(struct milter_message *msg, const void *data,
		    size_t size)
{
	if (msg->verifier != NULL)
		dkim_verifier_feed(msg->verifier, data, size);
	if (msg->signer != NULL)
		dkim_signer_feed(msg->signer, data, size);
	if (msg->own_check != NULL)
		dkim_verifier_feed(msg->own_check, data, size);
}

/* ---- the end ---- */

static void
add_insertion(struct milter_changes *changes, const char *name,
	      const char *value, size_t value_len)
{
	struct dkim_buf text = { 0 };

	/* the milter protocol carries folded lines with LF alone */
	for (size_t i = 0; i < value_len; i++) {
		if (value[i] == '\r' && i + 1 < value_len &&
		    value[i + 1] == '\n')
			continue;
		dkim_buf_append_c(&text, value[i]);
	}
	changes->insertions = dkim_realloc(changes->insertions,
		(changes->insertion_count + 1) * sizeof(*changes->insertions));
	changes->insertions[changes->insertion_count++] =
		(struct milter_insertion){
			.name = dkim_strdup(name),
			.value = text.data != NULL ? dkim_buf_steal(&text) :
				dkim_strdup(""),
		};
}

static bool
already_signed(const struct milter_message *msg, const char *domain)
{
	size_t count;

	if (msg->own_check == NULL)
		return false;
	count = dkim_verifier_signature_count(msg->own_check);
	for (size_t i = 0; i < count; i++) {
		const struct dkim_signature_result *sig =
			dkim_verifier_signature(msg->own_check, i);
		if (sig->result == DKIM_RESULT_PASS && sig->domain != NULL &&
		    strcasecmp(sig->domain, domain) == 0)
			return true;
	}
	return false;
}

/* The signer's fields as insertions, leaving out a DKIM-Signature whose
 * d= the message carries a valid signature of ours for already.  Fills
 * `what` with what was added, for the log. */
static void
add_signer_fields(struct milter_message *msg, struct milter_changes *changes,
		  struct dkim_buf *what)
{
	const char *fields = dkim_signer_fields(msg->signer);
	size_t signature = 0;

	while (*fields != '\0') {
		const char *end = fields;
		while ((end = strstr(end, "\r\n")) != NULL &&
		       (end[2] == ' ' || end[2] == '\t'))
			end += 2;
		if (end == NULL)
			end = fields + strlen(fields);
		const char *colon = memchr(fields, ':', (size_t)(end - fields));
		if (colon == NULL)
			break;
		char *name = dkim_strndup(fields, (size_t)(colon - fields));

		if (strcasecmp(name, "DKIM-Signature") == 0) {
			const struct milter_key *key =
				&msg->plan.keys.keys[signature++];
			bool skip = already_signed(msg, key->domain);

			dkim_buf_printf(what, "%sd=%s s=%s a=%s%s",
				what->len > 0 ? ", " : "", key->domain,
				key->selector,
				dkim_privkey_type(key->key) == DKIM_KEY_ED25519 ?
				"ed25519-sha256" : "rsa-sha256",
				skip ? " (already signed, kept)" : "");
			if (!skip)
				add_insertion(changes, name, colon + 1,
					      (size_t)(end - colon - 1));
		} else {
			add_insertion(changes, name, colon + 1,
				      (size_t)(end - colon - 1));
		}
		free(name);
		fields = *end != '\0' ? end + 2 : end;
	}
}

static void
add_removals(const struct milter_message *msg, struct milter_changes *changes)
{
	changes->removals = dkim_calloc(msg->removal_count + 1,
					sizeof(*changes->removals));
	/* highest index of each name first */
	for (size_t i = msg->removal_count; i > 0; i--)
		changes->removals[changes->removal_count++] =
			msg->removals[i - 1];
}

static void
add_authres(struct milter_message *msg, struct milter_changes *changes)
{
	char *value = dkim_authres_value(msg->verifier, msg->authserv_id,
					 DKIM_AUTHRES_FOLD);
	char *spaced = dkim_strdup_printf(" %s", value);

	add_insertion(changes, "Authentication-Results", spaced,
		      strlen(spaced));
	free(spaced);
	free(value);
}

static enum milter_status
verdict_status(struct milter_message *msg, const struct milter_verdict *verdict,
	       struct milter_reply *reply)
{
	switch (verdict->action) {
	case MILTER_ACTION_ACCEPT:
		return MILTER_STATUS_CONTINUE;
	case MILTER_ACTION_QUARANTINE:
		snprintf(reply->quarantine, sizeof(reply->quarantine),
			 "DKIM: %s", verdict->summary);
		return MILTER_STATUS_CONTINUE;
	case MILTER_ACTION_REJECT:
		return reply_with(reply, verdict->action, "5.7.20", "4.7.20",
				  "No valid DKIM signature found");
	case MILTER_ACTION_TEMPFAIL:
		break;
	}
	if (verdict->on == MILTER_ON_DNS_ERROR)
		return reply_with(reply, verdict->action, "5.7.20", "4.4.3",
				  "DKIM key lookup failed, try again later");
	(void)msg;
	return reply_with(reply, verdict->action, "5.7.20", "4.7.20",
			  "DKIM verification failed, try again later");
}

static enum milter_status
internal_error(struct milter_message *msg, struct milter_reply *reply)
{
	enum milter_action action = msg->config->on[MILTER_ON_INTERNAL_ERROR];

	msg_log(msg, MILTER_LOG_ERROR, "not verified: internal error; %s "
		"(On-InternalError)", milter_action_name(action));
	if (action == MILTER_ACTION_ACCEPT)
		return MILTER_STATUS_CONTINUE;
	return reply_with(reply, action, "5.3.0", "4.3.0", "DKIM "
			  "verification failed, try again later");
}

static void
log_verdict(const struct milter_message *msg,
	    const struct milter_verdict *verdict)
{
	const struct milter_config *config = msg->config;
	bool refused = verdict->action != MILTER_ACTION_ACCEPT;

	if (config->syslog_success || refused)
		msg_log(msg, MILTER_LOG_INFO, "verified: %s%s%s",
			verdict->summary, refused ? ", " : "",
			refused ? milter_action_name(verdict->action) : "");
	if (!config->log_results)
		return;
	for (size_t i = 0; i < dkim_verifier_signature_count(msg->verifier);
	     i++) {
		const struct dkim_signature_result *sig =
			dkim_verifier_signature(msg->verifier, i);
		msg_log(msg, MILTER_LOG_INFO, "signature %zu: %s d=%s s=%s%s%s",
			i + 1, dkim_result_name(sig->result),
			sig->domain != NULL ? sig->domain : "?",
			sig->selector != NULL ? sig->selector : "?",
			sig->explanation != NULL ? ": " : "",
			sig->explanation != NULL ? sig->explanation : "");
	}
}

static enum milter_status
end_verify(struct milter_message *msg, struct milter_changes *changes,
	   struct milter_reply *reply, struct milter_verdict *verdict)
{
	dkim_verifier_finish(msg->verifier);
	milter_verdict_get(msg->config, msg->verifier, verdict);
	if (msg->config->verify)
		add_authres(msg, changes);
	log_verdict(msg, verdict);
	return verdict_status(msg, verdict, reply);
}

static enum milter_status
end_signing(struct milter_message *msg, struct milter_changes *changes,
	    struct milter_reply *reply)
{
	const struct dkim_arc_result *arc;
	struct dkim_buf what = { 0 };
	struct dkim_error error;
	char shown[MILTER_SHOWN_MAX + 4], sender[MILTER_SHOWN_MAX + 64];
	bool sealed = false;
	int ret = 0;

	if (msg->verifier != NULL && msg->plan.seal != NULL) {
		char *authres = dkim_authres_value(msg->verifier,
						   msg->authserv_id, 0);
		ret = dkim_signer_set_arc_authres(msg->signer, authres, &error);
		free(authres);
	}
	if (msg->own_check != NULL)
		dkim_verifier_finish(msg->own_check);
	if (ret < 0 || dkim_signer_finish(msg->signer, &error) < 0) {
		enum milter_status status =
			signing_failed(msg, error.text, reply);
		return status == MILTER_STATUS_ACCEPT ?
			MILTER_STATUS_CONTINUE : status;
	}
	add_signer_fields(msg, changes, &what);
	if (msg->plan.seal != NULL) {
		enum dkim_result cv = dkim_signer_arc(msg->signer, &arc,
						      &sealed);
		dkim_buf_printf(&what, "%sARC %s d=%s s=%s cv=%s",
				what.len > 0 ? ", " : "",
				sealed ? "sealed" : "not sealed (the chain "
				"had ended)", msg->plan.seal->domain,
				msg->plan.seal->selector, dkim_result_name(cv));
	}
	if (msg->config->syslog_success)
		msg_log(msg, MILTER_LOG_INFO, "%s (%s%s%s): %s%s%s",
			msg->route == MILTER_ROUTE_FORWARD ? "forwarded" :
			"signed", log_sender(msg, sender, sizeof(sender)),
			msg->forward_to != NULL ? ", to=" : "",
			msg->forward_to != NULL ?
			milter_shown(shown, msg->forward_to) : "",
			what.data != NULL ? what.data : "",
			msg->plan.reason[0] != '\0' ? "; " : "",
			msg->plan.reason);
	dkim_buf_free(&what);
	return MILTER_STATUS_CONTINUE;
}

enum milter_status
milter_message_end(struct milter_message *msg, struct milter_changes *changes,
		   struct milter_reply *reply)
{
	struct milter_verdict verdict = { .action = MILTER_ACTION_ACCEPT };
	enum milter_status status = MILTER_STATUS_CONTINUE;

	memset(changes, 0, sizeof(*changes));
	reply->quarantine[0] = '\0';
	if (msg->quarantine_unauthorized)
		snprintf(reply->quarantine, sizeof(reply->quarantine),
			 "DKIM: From address not permitted for this user");
	if (msg->verify_failed)
		return internal_error(msg, reply);
	if (msg->verifier != NULL) {
		status = end_verify(msg, changes, reply, &verdict);
		if (status != MILTER_STATUS_CONTINUE)
			return status;
	}
	if (msg->signer != NULL) {
		/* the ARC set and our signatures above our A-R field */
		struct milter_changes signed_part = { 0 };

		status = end_signing(msg, &signed_part, reply);
		for (size_t i = 0; i < changes->insertion_count; i++)
			add_insertion(&signed_part,
				      changes->insertions[i].name,
				      changes->insertions[i].value,
				      strlen(changes->insertions[i].value));
		milter_changes_free(changes);
		*changes = signed_part;
		if (status != MILTER_STATUS_CONTINUE)
			return status;
	}
	add_removals(msg, changes);
	return status;
}
