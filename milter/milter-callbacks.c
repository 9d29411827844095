/* The libmilter side: see milter-callbacks.h. */
#include "milter-callbacks.h"
#include "dkim-util.h"
#include "milter-log.h"
#include "milter-message.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What we ask of the MTA: no HELO, DATA or unknown commands, no reply
 * expected to headers, body chunks, MAIL and RCPT (each reply is a round
 * trip per header field or chunk), and header values with their leading
 * space, so that the header is hashed exactly as it was written. */
#define WANTED_STEPS (SMFIP_NOHELO | SMFIP_NODATA | SMFIP_NOUNKNOWN | \
	SMFIP_NR_HDR | SMFIP_NR_BODY | SMFIP_NR_MAIL | SMFIP_NR_RCPT | \
	SMFIP_HDR_LEADSPC)
#define WANTED_ACTIONS (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE | \
	SMFIF_SETSYMLIST)
/* The macros needed at MAIL FROM, whatever the MTA's defaults (Postfix:
 * milter_mail_macros): the queue id for the log, and the login. */
#define ENVFROM_MACROS "i {auth_type} {auth_authen}"

struct milter_connection {
	unsigned long steps;		/* negotiated SMFIP_* */
	bool internal;
	char *authserv_id;
	char client[300];		/* for the log */
	struct milter_message *message;
};

static const struct milter_config *config;
static unsigned open_count;

unsigned
milter_connections_open(void)
{
	return __atomic_load_n(&open_count, __ATOMIC_SEQ_CST);
}

static struct milter_connection *
connection_get(SMFICTX *ctx)
{
	struct milter_connection *conn = smfi_getpriv(ctx);

	if (conn == NULL) {
		conn = dkim_calloc(1, sizeof(*conn));
		__atomic_add_fetch(&open_count, 1, __ATOMIC_SEQ_CST);
		smfi_setpriv(ctx, conn);
	}
	return conn;
}

/* SMFIS_NOREPLY where the MTA agreed to expect no reply to this step. */
static sfsistat
go_on(const struct milter_connection *conn, unsigned long no_reply_step)
{
	return (conn->steps & no_reply_step) != 0 ? SMFIS_NOREPLY :
		SMFIS_CONTINUE;
}

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long actions, unsigned long steps,
	     unsigned long f2 __attribute__((unused)),
	     unsigned long f3 __attribute__((unused)),
	     unsigned long *actions_r, unsigned long *steps_r,
	     unsigned long *f2_r, unsigned long *f3_r)
{
	struct milter_connection *conn = connection_get(ctx);

	*actions_r = WANTED_ACTIONS & actions;
	*steps_r = conn->steps = WANTED_STEPS & steps;
	*f2_r = *f3_r = 0;
	if ((actions & SMFIF_SETSYMLIST) != 0 &&
	    smfi_setsymlist(ctx, SMFIM_ENVFROM, ENVFROM_MACROS) != MI_SUCCESS)
		milter_log(MILTER_LOG_WARNING, "cannot ask the MTA for the "
			   "macros " ENVFROM_MACROS);
	return SMFIS_CONTINUE;
}

static void
describe_client(struct milter_connection *conn, const char *hostname,
		const struct sockaddr *addr)
{
	char text[INET6_ADDRSTRLEN] = "", shown[MILTER_SHOWN_MAX + 4];

	if (addr != NULL && addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)
				     (const void *)addr)->sin_addr,
			  text, sizeof(text));
	else if (addr != NULL && addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
				      (const void *)addr)->sin6_addr,
			  text, sizeof(text));
	/* An MTA names a client without a verified name "[ADDR]". */
	if (hostname == NULL || hostname[0] == '[')
		snprintf(conn->client, sizeof(conn->client), "[%s]", text);
	else
		snprintf(conn->client, sizeof(conn->client), "%s [%s]",
			 milter_shown(shown, hostname), text);
}

