/* submission_dkim: signs every message an authenticated user submits (DATA,
 * BDAT, BURL) before Dovecot relays it.  See dovecot-dkim-submission(7).
 *
 * The submission service hands cmd_data() the complete message in a
 * seekable stream; the plugin reads it (headers for From, then everything
 * for the signatures), and passes the relay a new stream made of the
 * DKIM-Signature fields followed by the original, with its exact size.
 * Whatever happens, the relay gets either the whole signed message, the
 * whole original, or nothing (and the client a 4xx/5xx reply). */
#include "lib.h"
#include "array.h"
#include "ioloop.h"
#include "str.h"
#include "str-sanitize.h"
#include "istream.h"
#include "istream-concat.h"
#include "module-context.h"
#include "message-address.h"
#include "message-header-parser.h"
#include "mail-user.h"
#include "dict.h"
#include "submission-common.h"
#include "dkim.h"
#include "dkim-keytable-cache.h"
#include "dkim-sign-from.h"
#include "dkim-keyed-table.h"
#include "dkim-dovecot-version.h"
#include "submission-dkim-settings.h"
#include "submission-dkim-plugin.h"

/* Message-supplied text in logs is cut to this many bytes. */
#define SANITIZE_MAX 256

#define SUBMISSION_DKIM_CONTEXT_REQUIRE(obj) \
	MODULE_CONTEXT_REQUIRE(obj, submission_dkim_client_module)

struct submission_dkim_client {
	union submission_module_context module_ctx;
	struct submission_dkim_settings set;
};

enum dkim_outcome {
	DKIM_OUTCOME_SIGNED,
	DKIM_OUTCOME_UNSIGNED,		/* by policy, or no key applies */
	DKIM_OUTCOME_REJECTED,		/* unauthorized From, 550 */
	DKIM_OUTCOME_FAILED,		/* 451, or unsigned per setting */
};

static const char *const dkim_outcome_names[] = {
	[DKIM_OUTCOME_SIGNED] = "signed",
	[DKIM_OUTCOME_UNSIGNED] = "unsigned",
	[DKIM_OUTCOME_REJECTED] = "rejected",
	[DKIM_OUTCOME_FAILED] = "failed",
};

struct dkim_signing_key {
	const char *domain, *selector, *identity;
	const dkim_privkey *key;
};

/* A dict that a table setting names ("dict:NAME"), as the store of
   dkim-keyed-table.h: opened on the first lookup that the cache cannot
   answer, closed after the message. */
struct dkim_dict_store {
	struct dkim_keyed_store store;
	struct mail_user *user;
	const char *name;		/* after "dict:" */
	struct dict *dict;
};

/* One DATA command's signing. */
struct dkim_message {
	pool_t pool;
	struct mail_user *user;
	const struct submission_dkim_settings *set;
	struct istream *input;
	struct event *event;

	const char *from_address;	/* local@domain, or NULL */
	const char *from_domain;	/* lowercase, or NULL */
	ARRAY(struct dkim_signing_key) keys;
	/* the dicts of dict: tables, one per name */
	ARRAY(struct dkim_dict_store *) dicts;

	enum dkim_outcome outcome;
	const char *reason;		/* why not signed: for the log */
	const char *reply;		/* the 5xx text when rejected */
	string_t *signatures;		/* "d=.. s=.. a=..", for the log */
	struct istream *signature_input;
	size_t signature_size;
};

const char *submission_dkim_plugin_version = DOVECOT_ABI_VERSION;
const char submission_dkim_plugin_binary_dependency[] = "submission";

static MODULE_CONTEXT_DEFINE_INIT(submission_dkim_client_module,
				  &submission_module_register);
static submission_client_created_func_t *next_hook_client_created;
/* Tables and keys, loaded once per process and reloaded when their files
 * change (dkim-keytable-cache.h). */
static struct dkim_keytable_cache *dkim_key_cache;
/* What dict: tables answered, kept per process for dkim_table_cache_ttl
 * (dkim-keyed-table.h). */
static struct dkim_keyed_cache *dkim_dict_cache;

static void
dkim_message_unauthorized(struct dkim_message *msg, const char *reason,
			  const char *reply)
{
	msg->reason = reason;
	if (msg->set->unauthorized == SUBMISSION_DKIM_UNAUTHORIZED_REJECT) {
		msg->outcome = DKIM_OUTCOME_REJECTED;
		msg->reply = reply;
	} else {
		msg->outcome = DKIM_OUTCOME_UNSIGNED;
	}
}

