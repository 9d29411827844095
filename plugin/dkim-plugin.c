/* lib95_dkim_plugin: DKIM verification at delivery (dovecot-lda and LMTP).

   The deliver hook verifies the message once per LMTP transaction (or LDA
   run), removes Authentication-Results fields that claim to come from our
   authserv-id, prepends our own, and publishes the result for the Sieve
   extension before calling the next hook (Sieve's).  Nothing here ever
   makes a delivery fail: every DKIM problem ends up as a result in the
   header and a log line. */

#include "lib.h"
#include "array.h"
#include "str.h"
#include "hostpid.h"
#include "mail-storage.h"
#include "mail-user.h"
#include "mail-deliver.h"
#include "lda-settings.h"
#include "edit-mail.h"
#include "dkim-plugin.h"

#define AUTHRES_FIELD "Authentication-Results"

/* One verification of the current transaction's message.  Recipients whose
   settings verify differently (e.g. per-user dkim_min_key_bits) each get
   their own. */
struct dkim_transaction_result {
	const char *verification_key;	/* dkim_settings_verification_key() */
	dkim_verifier *verifier;	/* NULL if the message was unreadable */
	struct dkim_summary *summary;
};

/* LMTP calls the deliver hook once per recipient with the same message:
   verifications are kept until the next transaction starts.  Keyed by the
   transaction id, never by a pointer (a new transaction may get the same
   addresses as the last one). */
static struct {
	char *id;
	pool_t pool;
	ARRAY(struct dkim_transaction_result) results;
} dkim_transaction;

static struct dkim_resolver_set *dkim_resolvers;
static deliver_mail_func_t *dkim_next_deliver_mail;

/* What dkim_plugin_delivery_summary() returns while the next hook runs. */
static const struct mail *dkim_published_mail;
static const struct dkim_summary *dkim_published_summary;

const char *dkim_plugin_version = DOVECOT_ABI_VERSION;
const char dkim_plugin_binary_dependency[] = "lda lmtp";

const struct dkim_summary *
dkim_plugin_delivery_summary(const struct mail *mail)
{
	return mail == dkim_published_mail ? dkim_published_summary : NULL;
}

static const char *user_setting(void *context, const char *name)
{
	struct mail_user *user = context;

	return mail_user_plugin_getenv(user, name);
}

static void transaction_reset(const char *id)
{
	struct dkim_transaction_result *result;

	array_foreach_modifiable(&dkim_transaction.results, result) {
		if (result->verifier != NULL)
			dkim_verifier_free(&result->verifier);
	}
	array_clear(&dkim_transaction.results);
	p_clear(dkim_transaction.pool);
	i_free(dkim_transaction.id);
	dkim_transaction.id = i_strdup(id);
}

/* smtp-server sets transaction_id on an ancestor of the delivery event, the
   same for all recipients; dovecot-lda has none (and delivers one message
   per process). */
static const char *transaction_id(struct mail_deliver_context *ctx)
{
	const char *id =
		event_find_field_recursive_str(ctx->event, "transaction_id");

	return id != NULL ? id : ctx->session_id;
}

static const struct dkim_transaction_result *
transaction_verify(struct mail_deliver_context *ctx,
		   const struct dkim_settings *set, struct event *event)
{
	const char *id = transaction_id(ctx);
	const char *key = dkim_settings_verification_key(set);
	struct dkim_transaction_result *result;
	dkim_resolver *resolver;

	if (id == NULL || null_strcmp(id, dkim_transaction.id) != 0)
		transaction_reset(id);
	else {
		array_foreach_modifiable(&dkim_transaction.results, result) {
			if (strcmp(result->verification_key, key) == 0) {
				e_debug(event, "Using the verification done "
					"for an earlier recipient: %s",
					dkim_result_name(
						result->summary->verdict));
				return result;
			}
		}
	}

	result = array_append_space(&dkim_transaction.results);
	result->verification_key = p_strdup(dkim_transaction.pool, key);
	resolver = dkim_resolver_set_get(dkim_resolvers, &set->dns, event);
	result->summary = dkim_verify_mail(ctx->src_mail, set, resolver,
					   dkim_transaction.pool, event,
					   &result->verifier);
	return result;
}

