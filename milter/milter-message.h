/*
 * One message through the milter, from MAIL FROM to the end of data: the
 * header fields are kept (bounded), the route and the keys are chosen at
 * the end of the header, the body is streamed into the core's signer and
 * verifier chunk by chunk, and at the end come the header changes and
 * the action for the MTA.  Nothing here speaks the milter protocol
 * (milter-callbacks.c does), and nothing here ever loses a message: a
 * failure leads to the action configured for it, tempfail at most.
 */
#ifndef MILTER_MESSAGE_H
#define MILTER_MESSAGE_H

#include "milter-config.h"

#include <stdbool.h>
#include <stddef.h>

struct milter_message_params {
	const struct milter_config *config;
	const char *authserv_id;	/* ours: AuthservID or the MTA's */
	bool internal;			/* the client is in InternalHosts */
	const char *login;		/* {auth_authen}, or NULL */
	const char *queue_id;		/* {i}, or NULL; for the log */
	const char *client;		/* for the log */
};

/* What the MTA is told at a step. */
enum milter_status {
	MILTER_STATUS_CONTINUE,		/* send the rest */
	MILTER_STATUS_ACCEPT,		/* done with it, as it is */
	MILTER_STATUS_REJECT,		/* with the reply */
	MILTER_STATUS_TEMPFAIL,		/* with the reply */
};

struct milter_reply {
	const char *code, *xcode;	/* "550", "5.7.1" */
	const char *text;		/* static, no message text in it */
	/* at the end: put the message on hold, for this reason */
	char quarantine[160];
};

/* The header changes at the end of a message. */
struct milter_changes {
	/* Fields to delete: the n-th (from 1) field of that name as the
	 * MTA received them, highest index first so that deleting one never
	 * shifts the next. */
	struct milter_removal {
		const char *name;
		unsigned index;
	} *removals;
	size_t removal_count;
	/* Fields to put on top, first = topmost.  Values start with their
	 * space after the colon; folded lines are joined with LF + TAB,
	 * as the milter protocol carries them. */
	struct milter_insertion {
		char *name;
		char *value;
	} *insertions;
	size_t insertion_count;
};

void milter_changes_free(struct milter_changes *changes);

struct milter_message;

struct milter_message *
milter_message_new(const struct milter_message_params *params);
void milter_message_free(struct milter_message **msg);

void milter_message_set_queue_id(struct milter_message *msg,
				 const char *queue_id);
/* An envelope recipient, "<addr>" or "addr" as the MTA gives it. */
void milter_message_recipient(struct milter_message *msg,
			      const char *address);
/* A header field; `value` as the MTA gives it: with its leading space
 * when `leading_space` (SMFIP_HDR_LEADSPC), folded lines joined with LF
 * or CRLF. */
void milter_message_header(struct milter_message *msg, const char *name,
			   const char *value, bool leading_space);
enum milter_status milter_message_end_of_header(struct milter_message *msg,
						struct milter_reply *reply);
void milter_message_body(struct milter_message *msg, const void *data,
			 size_t size);
/* The end: fills `changes` and, for REJECT and TEMPFAIL, `reply`;
 * `reply->quarantine` may be set with CONTINUE. */
enum milter_status milter_message_end(struct milter_message *msg,
				      struct milter_changes *changes,
				      struct milter_reply *reply);

#endif