static void
dkim_message_failed(struct dkim_message *msg, const char *reason)
{
	msg->outcome = DKIM_OUTCOME_FAILED;
	msg->reason = p_strdup(msg->pool, reason);
}

/* The author, by the rule the verifiers apply (dkim.h, "The author
 * domain"), and as Dovecot reads it: the address the recipient's mail
 * client shows is the first that message_address_parse() finds, and the
 * local part for SigningTable patterns is taken from there.  Both must
 * name the same single mailbox, or the message is not signed. */
static void
dkim_message_read_author(struct dkim_message *msg,
			 const unsigned char *value, size_t size)
{
	const char *shown = str_sanitize(t_strndup(value, size), SANITIZE_MAX);
	char *domain;
	enum dkim_author_status status =
		dkim_author_domain((const char *)value, size, &domain);

	if (status != DKIM_AUTHOR_FOUND) {
		dkim_message_unauthorized(msg, t_strdup_printf(
			"no author domain (%s): %s",
			dkim_author_status_text(status), shown),
			"From field must hold exactly one valid address");
		return;
	}
	struct message_address *addr =
		message_address_parse(msg->pool, value, size, 2, 0);
	bool agreed = addr != NULL && addr->next == NULL &&
		!addr->invalid_syntax && addr->domain != NULL &&
		strcasecmp(addr->domain, domain) == 0;
	if (agreed)
		msg->from_domain = p_strdup(msg->pool, domain);
	free(domain);
	if (!agreed) {
		dkim_message_unauthorized(msg, t_strdup_printf(
			"no author domain (%s): %s", dkim_author_status_text(
				DKIM_AUTHOR_DISPUTED), shown),
			"From field must hold exactly one valid address");
		return;
	}
	msg->from_address = p_strdup_printf(msg->pool, "%s@%s", addr->mailbox,
					    msg->from_domain);
}

/* Finds the single From address.  Returns -1 on a read error (the outcome
 * is then set), 0 otherwise (from_address stays NULL if there is none). */
static int
dkim_message_read_from(struct dkim_message *msg)
{
	struct message_header_parser_ctx *parser;
	struct message_header_line *hdr;
	const unsigned char *from_value = NULL;
	size_t from_size = 0;
	unsigned int from_count = 0;
	int ret;

	i_stream_seek(msg->input, 0);
	parser = message_parse_header_init(msg->input, NULL, 0);
	while ((ret = message_parse_header_next(parser, &hdr)) > 0) {
		if (hdr->eoh)
			break;
		if (strcasecmp(hdr->name, "From") != 0)
			continue;
		if (hdr->continues) {
			hdr->use_full_value = TRUE;
			continue;
		}
		if (from_count++ == 0) {
			from_value = p_memdup(msg->pool, hdr->full_value,
					      hdr->full_value_len);
			from_size = hdr->full_value_len;
		}
	}
	message_parse_header_deinit(&parser);
	if (msg->input->stream_errno != 0) {
		dkim_message_failed(msg, t_strdup_printf("reading the message "
			"failed: %s", i_stream_get_error(msg->input)));
		return -1;
	}

	if (from_count == 0) {
		dkim_message_unauthorized(msg, "the message has no From field",
			"Message has no From field");
		return 0;
	}
	if (from_count > 1) {
		dkim_message_unauthorized(msg, t_strdup_printf(
			"the message has %u From fields", from_count),
			"Message has more than one From field");
		return 0;
	}
	dkim_message_read_author(msg, from_value, from_size);
	return 0;
}

/* The rule every front end applies (dkim-sign-from.h): the user's own
 * domain, and the dkim_sign_from patterns. */
static bool
dkim_message_from_permitted(struct dkim_message *msg)
{
	return dkim_sign_from_permitted(msg->user->anonymous ? NULL :
					msg->user->username,
					msg->from_address,
					msg->set->sign_from);
}

