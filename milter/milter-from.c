/* The author address: see milter-from.h. */
#include "milter-from.h"
#include "dkim.h"
#include "dkim-util.h"

#include <stdlib.h>

char *
milter_from_address(const char *value, size_t len)
{
	char *local_part, *domain, *address = NULL;

	if (dkim_author_address(value, len, &local_part, &domain) !=
	    DKIM_AUTHOR_FOUND)
		return NULL;
	bool plain = *local_part != '\0';
	for (const char *p = local_part; *p != '\0'; p++)
		plain = plain && (unsigned char)*p >= 0x20 && *p != 0x7f;
	if (plain)
		address = dkim_strdup_printf("%s@%s", local_part, domain);
	free(local_part);
	free(domain);
	return address;
}
