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
#include "ostream.h"
#include "iostream-temp.h"
#include "message-size.h"
#include "raw-storage.h"
#include "smtp-address.h"
#include "master-service.h"
#include "dkim-dovecot-version.h"
#include "dkim-plugin.h"

#include <dlfcn.h>

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
	/* The copy this plugin stored itself for an earlier recipient, with
	   the verification and authserv-id its field was made from.  LMTP
	   hands it to the following recipients (to hard-link it), and for
	   one whose field would be the same it is stored as it is without
	   reading it again. */
	const struct mail *stored_copy;
	const char *stored_copy_verification_key;
	const char *stored_copy_authserv_id;
} dkim_transaction;

static struct dkim_resolver_set *dkim_resolvers;
static deliver_mail_func_t *dkim_next_deliver_mail;

/* What dkim_plugin_delivery_summary() returns while the next hook runs. */
static const struct mail *dkim_published_mail;
static const struct dkim_summary *dkim_published_summary;

const char *dkim_plugin_version = DOVECOT_ABI_VERSION;

/* The delivery functions live in the binaries that deliver (dovecot-lda
   and lmtp link lib-lda), so they are looked up when the plugin starts
   rather than linked: named in mail_plugins of another service (e.g. a
   global mail_plugins, read by imap too), the plugin loads, says once that
   it does nothing there, and the service keeps working. */
static __typeof__(&mail_deliver_hook_set) dkim_mail_deliver_hook_set;
static __typeof__(&mail_deliver_save) dkim_mail_deliver_save;

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
	dkim_transaction.stored_copy = NULL;
	dkim_transaction.stored_copy_verification_key = NULL;
	dkim_transaction.stored_copy_authserv_id = NULL;
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

/* Our field, written again by Dovecot when it stored an earlier
   recipient's copy, may have other line endings: compare with each
   whitespace run (folding included) as one space.  NULs are kept. */
static string_t *whitespace_collapsed(const void *data, size_t size)
{
	const unsigned char *p = data, *end = p + size;
	string_t *str = t_str_new(size);
	bool in_space = FALSE;

	for (; p < end; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			in_space = TRUE;
			continue;
		}
		if (in_space && str_len(str) > 0)
			str_append_c(str, ' ');
		in_space = FALSE;
		str_append_c(str, *p);
	}
	return str;
}

/* The copy of the message that is stored for a recipient: our field on top
   of the original, without the fields that claim our authserv-id.  A raw
   mail over a concatenated stream, so the body is never copied. */
struct dkim_stored_mail {
	pool_t pool;
	struct mailbox *box;
	struct mailbox_transaction_context *trans;
	struct mail *mail;
	/* what our field was made from (NULL: no field); the key is the
	   transaction's */
	const char *verification_key;
	const char *authserv_id;
};

/* One raw mail user per process for the stored copies, as LMTP keeps one
   per client: creating a mail user for every message would cost more than
   verifying it. */
static struct mail_user *dkim_raw_user;

static void authres_kept_output(void *context, const void *data, size_t size)
{
	struct ostream *kept = context;

	o_stream_nsend(kept, data, size);
}

/* Runs the header block of the original message through the filter of our
   fields (dkim.h; RFC 8601 §5 says fields with our authserv-id that arrive
   with a message are forgeries or stale), handing the bytes of the fields
   it keeps to kept when that is not NULL.  Returns the finished filter and
   the size of the header fields, or NULL when the message cannot be read
   (logged). */
static dkim_authres_filter *
authres_filter_run(struct istream *original, const char *authserv_id,
		   const struct dkim_verify_settings *set, struct ostream *kept,
		   uoff_t *header_size_r, struct event *event)
{
	dkim_authres_filter *filter;
	struct istream *input;
	const unsigned char *data;
	size_t size, used;
	int ret;

	filter = dkim_authres_filter_new(authserv_id,
		set->verify_config.max_header_bytes,
		kept == NULL ? NULL : authres_kept_output, kept);
	input = i_stream_create_range(original, 0, UOFF_T_MAX);
	while ((ret = i_stream_read_more(input, &data, &size)) > 0) {
		used = dkim_authres_filter_feed(filter, data, size);
		i_stream_skip(input, used);
		if (used < size)
			break;
	}
	if (ret < 0 && input->stream_errno != 0) {
		e_error(event, "Cannot read the message's header: %s",
			i_stream_get_error(input));
		dkim_authres_filter_free(&filter);
	} else if (ret == 0) {
		/* mail streams are blocking */
		e_error(event, "Cannot read the message's header: "
			"unexpected non-blocking stream");
		dkim_authres_filter_free(&filter);
	} else {
		*header_size_r = dkim_authres_filter_finish(filter);
	}
	i_stream_unref(&input);
	return filter;
}