static int
dkim_message_add_key(struct dkim_message *msg, const char *domain,
		     const char *selector, const char *identity,
		     const char *key, bool key_is_file)
{
	struct dkim_signing_key *signing_key;
	const dkim_privkey *privkey;
	struct dkim_error error;

	if (dkim_keytable_cache_privkey(dkim_key_cache, key, key_is_file,
					msg->set->privkey_flags, &privkey,
					&error) < 0) {
		dkim_message_failed(msg, t_strdup_printf(
			"key for d=%s s=%s: %s%s", domain, selector, error.text,
			strncmp(error.text, DKIM_PRIVKEY_UNSAFE_PREFIX,
				strlen(DKIM_PRIVKEY_UNSAFE_PREFIX)) == 0 ?
			" (or set dkim_sign_allow_unsafe_keys = yes)" : ""));
		return -1;
	}
	signing_key = array_append_space(&msg->keys);
	signing_key->domain = p_strdup(msg->pool, domain);
	signing_key->selector = p_strdup(msg->pool, selector);
	signing_key->identity = p_strdup(msg->pool, identity);
	signing_key->key = privkey;
	return 0;
}

/* The value is on the data stack, which lasts as long as the DATA
   command's handler, and the cache copies it at once. */
static int
dkim_dict_store_lookup(void *context, const char *key, const char **value_r,
		       struct dkim_error *error)
{
	struct dkim_dict_store *dstore = context;
	const struct dict_op_settings set = { .username = NULL };
	const char *dict_error;
	int ret;

	if (dstore->dict == NULL &&
	    dkim_dict_open(dstore->user, dstore->name, &dstore->dict,
			   &dict_error) < 0) {
		dkim_error_set(error, "%s", dict_error);
		return -1;
	}
	ret = dict_lookup(dstore->dict, &set, pool_datastack_create(),
			  t_strconcat(DICT_PATH_SHARED, key, NULL), value_r,
			  &dict_error);
	if (ret < 0)
		dkim_error_set(error, "%s", dict_error);
	return ret;
}

/* The store for "dict:NAME", shared by both tables when they name the
   same dict. */
static const struct dkim_keyed_store *
dkim_message_dict(struct dkim_message *msg, const char *name)
{
	struct dkim_dict_store *dstore;

	array_foreach_elem(&msg->dicts, dstore) {
		if (strcmp(dstore->name, name) == 0)
			return &dstore->store;
	}
	dstore = p_new(msg->pool, struct dkim_dict_store, 1);
	dstore->user = msg->user;
	dstore->name = p_strdup(msg->pool, name);
	dstore->store.name = p_strconcat(msg->pool, "dict:", name, NULL);
	dstore->store.lookup = dkim_dict_store_lookup;
	dstore->store.context = dstore;
	array_push_back(&msg->dicts, &dstore);
	return &dstore->store;
}

static void
dkim_message_close_dicts(struct dkim_message *msg)
{
	struct dkim_dict_store *dstore;

	array_foreach_elem(&msg->dicts, dstore) {
		if (dstore->dict != NULL)
			dict_deinit(&dstore->dict);
	}
}

static struct dkim_keyed_reader
dkim_message_dict_reader(struct dkim_message *msg, const char *name)
{
	return (struct dkim_keyed_reader){
		.cache = dkim_dict_cache,
		.store = dkim_message_dict(msg, name),
		.now = ioloop_time,
		.ttl_secs = msg->set->table_cache_ttl_secs,
	};
}

/* The tables for this message: files from the cache, dict: tables built
   for the From address (and freed with the message's tables). */
struct dkim_message_tables {
	const struct dkim_signingtable *signing;
	const struct dkim_keytable *keys;
	struct dkim_signingtable *dict_signing;
	struct dkim_keytable *dict_keys;
};

static int
dkim_message_signingtable(struct dkim_message *msg,
			  struct dkim_message_tables *tables,
			  struct dkim_error *error)
{
	const struct submission_dkim_settings *set = msg->set;
	bool loaded;

	if (set->signingtable_kind == DKIM_TABLE_DICT) {
		struct dkim_keyed_reader reader =
			dkim_message_dict_reader(msg, set->signingtable_path);

		if (dkim_keyed_signingtable(&reader, msg->from_address,
					    set->multiple_signatures,
					    &tables->dict_signing, error) < 0)
			return -1;
		tables->signing = tables->dict_signing;
		return 0;
	}
	if (dkim_keytable_cache_signingtable(dkim_key_cache,
					     set->signingtable_path,
					     set->signingtable_kind,
					     &tables->signing, &loaded,
					     error) < 0)
		return -1;
	if (loaded) {
		for (const char *const *warning =
		     dkim_signingtable_warnings(tables->signing);
		     *warning != NULL; warning++)
			e_warning(msg->user->event, "dkim: %s",
				  str_sanitize(*warning, 1024));
	}
	return 0;
}