/* AuthservID, else the MTA's name for itself ({j}), else ours. */
static char *
authserv_id(SMFICTX *ctx)
{
	const char *mta = smfi_getsymval(ctx, "j");
	char host[256];

	if (config->authserv_id != NULL)
		return dkim_strdup(config->authserv_id);
	if (mta != NULL && *mta != '\0' && strcspn(mta, " \t;()\"\\") ==
	    strlen(mta))
		return dkim_strdup(mta);
	if (gethostname(host, sizeof(host)) < 0)
		return dkim_strdup("localhost");
	host[sizeof(host) - 1] = '\0';
	return dkim_strdup(host);
}

static sfsistat
cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *addr)
{
	struct milter_connection *conn = connection_get(ctx);

	describe_client(conn, hostname, addr);
	if (config->peers != NULL &&
	    milter_hosts_match(config->peers, addr, hostname))
		return SMFIS_ACCEPT;
	conn->internal = milter_hosts_match(config->internal_hosts, addr,
					    hostname);
	free(conn->authserv_id);
	conn->authserv_id = authserv_id(ctx);
	return SMFIS_CONTINUE;
}

static sfsistat
cb_envfrom(SMFICTX *ctx, char **argv __attribute__((unused)))
{
	struct milter_connection *conn = connection_get(ctx);
	struct milter_message_params params = {
		.config = config,
		.authserv_id = conn->authserv_id,
		.internal = conn->internal,
		.login = smfi_getsymval(ctx, "{auth_authen}"),
		.queue_id = smfi_getsymval(ctx, "i"),
		.client = conn->client,
	};

	if (conn->authserv_id == NULL)	/* no connect: a broken MTA */
		conn->authserv_id = authserv_id(ctx);
	params.authserv_id = conn->authserv_id;
	milter_message_free(&conn->message);
	conn->message = milter_message_new(&params);
	return go_on(conn, SMFIP_NR_MAIL);
}

static sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
	struct milter_connection *conn = connection_get(ctx);

	if (conn->message == NULL)
		return go_on(conn, SMFIP_NR_RCPT);
	/* Postfix knows the queue id from the first RCPT on */
	milter_message_set_queue_id(conn->message, smfi_getsymval(ctx, "i"));
	if (argv[0] != NULL)
		milter_message_recipient(conn->message, argv[0]);
	return go_on(conn, SMFIP_NR_RCPT);
}

static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
	struct milter_connection *conn = connection_get(ctx);

	if (conn->message != NULL)
		milter_message_header(conn->message, name, value,
				      (conn->steps & SMFIP_HDR_LEADSPC) != 0);
	return go_on(conn, SMFIP_NR_HDR);
}

static sfsistat
reply(SMFICTX *ctx, const struct milter_reply *reply, sfsistat status)
{
	if (smfi_setreply(ctx, (char *)reply->code, (char *)reply->xcode,
			  (char *)reply->text) != MI_SUCCESS)
		milter_log(MILTER_LOG_WARNING, "cannot set the SMTP reply "
			   "%s %s", reply->code, reply->xcode);
	return status;
}

/* Maps a step's outcome to libmilter; a message that is done is freed. */
static sfsistat
finish_step(SMFICTX *ctx, struct milter_connection *conn,
	    enum milter_status status, const struct milter_reply *answer)
{
	switch (status) {
	case MILTER_STATUS_CONTINUE:
		return SMFIS_CONTINUE;
	case MILTER_STATUS_ACCEPT:
		milter_message_free(&conn->message);
		return SMFIS_ACCEPT;
	case MILTER_STATUS_REJECT:
		milter_message_free(&conn->message);
		return reply(ctx, answer, SMFIS_REJECT);
	case MILTER_STATUS_TEMPFAIL:
		break;
	}
	milter_message_free(&conn->message);
	return reply(ctx, answer, SMFIS_TEMPFAIL);
}

static sfsistat
cb_eoh(SMFICTX *ctx)
{
	struct milter_connection *conn = connection_get(ctx);
	struct milter_reply answer = { 0 };

	if (conn->message == NULL)
		return SMFIS_ACCEPT;
	return finish_step(ctx, conn, milter_message_end_of_header(
				   conn->message, &answer), &answer);
}

