/* ASCII text helpers (see dkim-util.h). */
#include "dkim-util.h"

void
dkim_ascii_lowercase(char *str)
{
	for (; *str != '\0'; str++)
		*str = dkim_ascii_lower(*str);
}