static const char *default_authserv_id(struct mail_deliver_context *ctx)
{
	/* lda-settings fills an empty hostname with my_hostdomain() */
	return ctx->set->hostname != NULL && *ctx->set->hostname != '\0' ?
		ctx->set->hostname : my_hostdomain();
}

static const char *
authres_value(const dkim_verifier *verifier, const char *authserv_id)
{
	char *value = dkim_authres_value(verifier, authserv_id, 0);
	const char *copy = t_strdup(value);

	free(value);
	return copy;
}

/* Header values come back folded differently from how they were added:
   compare with each whitespace run (folding included) as one space. */
static const char *whitespace_collapsed(const char *value)
{
	string_t *str = t_str_new(strlen(value));
	bool in_space = FALSE;

	for (const char *p = value; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			in_space = TRUE;
			continue;
		}
		if (in_space && str_len(str) > 0)
			str_append_c(str, ' ');
		in_space = FALSE;
		str_append_c(str, *p);
	}
	return str_c(str);
}

/* TRUE when the mail already carries our field as its first and only
   Authentication-Results with our authserv-id.  LMTP hands later recipients
   the copy stored for the first one; storing that as it is keeps Dovecot's
   hard links between the copies. */
static bool
mail_carries_authres(struct mail *mail, const char *authserv_id,
		     const char *authres)
{
	const char *const *values;
	const char *ours = whitespace_collapsed(authres);

	if (mail_get_headers(mail, AUTHRES_FIELD, &values) <= 0)
		return FALSE;
	if (strcmp(whitespace_collapsed(values[0]), ours) != 0)
		return FALSE;
	for (unsigned int i = 1; values[i] != NULL; i++) {
		if (dkim_authres_is_ours(values[i], strlen(values[i]),
					 authserv_id))
			return FALSE;
	}
	return TRUE;
}

/* RFC 8601 §5: fields with our authserv-id that arrive with the message are
   forgeries (or stale); remove them all.  Returns -1 if the header could not
   be parsed. */
static int
strip_our_authres(struct edit_mail *edmail, const char *authserv_id,
		  struct event *event)
{
	struct edit_mail_header_iter *iter;
	unsigned int removed = 0;
	bool more = TRUE;
	int ret;

	ret = edit_mail_headers_iterate_init(edmail, AUTHRES_FIELD, FALSE,
					     &iter);
	if (ret <= 0)
		return ret;
	while (more) T_BEGIN {
		const char *value;

		edit_mail_headers_iterate_get(iter, &value);
		if (dkim_authres_is_ours(value, strlen(value), authserv_id)) {
			more = edit_mail_headers_iterate_remove(iter);
			removed++;
		} else {
			more = edit_mail_headers_iterate_next(iter);
		}
	} T_END;
	edit_mail_headers_iterate_deinit(&iter);
	if (removed > 0) {
		e_info(event, "Removed %u " AUTHRES_FIELD " field(s) "
		       "claiming our authserv-id %s", removed, authserv_id);
	}
	return 0;
}

/* Returns the message as it should be stored: a wrapper with our field on
   top and forged ones removed, or NULL to store mail unchanged. */
static struct edit_mail *
edit_authres(struct mail *mail, const char *authserv_id, const char *authres,
	     struct event *event)
{
	struct edit_mail *edmail;

	if (authres != NULL &&
	    mail_carries_authres(mail, authserv_id, authres)) {
		e_debug(event, "The message already carries our "
			AUTHRES_FIELD " field");
		return NULL;
	}
	edmail = edit_mail_wrap(mail);
	if (edmail == NULL) {
		e_error(event, "Cannot edit the message; storing it without "
			"our " AUTHRES_FIELD " field");
		return NULL;
	}
	if (strip_our_authres(edmail, authserv_id, event) < 0) {
		e_error(event, "Cannot parse the message header; storing it "
			"without our " AUTHRES_FIELD " field");
		edit_mail_unwrap(&edmail);
		return NULL;
	}
	if (authres != NULL)
		edit_mail_header_add(edmail, AUTHRES_FIELD, authres, FALSE);
	return edmail;
}