static int
dkim_message_keytable(struct dkim_message *msg,
		      struct dkim_message_tables *tables,
		      struct dkim_error *error)
{
	const struct submission_dkim_settings *set = msg->set;

	if (set->keytable_kind == DKIM_TABLE_DICT) {
		struct dkim_keyed_reader reader =
			dkim_message_dict_reader(msg, set->keytable_path);

		if (dkim_keyed_keytable(&reader, tables->signing,
					msg->from_address,
					set->multiple_signatures,
					&tables->dict_keys, error) < 0)
			return -1;
		tables->keys = tables->dict_keys;
		return 0;
	}
	return dkim_keytable_cache_keytable(dkim_key_cache,
					    set->keytable_path,
					    &tables->keys, error);
}

/* Fills msg->keys from the tables.  Returns -1 on failure; no keys means
 * unsigned (the outcome and reason are then set). */
static int
dkim_message_choose_from_tables(struct dkim_message *msg)
{
	struct dkim_message_tables tables;
	struct dkim_key_choice *choices = NULL;
	struct dkim_error error;
	size_t count = 0;
	int ret;

	i_zero(&tables);
	if (dkim_message_signingtable(msg, &tables, &error) < 0 ||
	    dkim_message_keytable(msg, &tables, &error) < 0) {
		ret = DKIM_KEYTABLE_SELECT_ERROR;
	} else {
		ret = dkim_keytable_select(tables.signing, tables.keys,
					   msg->from_address,
					   msg->set->multiple_signatures,
					   &choices, &count, &error);
	}
	dkim_signingtable_free(&tables.dict_signing);
	dkim_keytable_free(&tables.dict_keys);
	switch (ret) {
	case DKIM_KEYTABLE_SELECT_ERROR:
		dkim_message_failed(msg, error.text);
		return -1;
	case DKIM_KEYTABLE_SELECT_BAD_DOMAIN:
		/* the sender's doing: like a From no entry matches */
		msg->outcome = DKIM_OUTCOME_UNSIGNED;
		msg->reason = p_strdup(msg->pool, error.text);
		return 0;
	}
	if (count == 0) {
		msg->outcome = DKIM_OUTCOME_UNSIGNED;
		msg->reason = "no SigningTable entry matches the From address";
	}
	for (size_t i = 0; i < count && ret == 0; i++) {
		ret = dkim_message_add_key(msg, choices[i].domain,
					   choices[i].selector,
					   choices[i].identity, choices[i].key,
					   choices[i].key_is_file);
	}
	dkim_key_choices_free(&choices, count);
	return ret;
}

/* Fills msg->keys.  Returns -1 on failure; no keys means unsigned. */
static int
dkim_message_choose_keys(struct dkim_message *msg)
{
	const struct submission_dkim_settings *set = msg->set;

	if (set->keytable_path != NULL)
		return dkim_message_choose_from_tables(msg);
	if (strcasecmp(msg->from_domain, set->domain) != 0) {
		msg->outcome = DKIM_OUTCOME_UNSIGNED;
		msg->reason = "the From domain is not dkim_sign_domain";
		return 0;
	}
	return dkim_message_add_key(msg, set->domain, set->selector, NULL,
				    set->key_path, TRUE);
}

static int
dkim_message_feed(struct dkim_message *msg, dkim_signer *signer)
{
	const unsigned char *data;
	size_t size;
	int ret;

	i_stream_seek(msg->input, 0);
	while ((ret = i_stream_read_more(msg->input, &data, &size)) > 0) {
		dkim_signer_feed(signer, data, size);
		i_stream_skip(msg->input, size);
	}
	if (msg->input->stream_errno != 0) {
		dkim_message_failed(msg, t_strdup_printf("reading the message "
			"failed: %s", i_stream_get_error(msg->input)));
		return -1;
	}
	if (ret == 0) {
		/* submission promises the complete message; never sign (and
		   relay) a part of one */
		dkim_message_failed(msg, "the message input was incomplete");
		return -1;
	}
	return 0;
}