/* The header fields of the original that are kept, from a second run of
   the filter over the same bytes (so it removes what the first run
   counted), in memory or in a temporary file when large; NULL on failure
   (logged). */
static struct istream *
authres_kept_header(struct mail_user *user, struct istream *original,
		    const char *authserv_id, const struct dkim_verify_settings *set,
		    struct event *event)
{
	string_t *temp_prefix = t_str_new(128);
	dkim_authres_filter *filter;
	struct ostream *kept;
	uoff_t header_size;

	mail_user_set_get_temp_prefix(temp_prefix, user->set);
	kept = iostream_temp_create_named(str_c(temp_prefix), 0,
					  "dkim kept header");
	filter = authres_filter_run(original, authserv_id, set, kept,
				    &header_size, event);
	if (filter == NULL) {
		o_stream_abort(kept);
		o_stream_destroy(&kept);
		return NULL;
	}
	dkim_authres_filter_free(&filter);
	if (o_stream_finish(kept) < 0) {
		e_error(event, "Cannot write the message's header to %s: %s",
			o_stream_get_name(kept), o_stream_get_error(kept));
		o_stream_destroy(&kept);
		return NULL;
	}
	return iostream_temp_finish(&kept, IO_BLOCK_SIZE);
}

static struct istream *
stored_stream_create(struct istream *original, const char *field,
		     struct istream *kept_header, uoff_t header_size)
{
	struct istream *inputs[4], *input;
	unsigned int count = 0;

