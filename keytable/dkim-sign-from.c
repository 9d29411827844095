/* The From addresses a logged-in user may sign: see dkim-sign-from.h. */
#include "dkim-sign-from.h"
#include "dkim-keytable.h"

#include <string.h>
#include <strings.h>

bool
dkim_sign_from_permitted(const char *login, const char *from_address,
			 const char *const *patterns)
{
	const char *from_at = strrchr(from_address, '@');
	const char *from_domain = from_at == NULL ? "" : from_at + 1;
	const char *own_at = login == NULL ? NULL : strrchr(login, '@');

	if (from_at == NULL || *from_domain == '\0')
		return false;
	if (own_at != NULL && strcasecmp(own_at + 1, from_domain) == 0)
		return true;
	for (; patterns != NULL && *patterns != NULL; patterns++) {
		if (dkim_wildcard_match(*patterns,
					strchr(*patterns, '@') != NULL ?
					from_address : from_domain))
			return true;
	}
	return false;
}