static void
dkim_message_sign(struct dkim_message *msg)
{
	const struct submission_dkim_settings *set = msg->set;
	const struct dkim_signing_key *key;
	struct dkim_sign_config config;
	struct dkim_error error;
	dkim_signer *signer = dkim_signer_new();

	array_foreach(&msg->keys, key) {
		dkim_sign_config_init(&config);
		config.domain = key->domain;
		config.selector = key->selector;
		config.identity = key->identity;
		config.key = key->key;
		config.header_canon = set->header_canon;
		config.body_canon = set->body_canon;
		config.headers = set->headers;
		config.oversign = set->oversign_headers;
		config.expire_secs = set->expire_secs;
		if (dkim_signer_add(signer, &config, &error) < 0) {
			dkim_message_failed(msg, t_strdup_printf(
				"d=%s s=%s: %s", key->domain, key->selector,
				error.text));
			dkim_signer_free(&signer);
			return;
		}
		if (str_len(msg->signatures) > 0)
			str_append(msg->signatures, ", ");
		str_printfa(msg->signatures, "d=%s s=%s a=%s", key->domain,
			    key->selector,
			    dkim_privkey_type(key->key) == DKIM_KEY_ED25519 ?
			    "ed25519-sha256" : "rsa-sha256");
	}
	if (dkim_message_feed(msg, signer) == 0) {
		if (dkim_signer_finish(signer, &error) < 0) {
			dkim_message_failed(msg, t_strdup_printf(
				"signing failed: %s", error.text));
		} else {
			const char *fields = dkim_signer_fields(signer);

			msg->signature_size = strlen(fields);
			msg->signature_input =
				i_stream_create_copy_from_data(
					fields, msg->signature_size);
			msg->outcome = DKIM_OUTCOME_SIGNED;
		}
	}
	dkim_signer_free(&signer);
}

static void
dkim_message_process(struct dkim_message *msg)
{
	if (msg->set->error != NULL) {
		dkim_message_failed(msg, t_strdup_printf(
			"configuration error: %s", msg->set->error));
		return;
	}
	if (dkim_message_read_from(msg) < 0 || msg->from_address == NULL)
		return;
	if (!dkim_message_from_permitted(msg)) {
		dkim_message_unauthorized(msg, t_strdup_printf(
			"user may not sign for From address %s",
			str_sanitize(msg->from_address, SANITIZE_MAX)),
			"From address not permitted for this user");
		return;
	}
	if (dkim_message_choose_keys(msg) < 0 ||
	    array_count(&msg->keys) == 0)
		return;
	dkim_message_sign(msg);
}

/* One line per message, carried by the dkim_sign_finished event. */
static void
dkim_message_log(struct dkim_message *msg, bool relayed)
{
	struct event *event = msg->event;
	const char *from_domain = msg->from_domain == NULL ? "" :
		str_sanitize(msg->from_domain, SANITIZE_MAX);
	const char *reason = msg->reason == NULL ? NULL :
		str_sanitize(msg->reason, 1024);
	const char *details = t_strdup_printf("user=%s, from_domain=%s",
		str_sanitize(msg->user->username, SANITIZE_MAX),
		from_domain[0] == '\0' ? "(none)" : from_domain);

	event_add_str(event, "user", msg->user->username);
	event_add_str(event, "from_domain", from_domain);
	event_add_str(event, "result", dkim_outcome_names[msg->outcome]);
	event_add_int(event, "relayed", relayed ? 1 : 0);
	event_add_int(event, "signatures", msg->outcome ==
		      DKIM_OUTCOME_SIGNED ? array_count(&msg->keys) : 0);
	if (msg->outcome == DKIM_OUTCOME_SIGNED) {
		event_add_str(event, "selectors", str_c(msg->signatures));
		e_info(event, "signed (%s): %s", details,
		       str_c(msg->signatures));
		return;
	}
	event_add_str(event, "reason", reason);
	switch (msg->outcome) {
	case DKIM_OUTCOME_UNSIGNED:
		e_info(event, "not signed (%s): %s", details, reason);
		break;
	case DKIM_OUTCOME_REJECTED:
		e_info(event, "rejected (%s): %s", details, reason);
		break;
	case DKIM_OUTCOME_FAILED:
		e_error(event, "signing failed, %s (%s): %s",
			relayed ? "relayed unsigned (dkim_sign_failure = "
			"unsigned)" : "replied 451 so the client retries "
			"(dkim_sign_failure = tempfail)", details, reason);
		break;
	case DKIM_OUTCOME_SIGNED:
		i_unreached();
	}
}