	if (*field != '\0') {
		inputs[count++] =
			i_stream_create_copy_from_data(field, strlen(field));
	}
	if (kept_header == NULL) {
		/* the original stream belongs to the mail: read a view */
		inputs[count++] = i_stream_create_range(original, 0,
							UOFF_T_MAX);
	} else {
		i_stream_ref(kept_header);
		inputs[count++] = kept_header;
		inputs[count++] = i_stream_create_range(original, header_size,
							UOFF_T_MAX);
	}
	inputs[count] = NULL;
	input = i_stream_create_concat(inputs);
	i_stream_set_name(input, "dkim-stored-mail");
	for (unsigned int i = 0; i < count; i++)
		i_stream_unref(&inputs[i]);
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

/* Is src the copy stored for an earlier recipient of this transaction with
   the field this one would get (same verification, same authserv-id)?
   Then it has no other field claiming our authserv-id either. */
static bool
is_stored_copy_with_field(const struct mail *src,
			  const struct dkim_transaction_result *result,
			  const char *authserv_id)
{
	return src == dkim_transaction.stored_copy &&
		result != NULL && result->verifier != NULL &&
		strcmp(result->verification_key,
		       dkim_transaction.stored_copy_verification_key) == 0 &&
		strcmp(authserv_id,
		       dkim_transaction.stored_copy_authserv_id) == 0;
}

/* Remembers dest, the copy just stored from stored, for the next
   recipients (see dkim_transaction). */
static void
stored_copy_remember(const struct mail *dest,
		     const struct dkim_stored_mail *stored)
{
	if (dest == NULL || stored->verification_key == NULL)
		return;
	dkim_transaction.stored_copy = dest;
	dkim_transaction.stored_copy_verification_key =
		stored->verification_key;
	dkim_transaction.stored_copy_authserv_id =
		p_strdup(dkim_transaction.pool, stored->authserv_id);
}

/* Returns the copy to store for this recipient: our field (unless result
   is NULL, verification is off, or the message was unreadable) on top, and
   none of the fields that claim our authserv-id.  NULL to store src as it
   is (also when something failed: logged, and the message is delivered
   without our field). */
static struct dkim_stored_mail *
stored_mail_create(struct mail_deliver_context *ctx,
		   const struct dkim_transaction_result *result,
		   const char *authserv_id,
		   const struct dkim_verify_settings *set, struct event *event)
{
	const dkim_verifier *verifier = result == NULL ? NULL :
		result->verifier;
	struct mail *src = ctx->src_mail;
	struct message_size hdr_size, body_size;
	struct dkim_stored_mail *stored;
	struct istream *original, *kept_header = NULL, *input;
	dkim_authres_filter *filter;
	const char *field = "", *top, *unchanged = NULL;
	uoff_t header_size;
	size_t removed, top_len;
	time_t received_date;
	bool crlf;
	pool_t pool;

	if (is_stored_copy_with_field(src, result, authserv_id)) {
		/* what the check below would find, without reading the
		   copy again */
		e_debug(event, "Storing the message as it is: it is the copy "
			"stored for an earlier recipient, with the same field");
		return NULL;
	}
	if (mail_get_stream(src, &hdr_size, &body_size, &original) < 0) {
		e_error(event, "Cannot read the message (%s); storing it "
			"as it is", mailbox_get_last_internal_error(src->box,
								    NULL));
		return NULL;
	}
	/* Write our field with the message's line endings, judged as
	   Pigeonhole's edit-mail does: CRLF unless most lines end in LF. */
	crlf = (hdr_size.virtual_size + body_size.virtual_size) -
		(hdr_size.physical_size + body_size.physical_size) <=
		(hdr_size.lines + body_size.lines) / 2;
	if (verifier != NULL) {
		field = t_strconcat(AUTHRES_FIELD ": ",
				    authres_folded(verifier, authserv_id, crlf),
				    crlf ? "\r\n" : "\n", NULL);
	}

	filter = authres_filter_run(original, authserv_id, set, NULL,
				    &header_size, event);
	if (filter == NULL)
		return NULL;
	removed = dkim_authres_filter_removed(filter);
	top = dkim_authres_filter_removed_top(filter, &top_len);
	if (removed == 0 && *field == '\0')
		unchanged = "no field to add or remove";
	else if (removed == 1 && top != NULL && *field != '\0' &&
		 str_equals(whitespace_collapsed(top, top_len),
			    whitespace_collapsed(field, strlen(field)))) {
		/* LMTP hands later recipients the copy stored for the
		   first one; storing that as it is keeps Dovecot's hard
		   links between copies. */
		unchanged = "it already carries our field";
	}
	dkim_authres_filter_free(&filter);
	if (unchanged != NULL) {
		e_debug(event, "Storing the message as it is: %s", unchanged);
		return NULL;
	}
	if (removed > 0) {
		e_info(event, "Removing %zu " AUTHRES_FIELD " field(s) "
		       "claiming our authserv-id %s", removed, authserv_id);
		kept_header = authres_kept_header(ctx->rcpt_user, original,
						  authserv_id, set, event);
		if (kept_header == NULL)
			return NULL;
	}

	if (dkim_raw_user == NULL)
		dkim_raw_user = dkim_raw_user_create(ctx->rcpt_user);
	if (mail_get_received_date(src, &received_date) < 0)
		received_date = (time_t)-1;
	pool = pool_alloconly_create("dkim stored mail", 256);
	stored = p_new(pool, struct dkim_stored_mail, 1);
	stored->pool = pool;
	if (verifier != NULL) {
		stored->verification_key = result->verification_key;
		stored->authserv_id = p_strdup(pool, authserv_id);
	}
	input = stored_stream_create(original, field, kept_header,
				     header_size);
	i_stream_unref(&kept_header);
	if (raw_mailbox_alloc_stream(dkim_raw_user, input, received_date,
			ctx->mail_from == NULL ? NULL :
			smtp_address_encode(ctx->mail_from), &stored->box) < 0) {
		e_error(event, "Cannot open the message with our "
			AUTHRES_FIELD " field (%s); storing it as it is",
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
   NULL when verification is off for this user.  Fields claiming our
   authserv-id are removed even then: whatever the user's settings, such a
   field did not come from us. */
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
	authserv_id = set.authserv_id != NULL ? set.authserv_id :
		default_authserv_id(ctx);
	if (!set.verify) {
		e_debug(event, "Verification disabled (dkim_verify = no)");
		stored = stored_mail_create(ctx, NULL, authserv_id, &set,
					    event);
	} else {
		result = transaction_verify(ctx, &set, event);
		*summary_r = result->summary;
		event_add_str(ctx->event, "dkim_result",
			      dkim_result_name(result->summary->verdict));
		stored = stored_mail_create(ctx, result, authserv_id, &set,
					    event);
	}
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

/* Warns once per process when the Sieve extension is half configured:
   sieve_plugins loads sieve_dkim but sieve_extensions does not enable
   vnd.dovecot.dkim, or the other way round.  Typically a file read after
   ours set the other setting again; users' scripts that require the
   extension then stop compiling, and their mail goes to INBOX.  Nothing is
   said when Sieve is not loaded, or when neither setting names us. */
static void dkim_check_sieve_settings(struct mail_user *user)
{
	static bool checked = FALSE;
	int plugin, extension, global_extension;

	if (checked)
		return;
	checked = TRUE;
	plugin = dkim_sieve_setting_enables(user, "sieve_plugins",
					    DKIM_SIEVE_PLUGIN_NAME);
	extension = dkim_sieve_setting_enables(user, "sieve_extensions",
					       DKIM_SIEVE_EXTENSION_NAME);
	global_extension = dkim_sieve_setting_enables(user,
		"sieve_global_extensions", DKIM_SIEVE_EXTENSION_NAME);
	if (plugin < 0 || extension < 0 || global_extension < 0)
		return;
	if (plugin > 0 && extension == 0 && global_extension == 0) {
		e_warning(user->event, "dkim: Sieve scripts cannot use "
			  DKIM_SIEVE_EXTENSION_NAME ": sieve_plugins loads "
			  DKIM_SIEVE_PLUGIN_NAME ", but sieve_extensions does "
			  "not enable " DKIM_SIEVE_EXTENSION_NAME " (a file "
			  "read after 90-dkim.conf may set sieve_extensions "
			  "again: add it there)");
	} else if (plugin == 0 && (extension > 0 || global_extension > 0)) {
		e_warning(user->event, "dkim: Sieve scripts cannot use "
			  DKIM_SIEVE_EXTENSION_NAME ": sieve_extensions "
			  "enables it, but sieve_plugins does not load "
			  DKIM_SIEVE_PLUGIN_NAME " (a file read after "
			  "90-dkim.conf may set sieve_plugins again: add "
			  DKIM_SIEVE_PLUGIN_NAME " there)");
	}
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
		dkim_check_sieve_settings(ctx->rcpt_user);
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
		if (dkim_mail_deliver_save(ctx, ctx->rcpt_default_mailbox, 0,
					   NULL, storage_r) == 0) {
			stored_copy_remember(ctx->dest_mail, stored);
			ret = 1;
		}
	}
	ctx->src_mail = original_mail;
	stored_mail_free(&stored);
	return ret;
}

void dkim_plugin_init(struct module *module ATTR_UNUSED)
{
	dkim_mail_deliver_hook_set = (__typeof__(&mail_deliver_hook_set))
		dlsym(RTLD_DEFAULT, "mail_deliver_hook_set");
	dkim_mail_deliver_save = (__typeof__(&mail_deliver_save))
		dlsym(RTLD_DEFAULT, "mail_deliver_save");
	if (dkim_mail_deliver_hook_set == NULL ||
	    dkim_mail_deliver_save == NULL) {
		const char *service = master_service_get_name(master_service);

		dkim_mail_deliver_hook_set = NULL;
		i_warning("dkim: The delivery plugin does nothing in %s: name "
			  "dkim in mail_plugins only inside protocol lmtp { } "
			  "and protocol lda { }, not for %s", service, service);
		return;
	}
	dkim_resolvers = dkim_resolver_set_init();
	dkim_transaction.pool = pool_alloconly_create("dkim transaction", 4096);
	i_array_init(&dkim_transaction.results, 2);
	dkim_next_deliver_mail = dkim_mail_deliver_hook_set(dkim_deliver_mail);
}

void dkim_plugin_deinit(void)
{
	if (dkim_mail_deliver_hook_set == NULL)
		return;
	dkim_mail_deliver_hook_set(dkim_next_deliver_mail);
	transaction_reset(NULL);
	array_free(&dkim_transaction.results);
	pool_unref(&dkim_transaction.pool);
	dkim_resolver_set_deinit(&dkim_resolvers);
	/* before mail_storage_deinit(): modules are unloaded first */
	if (dkim_raw_user != NULL)
		mail_user_unref(&dkim_raw_user);
}
