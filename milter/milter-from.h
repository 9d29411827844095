/*
 * The author address of a message, for the SigningTable and for the rule
 * of which From a logged-in user may sign.
 */
#ifndef MILTER_FROM_H
#define MILTER_FROM_H

#include <stddef.h>

/* The single mailbox of a From field value as "local@domain" (domain
 * lowercased, the local part with quoting and comments removed), or NULL
 * when the value does not hold exactly one valid mailbox.  malloc()ed.
 *
 * Whether it holds one, and its domain, are dkimcore's answer
 * (dkim_author_domain(), the rule the verifier and the signer apply): the
 * milter signs exactly the messages whose author a DMARC verifier will see
 * as ours.  This file only adds the local part, and gives up when its own
 * reading of the domain differs. */
char *milter_from_address(const char *value, size_t len);

#endif