static int
submission_dkim_cmd_data(struct client *client,
			 struct smtp_server_cmd_ctx *cmd,
			 struct smtp_server_transaction *trans,
			 struct istream *data_input, uoff_t data_size)
{
	struct submission_dkim_client *dclient =
		SUBMISSION_DKIM_CONTEXT_REQUIRE(client);
	struct dkim_message msg;
	int ret;

	if (!dclient->set.sign) {
		return dclient->module_ctx.super.cmd_data(client, cmd, trans,
							  data_input,
							  data_size);
	}

	i_zero(&msg);
	msg.pool = pool_alloconly_create("submission dkim message", 1024);
	msg.user = client->user;
	msg.set = &dclient->set;
	msg.input = data_input;
	msg.signatures = str_new(msg.pool, 128);
	p_array_init(&msg.keys, msg.pool, 2);
	p_array_init(&msg.dicts, msg.pool, 2);
	msg.event = event_create(trans->event);
	event_set_name(msg.event, "dkim_sign_finished");
	event_set_append_log_prefix(msg.event, "dkim: ");

	dkim_message_process(&msg);
	dkim_message_close_dicts(&msg);
	i_stream_seek(data_input, 0);

	bool relay = msg.outcome == DKIM_OUTCOME_SIGNED ||
		msg.outcome == DKIM_OUTCOME_UNSIGNED ||
		(msg.outcome == DKIM_OUTCOME_FAILED &&
		 msg.set->failure == SUBMISSION_DKIM_FAILURE_UNSIGNED);
	dkim_message_log(&msg, relay);

	if (msg.outcome == DKIM_OUTCOME_SIGNED) {
		struct istream *inputs[] = {
			msg.signature_input, data_input, NULL
		};
		struct istream *signed_input = i_stream_create_concat(inputs);

		i_stream_unref(&msg.signature_input);
		ret = dclient->module_ctx.super.cmd_data(client, cmd, trans,
			signed_input, data_size + msg.signature_size);
		i_stream_unref(&signed_input);
	} else if (relay) {
		ret = dclient->module_ctx.super.cmd_data(client, cmd, trans,
							 data_input,
							 data_size);
	} else if (msg.outcome == DKIM_OUTCOME_REJECTED) {
		smtp_server_reply(cmd, 550, "5.7.1", "%s", msg.reply);
		ret = -1;
	} else {
		smtp_server_reply(cmd, 451, "4.3.0", "Message could not be "
				  "DKIM-signed, try again later");
		ret = -1;
	}

	event_unref(&msg.event);
	pool_unref(&msg.pool);
	/* keys and tables replaced during this message are no longer used */
	dkim_keytable_cache_release(dkim_key_cache);
	return ret;
}

static void
submission_dkim_client_created(struct client **clientp)
{
	struct client *client = *clientp;
	struct submission_dkim_client *dclient;

	dclient = p_new(client->pool, struct submission_dkim_client, 1);
	dclient->module_ctx.super = client->v;
	submission_dkim_settings_read(client->user, client->pool,
				      client->user->event, &dclient->set);
	if (dclient->set.error != NULL) {
		/* also logged with every message it affects */
		e_error(client->user->event, "dkim: configuration error: %s",
			dclient->set.error);
	}
	client->v.cmd_data = submission_dkim_cmd_data;
	MODULE_CONTEXT_SET(client, submission_dkim_client_module, dclient);

	if (next_hook_client_created != NULL)
		next_hook_client_created(clientp);
}

void
submission_dkim_plugin_init(struct module *module ATTR_UNUSED)
{
	dkim_key_cache = dkim_keytable_cache_new();
	dkim_dict_cache = dkim_keyed_cache_new();
	next_hook_client_created =
		submission_client_created_hook_set(
			submission_dkim_client_created);
}

void
submission_dkim_plugin_deinit(void)
{
	submission_client_created_hook_set(next_hook_client_created);
	dkim_keytable_cache_free(&dkim_key_cache);
	dkim_keyed_cache_free(&dkim_dict_cache);
}