static sfsistat
cb_body(SMFICTX *ctx, unsigned char *data, size_t size)
{
	struct milter_connection *conn = connection_get(ctx);

	if (conn->message != NULL)
		milter_message_body(conn->message, data, size);
	return go_on(conn, SMFIP_NR_BODY);
}

/* Deletes and inserts the fields; false if the MTA refused a change. */
static bool
apply_changes(SMFICTX *ctx, const struct milter_connection *conn,
	      const struct milter_changes *changes)
{
	bool leading_space = (conn->steps & SMFIP_HDR_LEADSPC) != 0;

	for (size_t i = 0; i < changes->removal_count; i++) {
		const struct milter_removal *removal = &changes->removals[i];
		if (smfi_chgheader(ctx, (char *)removal->name,
				   (int)removal->index, NULL) != MI_SUCCESS)
			return false;
	}
	/* Each at the top, the lowest first, so the first ends on top. */
	for (size_t i = changes->insertion_count; i > 0; i--) {
		const struct milter_insertion *field =
			&changes->insertions[i - 1];
		char *value = field->value;
		/* Without HDR_LEADSPC the MTA writes "Name: " itself. */
		if (!leading_space && *value == ' ')
			value++;
		if (smfi_insheader(ctx, 0, field->name, value) != MI_SUCCESS)
			return false;
	}
	return true;
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
	struct milter_connection *conn = connection_get(ctx);
	struct milter_reply answer = { 0 };
	struct milter_changes changes;
	enum milter_status status;

	if (conn->message == NULL)
		return SMFIS_CONTINUE;
	milter_message_set_queue_id(conn->message, smfi_getsymval(ctx, "i"));
	status = milter_message_end(conn->message, &changes, &answer);
	if (status == MILTER_STATUS_CONTINUE) {
		if (!apply_changes(ctx, conn, &changes)) {
			milter_log(MILTER_LOG_ERROR, "the MTA refused a header "
				   "change; the client is told to try again");
			answer.code = "451";
			answer.xcode = "4.3.0";
			answer.text = "Message could not be processed, try "
				"again later";
			status = MILTER_STATUS_TEMPFAIL;
		} else if (answer.quarantine[0] != '\0' &&
			   smfi_quarantine(ctx, answer.quarantine) !=
			   MI_SUCCESS) {
			milter_log(MILTER_LOG_WARNING, "the MTA refused to "
				   "quarantine the message (%s)",
				   answer.quarantine);
		}
	}
	milter_changes_free(&changes);
	sfsistat ret = finish_step(ctx, conn, status, &answer);
	milter_message_free(&conn->message);
	return ret;
}

static sfsistat
cb_abort(SMFICTX *ctx)
{
	struct milter_connection *conn = smfi_getpriv(ctx);

	if (conn != NULL)
		milter_message_free(&conn->message);
	return SMFIS_CONTINUE;
}

static sfsistat
cb_close(SMFICTX *ctx)
{
	struct milter_connection *conn = smfi_getpriv(ctx);

	if (conn == NULL)
		return SMFIS_CONTINUE;
	smfi_setpriv(ctx, NULL);
	milter_message_free(&conn->message);
	free(conn->authserv_id);
	free(conn);
	__atomic_sub_fetch(&open_count, 1, __ATOMIC_SEQ_CST);
	return SMFIS_CONTINUE;
}

struct smfiDesc *
milter_callbacks(const struct milter_config *milter_config)
{
	static struct smfiDesc desc = {
		.xxfi_name = "dkim-milter",
		.xxfi_version = SMFI_VERSION,
		.xxfi_flags = WANTED_ACTIONS,
		.xxfi_connect = cb_connect,
		.xxfi_envfrom = cb_envfrom,
		.xxfi_envrcpt = cb_envrcpt,
		.xxfi_header = cb_header,
		.xxfi_eoh = cb_eoh,
		.xxfi_body = cb_body,
		.xxfi_eom = cb_eom,
		.xxfi_abort = cb_abort,
		.xxfi_close = cb_close,
		.xxfi_negotiate = cb_negotiate,
	};

	config = milter_config;
	return &desc;
}
