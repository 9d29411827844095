dnl DKIM_DOVECOT_VERSION: after DC_DOVECOT, tells Dovecot 2.3 from 2.4 by
dnl compiling against its headers (DOVECOT_PREREQ, in macros.h of both).
dnl Sets dovecot_24=yes|no and dovecot_version_found (e.g. 2.4.1).
AC_DEFUN([DKIM_DOVECOT_VERSION], [
	AC_MSG_CHECKING([whether Dovecot is 2.4 or newer])
	dkim_saved_CPPFLAGS=$CPPFLAGS
	CPPFLAGS="$CPPFLAGS $LIBDOVECOT_INCLUDE -DHAVE_CONFIG_H"
	AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[
#include "lib.h"
#if !DOVECOT_PREREQ(2, 4, 0)
#  error Dovecot older than 2.4
#endif
]], [])], [dovecot_24=yes], [dovecot_24=no])
	CPPFLAGS=$dkim_saved_CPPFLAGS
	AC_MSG_RESULT([$dovecot_24])
	dkim_dovecot_config_h="${LIBDOVECOT_INCLUDE#-I}/config.h"
	dovecot_version_found=`$SED -n 's/^#define DOVECOT_VERSION "\(.*\)"$/\1/p' "$dkim_dovecot_config_h"`
])
