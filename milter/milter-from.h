/*
 * The author address of a message, for the SigningTable and for the rule
 * of which From a logged-in user may sign.
 */
#ifndef MILTER_FROM_H
#define MILTER_FROM_H

#include <stddef.h>

/* The single mailbox of a From field value as "local@domain": dkimcore's
 * dkim_author_address(), the rule the verifier and the signer apply, so
 * that the milter signs exactly the messages whose author a DMARC verifier
 * will see as ours.  NULL when the value does not hold exactly one valid
 * mailbox, and when the local part is empty or holds a control character
 * (a TAB in a quoted string), which no SigningTable line is written for.
 * malloc()ed. */
char *milter_from_address(const char *value, size_t len);

#endif
