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
#include "istream.h"
#include "mail-storage.h"
#include "mail-user.h"
#include "mail-deliver.h"
#include "lda-settings.h"
#include "istream-concat.h"
#include "istream-header-filter.h"
#include "message-header-parser.h"
#include "message-size.h"
#include "raw-storage.h"
#include "smtp-address.h"
#include "dkim-dovecot-version.h"
#include "dkim-plugin.h"

#define AUTHRES_FIELD "Authentication-Results"

/* One verification of the current transaction's message.  Recipients whose
   settings verify differently (e.g. per-user dkim_min_key_bits) each get
   their own. */
struct dkim_transaction_result {
	const char *verification_key;	/* dkim_verify_settings_key() */
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
		   const struct dkim_verify_settings *set, struct event *event)
{
	const char *id = transaction_id(ctx);
	const char *key = dkim_verify_settings_key(set);
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

/* The complete field value, folded as a header field is written, with the
   message's own line ending. */
static const char *
authres_folded(const dkim_verifier *verifier, const char *authserv_id,
	       bool crlf)
{
	char *value = dkim_authres_value(verifier, authserv_id,
					 DKIM_AUTHRES_FOLD);
	string_t *str = t_str_new(strlen(value) + 64);

	for (const char *p = value; *p != '\0'; p++) {
		if (*p != '\r' || crlf)
			str_append_c(str, *p);
	}
	free(value);
	return str_c(str);
}

/* Header values come back folded differently from how they were written:
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

/* The copy of the message that is stored for a recipient: our field on top
   of the original, without the fields that claim our authserv-id.  A raw
   mail over a concatenated stream, so nothing is copied or parsed twice. */
struct dkim_stored_mail {
	pool_t pool;
	struct mailbox *box;
	struct mailbox_transaction_context *trans;
	struct mail *mail;

	/* Per Authentication-Results field of the original, in order:
	   whether to drop it.  Read by the header filter. */
	ARRAY(bool) drop;
	unsigned int authres_seen;
};

/* One raw mail user per process for the stored copies, as LMTP keeps one
   per client: creating a mail user for every message would cost more than
   verifying it. */
static struct mail_user *dkim_raw_user;

/* RFC 8601 §5: fields with our authserv-id that arrive with the message are
   forgeries (or stale).  Decides for each Authentication-Results field of
   mail whether to drop it, and counts those in *forged_r.  Returns why mail
   can be stored as it is, or NULL when it must be changed. */
static const char *
authres_plan(struct dkim_stored_mail *stored, struct mail *mail,
	     const char *authserv_id, const char *authres,
	     unsigned int *forged_r)
{
	static const char *const no_values[] = { NULL };
	const char *const *values;
	unsigned int ours = 0;

	/* mail_get_headers() and the header filter parse alike, so the
	   filter's n-th field is the n-th value here */
	if (mail_get_headers(mail, AUTHRES_FIELD, &values) < 0)
		values = no_values;
	for (unsigned int i = 0; values[i] != NULL; i++) {
		const char *value = t_str_replace(
			t_str_replace(values[i], '\r', ' '), '\n', ' ');
		bool is_ours = dkim_authres_is_ours(value, strlen(value),
						    authserv_id);

		array_push_back(&stored->drop, &is_ours);
		if (is_ours)
			ours++;
	}
	*forged_r = ours;
	if (authres == NULL)
		return ours == 0 ? "no field to add or remove" : NULL;
	/* LMTP hands later recipients the copy stored for the first one;
	   storing that as it is keeps Dovecot's hard links between copies. */
	if (ours == 1 && *array_idx(&stored->drop, 0) &&
	    strcmp(whitespace_collapsed(values[0]),
		   whitespace_collapsed(authres)) == 0)
		return "it already carries our field";
	return NULL;
}

static void
forged_authres_filter(struct header_filter_istream *input ATTR_UNUSED,
		      struct message_header_line *hdr, bool *matched,
		      struct dkim_stored_mail *stored)
{
	/* continuation lines follow their first line's decision */
	if (hdr == NULL || hdr->eoh || hdr->continued ||
	    strcasecmp(hdr->name, AUTHRES_FIELD) != 0)
		return;
	if (stored->authres_seen < array_count(&stored->drop) &&
	    *array_idx(&stored->drop, stored->authres_seen))
		*matched = TRUE;
	stored->authres_seen++;
}

static struct istream *
stored_stream_create(struct dkim_stored_mail *stored, struct istream *original,
		     const char *field)
{
	struct istream *inputs[3], *input;

	/* the original stream belongs to the mail: read a view of it */
	input = i_stream_create_limit(original, UOFF_T_MAX);
	if (array_count(&stored->drop) > 0) {
		struct istream *filtered = i_stream_create_header_filter(
			input, HEADER_FILTER_EXCLUDE |
			HEADER_FILTER_CRLF_PRESERVE, NULL, 0,
			forged_authres_filter, stored);

		i_stream_unref(&input);
		input = filtered;
	}
	inputs[0] = i_stream_create_copy_from_data(field, strlen(field));
	inputs[1] = input;
	inputs[2] = NULL;
	input = i_stream_create_concat(inputs);
	i_stream_set_name(input, "dkim-stored-mail");
	i_stream_unref(&inputs[0]);
	i_stream_unref(&inputs[1]);
	return input;
}

static void stored_mail_free(struct dkim_stored_mail **_stored)
{
	struct dkim_stored_mail *stored = *_stored;

	*_stored = NULL;
	if (stored->mail != NULL) {
		mail_free(&stored->mail);
		mailbox_transaction_rollback(&stored->trans);
	}
	if (stored->box != NULL)
		mailbox_free(&stored->box);
	pool_unref(&stored->pool);
}

/* Returns the copy to store for this recipient, or NULL to store src as it
   is (also when something failed: logged, and the message is delivered
   without our field). */
static struct dkim_stored_mail *
stored_mail_create(struct mail_deliver_context *ctx,
		   const dkim_verifier *verifier, const char *authserv_id,
		   struct event *event)
{
	struct mail *src = ctx->src_mail;
	struct message_size hdr_size, body_size;
	struct dkim_stored_mail *stored;
	struct istream *original, *input;
	const char *field = "", *authres = NULL, *unchanged;
	unsigned int forged;
	time_t received_date;
	bool crlf;
	pool_t pool;

	if (mail_get_stream(src, &hdr_size, &body_size, &original) < 0) {
		e_error(event, "Cannot read the message (%s); storing it "
			"without our " AUTHRES_FIELD " field",
			mailbox_get_last_internal_error(src->box, NULL));
		return NULL;
	}
	/* Write our field with the message's line endings, judged as
	   Pigeonhole's edit-mail does: CRLF unless most lines end in LF. */
	crlf = (hdr_size.virtual_size + body_size.virtual_size) -
		(hdr_size.physical_size + body_size.physical_size) <=
		(hdr_size.lines + body_size.lines) / 2;
	if (verifier != NULL) {
		authres = authres_folded(verifier, authserv_id, crlf);
		field = t_strconcat(AUTHRES_FIELD ": ", authres,
				    crlf ? "\r\n" : "\n", NULL);
	}

	pool = pool_alloconly_create("dkim stored mail", 256);
	stored = p_new(pool, struct dkim_stored_mail, 1);
	stored->pool = pool;
	p_array_init(&stored->drop, pool, 4);
	unchanged = authres_plan(stored, src, authserv_id, authres, &forged);
	if (unchanged != NULL) {
		e_debug(event, "Storing the message as it is: %s", unchanged);
		stored_mail_free(&stored);
		return NULL;
	}
	if (forged > 0) {
		e_info(event, "Removing %u " AUTHRES_FIELD " field(s) "
		       "claiming our authserv-id %s", forged, authserv_id);
	}

	if (dkim_raw_user == NULL)
		dkim_raw_user = dkim_raw_user_create(ctx->rcpt_user);
	if (mail_get_received_date(src, &received_date) < 0)
		received_date = (time_t)-1;
	input = stored_stream_create(stored, original, field);
	if (raw_mailbox_alloc_stream(dkim_raw_user, input, received_date,
			ctx->mail_from == NULL ? NULL :
			smtp_address_encode(ctx->mail_from), &stored->box) < 0) {
		e_error(event, "Cannot open the message with our "
			AUTHRES_FIELD " field (%s); storing it without",
			mailbox_get_last_internal_error(stored->box, NULL));
		i_stream_unref(&input);
		stored_mail_free(&stored);
		return NULL;
	}
	i_stream_unref(&input);
	stored->trans = mailbox_transaction_begin(stored->box, 0, __func__);
	stored->mail = mail_alloc(stored->trans, 0, NULL);
	mail_set_seq(stored->mail, 1);
	return stored;
}

/* Verifies (or reuses the transaction's verification) and prepares the
   copy to store.  Returns it, or NULL to store the original; *summary_r is
   NULL when verification is off for this user. */
static struct dkim_stored_mail *
deliver_prepare(struct mail_deliver_context *ctx,
		const struct dkim_summary **summary_r)
{
	const struct dkim_transaction_result *result;
	struct dkim_stored_mail *stored;
	struct dkim_verify_settings set;
	const char *authserv_id;
	struct event *event = dkim_event_create(ctx->event);

	dkim_event_set_user_debug(event, ctx->rcpt_user);
	*summary_r = NULL;
	dkim_verify_settings_read(ctx->rcpt_user, pool_datastack_create(),
				  event, &set);
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
	stored = stored_mail_create(ctx, result->verifier, authserv_id, event);
	event_unref(&event);
	return stored;
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
	struct dkim_stored_mail *stored;
	int ret;

	*storage_r = NULL;
	T_BEGIN {
		stored = deliver_prepare(ctx, &summary);
	} T_END;
	if (stored != NULL)
		ctx->src_mail = stored->mail;

	dkim_published_mail = ctx->src_mail;
	dkim_published_summary = summary;
	ret = dkim_next_deliver_mail == NULL ? 0 :
		dkim_next_deliver_mail(ctx, storage_r);
	dkim_published_mail = NULL;
	dkim_published_summary = NULL;

	if (stored == NULL)
		return ret;
	/* After we return, mail_do_deliver() would store ctx->src_mail in the
	   default mailbox, and by then it is the original message again:
	   store our copy now, as mail_do_deliver() would. */
	if (ret <= 0 && !ctx->saved_mail && !ctx->tried_default_save &&
	    !deliver_is_tempfailed(ctx, *storage_r)) {
		if (mail_deliver_save(ctx, ctx->rcpt_default_mailbox, 0, NULL,
				      storage_r) == 0)
			ret = 1;
	}
	ctx->src_mail = original_mail;
	stored_mail_free(&stored);
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
	/* before mail_storage_deinit(): modules are unloaded first */
	if (dkim_raw_user != NULL)
		mail_user_unref(&dkim_raw_user);
}