/* Verifies (or reuses the transaction's verification) and prepares the
   message to store.  Returns the edited message, or NULL to store the
   original; *summary_r is NULL when verification is off for this user. */
static struct edit_mail *
deliver_prepare(struct mail_deliver_context *ctx,
		const struct dkim_summary **summary_r)
{
	const struct dkim_transaction_result *result;
	struct dkim_settings set;
	struct edit_mail *edmail = NULL;
	const char *authserv_id, *authres = NULL;
	struct event *event = dkim_event_create(ctx->event);

	/* the delivery event does not inherit the user's mail_debug */
	event_set_forced_debug(event, ctx->rcpt_user->mail_debug);
	*summary_r = NULL;
	dkim_settings_read(&set, user_setting, ctx->rcpt_user, event);
	if (!set.verify) {
		e_debug(event, "Verification disabled (dkim_verify = no)");
		event_unref(&event);
		return NULL;
	}
	authserv_id = set.authserv_id != NULL ? set.authserv_id :
		default_authserv_id(ctx);

	result = transaction_verify(ctx, &set, event);
	*summary_r = result->summary;
	event_add_str(ctx->event, "dkim_result",
		      dkim_result_name(result->summary->verdict));
	if (result->verifier != NULL)
		authres = authres_value(result->verifier, authserv_id);
	edmail = edit_authres(ctx->src_mail, authserv_id, authres, event);
	event_unref(&event);
	return edmail;
}

/* mail_deliver_is_tempfailed() is not exported. */
static bool
deliver_is_tempfailed(struct mail_deliver_context *ctx,
		      struct mail_storage *storage)
{
	enum mail_error error;

	if (ctx->tempfail_error != NULL)
		return TRUE;
	if (storage == NULL)
		return FALSE;
	(void)mail_storage_get_last_error(storage, &error);
	return error == MAIL_ERROR_TEMP;
}

static int
dkim_deliver_mail(struct mail_deliver_context *ctx,
		  struct mail_storage **storage_r)
{
	struct mail *original_mail = ctx->src_mail;
	const struct dkim_summary *summary;
	struct edit_mail *edmail;
	int ret;

	*storage_r = NULL;
	T_BEGIN {
		edmail = deliver_prepare(ctx, &summary);
	} T_END;
	if (edmail != NULL)
		ctx->src_mail = edit_mail_get_mail(edmail);

	dkim_published_mail = ctx->src_mail;
	dkim_published_summary = summary;
	ret = dkim_next_deliver_mail == NULL ? 0 :
		dkim_next_deliver_mail(ctx, storage_r);
	dkim_published_mail = NULL;
	dkim_published_summary = NULL;

	if (edmail == NULL)
		return ret;
	/* After we return, mail_do_deliver() would store ctx->src_mail in the
	   default mailbox, and by then it is the original message again:
	   store the edited one now, as mail_do_deliver() would. */
	if (ret <= 0 && !ctx->saved_mail && !ctx->tried_default_save &&
	    !deliver_is_tempfailed(ctx, *storage_r)) {
		if (mail_deliver_save(ctx, ctx->rcpt_default_mailbox, 0, NULL,
				      storage_r) == 0)
			ret = 1;
	}
	ctx->src_mail = original_mail;
	edit_mail_unwrap(&edmail);
	return ret;
}

void dkim_plugin_init(struct module *module ATTR_UNUSED)
{
	dkim_resolvers = dkim_resolver_set_init();
	dkim_transaction.pool = pool_alloconly_create("dkim transaction", 4096);
	i_array_init(&dkim_transaction.results, 2);
	dkim_next_deliver_mail = mail_deliver_hook_set(dkim_deliver_mail);
}

void dkim_plugin_deinit(void)
{
	mail_deliver_hook_set(dkim_next_deliver_mail);
	transaction_reset(NULL);
	array_free(&dkim_transaction.results);
	pool_unref(&dkim_transaction.pool);
	dkim_resolver_set_deinit(&dkim_resolvers);
}
