/* Signing fields laid out in advance, for the golden-vector tests: the
 * published vectors fix every tag and its place, which the library's
 * signer (it lays out its own fields) cannot reproduce.  Built from the
 * core's internals into test-sign-golden only; nothing here ships. */
#ifndef SIGN_TEMPLATE_H
#define SIGN_TEMPLATE_H

#include "dkim.h"

/* Computes bh= and b= for a prepared DKIM-Signature (or
 * ARC-Message-Signature) field whose b= value is empty (the field is used
 * exactly as given) over the given message.  Returns the field with both
 * filled in, malloc()ed, or NULL with error set. */
char *sign_template_field(const dkim_privkey *key, const char *field,
			  const void *message, size_t message_len,
			  struct dkim_error *error);

/* Computes b= for a prepared ARC-Seal field whose b= value is empty,
 * given this set's AAR and AMS fields and the message with the older sets.
 * Returns the seal field with its b= value, malloc()ed, or NULL with error
 * set. */
char *sign_template_arc_seal(const dkim_privkey *key, const char *seal,
			     const char *aar, const char *ams,
			     const void *message, size_t message_len,
			     struct dkim_error *error);

#endif
