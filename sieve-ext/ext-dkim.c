/* Extension vnd.dovecot.dkim
   --------------------------

   Specification: vendor-defined; see sieve-dkim(7)
   Implementation: the dkim test, over the DKIM verification made at
   delivery by lib95_dkim_plugin (or here, when that did not run).

   Registered with load=FALSE, as Pigeonhole does for vnd.* extensions:
   enable it with sieve_extensions = +vnd.dovecot.dkim. */

#include "lib.h"

#include "sieve-common.h"
#include "sieve-extensions.h"
#include "sieve-commands.h"
#include "sieve-validator.h"

#include "ext-dkim-common.h"

static bool
ext_dkim_validator_load(const struct sieve_extension *ext,
			struct sieve_validator *valdtr);

const struct sieve_extension_def vnd_dkim_extension = {
	.name = DKIM_SIEVE_EXTENSION_NAME,
	.load = ext_dkim_load,
	.unload = ext_dkim_unload,
	.validator_load = ext_dkim_validator_load,
	SIEVE_EXT_DEFINE_OPERATION(dkim_operation),
};

static bool
ext_dkim_validator_load(const struct sieve_extension *ext,
			struct sieve_validator *valdtr)
{
	sieve_validator_register_command(valdtr, ext, &dkim_test);
	return TRUE;
}
