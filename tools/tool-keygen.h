/* Making key pairs and their DNS records, shared by dkim-genkey and
 * dkim-keys. */
#ifndef TOOL_KEYGEN_H
#define TOOL_KEYGEN_H

#include <stdbool.h>

/* The default size of a new RSA key; the sizes accepted are dkim.h's
 * DKIM_RSA_MIN_BITS to DKIM_RSA_MAX_BITS. */
#define TOOL_KEYGEN_DEFAULT_RSA_BITS 2048

/* A new private key in PEM (PKCS#8): Ed25519, or RSA of `bits`.  Returns a
 * malloc()ed string, or NULL when OpenSSL fails.  Wipe it with
 * tool_keygen_free_pem(). */
char *tool_keygen_pem(bool ed25519, unsigned bits);
void tool_keygen_free_pem(char **pem);

/* The zone file line that publishes `record` for SELECTOR._domainkey.DOMAIN:
 * the fully qualified name (with its final dot, so it works whatever the
 * zone's $ORIGIN), "IN TXT", and the record in quoted strings of at most
 * 255 bytes each, the limit of one DNS character-string (RFC 1035).
 * Returns a malloc()ed string. */
char *tool_zone_line(const char *domain, const char *selector,
		     const char *record);

#endif
